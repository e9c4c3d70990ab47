#include "filters/segment/mixture_model.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>

#include "core/error.h"

namespace vp {

namespace {

constexpr double kInvSqrt2Pi = 0.3989422804014327;

double normal_pdf(double z) { return kInvSqrt2Pi * std::exp(-0.5 * z * z); }
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
// ∫_{-∞}^{z} Φ(t) dt: integrates the interface density into its CDF.
double integrated_cdf(double z) { return z * normal_cdf(z) + normal_pdf(z); }

// Binning widens every population by bw²/12 (Sheppard): the model's σ is the noise alone.
double binned_sigma(double sigma, double bin_width) { return std::sqrt(sigma * sigma + bin_width * bin_width / 12); }

std::vector<InterfacePopulation> all_pairs(int k) {
  std::vector<InterfacePopulation> p;
  for (int a = 0; a < k; ++a)
    for (int b = a + 1; b < k; ++b) p.push_back({a, b, 0});
  return p;
}

// Pure classes from ascending cuts: weight, mean and σ of the voxels between cuts.
PartialVolumeMixture start_from_cuts(const Histogram& h, std::vector<double> cuts, int k) {
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  PartialVolumeMixture m;
  const std::size_t nk = cuts.size() + 1;
  std::vector<double> w(nk, 0), s(nk, 0), ss(nk, 0);
  for (std::size_t i = 0; i < h.counts.size(); ++i) {
    const double x = h.centre(i);
    const auto c = static_cast<std::size_t>(std::upper_bound(cuts.begin(), cuts.end(), x) - cuts.begin());
    w[c] += h.counts[i], s[c] += h.counts[i] * x, ss[c] += h.counts[i] * x * x;
  }
  const double total = h.total();
  for (std::size_t c = 0; c < nk; ++c) {
    if (w[c] <= 0) continue;
    const double mean = s[c] / w[c];
    m.weights.push_back(0.9 * w[c] / total);
    m.means.push_back(mean);
    m.sigmas.push_back(std::max(std::sqrt(std::max(ss[c] / w[c] - mean * mean, 0.0)), 0.5 * h.bin_width()));
  }
  if (static_cast<int>(m.means.size()) != k) return {};
  m.interfaces = all_pairs(k);
  const double share = k > 1 ? 0.1 / static_cast<double>(m.interfaces.size()) : 0;
  for (auto& p : m.interfaces) p.weight = share;
  if (k == 1) m.weights[0] = 1;
  return m;
}

// Share of the histogram's voxels below grey x (whole bins).
double fraction_below(const Histogram& h, double x) {
  double acc = 0;
  for (std::size_t i = 0; i < h.counts.size() && h.upper_edge(i) <= x; ++i) acc += h.counts[i];
  return acc / h.total();
}

double quantile(const Histogram& h, double q) {
  const double target = q * h.total();
  double acc = 0;
  for (std::size_t i = 0; i < h.counts.size(); ++i) {
    acc += h.counts[i];
    if (acc >= target) return h.upper_edge(i);
  }
  return h.hi;
}

// EM on the histogram. Pure phases update weight, mean and σ from their responsibilities;
// interface populations update their weight (their shape follows the pure means and σ).
// hold_means: the means stay as given (reference end members); σ is then the spread about them.
// held_class ≥ 0: that class's mean alone stays as given (a point of a profile likelihood).
void run_em(const Histogram& h, PartialVolumeMixture& m, int max_iterations, double min_sigma_floor, double max_sigma,
            bool hold_means = false, int held_class = -1) {
  const int k = m.classes();
  const std::size_t np = m.interfaces.size();
  const double bw = h.bin_width(), total = h.total();
  const double min_sigma = std::max(0.1 * bw, min_sigma_floor);
  std::vector<double> dens(static_cast<std::size_t>(k) + np);
  double prev = -std::numeric_limits<double>::infinity();
  for (m.iterations = 0; m.iterations < max_iterations; ++m.iterations) {
    std::vector<double> w(static_cast<std::size_t>(k), 0), s(w), ss(w), v(np, 0);
    double ll = 0;
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
      const double c = h.counts[i];
      if (c == 0) continue;
      const double x = h.centre(i);
      double sum = 0;
      for (int j = 0; j < k; ++j) sum += dens[j] = m.pure_density(j, x);
      for (std::size_t p = 0; p < np; ++p) sum += dens[k + p] = m.interface_density(p, x);
      if (!(sum > 0)) {  // far outside every population: the nearest mean takes it
        std::size_t best = 0;
        for (int j = 1; j < k; ++j)
          if (std::fabs(x - m.means[j]) < std::fabs(x - m.means[best])) best = j;
        std::fill(dens.begin(), dens.end(), 0.0);
        dens[best] = sum = 1;
        ll += c * std::log(std::numeric_limits<double>::min());
      } else {
        ll += c * std::log(sum * bw);
      }
      for (int j = 0; j < k; ++j) {
        const double r = c * dens[j] / sum;
        w[j] += r, s[j] += r * x, ss[j] += r * x * x;
      }
      for (std::size_t p = 0; p < np; ++p) v[p] += c * dens[k + p] / sum;
    }
    for (int j = 0; j < k; ++j) {
      if (w[j] <= 0) continue;
      m.weights[j] = w[j] / total;
      const bool held = hold_means || j == held_class;
      if (!held) m.means[j] = s[j] / w[j];
      const double mean = s[j] / w[j];
      // Σr(x − μ)²/Σr about the held mean: the spread about the data's own mean plus the offset.
      const double offset = held ? (mean - m.means[j]) * (mean - m.means[j]) : 0.0;
      const double var = ss[j] / w[j] - mean * mean + offset - bw * bw / 12;
      m.sigmas[j] = std::max(std::sqrt(std::max(var, 0.0)), min_sigma);
      if (max_sigma > 0) m.sigmas[j] = std::min(m.sigmas[j], max_sigma);
    }
    for (std::size_t p = 0; p < np; ++p) m.interfaces[p].weight = v[p] / total;
    m.log_likelihood = ll / total;
    if (std::fabs(ll - prev) <= 1e-11 * std::fabs(ll)) break;
    prev = ll;
  }
}

// Ascending means; interface pairs follow their phases.
void sort_phases(PartialVolumeMixture& m) {
  const int k = m.classes();
  std::vector<int> order(static_cast<std::size_t>(k));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return m.means[a] < m.means[b]; });
  std::vector<int> rank(static_cast<std::size_t>(k));
  for (int r = 0; r < k; ++r) rank[order[r]] = r;
  PartialVolumeMixture s = m;
  for (int r = 0; r < k; ++r) {
    s.weights[r] = m.weights[order[r]];
    s.means[r] = m.means[order[r]];
    s.sigmas[r] = m.sigmas[order[r]];
  }
  s.interfaces = all_pairs(k);
  for (const auto& p : m.interfaces) {
    const int a = std::min(rank[p.a], rank[p.b]), b = std::max(rank[p.a], rank[p.b]);
    for (auto& q : s.interfaces)
      if (q.a == a && q.b == b) q.weight = p.weight;
  }
  m = s;
}

