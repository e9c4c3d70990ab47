#include "filters/preprocess/psf.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>

#include <tbb/parallel_for.h>

#include "core/axis.h"
#include "core/error.h"
#include "core/gaussian.h"
#include "filters/preprocess/denoise.h"
#include "filters/segment/histogram.h"
#include "filters/segment/mixture_model.h"

namespace vp {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kJackknifeGroups = 10;
constexpr double kStudentT9 = 2.262;  // two-sided 95 % quantile, 9 degrees of freedom
// Relative systematic error of the edge model on phantoms (curvature, nearby interfaces, normal
// noise), measured in docs/segmentation.md; added in quadrature to the jackknife half-width.
constexpr double kSystematic = 0.05;
// Variance of a voxel-sampled step against a smooth one, voxels² (see fit_axis).
constexpr double kVoxelSampling = 1.0 / 12;
constexpr double kSmooth[3] = {1, 2, 1};
constexpr double kLateralVariance = 0.5;  // variance of [1 2 1] / 4, voxels²
constexpr double kLateralNoise = 0.375;   // noise σ factor of [1 2 1] ⊗ [1 2 1] / 16: √36 / 16

double phi(double z) { return 0.5 * std::erfc(-z * M_SQRT1_2); }
double phi_density(double z) { return 0.3989422804014327 * std::exp(-0.5 * z * z); }

// One interface profile along a grid line, normalised to rise from 0 to 1.
struct EdgeProfile {
  std::size_t offset = 0;            // first sample in the shared sample buffer
  double crossing = 0;               // where the samples cross 0.5 (linear interpolation), local index
  std::array<double, 3> tangent2{};  // (n_b / n_a)², debiased for the normal's noise; 0 for b = a
  double weight = 1;                 // (step / noise σ)²: residuals in units of the noise
};

constexpr int kMaxHalfWidth = 12;                   // widest profile window: 3σ for σ up to 4 voxels
constexpr int kMaxProfile = 2 * kMaxHalfWidth + 2;  // samples per profile at most

struct EdgeSet {
  int half_width = 4;  // samples per profile: 2·half_width + 2
  std::vector<float> samples;
  std::vector<EdgeProfile> edges;
  int length() const { return 2 * half_width + 2; }
};

struct Strides {
  index_t s[3];
};

}  // namespace

// Where a full estimate's grid lines crossed its midpoints with both plateaus near their levels
// (tolerance + kReuseMargin): a second estimate between nearby levels looks for its edges within
// kReuseReach samples of these instead of smoothing every line of the scan again.
struct PsfCrossings {
  struct Crossing {
    std::int32_t fast = 0, k = 0;  // the line's fast cross coordinate; the sample before the crossing
    std::int32_t pair = 0;         // levels pair, pair + 1
  };
  std::vector<double> levels;
  int half_width = 5;
  std::array<std::vector<Crossing>, 3> crossings;  // per axis, by slow cross coordinate, fast, pair, k
  std::array<std::vector<std::size_t>, 3> first;   // per axis: where each slow coordinate's crossings begin
};

