// Volume I/O benchmark: write and read times per format for one 256^3 uint16 volume (32 MiB),
// the peak memory a read needs beyond the volume itself, and what the real files' headers say
// (folder from argv[1] or $VP_REAL_DATA_DIR).
// Prints tables; asserts nothing.
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <tbb/global_control.h>
#include <tbb/info.h>

#include "bench_measure.h"
#include "filters/io/volume_io.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path dir = fs::temp_directory_path() / ("vp_bench_io_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const Dims d{256, 256, 256};
  const double mib = d.count() * 2 / 1048576.0;
  const std::vector<std::pair<std::string, bool>> cases{{"v.tif", false},     {"v_deflate.tif", true}, {"v.mha", false},
                                                        {"v_zlib.mha", true}, {"v.nrrd", false},       {"v.nii", false},
                                                        {"v.raw", false},     {"v.npy", false},        {"v.h5", false}};
  std::vector<double> write_s;
  {
    Volume<std::uint16_t> v(d, {0.5, 0.5, 0.7});
    // A smooth field plus texture: compresses like a CT slice, not like zeros.
    for (index_t z = 0; z < d.z; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x)
          v(x, y, z) = static_cast<std::uint16_t>(20000 + 50 * ((x * 7 + y * 13 + z * 3) % 97) + x * y % 31);
    for (const auto& [name, compress] : cases) {
      WriteOptions w;
      w.compress = compress;
      const auto t0 = std::chrono::steady_clock::now();
      write_volume(v, (dir / name).string(), w);
      write_s.push_back(seconds_since(t0));
    }
  }
  std::printf("volume I/O, %s uint16 (%.0f MiB), %d threads (TIFF pages decode and compress in parallel)\n\n",
              to_string(d).c_str(), mib, tbb::info::default_concurrency());
  std::printf("| file | size MiB | write s | read s | peak extra MiB |\n|---|---|---|---|---|\n");
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const std::string path = (dir / cases[k].first).string();
    ReadOptions o;
    o.path = path;
    o.hash = false;
    if (cases[k].first == "v.raw") {
      o.dims = d;
      o.dtype = DType::u16;
    }
    vp::bench::reset_peak_memory();
    const double before = vp::bench::status_bytes("VmRSS") / 1048576.0;
    const auto t0 = std::chrono::steady_clock::now();
    ReadResult r = read_volume(o);
    const double read_s = seconds_since(t0);
    const double peak = vp::bench::status_bytes("VmHWM") / 1048576.0;
    std::printf("| %s | %.1f | %.3f | %.3f | %.1f |\n", cases[k].first.c_str(), fs::file_size(path) / 1048576.0,
                write_s[k], read_s, peak - before - mib);
  }
  {
    ReadOptions o;
    o.path = (dir / "v_deflate.tif").string();
    auto t0 = std::chrono::steady_clock::now();
    read_volume(o);
    std::printf("\nDeflate TIFF read including SHA-256 of the file: %.3f s\n", seconds_since(t0));
    o.hash = false;
    for (int threads : {1, tbb::info::default_concurrency()}) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
      t0 = std::chrono::steady_clock::now();
      read_volume(o);
      std::printf("Deflate TIFF read with %d thread(s): %.3f s\n", threads, seconds_since(t0));
    }
  }
  fs::remove_all(dir);

  // The real files' folder: first argument, or $VP_REAL_DATA_DIR.
  const char* env = std::getenv("VP_REAL_DATA_DIR");
  const fs::path real = argc > 1 ? argv[1] : env ? env : "";
  if (!real.empty() && fs::exists(real)) {
    std::printf(
        "\nreal files (%s)\n\n| file | format | dims | dtype | spacing µm (from file?) | read s |\n"
        "|---|---|---|---|---|---|\n",
        real.c_str());
    for (const auto& e : fs::directory_iterator(real)) {
      const std::string name = e.path().filename().string();
      if (name == "MANIFEST.md" || e.path().extension() == ".zip") continue;
      ReadOptions o;
      o.path = e.path().string();
      const auto t0 = std::chrono::steady_clock::now();
      const ReadResult r = read_volume(o);
      const double s = seconds_since(t0);
      const Vec3& sp = spacing_of(r.volume);
      std::printf("| %s | %s | %s | %s | %g, %g, %g (%s) | %.3f |\n", name.c_str(), r.format.c_str(),
                  to_string(dims_of(r.volume)).c_str(), to_string(dtype_of(r.volume)).c_str(), sp[0], sp[1], sp[2],
                  r.spacing_from_file ? "yes" : "no", s);
    }
  }
  return 0;
}
