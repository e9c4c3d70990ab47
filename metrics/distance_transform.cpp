#include "metrics/distance_transform.h"

#include "core/progress.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace vp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr index_t kNone = std::numeric_limits<index_t>::max();

// Squared length of an axis offset of d voxels, measured between voxel centres.
struct CentreCost {
  double h2;
  double operator()(index_t d) const { return h2 * static_cast<double>(d * d); }
  // First integer p where site q (value fq) is strictly below site s < q (value fs): the two
  // parabolas cross once, at x = (fq - fs + h²(q² - s²)) / (2h²(q - s)).
  index_t first_better(index_t s, double fs, index_t q, double fq, index_t lo, index_t hi) const {
    double x = (fq - fs + h2 * static_cast<double>(q * q - s * s)) / (2.0 * h2 * static_cast<double>(q - s));
    if (!(x < static_cast<double>(hi))) return hi;
    index_t p = static_cast<index_t>(std::floor(x)) + 1;
    return std::clamp(p, lo, hi);
  }
};

// Squared length of an axis offset of d voxels from a voxel centre to the near face of the
// other voxel's cube: (max(|d| - ½, 0)·h)². Convex in d, so two translated copies cross once.
struct BoundaryCost {
  double h2;
  double operator()(index_t d) const {
    double a = std::max(std::abs(static_cast<double>(d)) - 0.5, 0.0);
    return h2 * a * a;
  }
  index_t first_better(index_t s, double fs, index_t q, double fq, index_t lo, index_t hi) const {
    // (fs + g(p - s)) - (fq + g(p - q)) is non-decreasing in p, so the answer is the first p in
    // [lo, hi) where q is better. Start from where the centre-cost parabolas (shifted by the
    // half voxel) cross, which is within a voxel or two of it, and walk to it.
    auto better = [&](index_t p) { return fq + (*this)(p - q) < fs + (*this)(p - s); };
    const double x =
        (fq - fs + h2 * static_cast<double>(q * q - s * s + (q - s))) / (2.0 * h2 * static_cast<double>(q - s));
    index_t p = lo;
    if (x >= static_cast<double>(hi)) p = hi;
    else if (x > static_cast<double>(lo)) p = static_cast<index_t>(x);
    while (p > lo && better(p - 1)) --p;
    while (p < hi && !better(p)) ++p;
    return p;
  }
};

// Working memory of one line transform.
struct LineScratch {
  std::vector<index_t> site, start;
  std::vector<double> value;
  void reserve(index_t n) {
    site.resize(static_cast<std::size_t>(n + 2));
    start.resize(static_cast<std::size_t>(n + 2));
    value.resize(static_cast<std::size_t>(n + 2));
  }
};

// out[p] = min over q of f[q] + g(p - q): the lower envelope of translated copies of g.
// With outside_bg, virtual zero-valued sites sit at q = -1 and q = n.
template <class Cost>
void lower_envelope(const double* f, index_t n, bool outside_bg, const Cost& g, double* out, LineScratch& s) {
  index_t k = -1;
  auto push = [&](index_t q, double fq) {
    while (k >= 0) {
      index_t p = s.start[k];
      if (fq + g(p - q) <= s.value[k] + g(p - s.site[k])) --k;  // q wins from here on: k is never needed
      else break;
    }
    if (k < 0) {
      k = 0;
      s.site[0] = q;
      s.value[0] = fq;
      s.start[0] = 0;
      return;
    }
    index_t w = g.first_better(s.site[k], s.value[k], q, fq, s.start[k] + 1, n);
    if (w < n) {
      ++k;
      s.site[k] = q;
      s.value[k] = fq;
      s.start[k] = w;
    }
  };
  if (outside_bg) push(-1, 0.0);
  for (index_t q = 0; q < n; ++q)
    if (f[q] < kInf) push(q, f[q]);
  if (outside_bg) push(n, 0.0);
  if (k < 0) {
    std::fill(out, out + n, kInf);
    return;
  }
  index_t top = k;
  k = 0;
  for (index_t p = 0; p < n; ++p) {
    while (k < top && s.start[k + 1] <= p) ++k;
    out[p] = s.value[k] + g(p - s.site[k]);
  }
}

// Lines are transformed kBlock at a time, interleaved (value of line b at p: in[p * kBlock + b]),
// so that lines along y and z are gathered a cache line at a time and the direct search below
// runs over all of them at once.
constexpr index_t kBlock = 16;