namespace {

// A second estimate's plateau band (its levels' tolerance) lies inside the first's widened by the
// margin where no level moved by more than kReuseShift of the first's smallest step: the new band
// reaches at most 0.12 · 2 · shift + shift = 0.372 steps further. The new crossing lies within
// kReuseReach samples of the old one and its normal within kReuseCosine of the old one's test on
// the phantoms (not by construction: measured, docs/segmentation-studies.md, "A cheap second PSF estimate").
constexpr double kReuseMargin = 0.38;
constexpr double kReuseShift = 0.3;
constexpr int kReuseReach = 2;
constexpr double kReuseCosine = 0.04;

// The cross axes of the grid lines along `axis`, as collect_edges walks them: the fast one (x, or y
// for lines along x) row by row, one task per coordinate of the slow one.
int fast_cross_axis(int axis) { return axis == 0 ? 1 : 0; }
int slow_cross_axis(int axis) { return 3 - axis - fast_cross_axis(axis); }

// Sobel gradient (central difference along b, [1 2 1] smoothing across), divided by 32 so a
// unit ramp gives 1. p must have all 26 neighbours.
std::array<double, 3> sobel(const Volume<float>& g, index_t x, index_t y, index_t z) {
  const Dims d = g.dims();
  const index_t st[3] = {1, d.x, d.x * d.y};
  const index_t p = x + d.x * (y + d.y * z);
  static constexpr double w[3] = {1, 2, 1};
  std::array<double, 3> out{};
  for (int b = 0; b < 3; ++b) {
    const int c1 = (b + 1) % 3, c2 = (b + 2) % 3;
    double acc = 0;
    for (int i = -1; i <= 1; ++i)
      for (int j = -1; j <= 1; ++j) {
        const index_t q = p + i * st[c1] + j * st[c2];
        acc += w[i + 1] * w[j + 1] * (g[q + st[b]] - g[q - st[b]]);
      }
    out[b] = acc / 32;
  }
  return out;
}

// Every usable interface crossing along the grid lines of `axis`; with `from`, only within
// kReuseReach samples of its crossings (a second estimate); `record` keeps this pass's crossings.
EdgeSet collect_edges(const Volume<float>& g, int axis, const std::vector<double>& levels, double noise, int half_width,
                      const PsfOptions& o, const PsfCrossings* from = nullptr, PsfCrossings* record = nullptr) {
  EdgeSet set;
  set.half_width = half_width;
  const int len = set.length();
  const Dims d = g.dims();
  const int ua = (axis + 1) % 3, va = (axis + 2) % 3;  // the two other axes
  const index_t n = d[axis], nu = d[ua], nv = d[va];
  if (n < len + 2 || nu < 3 || nv < 3) return set;
  const index_t st[3] = {1, d.x, d.x * d.y};
  // Noise variance of one Sobel component across the line, averaged over the two voxels that
  // straddle the crossing: σ² · Σw² / 32² with Σw² = 2 · 6 · 5 (the pair average turns the
  // [1 2 1] along the line into [1 3 3 1] / 2).
  const double sobel_noise_var = noise * noise * 60.0 / 1024.0;

  // The crossings of one task: lines at one coordinate of the slow cross axis, all of the fast
  // one (x, or y for lines along x) in ascending order; first[f] is where line f's edges begin.
  struct Found {
    std::vector<float> samples;
    std::vector<EdgeProfile> edges;
    std::vector<std::size_t> first;
    std::vector<PsfCrossings::Crossing> crossings;
  };
  // Lines across x (along y or z) are smoothed a plane at a time: every line at one slow
  // coordinate, row by row along x, so the 3 × 3 average reads whole rows instead of one float per
  // cache line (and per page, along z). Each sample is summed in the same order as one 3 × 3 loop
  // per sample, so the same bits. Lines along x stream along themselves, one at a time.
  const int fast_axis = fast_cross_axis(axis), slow_axis = slow_cross_axis(axis);
  const index_t nf = d[fast_axis], ns = d[slow_axis];
  std::vector<Found> per_slow(static_cast<std::size_t>(ns));
  tbb::parallel_for(index_t{1}, ns - 1, [&](index_t sl) {
    Found& f = per_slow[static_cast<std::size_t>(sl)];
    f.first.assign(static_cast<std::size_t>(nf + 1), 0);
    std::vector<float> plane(static_cast<std::size_t>(axis == 0 ? 0 : n * nf));  // [k][fast] across x
    std::vector<double> acc(static_cast<std::size_t>(axis == 0 ? n : nf));
    std::vector<float> line(static_cast<std::size_t>(n));
    std::vector<float> window(static_cast<std::size_t>(len));
    const index_t along = st[axis];
    // Every usable crossing of one smoothed line between samples k_begin and k_end (clamped to
    // the windows that fit), for level pairs pair_begin … pair_end − 1, appended to the task's list;
    // returns the sample after the last edge's skip (k_begin if none).
    auto detect = [&](index_t u, index_t v, index_t fc, std::size_t pair_begin, std::size_t pair_end, index_t k_begin,
                      index_t k_end) {
      index_t next = k_begin;
      for (std::size_t i = pair_begin; i < pair_end; ++i)
        // Consecutive levels only: the edge of a non-adjacent pair (pore|AM) often hides a film
        // of the phase between (an SE coat thinner than the PSF), which would read as blur.
        for (std::size_t j = i + 1; j < std::min(i + 2, levels.size()); ++j) {
          const double lo = levels[i], step = levels[j] - levels[i], mid = 0.5 * (levels[i] + levels[j]);
          for (index_t k = std::max<index_t>(half_width, k_begin); k + half_width + 1 < n && k < k_end; ++k) {
            const bool rising = line[k] < mid && line[k + 1] >= mid;
            const bool falling = line[k] >= mid && line[k + 1] < mid;
            if (!rising && !falling) continue;
            // Window k − W .. k + W + 1, oriented to rise.
            for (int s = 0; s < len; ++s) {
              const index_t at = rising ? k - half_width + s : k + half_width + 1 - s;
              window[s] = static_cast<float>((line[at] - lo) / step);
            }
            // Both plateaus reached: the three outermost samples on each side lie within the
            // tolerance (or 3 noise σ of the averaged line, if larger) of their level.
            const double tolerance = std::max(o.plateau_tolerance, 3 * kLateralNoise * noise / step);
            bool plateaus = true, near = record != nullptr;
            for (int s = 0; s < 3 && (plateaus || near); ++s) {
              const double d0 = std::fabs(window[s]), d1 = std::fabs(window[len - 1 - s] - 1);
              plateaus = plateaus && d0 <= tolerance && d1 <= tolerance;
              near = near && d0 <= tolerance + kReuseMargin && d1 <= tolerance + kReuseMargin;
            }
            if (!plateaus && !near) continue;
            // Interface normal from the Sobel gradient at the two straddling voxels.
            std::array<index_t, 3> c0{}, c1{};
            c0[axis] = k, c0[ua] = u, c0[va] = v;
            c1 = c0;
            c1[axis] = k + 1;
            const auto g0 = sobel(g, c0[0], c0[1], c0[2]), g1 = sobel(g, c1[0], c1[1], c1[2]);
            std::array<double, 3> grad{};
            for (int b = 0; b < 3; ++b) grad[b] = 0.5 * (g0[b] + g1[b]);
            const double norm2 = grad[0] * grad[0] + grad[1] * grad[1] + grad[2] * grad[2];
            // Kept for a second estimate where the normal nearly passes (the crossing may move a sample).
            const double kept_cosine = o.min_normal_cosine - kReuseCosine;
            if (near && norm2 > 0 && grad[axis] * grad[axis] >= kept_cosine * kept_cosine * norm2)
              f.crossings.push_back(
                  {static_cast<std::int32_t>(fc), static_cast<std::int32_t>(k), static_cast<std::int32_t>(i)});
            if (!plateaus) continue;
            if (!(norm2 > 0) || grad[axis] * grad[axis] < o.min_normal_cosine * o.min_normal_cosine * norm2) continue;
            EdgeProfile e;
            e.offset = f.samples.size();
            const int c = half_width;
            const double y0 = window[c], y1 = window[c + 1];
            e.crossing = (y1 > y0) ? c + std::clamp((0.5 - y0) / (y1 - y0), 0.0, 1.0) : c + 0.5;
            for (int b = 0; b < 3; ++b)
              if (b != axis)
                e.tangent2[b] = std::max(0.0, grad[b] * grad[b] - sobel_noise_var) / (grad[axis] * grad[axis]);
            e.weight = step * step / (kLateralNoise * kLateralNoise * noise * noise);
            f.samples.insert(f.samples.end(), window.begin(), window.end());
            f.edges.push_back(e);
            k += half_width;  // one edge per interface: skip the noise wiggles around this crossing
            next = k + 1;
          }
        }
      return next;
    };
    if (from) {
      // Only the samples near the first estimate's crossings, each smoothed as the full pass does
      // (the same nine products in the same order).
      const std::vector<PsfCrossings::Crossing>& cs = from->crossings[axis];
      const std::size_t b = from->first[axis][static_cast<std::size_t>(sl)],
                        e = from->first[axis][static_cast<std::size_t>(sl) + 1];
      const int reach = kReuseReach + half_width + 1;
      std::vector<index_t> filled(static_cast<std::size_t>(n), -1);  // the line fc whose sample k is in `line`
      std::size_t c = b;
      for (index_t fc = 1; fc + 1 < nf; ++fc) {
        f.first[fc] = f.edges.size();
        const index_t u = fast_axis == ua ? fc : sl, v = fast_axis == ua ? sl : fc;
        const index_t base = u * st[ua] + v * st[va];
        index_t next = 0;  // the sample after the last edge's skip, per pair
        std::int32_t pair = -1;
        for (; c < e && cs[c].fast == fc; ++c) {
          if (cs[c].pair != pair) pair = cs[c].pair, next = 0;
          const index_t at = cs[c].k, k0 = at - kReuseReach, k1 = at + kReuseReach + 1;
          for (index_t k = std::max<index_t>(0, at - reach); k < std::min<index_t>(n, at + reach + 1); ++k) {
            if (filled[k] == fc) continue;
            double acc1 = 0;
            for (int i = -1; i <= 1; ++i)
              for (int j = -1; j <= 1; ++j)
                acc1 += kSmooth[i + 1] * kSmooth[j + 1] * g.data()[base + i * st[ua] + j * st[va] + k * along];
            line[k] = static_cast<float>(acc1 / 16);
            filled[k] = fc;
          }
          next = detect(u, v, fc, static_cast<std::size_t>(pair), static_cast<std::size_t>(pair) + 1,
                        std::max(next, k0), k1);
        }
      }
      f.first[nf - 1] = f.first[nf] = f.edges.size();
      return;
    }
    if (axis != 0) {
      // The plane of lines at this slow coordinate: row k holds sample k of every line.
      for (index_t k = 0; k < n; ++k) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int i = -1; i <= 1; ++i)
          for (int j = -1; j <= 1; ++j) {
            const double w = kSmooth[i + 1] * kSmooth[j + 1];
            const index_t cross = i * st[ua] + j * st[va] + sl * st[slow_axis] + k * along;
            const float* src = g.data() + cross;
            for (index_t x = 1; x + 1 < nf; ++x) acc[x] += w * src[x];
          }
        for (index_t x = 1; x + 1 < nf; ++x) plane[k * nf + x] = static_cast<float>(acc[x] / 16);
      }
    }
    for (index_t fc = 1; fc + 1 < nf; ++fc) {
      f.first[fc] = f.edges.size();
      const index_t u = fast_axis == ua ? fc : sl, v = fast_axis == ua ? sl : fc;
      // The line averaged with [1 2 1] ⊗ [1 2 1] / 16 across: noise × 0.375, and for an
      // interface normal to the line the profile is unchanged (obliquity: see edge_width).
      if (axis == 0) {
        const index_t base = u * st[ua] + v * st[va];
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int i = -1; i <= 1; ++i)
          for (int j = -1; j <= 1; ++j) {
            const double w = kSmooth[i + 1] * kSmooth[j + 1];
            const float* src = g.data() + base + i * st[ua] + j * st[va];
            for (index_t k = 0; k < n; ++k) acc[k] += w * src[k];
          }
        for (index_t k = 0; k < n; ++k) line[k] = static_cast<float>(acc[k] / 16);
      } else {
        for (index_t k = 0; k < n; ++k) line[k] = plane[k * nf + fc];
      }
      detect(u, v, fc, 0, levels.size(), 0, n);
    }
    f.first[nf - 1] = f.first[nf] = f.edges.size();
  });
  // All edges in line order (v, then u), whichever cross axis the tasks ran over.
  auto for_each_edge = [&](auto&& visit) {
    if (slow_axis == va) {
      for (const Found& f : per_slow)
        for (const EdgeProfile& e : f.edges) visit(f, e);
      return;
    }
    for (index_t v = 1; v + 1 < nv; ++v)
      for (index_t u = 1; u + 1 < nu; ++u) {
        const Found& f = per_slow[static_cast<std::size_t>(u)];
        for (std::size_t e = f.first[v]; e < f.first[v + 1]; ++e) visit(f, f.edges[e]);
      }
  };
  if (record) {
    std::vector<PsfCrossings::Crossing>& out = record->crossings[axis];
    std::vector<std::size_t>& first = record->first[axis];
    std::size_t kept = 0;
    for (const Found& f : per_slow) kept += f.crossings.size();
    out.clear(), first.assign(static_cast<std::size_t>(ns + 1), 0);
    out.reserve(kept);  // held until the second estimate: no spare capacity
    for (index_t sl = 0; sl < ns; ++sl) {
      first[static_cast<std::size_t>(sl)] = out.size();
      const Found& f = per_slow[static_cast<std::size_t>(sl)];
      out.insert(out.end(), f.crossings.begin(), f.crossings.end());
    }
    first[static_cast<std::size_t>(ns)] = out.size();
  }
  std::size_t total = 0;
  for (const Found& f : per_slow) total += f.edges.size();
  // Thin evenly (deterministically) beyond the cap.
  const std::size_t keep = std::min(total, o.max_edges_per_axis);
  set.edges.reserve(keep);
  set.samples.reserve(keep * static_cast<std::size_t>(len));
  std::size_t index = 0;
  for_each_edge([&](const Found& f, const EdgeProfile& e) {
    const bool take = keep == total || (index * keep) / total != ((index + 1) * keep) / total;
    ++index;
    if (!take) return;
    EdgeProfile copy = e;
    copy.offset = set.samples.size();
    set.samples.insert(set.samples.end(), f.samples.begin() + static_cast<std::ptrdiff_t>(e.offset),
                       f.samples.begin() + static_cast<std::ptrdiff_t>(e.offset + static_cast<std::size_t>(len)));
    set.edges.push_back(copy);
  });
  return set;
}

