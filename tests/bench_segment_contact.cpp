// Contact-area fraction from the grey beside AM (issue 11 item 6): candidate estimators measured
// against phantoms with exact truth and the bundled series (docs/segmentation-studies.md, "A contact
// fraction from the grey beside AM: measured, not shipped"). Not wired into the pipeline: none of
// them beats the label-based `contact_area_fraction` across the grid.
//
// Estimators, each on the `auto` labels and end members of `segment_grey`:
//   label   `contact_area` of the labels (the shipped metric);
//   shell   the grey residual g − B(μ[L]) (B: the estimated PSF) solved by conjugate gradients
//           for the attenuation of every non-AM voxel within 2 (chessboard) of AM, observed on
//           the band ± 3 around the AM boundary; each first-layer voxel unmixed linearly between
//           SE and pore, and the Crofton crossings AM → that voxel weighted by its SE share. Linear
//           in the grey, so unbiased in aggregate when the AM labels are right; its 95 % half-width
//           is the noise term 1.96 σ √(cᵀ N⁻¹ c) of the same solve;
//   boot    shell minus its bias on a re-imaged copy of the labels (fitted end members, PSF and
//           noise), re-segmented with the same PSF;
//   ii      indirect inference: 1-voxel pore films inserted into the labels on a fraction q of
//           the SE voxels beside AM (patches of a smoothed random field), re-imaged, segmented
//           and measured with `shell`; the contact of the film-inserted labels interpolated to
//           the q whose simulated `shell` equals the observed one (q = 0 and 0.2).
// --relabel: forward-model MAP relabelling of the `auto` labels (filters/segment/forward_model.h;
// docs/segmentation-studies.md, "Forward-model MAP relabelling: measured, not shipped"): contact, Dice and
// label porosity before and after, with the fitted and with the true end members / PSF / noise σ,
// and started from the truth labels; --z, --single-beta, --anneal SWEEPS T, --refit, --sweeps set
// its options; --snr, --blur, --pressures restrict the grid.
// --films: `auto` without and with the pore films of a per-face profile fit
// (filters/segment/film_profile.h; docs/segmentation-studies.md, "Pore films from a per-face profile fit"):
// contact, Dice and label porosity against the blur ceiling, and where `auto`'s AM|SE faces lie on
// the truth; --false-alarm A sets α, --true-model fits with the true end members / PSF / noise σ,
// --restore-am turns on FilmProfileOptions::restore_am; per case it also prints the fitted faces by
// the truth along their lines (recall of the truth's films, false films, the statistic's quantiles,
// the counts at other thresholds and pooled over neighbours: "Pore films: why the per-face fit finds so few");
// with --series DIR it reads every <name>.truth.json, <name>.tif, <name>_labels.tif there instead.
// --am-surface: how much of the label contact's bias `auto`'s receded AM explains (docs/segmentation-studies.md,
// "The AM surface and the contact bias"): contact with the true AM and `auto`'s pore/SE, with
// `auto`'s AM and the true pore/SE, with the lost AM layer given back, with the voxels beside the
// (true or `auto`) AM re-read with AM's blur taken out; and one candidate, SE runs of ≤ K voxels
// (--run K; default from the PSF σ) between AM and pore split at the AM|pore grey midpoint. The
// truth enters only these diagnostics, never the candidate.
// --trace: where `auto`'s contact excess lies (docs/segmentation-studies.md, "The contact excess at
// σ ≥ 1, 10 MPa, traced"): every Crofton crossing from `auto`'s AM to SE classified by the truth along
// its line (a true contact, an SE skin on a true AM|pore edge by `auto`'s SE run length, a pore film
// missed; AM receded or grown), per scan, and the runs AM | SE (m ≤ 3) | pore by that class;
// --gap-margin M also runs a candidate (SE runs between two AM faces read as a pore or an SE gap by
// a blurred-profile fit, `relabel_pore_gaps`) and prints its contact, Dice and label porosity.
// Usage: bench_segment_contact [--full] [--size N] [--seeds N | A-B] [--series DIR]
//   default: seed 1, SNR 8, blur 1, 64³, 10 and 250 MPa; --full: seeds 1–3, SNR 5/8/12, blur
//   0.7/1.0/1.5, 10/50/125/250/370 MPa, 96³. CPU seconds (user + sys) are printed per case.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_measure.h"
#include "core/neighbourhood.h"
#include "filters/io/volume_io.h"
#include "filters/preprocess/psf.h"
#include "filters/segment/film_profile.h"
#include "filters/segment/forward_model.h"
#include "filters/segment/partial_volume.h"
#include "filters/segment/segmenter.h"
#include "metrics/interfaces.h"
#include "phantoms/phantom.h"
#include "test_composite_scan.h"

using namespace vp;
using vp::bench::cpu_seconds;
namespace fs = std::filesystem;