// Whether the direct search below takes line f (stride kBlock): every value small enough for it
// to pay (the envelope runs otherwise; also false for +inf).
bool small_values(const double* f, index_t n, double h2) {
  constexpr index_t kMaxReach = 24;
  if (!(h2 > 0)) return false;
  double f_max = 0;
  for (index_t p = 0; p < n; ++p) f_max = std::max(f_max, f[p * kBlock]);
  return f_max < h2 * static_cast<double>(kMaxReach * kMaxReach);
}

// The same minimum as lower_envelope by direct search, for the lines of a block whose values are
// all small (live[b]; the others come out 0 and are left to the envelope): out[p] <= f[p] (the
// site p itself), and a site q at distance k can only do better while cost[k] < out[p], so the
// search walks outward from p and stops once cost[k] reaches every line's best (costs grow with k,
// values are >= 0). The sums are the envelope's very sums (f[q] + cost[|p - q|] in double), so the
// result is bit-identical.
void near_minimum(const double* in, index_t n, bool outside_bg, const std::vector<double>& cost, const bool* live,
                  double* out) {
  for (index_t p = 0; p < n; ++p) {
    double best[kBlock];
    const double* fp = in + p * kBlock;
    const double beyond =
        outside_bg ? std::min(0.0 + cost[static_cast<std::size_t>(p + 1)], 0.0 + cost[static_cast<std::size_t>(n - p)])
                   : kInf;
    for (index_t b = 0; b < kBlock; ++b) best[b] = live[b] ? std::min(fp[b] + cost[0], beyond) : 0.0;
    for (index_t k = 1; k < n; ++k) {
      const double ck = cost[static_cast<std::size_t>(k)];
      bool open = false;
      for (index_t b = 0; b < kBlock; ++b) open |= ck < best[b];
      if (!open) break;
      if (p - k >= 0) {
        const double* f = in + (p - k) * kBlock;
        for (index_t b = 0; b < kBlock; ++b) {
          const double v = f[b] + ck;
          best[b] = v < best[b] ? v : best[b];
        }
      }
      if (p + k < n) {
        const double* f = in + (p + k) * kBlock;
        for (index_t b = 0; b < kBlock; ++b) {
          const double v = f[b] + ck;
          best[b] = v < best[b] ? v : best[b];
        }
      }
    }
    for (index_t b = 0; b < kBlock; ++b) out[p * kBlock + b] = best[b];
  }
}

