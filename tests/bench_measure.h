// What every benchmark prints beside wall time: the process's CPU seconds (user + sys, all
// threads; on a shared machine the honest figure), and, for denoisers, the PSNR against the
// noise-free image.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "core/volume.h"

namespace vp::bench {

inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// A resident-set figure of this process from /proc/self/status, in bytes: "VmRSS" now, "VmHWM"
// the peak since the last reset_peak_memory(); 0 where /proc cannot be read.
inline double status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return 1024.0 * std::stod(line.substr(key.size() + 1));
  return 0;
}

// Resets VmHWM to the current resident size (writing 5 to clear_refs, Linux >= 4.0), so that the
// next peak is one step's own; false where it cannot.
inline bool reset_peak_memory() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  return static_cast<bool>(out);
}

// Mean of the finite values added (NaN when none): a cell's mean over the seeds that gave a number.
struct Mean {
  double sum = 0;
  int n = 0;
  void add(double v) {
    if (std::isfinite(v)) sum += v, ++n;
  }
  double get() const { return n ? sum / n : NAN; }
};

// Peak signal-to-noise ratio of `v` against `clean`, in dB, the peak being clean's grey range.
inline double psnr(const Volume<float>& clean, const Volume<float>& v) {
  double mn = clean.data()[0], mx = mn, se = 0;
  for (index_t i = 0; i < clean.size(); ++i) {
    const double c = clean.data()[i], e = v.data()[i] - c;
    mn = std::min(mn, c);
    mx = std::max(mx, c);
    se += e * e;
  }
  return 10 * std::log10((mx - mn) * (mx - mn) / (se / static_cast<double>(clean.size())));
}

}  // namespace vp::bench