double model_cdf(const PartialVolumeMixture& m, double x, double bw) {
  double f = 0;
  // Bin edges see the grey before binning: noise σ alone.
  (void)bw;
  for (int j = 0; j < m.classes(); ++j) f += m.weights[j] * normal_cdf((x - m.means[j]) / m.sigmas[j]);
  for (const auto& p : m.interfaces) {
    const double s = 0.5 * (m.sigmas[p.a] + m.sigmas[p.b]);
    const double span = m.means[p.b] - m.means[p.a];
    if (!(span > 0)) continue;
    f += p.weight * s * (integrated_cdf((x - m.means[p.a]) / s) - integrated_cdf((x - m.means[p.b]) / s)) / span;
  }
  return f;
}

void finish(const Histogram& h, PartialVolumeMixture& m) {
  const double total = h.total();
  const int params = 3 * m.classes() - 1 + static_cast<int>(m.interfaces.size());
  m.bic = -2 * m.log_likelihood * total + params * std::log(total);
  double acc = 0, worst = 0;
  for (std::size_t i = 0; i < h.counts.size(); ++i) {
    acc += h.counts[i];
    worst = std::max(worst, std::fabs(acc / total - model_cdf(m, h.upper_edge(i), h.bin_width())));
  }
  m.ks = worst;
}

}  // namespace

double PartialVolumeMixture::pure_density(int k, double x) const {
  const double s = binned_sigma(sigmas[k], bin_width);
  return weights[k] * normal_pdf((x - means[k]) / s) / s;
}

double PartialVolumeMixture::interface_density(std::size_t i, double x) const {
  const InterfacePopulation& p = interfaces[i];
  const double span = means[p.b] - means[p.a];
  if (!(span > 0) || p.weight <= 0) return 0;
  const double s = 0.5 * (binned_sigma(sigmas[p.a], bin_width) + binned_sigma(sigmas[p.b], bin_width));
  return p.weight * (normal_cdf((x - means[p.a]) / s) - normal_cdf((x - means[p.b]) / s)) / span;
}

double PartialVolumeMixture::density(double x) const {
  double d = 0;
  for (int k = 0; k < classes(); ++k) d += pure_density(k, x);
  for (std::size_t i = 0; i < interfaces.size(); ++i) d += interface_density(i, x);
  return d;
}

std::vector<double> PartialVolumeMixture::thresholds() const {
  std::vector<double> t;
  for (int k = 0; k + 1 < classes(); ++k) t.push_back(0.5 * (means[k] + means[k + 1]));
  return t;
}

