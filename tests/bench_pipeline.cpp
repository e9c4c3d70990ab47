// The demo's stage list (read from configs/demo.yaml, so it follows the demo) run stage by stage
// on CT phantoms of the bundled series' spec (data_samples/phantom_ct.yaml) at 128³, 256³ and
// 512³, pressed at 250 MPa. Per stage: wall time, CPU time (getrusage, all threads), Mvoxel/s
// of wall time, and peak memory as the rise of the resident high-water mark above the resident
// size at the stage's start (the mark is reset per stage through /proc/self/clear_refs; large
// buffers are mapped and unmapped, so a stage's own buffers count), in MiB and in bytes per
// voxel. Phantom generation and CT imaging are timed as stages of their own.
//   bench_pipeline [N...] [--threads T] [--phantom-only] [--until STAGE]
// (default sizes 128 256 512; T = all cores). --phantom-only times phantom generation alone (the
// generator's own benchmark row); --until STAGE stops after that stage of the demo's list (the
// stages before it still run: they make its inputs), for timing or profiling one stage.
// Wall times depend on the machine's load: CPU seconds show the work itself. A digest of each
// stage's metric rows and of the final label, particle and crack volumes follows, so that a change
// of algorithm can be checked to leave the results bit-identical (same thread count).
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <tbb/global_control.h>
#include <tbb/info.h>

#include "bench_measure.h"
#include "core/hash.h"
#include "core/stage.h"
#include "phantoms/phantom.h"
#include "phantoms/phantom_spec.h"
#include "pipeline/catalog.h"
#include "pipeline/config.h"

using namespace vp;
using vp::bench::cpu_seconds;
namespace fs = std::filesystem;