// Least-squares fit of one profile for a given width s: position t0 (Gauss–Newton from `t0`) and
// its two plateau levels (linear, so solved exactly at each step; a nearby interface that
// tilts a plateau then shifts a level instead of widening the edge). Returns the residual sum
// of squares and updates t0.
double fit_position(const float* y, int len, double s, double& t0) {
  double lo = 0, step = 1, rss = 0;
  double p[kMaxProfile];  // Φ at each sample for the current t0: erfc is most of the fit's time
  for (int it = 0; it <= 4; ++it) {
    // Levels for the current t0: regression of y on Φ.
    double sp = 0, spp = 0, sy = 0, spy = 0;
    for (int k = 0; k < len; ++k) {
      p[k] = phi((k - t0) / s);
      sp += p[k], spp += p[k] * p[k], sy += y[k], spy += p[k] * y[k];
    }
    const double det = len * spp - sp * sp;
    if (det > 1e-12) {
      step = (len * spy - sp * sy) / det;
      lo = (sy - step * sp) / len;
    }
    rss = 0;
    if (it == 4) {  // the last step needs the residual only
      for (int k = 0; k < len; ++k) {
        const double r = y[k] - lo - step * p[k];
        rss += r * r;
      }
      break;
    }
    double num = 0, den = 0;
    for (int k = 0; k < len; ++k) {
      const double z = (k - t0) / s;
      const double r = y[k] - lo - step * p[k];
      const double jac = step * phi_density(z) / s;  // −∂r/∂t0
      num += r * jac, den += jac * jac, rss += r * r;
    }
    if (!(den > 0)) break;
    t0 = std::clamp(t0 - num / den, 1.0, len - 2.0);
  }
  return rss;
}

