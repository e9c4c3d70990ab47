// Crack-area benchmark: Mvoxel/s and peak extra memory per step on an N³ SE block (default
// 256³) with planted planar cracks, round pores and a blurred, noisy grey image of it.
// Usage: bench_cracks [N] [threads]. Prints a Markdown table (timings go into docs/cracks.md).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include <sys/resource.h>

#include <tbb/global_control.h>

#include "bench_measure.h"
#include "metrics/cracks/detection.h"
#include "metrics/cracks/graph.h"
#include "metrics/cracks/measure.h"
#include "metrics/cracks/sheetness.h"
#include "metrics/cracks/short_circuit.h"
#include "metrics/cracks/skeleton.h"

namespace {

using namespace vp;
using vp::bench::cpu_seconds;

void step(const std::string& name, index_t voxels, const std::function<void()>& f) {
  vp::bench::reset_peak_memory();
  const double before = vp::bench::status_bytes("VmRSS");
  const double c0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("| %-44s | %8.2f | %8.2f | %8.2f | %8.0f |\n", name.c_str(), s, cpu_seconds() - c0, voxels / s / 1e6,
              (vp::bench::status_bytes("VmHWM") - before) / 1048576.0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const index_t n = argc > 1 ? std::atoll(argv[1]) : 256;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  std::unique_ptr<tbb::global_control> limit;
  if (threads > 0) limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, threads);

  // An SE block (label 1) with eight planted discs (apertures 1-3 voxels, tilted up to 40°),
  // one through-crack along z and twelve round pores (label 0); 0.5 µm voxels. Benchmarks link
  // only vp_cracks, so the volume is drawn here (the same rule as phantoms' planar_cracks).
  const double h = 0.5, L = n * h;
  struct Disc {
    Vec3 c, n;
    double aperture, radius;
  };
  std::vector<Disc> discs;
  for (int k = 0; k < 8; ++k) {
    const double a = 0.7 * k;
    discs.push_back(
        {{L * (0.2 + 0.6 * ((k * 37) % 8) / 7.0), L * (0.2 + 0.6 * ((k * 53) % 8) / 7.0), L * (0.1 + 0.1 * k)},
         {std::sin(0.1 * k) * std::cos(a), std::sin(0.1 * k) * std::sin(a), std::cos(0.1 * k)},
         h * (1 + k % 3),
         L * 0.12});
  }
  discs.push_back({{L * 0.9, L / 2, L / 2}, {1, 0, 0}, 2 * h, 0});
  LabelVolume labels(Volume<std::uint8_t>({n, n, n}, {h, h, h}, 1),
                     PhaseTable({{"pore", 0, Role::pore}, {"se", 1, Role::electrolyte}}));
  for (index_t z = 0; z < n; ++z)
    for (index_t y = 0; y < n; ++y)
      for (index_t x = 0; x < n; ++x) {
        const Vec3 p{(x + 0.5) * h, (y + 0.5) * h, (z + 0.5) * h};
        for (const Disc& d : discs) {
          const Vec3 r{p[0] - d.c[0], p[1] - d.c[1], p[2] - d.c[2]};
          const double along = r[0] * d.n[0] + r[1] * d.n[1] + r[2] * d.n[2];
          const double r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2] - along * along;
          if (std::abs(along) < d.aperture / 2 && (d.radius <= 0 || r2 < d.radius * d.radius)) labels(x, y, z) = 0;
        }
        for (int q = 0; q < 12; ++q) {
          const double cx = n * ((q * 29) % 12 + 0.5) / 12, cy = n * ((q * 7) % 12 + 0.5) / 12, cz = n * (q + 0.5) / 12;
          if (std::hypot(std::hypot(x - cx, y - cy), z - cz) < n / 40.0) labels(x, y, z) = 0;
        }
      }
  // Grey: SE 22000, pore 6000, a 3×3×3 box blur and Gaussian noise σ = 2000 (Box–Muller on a
  // fixed-seed mt19937_64, so every run draws the same image).
  Volume<float> sharp = labels.like<float>(labels.dims());
  for (index_t i = 0; i < sharp.size(); ++i) sharp[i] = labels[i] ? 22000.f : 6000.f;
  Volume<float> grey = sharp;
  std::mt19937_64 rng(1);
  for (index_t z = 1; z < n - 1; ++z)
    for (index_t y = 1; y < n - 1; ++y)
      for (index_t x = 1; x < n - 1; ++x) {
        double sum = 0;
        for (int dz = -1; dz <= 1; ++dz)
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) sum += sharp(x + dx, y + dy, z + dz);
        const double u1 = (rng() >> 11) * 0x1.0p-53 + 1e-300, u2 = (rng() >> 11) * 0x1.0p-53;
        grey(x, y, z) = static_cast<float>(sum / 27 + 2000 * std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2));
      }
  const index_t voxels = labels.size();

  std::printf("voxpress cracks benchmark: %lld³ voxels (%.1f Mvoxel), %s threads, %zu planted cracks\n\n",
              static_cast<long long>(n), voxels / 1e6, threads > 0 ? std::to_string(threads).c_str() : "all",
              discs.size());
  std::printf("| %-44s | %8s | %8s | %8s | %8s |\n", "step", "s", "CPU s", "Mvox/s", "peak MiB");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(10, '-').c_str());

  CrackDetectionOptions o;
  o.host_labels = {1};
  o.void_labels = {0};
  // VP_CUT_MIN_VALLEY=0: cut cracks judged by the void's flatness alone (the grey valley's cost).
  if (const char* v = std::getenv("VP_CUT_MIN_VALLEY")) o.cut_min_valley = std::atof(v);
  SheetnessOptions so;
  so.contrast = 22000 - 6000;
  so.host_level = 22000;
  step("sheetness (σ = 1, 2, 3 voxels)", voxels, [&] { (void)dark_sheetness(grey, so); });
  CrackDetection det;
  step("detect_cracks (labels only)", voxels, [&] { det = detect_cracks(labels, nullptr, o); });
  CrackDetection det_grey;
  step("detect_cracks (labels + grey)", voxels, [&] { det_grey = detect_cracks(labels, &grey, o); });
  CrackMeasureOptions mo;
  mo.host_labels = o.host_labels;
  mo.void_labels = o.void_labels;
  mo.skeleton = false;
  CrackMeasurements m;
  step("measure_cracks (no skeleton; incl. 3 axes)", voxels, [&] { m = measure_cracks(labels, det.ids, mo); });
  Volume<std::uint8_t> crack_mask = labels.like<std::uint8_t>(labels.dims());
  for (index_t i = 0; i < voxels; ++i) crack_mask[i] = det.ids[i] != 0;
  Volume<std::uint8_t> skeleton;
  step("skeletonize (crack voxels)", voxels, [&] { skeleton = skeletonize(crack_mask); });
  SkeletonGraph graph;
  step("skeleton_graph", voxels, [&] { graph = skeleton_graph(skeleton); });
  Volume<std::uint8_t> network = crack_mask;
  for (index_t i = 0; i < voxels; ++i) network[i] |= labels[i] == 0;
  ShortCircuitRisk risk;
  step("short_circuit_risk (z)", voxels, [&] { risk = short_circuit_risk(network, {2, 26}); });

  std::printf(
      "\ncracks planted %zu, found %u (labels) / %u (labels + grey); crack voxels %lld; skeleton "
      "length %.1f µm; percolates z %s, bottleneck %.2f µm\n",
      discs.size(), det.count, det_grey.count, static_cast<long long>(m.crack_voxels), graph.total_length_um(),
      risk.percolates ? "yes" : "no", risk.bottleneck_diameter_um);
  return 0;
}
