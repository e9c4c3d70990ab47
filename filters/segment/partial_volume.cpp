#include "filters/segment/partial_volume.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "core/axis.h"
#include "core/error.h"
#include "filters/segment/end_members.h"
#include "filters/segment/features.h"
#include "filters/segment/forward_model.h"
#include "filters/segment/sandwiched_rims.h"

namespace vp {

namespace {

constexpr int kMaxClasses = 8;
constexpr index_t kLabelSlab = 32;  // z-slices of smoothed grey held at once
constexpr double kSqrt2Pi = 2.5066282746310002;
// A voxel whose phase-free neighbourhood grey lies within this many σ of an end member is pure.
constexpr double kPureWindow = 2.0;
// Pure voxels needed before their mean replaces the histogram fit's end member.
constexpr std::int64_t kMinPureVoxels = 200;
// A class whose pure voxels are fewer than this share of its labelled voxels is refitted as if it
// had none (refit_end_members): they are blends the pure window admits, and the 200 pure voxels
// that replace the fit's end member grow with the volume. Chosen on 96³ tuning seeds 79–81, held
// out 82–84 (docs/segmentation-studies.md, "The 10 MPa σ 1.5 error taken apart").
constexpr double kRefitMinPureShare = 0.001;
// The interval's model terms, one standard deviation each, calibrated on phantoms with exact truth
// (96³ seeds 1–3, SNR 5/8/12, PSF σ 0.7/1/1.5, 10–370 MPa: truth inside 129 of 131 intervals at a
// median half-width of 0.025, was 0.058 with the old terms) and checked on the unseen seeds 71–73
// and the bundled series (docs/segmentation-studies.md, "How wide the porosity_pv interval is, and why"):
// the pairing error as a share of the three-phase ambiguity (at a PSF σ of 1 voxel or less, see
// kPairingSharePsfPower); the error of a fixed middle share as a share of it; a pure-voxel mean's
// selection bias as a share of its pure window.
constexpr double kPairingShare = 0.08;
// Under a wider PSF more of the ambiguity is real error (pore|AM blends at SE grey read as SE: a
// bias of the geometry under the PSF, which re-imaging the true labels reproduces), so beyond 1
// voxel the share grows as σ^p, σ the widest PSF estimate (voxels). p: the least, in steps of 0.1,
// with which the pairing term alone covers the error the unmixing makes with the generator's end
// members in every tuning scan with σ above 1 voxel and pure pore voxels (96³ seeds 127–129, SNR
// 5/8/12, 10–370 MPa; where the pore has none the hidden-film term carries that error): 0.66 needed,
// at σ 1.5 and 10 MPa. At σ ≤ 1 the share stays as calibrated (the largest such error there, 10 MPa,
// is 0.080 × 1.96 × the ambiguity). Held out: seeds 130–132 (docs/segmentation-studies.md, "The
// pairing share that follows the PSF").
constexpr double kPairingSharePsfPower = 0.7;
constexpr double kMiddleShareError = 0.15;
constexpr double kPureWindowBias = 0.5;
// The share of the darkest class hidden in films thinner than the PSF, one standard deviation,
// where that class has no pure voxels (96³ seeds 85–87; docs/segmentation-studies.md, "The porosity_pv
// interval at a sharp PSF and where the SE end member is refitted").
constexpr double kHiddenFilmShare = 0.1;
// Least slope of a bridged middle-class voxel, as a share of the darker|brighter edge's peak
// slope. Measured (96³ seed 1 SNR 8 σ 1.5, contact error at 10/50/250 MPa; bundled series at
// 50 MPa): 0 → +0.20/−0.02/+0.05, 0.774 (truth 0.839); 0.7 → +0.25/+0.03/+0.06, 0.810;
// 0.8 → +0.31/+0.08/+0.08, 0.836. At 0.7 the demo (auto + one-voxel SE opening) reads
// contact at 50 MPa 0.08 low and porosity 0.016 high: SE films coating AM are eaten.
constexpr double kBridgeSlope = 0.8;
// The widest PSF σ estimate (voxels) below which a scan is read as sharp: the sharp-PSF sweep runs
// there, the σ ≥ 0.85 sweep (low_snr_sweep) at or above it. Held-out scans estimate 0.65–0.70 at
// σ 0.7, 0.96–1.07 at σ 1, so each blur of the accuracy grid takes one sweep, always the same. First
// chosen for a profile reading of sandwiched runs, since removed (docs/segmentation-studies.md,
// "Sandwiched runs read by their profile").
constexpr double kSharpPsf = 0.85;
// ICM sweeps of the forward model run by default under a sharp PSF (sharp_psf_sweep). Chosen on
// 96³ seeds 139–141, SNR 8, σ 0.7, 10–370 MPa (docs/segmentation-studies.md, "Labels under a sharp
// PSF: one forward-model sweep"): one sweep closes the worst Dice gap to the ceiling from 0.036 to
// 0.013; a second adds 0.008 pore Dice on seed 139 at 125 MPa for +0.7 CPU-s more at 256³ (+1.6
// for the first), which the ≥ 5 Mvoxel/s of `auto` has no room for.
constexpr int kSharpPsfSweeps = 1;
// The sweep reads each class's end member locally (ForwardModelOptions::local_means_sigma, voxels)
// and with β(AM, c) the same for every other class c (neutral_beside_brightest). Under realistic
// imaging (AM grains ± 4 %, the 8 % cup) the global end members took darker grains' surface voxels,
// and voxels 2–4 inside them, for SE or pore (96³ SNR 12: AM Dice 0.007–0.010 below the rules'),
// and at SNR 12 the pair β, smallest for pore|AM, ate SE layers between pore and AM (contact
// further from the truth than the rules' at 50–125 MPa). Chosen on 96³ tuning seed 164 cells (σ 2
// vs 3, every class vs AM only, neutral β or not) and the tuning table of seeds 163–165, σ 0.7, SNR
// 5/8/12, 10–370 MPa, default and realistic imaging (docs/segmentation-studies.md, "The sharp-PSF
// sweep under textured AM").
constexpr double kSharpPsfLocalMeansSigma = 2.0;
// How many sweeps low_snr_sweep (on by default) runs where the PSF is not sharp. Chosen on 96³
// tuning seeds 169–171, SNR 5, σ 1 and 1.5, 10–370 MPa (docs/segmentation-studies.md, "Labels at
// SNR 5: one forward-model sweep"): one sweep with the prior neutral beside the brightest class
// takes the worst gap 0.040 → 0.015 with every cell's contact nearer the truth; a second adds
// ≤ 0.019 Dice but moves the 50 MPa contact past the truth (+0.013 → −0.021) for another sweep's
// CPU; the pair β's sweep raised contact by up to 0.038. It runs at every SNR: above SNR 6.5 it
// gains as much (fresh seeds 227–228, SNR 6–12: pore Dice +0.02 … +0.08, contact nearer the truth
// in 37 of 38 scans; docs/segmentation-studies.md, "The σ ≥ 0.85 sweep at every SNR").
constexpr int kLowSnrSweeps = 1;

// OR of the bitmasks within ±r voxels along each axis (a box), borders clamped. Along x, each
// row ORs shifted copies of itself; along y and z, whole rows of x are ORed with the rows ±r
// away, walking the axis with the r rows behind kept in a ring (they are overwritten), so every
// pass runs along contiguous bytes.
Volume<std::uint8_t> or_dilate(const Volume<std::uint8_t>& in, const std::array<int, 3>& radius) {
  Volume<std::uint8_t> v = in;
  const Dims d = v.dims();
  std::uint8_t* data = v.data();
  for (int axis = 0; axis < 3; ++axis) {
    const int r = radius[axis];
    const index_t n = d[axis];
    if (r <= 0 || n == 1) continue;
    if (axis == 0) {
      tbb::parallel_for(tbb::blocked_range<index_t>(0, d.y * d.z, 64), [&](const tbb::blocked_range<index_t>& range) {
        std::vector<std::uint8_t> line(static_cast<std::size_t>(n));
        for (index_t l = range.begin(); l != range.end(); ++l) {
          std::uint8_t* row = data + l * n;
          std::copy(row, row + n, line.begin());
          for (index_t t = 1; t <= r && t < n; ++t) {
            for (index_t q = 0; q + t < n; ++q) row[q] |= line[q + t];
            for (index_t q = t; q < n; ++q) row[q] |= line[q - t];
          }
        }
      });
      continue;
    }
    // Rows of x at positions q = 0..n−1 along the axis, `stride` apart; `sets` independent such
    // columns of rows (z planes for y, y rows for z), `set_stride` apart.
    const index_t stride = axis == 1 ? d.x : d.x * d.y;
    const index_t sets = axis == 1 ? d.z : d.y, set_stride = axis == 1 ? d.x * d.y : d.x;
    const index_t w = d.x;
    tbb::parallel_for(index_t{0}, sets, [&](index_t s) {
      std::uint8_t* first = data + s * set_stride;
      std::vector<std::uint8_t> ring(static_cast<std::size_t>(r * w)), acc(static_cast<std::size_t>(w));
      for (index_t q = 0; q < n; ++q) {
        std::uint8_t* row = first + q * stride;
        std::copy(row, row + w, acc.begin());
        for (index_t t = q + 1; t <= std::min(n - 1, q + r); ++t) {  // ahead: still the input
          const std::uint8_t* ahead = first + t * stride;
          for (index_t x = 0; x < w; ++x) acc[x] |= ahead[x];
        }
        for (index_t t = std::max<index_t>(0, q - r); t < q; ++t) {  // behind: kept in the ring
          const std::uint8_t* behind = ring.data() + (t % r) * w;
          for (index_t x = 0; x < w; ++x) acc[x] |= behind[x];
        }
        std::copy(row, row + w, ring.begin() + (q % r) * w);
        std::copy(acc.begin(), acc.end(), row);
      }
    });
  }
  return v;
}

// The share of the pairing ambiguity taken as one standard deviation of the pairing error, for a
// scan whose widest PSF σ is `psf_sigma_vox` (voxels).
double pairing_share(double psf_sigma_vox) {
  return kPairingShare * std::pow(std::max(psf_sigma_vox, 1.0), kPairingSharePsfPower);
}

// The unmixing pair for a voxel: consecutive candidates bracketing its neighbourhood grey; below
// (above) every candidate, the next darker (brighter) class of the model, which may be a phase
// too thin to be detected nearby (a pore film under the PSF).
std::pair<int, int> unmixing_pair(double g, unsigned candidates, const std::vector<double>& mu, int k) {
  int cl[kMaxClasses], n = 0;
  for (int c = 0; c < k; ++c)
    if (candidates & (1u << c)) cl[n++] = c;
  if (n == 0)
    for (int c = 0; c < k; ++c) cl[n++] = c;
  if (g <= mu[cl[0]]) {
    if (cl[0] > 0) return {cl[0] - 1, cl[0]};
    return {cl[0], n >= 2 ? cl[1] : 1};
  }
  if (g >= mu[cl[n - 1]]) {
    if (cl[n - 1] < k - 1) return {cl[n - 1], cl[n - 1] + 1};
    return {n >= 2 ? cl[n - 2] : k - 2, cl[n - 1]};
  }
  int j = 0;
  while (j + 2 < n && g >= mu[cl[j + 1]]) ++j;
  return {cl[j], cl[j + 1]};
}

struct SliceStats {
  std::array<std::int64_t, kMaxClasses> labels{}, pure{};
  std::array<double, kMaxClasses> pure_grey{}, pure_grey2{};
  std::array<std::int64_t, kMaxClasses * kMaxClasses> pair_count{};
  std::array<double, kMaxClasses * kMaxClasses> pair_grey{}, pair_weight{};
  std::array<double, kMaxClasses * kMaxClasses * kMaxClasses> pair_share{};
  std::array<double, kMaxClasses> ambiguity{};  // Σ |f_c(alternative pair) − f_c(chosen)|, three-phase voxels
  std::int64_t thin = 0, rim = 0;
};

static_assert(kMaxClasses <= 1 << kRimBits);  // a label's class bits below its rim decisions

// Three or more phases near a voxel: one grey value cannot say how its blend splits among them,
// and the chosen pair (with any middle share) is one reading. The other reading — the outermost
// pair near it when a nearer pair was chosen, else the nearby pair bracketing its grey — moves
// |Δf_c| of each class; summed over such voxels it measures how far the pairing alone could move
// the fractions (read at the neighbourhood grey, so that noise does not inflate it).
void add_pairing_ambiguity(double g, std::pair<int, int> ab, const std::array<double, kMaxClasses>& share_of,
                           double shared, unsigned near, const std::vector<double>& mu,
                           std::array<double, kMaxClasses>& ambiguity) {
  const int k = static_cast<int>(mu.size());
  std::array<double, kMaxClasses> chosen{}, other{};
  const auto [a, b] = ab;
  double rest = g - (1 - shared) * mu[a];
  for (int m = 0; m < k; ++m) {
    chosen[m] = share_of[m];
    rest -= share_of[m] * mu[m];
  }
  const double fb = rest / (mu[b] - mu[a]);
  chosen[a] += (1 - shared) - fb;
  chosen[b] += fb;
  const int lo = std::countr_zero(near), hi = 31 - std::countl_zero(near);
  std::pair<int, int> alt{lo, hi};
  if (alt == ab) alt = unmixing_pair(g, near, mu, k);
  const double f_hi = (g - mu[alt.first]) / (mu[alt.second] - mu[alt.first]);
  other[alt.first] = 1 - f_hi;
  other[alt.second] = f_hi;
  for (int c = 0; c < k; ++c) ambiguity[c] += std::fabs(other[c] - chosen[c]);
}

// Trilinear interpolation of v at a real position, clamped to the volume.
double trilinear(const Volume<float>& v, double px, double py, double pz) {
  const Dims d = v.dims();
  const double p[3] = {std::clamp(px, 0.0, static_cast<double>(d.x - 1)),
                       std::clamp(py, 0.0, static_cast<double>(d.y - 1)),
                       std::clamp(pz, 0.0, static_cast<double>(d.z - 1))};
  index_t lo[3], hi[3];
  double t[3];
  for (int a = 0; a < 3; ++a) {
    lo[a] = static_cast<index_t>(std::floor(p[a]));
    hi[a] = std::min<index_t>(lo[a] + 1, d[a] - 1);
    t[a] = p[a] - static_cast<double>(lo[a]);
  }
  double acc = 0;
  for (int c = 0; c < 8; ++c) {
    const index_t x = (c & 1) ? hi[0] : lo[0], y = (c & 2) ? hi[1] : lo[1], z = (c & 4) ? hi[2] : lo[2];
    const double w = ((c & 1) ? t[0] : 1 - t[0]) * ((c & 2) ? t[1] : 1 - t[1]) * ((c & 4) ? t[2] : 1 - t[2]);
    acc += w * v(x, y, z);
  }
  return acc;
}

// Whether the smoothed grey at (x, y, z) is a valley darker than `depth` along some axis, with a
// curvature (m + q − 2c) above that axis's `curvature`: a film of the darkest class thinner than the
// PSF (the thin_pores label rule).
bool darkest_film_valley(const Volume<float>& gs, index_t x, index_t y, index_t z, double depth,
                         const std::array<double, 3>& curvature) {
  const Dims d = gs.dims();
  const index_t i = x + d.x * (y + d.y * z);
  if (!(gs[i] < depth)) return false;
  const index_t step[3] = {1, d.x, d.x * d.y};
  const index_t pos[3] = {x, y, z};
  for (int a = 0; a < 3; ++a) {
    if (pos[a] == 0 || pos[a] + 1 >= d[a]) continue;
    const double m = gs[i - step[a]], c = gs[i], q = gs[i + step[a]];
    if (c <= m && c <= q && m + q - 2 * c > curvature[a]) return true;
  }
  return false;
}

// The grey profile across a voxel along the gradient of the smoothed grey: the slope there and
// the extreme samples at 0.25–1.25 σ_tot each way (σ_tot: PSF ⊕ smoothing), trilinear. `low` is
// the darkest sample on the dark side, `high` the brightest on the bright side; slope 0 (and no
// samples) where the grey is flat.
struct GradientProfile {
  double slope = 0, low = 0, high = 0;
};
GradientProfile gradient_profile(const Volume<float>& gs, index_t x, index_t y, index_t z, double sigma_tot,
                                 double min_slope) {
  const Dims d = gs.dims();
  const index_t xm = x > 0 ? x - 1 : x, xp = x + 1 < d.x ? x + 1 : x;
  const index_t ym = y > 0 ? y - 1 : y, yp = y + 1 < d.y ? y + 1 : y;
  const index_t zm = z > 0 ? z - 1 : z, zp = z + 1 < d.z ? z + 1 : z;
  double n[3] = {(gs(xp, y, z) - gs(xm, y, z)) / std::max<index_t>(xp - xm, 1),
                 (gs(x, yp, z) - gs(x, ym, z)) / std::max<index_t>(yp - ym, 1),
                 (gs(x, y, zp) - gs(x, y, zm)) / std::max<index_t>(zp - zm, 1)};
  GradientProfile out;
  const double len = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
  if (!(len > 0) || len < min_slope) return out;
  out.slope = len;
  for (double& c : n) c /= len;
  out.low = std::numeric_limits<double>::max();
  out.high = std::numeric_limits<double>::lowest();
  for (double f : {0.25, 0.5, 0.75, 1.0, 1.25}) {
    const double t = f * sigma_tot;
    out.high = std::max(out.high, trilinear(gs, x + t * n[0], y + t * n[1], z + t * n[2]));
    out.low = std::min(out.low, trilinear(gs, x - t * n[0], y - t * n[1], z - t * n[2]));
  }
  return out;
}

// A middle-class voxel on a blurred darker|brighter edge (a pore|AM edge at SE grey): along the
// gradient of the smoothed grey, the profile falls below the middle class's lower midpoint on
// one side and rises above its upper midpoint on the other within 1.25 σ_tot each way
// (gradient_profile), which a blurred step does and a resolved middle layer does not. min_slope
// is the least gradient a bridged voxel has (kBridgeSlope × the pore|AM-type edge's peak slope):
// steep as a blurred darker|brighter step at middle grey; a thin middle layer between them is
// shallower. A reach of 1 σ_tot leaves the outer third of the blend at middle grey; 1.5–2 σ_tot
// eats SE layers 3–4 voxels thick (96³ seed 1 SNR 8 σ 1.5, 50 MPa: contact −0.09 / −0.13 against
// −0.02 at 1.25). Returns the {darker, brighter} end classes, or {-1, -1}.
std::pair<int, int> bridged_middle_class(const Volume<float>& gs, index_t x, index_t y, index_t z, int m,
                                         const std::vector<double>& cut, double sigma_tot, double min_slope) {
  const GradientProfile pr = gradient_profile(gs, x, y, z, sigma_tot, min_slope);
  if (!(pr.slope > 0)) return {-1, -1};
  if (!(pr.low < cut[m - 1] && pr.high > cut[m])) return {-1, -1};
  const auto dark = static_cast<int>(std::upper_bound(cut.begin(), cut.end(), pr.low) - cut.begin());
  const auto bright = static_cast<int>(std::upper_bound(cut.begin(), cut.end(), pr.high) - cut.begin());
  return {dark, bright};
}

// The one class other than the darkest whose end member is not measured, or −1 (none, or several:
// one grey mean splits volume between two classes only). Not measured: fewer than kMinPureVoxels
// pure voxels, or fewer than kRefitMinPureShare of the class's labelled voxels — a count that grows with
// the volume, where those few are the noise tail of blends the pure window admits (the SE of
// 10 MPa scans under σ 1.5 at SNR 5: 205–232 pure of ~450 000 labelled, their mean 540–780 dark).
int single_fit_only_class(const UnmixingSums& sums, const std::vector<std::int64_t>& label_count) {
  int moved = -1;
  for (int c = 1; c < sums.classes; ++c) {
    if (sums.pure[c] >= kMinPureVoxels && static_cast<double>(sums.pure[c]) >= kRefitMinPureShare * label_count[c])
      continue;
    if (moved >= 0) return -1;
    moved = c;
  }
  return moved;
}

// The end member of class `moved` (fit-only) refitted with the labels by forward-model MAP: ICM
// from a copy of the final labels, the end members refitted by least squares before each sweep
// (a class's fit mean is pulled by the blends it sits in; the refit reads the geometry from the
// labels, which the ICM makes explain the grey). Only that end member is taken: the others are
// measured on pure voxels. On the central block of at most refit_max_side voxels per axis: one
// number, which 128³ voxels give well inside its uncertainty at an eighth of 256³'s CPU and bytes
// (docs/segmentation-studies.md, "The end-member refit on a central block"). Returns false where it would
// not move brighter and stay below its brighter neighbour (the fit's end member stays; only its
// uncertainty may narrow to the refit's disagreement with it). Its uncertainty
// is the fit's statistical one (`fit_statistical`) and half the shift:
// not the blend term of a fit-only end member, which bounds the blend pull the refit removed.
bool refit_fit_only_end_member(const Volume<float>& grey, const std::vector<double>& sigma, int moved,
                               double fit_statistical, const PartialVolumeOptions& o, PartialVolumeResult& out) {
  ForwardModelOptions fm;
  fm.psf_sigma_vox = o.psf_sigma_vox;
  fm.noise_sigma = o.noise_sigma > 0 ? o.noise_sigma : *std::min_element(sigma.begin(), sigma.end());
  fm.refit_means = true;
  const Box block = central_block(grey.dims(), o.refit_max_side);
  Volume<std::uint8_t> labels = out.labels.crop(block);
  const double mu = forward_model_relabel(grey.crop(block), labels, out.means, fm).means[moved];
  const int k = static_cast<int>(out.means.size());
  // Only brighter: the kept fractions are unmixed with the fit's end member, and a fit end member
  // pulled bright (by blends with a brighter class; SE at 125 MPa, SNR 5) under-reads the brighter
  // class there, which the split would pass on to the darkest ×(μ_bright − μ_m)/(μ_m − μ_0)
  // (96³ SNR 5 σ 1.5 125 MPa seeds 1–3: −0.011 / +0.000 / +0.013 → −0.033 / −0.026 / −0.004).
  if (!(mu > out.means[moved]) || (moved + 1 < k && !(mu < out.means[moved + 1]))) {
    // Not taken, but it reads the blend pull on the fit's mean better than the fitted σ's excess
    // over the noise (96³ SNR 5 σ 1.5 125 MPa: fit 22 646–23 121 for 22 000, excess term 5 200):
    // the fit's mean stays, known to within the refit's disagreement with it.
    out.mean_uncertainty[moved] =
        std::min(out.mean_uncertainty[moved], std::hypot(fit_statistical, mu - out.means[moved]));
    return false;
  }
  const double shift = mu - out.means[moved];
  out.end_member_shift[moved] = shift;
  out.means[moved] = mu;
  out.mean_uncertainty[moved] = std::hypot(fit_statistical, 0.5 * shift);
  return true;
}

}  // namespace

std::vector<double> unmixed_fractions(const UnmixingSums& s, const std::vector<double>& mu) {
  const int k = s.classes;
  std::vector<double> f(static_cast<std::size_t>(k), 0.0);
  for (int c = 0; c < k; ++c) f[c] = static_cast<double>(s.pure[c]);
  for (int a = 0; a < k; ++a)
    for (int b = a + 1; b < k; ++b) {
      const int q = a * k + b;
      if (s.pair_count[q] == 0) continue;
      // Per voxel: shares s_m of middle phases fixed, the rest w = 1 − Σ s_m split so that
      // w_a μ_a + w_b μ_b = g − Σ s_m μ_m, unclipped; summed over the pair's voxels.
      double rest = s.pair_grey[q] - s.pair_weight[q] * mu[a];
      for (int m = 0; m < k; ++m) {
        const double share = s.pair_share[static_cast<std::size_t>(q * k + m)];
        rest -= share * mu[m];
        f[m] += share;
      }
      const double fb = rest / (mu[b] - mu[a]);
      f[a] += s.pair_weight[q] - fb;
      f[b] += fb;
    }
  for (double& x : f) x /= static_cast<double>(s.voxels);
  return f;
}

std::vector<double> class_noise_sigmas(const UnmixingSums& s, const std::vector<double>& fallback) {
  std::vector<double> noise = fallback;
  for (int c = 0; c < s.classes; ++c) {
    if (s.pure[c] < kMinPureVoxels) continue;
    const auto n = static_cast<double>(s.pure[c]);
    const double m = s.pure_grey[c] / n;
    noise[c] = std::sqrt(std::max(s.pure_grey2[c] / n - m * m, 0.0));
  }
  return noise;
}

double scan_snr(const std::vector<double>& means, const std::vector<double>& class_noise) {
  if (means.size() < 2 || class_noise.size() < means.size())
    return std::numeric_limits<double>::quiet_NaN();  // no step to read
  std::size_t widest = 0;
  for (std::size_t c = 1; c + 1 < means.size(); ++c)
    if (means[c + 1] - means[c] > means[widest + 1] - means[widest]) widest = c;
  const double a = class_noise[widest], b = class_noise[widest + 1];
  return (means[widest + 1] - means[widest]) / std::sqrt(0.5 * (a * a + b * b));
}

PartialVolumeResult partial_volume_segmentation(const Volume<float>& grey, const PartialVolumeMixture& fit,
                                                const PartialVolumeOptions& o) {
  const int k = fit.classes();
  if (k < 2 || k > kMaxClasses)
    throw InputError("partial-volume labelling needs 2.." + std::to_string(kMaxClasses) + " classes, got " +
                     std::to_string(k));
  if (grey.empty()) throw InputError("partial-volume labelling: empty volume");
  const Dims d = grey.dims();
  for (int a = 0; a < 3; ++a)
    if (d[a] > 1 && !(o.psf_sigma_vox[a] > 0))
      throw InputError("partial-volume labelling: PSF σ along " + axis_name(a) + " must be > 0 voxels, got " +
                       std::to_string(o.psf_sigma_vox[a]));
  const Vec3 sp = grey.spacing_um;
  const std::vector<double>& mu_fit = fit.means;
  const std::vector<double>& sigma = fit.sigmas;
  std::vector<double> pure_sigma = sigma;
  if (o.noise_sigma > 0)
    for (double& s : pure_sigma) s = std::min(s, o.noise_sigma);

  // Smoothed grey, and how much of a voxel's own value it holds (to leave that out).
  const double min_spacing = std::min({sp[0], sp[1], sp[2]});
  const double smooth_um = o.smooth_sigma_vox * min_spacing;
  Volume<float> gs = gaussian_smooth(grey, smooth_um);
  double w0 = 1, w2 = 1, slope_sigma = 0;
  std::array<int, 3> radius{};
  for (int a = 0; a < 3; ++a) {
    const double s_vox = smooth_um / sp[a];
    double smooth_var = 0;
    if (!(s_vox < 0.1 || d[a] == 1)) {
      const auto kern = gaussian_kernel(s_vox);
      w0 *= kern[kern.size() / 2];
      double q = 0;
      for (double x : kern) q += x * x;
      w2 *= q;
      smooth_var = s_vox * s_vox;
    }
    // Widest edge (PSF ⊕ smoothing): the shallowest slope a blended edge can have.
    slope_sigma = std::max(slope_sigma, std::sqrt(o.psf_sigma_vox[a] * o.psf_sigma_vox[a] + smooth_var));
    // Rounded, not ceiled: a PSF estimate of 1.02 voxels must not jump the reach from 2 to 3.
    radius[a] = d[a] == 1 ? 0 : std::max(1, static_cast<int>(std::lround(2 * o.psf_sigma_vox[a])));
  }
  const double loo_noise = std::sqrt(std::max(w2 - w0 * w0, 0.0)) / (1 - w0);  // σ(g_loo) / σ(noise)
  auto loo = [&](index_t i) { return (static_cast<double>(gs[i]) - w0 * grey[i]) / (1 - w0); };

  const double valley_depth = mu_fit[1] - 0.25 * (mu_fit[1] - mu_fit[0]);
  // Per axis: half the curvature a one-voxel film of the darkest class has across it on the
  // smoothed grey (σ = PSF ⊕ smoothing), and at least 5 % of μ₁ − μ₀. Under a σ 0.7 PSF a film's
  // valley is deep (curvature 0.17 (μ₁ − μ₀)); the 5 % floor alone took SE voxels beside every
  // curved pore for films (96³ SNR 8 σ 0.7: pore Dice 0.004–0.010 lower). From σ ≈ 1.1 on the
  // film's valley is shallower than twice the floor, which then decides (σ 1.5 is unchanged).
  std::array<double, 3> valley_curvature{};
  for (int a = 0; a < 3; ++a) {
    const double s = std::hypot(o.psf_sigma_vox[a], smooth_um / sp[a]);
    auto share = [&](double x) {  // of the film across it, in the voxel at x
      return 0.5 * (std::erfc(-(x + 0.5) / (s * std::sqrt(2.0))) - std::erfc(-(x - 0.5) / (s * std::sqrt(2.0))));
    };
    const double film = 2 * (share(0) - share(1)) * (mu_fit[1] - mu_fit[0]);
    valley_curvature[a] = std::max(0.05 * (mu_fit[1] - mu_fit[0]), 0.5 * film);
  }
  // Which phases are confidently present at each voxel (bit k), from the leave-one-out grey.
  std::vector<double> cut = fit.thresholds(), flat(static_cast<std::size_t>(k), 0.0);
  for (int c = 1; c + 1 < k; ++c) flat[c] = 0.5 * (mu_fit[c + 1] - mu_fit[c - 1]) / (kSqrt2Pi * slope_sigma);
  const double dark_limit = mu_fit[0] + 0.75 * (mu_fit[1] - mu_fit[0]);
  const double bright_limit = mu_fit[k - 1] - 0.75 * (mu_fit[k - 1] - mu_fit[k - 2]);
  Volume<std::uint8_t> conf = grey.like<std::uint8_t>(d);
  auto at = [&](index_t x, index_t y, index_t z) { return static_cast<double>(gs(x, y, z)); };
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    const index_t zm = z > 0 ? z - 1 : z, zp = z + 1 < d.z ? z + 1 : z;
    for (index_t y = 0; y < d.y; ++y) {
      const index_t ym = y > 0 ? y - 1 : y, yp = y + 1 < d.y ? y + 1 : y;
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + d.x * (y + d.y * z);
        const double g = loo(i);
        std::uint8_t bits = 0;
        if (g < dark_limit) bits |= 1;
        if (g > bright_limit) bits |= static_cast<std::uint8_t>(1u << (k - 1));
        const auto c = static_cast<int>(std::upper_bound(cut.begin(), cut.end(), g) - cut.begin());
        if (c > 0 && c < k - 1) {
          const index_t xm = x > 0 ? x - 1 : x, xp = x + 1 < d.x ? x + 1 : x;
          const double gx = 0.5 * (at(xp, y, z) - at(xm, y, z)), gy = 0.5 * (at(x, yp, z) - at(x, ym, z));
          const double gz = 0.5 * (at(x, y, zp) - at(x, y, zm));
          if (gx * gx + gy * gy + gz * gz < flat[c] * flat[c]) bits |= static_cast<std::uint8_t>(1u << c);
        }
        conf[i] = bits;
      }
    }
  });
  // The phases right next to a voxel (one voxel away) are the ones its blend is made of.
  Volume<std::uint8_t> adjacent = or_dilate(conf, {1, 1, 1});
  // With at most 3 classes the middle classes' confident bits (all the labelling reads of `conf`
  // after this) ride above the adjacent ones, bit c at k + c − 1: 1 B per voxel less from here on.
  const bool conf_packed = k <= 3;
  if (conf_packed) {
    const unsigned middle = ((1u << k) - 1) & ~1u & ~(1u << (k - 1));
    tbb::parallel_for(tbb::blocked_range<index_t>(0, conf.size(), 1 << 16), [&](const tbb::blocked_range<index_t>& r) {
      for (index_t i = r.begin(); i != r.end(); ++i)
        adjacent[i] = static_cast<std::uint8_t>(adjacent[i] | (conf[i] & middle) << (k - 1));
    });
    conf = Volume<std::uint8_t>();
  }
  // The phases within `radius`: a box of radius r is the radius-1 box grown by r − 1 (the same
  // clamped box at the borders), so `near` grows from `adjacent` (its bits from k on, dilated
  // too, are masked off below).
  std::array<int, 3> beyond_adjacent{};
  for (int a = 0; a < 3; ++a) beyond_adjacent[a] = std::max(0, radius[a] - 1);
  Volume<std::uint8_t> near = or_dilate(adjacent, beyond_adjacent);
  // With at most 4 classes both masks fit in one byte: the adjacent phases (and with at most 3
  // the middle classes' confident bits above them) move to the high nibble of `near`, 1 B per
  // voxel less while the labels are made.
  const bool packed = k <= 4;
  const unsigned class_mask = (1u << k) - 1;
  if (packed) {
    tbb::parallel_for(tbb::blocked_range<index_t>(0, near.size(), 1 << 16), [&](const tbb::blocked_range<index_t>& r) {
      for (index_t i = r.begin(); i != r.end(); ++i)
        near[i] = static_cast<std::uint8_t>((near[i] & class_mask) | adjacent[i] << 4);
    });
    adjacent = Volume<std::uint8_t>();
  }
  const std::uint8_t* adjacent_bits = packed ? near.data() : adjacent.data();
  const unsigned near_mask = packed ? 0xFu : 0xFFu, adjacent_shift = packed ? 4 : 0;
  auto near_phases = [&](index_t i) { return near[i] & near_mask; };
  auto adjacent_phases = [&](index_t i) {
    return static_cast<unsigned>(adjacent_bits[i] >> adjacent_shift) & class_mask;
  };
  // Whether middle class c is confidently present at voxel i.
  const std::uint8_t* conf_bits = conf_packed ? near.data() : conf.data();
  const unsigned conf_shift = conf_packed ? 4 + k - 1 : 0;
  auto confident = [&](index_t i, int c) { return (conf_bits[i] >> (conf_shift + c)) & 1u; };

  // End-member centres: the median grey of voxels with a single phase near them.
  std::vector<double> centre = mu_fit;
  {
    const double lo = mu_fit.front() - 8 * sigma.front(), hi = mu_fit.back() + 8 * sigma.back();
    const int bins = 4096;
    const double bw = (hi - lo) / bins;
    using Counts = std::vector<std::int64_t>;
    tbb::enumerable_thread_specific<Counts> local(Counts(static_cast<std::size_t>(k * bins), 0));
    tbb::parallel_for(tbb::blocked_range<index_t>(0, grey.size(), 1 << 15), [&](const tbb::blocked_range<index_t>& r) {
      Counts& c = local.local();
      for (index_t i = r.begin(); i != r.end(); ++i) {
        const unsigned p = near_phases(i);
        if (p == 0 || (p & (p - 1))) continue;
        const int cls = std::countr_zero(p);
        const int b = std::clamp(static_cast<int>((grey[i] - lo) / bw), 0, bins - 1);
        ++c[static_cast<std::size_t>(cls * bins + b)];
      }
    });
    Counts total(static_cast<std::size_t>(k * bins), 0);
    for (const Counts& c : local)  // integer sums: order-free, deterministic
      for (std::size_t i = 0; i < total.size(); ++i) total[i] += c[i];
    for (int cls = 0; cls < k; ++cls) {
      const std::int64_t n =
          std::accumulate(total.begin() + cls * bins, total.begin() + (cls + 1) * bins, std::int64_t{0});
      if (n < kMinPureVoxels) continue;
      std::int64_t acc = 0;
      for (int b = 0; b < bins; ++b) {
        const std::int64_t c = total[static_cast<std::size_t>(cls * bins + b)];
        if (2 * (acc + c) >= n) {
          centre[cls] = lo + (b + (0.5 * n - acc) / std::max<std::int64_t>(c, 1)) * bw;
          break;
        }
        acc += c;
      }
    }
  }

  // Labels read a lightly smoothed grey: less noise at boundaries for little extra blur. It is
  // smoothed slab by slab below (bit for bit the whole volume's), so it never takes 4 B per voxel.
  const double label_sigma_um = o.label_sigma_vox * min_spacing;
  // Labels and unmixing sums, slice by slice, summed in slice order (deterministic).
  PartialVolumeResult out;
  out.labels = grey.like<std::uint8_t>(d);
  std::vector<SliceStats> stats(static_cast<std::size_t>(d.z));
  const unsigned all = (1u << k) - 1;
  std::vector<double> centre_cut, bridge_slope(static_cast<std::size_t>(k), 0.0);
  for (int c = 0; c + 1 < k; ++c) centre_cut.push_back(0.5 * (centre[c] + centre[c + 1]));
  // Per middle class: the least slope of a bridged voxel (bridged_middle_class).
  for (int c = 1; c + 1 < k; ++c)
    bridge_slope[c] = kBridgeSlope * ((centre[c + 1] - centre[c - 1]) / (kSqrt2Pi * slope_sigma));
  // Which of the two forward-model sweeps runs (kSharpPsf).
  const double widest_psf = *std::max_element(o.psf_sigma_vox.begin(), o.psf_sigma_vox.end());
  GaussianSlabs glab(grey, label_sigma_um);
  const bool rims_decided = k <= kMaxDecidedClasses;  // relabel_sandwiched_rims reads its comparisons from the labels
  for (index_t z0 = 0; z0 < d.z; z0 += kLabelSlab) {
    const index_t z1 = std::min(d.z, z0 + kLabelSlab);
    glab.smooth(z0, z1);
    tbb::parallel_for(z0, z1, [&](index_t z) {
      SliceStats& st = stats[static_cast<std::size_t>(z)];
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = x + d.x * (y + d.y * z);
          const double g = grey[i];
          const double gv = glab[i];
          const unsigned p = near_phases(i);
          const unsigned cand = p ? p : all;
          // Label: the nearest end member among the phases present nearby (midpoint rule).
          int best = -1, free_best = 0;
          for (int c = 0; c < k; ++c) {
            if (std::fabs(gv - centre[c]) < std::fabs(gv - centre[free_best])) free_best = c;
            if ((cand & (1u << c)) && (best < 0 || std::fabs(gv - centre[c]) < std::fabs(gv - centre[best]))) best = c;
          }
          if (best != free_best && free_best > 0 && free_best < k - 1) ++st.rim;
          // Middle-class grey on a blurred darker|brighter edge: a blend of the two ends, not the
          // middle phase; labelled by their midpoint and unmixed with them.
          std::pair<int, int> bridge{-1, -1};
          if (free_best > 0 && free_best < k - 1) {
            bridge = bridged_middle_class(gs, x, y, z, free_best, centre_cut, slope_sigma, bridge_slope[free_best]);
            if (bridge.first >= 0) {
              const int to = gv <= 0.5 * (centre[bridge.first] + centre[bridge.second]) ? bridge.first : bridge.second;
              if (best == free_best) ++st.rim;
              best = to;
            }
          }
          // A valley of the smoothed grey darker than class 1 is a film of the darkest class
          // thinner than the PSF: keep it in the labels so that connectivity sees it.
          if (o.thin_pores && best != 0 && (cand & 1u) &&
              darkest_film_valley(gs, x, y, z, valley_depth, valley_curvature)) {
            best = 0;
            ++st.thin;
          }
          // The rim pass's comparisons for this voxel, made here on the label grey it would smooth again.
          const unsigned rims = rims_decided && best > 0 && best < k - 1 ? rim_decisions(gv, best, centre) : 0u;
          out.labels[i] = static_cast<std::uint8_t>(best | rims << kRimBits);
          // Fractions: pure when one phase is near and the neighbourhood grey says so.
          const double gl = loo(i);
          if (p && !(p & (p - 1))) {
            const int c = std::countr_zero(p);
            if (std::fabs(gl - centre[c]) <= kPureWindow * loo_noise * pure_sigma[c]) {
              ++st.pure[c];
              st.pure_grey[c] += g;
              st.pure_grey2[c] += g * g;
              continue;
            }
          }
          // Unmixing: the darkest and brightest phase adjacent, with any middle phase adjacent
          // taking the share of the 3³ box where it is confidently present (flat); with one or
          // no phase adjacent, the candidates bracketing the neighbourhood grey.
          const unsigned adj = adjacent_phases(i);
          std::pair<int, int> ab;
          double shared = 0;
          std::array<double, kMaxClasses> share_of{};
          if (bridge.first >= 0) {
            ab = bridge;
          } else if (std::popcount(adj) >= 2) {
            const int lo = std::countr_zero(adj), hi = 31 - std::countl_zero(adj);
            ab = {lo, hi};
            if (std::popcount(adj) >= 3) {
              std::array<int, kMaxClasses> count{};
              int box = 0;
              for (index_t zz = std::max<index_t>(z - 1, 0); zz <= std::min(z + 1, d.z - 1); ++zz)
                for (index_t yy = std::max<index_t>(y - 1, 0); yy <= std::min(y + 1, d.y - 1); ++yy)
                  for (index_t xx = std::max<index_t>(x - 1, 0); xx <= std::min(x + 1, d.x - 1); ++xx, ++box)
                    for (int c = lo + 1; c < hi; ++c) count[c] += confident(xx + d.x * (yy + d.y * zz), c);
              for (int m = lo + 1; m < hi; ++m) {
                share_of[m] = static_cast<double>(count[m]) / box;
                shared += share_of[m];
              }
            }
          } else {
            ab = unmixing_pair(gl, cand, centre, k);
          }
          const auto [a, b] = ab;
          st.pair_weight[a * k + b] += 1 - shared;
          if (shared > 0)
            for (int m = a + 1; m < b; ++m) st.pair_share[static_cast<std::size_t>((a * k + b) * k + m)] += share_of[m];
          if (std::popcount(cand) >= 3) add_pairing_ambiguity(gl, ab, share_of, shared, cand, centre, st.ambiguity);
          ++st.pair_count[a * k + b];
          st.pair_grey[a * k + b] += g;
        }
    });
  }

  UnmixingSums sums;
  sums.classes = k;
  sums.voxels = grey.size();
  sums.pure.assign(k, 0);
  sums.pure_grey.assign(k, 0);
  sums.pure_grey2.assign(k, 0);
  sums.pair_count.assign(static_cast<std::size_t>(k * k), 0);
  sums.pair_grey.assign(static_cast<std::size_t>(k * k), 0);
  sums.pair_weight.assign(static_cast<std::size_t>(k * k), 0);
  sums.pair_share.assign(static_cast<std::size_t>(k * k * k), 0);
  std::vector<std::int64_t> label_count(k, 0);
  std::vector<double> ambiguity(static_cast<std::size_t>(k), 0.0);
  for (const SliceStats& st : stats) {
    for (int c = 0; c < k; ++c) {
      sums.pure[c] += st.pure[c];
      sums.pure_grey[c] += st.pure_grey[c];
      sums.pure_grey2[c] += st.pure_grey2[c];
    }
    for (int q = 0; q < k * k; ++q) {
      sums.pair_count[q] += st.pair_count[q];
      sums.pair_grey[q] += st.pair_grey[q];
      sums.pair_weight[q] += st.pair_weight[q];
      for (int m = 0; m < k; ++m) sums.pair_share[q * k + m] += st.pair_share[static_cast<std::size_t>(q * k + m)];
    }
    for (int c = 0; c < k; ++c) ambiguity[c] += st.ambiguity[c];
    out.thin_pore_voxels += st.thin;
    out.rim_voxels_avoided += st.rim;
  }

  // End members: the mean of the pure voxels (chosen without their own noise: unbiased), else the fit.
  const double n_total = static_cast<double>(grey.size());
  out.means = mu_fit;
  out.mean_uncertainty.assign(k, 0);
  const bool reference = !o.end_member_uncertainty.empty();
  if (reference && static_cast<int>(o.end_member_uncertainty.size()) != k)
    throw InputError("partial-volume labelling: " + std::to_string(o.end_member_uncertainty.size()) +
                     " end-member uncertainties for " + std::to_string(k) + " classes");
  for (int c = 0; c < k && reference; ++c) {
    // Reference end members stay as given; where this scan has its own pure voxels, half their
    // disagreement with the reference joins the reference's uncertainty (the model term below):
    // a reference biased for this scan (the SE of a 10 MPa scan under σ 1.5, whose grains have
    // no pure voxels, 18 300 for 22 000) must widen the interval, not narrow it.
    const double u = o.end_member_uncertainty[c];
    const auto n = static_cast<double>(sums.pure[c]);
    const double m = n > 0 ? sums.pure_grey[c] / n : mu_fit[c];
    out.mean_uncertainty[c] =
        sums.pure[c] >= kMinPureVoxels ? std::sqrt(u * u + 0.25 * (m - mu_fit[c]) * (m - mu_fit[c])) : u;
  }
  for (int c = 0; c < k && !reference; ++c) {
    const auto n = static_cast<double>(sums.pure[c]);
    if (sums.pure[c] >= kMinPureVoxels) {
      const double m = sums.pure_grey[c] / n;
      const double var = std::max(sums.pure_grey2[c] / n - m * m, 0.0);
      out.means[c] = m;
      // Statistical error, and the pure window's selection bias: a voxel inside it may still hold
      // some of a neighbour. Not the disagreement with the histogram fit: that is the fit's bias
      // (blends pull it), measured at 10–50× this mean's error against the generator's grey levels
      // (docs/segmentation-studies.md, "How wide the porosity_pv interval is, and why").
      const double window = kPureWindow * loo_noise * pure_sigma[c];
      out.mean_uncertainty[c] = std::sqrt(var / n + kPureWindowBias * kPureWindowBias * window * window);
    } else {
      // Only the histogram knows this end member: its standard error from the fitted weight,
      // and a quarter σ for the blend populations it is entangled with, plus the width those
      // blends added to its peak beyond the noise (they pull its mean by about as much: the SE
      // of 10 MPa scans under σ 1.5, 1 100–4 000 grey dark where the fitted σ exceeds the noise's
      // by 2 100–3 900).
      const double blend = std::sqrt(std::max(sigma[c] * sigma[c] - pure_sigma[c] * pure_sigma[c], 0.0));
      out.mean_uncertainty[c] = std::hypot(fitted_end_member_uncertainty(sigma[c], fit.weights[c], n_total), blend);
    }
  }
  for (int c = 0; c + 1 < k; ++c)
    if (!(out.means[c + 1] > out.means[c]))
      throw ComputeError("partial-volume end members are not ascending (class " + std::to_string(c) + ": " +
                         std::to_string(out.means[c]) + ", class " + std::to_string(c + 1) + ": " +
                         std::to_string(out.means[c + 1]) + ")");

  out.fraction_pv = unmixed_fractions(sums, out.means);
  out.unmixing = sums;
  for (int c = 0; c + 1 < k; ++c) out.thresholds.push_back(0.5 * (centre[c] + centre[c + 1]));
  out.pure_voxels = sums.pure;
  out.fraction_labels.resize(k);
  // The neighbourhood volumes are read for the last time above: free them (7 B per voxel) before
  // the rim pass copies the labels.
  gs = Volume<float>();
  conf = near = adjacent = Volume<std::uint8_t>();
  out.rim_voxels_avoided += relabel_sandwiched_rims(out.labels, grey, label_sigma_um, centre, rims_decided);
  // Under a sharp PSF the labels' loss to the blur ceiling is noise on boundary voxels, which no
  // per-voxel rule removes (thresholds at the true end members' midpoints lose more than the
  // rules): one sweep of the forward model reads each boundary voxel with its neighbours.
  const bool sharp_sweep = o.sharp_psf_sweep && widest_psf < kSharpPsf;
  // Under a wider PSF the loss is the same boundary noise, at every SNR: σ ≥ 0.85 scans take the
  // sweep too (low_snr_sweep), with the prior neutral beside the brightest class (the pair β
  // filled one-voxel pore films between AM and SE, raising the contact fraction).
  const bool low_snr_sweep = o.low_snr_sweep && widest_psf >= kSharpPsf;
  // Reported with the fit: the noise of the classes the widest step joins, not the scan's one σ
  // (under photon-counting noise the quiet pore pulls the median second difference down). A
  // class with too few pure voxels reads min(fitted, scan σ).
  out.scan_snr = scan_snr(out.means, class_noise_sigmas(sums, pure_sigma));
  if (sharp_sweep || low_snr_sweep) {
    ForwardModelOptions fm;
    if (sharp_sweep) {
      fm.max_sweeps = kSharpPsfSweeps;
      fm.local_means_sigma = kSharpPsfLocalMeansSigma;
      fm.neutral_beside_brightest = true;
    }
    if (low_snr_sweep) {
      fm.max_sweeps = kLowSnrSweeps;
      fm.neutral_beside_brightest = true;
      // The brightest class's end member taken locally where its neighbourhood is darker (a darker
      // AM grain, the cup's centre), the others global: global end members read darker grains'
      // voxels as SE or pore; local ones for every class took the contact further in 35 of 40 cells
      // (docs/segmentation-studies.md, "The σ ≥ 0.85 sweep with local end members for AM only").
      fm.local_means_sigma = kSharpPsfLocalMeansSigma;
      fm.local_means_classes = 1u << (k - 1);
      fm.local_means_darker_only = true;
    }
    fm.psf_sigma_vox = o.psf_sigma_vox;
    fm.noise_sigma = o.noise_sigma > 0 ? o.noise_sigma : *std::min_element(sigma.begin(), sigma.end());
    out.map_flips = forward_model_relabel(grey, out.labels, out.means, fm).flips;
  }
  for (auto v : out.labels.storage()) ++label_count[v];  // exact counts, divided once
  for (int c = 0; c < k; ++c) out.fraction_labels[c] = static_cast<double>(label_count[c]) / n_total;
  for (int q = 0; q < k * k; ++q) out.mixed_voxels += sums.pair_count[q];
  out.end_member_shift.assign(k, 0.0);
  // The fractions as a function of the end members (the interval below differentiates it): plain
  // unmixing, or with a refitted end member, the classes with measured end members unmixed with
  // the fit's end member for it and the rest split by the grey mean that unmixing conserves.
  int moved = -1;
  double moved_fit_mean = 0, grey_mean = 0;
  if (o.refit_end_members && !reference) {
    const int m = single_fit_only_class(sums, label_count);
    moved_fit_mean = m >= 0 ? out.means[m] : 0;
    for (int c = 0; c < k; ++c) grey_mean += out.fraction_pv[c] * out.means[c];
    if (m >= 0 && refit_fit_only_end_member(grey, sigma, m,
                                            fitted_end_member_uncertainty(sigma[m], fit.weights[m], n_total), o, out))
      moved = m;
  }
  // `fit_mean`: the refitted class's end member before the refit (the fit's, or its few pure voxels'
  // mean), which the kept classes are unmixed with.
  auto fractions_for = [&](const std::vector<double>& mu, double fit_mean) {
    if (moved < 0) return unmixed_fractions(sums, mu);
    std::vector<double> at_fit = mu;
    at_fit[moved] = fit_mean;
    return split_by_grey_mean(unmixed_fractions(sums, at_fit), mu, grey_mean, moved);
  };
  if (moved >= 0) out.fraction_pv = fractions_for(out.means, moved_fit_mean);

  // 95 % half-width: noise of the unmixed voxels plus end-member uncertainty (linearised).
  std::vector<double> var(static_cast<std::size_t>(k), 0.0);
  for (int a = 0; a < k; ++a)
    for (int b = a + 1; b < k; ++b) {
      const auto n = static_cast<double>(sums.pair_count[a * k + b]);
      const double span = out.means[b] - out.means[a];
      const double v = n * 0.5 * (sigma[a] * sigma[a] + sigma[b] * sigma[b]) / (span * span) / (n_total * n_total);
      var[a] += v;
      var[b] += v;
    }
  for (int j = 0; j < k; ++j) {
    const double h = 1e-4 * (out.means[k - 1] - out.means[0]);
    std::vector<double> up = out.means, dn = out.means;
    up[j] += h;
    dn[j] -= h;
    // A refitted end member and the fit's mean the kept classes are unmixed with are two readings
    // of one end member, a known shift apart: its error moves both (one term, the refitted end
    // member's uncertainty). Counted apart, the fit's whole uncertainty (its blend term, 2 000–5 000
    // grey) went through the split ×(μ_bright − μ_m)/(μ_m − μ_0): ± 0.17–0.20 for errors of 0.01–0.06.
    const double with_fit = j == moved ? h : 0;
    const auto fu = fractions_for(up, moved_fit_mean + with_fit), fd = fractions_for(dn, moved_fit_mean - with_fit);
    for (int c = 0; c < k; ++c) {
      const double deriv = (fu[c] - fd[c]) / (2 * h);
      var[c] += deriv * deriv * out.mean_uncertainty[j] * out.mean_uncertainty[j];
    }
  }
  // Three-phase voxels: the middle phase's share was fixed from its confident neighbours, not
  // measured; a share kMiddleShareError of it is uncertain (it moves volume between the middle
  // phase and the pair). Its own size, as before, made this term 0.02–0.09 of the half-width
  // where the errors are 0.002–0.01.
  for (int a = 0; a < k; ++a)
    for (int b = a + 2; b < k; ++b)
      for (int m = a + 1; m < b; ++m) {
        const double share =
            kMiddleShareError * sums.pair_share[static_cast<std::size_t>((a * k + b) * k + m)] / n_total;
        for (int c : {a, b, m}) var[c] += share * share;
      }
  // Pairing: a share of the three-phase ambiguity, as one standard deviation (calibrated with the
  // other model terms at σ ≤ 1 voxel, above), growing with the PSF beyond 1 voxel.
  out.pairing_ambiguity.resize(k);
  out.pairing_share = pairing_share(widest_psf);
  for (int c = 0; c < k; ++c) {
    out.pairing_ambiguity[c] = ambiguity[c] / n_total;
    const double sd = out.pairing_share * out.pairing_ambiguity[c];
    var[c] += sd * sd;
  }
  // Films of the darkest class thinner than the PSF: where it has no pure voxels it lies only in
  // them, and a film whose neighbourhood grey never reads dark is unmixed as the next class's
  // blend (darkest + brightest reads as the middle class): the unmixing cannot see that share.
  // With the generator's end members it under-reads porosity by 17–24 % of the truth at σ 0.7 and
  // 370 MPa (the pairing and middle-share terms there were ± 0.004 for an error of 0.005–0.007).
  if (sums.pure[0] < kMinPureVoxels) {
    const double sd = kHiddenFilmShare * out.fraction_pv[0];
    var[0] += sd * sd;
    var[1] += sd * sd;
  }
  out.fraction_pv_ci95.resize(k);
  for (int c = 0; c < k; ++c) out.fraction_pv_ci95[c] = 1.96 * std::sqrt(var[c]);
  return out;
}

void widen_for_misfit(PartialVolumeResult& pv, double fit_ks) {
  const std::size_t k = pv.fraction_pv.size();
  for (std::size_t c = 0; c < k && c < pv.fraction_labels.size(); ++c) {
    const double boundaries = (c > 0 ? 1.0 : 0.0) + (c + 1 < k ? 1.0 : 0.0);
    pv.fraction_pv_ci95[c] += std::fabs(pv.fraction_pv[c] - pv.fraction_labels[c]) + boundaries * fit_ks;
  }
}

}  // namespace vp