double edge_width(const EdgeProfile& e, int axis, double sigma_axis, const std::array<double, 3>& sigma) {
  double s2 = sigma_axis * sigma_axis;
  for (int b = 0; b < 3; ++b)
    if (b != axis) s2 += e.tangent2[b] * (sigma[b] * sigma[b] + kLateralVariance);
  return std::sqrt(s2);
}

// Weighted residual per edge at σ_a (positions refitted from `positions`, which are updated).
void edge_costs(const EdgeSet& set, const std::vector<char>& used, int axis, double sigma_axis,
                const std::array<double, 3>& sigma, std::vector<double>& positions, std::vector<double>& cost) {
  const int len = set.length();
  tbb::parallel_for(std::size_t{0}, set.edges.size(), [&](std::size_t i) {
    if (!used[i]) {
      cost[i] = 0;
      return;
    }
    const EdgeProfile& e = set.edges[i];
    cost[i] = e.weight *
              fit_position(set.samples.data() + e.offset, len, edge_width(e, axis, sigma_axis, sigma), positions[i]);
  });
}

// Minimum of a sampled curve: parabola through the lowest grid point and its neighbours.
double parabolic_minimum(const std::vector<double>& x, const std::vector<double>& f) {
  const std::size_t m = static_cast<std::size_t>(std::min_element(f.begin(), f.end()) - f.begin());
  if (m == 0 || m + 1 == f.size()) return x[m];
  const double x0 = x[m - 1], x1 = x[m], x2 = x[m + 1], f0 = f[m - 1], f1 = f[m], f2 = f[m + 1];
  const double num = (x1 - x0) * (x1 - x0) * (f1 - f2) - (x1 - x2) * (x1 - x2) * (f1 - f0);
  const double den = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0);
  if (!(std::fabs(den) > 0)) return x1;
  return std::clamp(x1 - 0.5 * num / den, x0, x2);
}