// One separable pass along `axis`, in place on squared distances; the first (x) pass starts from
// the mask and writes every voxel. Lines along y and z are gathered in blocks of consecutive x so
// that each cache line read is used fully.
template <class Cost>
void pass(const Volume<std::uint8_t>& fg, Volume<float>& d, int axis, bool outside_bg, const Cost& g) {
  const Dims dims = d.dims();
  const index_t n = dims[axis];
  if (axis == 0) {
    // The first pass sees only background and foreground, so the envelope's minimum is the cost
    // of the nearest background voxel: two scans give it, the same value the envelope would.
    tbb::parallel_for(tbb::blocked_range<index_t>(0, dims.y * dims.z), [&](const tbb::blocked_range<index_t>& r) {
      cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
      std::vector<index_t> left(static_cast<std::size_t>(n));
      for (index_t line = r.begin(); line != r.end(); ++line) {
        const std::uint8_t* mask = fg.data() + line * n;
        float* row = d.data() + line * n;
        index_t last = outside_bg ? -1 : kNone;  // nearest background at or before p
        for (index_t p = 0; p < n; ++p) {
          if (!mask[p]) last = p;
          left[p] = last;
        }
        index_t next = outside_bg ? n : kNone;  // nearest background at or after p
        for (index_t p = n - 1; p >= 0; --p) {
          if (!mask[p]) {
            next = p;
            row[p] = 0.0f;
            continue;
          }
          index_t dist = kNone;
          if (left[p] != kNone) dist = p - left[p];
          if (next != kNone) dist = std::min(dist, next - p);
          row[p] = dist == kNone ? std::numeric_limits<float>::infinity() : static_cast<float>(g(dist));
        }
      }
    });
    return;
  }
  std::vector<double> cost(static_cast<std::size_t>(n + 2));
  for (index_t k = 0; k < n + 2; ++k) cost[static_cast<std::size_t>(k)] = g(k);
  const index_t blocks_x = (dims.x + kBlock - 1) / kBlock;
  const index_t other = axis == 1 ? dims.z : dims.y;  // the third axis
  const index_t stride = axis == 1 ? dims.x : dims.x * dims.y;
  const index_t other_stride = axis == 1 ? dims.x * dims.y : dims.x;
  tbb::parallel_for(tbb::blocked_range<index_t>(0, blocks_x * other), [&](const tbb::blocked_range<index_t>& r) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    LineScratch s;
    s.reserve(n);
    std::vector<double> in(static_cast<std::size_t>(n * kBlock)), out(static_cast<std::size_t>(n * kBlock));
    std::vector<double> line(static_cast<std::size_t>(n)), line_out(static_cast<std::size_t>(n));
    for (index_t job = r.begin(); job != r.end(); ++job) {
      const index_t x0 = (job % blocks_x) * kBlock;
      const index_t width = std::min(kBlock, dims.x - x0);
      float* base = d.data() + (job / blocks_x) * other_stride + x0;
      for (index_t i = 0; i < n; ++i) {
        const float* src = base + i * stride;
        double* dst = &in[static_cast<std::size_t>(i * kBlock)];
        for (index_t b = 0; b < width; ++b) dst[b] = src[b];
        for (index_t b = width; b < kBlock; ++b) dst[b] = 0.0;
      }
      bool live[kBlock] = {};
      bool any_live = false;
      for (index_t b = 0; b < width; ++b) any_live |= live[b] = small_values(&in[static_cast<std::size_t>(b)], n, g.h2);
      if (any_live) near_minimum(in.data(), n, outside_bg, cost, live, out.data());
      for (index_t b = 0; b < width; ++b) {
        if (live[b]) continue;
        for (index_t i = 0; i < n; ++i) line[i] = in[static_cast<std::size_t>(i * kBlock + b)];
        lower_envelope(line.data(), n, outside_bg, g, line_out.data(), s);
        for (index_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i * kBlock + b)] = line_out[i];
      }
      for (index_t i = 0; i < n; ++i) {
        float* dst = base + i * stride;
        const double* src = &out[static_cast<std::size_t>(i * kBlock)];
        for (index_t b = 0; b < width; ++b) dst[b] = static_cast<float>(src[b]);
      }
    }
  });
}

// `out` as a float volume like `fg` (dims, spacing, origin, provenance), keeping its buffer when
// it already has fg's dims: the first pass overwrites every voxel.
void prepare_output(const Volume<std::uint8_t>& fg, Volume<float>& out) {
  if (!(out.dims() == fg.dims())) {
    out = fg.like<float>(fg.dims());
    return;
  }
  out.spacing_um = fg.spacing_um;
  out.origin_um = fg.origin_um;
  out.provenance = fg.provenance;
}

template <class CostFactory>
void separable_transform(const Volume<std::uint8_t>& fg, const DistanceOptions& o, CostFactory make_cost,
                         Volume<float>& d) {
  prepare_output(fg, d);
  if (fg.empty()) return;
  for (int axis = 0; axis < 3; ++axis) {
    double h = fg.spacing_um[axis];
    pass(fg, d, axis, o.outside_is_background, make_cost(h * h));
  }
}

}  // namespace

Volume<float> squared_distance_transform(const Volume<std::uint8_t>& foreground, const DistanceOptions& options) {
  Volume<float> d;
  squared_distance_transform(foreground, d, options);
  return d;
}

void squared_distance_transform(const Volume<std::uint8_t>& foreground, Volume<float>& out,
                                const DistanceOptions& options) {
  separable_transform(
      foreground, options, [](double h2) { return CentreCost{h2}; }, out);
}

Volume<float> distance_transform(const Volume<std::uint8_t>& foreground, const DistanceOptions& options) {
  Volume<float> d = squared_distance_transform(foreground, options);
  float* p = d.data();
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.size()), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) p[i] = std::sqrt(p[i]);
  });
  return d;
}

Volume<float> squared_distance_to_boundary(const Volume<std::uint8_t>& foreground, const DistanceOptions& options) {
  Volume<float> d;
  squared_distance_to_boundary(foreground, d, options);
  return d;
}

void squared_distance_to_boundary(const Volume<std::uint8_t>& foreground, Volume<float>& out,
                                  const DistanceOptions& options) {
  separable_transform(
      foreground, options, [](double h2) { return BoundaryCost{h2}; }, out);
}

}  // namespace vp
