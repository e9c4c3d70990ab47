#include "filters/segment/sandwiched_rims.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include <tbb/parallel_for.h>

#include "filters/segment/features.h"

namespace vp {
namespace {

constexpr index_t kRimSlab = 32;  // z-slices of smoothed grey held at once

// The shape a sandwiched run's grey profile is read as (rim_profile).
enum class RunShape { undecided, layer, edge };

constexpr index_t kProfileReach = 2;    // samples beyond each end of the run, the end voxel included
constexpr double kProfileStep = 0.2;    // interface positions and widths, voxels along the normal
constexpr double kProfileMinCos = 0.4;  // a line further from the normal runs along the surface
constexpr int kFilmWidths = 10;         // a dark film's thickness: 0.2, 0.4, …, 2.0 voxels

// Φ(z) by linear interpolation in a table (|z| ≤ 8), for the profile fits' many evaluations.
double normal_cdf_table(double z) {
  constexpr int kPerUnit = 64, kHalf = 8 * kPerUnit;
  static const std::vector<double> table = [] {
    std::vector<double> t(2 * kHalf + 1);
    for (int i = 0; i <= 2 * kHalf; ++i) t[i] = 0.5 * std::erfc(-((i - kHalf) / double(kPerUnit)) / std::sqrt(2.0));
    return t;
  }();
  const double u = std::clamp(z * kPerUnit + kHalf, 0.0, 2.0 * kHalf - 1e-9);
  const auto i = static_cast<std::size_t>(u);
  const double f = u - static_cast<double>(i);
  return table[i] + f * (table[i + 1] - table[i]);
}

// Reads the grey along axis a through a sandwiched run (voxels lo+1..hi−1 of class m, `dark` at one
// end and `bright` at the other; `i` a voxel of the run) against three blurred profiles, each with
// its interfaces free on a kProfileStep grid along the surface normal:
//   step  dark | bright (a blurred edge at middle grey),
//   layer dark | m (w = 1 or 2 voxels) | bright (a resolved middle layer),
//   film  m | dark (t = 0.2–2 voxels) | bright (a film of the dark phase pressed against the bright one).
// The normal is the grey's gradient summed over the run (central differences averaged over each
// voxel's 3 × 3 cross-section); the PSF σ along it and the positions of the samples along it
// follow from its direction cosine with the axis. Returns layer or edge where the better of the
// two beats the other by the margin, else undecided.
RunShape read_run_profile(const RunProfileModel& pm, const Dims& d, index_t i, int a, index_t pos, index_t lo,
                          index_t hi, bool dark_before, int dark, int m, int bright) {
  const Volume<float>& g = *pm.grey;
  const index_t step[3] = {1, d.x, d.x * d.y};
  const index_t xyz[3] = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
  // Gradient summed over the run voxels.
  double n[3] = {0, 0, 0};
  for (index_t q = lo + 1; q < hi; ++q) {
    index_t v[3] = {xyz[0], xyz[1], xyz[2]};
    v[a] = q;
    for (int b = 0; b < 3; ++b) {
      const int c1 = (b + 1) % 3, c2 = (b + 2) % 3;
      if (v[b] == 0 || v[b] + 1 >= d[b]) continue;
      double acc = 0;
      for (index_t o1 = -1; o1 <= 1; ++o1)
        for (index_t o2 = -1; o2 <= 1; ++o2) {
          index_t w[3] = {v[0], v[1], v[2]};
          w[c1] = std::clamp<index_t>(w[c1] + o1, 0, d[c1] - 1);
          w[c2] = std::clamp<index_t>(w[c2] + o2, 0, d[c2] - 1);
          const index_t j = w[0] + d.x * (w[1] + d.y * w[2]);
          acc += g[j + step[b]] - g[j - step[b]];
        }
      n[b] += acc;
    }
  }
  const double norm = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
  if (!(norm > 0)) return RunShape::undecided;
  const double cos_a = std::fabs(n[a]) / norm;
  if (cos_a < kProfileMinCos) return RunShape::undecided;
  double var = 0;
  for (int b = 0; b < 3; ++b) var += n[b] * n[b] / (norm * norm) * pm.psf_sigma_vox[b] * pm.psf_sigma_vox[b];
  const double sigma = std::sqrt(var);
  // Samples from the dark side to the bright side: s along the normal, 0 at the dark end voxel.
  constexpr int kMaxSamples = static_cast<int>(kMaxRimRun + 2 * kProfileReach);
  double s[kMaxSamples], y[kMaxSamples];
  int ns = 0;
  const index_t first = lo - (kProfileReach - 1), last = hi + (kProfileReach - 1);
  const index_t dark_end = dark_before ? lo : hi;
  for (index_t q = first; q <= last; ++q) {
    const index_t t = dark_before ? q : lo + hi - q;  // walk from the dark side
    if (t < 0 || t >= d[a]) continue;
    s[ns] = static_cast<double>(dark_before ? t - dark_end : dark_end - t) * cos_a;
    y[ns] = g[i + (t - pos) * step[a]];
    ++ns;
  }
  const double mu_d = pm.means[dark], mu_m = pm.means[m], mu_b = pm.means[bright];
  // Interface positions b on the grid from half a voxel before the first sample to half a voxel
  // after the last; Φ((s_j − b)/σ) tabulated for each, so widths are index offsets.
  const double b0 = s[0] - 0.5 * cos_a, b1 = s[ns - 1] + 0.5 * cos_a;
  const int nb = static_cast<int>(std::ceil((b1 - b0) / kProfileStep)) + 1;
  const int wide = static_cast<int>(std::lround(2.0 / kProfileStep));  // widest offset: a 2-voxel layer
  constexpr int kMaxGrid = 160;
  if (nb + wide > kMaxGrid) return RunShape::undecided;
  static thread_local std::array<double, kMaxGrid * kMaxSamples> cdf;
  for (int k = 0; k < nb + wide; ++k) {
    const double b = b0 + k * kProfileStep;
    for (int j = 0; j < ns; ++j) cdf[k * kMaxSamples + j] = normal_cdf_table((s[j] - b) / sigma);
  }
  auto phi = [&](int k, int j) { return cdf[k * kMaxSamples + j]; };
  double rss_step = INFINITY, rss_layer = INFINITY, rss_film = INFINITY;
  for (int k = 0; k < nb; ++k) {
    // Each sum stops once it reaches the best of its shape so far (it can no longer be the least).
    double r = 0;
    for (int j = 0; j < ns && r < rss_step; ++j) {
      const double e = y[j] - (mu_d + (mu_b - mu_d) * phi(k, j));
      r += e * e;
    }
    rss_step = std::min(rss_step, r);
    for (int w : {1, 2}) {
      const int kw = k + static_cast<int>(std::lround(w / kProfileStep));
      double rl = 0;
      for (int j = 0; j < ns && rl < rss_layer; ++j) {
        const double e = y[j] - (mu_d + (mu_m - mu_d) * phi(k, j) + (mu_b - mu_m) * phi(kw, j));
        rl += e * e;
      }
      rss_layer = std::min(rss_layer, rl);
    }
    for (int f = 1; f <= kFilmWidths; ++f) {
      const int kt = k + static_cast<int>(std::lround(0.2 * f / kProfileStep));
      double rf = 0;
      for (int j = 0; j < ns && rf < rss_film; ++j) {
        const double e = y[j] - (mu_m + (mu_d - mu_m) * phi(k, j) + (mu_b - mu_d) * phi(kt, j));
        rf += e * e;
      }
      rss_film = std::min(rss_film, rf);
    }
  }
  const double edge = std::min(rss_step, rss_film), margin = pm.margin * pm.noise_sigma * pm.noise_sigma;
  if (rss_layer + margin < edge) return RunShape::layer;
  if (edge + margin < rss_layer) return RunShape::edge;
  return RunShape::undecided;
}

}  // namespace

unsigned rim_decisions(double g, int m, const std::vector<double>& centre) {
  const int k = static_cast<int>(centre.size());
  unsigned bits = 0;
  for (int dark = 0; dark < m; ++dark)
    for (int bright = m + 1; bright < k; ++bright)
      if (std::fabs(g - centre[dark]) <= std::fabs(g - centre[bright])) bits |= 1u << rim_pair_bit(dark, bright, m, k);
  return bits;
}

RimCounts relabel_sandwiched_rims(Volume<std::uint8_t>& labels, const Volume<float>& grey, double sigma_um,
                                  const std::vector<double>& centre, bool decided, const RunProfileModel* profile) {
  const int k = static_cast<int>(centre.size());
  if (k < 3) return {};
  const Volume<std::uint8_t> in = labels;
  const Dims d = in.dims();
  constexpr int kLabel = (1 << kRimBits) - 1;
  std::vector<RimCounts> changed(static_cast<std::size_t>(d.z));
  std::optional<GaussianSlabs> smoothed;
  if (!decided) smoothed.emplace(grey, sigma_um);
  for (index_t z0 = 0; z0 < d.z; z0 += kRimSlab) {
    const index_t z1 = std::min(d.z, z0 + kRimSlab);
    if (smoothed) smoothed->smooth(z0, z1);
    tbb::parallel_for(z0, z1, [&](index_t z) {
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = x + d.x * (y + d.y * z);
          const int m = in[i] & kLabel;
          if (decided) labels[i] = static_cast<std::uint8_t>(m);
          if (m == 0 || m == k - 1) continue;
          const index_t pos[3] = {x, y, z}, step[3] = {1, d.x, d.x * d.y};
          int to = -1;
          bool layer = false, edge = false;
          for (int a = 0; a < 3; ++a) {
            // Outer labels of the run of m through i along this axis (runs of at most 2).
            index_t lo = pos[a] - 1, hi = pos[a] + 1;
            while (lo >= 0 && hi - lo - 1 < kMaxRimRun && (in[i + (lo - pos[a]) * step[a]] & kLabel) == m) --lo;
            while (hi < d[a] && hi - lo - 1 < kMaxRimRun && (in[i + (hi - pos[a]) * step[a]] & kLabel) == m) ++hi;
            if (lo < 0 || hi >= d[a]) continue;
            const int before = in[i + (lo - pos[a]) * step[a]] & kLabel,
                      after = in[i + (hi - pos[a]) * step[a]] & kLabel;
            const int dark = std::min(before, after), bright = std::max(before, after);
            if (!(dark < m && bright > m)) continue;
            if (to < 0) {
              const bool darker =
                  decided ? (in[i] >> kRimBits >> rim_pair_bit(dark, bright, m, k)) & 1u
                          : (rim_decisions((*smoothed)[i], m, centre) >> rim_pair_bit(dark, bright, m, k)) & 1u;
              to = darker ? dark : bright;
            }
            if (!profile) break;
            const RunShape shape = read_run_profile(*profile, d, i, a, pos[a], lo, hi, before == dark, dark, m, bright);
            layer |= shape == RunShape::layer;
            edge |= shape == RunShape::edge;
            if (edge) break;  // relabelled whatever the other axes read
          }
          if (to < 0) continue;
          // Kept where some axis reads a middle layer and none a darker|brighter edge.
          if (layer && !edge) {
            ++changed[static_cast<std::size_t>(z)].kept;
            continue;
          }
          labels[i] = static_cast<std::uint8_t>(to);
          ++changed[static_cast<std::size_t>(z)].relabelled;
        }
    });
  }
  RimCounts total;
  for (const RimCounts& c : changed) total.relabelled += c.relabelled, total.kept += c.kept;
  return total;
}
}  // namespace vp