struct AxisFit {
  double sigma = kNaN, ci95 = kNaN;
  std::size_t edges = 0;
};

// σ of one axis: golden-section search of the profile cost over [lo, hi], then (last sweep) a fine
// grid around its minimum that also yields the leave-one-group-out minima of the jackknife. With
// lo = hi (a start σ, no search) the grid is centred on it and moved while its minimum lies on an end.
AxisFit fit_axis(const EdgeSet& set, std::vector<char>& used, int axis, const std::array<double, 3>& sigma, double lo,
                 double hi, bool reject_outliers, bool jackknife) {
  AxisFit fit;
  const std::size_t ne = set.edges.size();
  std::vector<double> positions(ne), cost(ne);
  for (std::size_t i = 0; i < ne; ++i) positions[i] = set.edges[i].crossing;
  auto count_used = [&] { return static_cast<std::size_t>(std::count(used.begin(), used.end(), 1)); };
  auto total_at = [&](double s) {
    edge_costs(set, used, axis, s, sigma, positions, cost);
    return std::accumulate(cost.begin(), cost.end(), 0.0);
  };

  const bool search = lo < hi;
  double best = lo;
  if (search) {
    const double ratio = 0.6180339887498949;
    double a = lo, b = hi, c = b - ratio * (b - a), d = a + ratio * (b - a);
    double fc = total_at(c), fd = total_at(d);
    while (b - a > 2e-3 * (a + b)) {
      if (fc < fd) b = d, d = c, fd = fc, c = b - ratio * (b - a), fc = total_at(c);
      else a = c, c = d, fc = fd, d = a + ratio * (b - a), fd = total_at(d);
    }
    best = 0.5 * (a + b);
  }
  fit.sigma = best;

  if (reject_outliers) {
    // χ² bound on each profile's residual (dof ≈ samples − 1), or 3 × the median when the noise
    // is below the model's own misfit (noise-free scans).
    total_at(best);
    std::vector<double> c2;
    for (std::size_t i = 0; i < ne; ++i)
      if (used[i]) c2.push_back(cost[i]);
    if (!c2.empty()) {
      auto mid = c2.begin() + static_cast<std::ptrdiff_t>(c2.size() / 2);
      std::nth_element(c2.begin(), mid, c2.end());
      const double dof = set.length() - 3;
      const double bound = std::max(dof + 4.5 * std::sqrt(2 * dof), 3 * *mid);
      for (std::size_t i = 0; i < ne; ++i)
        if (used[i] && cost[i] > bound) used[i] = 0;
    }
  }
  fit.edges = count_used();
  if (fit.edges == 0 || !jackknife) return fit;

  // Fine grid ±8 % in 1 % steps, per jackknife group.
  std::vector<double> fine;
  std::vector<std::vector<double>> group_cost;
  std::vector<double> full;
  // Without a search the start may be off by more than the grid: move the grid onto an end
  // minimum (a few times at most: the start is an estimate of the same scan).
  for (int moves = 0;; ++moves) {
    fine.clear();
    // (±8 % in 2 % steps without a search: half the fits, the parabola through three of them.)
    for (int i = -8; i <= 8; i += search ? 1 : 2) fine.push_back(best * (1 + 0.01 * i));
    group_cost.assign(kJackknifeGroups, std::vector<double>(fine.size(), 0.0));
    full.assign(fine.size(), 0.0);
    for (std::size_t i = 0; i < ne; ++i) positions[i] = set.edges[i].crossing;
    for (std::size_t s = 0; s < fine.size(); ++s) {
      edge_costs(set, used, axis, fine[s], sigma, positions, cost);
      std::size_t rank = 0;
      for (std::size_t i = 0; i < ne; ++i)
        if (used[i]) group_cost[rank++ % kJackknifeGroups][s] += cost[i];
      for (int gi = 0; gi < kJackknifeGroups; ++gi) full[s] += group_cost[gi][s];
    }
    const std::size_t m = static_cast<std::size_t>(std::min_element(full.begin(), full.end()) - full.begin());
    if (search || moves == 3 || (m != 0 && m + 1 != fine.size()) || !(fine[m] > 0.15 && fine[m] < 6.0)) break;
    best = fine[m];
  }
  fit.sigma = parabolic_minimum(fine, full);
  std::vector<double> loo(kJackknifeGroups);
  for (int gi = 0; gi < kJackknifeGroups; ++gi) {
    std::vector<double> rest(fine.size());
    for (std::size_t s = 0; s < fine.size(); ++s) rest[s] = full[s] - group_cost[gi][s];
    loo[gi] = parabolic_minimum(fine, rest);
  }
  const double mean = std::accumulate(loo.begin(), loo.end(), 0.0) / kJackknifeGroups;
  double ss = 0;
  for (double v : loo) ss += (v - mean) * (v - mean);
  const double statistical = kStudentT9 * std::sqrt((kJackknifeGroups - 1.0) / kJackknifeGroups * ss);
  // The edge model cannot tell a voxel-quantised pure-phase image (each line's step on a voxel
  // boundary: s² = σ² − 1/12 on faces along the grid) from a smooth one: that ambiguity in s², as σ.
  const double sampling = kVoxelSampling / (2 * fit.sigma);
  fit.ci95 = std::sqrt(statistical * statistical + std::pow(kSystematic * fit.sigma, 2) + sampling * sampling);
  return fit;
}

}  // namespace