std::vector<double> PartialVolumeMixture::separations() const {
  std::vector<double> d;
  for (int k = 0; k + 1 < classes(); ++k) d.push_back((means[k + 1] - means[k]) / std::max(sigmas[k], sigmas[k + 1]));
  return d;
}

std::vector<PartialVolumeMixture> partial_volume_optima(const Histogram& h, int classes, int max_iterations,
                                                        double max_sigma, double min_sigma) {
  if (classes < 1 || classes > 8)
    throw InputError("partial-volume mixture: classes must be 1..8, got " + std::to_string(classes));
  if (!(h.total() > 0)) throw InputError("partial-volume mixture: empty histogram");
  std::vector<std::vector<double>> starts;
  if (classes == 1) starts.push_back({});
  else {
    starts.push_back(otsu_thresholds(h, classes));
    starts.push_back(kmeans_intensity(h, classes).thresholds);
    // A phase of well under 1 % hides in the tail of its neighbour: start one there.
    std::vector<double> rest = classes > 2 ? otsu_thresholds(h, classes - 1) : std::vector<double>{};
    std::vector<double> low = rest, high = rest;
    low.push_back(quantile(h, 0.005));
    high.push_back(quantile(h, 0.995));
    starts.push_back(low);
    starts.push_back(high);
    // Each class of the (K−1)-class cut split at its median: on a flat likelihood (a thin phase
    // blurred into its neighbours) EM from the starts above can settle on a blend population
    // posing as a phase, while a better optimum — often a sign that K classes are not
    // resolved at all — lies beside one of the coarser classes.
    if (classes > 2)
      for (std::size_t j = 0; j <= rest.size(); ++j) {
        const double lo_q = j == 0 ? 0.0 : fraction_below(h, rest[j - 1]);
        const double hi_q = j == rest.size() ? 1.0 : fraction_below(h, rest[j]);
        const double cut = quantile(h, 0.5 * (lo_q + hi_q));
        std::vector<double> split = rest;
        split.push_back(cut);
        starts.push_back(split);
      }
  }
  std::vector<PartialVolumeMixture> optima;
  const double bw = h.bin_width();
  for (const auto& cuts : starts) {
    PartialVolumeMixture m = start_from_cuts(h, cuts, classes);
    if (m.classes() != classes) continue;
    m.bin_width = bw;
    for (double& s : m.sigmas) {
      s = std::sqrt(std::max(s * s - bw * bw / 12, 0.01 * bw * bw));
      if (max_sigma > 0) s = std::min(s, max_sigma);
      s = std::max(s, min_sigma);
    }
    run_em(h, m, max_iterations, min_sigma, max_sigma);
    sort_phases(m);
    finish(h, m);
    optima.push_back(std::move(m));
  }
  if (optima.empty())
    throw InputError("partial-volume mixture: the histogram has fewer than " + std::to_string(classes) +
                     " occupied grey ranges");
  return optima;
}

namespace {

// The likeliest of the eligible optima (the first start wins a tie); optima.size() if none is.
std::size_t best_index(const std::vector<PartialVolumeMixture>& optima, const std::vector<bool>& eligible) {
  std::size_t best = optima.size();
  for (std::size_t i = 0; i < optima.size(); ++i)
    if (eligible[i] && (best == optima.size() || optima[i].log_likelihood > optima[best].log_likelihood)) best = i;
  return best;
}

const PartialVolumeMixture& best_optimum(const std::vector<PartialVolumeMixture>& optima) {
  return optima[best_index(optima, std::vector<bool>(optima.size(), true))];
}

}  // namespace

PartialVolumeMixture fit_partial_volume_mixture(const Histogram& h, int classes, int max_iterations, double max_sigma,
                                                double min_sigma) {
  return best_optimum(partial_volume_optima(h, classes, max_iterations, max_sigma, min_sigma));
}

namespace {

// The pure-phase σ bounds from the scan's noise σ (kMinSigmaPerNoise, kMaxSigmaPerNoise); 0 = unbounded
// when the noise is unknown.
struct PureSigmaBounds {
  double min = 0, max = 0;
};
// max_per_noise 0: no cap (correlated noise, ScanNoise).
PureSigmaBounds pure_sigma_bounds(double noise_sigma, double max_per_noise) {
  if (!(noise_sigma > 0)) return {};
  return {kMinSigmaPerNoise * noise_sigma, max_per_noise * noise_sigma};
}

}  // namespace

std::vector<double> resolving_separations(const PartialVolumeMixture& m, double noise_sigma) {
  std::vector<double> d;
  for (int k = 0; k + 1 < m.classes(); ++k) {
    double s = std::max(m.sigmas[k], m.sigmas[k + 1]);
    if (noise_sigma > 0) s = std::min(s, noise_sigma);
    d.push_back((m.means[k + 1] - m.means[k]) / s);
  }
  return d;
}

