// Throughput of each preprocessing / segmentation step on a 256³ CT-like volume (AM spheres on
// a jittered lattice in SE, blur σ = 1 voxel, SNR 5). Prints per step the wall and CPU seconds
// (all threads), Mvoxel/s of wall time and the peak memory in bytes per voxel beyond the step's
// inputs (the rise of the resident high-water mark above the resident size at its start, as
// bench_pipeline). `segment auto` runs its low-SNR sweep on these SNR 5 spheres; a
// row repeats it without (the sweep's own cost). Two rows repeat `segment auto` on the same spheres under a σ 0.7 PSF,
// without and with the sharp-PSF sweep that `auto` runs there (partial_volume.h).
// Denoising quality (PSNR) and CPU time: bench_segment_denoise.
// Benchmarks link vp_segment only (tests/CMakeLists.txt), so the input is made here rather than
// by phantoms/; it is a workload, not a ground truth.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include <tbb/global_control.h>
#include <tbb/info.h>

#include <random>
#include "bench_measure.h"
#include "filters/preprocess/artifacts.h"
#include "filters/preprocess/denoise.h"
#include "filters/preprocess/intensity.h"
#include "filters/segment/cleanup.h"
#include "filters/segment/features.h"
#include "filters/segment/forest.h"
#include "filters/segment/particles.h"
#include "filters/segment/segmenter.h"
#include "metrics/distance_transform.h"

using namespace vp;

