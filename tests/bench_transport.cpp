// Benchmark of the voxel conductivity solve on random-blob structures (box-blurred white
// noise, blur radius 2 voxels twice, thresholded) at 30 % and 50 % conducting fraction,
// 128³, 256³ and 512³, transport along z. Prints a table: wall time, CG iterations, peak
// memory in bytes per voxel, and the iteration growth from the smallest to the largest size.
//
// Peak memory: the labels are made first (1 B/voxel, the input, not counted); then the
// process's RSS high-water mark is reset (`echo 5 > /proc/self/clear_refs`, Linux ≥ 4.0)
// and the solve's peak is VmHWM after the solve minus VmRSS before it, over the voxel count.
// Usage: bench_transport [max_size] (default 512).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include <malloc.h>
#include <sys/resource.h>

#include <tbb/task_arena.h>

#include "bench_measure.h"
#include "metrics/transport/conductivity_solve.h"
#include "test_transport_blobs.h"

using vp::bench::cpu_seconds;

int main(int argc, char** argv) {
  const long max_size = argc > 1 ? std::atol(argv[1]) : 512;
  // Fixed mmap threshold: every large block is mapped and unmapped, so freed memory of one case
  // leaves the RSS (glibc's dynamic threshold would keep it on the heap and hide the next peak).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::printf("voxel conductivity solve, random blobs, transport along z, %d threads\n",
              tbb::this_task_arena::max_concurrency());
  std::printf("%6s %6s %9s %9s %8s %8s %7s %10s %9s %9s  %s\n", "size", "phi", "eps_perc", "tau", "wall_s", "cpu_s",
              "iter", "residual", "balance", "B/voxel", "status");
  std::map<double, std::pair<long, long>> first_last;  // phi -> iterations at the smallest / largest size
  for (long n : {128L, 256L, 512L}) {
    if (n > max_size) break;
    for (double phi : {0.3, 0.5}) {
      vp::Volume<std::uint8_t> labels = vp::test::random_blobs({n, n, n}, phi, 2024);
      vp::ConductivityTable k{};
      k[1] = 1.0;
      const bool peak_ok = vp::bench::reset_peak_memory();
      const double before = vp::bench::status_bytes("VmRSS");
      const double cpu0 = cpu_seconds();
      vp::TransportOptions o;
      o.axis = 2;
      const vp::TransportResult r = vp::solve_transport(labels, k, o);
      const double peak = vp::bench::status_bytes("VmHWM");
      const double cpu = cpu_seconds() - cpu0;
      const double bytes = peak_ok ? (peak - before) / static_cast<double>(n * n * n) : -1;
      std::printf("%5ld³ %6.2f %9.4f %9.4f %8.2f %8.2f %7ld %10.2e %9.2e %9.1f  %s\n", n, phi, r.percolating_fraction,
                  r.tau, r.seconds, cpu, r.iterations, r.residual, r.flux_balance, bytes, r.status.c_str());
      std::fflush(stdout);
      auto& fl = first_last[phi];
      if (fl.first == 0) fl.first = r.iterations;
      fl.second = r.iterations;
    }
  }
  for (const auto& [phi, fl] : first_last)
    std::printf("iteration growth 128³ -> %ld³ at phi %.2f: %.2fx\n", max_size, phi,
                static_cast<double>(fl.second) / static_cast<double>(fl.first));
  return 0;
}