namespace {

// The median of n distances read as grouped data where they sit on a lattice. On an integer scan
// every second difference, and its distance to their median, is a whole number, and the plain
// order statistic jumps by the lattice step q: any noise σ from 0.91 to 1.51 grey reads 1.2105.
// The values tied at the median m are spread evenly over their bin — [m − q/2, m + q/2], or
// [0, q/2] at m = 0, q the gap to the next distinct value — and the median falls where rank n/2
// does in it: σ then reads the noise with its rounding, √(σ² + q²/12) for a σ drawn before it
// (within 3 % for σ 0.7-2.5 grey; the histogram's peaks are that wide too).
// Only where the lattice can move the estimate by more than kLatticeTolerance of m: ties at m
// number ≈ 0.43 n q / m for Gaussian noise, so fewer than kLatticeTies · n mean a step too fine
// to matter (phantoms, 16-bit scans with a noise of hundreds of grey levels: unchanged, bit for
// bit, and no third order statistic), and the gap itself is checked before it is used.
constexpr double kLatticeTolerance = 1e-3;
constexpr double kLatticeTies = 4e-4;

double lattice_median(const OrderStatistic& m, std::int64_t n, const std::function<void(index_t, float*)>& row,
                      index_t rows, index_t width) {
  if (m.equal < 2 || m.equal < kLatticeTies * static_cast<double>(n) || m.below + m.equal >= n) return m.value;
  const double q = kth_smallest(rows, width, m.below + m.equal, row) - m.value;
  if (!(q > 2 * kLatticeTolerance * m.value)) return m.value;
  const double into_bin = (0.5 * static_cast<double>(n) - static_cast<double>(m.below)) / static_cast<double>(m.equal);
  return m.value > 0 ? m.value + q * (into_bin - 0.5) : 0.5 * q * into_bin;
}

}  // namespace

double lagged_noise_sigma(const Volume<float>& g, index_t lag) {
  const Dims d = g.dims();
  if (d.x < 2 * lag + 1) return 0;
  // Second differences along x, row by row; their median, then the median of their distance to
  // it (exact order statistics, kth_smallest: no 4 B per voxel copy, and parallel).
  const index_t rows = d.y * d.z, width = d.x - 2 * lag;
  if (rows == 0) return 0;
  auto second_differences = [&](index_t r, float* out) {
    const float* p = g.data() + r * d.x;
    for (index_t x = lag; x + lag < d.x; ++x) out[x - lag] = p[x - lag] - 2 * p[x] + p[x + lag];
  };
  const std::int64_t mid = rows * width / 2;
  const float med = kth_smallest(rows, width, mid, second_differences);
  const auto distances = [&](index_t r, float* out) {
    second_differences(r, out);
    for (index_t x = 0; x < width; ++x) out[x] = std::abs(out[x] - med);
  };
  const OrderStatistic mad = order_statistic(rows, width, mid, distances);
  return 1.4826 * lattice_median(mad, rows * width, distances, rows, width) / std::sqrt(6.0);
}

double scan_noise_sigma(const Volume<float>& g) { return lagged_noise_sigma(g, 1); }

ScanNoise scan_noise(const Volume<float>& g, const Histogram& h) {
  ScanNoise n;
  n.white = lagged_noise_sigma(g, 1);
  n.sigma = n.white;
  if (!(n.white > 0)) return n;
  n.lag_ratio = lagged_noise_sigma(g, 2) / n.white;
  n.peak_sigma = dominant_peak_sigma(without_clipping_spikes(h));
  n.correlated = n.lag_ratio >= kCorrelatedLagRatio && n.peak_sigma > kMaxSigmaPerNoise * n.white;
  if (n.correlated) n.sigma = n.peak_sigma;
  return n;
}

Histogram without_clipping_spikes(Histogram h) {
  const std::size_t n = h.counts.size();
  if (n < 4) return h;
  if (h.counts[0] > kClipSpikeRatio * std::max(h.counts[1], 1.0)) h.counts[0] = 0;
  if (h.counts[n - 1] > kClipSpikeRatio * std::max(h.counts[n - 2], 1.0)) h.counts[n - 1] = 0;
  return h;
}