PsfEstimate estimate_psf(const Volume<float>& grey, const std::vector<double>& class_means) {
  return estimate_psf(grey, class_means, PsfOptions{});
}

PsfEstimate estimate_psf(const Volume<float>& grey, const std::vector<double>& class_means, const PsfOptions& o) {
  if (class_means.size() < 2) throw InputError("psf: expected at least two pure-phase grey levels");
  std::vector<double> levels = class_means;
  std::sort(levels.begin(), levels.end());
  for (std::size_t i = 0; i + 1 < levels.size(); ++i)
    if (!(levels[i + 1] > levels[i]) || !std::isfinite(levels[i]) || !std::isfinite(levels[i + 1]))
      throw InputError("psf: the pure-phase grey levels must be finite and distinct");
  PsfEstimate est;
  double min_step = levels[1] - levels[0];
  for (std::size_t i = 0; i + 1 < levels.size(); ++i) min_step = std::min(min_step, levels[i + 1] - levels[i]);
  est.noise_sigma = o.noise_sigma > 0 ? o.noise_sigma : estimate_noise_sigma(grey);
  // Noise-free or integer-rounded scans: rounding alone leaves 1/√12 grey levels.
  const double noise = std::max({est.noise_sigma, 1e-3 * min_step, 1 / std::sqrt(12.0)});

  std::array<double, 3> sigma{1, 1, 1};
  std::array<AxisFit, 3> fits;
  int half_width = 5;
  const std::array<double, 3>& start = o.start_sigma_vox;
  const bool warm = std::all_of(start.begin(), start.end(), [](double s) { return std::isfinite(s) && s > 0; });
  // The first estimate's crossings serve where every level moved by less than kReuseShift of its
  // smallest step (then every edge this estimate accepts lies near one of them).
  const PsfCrossings* from = warm ? o.start_crossings.get() : nullptr;
  if (from) {
    const std::vector<double>& old = from->levels;
    bool near = old.size() == levels.size();
    double old_step = near ? old[1] - old[0] : 0;
    for (std::size_t i = 0; near && i + 1 < old.size(); ++i) old_step = std::min(old_step, old[i + 1] - old[i]);
    for (std::size_t i = 0; near && i < old.size(); ++i) near = std::fabs(levels[i] - old[i]) <= kReuseShift * old_step;
    for (int a = 0; near && a < 3; ++a)
      near = from->first[a].size() == static_cast<std::size_t>(grey.dims()[slow_cross_axis(a)]) + 1;
    if (!near) from = nullptr;
  }
  std::shared_ptr<PsfCrossings> record;
  if (o.keep_crossings) record = std::make_shared<PsfCrossings>();
  if (warm) {
    // The window the full estimate's last round used (or would use for this σ), and one sweep from it.
    sigma = start;
    half_width = from ? from->half_width
                      : std::clamp(static_cast<int>(std::ceil(3 * *std::max_element(start.begin(), start.end()))), 5,
                                   kMaxHalfWidth);
    for (int a = 0; a < 3; ++a) {
      const EdgeSet set = collect_edges(grey, a, levels, noise, half_width, o, from);
      std::vector<char> used(set.edges.size(), 1);
      fits[a] = set.edges.size() < o.min_edges ? AxisFit{kNaN, kNaN, set.edges.size()}
                                               : fit_axis(set, used, a, start, start[a], start[a], true, true);
    }
  }
  for (int round = 0; round < 2 && !warm; ++round) {
    std::array<EdgeSet, 3> sets;
    std::array<std::vector<char>, 3> used;
    for (int a = 0; a < 3; ++a) {
      sets[a] = collect_edges(grey, a, levels, noise, half_width, o, nullptr, record.get());
      used[a].assign(sets[a].edges.size(), 1);
    }
    // Sweep 1 ignores the oblique term (other σ unknown) and drops outliers; sweeps 2–3 use the
    // other axes' σ from the sweep before.
    for (int sweep = 0; sweep < 3; ++sweep) {
      std::array<double, 3> basis = sweep == 0 ? std::array<double, 3>{0, 0, 0} : sigma;
      for (int a = 0; a < 3; ++a) {
        if (sets[a].edges.size() < o.min_edges) {
          fits[a] = AxisFit{kNaN, kNaN, sets[a].edges.size()};
          continue;
        }
        const double lo = sweep == 0 ? 0.15 : 0.8 * sigma[a], hi = sweep == 0 ? 6.0 : 1.25 * sigma[a];
        fits[a] = fit_axis(sets[a], used[a], a, basis, lo, hi, sweep == 0, sweep == 2);
      }
      for (int a = 0; a < 3; ++a) {
        // An axis without its own edges borrows the mean of the others for the oblique term.
        double fallback = 0;
        int count = 0;
        for (int b = 0; b < 3; ++b)
          if (std::isfinite(fits[b].sigma)) fallback += fits[b].sigma, ++count;
        sigma[a] = std::isfinite(fits[a].sigma) ? fits[a].sigma : (count ? fallback / count : 1.0);
      }
    }
    // The window must reach the plateaus: 3σ each side.
    double widest = 0;
    for (int a = 0; a < 3; ++a)
      if (std::isfinite(fits[a].sigma)) widest = std::max(widest, fits[a].sigma);
    const int needed = std::min(kMaxHalfWidth, static_cast<int>(std::ceil(3 * widest)));
    if (needed <= half_width) break;
    half_width = needed;
  }

  if (record && !warm) {
    record->levels = levels;
    record->half_width = half_width;  // the last round's: `needed` above stays within it
    est.crossings = std::move(record);
  }
  std::string problems;
  for (int a = 0; a < 3; ++a) {
    const bool few = fits[a].edges < o.min_edges;
    est.sigma_vox[a] = few ? kNaN : fits[a].sigma;
    est.ci95_vox[a] = few ? kNaN : fits[a].ci95;
    est.edges[a] = fits[a].edges;
    if (few)
      problems += std::string(problems.empty() ? "" : "; ") + "axis " + kAxisNames[a] + ": " +
                  std::to_string(fits[a].edges) + " usable interface profiles (need " + std::to_string(o.min_edges) +
                  ")";
    else if (est.sigma_vox[a] < 0.2 || est.sigma_vox[a] > 5.5)
      problems += std::string(problems.empty() ? "" : "; ") + "axis " + kAxisNames[a] +
                  ": σ at the edge of the fitted range 0.15–6 voxels";
  }
  est.status = problems.empty() ? "ok" : problems;
  return est;
}

