#include "filters/segment/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <deque>
#include <limits>
#include <numeric>
#include <string>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"

namespace vp {

std::size_t Histogram::bin_of(double v) const {
  const double f = (v - lo) / bin_width();
  if (!(f > 0)) return 0;
  const auto b = static_cast<std::size_t>(f);
  return std::min(b, counts.size() - 1);
}

double Histogram::total() const { return std::accumulate(counts.begin(), counts.end(), 0.0); }

Histogram histogram(const Volume<float>& grey, int bins) {
  if (grey.empty()) throw InputError("histogram: empty volume");
  const auto [mn, mx] = std::minmax_element(grey.storage().begin(), grey.storage().end());
  double lo = *mn, hi = *mx;
  // Integer grey values (8/16-bit scans, or a median of them) spanning fewer levels than bins:
  // one bin per level, centred on it. Finer bins would leave a comb of empty bins, on which
  // a mixture fit collapses its components onto single levels.
  const bool integral =
      std::all_of(grey.storage().begin(), grey.storage().end(), [](float v) { return std::floor(v) == v; });
  if (integral && hi - lo + 1 <= bins) return histogram(grey, static_cast<int>(hi - lo + 1), lo - 0.5, hi + 0.5);
  if (!(hi > lo)) hi = lo + 1;
  return histogram(grey, bins, lo, hi);
}

Histogram histogram(const Volume<float>& grey, int bins, double lo, double hi) {
  if (bins < 2) throw InputError("histogram: bins must be >= 2, got " + std::to_string(bins));
  if (!(hi > lo))
    throw InputError("histogram: range [" + std::to_string(lo) + ", " + std::to_string(hi) + "] is empty");
  Histogram h;
  h.lo = lo;
  h.hi = hi;
  h.counts.assign(static_cast<std::size_t>(bins), 0.0);
  // Integer counts per chunk, summed in a fixed order: exact and deterministic.
  using Counts = std::vector<std::int64_t>;
  const float* d = grey.data();
  Counts total = tbb::parallel_reduce(
      tbb::blocked_range<index_t>(0, grey.size(), 1 << 16), Counts(h.counts.size(), 0),
      [&](const tbb::blocked_range<index_t>& r, Counts acc) {
        for (index_t i = r.begin(); i != r.end(); ++i) ++acc[h.bin_of(d[i])];
        return acc;
      },
      [](Counts a, const Counts& b) {
        for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
        return a;
      });
  for (std::size_t i = 0; i < total.size(); ++i) h.counts[i] = static_cast<double>(total[i]);
  return h;
}

Volume<std::uint8_t> apply_thresholds(const Volume<float>& grey, const std::vector<double>& thresholds) {
  for (std::size_t i = 1; i < thresholds.size(); ++i)
    if (!(thresholds[i] > thresholds[i - 1]))
      throw InputError("thresholds must be strictly ascending; got " + std::to_string(thresholds[i - 1]) + " then " +
                       std::to_string(thresholds[i]));
  if (thresholds.size() > 255) throw InputError("at most 255 thresholds (256 labels)");
  Volume<std::uint8_t> out = grey.like<std::uint8_t>(grey.dims());
  const float* g = grey.data();
  std::uint8_t* o = out.data();
  tbb::parallel_for(tbb::blocked_range<index_t>(0, grey.size(), 1 << 14), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) {
      const double v = g[i];
      o[i] = static_cast<std::uint8_t>(std::upper_bound(thresholds.begin(), thresholds.end(), v) - thresholds.begin());
    }
  });
  return out;
}

namespace {

// Where a class boundary falls inside a run of empty bins, put the threshold mid-run:
// the split is equally optimal anywhere in the gap and the middle is the robust choice.
double boundary_threshold(const Histogram& h, std::size_t first_upper_bin) {
  std::size_t a = first_upper_bin, b = first_upper_bin;
  while (a > 0 && h.counts[a - 1] == 0) --a;
  while (b < h.counts.size() && h.counts[b] == 0) ++b;
  if (a == b) return h.lo + static_cast<double>(first_upper_bin) * h.bin_width();
  // Empty bins [a, b): any edge from a to b separates the same voxels.
  return h.lo + 0.5 * static_cast<double>(a + b) * h.bin_width();
}

}  // namespace