namespace {

// Whether `m` is `coarser` plus one class at the dark or the bright end: dropping m's darkest
// (or brightest) class leaves the coarser fit's means, each within `tolerance`.
bool adds_an_end_class(const PartialVolumeMixture& m, const PartialVolumeMixture& coarser, double tolerance) {
  if (m.classes() != coarser.classes() + 1) return false;
  for (int drop : {0, m.classes() - 1}) {
    bool same = true;
    for (int j = 0, k = 0; j < m.classes(); ++j) {
      if (j == drop) continue;
      same = same && std::fabs(m.means[j] - coarser.means[k++]) <= tolerance;
    }
    if (same) return true;
  }
  return false;
}

// The K-class evidence: the likeliest optimum, unless its classes are not distinguishable and
// another optimum is the (K−1)-class fit plus a resolvable class at a tail. A thin phase under
// the PSF (pore films at 250–370 MPa, SNR 5, σ ≥ 1 voxel) is mostly blend, whose grey piles up
// beside its neighbour's peak: the likeliest optimum spends a class on that lopsided shoulder
// (two "classes" < 1 σ apart, one of them no phase) while the start in the dark tail finds the
// pore end member where it is (6 800 for a true 6 000) at a likelihood ~1e-4 per voxel lower.
// Only a tail class qualifies: a resolvable class between two others can be a blend posing as a
// phase (SE | SE–AM blend | AM on a realistic scan). The BIC against K − 1 classes and the share
// guard still judge the fit kept.
const PartialVolumeMixture& evidence_fit(const std::vector<PartialVolumeMixture>& optima,
                                         const PartialVolumeMixture* coarser, double noise_sigma) {
  const PartialVolumeMixture& likeliest = best_optimum(optima);
  const auto separated = [&](const PartialVolumeMixture& m) {
    const auto sep = resolving_separations(m, noise_sigma);
    return std::all_of(sep.begin(), sep.end(), [](double d) { return d >= kMinClassSeparation; });
  };
  if (coarser == nullptr || separated(likeliest)) return likeliest;
  std::vector<bool> eligible(optima.size());
  for (std::size_t i = 0; i < optima.size(); ++i) {
    const auto& m = optima[i];
    const double tolerance = noise_sigma > 0 ? noise_sigma : *std::max_element(m.sigmas.begin(), m.sigmas.end());
    eligible[i] = separated(m) && adds_an_end_class(m, *coarser, tolerance);
  }
  const std::size_t best = best_index(optima, eligible);
  return best < optima.size() ? optima[best] : likeliest;
}

ClassEvidence evidence_of(const PartialVolumeMixture& m, double noise_sigma) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  const auto sep = m.separations();
  const auto res = resolving_separations(m, noise_sigma);
  return {m.classes(), m.bic, sep.empty() ? inf : *std::min_element(sep.begin(), sep.end()),
          res.empty() ? inf : *std::min_element(res.begin(), res.end())};
}

// The scan's own fit for K = 1..classes on `h` (clipping spikes removed): the evidence per K and
// the asked K's fit, never refused (fit_auto_segmentation judges it). `coarser`, when given,
// receives the (K−1)-class fit.
AutoSegmentFit scan_fit(const Histogram& h, int classes, double noise_sigma, double max_per_noise,
                        PartialVolumeMixture* coarser_out = nullptr) {
  AutoSegmentFit out;
  out.noise_sigma = noise_sigma > 0 ? noise_sigma : 0;
  std::vector<PartialVolumeMixture> fits;
  for (int k = 1; k <= classes; ++k) {
    const PureSigmaBounds pure = pure_sigma_bounds(out.noise_sigma, max_per_noise);
    const auto optima = partial_volume_optima(h, k, 400, pure.max, pure.min);
    const PartialVolumeMixture* coarser = k == classes && k > 1 ? &fits.back() : nullptr;
    fits.push_back(evidence_fit(optima, coarser, out.noise_sigma));
    out.evidence.push_back(evidence_of(fits.back(), out.noise_sigma));
  }
  if (coarser_out != nullptr && classes > 1) *coarser_out = fits[fits.size() - 2];
  out.mixture = fits.back();
  out.resolving_separations = resolving_separations(out.mixture, out.noise_sigma);
  return out;
}

// A phase's share of the voxels: its pure weight and half of each blend it takes part in (a
// phase thinner than the PSF, e.g. SE of 3-voxel radius under σ 1.5, has almost no pure voxels
// but is half of every SE blend).
std::vector<double> class_shares(const PartialVolumeMixture& m) {
  std::vector<double> share = m.weights;
  for (const auto& p : m.interfaces) share[p.a] += 0.5 * p.weight, share[p.b] += 0.5 * p.weight;
  return share;
}
constexpr double kMinClassShare = 5e-4;
constexpr double kMinPureShareForDrift = 0.5;

// The fit-quality rule: fit_ks over kMaxFitKs is a histogram the model does not describe.
void judge_fit_quality(AutoSegmentFit& out) {
  if (!(out.mixture.ks > kMaxFitKs)) return;
  out.fit_status = "poor";
  std::ostringstream s;
  s << "the histogram model does not fit this scan: fit_ks " << out.mixture.ks << " > " << kMaxFitKs
    << " (phantoms, SNR 5-12, blur 0.7-1.5: at most 0.020); the end members, the partial-volume fractions and "
       "the PSF are unreliable, and the fractions' intervals carry the misfit. Look at the histogram (--qc), and "
       "prefer method threshold with cut-offs you can defend, or end members from a scan the model fits "
       "(--end-members)";
  out.warnings.push_back(s.str());
}