namespace {

struct Measure {
  double wall = 0, cpu = 0, peak_bytes = 0;
};

Measure measure(const std::function<void()>& f) {
  vp::bench::reset_peak_memory();
  const double rss0 = vp::bench::status_bytes("VmRSS");
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  Measure m;
  m.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.cpu = cpu_seconds() - cpu0;
  m.peak_bytes = std::max(0.0, vp::bench::status_bytes("VmHWM") - rss0);
  return m;
}

template <class T>
std::string digest(const Volume<T>& v) {
  return sha256_hex(v.storage().data(), v.storage().size() * sizeof(T)).substr(0, 16);
}

std::string digest(const std::vector<MetricRow>& rows, std::size_t from) {
  Sha256 h;
  char value[64];
  for (std::size_t k = from; k < rows.size(); ++k) {
    const MetricRow& r = rows[k];
    std::snprintf(value, sizeof value, "%.17g", r.value);
    const std::string line = r.metric + "|" + r.phase + "|" + r.axis + "|" + value + "|" + r.unit + "\n";
    h.update(line.data(), line.size());
  }
  return h.hex_digest().substr(0, 16);
}

void print_row(const std::string& stage, index_t n, const Measure& m) {
  const double voxels = static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
  std::printf("| %-24s | %4lld³ | %8.2f | %8.2f | %9.3g | %8.0f | %6.1f |\n", stage.c_str(), static_cast<long long>(n),
              m.wall, m.cpu, voxels / m.wall / 1e6, m.peak_bytes / (1024.0 * 1024.0), m.peak_bytes / voxels);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  // A fixed mmap threshold: every large buffer is mapped on allocation and returned to the system
  // when freed. glibc otherwise raises the threshold after the first large free, so later stages'
  // volumes reuse heap pages already resident and their peak would read as zero. (A library whose
  // initialiser calls mallopt(M_MMAP_MAX, 0) — SuperLU_DIST did while PETSc was linked in, until
  // 4a8e79e — undoes this: then no buffer is mapped; compare such builds with
  // GLIBC_TUNABLES=glibc.malloc.mmap_max=0 on the newer one, README bench notes.)
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
  std::vector<index_t> sizes;
  int threads = tbb::info::default_concurrency();
  bool phantom_only = false;
  std::string until;
  const auto usage = [] {
    std::fprintf(stderr, "usage: bench_pipeline [N...] [--threads T] [--phantom-only] [--until STAGE]\n");
    return 2;
  };
  const auto positive = [](const char* text) {
    char* end = nullptr;
    const long long v = std::strtoll(text, &end, 10);
    return end != text && *end == '\0' && v > 0 ? v : 0;
  };
  for (int k = 1; k < argc; ++k) {
    const std::string a = argv[k];
    if (a == "--threads" && k + 1 < argc && positive(argv[k + 1])) threads = static_cast<int>(positive(argv[++k]));
    else if (a == "--phantom-only") phantom_only = true;
    else if (a == "--until" && k + 1 < argc) until = argv[++k];
    else if (positive(a.c_str())) sizes.push_back(positive(a.c_str()));
    else return a == "--help" || a == "-h" ? (usage(), 0) : usage();
  }
  if (sizes.empty()) sizes = {128, 256, 512};
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));

  Registry& registry = Registry::global();
  register_all(registry);
  const fs::path source(VP_SOURCE_DIR);
  const Config config = load_config(source / "configs" / "demo.yaml", registry);
  if (!until.empty() && std::none_of(config.stages.begin(), config.stages.end(),
                                     [&](const StageConfig& sc) { return sc.stage->name() == until; })) {
    std::fprintf(stderr, "bench_pipeline: --until %s: no such stage in configs/demo.yaml\n", until.c_str());
    return 2;
  }
  phantom::PhantomJob job = phantom::load_phantom_spec((source / "data_samples" / "phantom_ct.yaml").string());
  const double pressure = 250;
  const fs::path scratch = fs::temp_directory_path() / ("bench_pipeline_" + std::to_string(::getpid()));

  std::printf(
      "bench_pipeline: configs/demo.yaml stages on data_samples/phantom_ct.yaml phantoms at %.0f MPa; "
      "%d threads\n\n",
      pressure, threads);
  std::printf("| %-24s | %5s | %8s | %8s | %9s | %8s | %6s |\n", "stage", "size", "wall s", "CPU s", "Mvoxel/s",
              "peak MiB", "B/vox");
  std::printf("|--------------------------|-------|----------|----------|-----------|----------|--------|\n");
  std::vector<std::pair<index_t, Measure>> totals;
  std::vector<std::string> digests;
  for (index_t n : sizes) {
    phantom::CompositeSpec spec = job.composite;
    spec.dims = {n, n, n};
    phantom::Phantom ph;
    print_row("phantom", n, measure([&] { ph = phantom::generate_composite(spec, pressure); }));
    if (phantom_only) {
      digests.push_back("| " + std::to_string(n) + "³ | phantom labels | | " +
                        digest(static_cast<const Volume<std::uint8_t>&>(ph.labels)) + " |");
      digests.push_back("| " + std::to_string(n) + "³ | phantom particles | | " + digest(ph.particles) + " |");
      digests.push_back("| " + std::to_string(n) + "³ | phantom cracks | | " + digest(ph.cracks) + " |");
      continue;
    }
    Volume<std::uint16_t> grey;
    print_row("ct imaging", n, measure([&] { grey = phantom::ct_image(ph.labels, job.imaging); }));
    ph = phantom::Phantom();

    SampleContext ctx;
    ctx.sample.name = "bench" + std::to_string(n);
    ctx.sample.pressure_MPa = pressure;
    ctx.sample.spacing_um = grey.spacing_um;
    ctx.sample.pressing_axis = 2;
    ctx.grey = std::move(grey);
    ctx.config_phases = &config.phases;
    ctx.out_dir = scratch / ctx.sample.name;
    fs::create_directories(ctx.out_dir);
    ctx.threads = threads;
    Measure total;
    for (const StageConfig& sc : config.stages) {
      ctx.current_stage = sc.stage->name();
      ctx.details = nlohmann::json::object();
      const std::size_t rows_before = ctx.rows.size();
      const Measure m = measure([&] { sc.stage->run(sc.params, ctx); });
      digests.push_back("| " + std::to_string(n) + "³ | " + sc.stage->name() + " | " +
                        std::to_string(ctx.rows.size() - rows_before) + " rows | " + digest(ctx.rows, rows_before) +
                        " |");
      print_row(sc.stage->name(), n, m);
      total.wall += m.wall;
      total.cpu += m.cpu;
      total.peak_bytes = std::max(total.peak_bytes, m.peak_bytes);
      if (sc.stage->name() == until) break;
    }
    print_row("all stages", n, total);
    totals.push_back({n, total});
    if (ctx.labels) digests.push_back("| " + std::to_string(n) + "³ | labels volume | | " + digest(*ctx.labels) + " |");
    if (ctx.particles)
      digests.push_back("| " + std::to_string(n) + "³ | particles volume | | " + digest(*ctx.particles) + " |");
    if (ctx.cracks) digests.push_back("| " + std::to_string(n) + "³ | cracks volume | | " + digest(*ctx.cracks) + " |");
    fs::remove_all(ctx.out_dir);
  }
  fs::remove_all(scratch);

  std::printf(
      "\nScaling of the whole stage list (wall and CPU time relative to the first size, against the "
      "voxel ratio):\n\n| size | voxels × | wall × | CPU × |\n|---|---|---|---|\n");
  for (const auto& [n, m] : totals) {
    const double r = static_cast<double>(n) / static_cast<double>(totals.front().first);
    std::printf("| %lld³ | %.0f | %.1f | %.1f |\n", static_cast<long long>(n), r * r * r,
                m.wall / totals.front().second.wall, m.cpu / totals.front().second.cpu);
  }
  std::printf(
      "\nResults (SHA-256 prefixes; equal across builds = bit-identical results):\n\n"
      "| size | output | | digest |\n|---|---|---|---|\n");
  for (const std::string& line : digests) std::printf("%s\n", line.c_str());
  return 0;
}