std::vector<double> otsu_thresholds(const Histogram& h, int classes) {
  const std::size_t n = h.counts.size();
  if (classes < 2) throw InputError("multi-Otsu: classes must be >= 2, got " + std::to_string(classes));
  if (static_cast<std::size_t>(classes) > n) throw InputError("multi-Otsu: more classes than histogram bins");
  // Prefix sums; class [a, b) contributes S^2 / W to the between-class variance (up to constants).
  std::vector<double> W(n + 1, 0.0), S(n + 1, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    W[i + 1] = W[i] + h.counts[i];
    S[i + 1] = S[i] + h.counts[i] * h.centre(i);
  }
  auto score = [&](std::size_t a, std::size_t b) {
    const double w = W[b] - W[a];
    if (w <= 0) return 0.0;
    const double s = S[b] - S[a];
    return s * s / w;
  };
  const double neg = -std::numeric_limits<double>::infinity();
  const auto k = static_cast<std::size_t>(classes);
  // best[j][b]: best score splitting bins [0, b) into j+1 classes; from[j][b]: start of the last class.
  std::vector<std::vector<double>> best(k, std::vector<double>(n + 1, neg));
  std::vector<std::vector<std::size_t>> from(k, std::vector<std::size_t>(n + 1, 0));
  for (std::size_t b = 1; b <= n; ++b) best[0][b] = score(0, b);
  for (std::size_t j = 1; j < k; ++j)
    for (std::size_t b = j + 1; b <= n; ++b)
      for (std::size_t a = j; a < b; ++a) {
        const double v = best[j - 1][a] + score(a, b);
        if (v > best[j][b]) {  // strict: the first of equal splits wins (deterministic)
          best[j][b] = v;
          from[j][b] = a;
        }
      }
  std::vector<std::size_t> starts(k - 1);
  std::size_t b = n;
  for (std::size_t j = k - 1; j >= 1; --j) {
    starts[j - 1] = from[j][b];
    b = from[j][b];
  }
  std::vector<double> t;
  for (std::size_t s : starts) t.push_back(boundary_threshold(h, s));
  for (std::size_t i = 1; i < t.size(); ++i)
    if (!(t[i] > t[i - 1])) t[i] = std::nextafter(t[i - 1], std::numeric_limits<double>::infinity());
  return t;
}

KMeansFit kmeans_intensity(const Histogram& h, int classes, int max_iterations) {
  if (classes < 2) throw InputError("k-means: classes must be >= 2, got " + std::to_string(classes));
  const std::size_t n = h.counts.size();
  const double total = h.total();
  KMeansFit fit;
  // Start from the class means of equal-count quantile slices.
  fit.centres.assign(static_cast<std::size_t>(classes), 0.0);
  {
    std::vector<double> w(classes, 0.0), s(classes, 0.0);
    double cum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double mid = cum + 0.5 * h.counts[i];
      const int c = std::min(classes - 1, static_cast<int>(mid / total * classes));
      w[c] += h.counts[i];
      s[c] += h.counts[i] * h.centre(i);
      cum += h.counts[i];
    }
    for (int c = 0; c < classes; ++c)
      fit.centres[c] = w[c] > 0 ? s[c] / w[c] : h.lo + (c + 0.5) * (h.hi - h.lo) / classes;
    std::sort(fit.centres.begin(), fit.centres.end());
  }
  for (fit.iterations = 0; fit.iterations < max_iterations; ++fit.iterations) {
    std::vector<double> w(classes, 0.0), s(classes, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      const double x = h.centre(i);
      int c = 0;
      for (int j = 1; j < classes; ++j)
        if (std::abs(x - fit.centres[j]) < std::abs(x - fit.centres[c])) c = j;
      w[c] += h.counts[i];
      s[c] += h.counts[i] * x;
    }
    std::vector<double> next = fit.centres;
    for (int c = 0; c < classes; ++c)
      if (w[c] > 0) next[c] = s[c] / w[c];
    std::sort(next.begin(), next.end());
    const bool same = next == fit.centres;
    fit.centres = next;
    if (same) break;
  }
  fit.thresholds.clear();
  for (int c = 1; c < classes; ++c) fit.thresholds.push_back(0.5 * (fit.centres[c - 1] + fit.centres[c]));
  for (std::size_t i = 1; i < fit.thresholds.size(); ++i)
    if (!(fit.thresholds[i] > fit.thresholds[i - 1]))
      throw ComputeError("k-means: two intensity centres coincide; fewer distinct grey levels than classes");
  return fit;
}