std::vector<double> pure_phase_levels(const Volume<float>& grey, int classes) {
  if (classes < 2) throw InputError("psf: expected at least two classes");
  return fit_partial_volume_mixture(histogram(grey, 256), classes).means;
}

Volume<float> gaussian_blur(const Volume<float>& grey, const std::array<double, 3>& sigma_vox) {
  Volume<float> v = grey;
  for (int axis = 0; axis < 3; ++axis) gaussian_blur_axis(v, axis, sigma_vox[axis], 4.0);
  return v;
}

Volume<float> richardson_lucy(const Volume<float>& grey, const std::array<double, 3>& sigma_vox, int iterations) {
  if (iterations < 1) throw InputError("deconvolution: iterations must be ≥ 1, got " + std::to_string(iterations));
  for (int a = 0; a < 3; ++a)
    if (!(sigma_vox[a] >= 0) || !std::isfinite(sigma_vox[a]))
      throw InputError(std::string("deconvolution: PSF σ along ") + kAxisNames[a] + " must be a finite number ≥ 0");
  // Shift so the darkest voxel sits at 5 % of the range: RL multiplies, so it needs d > 0.
  const auto [mn, mx] = std::minmax_element(grey.storage().begin(), grey.storage().end());
  const double range = std::max(1e-6, static_cast<double>(*mx - *mn));
  const double shift = 0.05 * range - *mn;
  Volume<float> data = grey;
  for (float& v : data.storage()) v = static_cast<float>(v + shift);
  Volume<float> u = data;
  Volume<float> ratio = data.like<float>(data.dims());
  for (int it = 0; it < iterations; ++it) {
    const Volume<float> predicted = gaussian_blur(u, sigma_vox);
    tbb::parallel_for(index_t{0}, data.size(),
                      [&](index_t i) { ratio[i] = predicted[i] > 0 ? data[i] / predicted[i] : 1.0f; });
    const Volume<float> correction = gaussian_blur(ratio, sigma_vox);
    tbb::parallel_for(index_t{0}, data.size(), [&](index_t i) { u[i] *= correction[i]; });
  }
  for (float& v : u.storage()) v = static_cast<float>(v - shift);
  return u;
}

}  // namespace vp