// Warnings for consecutive classes closer than kWarnClassSeparation fitted σ.
void warn_overlaps(AutoSegmentFit& out) {
  const PartialVolumeMixture& m = out.mixture;
  const auto sep = m.separations();
  for (std::size_t k = 0; k < sep.size(); ++k)
    if (sep[k] < kWarnClassSeparation) {
      std::ostringstream s;
      s << "classes " << k << " and " << k + 1 << " overlap: means " << m.means[k] << " and " << m.means[k + 1]
        << " are " << sep[k] << " σ apart (< " << kWarnClassSeparation
        << "); labels near their boundary are unreliable";
      out.warnings.push_back(s.str());
    }
}

// The (K−1)-class fit `coarser` plus a darkest class whose mean is held at mu0: EM fits every
// other parameter, the new class starting with almost no pure voxels (a phase mostly in blends).
PartialVolumeMixture with_dark_end_member_at(const Histogram& h, const PartialVolumeMixture& coarser, double mu0,
                                             double noise_sigma, double max_per_noise) {
  const PureSigmaBounds pure = pure_sigma_bounds(noise_sigma, max_per_noise);
  PartialVolumeMixture m;
  m.bin_width = h.bin_width();
  m.weights.push_back(1e-3);
  m.means.push_back(mu0);
  m.sigmas.push_back(noise_sigma);
  m.weights.insert(m.weights.end(), coarser.weights.begin(), coarser.weights.end());
  m.means.insert(m.means.end(), coarser.means.begin(), coarser.means.end());
  m.sigmas.insert(m.sigmas.end(), coarser.sigmas.begin(), coarser.sigmas.end());
  m.interfaces = all_pairs(m.classes());
  for (auto& p : m.interfaces) {
    p.weight = 1e-3;  // the new class's blends; the coarser fit's keep their weight
    for (const auto& q : coarser.interfaces)
      if (q.a + 1 == p.a && q.b + 1 == p.b) p.weight = q.weight;
  }
  run_em(h, m, 400, pure.min, pure.max, false, 0);
  finish(h, m);
  return m;
}

// Profile steps per noise σ along the darkest end member's grey (a bin at the finest).
constexpr int kProfileStepsPerNoise = 8;
// 2 ΔLL of the 95 % profile-likelihood interval for one parameter (χ²₁).
constexpr double kChi2One95 = 3.841;

// The darkest end member of a phase with (almost) no pure voxels, from the shape of its blends
// alone: the profile likelihood of its mean, from the histogram's darkest grey to the brightest
// mean still kMinClassSeparation noise σ from the coarser fit's darkest class, every other
// parameter refitted at each point. Pore films thinner than the PSF (250–370 MPa under σ 1.5 at
// SNR 5) leave a dark tail of pore|SE and pore|AM blends and no pore peak; EM from any start then
// settles on a blend posing as a class beside the SE peak, while the profile finds where the
// tail ends (9 191 for a true 6 000, ΔBIC −268 against two classes on seed 1 at 370 MPa): an upper
// bound of the end member, not an estimate of it (ExtrapolatedEndMember).
// Empty when the noise σ is unknown or there is no room below the coarser fit's darkest class.
std::optional<ExtrapolatedEndMember> dark_end_member_profile(const Histogram& h, const PartialVolumeMixture& coarser,
                                                             double noise_sigma, double max_per_noise,
                                                             PartialVolumeMixture& best) {
  if (!(noise_sigma > 0) || coarser.classes() < 1) return std::nullopt;
  std::size_t first = 0;
  while (first < h.counts.size() && h.counts[first] <= 0) ++first;
  const double lo = h.centre(std::min(first, h.counts.size() - 1));
  const double hi = coarser.means[0] - kMinClassSeparation * noise_sigma;
  // Never finer than a histogram bin: at most one EM fit per bin, whatever the noise.
  const double step = std::max(noise_sigma / kProfileStepsPerNoise, h.bin_width());
  if (!(hi > lo + step)) return std::nullopt;
  std::vector<double> grid, ll;
  std::vector<PartialVolumeMixture> fits;
  for (double mu = lo; mu <= hi; mu += step) {
    fits.push_back(with_dark_end_member_at(h, coarser, mu, noise_sigma, max_per_noise));
    grid.push_back(mu);
    ll.push_back(fits.back().log_likelihood * h.total());
  }
  const auto top = static_cast<std::size_t>(std::max_element(ll.begin(), ll.end()) - ll.begin());
  best = fits[top];
  // The upper end: where 2 (LL_max − LL) = χ²₁(95 %) above the maximum, linear between grid
  // points, or the profile's top where the likelihood is still that flat there. The lower end is
  // the darkest grey: films thinner than the PSF never take their blends to the end member, so a
  // darker one fits them as well (ExtrapolatedEndMember).
  const double floor = ll[top] - 0.5 * kChi2One95;
  ExtrapolatedEndMember e;
  e.mean = grid[top];
  std::size_t j = top;
  while (j + 1 < grid.size() && ll[j + 1] >= floor) ++j;
  e.ci95_high =
      j + 1 < grid.size() ? grid[j] + (grid[j + 1] - grid[j]) * (ll[j] - floor) / (ll[j] - ll[j + 1]) : grid.back();
  e.ci95_low = lo;
  e.uncertainty = (e.ci95_high - lo) / (2 * 1.96);
  e.profile_grey = std::move(grid);
  e.profile_log_likelihood = std::move(ll);
  return e;
}