namespace {

// Chessboard distance (26-neighbourhood) from the voxels where `seed` is set, capped at max_d + 1.
Volume<std::uint8_t> chessboard_distance(const Volume<std::uint8_t>& seed, int max_d) {
  const Dims d = seed.dims();
  Volume<std::uint8_t> dist = seed.like<std::uint8_t>(d);
  for (index_t i = 0; i < dist.size(); ++i) dist[i] = seed[i] ? 0 : 255;
  for (int step = 1; step <= max_d; ++step) {
    Volume<std::uint8_t> next = dist;
    for (index_t z = 0; z < d.z; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = x + d.x * (y + d.y * z);
          if (dist[i] != 255) continue;
          bool hit = false;
          for (int dz = -1; dz <= 1 && !hit; ++dz)
            for (int dy = -1; dy <= 1 && !hit; ++dy)
              for (int dx = -1; dx <= 1 && !hit; ++dx) {
                const index_t xx = x + dx, yy = y + dy, zz = z + dz;
                if (xx < 0 || yy < 0 || zz < 0 || xx >= d.x || yy >= d.y || zz >= d.z) continue;
                hit = dist[xx + d.x * (yy + d.y * zz)] == step - 1;
              }
          if (hit) next[i] = static_cast<std::uint8_t>(step);
        }
    dist = std::move(next);
  }
  return dist;
}

struct ShellEstimate {
  double contact = NAN;        // shell estimate
  double label_contact = NAN;  // the same crossings read from the labels (equals contact_area)
  double ci95 = NAN;           // noise half-width
};

// Labels: 0 pore, 1 SE, 2 AM (ascending grey); means likewise.
ShellEstimate shell_contact(const Volume<float>& grey, const Volume<std::uint8_t>& labels, const double means[3],
                            const std::array<double, 3>& psf, double noise_sigma, int iterations = 40, int band = 2) {
  const Dims d = grey.dims();
  const index_t n = grey.size();
  Volume<std::uint8_t> am = labels.like<std::uint8_t>(d), not_am = labels.like<std::uint8_t>(d);
  for (index_t i = 0; i < n; ++i) am[i] = labels[i] == 2, not_am[i] = labels[i] != 2;
  const auto out = chessboard_distance(am, band + 3);
  const auto in = chessboard_distance(not_am, 3);
  std::vector<char> unknown(n), observed(n);
  for (index_t i = 0; i < n; ++i) {
    unknown[i] = labels[i] != 2 && out[i] >= 1 && out[i] <= band;
    observed[i] = (labels[i] != 2 && out[i] <= band + 3) || (labels[i] == 2 && in[i] <= 3);
  }
  Volume<float> model = grey.like<float>(d);
  for (index_t i = 0; i < n; ++i) model[i] = static_cast<float>(means[labels[i]]);
  const auto blurred = gaussian_blur(model, psf);
  Volume<float> residual = grey.like<float>(d);
  for (index_t i = 0; i < n; ++i) residual[i] = observed[i] ? grey[i] - blurred[i] : 0.f;
  // Normal operator P_U B P_O B P_U (B symmetric).
  auto normal = [&](const Volume<float>& x) {
    auto bx = gaussian_blur(x, psf);
    for (index_t i = 0; i < n; ++i)
      if (!observed[i]) bx[i] = 0;
    auto bb = gaussian_blur(bx, psf);
    for (index_t i = 0; i < n; ++i)
      if (!unknown[i]) bb[i] = 0;
    return bb;
  };
  auto solve = [&](const Volume<float>& rhs) {
    Volume<float> x = grey.like<float>(d);
    for (index_t i = 0; i < n; ++i) x[i] = 0;
    Volume<float> r = rhs, p = rhs;
    double rr = 0;
    for (index_t i = 0; i < n; ++i) rr += double(r[i]) * r[i];
    const double rr0 = rr;
    for (int it = 0; it < iterations && rr > 1e-12 * rr0; ++it) {
      const auto ap = normal(p);
      double pap = 0;
      for (index_t i = 0; i < n; ++i) pap += double(p[i]) * ap[i];
      const double a = rr / pap;
      double rn = 0;
      for (index_t i = 0; i < n; ++i) {
        x[i] += static_cast<float>(a * p[i]);
        r[i] -= static_cast<float>(a * ap[i]);
        rn += double(r[i]) * r[i];
      }
      const double b = rn / rr;
      rr = rn;
      for (index_t i = 0; i < n; ++i) p[i] = static_cast<float>(r[i] + b * p[i]);
    }
    return x;
  };
  auto rhs = gaussian_blur(residual, psf);
  for (index_t i = 0; i < n; ++i)
    if (!unknown[i]) rhs[i] = 0;
  const auto x = solve(rhs);
  const auto dirs = crofton_directions(grey.spacing_um);
  const Vec3 h = grey.spacing_um;
  Volume<float> weight = grey.like<float>(d);
  for (index_t i = 0; i < n; ++i) weight[i] = 0;
  double total = 0, se_share = 0, se_labels = 0;
  for (int k = 0; k < 13; ++k) {
    const auto s = dirs.step[k];
    const double len = std::sqrt(s[0] * h[0] * s[0] * h[0] + s[1] * h[1] * s[1] * h[1] + s[2] * h[2] * s[2] * h[2]);
    const double w = dirs.weight[k] / len;
    for (index_t z = 0; z < d.z; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t xx = 0; xx < d.x; ++xx) {
          const index_t x2 = xx + s[0], y2 = y + s[1], z2 = z + s[2];
          if (x2 < 0 || y2 < 0 || z2 < 0 || x2 >= d.x || y2 >= d.y || z2 >= d.z) continue;
          const index_t i = xx + d.x * (y + d.y * z), j = x2 + d.x * (y2 + d.y * z2);
          if ((labels[i] == 2) == (labels[j] == 2)) continue;
          const index_t o = labels[i] == 2 ? j : i;
          const double pore = (means[1] - (means[labels[o]] + x[o])) / (means[1] - means[0]);
          total += w;
          se_share += w * (1 - pore);
          se_labels += w * (labels[o] == 1);
          weight[o] += static_cast<float>(w);
        }
  }
  // The estimate is cᵀx + const with x = N⁻¹ P_U B P_O g: its noise variance is σ² cᵀ N⁻¹ c.
  Volume<float> c = grey.like<float>(d);
  for (index_t i = 0; i < n; ++i) c[i] = static_cast<float>(weight[i] / (total * (means[1] - means[0])));
  const auto y = solve(c);
  double var = 0;
  for (index_t i = 0; i < n; ++i) var += double(c[i]) * y[i];
  return {se_share / total, se_labels / total, 1.96 * noise_sigma * std::sqrt(std::max(0.0, var))};
}

// `auto` with three classes on a grey scan, or nothing where it refuses (exit 2 through the CLI).
std::optional<SegmentResult> auto_three_classes(const Volume<float>& grey) {
  SegmentOptions so;
  so.classes = 3;
  try {
    return segment_grey(grey, so);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

struct Row {
  double truth = NAN, truth_labels = NAN, label = NAN, shell = NAN, boot = NAN, ii = NAN, ii_ci = NAN;
  double cpu_segment = NAN, cpu_shell = NAN, cpu_all = NAN;
  bool refused = false;
};

Row measure_case(const Volume<float>& grey, const LabelVolume& truth_labels, double truth) {
  Row row;
  row.truth = truth;
  row.truth_labels = contact_area(truth_labels).fraction;
  const double t0 = cpu_seconds();
  const std::optional<SegmentResult> segmented = auto_three_classes(grey);
  if (!segmented) {
    row.refused = true;
    return row;
  }
  const SegmentResult& r = *segmented;
  const double t1 = cpu_seconds();
  const auto& pv = *r.partial_volume;
  const double noise = r.auto_fit->noise_sigma;
  LabelVolume lv;
  static_cast<Volume<std::uint8_t>&>(lv) = r.labels;
  lv.phases = truth_labels.phases;
  row.label = contact_area(lv).fraction;
  const ShellEstimate e = shell_contact(grey, r.labels, pv.means.data(), r.psf_sigma_vox, noise);
  const double t2 = cpu_seconds();
  row.shell = e.contact;
  // Film insertion field (fixed seed) and the SE voxels beside AM it acts on.
  Volume<std::uint8_t> am = r.labels.like<std::uint8_t>(r.labels.dims());
  for (index_t i = 0; i < am.size(); ++i) am[i] = r.labels[i] == 2;
  const auto beside = chessboard_distance(am, 1);
  std::uint64_t state = 12345;
  auto uniform = [&]() {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (state >> 11) * (1.0 / 9007199254740992.0);
  };
  Volume<float> field = grey.like<float>(grey.dims());
  for (index_t i = 0; i < field.size(); ++i) field[i] = static_cast<float>(uniform());
  field = gaussian_blur(field, {1.5, 1.5, 1.5});
  std::vector<float> ranks;
  for (index_t i = 0; i < field.size(); ++i)
    if (r.labels[i] == 1 && beside[i] == 1) ranks.push_back(field[i]);
  std::sort(ranks.begin(), ranks.end());
  SegmentOptions fixed;
  fixed.classes = 3;
  fixed.partial_volume.psf_sigma_vox = r.psf_sigma_vox;
  struct Sim {
    double shell, ci95, contact;
  };
  auto simulate = [&](double q) {
    Volume<std::uint8_t> lq = r.labels;
    if (q > 0 && !ranks.empty()) {
      const float cut = ranks[std::min(ranks.size() - 1, static_cast<std::size_t>((1 - q) * ranks.size()))];
      for (index_t i = 0; i < lq.size(); ++i)
        if (lq[i] == 1 && beside[i] == 1 && field[i] >= cut) lq[i] = 0;
    }
    Volume<float> m = grey.like<float>(grey.dims());
    for (index_t i = 0; i < m.size(); ++i) m[i] = static_cast<float>(pv.means[lq[i]]);
    auto sim = gaussian_blur(m, r.psf_sigma_vox);
    for (index_t i = 0; i < sim.size(); ++i) {
      const double a = uniform(), b = uniform();
      sim[i] += static_cast<float>(noise * std::sqrt(-2 * std::log(a + 1e-300)) * std::cos(6.283185307 * b));
    }
    const auto rs = segment_grey(sim, fixed);
    const ShellEstimate es =
        shell_contact(sim, rs.labels, rs.partial_volume->means.data(), rs.psf_sigma_vox, rs.auto_fit->noise_sigma);
    const ShellEstimate ec = shell_contact(sim, lq, pv.means.data(), r.psf_sigma_vox, noise, 1);
    return Sim{es.contact, es.ci95, ec.label_contact};
  };
  try {
    const Sim s0 = simulate(0), s1 = simulate(0.2);
    row.boot = e.contact - (s0.shell - s0.contact);
    const double t = (e.contact - s0.shell) / (s1.shell - s0.shell);
    row.ii = s0.contact + (s1.contact - s0.contact) * t;
    row.ii_ci = std::fabs((s1.contact - s0.contact) / (s1.shell - s0.shell)) *
                std::sqrt(e.ci95 * e.ci95 + s0.ci95 * s0.ci95 * (1 - t) * (1 - t) + s1.ci95 * s1.ci95 * t * t);
  } catch (const std::exception&) {
    // a re-imaged copy `auto` refuses: boot and ii stay NaN
  }
  row.cpu_segment = t1 - t0;
  row.cpu_shell = t2 - t1;
  row.cpu_all = cpu_seconds() - t0;
  return row;
}

void print_row(const char* tag, const Row& r) {
  if (r.refused) {
    std::printf("%s refused\n", tag);
    return;
  }
  std::printf(
      "%s truth %.4f | errors: truth labels %+.4f, label %+.4f, shell %+.4f, boot %+.4f, ii %+.4f ± %.4f | CPU s: "
      "segment %.1f, shell %.1f, all %.1f\n",
      tag, r.truth, r.truth_labels - r.truth, r.label - r.truth, r.shell - r.truth, r.boot - r.truth, r.ii - r.truth,
      r.ii_ci, r.cpu_segment, r.cpu_shell, r.cpu_all);
  std::fflush(stdout);
}

using bench::Mean;

using vp::testing::CompositeScan;

// The phantoms every mode measures: each seed's composite at each SNR, blur and pressure.
struct Grid {
  std::vector<std::uint64_t> seeds{1};
  std::vector<double> snrs{8}, blurs{1.0}, pressures{10, 250};
  index_t size = 64;
};

struct Cell {
  double snr, blur, p;
};

// A scan `auto` refused (exit 2 through the CLI): counted and its case line printed; true then,
// and the caller skips the scan.
bool count_refused_case(bool refused, int& count, std::uint64_t seed, const Cell& c) {
  if (!refused) return false;
  ++count;
  std::printf("case seed %llu SNR %g blur %g P %g: refused\n", static_cast<unsigned long long>(seed), c.snr, c.blur,
              c.p);
  return true;
}

// The modes' one loop over the grid, cells in the tables' row order (SNR × blur × pressure): per
// cell a fresh `Stats`, `scan(stats, cell, seed, composite)` for each seed's composite_scan, then
// `row(stats, cell)`, the cell's table row. Returns the rows.
template <class Stats, class Scan, class Row>
std::vector<std::string> grid_rows(const Grid& grid, Scan&& scan, Row&& row) {
  std::vector<std::string> rows;
  for (double snr : grid.snrs)
    for (double blur : grid.blurs)
      for (double p : grid.pressures) {
        const Cell cell{snr, blur, p};
        Stats stats;
        for (std::uint64_t seed : grid.seeds)
          scan(stats, cell, seed, vp::testing::composite_scan(seed, p, snr, blur, grid.size));
        rows.push_back(row(stats, cell));
      }
  return rows;
}

struct Acc {
  double sum = 0, worst = 0;
  int n = 0;
  void add(double e) {
    if (std::isnan(e)) return;
    sum += e, ++n, worst = std::max(worst, std::fabs(e));
  }
  double mean() const { return n ? sum / n : NAN; }
};

// ---- Forward-model MAP relabelling (filters/segment/forward_model.h), `--relabel`: contact,
// Dice and label porosity of the `auto` labels before and after ICM with the fitted end members,
// PSF and noise σ; the same with the true ones (how much of the error is the model's); and ICM
// started from the truth labels with the true model (the estimator's own fixed-point bias).
struct LabelScore {
  double contact = NAN, porosity = NAN;
  std::array<double, 3> dice{NAN, NAN, NAN};
};

LabelScore score(const Volume<std::uint8_t>& labels, const LabelVolume& truth) {
  LabelVolume lv;
  static_cast<Volume<std::uint8_t>&>(lv) = labels;
  lv.phases = truth.phases;
  LabelScore s;
  s.contact = contact_area(lv).fraction;
  double pores = 0;
  for (index_t i = 0; i < labels.size(); ++i) pores += labels[i] == 0;
  s.porosity = pores / static_cast<double>(labels.size());
  for (int k = 0; k < 3; ++k) s.dice[k] = vp::testing::dice(labels, truth, k);
  return s;
}

struct RelabelRow {
  bool refused = false;
  double truth = NAN, porosity_truth = NAN, cpu_icm = NAN;
  LabelScore truth_labels, before, after, after_true_model, from_truth;
  std::array<double, 3> ceiling{NAN, NAN, NAN};
  std::int64_t flips = 0;
  int sweeps = 0;
};

int g_sweeps = ForwardModelOptions{}.max_sweeps, g_anneal = 0;
double g_temperature = 1;
bool g_refit = false, g_single_beta = false, g_neutral = false;

RelabelRow relabel_case(const CompositeScan& s, double z) {
  const phantom::Phantom& ph = s.phantom;
  const phantom::ImagingSpec& im = s.imaging;
  const Volume<float>& g = s.grey;
  RelabelRow row;
  row.truth = ph.truth.contact_area_fraction;
  row.porosity_truth = ph.truth.volume_fraction.at("pore");
  row.truth_labels = score(ph.labels, ph.labels);
  {
    // One-voxel films beside AM on the truth, per AM face: SE between AM and pore, pore between AM and SE.
    const LabelVolume& t = ph.labels;
    const Dims d = t.dims();
    double faces = 0, se_films = 0, pore_films = 0;
    for (index_t z = 0; z < d.z; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          if (t(x, y, z) != phantom::kActive) continue;
          const index_t pos[3] = {x, y, z};
          for (int a = 0; a < 3; ++a)
            for (int dir : {-1, 1}) {
              index_t p1[3] = {pos[0], pos[1], pos[2]}, p2[3] = {pos[0], pos[1], pos[2]};
              p1[a] += dir, p2[a] += 2 * dir;
              if (p2[a] < 0 || p2[a] >= d[a]) continue;
              const int n1 = t(p1[0], p1[1], p1[2]), n2 = t(p2[0], p2[1], p2[2]);
              if (n1 == phantom::kActive) continue;
              ++faces;
              se_films += n1 == phantom::kElectrolyte && n2 == phantom::kPore;
              pore_films += n1 == phantom::kPore && n2 == phantom::kElectrolyte;
            }
        }
    std::printf("  truth: one-voxel films per AM face: SE between AM and pore %.4f, pore between AM and SE %.4f\n",
                se_films / faces, pore_films / faces);
  }
  {
    const auto l = vp::testing::blur_ceiling_labels(ph.labels, im);
    for (int k = 0; k < 3; ++k) row.ceiling[k] = vp::testing::dice(l, ph.labels, k);
  }
  const std::optional<SegmentResult> segmented = auto_three_classes(g);
  if (!segmented) {
    row.refused = true;
    return row;
  }
  const SegmentResult& r = *segmented;
  row.before = score(r.labels, ph.labels);
  ForwardModelOptions fo;
  fo.psf_sigma_vox = r.psf_sigma_vox;
  fo.noise_sigma = r.auto_fit->noise_sigma;
  fo.flat_interface_z = z;
  fo.single_beta = g_single_beta;
  fo.neutral_beside_brightest = g_neutral;
  fo.max_sweeps = g_sweeps;
  fo.anneal_sweeps = g_anneal;
  fo.anneal_temperature = g_temperature;
  fo.refit_means = g_refit;
  Volume<std::uint8_t> l = r.labels;
  const double t0 = cpu_seconds();
  const auto res = forward_model_relabel(g, l, r.partial_volume->means, fo);
  row.cpu_icm = cpu_seconds() - t0;
  row.flips = res.flips, row.sweeps = res.sweeps;
  row.after = score(l, ph.labels);
  std::printf(
      "  means fitted %.0f %.0f %.0f -> ICM %.0f %.0f %.0f, true %.0f %.0f %.0f; noise %.0f (true %.0f); PSF %.3f %.3f "
      "%.3f\n",
      r.partial_volume->means[0], r.partial_volume->means[1], r.partial_volume->means[2], res.means[0], res.means[1],
      res.means[2], im.grey_level("pore"), im.grey_level("se"), im.grey_level("am"), fo.noise_sigma, im.noise_sigma(),
      fo.psf_sigma_vox[0], fo.psf_sigma_vox[1], fo.psf_sigma_vox[2]);
  ForwardModelOptions truth_model = fo;
  truth_model.psf_sigma_vox = {im.blur_sigma_vox[0], im.blur_sigma_vox[1], im.blur_sigma_vox[2]};
  truth_model.noise_sigma = im.noise_sigma();
  truth_model.refit_means = false;
  const std::vector<double> mu{im.grey_level("pore"), im.grey_level("se"), im.grey_level("am")};
  l = r.labels;
  const auto fa = forward_model_relabel(g, l, mu, truth_model);
  std::printf("  from auto (true model): E %.1f -> %.1f, %lld flips in %d sweeps\n", fa.energy_before, fa.energy_after,
              static_cast<long long>(fa.flips), fa.sweeps);
  row.after_true_model = score(l, ph.labels);
  l = ph.labels;
  const auto ft = forward_model_relabel(g, l, mu, truth_model);
  std::printf("  from truth: E %.1f -> %.1f, %lld flips in %d sweeps\n", ft.energy_before, ft.energy_after,
              static_cast<long long>(ft.flips), ft.sweeps);
  row.from_truth = score(l, ph.labels);
  return row;
}

int relabel_main(const Grid& grid, double z) {
  std::printf("forward-model relabelling, %lld³, flat-interface z %g\n", static_cast<long long>(grid.size), z);
  struct Stats {
    Mean cb, ca, ct, cf, ctl, pb, pa, pt, cpu;
    std::array<Mean, 3> db, da, dc;
    int refused = 0;
  };
  const auto lines = grid_rows<Stats>(
      grid,
      [&](Stats& m, const Cell& c, std::uint64_t seed, const CompositeScan& s) {
        const RelabelRow r = relabel_case(s, z);
        if (count_refused_case(r.refused, m.refused, seed, c)) return;
        std::printf(
            "case seed %llu SNR %g blur %g P %g: contact − truth auto %+.4f icm %+.4f icm(true model) %+.4f "
            "icm(from truth) %+.4f truth labels %+.4f | Dice auto %.3f/%.3f/%.3f icm %.3f/%.3f/%.3f ceiling "
            "%.3f/%.3f/%.3f | label porosity − truth auto %+.4f icm %+.4f icm(true) %+.4f | flips %lld in %d "
            "sweeps, CPU %.2f s\n",
            static_cast<unsigned long long>(seed), c.snr, c.blur, c.p, r.before.contact - r.truth,
            r.after.contact - r.truth, r.after_true_model.contact - r.truth, r.from_truth.contact - r.truth,
            r.truth_labels.contact - r.truth, r.before.dice[0], r.before.dice[1], r.before.dice[2], r.after.dice[0],
            r.after.dice[1], r.after.dice[2], r.ceiling[0], r.ceiling[1], r.ceiling[2],
            r.before.porosity - r.porosity_truth, r.after.porosity - r.porosity_truth,
            r.after_true_model.porosity - r.porosity_truth, static_cast<long long>(r.flips), r.sweeps, r.cpu_icm);
        std::fflush(stdout);
        m.cb.add(r.before.contact - r.truth), m.ca.add(r.after.contact - r.truth);
        m.ct.add(r.after_true_model.contact - r.truth), m.cf.add(r.from_truth.contact - r.truth);
        m.ctl.add(r.truth_labels.contact - r.truth);
        m.pb.add(r.before.porosity - r.porosity_truth), m.pa.add(r.after.porosity - r.porosity_truth);
        m.pt.add(r.after_true_model.porosity - r.porosity_truth), m.cpu.add(r.cpu_icm);
        for (int k = 0; k < 3; ++k)
          m.db[k].add(r.before.dice[k]), m.da[k].add(r.after.dice[k]), m.dc[k].add(r.ceiling[k]);
      },
      [&](const Stats& m, const Cell& c) {
        char line[640];
        std::snprintf(line, sizeof line,
                      "| %g | %g | %g | %+.3f → %+.3f | %+.3f | %+.3f | %+.3f | %.3f/%.3f/%.3f → %.3f/%.3f/%.3f | "
                      "%.3f/%.3f/%.3f | %+.4f → %+.4f | %+.4f | %.2f | %d/%zu |\n",
                      c.snr, c.blur, c.p, m.cb.get(), m.ca.get(), m.ct.get(), m.cf.get(), m.ctl.get(), m.db[0].get(),
                      m.db[1].get(), m.db[2].get(), m.da[0].get(), m.da[1].get(), m.da[2].get(), m.dc[0].get(),
                      m.dc[1].get(), m.dc[2].get(), m.pb.get(), m.pa.get(), m.pt.get(), m.cpu.get(), m.refused,
                      grid.seeds.size());
        return std::string(line);
      });
  std::printf(
      "\n| SNR | blur σ | P MPa | contact − truth: auto → ICM | ICM, true end members/PSF/noise | ICM from the truth "
      "labels (true model) | truth labels | pore/SE/AM Dice auto → ICM | ceiling | label porosity − truth auto → "
      "ICM | ICM (true model) | ICM CPU s | refused |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& l : lines) std::printf("%s", l.c_str());
  return 0;
}

// ---- Pore films from a per-face profile fit (filters/segment/film_profile.h), `--films`: contact,
// Dice and label porosity of the `auto` labels without and with the film relabelling, against the
// blur ceiling (midpoint thresholds on the noise-free blurred image), and where the `auto` labels'
// AM|SE faces lie on the truth (face counts per AM face, along the axes).
struct FaceSplit {
  double faces = 0;  // AM faces of the labels (outside voxel not AM)
  double contact = 0, film[3] = {0, 0, 0}, pore_other = 0, false_am = 0, am_lost = 0, other = 0;
};

// every_face: classify every AM face of the labels, not only those whose outside voxel reads SE.
FaceSplit split_contact_faces(const Volume<std::uint8_t>& l, const LabelVolume& t, bool every_face = false) {
  const Dims d = l.dims();
  FaceSplit s;
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        if (l(x, y, z) != phantom::kActive) continue;
        const index_t pos[3] = {x, y, z};
        for (int a = 0; a < 3; ++a)
          for (int dir : {-1, 1}) {
            index_t q[3] = {pos[0], pos[1], pos[2]};
            q[a] += dir;
            if (q[a] < 0 || q[a] >= d[a]) continue;
            if (l(q[0], q[1], q[2]) == phantom::kActive) continue;
            ++s.faces;
            if (!every_face && l(q[0], q[1], q[2]) != phantom::kElectrolyte) continue;
            // The truth's first non-AM voxel along the line from the labels' face: outward past
            // AM the labels lost (a receded surface), or the labels' AM voxel itself (AM they added).
            index_t r[3] = {q[0], q[1], q[2]};
            if (t(x, y, z) != phantom::kActive) {
              ++s.false_am;
              r[a] -= dir;
            } else if (t(q[0], q[1], q[2]) == phantom::kActive) {
              ++s.am_lost;
              while (r[a] >= 0 && r[a] < d[a] && t(r[0], r[1], r[2]) == phantom::kActive) r[a] += dir;
              if (r[a] < 0 || r[a] >= d[a]) continue;
            }
            const int outside = t(r[0], r[1], r[2]);
            if (outside == phantom::kElectrolyte) {
              ++s.contact;
            } else if (outside == phantom::kPore) {
              int run = 0;
              while (r[a] >= 0 && r[a] < d[a] && t(r[0], r[1], r[2]) == phantom::kPore && run < 4) ++run, r[a] += dir;
              const bool ends_in_se = r[a] >= 0 && r[a] < d[a] && t(r[0], r[1], r[2]) == phantom::kElectrolyte;
              if (ends_in_se && run <= 3) ++s.film[run - 1];
              else ++s.pore_other;
            } else {
              ++s.other;
            }
          }
      }
  return s;
}

// P(χ²_k > c) for integer k (the pooled diagnostic's null).
double chi_square_survival(int k, double c) {
  if (k <= 0) return c < 0 ? 1.0 : 0.0;
  const double x = 0.5 * c;
  double sum = 0, term = 0;
  if (k % 2 == 0) {
    term = std::exp(-x);
    for (int j = 0; j < k / 2; ++j) sum += term, term *= x / (j + 1);
    return sum;
  }
  sum = std::erfc(std::sqrt(x));
  term = std::exp(-x) * std::sqrt(x) / std::tgamma(1.5);
  for (int j = 0; j < (k - 1) / 2; ++j) sum += term, term *= x / (j + 1.5);
  return sum;
}

// The level c with P(Σ of `lines` independent ½χ²₀ + ½χ²₁ > c) = α: the per-face criterion's null
// summed over a face's neighbours (the pooled diagnostic; = film_threshold(α) for one line).
double pooled_film_threshold(double false_alarm, int lines) {
  if (!(false_alarm > 0 && false_alarm < 0.5)) throw std::invalid_argument("pooled film threshold: α in (0, 0.5)");
  if (lines < 1) throw std::invalid_argument("pooled film threshold: at least one line");
  auto tail = [&](double c) {  // P(Σ of `lines` independent ½χ²₀ + ½χ²₁ > c)
    double p = 0, binom = std::pow(0.5, lines);
    for (int k = 0; k <= lines; ++k) {
      p += binom * chi_square_survival(k, c);
      binom *= static_cast<double>(lines - k) / (k + 1);
    }
    return p;
  };
  double lo = 0, hi = 10.0 * lines + 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (tail(mid) > false_alarm ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Where the film fit's decisions lie on the truth (`--films`, printed per case). Each fitted face
// is classified by the truth along its line from the labelled face, as split_contact_faces does:
// the truth's first non-AM voxel is SE (contact), a pore run of 1–3 voxels then SE (a film), or
// other pore (wider, or not ending in SE); per class the faces fitted and accepted, the mean
// statistic, and the truth under the SE voxels the accepted fits relabel. Then recall: every truth
// AM face followed by a 1–3-voxel pore film ending in SE, by what the labels and the fit did there.
void film_diagnostic(const Volume<std::uint8_t>& before, const Volume<std::uint8_t>& after, const LabelVolume& t,
                     const FilmProfileResult& r) {
  const Dims d = t.dims();
  enum { kContact, kFilm1, kFilm2, kFilm3, kOtherPore, kOther, kClasses };
  const char* names[kClasses] = {"contact", "film 1", "film 2", "film 3", "other pore", "other"};
  double fitted[kClasses] = {}, accepted[kClasses] = {}, stat[kClasses] = {}, vox[kClasses][3] = {};
  double exact[kClasses] = {}, lost_am[kClasses] = {};
  std::map<index_t, const FilmFace*> by_line;
  auto key = [](index_t v, int a, int dir) { return v * 6 + a * 2 + (dir > 0); };
  auto step = [&](index_t v, int a, long k, index_t* out) {
    index_t q[3] = {v % d.x, (v / d.x) % d.y, v / (d.x * d.y)};
    q[a] += k;
    if (q[a] < 0 || q[a] >= d[a]) return false;
    *out = q[0] + d.x * (q[1] + d.y * q[2]);
    return true;
  };
  // The truth along a fitted face's line, from the labels' AM voxel: its class, `k` the truth's AM
  // voxels from there (the first non-AM voxel is k steps out), `run` the pore run beyond them.
  auto truth_class = [&](const FilmFace& f, long& k, long& run) {
    const index_t v = f.am_voxel;
    index_t w = 0;
    k = 0, run = 0;
    if (t[v] == phantom::kActive) {
      k = 1;
      while (step(v, f.axis, f.dir * k, &w) && t[w] == phantom::kActive) ++k;
    }
    if (!step(v, f.axis, f.dir * k, &w)) return static_cast<int>(kOther);
    if (t[w] == phantom::kElectrolyte) return static_cast<int>(kContact);
    if (t[w] != phantom::kPore) return static_cast<int>(kOther);
    while (step(v, f.axis, f.dir * (k + run), &w) && t[w] == phantom::kPore && run < 4) ++run;
    const bool se = step(v, f.axis, f.dir * (k + run), &w) && t[w] == phantom::kElectrolyte;
    return se && run <= 3 ? kFilm1 + static_cast<int>(run) - 1 : static_cast<int>(kOtherPore);
  };
  std::map<index_t, int> cls_of;
  for (const FilmFace& f : r.faces) {
    by_line[key(f.am_voxel, f.axis, f.dir)] = &f;
    const index_t v = f.am_voxel;
    index_t w = 0;
    long k = 0, run = 0;
    const int cls = truth_class(f, k, run);
    cls_of[key(f.am_voxel, f.axis, f.dir)] = cls;
    if (f.film && cls >= kFilm1 && cls <= kFilm3) {
      // Exact: the relabelled voxels on this line are the truth's film voxels beyond the labelled face.
      bool ok = true;
      for (long j = 1; j <= k + run + 1; ++j) {
        if (!step(v, f.axis, f.dir * j, &w)) break;
        const bool truth_pore = t[w] == phantom::kPore;
        const bool read_pore = after[w] == 0 && before[w] == 1;
        if (before[w] == 1 && truth_pore != read_pore) ok = false;
      }
      exact[cls] += ok;
    }
    lost_am[cls] += k > 1;
    fitted[cls] += 1, stat[cls] += f.statistic;
    if (!f.film) continue;
    accepted[cls] += 1;
    for (long j = 1; j <= 8; ++j) {
      if (!step(v, f.axis, f.dir * j, &w)) break;
      if (before[w] == 1 && after[w] == 0) vox[cls][t[w]] += 1;
    }
  }
  // Pooled: per face the statistics of the fitted faces of the same axis and sense within ±R laterally
  // (one per lateral position, the nearest along the axis within ±1), summed and tested at α.
  for (int R : {1, 2, 3}) {
    double n_sum[kClasses] = {}, excess[kClasses] = {}, acc[kClasses] = {}, cnt[kClasses] = {};
    std::map<int, double> thr;
    for (const FilmFace& f : r.faces) {
      double S = 0;
      int N = 0;
      const int b = (f.axis + 1) % 3, c2 = (f.axis + 2) % 3;
      for (int du = -R; du <= R; ++du)
        for (int dv = -R; dv <= R; ++dv) {
          index_t u = 0;
          if (!step(f.am_voxel, b, du, &u) || !step(u, c2, dv, &u)) continue;
          for (int s : {0, -1, 1}) {
            index_t x = 0;
            if (!step(u, f.axis, s, &x)) continue;
            const auto it = by_line.find(key(x, f.axis, f.dir));
            if (it == by_line.end()) continue;
            S += it->second->statistic, ++N;
            break;
          }
        }
      if (!thr.count(N)) thr[N] = pooled_film_threshold(0.01, N);
      const int cls = cls_of[key(f.am_voxel, f.axis, f.dir)];
      cnt[cls] += 1, n_sum[cls] += N, excess[cls] += S - 0.5 * N, acc[cls] += S > thr[N];
    }
    std::printf("  pooled ±%d: lines / mean excess over 0.5 N / accepted rate:", R);
    for (int c = 0; c < kClasses - 1; ++c)
      std::printf(" %s %.1f/%.2f/%.3f (%.0f);", names[c], cnt[c] > 0 ? n_sum[c] / cnt[c] : 0.0,
                  cnt[c] > 0 ? excess[c] / cnt[c] : 0.0, cnt[c] > 0 ? acc[c] / cnt[c] : 0.0, acc[c]);
    std::printf("\n");
  }
  // Accepted per class at other thresholds, and the Benjamini–Hochberg threshold for FDR q with the
  // derived null (½χ²₀ + ½χ²₁; the scans' own null is wider, docs/segmentation-studies.md).
  {
    std::vector<double> st;
    for (const FilmFace& f : r.faces) st.push_back(f.statistic);
    std::sort(st.begin(), st.end(), std::greater<double>());
    const double m = static_cast<double>(st.size());
    for (double q : {0.5, 0.3, 0.2}) {
      double c_bh = INFINITY;
      for (std::size_t i = 0; i < st.size(); ++i) {  // largest k with p_(k) <= q k / m
        const double p = st[i] > 0 ? 0.5 * std::erfc(std::sqrt(st[i]) / std::sqrt(2.0)) : 1.0;
        if (p <= q * static_cast<double>(i + 1) / m) c_bh = st[i];
      }
      std::printf("  BH q %.1f: threshold %.2f\n", q, c_bh);
    }
    {  // the statistic's distribution on true contact faces (the null) and on all faces
      for (int which = 0; which < 2; ++which) {
        std::vector<double> v;
        for (const FilmFace& f : r.faces)
          if (which == 1 || cls_of[key(f.am_voxel, f.axis, f.dir)] == kContact) v.push_back(f.statistic);
        std::sort(v.begin(), v.end());
        const double n = static_cast<double>(v.size());
        double pos = 0;
        for (double x : v) pos += x > 1e-12;
        auto q = [&](double f) { return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(f * n))]; };
        std::vector<double> vp(v.end() - static_cast<long>(pos), v.end());
        std::printf(
            "  %s: share > 0 %.3f, quantiles 0.5/0.75/0.9/0.99 %.3f/%.3f/%.3f/%.3f, median of the positive %.3f\n",
            which ? "all faces" : "contact faces", pos / n, q(0.5), q(0.75), q(0.9), q(0.99),
            vp.empty() ? 0.0 : vp[vp.size() / 2]);
      }
    }
    for (double c : {5.41, 7.0, 9.55, 12.0, 16.0}) {
      double a[kClasses] = {};
      for (const FilmFace& f : r.faces) a[cls_of[key(f.am_voxel, f.axis, f.dir)]] += f.statistic > c;
      std::printf("  at %.2f accepted: contact %.0f film 1/2/3 %.0f/%.0f/%.0f other pore %.0f\n", c, a[0], a[1], a[2],
                  a[3], a[4]);
    }
  }
  std::printf(
      "  films by truth class: fitted / accepted (rate) / mean ΔRSS/σ² / relabelled voxels truly pore,SE,AM "
      "/ exact films / on AM the labels lost\n");
  for (int c = 0; c < kClasses; ++c)
    std::printf("    %-10s %7.0f / %6.0f (%.3f) / %6.2f / %5.0f,%5.0f,%5.0f / %5.0f / %5.0f\n", names[c], fitted[c],
                accepted[c], fitted[c] > 0 ? accepted[c] / fitted[c] : 0.0, fitted[c] > 0 ? stat[c] / fitted[c] : 0.0,
                vox[c][0], vox[c][1], vox[c][2], exact[c], lost_am[c]);
  // Recall over the truth's films: per truth AM face with a 1–3-voxel pore run then SE.
  double films[3] = {}, read_pore[3] = {}, am_over[3] = {}, face_fitted[3] = {}, face_found[3] = {}, se_unfit[3] = {},
         other[3] = {};
  for (index_t v = 0; v < t.size(); ++v) {
    if (t[v] != phantom::kActive) continue;
    for (int a = 0; a < 3; ++a)
      for (int dir : {-1, 1}) {
        index_t w = 0;
        long run = 0;
        while (step(v, a, dir * (run + 1), &w) && t[w] == phantom::kPore && run < 4) ++run;
        if (run < 1 || run > 3) continue;
        if (!(step(v, a, dir * (run + 1), &w) && t[w] == phantom::kElectrolyte)) continue;
        const int c = static_cast<int>(run) - 1;
        films[c] += 1;
        index_t f1 = 0;
        step(v, a, dir, &f1);
        if (before[f1] == 0) {
          read_pore[c] += 1;
          continue;
        }
        const FilmFace* hit = nullptr;
        for (long s = -1; s <= 1 && !hit; ++s) {
          index_t u = 0;
          if (!step(v, a, dir * s, &u)) continue;
          const auto it = by_line.find(key(u, a, dir));
          if (it != by_line.end()) hit = it->second;
        }
        if (hit) face_fitted[c] += 1, face_found[c] += hit->film;
        else if (before[f1] == 2) am_over[c] += 1;
        else if (before[v] == 2 && before[f1] == 1) se_unfit[c] += 1;
        else other[c] += 1;
      }
  }
  for (int c = 0; c < 3; ++c)
    std::printf(
        "  truth films of %d voxel(s): %.0f faces; labels read pore %.0f; fitted %.0f (accepted %.0f); AM over "
        "the film %.0f; AM|SE not fitted %.0f; other (AM lost, no AM|SE face) %.0f\n",
        c + 1, films[c], read_pore[c], face_fitted[c], face_found[c], am_over[c], se_unfit[c], other[c]);
}

struct FilmRow {
  bool refused = false;
  double truth = NAN, porosity_truth = NAN, cpu_films = NAN;
  LabelScore truth_labels, ceiling, before, after;
  FaceSplit split_before, split_after;
  FaceSplit split_truth;
  FilmProfileResult films;
};

double g_false_alarm = FilmProfileOptions{}.false_alarm;
bool g_true_model = false,
     g_restore_am = false;  // --true-model: the films fitted with the true end members, PSF and noise σ

// `auto` without and with the films on one grey scan with exact truth labels.
void measure_films(const Volume<float>& g, const LabelVolume& truth, FilmRow& row,
                   const phantom::ImagingSpec* true_model) {
  row.truth_labels = score(truth, truth);
  row.split_truth = split_contact_faces(truth, truth, true);
  const std::optional<SegmentResult> segmented = auto_three_classes(g);
  if (!segmented) {
    row.refused = true;
    return;
  }
  const SegmentResult& r = *segmented;
  row.before = score(r.labels, truth);
  row.split_before = split_contact_faces(r.labels, truth);
  Volume<std::uint8_t> l = r.labels;
  FilmProfileOptions fo;
  fo.false_alarm = g_false_alarm;
  fo.restore_am = g_restore_am;
  fo.record_faces = true;
  const double t0 = cpu_seconds();
  if (true_model) {
    const phantom::ImagingSpec& im = *true_model;
    row.films =
        relabel_pore_films(g, l, {im.grey_level("pore"), im.grey_level("se"), im.grey_level("am")},
                           {im.blur_sigma_vox[0], im.blur_sigma_vox[1], im.blur_sigma_vox[2]}, im.noise_sigma(), fo);
  } else {
    row.films = relabel_pore_films(g, l, r.partial_volume->means, r.psf_sigma_vox, r.auto_fit->noise_sigma, fo);
  }
  row.cpu_films = cpu_seconds() - t0;
  std::printf("  film threshold %.2f\n", row.films.threshold);
  std::printf("  end members %.0f %.0f %.0f, PSF %.3f %.3f %.3f, noise %.0f\n", r.partial_volume->means[0],
              r.partial_volume->means[1], r.partial_volume->means[2], r.psf_sigma_vox[0], r.psf_sigma_vox[1],
              r.psf_sigma_vox[2], r.auto_fit->noise_sigma);
  row.after = score(l, truth);
  row.split_after = split_contact_faces(l, truth);
  film_diagnostic(r.labels, l, truth, row.films);
}

FilmRow films_case(const CompositeScan& s) {
  const phantom::Phantom& ph = s.phantom;
  FilmRow row;
  row.truth = ph.truth.contact_area_fraction;
  row.porosity_truth = ph.truth.volume_fraction.at("pore");
  row.ceiling = score(vp::testing::blur_ceiling_labels(ph.labels, s.imaging), ph.labels);
  measure_films(s.grey, ph.labels, row, g_true_model ? &s.imaging : nullptr);
  return row;
}

// Every <name>.truth.json in DIR with <name>.tif and <name>_labels.tif beside it (a `voxpress
// phantom` output): contact − truth and label porosity − truth without and with the films.
void films_series(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    const std::string suffix = ".truth.json";
    if (f.size() > suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
      names.push_back(f.substr(0, f.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  std::printf(
      "\n| sample | contact truth | contact − truth: auto → films | truth labels | pore/SE/AM Dice auto → films | "
      "label porosity − truth auto → films | films / faces fitted |\n|---|---|---|---|---|---|---|\n");
  std::vector<std::string> lines;
  for (const auto& name : names) {
    std::ifstream in(fs::path(dir) / (name + ".truth.json"));
    const auto tj = nlohmann::json::parse(in);
    ReadOptions ro;
    ro.path = (fs::path(dir) / (name + ".tif")).string();
    const Volume<float> grey = to_float(read_volume(ro).volume);
    ro.path = (fs::path(dir) / (name + "_labels.tif")).string();
    LabelVolume truth;
    static_cast<Volume<std::uint8_t>&>(truth) = to_labels_u8(read_volume(ro).volume);
    truth.phases = phantom::phase_table(false);
    FilmRow r;
    r.truth = tj["contact_area_fraction"].get<double>();
    r.porosity_truth = tj["volume_fraction"]["pore"].get<double>();
    measure_films(grey, truth, r, nullptr);
    char line[512];
    if (r.refused) std::snprintf(line, sizeof line, "| %s | %.3f | refused | | | | |\n", name.c_str(), r.truth);
    else
      std::snprintf(line, sizeof line,
                    "| %s | %.3f | %+.3f → %+.3f | %+.3f | %.3f/%.3f/%.3f → %.3f/%.3f/%.3f | %+.4f → %+.4f | "
                    "%lld / %lld |\n",
                    name.c_str(), r.truth, r.before.contact - r.truth, r.after.contact - r.truth,
                    r.truth_labels.contact - r.truth, r.before.dice[0], r.before.dice[1], r.before.dice[2],
                    r.after.dice[0], r.after.dice[1], r.after.dice[2], r.before.porosity - r.porosity_truth,
                    r.after.porosity - r.porosity_truth, static_cast<long long>(r.films.films_accepted),
                    static_cast<long long>(r.films.faces_fitted));
    std::printf("%s", line);
    std::fflush(stdout);
  }
}

int films_main(const Grid& grid, const std::string& series) {
  if (!series.empty()) {
    films_series(series);
    return 0;
  }
  std::printf("pore films from a per-face profile fit, %lld³, false-alarm rate %g per face (threshold %.2f)\n",
              static_cast<long long>(grid.size), g_false_alarm, film_threshold(g_false_alarm));
  int better = 0, worse = 0, cells = 0;
  struct Stats {
    Mean cb, ca, cc, ctl, pb, pa, pc, cpu;
    std::array<Mean, 3> db, da, dc;
    int refused = 0;
  };
  const auto lines = grid_rows<Stats>(
      grid,
      [&](Stats& m, const Cell& c, std::uint64_t seed, const CompositeScan& s) {
        const FilmRow r = films_case(s);
        if (count_refused_case(r.refused, m.refused, seed, c)) return;
        auto split = [](const FaceSplit& f) {
          char b[256];
          std::snprintf(b, sizeof b,
                        "AM|SE faces %.4f = true contact %.4f + film 1/2/3 %.4f/%.4f/%.4f + other pore %.4f + other "
                        "%.4f (on AM the labels lost %.4f, added %.4f)",
                        (f.contact + f.film[0] + f.film[1] + f.film[2] + f.pore_other + f.other) / f.faces,
                        f.contact / f.faces, f.film[0] / f.faces, f.film[1] / f.faces, f.film[2] / f.faces,
                        f.pore_other / f.faces, f.other / f.faces, f.am_lost / f.faces, f.false_am / f.faces);
          return std::string(b);
        };
        std::printf(
            "case seed %llu SNR %g blur %g P %g: contact − truth ceiling %+.4f auto %+.4f films %+.4f truth labels "
            "%+.4f | Dice ceiling %.3f/%.3f/%.3f auto %.3f/%.3f/%.3f films %.3f/%.3f/%.3f | label porosity − truth "
            "ceiling %+.4f auto %+.4f films %+.4f | faces fitted %lld, films %lld, voxels %lld, CPU %.2f s\n"
            "  truth: %s\n  auto: %s\n  films: %s\n",
            static_cast<unsigned long long>(seed), c.snr, c.blur, c.p, r.ceiling.contact - r.truth,
            r.before.contact - r.truth, r.after.contact - r.truth, r.truth_labels.contact - r.truth, r.ceiling.dice[0],
            r.ceiling.dice[1], r.ceiling.dice[2], r.before.dice[0], r.before.dice[1], r.before.dice[2], r.after.dice[0],
            r.after.dice[1], r.after.dice[2], r.ceiling.porosity - r.porosity_truth,
            r.before.porosity - r.porosity_truth, r.after.porosity - r.porosity_truth,
            static_cast<long long>(r.films.faces_fitted), static_cast<long long>(r.films.films_accepted),
            static_cast<long long>(r.films.voxels_relabelled), r.cpu_films, split(r.split_truth).c_str(),
            split(r.split_before).c_str(), split(r.split_after).c_str());
        std::fflush(stdout);
        m.cb.add(r.before.contact - r.truth), m.ca.add(r.after.contact - r.truth);
        m.cc.add(r.ceiling.contact - r.truth), m.ctl.add(r.truth_labels.contact - r.truth);
        m.pb.add(r.before.porosity - r.porosity_truth), m.pa.add(r.after.porosity - r.porosity_truth);
        m.pc.add(r.ceiling.porosity - r.porosity_truth), m.cpu.add(r.cpu_films);
        for (int k = 0; k < 3; ++k)
          m.db[k].add(r.before.dice[k]), m.da[k].add(r.after.dice[k]), m.dc[k].add(r.ceiling.dice[k]);
      },
      [&](const Stats& m, const Cell& c) {
        if (m.cb.n) {
          ++cells;
          better += std::fabs(m.ca.get()) < std::fabs(m.cb.get());
          worse += std::fabs(m.ca.get()) > std::fabs(m.cb.get()) + 0.005;
        }
        char line[640];
        std::snprintf(line, sizeof line,
                      "| %g | %g | %g | %+.3f | %+.3f → %+.3f | %+.3f | %.3f/%.3f/%.3f → %.3f/%.3f/%.3f | "
                      "%.3f/%.3f/%.3f | %+.4f → %+.4f | %+.4f | %.2f | %d/%zu |\n",
                      c.snr, c.blur, c.p, m.cc.get(), m.cb.get(), m.ca.get(), m.ctl.get(), m.db[0].get(), m.db[1].get(),
                      m.db[2].get(), m.da[0].get(), m.da[1].get(), m.da[2].get(), m.dc[0].get(), m.dc[1].get(),
                      m.dc[2].get(), m.pb.get(), m.pa.get(), m.pc.get(), m.cpu.get(), m.refused, grid.seeds.size());
        return std::string(line);
      });
  std::printf(
      "\n| SNR | blur σ | P MPa | contact − truth: ceiling | auto → films | truth labels | pore/SE/AM Dice auto → "
      "films | ceiling | label porosity − truth auto → films | ceiling | films CPU s | refused |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& l : lines) std::printf("%s", l.c_str());
  std::printf("\n|contact − truth| lower with films in %d of %d cells, higher by > 0.005 in %d\n", better, cells,
              worse);
  return 0;
}

// ---- The AM surface (issue 11 item 6, `--am-surface`): how much of `auto`'s contact bias the
// receded AM explains, measured by swapping in true quantities (diagnostic only; the truth never
// enters an estimator), and what the grey says about the voxels between AM and a dark voxel.
struct SurfaceRow {
  bool refused = false;
  double truth = NAN, truth_labels = NAN, auto_contact = NAN;
  double true_am_auto_rest = NAN;  // true AM + auto's pore/SE (auto's AM outside the true AM read by the pore|SE cut)
  double auto_am_true_rest = NAN;  // auto's AM + the true pore/SE (receded AM voxels keep auto's label)
  double regrown_oracle = NAN;     // auto + the true AM voxels 6-beside auto's AM given back
  double lost = NAN, added = NAN;  // true AM voxels not AM in auto / auto AM voxels not true AM, per AM surface voxel
  double lost_as_se = NAN;         // share of the lost voxels auto labels SE
  std::array<double, 3> dice_auto{NAN, NAN, NAN}, ceiling{NAN, NAN, NAN};
  double am_fraction_truth = NAN, am_fraction_auto = NAN;
  // Candidate: SE runs of ≤ K voxels between `auto`'s AM and pore (along any of the 13 line
  // directions) re-read as a two-phase AM|pore edge, cut at the AM|pore grey midpoint.
  double sandwich_contact = NAN, sandwich_am_fraction = NAN, sandwich_truly_se = NAN;
  std::int64_t sandwich_voxels = 0;
  std::array<double, 3> dice_sandwich{NAN, NAN, NAN};
  // The voxels beside an AM set re-read with that AM's blur taken out of their grey (fitted end
  // members and PSF): with the true AM (the ceiling of any AM-surface estimator) and with auto's.
  double unmixed_true_am = NAN, unmixed_auto_am = NAN;
  double unmixed_true_model = NAN;  // the true AM, end members and PSF
};

int g_sandwich_run = 0;  // --run K; 0: from the scan's PSF σ

// SE-labelled voxels on a run of at most `run` SE voxels between AM and pore along one of the 13
// line directions become AM (grey ≥ the AM|pore midpoint) or pore.
Volume<std::uint8_t> split_sandwiched_se(const Volume<std::uint8_t>& a, const Volume<float>& grey,
                                         const std::vector<double>& means, int run, std::int64_t* changed) {
  const Dims d = a.dims();
  const double cut = 0.5 * (means[0] + means[2]);
  const auto dirs = crofton_directions(grey.spacing_um);
  Volume<std::uint8_t> out = a;
  auto at = [&](index_t x, index_t y, index_t z) -> int {
    if (x < 0 || y < 0 || z < 0 || x >= d.x || y >= d.y || z >= d.z) return -1;
    return a[x + d.x * (y + d.y * z)];
  };
  std::int64_t n = 0;
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + d.x * (y + d.y * z);
        if (a[i] != phantom::kElectrolyte) continue;
        bool sandwiched = false;
        for (int k = 0; k < 13 && !sandwiched; ++k) {
          const auto s = dirs.step[k];
          int end[2] = {-1, -1}, len[2] = {0, 0};
          for (int side = 0; side < 2; ++side) {
            const int sg = side ? -1 : 1;
            for (int t = 1; t <= run; ++t) {
              const int l = at(x + sg * t * s[0], y + sg * t * s[1], z + sg * t * s[2]);
              if (l != phantom::kElectrolyte) {
                end[side] = l, len[side] = t;
                break;
              }
            }
          }
          sandwiched = len[0] && len[1] && len[0] + len[1] - 1 <= run &&
                       ((end[0] == phantom::kActive && end[1] == phantom::kPore) ||
                        (end[0] == phantom::kPore && end[1] == phantom::kActive));
        }
        if (!sandwiched) continue;
        out[i] = grey[i] >= cut ? phantom::kActive : phantom::kPore;
        ++n;
      }
  if (changed) *changed = n;
  return out;
}

// Labels with `am` as the AM set and `rest` elsewhere; where `rest` says AM but `am` does not, the
// grey cut between pore and SE decides.
Volume<std::uint8_t> with_am(const Volume<std::uint8_t>& am_from, const Volume<std::uint8_t>& rest,
                             const Volume<float>& grey, double pore_se_cut) {
  Volume<std::uint8_t> l = rest;
  for (index_t i = 0; i < l.size(); ++i) {
    if (am_from[i] == phantom::kActive) l[i] = phantom::kActive;
    else if (rest[i] == phantom::kActive) l[i] = grey[i] < pore_se_cut ? phantom::kPore : phantom::kElectrolyte;
  }
  return l;
}

// Labels with the AM set of `am_from`; every other voxel where the blurred AM indicator b ≥ 0.05
// is labelled pore or SE by its grey with AM's share taken out, (g − μ_AM b) / (1 − b), cut at
// the pore|SE midpoint; the rest as `with_am`.
Volume<std::uint8_t> unmix_beside_am(const Volume<std::uint8_t>& am_from, const Volume<std::uint8_t>& rest,
                                     const Volume<float>& grey, const std::vector<double>& means,
                                     const std::array<double, 3>& psf) {
  const double cut = 0.5 * (means[0] + means[1]);
  Volume<std::uint8_t> l = with_am(am_from, rest, grey, cut);
  Volume<float> b = grey.like<float>(grey.dims());
  for (index_t i = 0; i < b.size(); ++i) b[i] = am_from[i] == phantom::kActive;
  b = gaussian_blur(b, psf);
  for (index_t i = 0; i < l.size(); ++i) {
    if (l[i] == phantom::kActive || b[i] < 0.05) continue;
    const double other = (grey[i] - means[2] * b[i]) / (1 - std::min(0.95f, b[i]));
    l[i] = other < cut ? phantom::kPore : phantom::kElectrolyte;
  }
  return l;
}

double contact_of(const Volume<std::uint8_t>& labels, const LabelVolume& truth) {
  LabelVolume lv;
  static_cast<Volume<std::uint8_t>&>(lv) = labels;
  lv.phases = truth.phases;
  return contact_area(lv).fraction;
}

SurfaceRow surface_case(const CompositeScan& s) {
  const phantom::Phantom& ph = s.phantom;
  const phantom::ImagingSpec& im = s.imaging;
  const Volume<float>& g = s.grey;
  SurfaceRow row;
  const LabelVolume& t = ph.labels;
  row.truth = ph.truth.contact_area_fraction;
  row.truth_labels = contact_of(t, t);
  {
    const auto l = vp::testing::blur_ceiling_labels(t, im);
    for (int k = 0; k < 3; ++k) row.ceiling[k] = vp::testing::dice(l, t, k);
  }
  const std::optional<SegmentResult> segmented = auto_three_classes(g);
  if (!segmented) {
    row.refused = true;
    return row;
  }
  const SegmentResult& r = *segmented;
  const auto& a = r.labels;
  const auto& means = r.partial_volume->means;
  const double cut = 0.5 * (means[0] + means[1]);
  row.auto_contact = contact_of(a, t);
  for (int k = 0; k < 3; ++k) row.dice_auto[k] = vp::testing::dice(a, t, k);
  row.true_am_auto_rest = contact_of(with_am(t, a, g, cut), t);
  {
    Volume<std::uint8_t> l = t;
    for (index_t i = 0; i < l.size(); ++i)
      if (a[i] == phantom::kActive) l[i] = phantom::kActive;
      else if (t[i] == phantom::kActive) l[i] = a[i];
    row.auto_am_true_rest = contact_of(l, t);
  }
  const Dims d = a.dims();
  double surface = 0, lost = 0, added = 0, lost_se = 0, am_t = 0, am_a = 0;
  Volume<std::uint8_t> regrown = a;
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + d.x * (y + d.y * z);
        am_t += t[i] == phantom::kActive, am_a += a[i] == phantom::kActive;
        bool beside_true_other = false, beside_auto_am = false;
        const index_t pos[3] = {x, y, z};
        for (int ax = 0; ax < 3; ++ax)
          for (int dir : {-1, 1}) {
            index_t q[3] = {pos[0], pos[1], pos[2]};
            q[ax] += dir;
            if (q[ax] < 0 || q[ax] >= d[ax]) continue;
            const index_t j = q[0] + d.x * (q[1] + d.y * q[2]);
            beside_true_other |= t[j] != phantom::kActive;
            beside_auto_am |= a[j] == phantom::kActive;
          }
        if (t[i] == phantom::kActive && beside_true_other) ++surface;
        if (t[i] == phantom::kActive && a[i] != phantom::kActive) {
          ++lost, lost_se += a[i] == phantom::kElectrolyte;
          if (beside_auto_am) regrown[i] = phantom::kActive;
        }
        if (t[i] != phantom::kActive && a[i] == phantom::kActive) ++added;
      }
  row.regrown_oracle = contact_of(regrown, t);
  row.lost = lost / surface, row.added = added / surface, row.lost_as_se = lost_se / std::max(1.0, lost);
  row.am_fraction_truth = am_t / static_cast<double>(a.size());
  row.am_fraction_auto = am_a / static_cast<double>(a.size());
  const double sigma = r.psf_sigma_vox[0];
  const int run = g_sandwich_run > 0 ? g_sandwich_run : std::max(1, static_cast<int>(std::lround(1.35 * sigma + 0.5)));
  const auto sw = split_sandwiched_se(a, g, means, run, &row.sandwich_voxels);
  row.sandwich_contact = contact_of(sw, t);
  double sw_am = 0, sw_se = 0, sw_changed = 0;
  for (index_t i = 0; i < sw.size(); ++i) {
    sw_am += sw[i] == phantom::kActive;
    if (sw[i] != a[i]) ++sw_changed, sw_se += t[i] == phantom::kElectrolyte;
  }
  row.sandwich_am_fraction = sw_am / static_cast<double>(sw.size());
  row.sandwich_truly_se = sw_se / std::max(1.0, sw_changed);
  for (int k = 0; k < 3; ++k) row.dice_sandwich[k] = vp::testing::dice(sw, t, k);
  row.unmixed_true_am = contact_of(unmix_beside_am(t, a, g, means, r.psf_sigma_vox), t);
  row.unmixed_auto_am = contact_of(unmix_beside_am(a, a, g, means, r.psf_sigma_vox), t);
  const std::vector<double> true_means{im.grey_level("pore"), im.grey_level("se"), im.grey_level("am")};
  row.unmixed_true_model = contact_of(
      unmix_beside_am(t, a, g, true_means, {im.blur_sigma_vox[0], im.blur_sigma_vox[1], im.blur_sigma_vox[2]}), t);
  return row;
}

int surface_main(const Grid& grid) {
  struct Stats {
    Mean ca, c1, c2, c3, ctl, lost, added, lse, ut, ua, sc, fa, fs, da, ds, dc;
    int refused = 0;
  };
  const auto lines = grid_rows<Stats>(
      grid,
      [&](Stats& m, const Cell& c, std::uint64_t seed, const CompositeScan& s) {
        const SurfaceRow r = surface_case(s);
        if (count_refused_case(r.refused, m.refused, seed, c)) return;
        std::printf(
            "case seed %llu SNR %g blur %g P %g: contact truth %.4f, − truth: truth labels %+.4f auto %+.4f | true "
            "AM + "
            "auto rest %+.4f | auto AM + true rest %+.4f | auto + regrown true AM layer %+.4f | AM lost %.3f (as SE "
            "%.2f), added %.3f per AM surface voxel | AM fraction truth %.4f auto %.4f | Dice %.3f/%.3f/%.3f ceiling "
            "%.3f/%.3f/%.3f\n",
            static_cast<unsigned long long>(seed), c.snr, c.blur, c.p, r.truth, r.truth_labels - r.truth,
            r.auto_contact - r.truth, r.true_am_auto_rest - r.truth, r.auto_am_true_rest - r.truth,
            r.regrown_oracle - r.truth, r.lost, r.lost_as_se, r.added, r.am_fraction_truth, r.am_fraction_auto,
            r.dice_auto[0], r.dice_auto[1], r.dice_auto[2], r.ceiling[0], r.ceiling[1], r.ceiling[2]);
        std::printf(
            "  sandwiched SE split: contact %+.4f, voxels %lld (truly SE %.2f), AM fraction %.4f, Dice "
            "%.3f/%.3f/%.3f\n  beside AM unmixed: true AM %+.4f (true model %+.4f), auto AM %+.4f\n",
            r.sandwich_contact - r.truth, static_cast<long long>(r.sandwich_voxels), r.sandwich_truly_se,
            r.sandwich_am_fraction, r.dice_sandwich[0], r.dice_sandwich[1], r.dice_sandwich[2],
            r.unmixed_true_am - r.truth, r.unmixed_true_model - r.truth, r.unmixed_auto_am - r.truth);
        std::fflush(stdout);
        m.ca.add(r.auto_contact - r.truth), m.c1.add(r.true_am_auto_rest - r.truth),
            m.c2.add(r.auto_am_true_rest - r.truth);
        m.c3.add(r.regrown_oracle - r.truth), m.ctl.add(r.truth_labels - r.truth);
        m.lost.add(r.lost), m.added.add(r.added), m.lse.add(r.lost_as_se);
        m.ut.add(r.unmixed_true_am - r.truth), m.ua.add(r.unmixed_auto_am - r.truth),
            m.sc.add(r.sandwich_contact - r.truth);
        m.fa.add(r.am_fraction_auto - r.am_fraction_truth), m.fs.add(r.sandwich_am_fraction - r.am_fraction_truth);
        m.da.add(r.dice_auto[2]), m.ds.add(r.dice_sandwich[2]), m.dc.add(r.ceiling[2]);
      },
      [&](const Stats& m, const Cell& c) {
        char line[600];
        std::snprintf(line, sizeof line,
                      "| %g | %g | %g | %+.3f | %+.3f | %+.3f | %+.3f | %+.3f | %+.3f | %+.3f | %+.4f → %+.4f | "
                      "%.3f → %.3f (%.3f) | %+.3f | %.3f (%.2f) / %.3f | %d/%zu |\n",
                      c.snr, c.blur, c.p, m.ca.get(), m.c1.get(), m.c2.get(), m.c3.get(), m.ut.get(), m.ua.get(),
                      m.sc.get(), m.fa.get(), m.fs.get(), m.da.get(), m.ds.get(), m.dc.get(), m.ctl.get(), m.lost.get(),
                      m.lse.get(), m.added.get(), m.refused, grid.seeds.size());
        return std::string(line);
      });
  std::printf(
      "\n| SNR | blur σ | P MPa | contact − truth: auto | true AM + auto pore/SE | auto AM + true pore/SE | auto + "
      "true AM layer regrown | beside true AM unmixed | beside auto AM unmixed | sandwiched SE split | "
      "AM fraction − truth: auto → split | AM Dice auto → split (ceiling) | truth labels | AM lost (as SE) / added "
      "per AM surface voxel | refused |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& l : lines) std::printf("%s", l.c_str());
  return 0;
}

// ---- Where `auto`'s contact excess lies (`--trace`; issue 11 item 6): every Crofton crossing from
// `auto`'s AM to a non-AM voxel (13 directions, both senses, weighted as the metric weighs them),
// and each AM|SE one classified by the truth along its line. Diagnostic only.
struct TraceRow {
  bool refused = false;
  double truth = NAN, truth_labels = NAN, auto_contact = NAN, psf = NAN;
  double ceiling_contact = NAN;  // the blur ceiling's labels (midpoint thresholds on the noise-free blurred image)
  double surface = 0;            // auto AM surface (weighted crossings AM → non-AM)
  // Each AM|SE crossing by the truth's first non-AM phase along its line, outward from auto's AM
  // face (from the SE voxel where the truth has AM there: auto's AM receded): SE (a true contact,
  // displaced or not), pore ≤ 2 voxels then SE (b: a pore film missed), other pore (a: an SE skin
  // on a true AM|pore edge). [0] auto's AM voxel is AM in the truth and so is the SE voxel
  // (receded), [1] the SE voxel is the truth's first non-AM voxel, [2] auto's AM voxel is not AM in
  // the truth (AM grown; the truth at that voxel decides). Skins also by auto's SE run from the face
  // (1, 2, 3, ≥ 4 voxels then pore; [5] not ending in pore).
  double contact[3] = {}, film[3] = {}, skin[3] = {};
  std::array<double, 6> skin_run{};
  double skin_to_am = 0;  // skins whose auto SE run ends in AM: a pore between two AM faces read as SE
  double lost = 0;        // auto AM|pore crossings where the truth's first non-AM phase is SE
  // Runs AM | SE (m = 1, 2, 3) | pore in `auto`'s labels: [m − 1][the crossing's class: skin /
  // true contact / film][auto pore beyond ≥ 3 voxels].
  double runs[3][3][2] = {};
  // The gap candidate: contact, Dice and label porosity before → after, voxels changed (truly pore / SE / AM).
  double gap_contact = NAN, porosity_truth = NAN, porosity_auto = NAN, porosity_gap = NAN;
  std::array<double, 3> dice_auto{NAN, NAN, NAN}, dice_gap{NAN, NAN, NAN};
  std::int64_t gap_voxels = 0;
  std::array<std::int64_t, 3> gap_truth{};
};

// Candidate (`--trace --gap-margin M`): an SE run between two AM voxels along one of the 13 line
// directions is a gap between two AM faces, of pore or of SE. Its grey along the line (the run and
// two voxels beyond each end) is fitted by least squares with AM | X (width W, centre c) | AM blurred
// by σ_line, X = pore and X = SE, W, c and σ_line ∈ {1, 1.25, 1.67} σ (the line's obliquity) free;
// where pore beats SE by margin · σ_n², the run's voxels become pore or AM by the AM|pore midpoint.
// Runs of up to `max_run` voxels.
double g_gap_margin = -1;  // < 0: the candidate not run
Volume<std::uint8_t> relabel_pore_gaps(const Volume<std::uint8_t>& a, const Volume<float>& g,
                                       const std::vector<double>& mu, double psf, double noise, double margin,
                                       std::int64_t* changed) {
  const Dims d = a.dims();
  constexpr int P = phantom::kPore, S = phantom::kElectrolyte, A = phantom::kActive;
  const int max_run = std::max(2, static_cast<int>(std::ceil(4 * psf)));
  const double cut = 0.5 * (mu[P] + mu[A]);
  Volume<std::uint8_t> out = a;
  std::int64_t n = 0;
  auto inside = [&](index_t x, index_t y, index_t z) {
    return x >= 0 && y >= 0 && z >= 0 && x < d.x && y < d.y && z < d.z;
  };
  auto phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        if (a(x, y, z) != S) continue;
        bool pore_gap = false, se_gap = false;
        for (int k = 0; k < 13 && !se_gap; ++k) {
          const auto st = kHalfNeighbourhood26[k];
          int lo = 0, hi = 0;  // run from lo to hi (steps from the voxel)
          while (lo > -max_run && inside(x + (lo - 1) * st[0], y + (lo - 1) * st[1], z + (lo - 1) * st[2]) &&
                 a(x + (lo - 1) * st[0], y + (lo - 1) * st[1], z + (lo - 1) * st[2]) == S)
            --lo;
          while (hi < max_run && inside(x + (hi + 1) * st[0], y + (hi + 1) * st[1], z + (hi + 1) * st[2]) &&
                 a(x + (hi + 1) * st[0], y + (hi + 1) * st[1], z + (hi + 1) * st[2]) == S)
            ++hi;
          const int m = hi - lo + 1;
          if (m > max_run) continue;
          auto lab = [&](int t) {
            const index_t xx = x + t * st[0], yy = y + t * st[1], zz = z + t * st[2];
            return inside(xx, yy, zz) ? a(xx, yy, zz) : -1;
          };
          if (lab(lo - 1) != A || lab(hi + 1) != A) continue;
          double sv[32], yv[32];
          int ns = 0;
          for (int t = lo - 2; t <= hi + 2 && ns < 32; ++t) {
            const index_t xx = x + t * st[0], yy = y + t * st[1], zz = z + t * st[2];
            if (!inside(xx, yy, zz)) continue;
            sv[ns] = t, yv[ns] = g(xx, yy, zz), ++ns;
          }
          const double len = std::sqrt(double(st[0] * st[0] + st[1] * st[1] + st[2] * st[2]));
          auto best = [&](double mx) {
            double r = INFINITY;
            for (double f : {1.0, 1.25, 1.67}) {
              const double sl = f * psf / len;  // σ along the line, in steps
              for (double c = lo - 0.5; c <= hi + 0.5; c += 0.5)
                for (double w = 0.5; w <= m + 1.0; w += 0.5) {
                  double rr = 0;
                  for (int j = 0; j < ns && rr < r; ++j) {
                    const double e =
                        yv[j] -
                        (mu[A] + (mx - mu[A]) * (phi((sv[j] - c + w / 2) / sl) - phi((sv[j] - c - w / 2) / sl)));
                    rr += e * e;
                  }
                  r = std::min(r, rr);
                }
            }
            return r;
          };
          const double rp = best(mu[P]), rs = best(mu[S]);
          if (rs > rp + margin * noise * noise) pore_gap = true;
          if (rp > rs + margin * noise * noise) se_gap = true;
        }
        if (!pore_gap || se_gap) continue;
        out(x, y, z) = static_cast<std::uint8_t>(g(x, y, z) >= cut ? A : P);
        ++n;
      }
  if (changed) *changed = n;
  return out;
}

TraceRow trace_case(const CompositeScan& s) {
  TraceRow row;
  const LabelVolume& t = s.phantom.labels;
  row.truth = s.phantom.truth.contact_area_fraction;
  row.truth_labels = contact_of(t, t);
  row.ceiling_contact = contact_of(vp::testing::blur_ceiling_labels(t, s.imaging), t);
  const std::optional<SegmentResult> segmented = auto_three_classes(s.grey);
  if (!segmented) {
    row.refused = true;
    return row;
  }
  const auto& a = segmented->labels;
  row.auto_contact = contact_of(a, t);
  row.psf = segmented->psf_sigma_vox[0];
  if (g_gap_margin >= 0) {
    const auto& mu = segmented->partial_volume->means;
    const auto gl =
        relabel_pore_gaps(a, s.grey, mu, row.psf, segmented->auto_fit->noise_sigma, g_gap_margin, &row.gap_voxels);
    row.gap_contact = contact_of(gl, t);
    double pt = 0, pa = 0, pg = 0;
    for (index_t i = 0; i < a.size(); ++i) {
      pt += t[i] == phantom::kPore, pa += a[i] == phantom::kPore, pg += gl[i] == phantom::kPore;
      if (gl[i] != a[i]) ++row.gap_truth[t[i]];
    }
    row.porosity_truth = pt / a.size(), row.porosity_auto = pa / a.size(), row.porosity_gap = pg / a.size();
    for (int c = 0; c < 3; ++c)
      row.dice_auto[c] = vp::testing::dice(a, t, c), row.dice_gap[c] = vp::testing::dice(gl, t, c);
  }
  const Dims d = a.dims();
  const auto dirs = crofton_directions(a.spacing_um);
  const Vec3 h = a.spacing_um;
  constexpr int P = phantom::kPore, S = phantom::kElectrolyte, A = phantom::kActive;
  auto inside = [&](index_t x, index_t y, index_t z) {
    return x >= 0 && y >= 0 && z >= 0 && x < d.x && y < d.y && z < d.z;
  };
  for (int k = 0; k < 13; ++k) {
    const auto st = dirs.step[k];
    const double w =
        dirs.weight[k] / std::sqrt(std::pow(st[0] * h[0], 2) + std::pow(st[1] * h[1], 2) + std::pow(st[2] * h[2], 2));
    for (int sg : {-1, 1}) {
      const index_t sx = sg * st[0], sy = sg * st[1], sz = sg * st[2];
      // The run of `value` in `l` along the line from (x, y, z) and the label after it (-1: border).
      auto run_of = [&](const Volume<std::uint8_t>& l, index_t x, index_t y, index_t z, int value, int& after) {
        int n = 0;
        while (inside(x, y, z) && l(x, y, z) == value) ++n, x += sx, y += sy, z += sz;
        after = inside(x, y, z) ? l(x, y, z) : -1;
        return n;
      };
      for (index_t z = 0; z < d.z; ++z)
        for (index_t y = 0; y < d.y; ++y)
          for (index_t x = 0; x < d.x; ++x) {
            if (a(x, y, z) != A || !inside(x + sx, y + sy, z + sz)) continue;
            const index_t qx = x + sx, qy = y + sy, qz = z + sz;
            const int aq = a(qx, qy, qz);
            if (aq == A) continue;
            row.surface += w;
            if (aq == P) {
              index_t fx = qx, fy = qy, fz = qz;
              if (t(x, y, z) != A) {
                fx = x, fy = y, fz = z;
              } else {
                int after = -1;
                const int n = run_of(t, qx, qy, qz, A, after);
                fx += n * sx, fy += n * sy, fz += n * sz;
              }
              if (inside(fx, fy, fz) && t(fx, fy, fz) == S) row.lost += w;
            }
            if (aq != S) continue;
            int where = 1;
            index_t fx = qx, fy = qy, fz = qz;  // the truth's first non-AM voxel along the line
            if (t(x, y, z) != A) {
              where = 2, fx = x, fy = y, fz = z;
            } else if (t(qx, qy, qz) == A) {
              where = 0;
              int after = -1;
              const int n = run_of(t, qx, qy, qz, A, after);
              fx += n * sx, fy += n * sy, fz += n * sz;
            }
            int cls = 0;  // 0 skin, 1 contact, 2 film
            if (!inside(fx, fy, fz) || t(fx, fy, fz) == S) {
              cls = 1;
            } else if (t(fx, fy, fz) == P) {
              int after = -1;
              const int n = run_of(t, fx, fy, fz, P, after);
              cls = after == S && n <= 2 ? 2 : 0;
            }
            (cls == 0 ? row.skin : cls == 1 ? row.contact : row.film)[where] += w;
            int a_after = -1;
            const int m = run_of(a, qx, qy, qz, S, a_after);
            if (cls == 0) row.skin_run[static_cast<std::size_t>(a_after == P ? std::min(m, 4) : 5)] += w;
            if (cls == 0 && a_after == A) row.skin_to_am += w;
            if (a_after == P && m <= 3) {
              int after = -1;
              const int beyond = run_of(a, qx + m * sx, qy + m * sy, qz + m * sz, P, after);
              row.runs[m - 1][cls][beyond >= 3] += w;
            }
          }
    }
  }
  return row;
}

int trace_main(const Grid& grid) {
  for (double snr : grid.snrs)
    for (double blur : grid.blurs)
      for (double p : grid.pressures)
        for (std::uint64_t seed : grid.seeds) {
          const TraceRow r = trace_case(vp::testing::composite_scan(seed, p, snr, blur, grid.size));
          std::printf("\n### seed %llu SNR %g σ %g P %g\n", static_cast<unsigned long long>(seed), snr, blur, p);
          if (r.refused) {
            std::printf("refused\n");
            continue;
          }
          const double S = r.surface;
          auto sum3 = [](const double* v) { return v[0] + v[1] + v[2]; };
          const double contact = sum3(r.contact) / S, film = sum3(r.film) / S, skin = sum3(r.skin) / S;
          std::printf(
              "PSF estimate %.3f; contact truth %.4f, truth labels %.4f, blur ceiling %.4f, auto %.4f (auto − truth "
              "labels %+.4f)\n"
              "shares of auto's AM surface: true contact %.4f (AM receded %.4f, at the face %.4f, AM grown %.4f) | "
              "(a) SE skin on a true AM|pore edge %.4f (receded %.4f, at the face %.4f, grown %.4f; auto SE run 1 "
              "%.4f, 2 %.4f, 3 %.4f, ≥4 %.4f, not ending in pore %.4f, of it ending in AM %.4f) | (b) pore film missed "
              "%.4f (receded %.4f, at the face %.4f, grown %.4f) | true contacts read AM|pore %.4f\n"
              "auto − truth labels %+.4f = (a) %+.4f + (b) %+.4f + (c: true contact on auto's surface − truth "
              "labels' fraction) %+.4f\n",
              r.psf, r.truth, r.truth_labels, r.ceiling_contact, r.auto_contact, r.auto_contact - r.truth_labels,
              contact, r.contact[0] / S, r.contact[1] / S, r.contact[2] / S, skin, r.skin[0] / S, r.skin[1] / S,
              r.skin[2] / S, r.skin_run[1] / S, r.skin_run[2] / S, r.skin_run[3] / S, r.skin_run[4] / S,
              r.skin_run[5] / S, r.skin_to_am / S, film, r.film[0] / S, r.film[1] / S, r.film[2] / S, r.lost / S,
              r.auto_contact - r.truth_labels, skin, film, contact - r.truth_labels);
          if (!std::isnan(r.gap_contact))
            std::printf(
                "gap candidate: contact − truth %+.4f → %+.4f, voxels %lld (truly pore %lld, SE %lld, AM %lld), Dice "
                "%.4f/%.4f/%.4f → %.4f/%.4f/%.4f, label porosity − truth %+.4f → %+.4f\n",
                r.auto_contact - r.truth, r.gap_contact - r.truth, static_cast<long long>(r.gap_voxels),
                static_cast<long long>(r.gap_truth[0]), static_cast<long long>(r.gap_truth[1]),
                static_cast<long long>(r.gap_truth[2]), r.dice_auto[0], r.dice_auto[1], r.dice_auto[2], r.dice_gap[0],
                r.dice_gap[1], r.dice_gap[2], r.porosity_auto - r.porosity_truth, r.porosity_gap - r.porosity_truth);
          std::printf(
              "auto runs AM|SE(m)|pore, shares of auto's AM surface, by class (skin / true contact / film), auto "
              "pore beyond < 3 | ≥ 3 voxels:\n");
          for (int m = 0; m < 3; ++m)
            std::printf("  m %d: skin %.4f | %.4f, contact %.4f | %.4f, film %.4f | %.4f\n", m + 1, r.runs[m][0][0] / S,
                        r.runs[m][0][1] / S, r.runs[m][1][0] / S, r.runs[m][1][1] / S, r.runs[m][2][0] / S,
                        r.runs[m][2][1] / S);
          std::fflush(stdout);
        }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  Grid grid;
  std::string series;
  bool relabel = false, films = false, am_surface = false, trace = false;
  double flat_z = ForwardModelOptions{}.flat_interface_z;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--full") {
      grid = {{1, 2, 3}, {5, 8, 12}, {0.7, 1.0, 1.5}, {10, 50, 125, 250, 370}, 96};
    } else if (arg == "--size" && a + 1 < argc) {
      grid.size = std::stoll(argv[++a]);
    } else if (arg == "--seeds" && a + 1 < argc) {
      grid.seeds = vp::testing::seed_range(argv[++a]);
    } else if (arg == "--series" && a + 1 < argc) {
      series = argv[++a];
    } else if (arg == "--relabel") {
      relabel = true;
    } else if (arg == "--films") {
      films = true;
    } else if (arg == "--am-surface") {
      am_surface = true;
    } else if (arg == "--trace") {
      trace = true;
    } else if (arg == "--gap-margin" && a + 1 < argc) {
      g_gap_margin = std::stod(argv[++a]);
    } else if (arg == "--run" && a + 1 < argc) {
      g_sandwich_run = std::stoi(argv[++a]);
    } else if (arg == "--restore-am") {
      g_restore_am = true;
    } else if (arg == "--true-model") {
      g_true_model = true;
    } else if (arg == "--false-alarm" && a + 1 < argc) {
      g_false_alarm = std::stod(argv[++a]);
    } else if (arg == "--anneal" && a + 2 < argc) {
      g_anneal = std::stoi(argv[++a]);
      g_temperature = std::stod(argv[++a]);
    } else if (arg == "--neutral") {
      g_neutral = true;
    } else if (arg == "--single-beta") {
      g_single_beta = true;
    } else if (arg == "--refit") {
      g_refit = true;
    } else if (arg == "--sweeps" && a + 1 < argc) {
      g_sweeps = std::stoi(argv[++a]);
    } else if (arg == "--z" && a + 1 < argc) {
      flat_z = std::stod(argv[++a]);
    } else if ((arg == "--pressures" || arg == "--snr" || arg == "--blur") && a + 1 < argc) {
      (arg == "--pressures" ? grid.pressures
       : arg == "--snr"     ? grid.snrs
                            : grid.blurs) = vp::testing::number_list(argv[++a]);
    } else {
      std::fprintf(stderr,
                   "usage: bench_segment_contact [--full] [--size N] [--seeds N|A-B] [--series DIR] [--relabel [--z Z] "
                   "[--single-beta] [--neutral] [--anneal SWEEPS T] [--refit] [--sweeps N]] [--films [--false-alarm A] "
                   "[--fdr Q] "
                   "[--true-model]] [--am-surface [--run K]] [--trace [--gap-margin M]] [--snr S,...] [--blur B,...] "
                   "[--pressures P,...]\n");
      return 2;
    }
  }
  if (relabel) return relabel_main(grid, flat_z);
  if (am_surface) return surface_main(grid);
  if (trace) return trace_main(grid);
  if (films) return films_main(grid, series);
  std::printf(
      "| SNR | blur σ | P MPa | truth | label − truth (mean, worst) | shell − truth | boot − truth | ii − truth "
      "| ii CI covers | truth labels − truth | refused |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  Acc all_label, all_shell, all_boot, all_ii;
  int within_label = 0, within_ii = 0, within_boot = 0, cells = 0, covered = 0, with_ci = 0;
  struct Stats {
    Acc label, shell, boot, ii, tl;
    int refused = 0, cov = 0, nci = 0;
    double truth = NAN;
  };
  const auto lines = grid_rows<Stats>(
      grid,
      [&](Stats& m, const Cell& c, std::uint64_t seed, const CompositeScan& s) {
        const Row r = measure_case(s.grey, s.phantom.labels, s.phantom.truth.contact_area_fraction);
        char tag[96];
        std::snprintf(tag, sizeof tag, "case %lld seed %llu SNR %g blur %g P %g:", static_cast<long long>(grid.size),
                      static_cast<unsigned long long>(seed), c.snr, c.blur, c.p);
        print_row(tag, r);
        m.truth = r.truth;
        m.tl.add(r.truth_labels - r.truth);
        if (r.refused) {
          ++m.refused;
          return;
        }
        m.label.add(r.label - r.truth), m.shell.add(r.shell - r.truth), m.boot.add(r.boot - r.truth),
            m.ii.add(r.ii - r.truth);
        all_label.add(r.label - r.truth), all_shell.add(r.shell - r.truth), all_boot.add(r.boot - r.truth);
        all_ii.add(r.ii - r.truth);
        if (!std::isnan(r.ii_ci)) ++m.nci, m.cov += std::fabs(r.ii - r.truth) <= r.ii_ci;
      },
      [&](const Stats& m, const Cell& c) {
        covered += m.cov, with_ci += m.nci;
        if (m.label.n) {
          ++cells;
          within_label += m.label.worst <= 0.03, within_boot += m.boot.n && m.boot.worst <= 0.03,
              within_ii += m.ii.n && m.ii.worst <= 0.03;
        }
        char line[512];
        std::snprintf(line, sizeof line,
                      "| %g | %g | %g | %.3f | %+.3f, %.3f | %+.3f, %.3f | %+.3f, %.3f | %+.3f, %.3f | %d/%d | %+.3f | "
                      "%d/%zu |\n",
                      c.snr, c.blur, c.p, m.truth, m.label.mean(), m.label.worst, m.shell.mean(), m.shell.worst,
                      m.boot.mean(), m.boot.worst, m.ii.mean(), m.ii.worst, m.cov, m.nci, m.tl.mean(), m.refused,
                      grid.seeds.size());
        return std::string(line);
      });
  std::printf(
      "\n| SNR | blur σ | P MPa | truth | label − truth (mean, worst) | shell − truth | boot − truth | ii − truth "
      "| ii CI covers | truth labels − truth | refused |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& l : lines) std::printf("%s", l.c_str());
  std::printf(
      "\nworst |error|: label %.3f, shell %.3f, boot %.3f, ii %.3f; cells with every seed within 0.03: label %d, "
      "boot %d, ii %d of %d; ii CI coverage %d/%d\n",
      all_label.worst, all_shell.worst, all_boot.worst, all_ii.worst, within_label, within_boot, within_ii, cells,
      covered, with_ci);
  if (!series.empty()) {
    std::printf(
        "\n| bundled series sample | truth | label − truth | shell − truth | boot − truth | ii − truth ± ci95 |\n"
        "|---|---|---|---|---|---|\n");
    for (const char* name : {"p010", "p050", "p125", "p250", "p370"}) {
      const fs::path truth_path = fs::path(series) / (std::string(name) + ".truth.json");
      if (!fs::exists(truth_path)) continue;
      std::ifstream in(truth_path);
      const auto tj = nlohmann::json::parse(in);
      ReadOptions ro;
      ro.path = (fs::path(series) / (std::string(name) + ".tif")).string();
      const Volume<float> grey = to_float(read_volume(ro).volume);
      ro.path = (fs::path(series) / (std::string(name) + "_labels.tif")).string();
      LabelVolume truth;
      static_cast<Volume<std::uint8_t>&>(truth) = to_labels_u8(read_volume(ro).volume);
      truth.phases = phantom::phase_table(false);
      const Row r = measure_case(grey, truth, tj["contact_area_fraction"].get<double>());
      print_row(name, r);
      std::printf("| %s | %.3f | %+.3f | %+.3f | %+.3f | %+.3f ± %.3f |\n", name, r.truth, r.label - r.truth,
                  r.shell - r.truth, r.boot - r.truth, r.ii - r.truth, r.ii_ci);
    }
  }
  return 0;
}
