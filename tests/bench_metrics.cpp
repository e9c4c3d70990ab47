// Throughput (Mvoxel/s) and peak memory of every metric on a synthetic three-phase volume
// (AM spheres in SE with pores). Usage: bench_metrics [N ...] (default 256); prints a table.
#include <malloc.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <vector>

#include <tbb/info.h>

#include "metrics/connectivity.h"
#include "metrics/distance_transform.h"
#include "metrics/face_connectivity.h"
#include "metrics/fraction_profiles.h"
#include "metrics/geometric_tortuosity.h"
#include "metrics/interfaces.h"
#include "metrics/local_thickness.h"
#include "metrics/particle_sizes.h"
#include "metrics/phase_fractions.h"
#include "metrics/rev.h"

using namespace vp;

namespace {

// Heap bytes in use and their high-water mark, counted in operator new/delete (every std
// container of the metrics allocates through them). peak_mib() after reset_peak() is the
// metric's own peak working memory beyond what existed before it started.
std::atomic<long long> g_heap{0}, g_peak{0};

double current_mib() { return static_cast<double>(g_heap.load()) / (1024.0 * 1024.0); }
double peak_mib() { return static_cast<double>(g_peak.load()) / (1024.0 * 1024.0); }
void reset_peak() { g_peak.store(g_heap.load()); }

// AM spheres (radius 8 voxels) to ~45 %, pore spheres (radius 3) to ~20 %, SE elsewhere.
LabelVolume synthetic(index_t n) {
  Volume<std::uint8_t> v({n, n, n}, {0.5, 0.5, 0.5}, 1);
  std::mt19937_64 rng(42);
  auto paint = [&](double r, std::uint8_t label, double target) {
    std::uniform_real_distribution<double> u(0, static_cast<double>(n));
    const double per = 4.0 / 3.0 * M_PI * r * r * r;
    const auto count = static_cast<long>(target * static_cast<double>(v.size()) / per * 1.3);
    for (long k = 0; k < count; ++k) {
      double cx = u(rng), cy = u(rng), cz = u(rng);
      for (index_t z = std::max<index_t>(0, cz - r); z <= std::min<index_t>(n - 1, cz + r); ++z)
        for (index_t y = std::max<index_t>(0, cy - r); y <= std::min<index_t>(n - 1, cy + r); ++y)
          for (index_t x = std::max<index_t>(0, cx - r); x <= std::min<index_t>(n - 1, cx + r); ++x)
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) + (z - cz) * (z - cz) <= r * r && v(x, y, z) == 1)
              v(x, y, z) = label;
    }
  };
  paint(8, 2, 0.45);
  paint(3, 0, 0.20);
  return LabelVolume(std::move(v),
                     PhaseTable({{"pore", 0, Role::pore}, {"se", 1, Role::electrolyte}, {"am", 2, Role::active}}));
}

}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  long long now =
      g_heap.fetch_add(static_cast<long long>(malloc_usable_size(p))) + static_cast<long long>(malloc_usable_size(p));
  long long peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
  return p;
}
void operator delete(void* p) noexcept {
  if (!p) return;
  g_heap.fetch_sub(static_cast<long long>(malloc_usable_size(p)));
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

int main(int argc, char** argv) {
  std::vector<index_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoll(argv[i]));
  if (sizes.empty()) sizes = {256};
  std::printf("threads: %d\n\n", tbb::info::default_concurrency());
  std::printf("| metric | volume | time (s) | Mvoxel/s | peak extra memory (MiB) |\n|---|---|---:|---:|---:|\n");
  for (index_t n : sizes) {
    const LabelVolume lv = synthetic(n);
    const Volume<std::uint8_t> pore = phase_mask(lv, {0});
    const Volume<std::uint8_t> am = phase_mask(lv, {2});
    const Clusters particles = label_clusters(am, 6);
    const double mvox = static_cast<double>(lv.size()) / 1e6;
    auto run = [&](const std::string& name, const std::function<void()>& f) {
      reset_peak();
      const double base = current_mib();
      auto t0 = std::chrono::steady_clock::now();
      f();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("| %s | %lld³ | %.2f | %.1f | %.1f |\n", name.c_str(), static_cast<long long>(n), s, mvox / s,
                  peak_mib() - base);
      std::fflush(stdout);
    };
    run("volume_fraction (phase_fractions)", [&] { (void)phase_fractions(lv); });
    run("volume_fractions_profile", [&] { (void)fraction_profiles(lv); });
    run("interface_area (Crofton + face count, all pairs)", [&] { (void)interface_areas(lv); });
    run("contact_area_fraction", [&] { (void)contact_area(lv); });
    run("contact_area_fraction per particle", [&] { (void)particle_contact_areas(lv, particles.ids); });
    run("tpb_density", [&] { (void)triple_phase_boundary(lv, 2, 1, 0); });
    run("cluster labelling (pore, 26)", [&] { (void)label_clusters(pore, 26); });
    run("euler_characteristic (pore, 6)", [&] { (void)euler_characteristic(pore, 6); });
    run("euler_characteristic (pore, 26)", [&] { (void)euler_characteristic(pore, 26); });
    run("topology + connectivity density (pore, 6)", [&] { (void)topology(pore, 6); });
    run("percolating_fraction (pore, z, 6)", [&] { (void)percolation(pore, 2, 6); });
    run("geometric_tortuosity (pore, z, 26)", [&] { (void)geometric_tortuosity(pore, {2, 26, false}); });
    run("distance_transform (pore)", [&] { (void)distance_transform(pore); });
    run("local_thickness (pore)", [&] { (void)local_thickness(pore); });
    run("local_thickness (am)", [&] { (void)local_thickness(am); });
    run("particle_sizes", [&] { (void)particle_sizes(lv, particles.ids); });
    run("rev (k = 2, 3, 4)", [&] { (void)rev_study(lv); });
  }
  return 0;
}