// The rules an auto fit of `classes` classes breaks, each worded for the refusal, in the order
// the message names the first: the decision and the error read the same list, so a rule added
// here is both enforced and explained. Empty when the fit is kept.
std::vector<std::string> refusal_reasons(const AutoSegmentFit& f, int classes) {
  std::vector<std::string> reasons;
  int best_k = 1;
  for (const auto& e : f.evidence)
    if (e.bic < f.evidence[best_k - 1].bic) best_k = e.classes;
  if (best_k < classes) reasons.push_back("BIC is lowest at K = " + std::to_string(best_k));
  const double separation = f.evidence.back().min_separation_noise;
  if (!(separation >= kMinClassSeparation)) {
    std::ostringstream s;
    s << "two fitted classes are only " << separation << " σ apart (σ = min(fitted σ, scan noise σ " << f.noise_sigma
      << "))";
    reasons.push_back(s.str());
  }
  const std::vector<double> share = class_shares(f.mixture);
  const double min_share = *std::min_element(share.begin(), share.end());
  if (min_share < kMinClassShare) {
    std::ostringstream s;
    s << "a fitted class holds only " << min_share * 100 << " % of the voxels";
    reasons.push_back(s.str());
  }
  return reasons;
}

}  // namespace

AutoSegmentFit fit_auto_segmentation(const Histogram& scan_histogram, int classes, double noise_sigma,
                                     double max_sigma_per_noise) {
  const Histogram h = without_clipping_spikes(scan_histogram);
  PartialVolumeMixture coarser;
  AutoSegmentFit out = scan_fit(h, classes, noise_sigma, max_sigma_per_noise, &coarser);
  // Refused as fitted: the darkest class may be a phase with no pure voxels, known by its blends
  // alone (dark_end_member_profile). Kept only where that fit passes the same rules.
  if (!refusal_reasons(out, classes).empty() && classes > 1) {
    PartialVolumeMixture tail;
    if (const auto e = dark_end_member_profile(h, coarser, out.noise_sigma, max_sigma_per_noise, tail)) {
      AutoSegmentFit alt = out;
      alt.mixture = tail;
      alt.evidence.back() = evidence_of(tail, out.noise_sigma);
      alt.resolving_separations = resolving_separations(tail, out.noise_sigma);
      if (refusal_reasons(alt, classes).empty()) {
        alt.dark_end_member = e;
        std::ostringstream w;
        w << "class 0 has no pure voxels: its end member is extrapolated from its blends, at most " << e->ci95_high
          << " (95 %); the fractions are unmixed with " << e->mean
          << ", where its blends end (films thinner than the PSF never reach the end member), and carry the range "
          << e->ci95_low << " to " << e->ci95_high;
        alt.warnings.push_back(w.str());
        out = std::move(alt);
      }
    }
  }
  const std::vector<std::string> reasons = refusal_reasons(out, classes);
  if (!reasons.empty()) {
    std::ostringstream s;
    s << "auto segmentation: the grey histogram does not support " << classes << " distinguishable classes ("
      << reasons.front() << "); BIC per K:";
    for (const auto& e : out.evidence) s << " K=" << e.classes << ": " << e.bic << ";";
    s << " fitted means:";
    for (double mu : out.mixture.means) s << " " << mu;
    s << ". Ask for fewer classes (--classes / classes:), use method threshold, or give the end members of "
         "another scan of the series (--end-members / end_members:)";
    throw InputError(s.str());
  }
  warn_overlaps(out);
  judge_fit_quality(out);
  return out;
}

double fitted_end_member_uncertainty(double sigma, double weight, double voxels) {
  const double w = std::max(weight * voxels, 1.0);
  return std::sqrt(sigma * sigma / w + 0.0625 * sigma * sigma);
}