double GaussianMixture::density(std::size_t c, double x) const {
  const double z = (x - means[c]) / sigmas[c];
  return weights[c] * std::exp(-0.5 * z * z) / (sigmas[c] * std::sqrt(2 * M_PI));
}

int GaussianMixture::classify(double x) const {
  // Compare log densities: far in the tails the plain densities underflow to 0.
  int best = 0;
  double best_v = -std::numeric_limits<double>::infinity();
  for (std::size_t c = 0; c < means.size(); ++c) {
    const double z = (x - means[c]) / sigmas[c];
    const double v = std::log(weights[c]) - std::log(sigmas[c]) - 0.5 * z * z;
    if (v > best_v) {
      best_v = v;
      best = static_cast<int>(c);
    }
  }
  return best;
}

std::vector<double> GaussianMixture::boundaries(double lo, double hi, int samples) const {
  std::vector<double> out;
  int prev = classify(lo);
  for (int i = 1; i <= samples; ++i) {
    const double x = lo + (hi - lo) * i / samples;
    const int c = classify(x);
    if (c != prev) {
      // Bisect the change to full precision.
      double a = lo + (hi - lo) * (i - 1) / samples, b = x;
      for (int it = 0; it < 60; ++it) {
        const double m = 0.5 * (a + b);
        (classify(m) == prev ? a : b) = m;
      }
      out.push_back(0.5 * (a + b));
      prev = c;
    }
  }
  return out;
}

GaussianMixture fit_gaussian_mixture(const Histogram& h, int classes, int max_iterations, double tolerance) {
  const std::size_t n = h.counts.size();
  const auto k = static_cast<std::size_t>(classes);
  const double total = h.total();
  // A component narrower than a bin is not resolved by the histogram.
  const double min_sigma = 0.5 * h.bin_width();
  GaussianMixture g;
  {
    const std::vector<double> t = otsu_thresholds(h, classes);
    std::vector<double> w(k, 0), s(k, 0), ss(k, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const double x = h.centre(i);
      const std::size_t c = static_cast<std::size_t>(std::upper_bound(t.begin(), t.end(), x) - t.begin());
      w[c] += h.counts[i];
      s[c] += h.counts[i] * x;
      ss[c] += h.counts[i] * x * x;
    }
    for (std::size_t c = 0; c < k; ++c) {
      const double m = w[c] > 0 ? s[c] / w[c] : h.lo + (c + 0.5) * (h.hi - h.lo) / k;
      const double var = w[c] > 0 ? ss[c] / w[c] - m * m : 0;
      g.weights.push_back(std::max(w[c], 1.0) / total);
      g.means.push_back(m);
      g.sigmas.push_back(std::max(std::sqrt(std::max(var, 0.0)), min_sigma));
    }
  }
  double prev_ll = -std::numeric_limits<double>::infinity();
  std::vector<double> resp(k);
  for (g.iterations = 0; g.iterations < max_iterations; ++g.iterations) {
    std::vector<double> w(k, 0), s(k, 0), ss(k, 0);
    double ll = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (h.counts[i] == 0) continue;
      const double x = h.centre(i);
      double sum = 0;
      for (std::size_t c = 0; c < k; ++c) sum += resp[c] = g.density(c, x);
      if (sum <= 0) {  // far outside every component: give it to the nearest mean
        std::size_t c = g.classify(x);
        std::fill(resp.begin(), resp.end(), 0.0);
        resp[c] = sum = 1;
      } else {
        ll += h.counts[i] * std::log(sum);
      }
      for (std::size_t c = 0; c < k; ++c) {
        const double r = h.counts[i] * resp[c] / sum;
        w[c] += r;
        s[c] += r * x;
        ss[c] += r * x * x;
      }
    }
    for (std::size_t c = 0; c < k; ++c) {
      if (w[c] <= 0) continue;
      g.weights[c] = w[c] / total;
      g.means[c] = s[c] / w[c];
      g.sigmas[c] = std::max(std::sqrt(std::max(ss[c] / w[c] - g.means[c] * g.means[c], 0.0)), min_sigma);
    }
    g.log_likelihood = ll / total;
    if (std::abs(ll - prev_ll) <= tolerance * std::abs(ll)) break;
    prev_ll = ll;
  }
  // Ascending means so that label 0 is the darkest component.
  std::vector<std::size_t> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return g.means[a] < g.means[b]; });
  GaussianMixture sorted = g;
  for (std::size_t c = 0; c < k; ++c) {
    sorted.weights[c] = g.weights[order[c]];
    sorted.means[c] = g.means[order[c]];
    sorted.sigmas[c] = g.sigmas[order[c]];
  }
  return sorted;
}