namespace {

std::string only;  // bench_segment N STEP: only the rows whose name contains STEP

void row(const std::string& step, const Dims& d, const std::function<void()>& f) {
  if (!only.empty() && step.find(only) == std::string::npos) return;
  bench::reset_peak_memory();
  const double rss0 = bench::status_bytes("VmRSS"), cpu0 = bench::cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = bench::cpu_seconds() - cpu0;
  const double voxels = static_cast<double>(d.count());
  std::printf("| %-44s | %-11s | %8.2f | %8.2f | %9.3g | %6.1f |\n", step.c_str(), to_string(d).c_str(), s, cpu,
              voxels / s / 1e6, std::max(0.0, bench::status_bytes("VmHWM") - rss0) / voxels);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  // Every large buffer mapped on allocation and returned when freed, so that each row's peak counts
  // its own buffers (bench_pipeline's reason).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
  const index_t n = argc > 1 ? std::stoll(argv[1]) : 256;
  if (argc > 2) only = argv[2];
  const auto t0 = std::chrono::steady_clock::now();
  Volume<std::uint8_t> truth(Dims{n, n, n}, {0.5, 0.5, 0.5});
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> jitter(-3, 3), radius(6, 11);
  int spheres = 0;
  for (index_t cz = 12; cz < n; cz += 24)
    for (index_t cy = 12; cy < n; cy += 24)
      for (index_t cx = 12; cx < n; cx += 24) {
        const double x0 = cx + jitter(rng), y0 = cy + jitter(rng), z0 = cz + jitter(rng), r = radius(rng);
        ++spheres;
        for (index_t z = std::max<index_t>(0, z0 - r); z <= std::min<index_t>(n - 1, z0 + r); ++z)
          for (index_t y = std::max<index_t>(0, y0 - r); y <= std::min<index_t>(n - 1, y0 + r); ++y)
            for (index_t x = std::max<index_t>(0, x0 - r); x <= std::min<index_t>(n - 1, x0 + r); ++x)
              if ((x - x0) * (x - x0) + (y - y0) * (y - y0) + (z - z0) * (z - z0) <= r * r) truth(x, y, z) = 1;
      }
  Volume<float> clean = truth.like<float>(truth.dims());
  for (index_t i = 0; i < clean.size(); ++i) clean[i] = truth[i] ? 1.0f : 0.45f;
  Volume<float> grey = gaussian_smooth(clean, 0.5);  // σ = 1 voxel
  std::normal_distribution<double> noise(0, 0.55 / 5);
  for (auto& v : grey.storage()) v += static_cast<float>(noise(rng));
  const double setup = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("bench_segment: %s phantom (%d spheres) made in %.1f s; %d threads\n\n", to_string(grey.dims()).c_str(),
              spheres, setup, tbb::info::default_concurrency());
  std::printf("| %-44s | %-11s | %8s | %8s | %9s | %6s |\n", "step", "volume", "s", "CPU s", "Mvoxel/s", "B/vox");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(13, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(11, '-').c_str(),
              std::string(8, '-').c_str());
  const Dims d = grey.dims();

  row("bin 2x (mean)", d, [&] { bin_mean(grey, 2); });
  row("normalise (percentiles)", d, [&] { normalise_percentiles(grey); });
  row("ring reduction", d, [&] { reduce_rings(grey); });
  row("cupping correction", d, [&] { correct_cupping(grey); });
  DenoiseOptions dn;
  dn.method = DenoiseMethod::median;
  row("denoise median r=1 (ITK)", d, [&] { denoise(grey, dn); });
  dn.method = DenoiseMethod::anisotropic;
  row("denoise anisotropic 5 it (ITK)", d, [&] { denoise(grey, dn); });
  dn.method = DenoiseMethod::bilateral;
  row("denoise bilateral 1 um (tiled)", d, [&] { denoise(grey, dn); });
  dn.method = DenoiseMethod::nlmeans;
  row("denoise nlmeans 50 patches (tiled)", d, [&] { denoise(grey, dn); });
  Histogram h;
  row("histogram 256 bins", d, [&] { h = histogram(grey, 256); });
  SegmentResult r;
  row("segment otsu", d, [&] { r = segment_grey(grey, {SegmentMethod::otsu}); });
  row("segment multi-otsu k=3", d, [&] { segment_grey(grey, {SegmentMethod::multi_otsu, 3}); });
  row("segment kmeans k=3", d, [&] { segment_grey(grey, {SegmentMethod::kmeans, 3}); });
  row("segment gmm k=3", d, [&] { segment_grey(grey, {SegmentMethod::gmm, 3}); });
  // The SNR 5 spheres: `auto` runs its low-SNR sweep; the second row leaves it out (its own cost).
  row("segment auto k=2 + PV fractions", d, [&] { segment_grey(grey, {SegmentMethod::automatic, 2}); });
  SegmentOptions no_low_snr{SegmentMethod::automatic, 2};
  no_low_snr.partial_volume.low_snr_sweep = false;
  row("segment auto k=2, no low-SNR sweep", d, [&] { segment_grey(grey, no_low_snr); });
  const std::string sharp_rows[2] = {"segment auto k=2, PSF 0.7, no sweep",
                                     "segment auto k=2, PSF 0.7 (sharp-PSF sweep)"};
  if (only.empty() || sharp_rows[0].find(only) != std::string::npos || sharp_rows[1].find(only) != std::string::npos) {
    // The same spheres under a σ 0.7 PSF (noise of the same σ, its own draw), where `auto` runs the sweep.
    Volume<float> sharp = gaussian_smooth(clean, 0.35);
    std::mt19937 rng_sharp(3);
    for (auto& v : sharp.storage()) v += static_cast<float>(noise(rng_sharp));
    SegmentOptions no_sweep{SegmentMethod::automatic, 2};
    no_sweep.partial_volume.sharp_psf_sweep = false;
    row(sharp_rows[0], d, [&] { segment_grey(sharp, no_sweep); });
    SegmentResult sr;
    row(sharp_rows[1], d, [&] { sr = segment_grey(sharp, {SegmentMethod::automatic, 2}); });
    if (sr.partial_volume)
      std::printf("  (PSF estimate %.2f voxel, sweep flips %lld)\n", sr.psf_sigma_vox[0],
                  static_cast<long long>(sr.partial_volume->map_flips));
  }
  SegmentOptions hy;
  hy.method = SegmentMethod::hysteresis;
  if (r.thresholds.empty()) r = segment_grey(grey, {SegmentMethod::otsu});  // its row was filtered out
  hy.thresholds = {r.thresholds[0] * 0.95, r.thresholds[0] * 1.05};
  row("segment hysteresis", d, [&] { segment_grey(grey, hy); });
  Volume<std::uint8_t> scribbles(d, grey.spacing_um);
  for (index_t z = 8; z < d.z; z += 16)
    for (index_t y = 4; y < d.y; y += 8)
      for (index_t x = 0; x < d.x; x += 4) scribbles(x, y, z) = static_cast<std::uint8_t>(truth(x, y, z) ? 2 : 1);
  std::optional<ForestModel> model;
  row("forest train (scribbles)", d, [&] { model = ForestModel::train(grey, scribbles); });
  row("forest classify", d, [&] {
    if (model) model->classify(grey);
  });
  Volume<std::uint8_t> labels = r.labels;
  row("distance transform (exact EDT)", d, [&] { distance_transform(labels); });
  row("open 1 um (AM)", d, [&] { open_phase(labels, 1, 1.0); });
  row("close 1 um (AM)", d, [&] { close_phase(labels, 1, 1.0); });
  row("remove islands < 10 um^3 (SE)", d, [&] { remove_small_islands(labels, 0, 10); });
  row("fill holes (AM)", d, [&] { fill_holes(labels, 1); });
  Volume<std::uint32_t> ids;
  row("particles (EDT + h-maxima + watershed)", d, [&] { ids = separate_particles(labels, 1); });
  std::vector<Particle> t;
  row("particle table", d, [&] { t = particle_table(ids); });
  std::printf("\nparticles found %zu, spheres placed %d\n", t.size(), spheres);
  return 0;
}