AutoSegmentFit fit_with_reference_end_members(const Histogram& scan_histogram, int classes,
                                              const ReferenceEndMembers& reference, double noise_sigma,
                                              double max_sigma_per_noise) {
  const std::vector<double>& mu = reference.means;
  if (static_cast<int>(mu.size()) != classes)
    throw InputError("end members: " + std::to_string(mu.size()) + " given for " + std::to_string(classes) +
                     " classes; expected one grey value per class");
  for (int c = 0; c + 1 < classes; ++c)
    if (!(mu[c + 1] > mu[c]))
      throw InputError("end members: expected ascending grey values, class " + std::to_string(c + 1) + " (" +
                       std::to_string(mu[c + 1]) + ") is not above class " + std::to_string(c) + " (" +
                       std::to_string(mu[c]) + ")");
  const Histogram h = without_clipping_spikes(scan_histogram);
  // The scan's own free fit: its evidence is reported, its resolved classes check the reference.
  const AutoSegmentFit free = scan_fit(h, classes, noise_sigma, max_sigma_per_noise);
  AutoSegmentFit out;
  out.noise_sigma = free.noise_sigma;
  out.evidence = free.evidence;
  out.end_members_source = reference.source;
  out.reference_uncertainty = reference.uncertainty;
  if (out.reference_uncertainty.size() != mu.size()) out.reference_uncertainty.assign(mu.size(), 0.0);
  out.scan_fit_means = free.mixture.means;

  // Start: each class's voxels between the midpoints of the reference means, spread about its mean.
  const PureSigmaBounds pure = pure_sigma_bounds(out.noise_sigma, max_sigma_per_noise);
  const double bw = h.bin_width(), total = h.total();
  PartialVolumeMixture m;
  m.bin_width = bw;
  m.means = mu;
  const std::vector<double> cuts = m.thresholds();
  std::vector<double> w(mu.size(), 0), ss(mu.size(), 0);
  for (std::size_t i = 0; i < h.counts.size(); ++i) {
    const double x = h.centre(i);
    const auto c = static_cast<std::size_t>(std::upper_bound(cuts.begin(), cuts.end(), x) - cuts.begin());
    w[c] += h.counts[i], ss[c] += h.counts[i] * (x - mu[c]) * (x - mu[c]);
  }
  for (std::size_t c = 0; c < mu.size(); ++c) {
    m.weights.push_back(0.9 * std::max(w[c] / total, 1e-6));
    double sigma = w[c] > 0 ? std::sqrt(std::max(ss[c] / w[c] - bw * bw / 12, 0.01 * bw * bw)) : out.noise_sigma;
    if (!(sigma > 0)) sigma = bw;
    if (pure.max > 0) sigma = std::min(sigma, pure.max);
    m.sigmas.push_back(std::max(sigma, pure.min));
  }
  m.interfaces = all_pairs(classes);
  for (auto& p : m.interfaces) p.weight = 0.1 / static_cast<double>(m.interfaces.size());
  run_em(h, m, 400, pure.min, pure.max, true);
  finish(h, m);
  out.mixture = m;
  out.resolving_separations = resolving_separations(m, out.noise_sigma);

  // Drift: the scan's own fit, where it resolves a class, against the reference. A class mostly
  // in blends (pore films at high pressure) has its free mean pulled towards its neighbour by
  // them (6 800 for a true 6 000), which is no drift: only classes whose own peak holds at least
  // kMinPureShareForDrift of their voxels are compared.
  const PartialVolumeMixture& f = free.mixture;
  const std::vector<double> share = class_shares(f);
  out.scan_fit_resolved.assign(mu.size(), false);
  for (int c = 0; c < classes; ++c) {
    const bool resolved = (c == 0 || free.resolving_separations[c - 1] >= kMinClassSeparation) &&
                          (c + 1 == classes || free.resolving_separations[c] >= kMinClassSeparation) &&
                          share[c] >= kMinClassShare && f.weights[c] >= kMinPureShareForDrift * share[c];
    out.scan_fit_resolved[c] = resolved;
    if (!resolved) continue;
    const double u_scan = fitted_end_member_uncertainty(f.sigmas[c], f.weights[c], total);
    const double u = std::hypot(out.reference_uncertainty[c], u_scan);
    const double drift = f.means[c] - mu[c];
    if (std::fabs(drift) > kEndMemberDriftSigmas * u) {
      std::ostringstream s;
      s << "end member " << c << ": this scan's own fit puts it at " << f.means[c] << ", " << drift
        << " from the reference " << mu[c] << " (" << std::fabs(drift) / u << " combined σ, more than "
        << kEndMemberDriftSigmas << "); the grey scale may have drifted between the scans";
      out.warnings.push_back(s.str());
    }
  }
  warn_overlaps(out);
  judge_fit_quality(out);
  return out;
}

}  // namespace vp