Volume<std::uint8_t> classify_mixture(const Volume<float>& grey, const GaussianMixture& mixture) {
  Volume<std::uint8_t> out = grey.like<std::uint8_t>(grey.dims());
  const float* g = grey.data();
  std::uint8_t* o = out.data();
  tbb::parallel_for(tbb::blocked_range<index_t>(0, grey.size(), 1 << 14), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) o[i] = static_cast<std::uint8_t>(mixture.classify(g[i]));
  });
  return out;
}

Volume<std::uint8_t> hysteresis_threshold(const Volume<float>& grey, double low, double high, int connectivity) {
  if (!(high >= low)) throw InputError("hysteresis: high threshold must be >= low threshold");
  if (connectivity != 6 && connectivity != 26) throw InputError("hysteresis: connectivity must be 6 or 26");
  const Dims d = grey.dims();
  Volume<std::uint8_t> out = grey.like<std::uint8_t>(d);
  std::deque<index_t> queue;
  for (index_t i = 0; i < grey.size(); ++i)
    if (grey[i] >= high) {
      out[i] = 1;
      queue.push_back(i);
    }
  while (!queue.empty()) {
    const index_t i = queue.front();
    queue.pop_front();
    const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
    for (int dz = -1; dz <= 1; ++dz)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int manhattan = std::abs(dx) + std::abs(dy) + std::abs(dz);
          if (manhattan == 0 || (connectivity == 6 && manhattan != 1)) continue;
          const index_t nx = x + dx, ny = y + dy, nz = z + dz;
          if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
          const index_t j = grey.index(nx, ny, nz);
          if (!out[j] && grey[j] >= low) {
            out[j] = 1;
            queue.push_back(j);
          }
        }
  }
  return out;
}

