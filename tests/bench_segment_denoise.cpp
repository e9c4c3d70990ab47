// Denoising quality and throughput of the preprocess stage's filters on CT phantoms.
// Quality: PSNR against the noise-free image of the same phantom (the geometry of
// data_samples/phantom_ct.yaml at 250 MPa, imaged with the default ImagingSpec: grey 4000 +
// 40000·μ, PSF σ = 1 voxel; Gaussian noise at SNR 5 / 8 / 12, seed 1). PSNR = 10 log10(peak² /
// MSE), peak = max − min of the noise-free image. Throughput: one run per filter on the SNR 8
// image of a larger phantom, wall and CPU seconds (getrusage, all threads).
//   bench_segment_denoise [N_QUALITY=128] [N_THROUGHPUT=256, 0 = skip] [FILTER]
// FILTER: only the rows whose name contains it; "direct" adds the exact bilateral sum.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <tbb/info.h>

#include "bench_measure.h"
#include "filters/preprocess/denoise.h"
#include "filters/preprocess/edge_preserving.h"
#include "filters/preprocess/psf.h"
#include "phantoms/phantom.h"
#include "phantoms/phantom_spec.h"

using namespace vp;
using vp::bench::cpu_seconds;
using vp::bench::psnr;

namespace {

struct Filter {
  std::string name;
  std::function<Volume<float>(const Volume<float>&)> run;
};

std::vector<Filter> filters() {
  auto method = [](DenoiseMethod m) {
    return [m](const Volume<float>& g) {
      DenoiseOptions o;  // the stage's defaults
      o.method = m;
      return denoise(g, o);
    };
  };
  return {
      {"none", method(DenoiseMethod::none)},
      {"gaussian σ=1 vox",
       [](const Volume<float>& g) {
         return gaussian_blur(g, {1.0, 1.0, 1.0});
       }},
      {"median r=1", method(DenoiseMethod::median)},
      {"anisotropic 5 it", method(DenoiseMethod::anisotropic)},
      {"bilateral", method(DenoiseMethod::bilateral)},
      {"nlmeans", method(DenoiseMethod::nlmeans)},
      // The exact bilateral sum (minutes at 128³): only when asked for by name ("direct").
      {"bilateral, direct sum",
       [](const Volume<float>& g) { return bilateral_filter_direct(g, 1.0, 2 * estimate_noise_sigma(g)); }},
  };
}

struct Images {
  Volume<float> clean;
  std::vector<Volume<float>> noisy;  // one per SNR
};

Volume<float> to_float(const Volume<std::uint16_t>& v) {
  Volume<float> f(v.dims(), v.spacing_um);
  for (index_t i = 0; i < v.size(); ++i) f.data()[i] = v.data()[i];
  return f;
}

Images make_images(index_t n, const std::vector<double>& snrs) {
  const std::filesystem::path source(VP_SOURCE_DIR);
  phantom::PhantomJob job = phantom::load_phantom_spec((source / "data_samples" / "phantom_ct.yaml").string());
  job.composite.dims = {n, n, n};
  const phantom::Phantom ph = phantom::generate_composite(job.composite, 250);
  phantom::ImagingSpec imaging;  // full grey range: rounding to integers is negligible
  imaging.seed = 1;
  imaging.noise = phantom::NoiseModel::none;
  Images im;
  im.clean = to_float(phantom::ct_image(ph.labels, imaging));
  imaging.noise = phantom::NoiseModel::gaussian;
  for (double snr : snrs) {
    imaging.snr = snr;
    im.noisy.push_back(to_float(phantom::ct_image(ph.labels, imaging)));
  }
  return im;
}

}  // namespace

int main(int argc, char** argv) {
  const index_t nq = argc > 1 ? std::stoll(argv[1]) : 128;
  const index_t nt = argc > 2 ? std::stoll(argv[2]) : 256;
  const std::string only = argc > 3 ? argv[3] : "";
  const std::vector<double> snrs{5, 8, 12};
  std::printf("bench_segment_denoise: %d threads; stage defaults\n\n", tbb::info::default_concurrency());

  if (nq > 0) {
    const Images im = make_images(nq, snrs);
    std::printf("PSNR (dB) against the noise-free image, %lld³ CT phantom:\n\n", static_cast<long long>(nq));
    std::printf("| filter | SNR 5 | SNR 8 | SNR 12 |\n|---|---:|---:|---:|\n");
    for (const Filter& f : filters()) {
      if (!only.empty() && f.name.find(only) == std::string::npos) continue;
      if (f.name.find("direct") != std::string::npos && only != "direct") continue;
      std::printf("| %s |", f.name.c_str());
      for (const auto& noisy : im.noisy) std::printf(" %.2f |", psnr(im.clean, f.run(noisy)));
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  if (nt > 0) {
    const Images im = make_images(nt, {8});
    std::printf("\nThroughput, %lld³ CT phantom at SNR 8:\n\n", static_cast<long long>(nt));
    std::printf("| filter | wall s | CPU s | Mvoxel/s (wall) | Mvoxel per CPU-s |\n|---|---:|---:|---:|---:|\n");
    const double mvox = static_cast<double>(im.clean.size()) / 1e6;
    for (const Filter& f : filters()) {
      if (f.name == "none" || (!only.empty() && f.name.find(only) == std::string::npos)) continue;
      if (f.name.find("direct") != std::string::npos && only != "direct") continue;
      const double c0 = cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      const Volume<float> out = f.run(im.noisy[0]);
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = cpu_seconds() - c0;
      std::printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", f.name.c_str(), wall, cpu, mvox / wall, mvox / cpu);
      std::fflush(stdout);
    }
    // The default range σ / bandwidth come from this one-thread estimate: the serial part.
    const double c0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const double sigma = estimate_noise_sigma(im.noisy[0]);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("| (noise estimate, serial, inside bilateral and nlmeans: σ = %.0f) | %.2f | %.2f | | |\n", sigma, wall,
                cpu_seconds() - c0);
  }
  return 0;
}
