// What every benchmark prints beside wall time: the process's CPU seconds (user + sys, all
// threads; on a shared machine the honest figure), and, for denoisers, the PSNR against the
// noise-free image.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cmath>

#include "core/volume.h"

namespace vp::bench {

inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
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