namespace {

// Unsigned keys in the order of the floats: negative values flipped, positive ones above them.
std::uint32_t order_key(float v) {
  const auto u = std::bit_cast<std::uint32_t>(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

float from_order_key(std::uint32_t key) {
  return std::bit_cast<float>((key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key);
}

}  // namespace

OrderStatistic order_statistic(index_t rows, index_t width, std::int64_t k,
                               const std::function<void(index_t, float*)>& row) {
  if (rows <= 0 || width <= 0 || k < 0 || k >= rows * width)
    throw InputError("order statistic: rank " + std::to_string(k) + " outside " + std::to_string(rows * width) +
                     " values");
  using Counts = std::vector<std::int64_t>;
  bool nan = false;
  // Radix select on the keys, most significant field first: bins of 12, 12 and 8 bits (tables of
  // 32 KB that stay in L1), each pass counting only the keys under the prefix found so far.
  std::uint32_t prefix = 0;
  int known = 0;  // leading bits of the answer's key found
  std::int64_t rank = k, equal = 0;
  for (const int bits : {12, 12, 8}) {
    const int shift = 32 - known - bits;
    const std::uint32_t mask = (1u << bits) - 1;
    tbb::enumerable_thread_specific<Counts> local(Counts(std::size_t{1} << bits, 0));
    tbb::enumerable_thread_specific<char> saw_nan(0);
    tbb::parallel_for(tbb::blocked_range<index_t>(0, rows, 16), [&](const tbb::blocked_range<index_t>& r) {
      Counts& c = local.local();
      std::vector<float> values(static_cast<std::size_t>(width));
      bool any_nan = false;
      for (index_t i = r.begin(); i != r.end(); ++i) {
        row(i, values.data());
        for (float v : values) any_nan |= v != v;
        if (known == 0) {
          for (float v : values) ++c[order_key(v) >> shift];
        } else {
          const std::uint32_t above = prefix >> (32 - known);
          for (float v : values) {
            const std::uint32_t key = order_key(v);
            if (key >> (32 - known) == above) ++c[key >> shift & mask];
          }
        }
      }
      if (any_nan) saw_nan.local() = 1;
    });
    Counts total(std::size_t{1} << bits, 0);
    for (const Counts& c : local)  // integer sums: order-free, deterministic
      for (std::size_t b = 0; b < total.size(); ++b) total[b] += c[b];
    for (char s : saw_nan) nan = nan || s;
    if (nan) break;
    std::uint32_t bin = 0;
    while (rank >= total[bin]) rank -= total[bin++];
    prefix |= bin << shift;
    known += bits;
    equal = total[bin];  // after the last pass: the values with the answer's whole key
  }
  if (!nan) return {from_order_key(prefix), k - rank, equal};
  std::vector<float> all(static_cast<std::size_t>(rows * width));
  for (index_t i = 0; i < rows; ++i) row(i, all.data() + i * width);
  auto at = all.begin() + static_cast<std::ptrdiff_t>(k);
  std::nth_element(all.begin(), at, all.end());
  // Ties and the values below by order key, as the radix passes count them (NaNs left out).
  const std::uint32_t key = order_key(*at);
  OrderStatistic s{*at, 0, 0};
  for (float v : all) {
    if (v != v) continue;
    const std::uint32_t vk = order_key(v);
    s.equal += vk == key;
    s.below += vk < key;
  }
  return s;
}

float kth_smallest(index_t rows, index_t width, std::int64_t k, const std::function<void(index_t, float*)>& row) {
  return order_statistic(rows, width, k, row).value;
}

std::vector<double> label_means(const Volume<float>& grey, const Volume<std::uint8_t>& labels, int n) {
  std::vector<double> s(n, 0.0), c(n, 0.0);
  for (index_t i = 0; i < grey.size(); ++i)
    if (labels[i] < n) {
      s[labels[i]] += grey[i];
      c[labels[i]] += 1;
    }
  std::vector<double> m(n);
  for (int i = 0; i < n; ++i) m[i] = c[i] > 0 ? s[i] / c[i] : std::numeric_limits<double>::quiet_NaN();
  return m;
}

double dominant_peak_sigma(const Histogram& h) {
  const std::vector<double>& c = h.counts;
  if (c.size() < 3) return 0;
  const auto top = static_cast<std::size_t>(std::max_element(c.begin(), c.end()) - c.begin());
  const double half = 0.5 * c[top];
  if (!(half > 0)) return 0;
  // Distance in bins from the peak's centre to where the counts fall through half the peak,
  // linear between bins; +inf when they never do on that side.
  auto crossing = [&](int step) {
    for (auto i = static_cast<std::ptrdiff_t>(top) + step; i >= 0 && i < static_cast<std::ptrdiff_t>(c.size());
         i += step) {
      const double inner = c[static_cast<std::size_t>(i - step)], here = c[static_cast<std::size_t>(i)];
      if (here < half)
        return std::fabs(static_cast<double>(i - static_cast<std::ptrdiff_t>(top))) - (half - here) / (inner - here);
    }
    return std::numeric_limits<double>::infinity();
  };
  const double hwhm_bins = std::min(crossing(-1), crossing(+1));
  if (!std::isfinite(hwhm_bins)) return 0;
  const double bw = h.bin_width(), s = hwhm_bins * bw / std::sqrt(2 * std::log(2.0));
  return std::sqrt(std::max(s * s - bw * bw / 12, 0.0));
}

}  // namespace vp
