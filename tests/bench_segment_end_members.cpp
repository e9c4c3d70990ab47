// End members of classes without pure voxels (filters/segment/end_members.h): per phantom cell,
// the histogram fit's end members and the refitted ones (refit_end_members, off then on) against the
// true grey levels, and porosity_pv with and without the refit, in-process through segment_grey
// (method auto, 3 classes). Prints a markdown table (docs/segmentation-studies.md, "End members
// refitted by forward-model MAP"), then Heckel k per seed and imaging (least squares of −ln
// porosity_pv on P over the pressures that segmented) with and without. (It compared
// infer_end_members until that was removed; --refit, which chose the refit then, is still taken.)
// --refit-side N sets the refit's central block's side (PartialVolumeOptions::refit_max_side; N ≥ the
// size: the whole scan). --explore prints, per
// scan, the candidates measured before refit_end_members was built (docs/segmentation-studies.md, "End members refitted
// by forward-model MAP"): the ICM + least-squares refit's end members, unmixing with them (A1, A2) and the grey-mean
// split with the AM fraction unmixed, from the ICM labels, or true (B1–B3); --icm-z, --icm-anneal, --icm-sweeps set
// that ICM's flat_interface_z, anneal_sweeps and max_sweeps (no early stop). --extrapolate prints, per scan, the
// darkest end member where auto extrapolated it against the truth (extrapolation_cell). Usage:
// bench_segment_end_members [--size N]
// [--seeds N | A-B] [--snr S,...] [--blur B,...] [--pressures P,...]
//                                  [[--refit] [--refit-side N] | --explore [--icm-z Z] [--icm-anneal N] [--icm-sweeps
//                                  N]
//                                   | --extrapolate]
//   default: 64³, seed 1, SNR 8, blur 1.5, pressures 10/250 MPa.
// Timings are not asserted; this is a measurement, not a test.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "filters/segment/end_members.h"
#include "filters/segment/forward_model.h"
#include "filters/segment/segmenter.h"
#include "phantoms/phantom.h"
#include "test_composite_scan.h"

using namespace vp;
using vp::testing::number_list;
using vp::testing::seed_range;

namespace {

// Least-squares slope of y on x.
double slope(const std::vector<double>& x, const std::vector<double>& y) {
  const auto n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

struct Series {
  std::vector<double> pressure, fitted, refitted;  // −ln porosity_pv
};

// Candidates for the end members of classes without pure voxels, printed per scan.
void explore_cell(const Volume<float>& grey, const phantom::Phantom& ph, ForwardModelOptions fm, SegmentOptions o,
                  std::uint64_t seed, double snr, double blur, double p) {
  SegmentResult r;
  try {
    r = segment_grey(grey, o);
  } catch (const InputError&) {
    std::printf("%llu %g %g %g refused\n", static_cast<unsigned long long>(seed), snr, blur, p);
    return;
  }
  const PartialVolumeResult& pv = *r.partial_volume;
  const int k = 3;
  const double t[3] = {ph.truth.volume_fraction.at("pore"), ph.truth.volume_fraction.at("se"),
                       ph.truth.volume_fraction.at("am")};
  double gsum = 0;
  for (index_t i = 0; i < grey.size(); ++i) gsum += grey[i];
  const double gmean = gsum / static_cast<double>(grey.size());
  std::vector<bool> fit_only(k, false);
  for (int c = 1; c < k; ++c) fit_only[c] = pv.pure_voxels[c] < 200;
  if (!fit_only[1] && !fit_only[2]) {
    std::printf("%llu snr %g σ %g P %g | pure %lld/%lld/%lld | unchanged pv−t %+.4f\n",
                static_cast<unsigned long long>(seed), snr, blur, p, static_cast<long long>(pv.pure_voxels[0]),
                static_cast<long long>(pv.pure_voxels[1]), static_cast<long long>(pv.pure_voxels[2]),
                pv.fraction_pv[0] - t[0]);
    return;
  }
  fm.psf_sigma_vox = r.psf_sigma_vox;
  fm.noise_sigma = r.auto_fit->noise_sigma;
  fm.refit_means = true;
  Volume<std::uint8_t> L = r.labels;
  const auto t0 = std::chrono::steady_clock::now();
  const ForwardModelRelabelling rel = forward_model_relabel(grey, L, pv.means, fm);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> mu1 = pv.means;
  for (int c = 0; c < k; ++c)
    if (fit_only[c]) mu1[c] = rel.means[c];
  const std::vector<double> fa1 = unmixed_fractions(pv.unmixing, mu1);
  const std::vector<double> fa2 = unmixed_fractions(pv.unmixing, rel.means);
  std::int64_t nam = 0, npore = 0, npore0 = 0;
  for (index_t i = 0; i < L.size(); ++i) nam += L[i] == 2, npore += L[i] == 0, npore0 += r.labels[i] == 0;
  const double am_lab = static_cast<double>(nam) / static_cast<double>(L.size());
  // The pore fraction of the grey-mean split (end_members.h) with the AM fraction given.
  auto pore_from_mean = [&](double am, const std::vector<double>& mu) {
    return split_by_grey_mean({0, 0, am}, mu, gmean, 1)[0];
  };
  std::printf(
      "%llu snr %g σ %g P %g | pure %lld/%lld/%lld | μ %.0f/%.0f/%.0f refit %.0f/%.0f/%.0f (%d sw, %.1f s) | "
      "truth %.4f/%.4f/%.4f | pv−t %+.4f/%+.4f/%+.4f | A1 %+.4f/%+.4f/%+.4f | A2 %+.4f | "
      "B1(AM pv) %+.4f | B2(AM relab %.4f) %+.4f | B3(AM t) %+.4f | lab pore %.4f→%.4f\n",
      static_cast<unsigned long long>(seed), snr, blur, p, static_cast<long long>(pv.pure_voxels[0]),
      static_cast<long long>(pv.pure_voxels[1]), static_cast<long long>(pv.pure_voxels[2]), pv.means[0], pv.means[1],
      pv.means[2], rel.means[0], rel.means[1], rel.means[2], rel.sweeps, secs, t[0], t[1], t[2],
      pv.fraction_pv[0] - t[0], pv.fraction_pv[1] - t[1], pv.fraction_pv[2] - t[2], fa1[0] - t[0], fa1[1] - t[1],
      fa1[2] - t[2], fa2[0] - t[0], pore_from_mean(pv.fraction_pv[2], mu1) - t[0], am_lab - t[2],
      pore_from_mean(am_lab, mu1) - t[0], pore_from_mean(t[2], mu1) - t[0],
      static_cast<double>(npore0) / static_cast<double>(L.size()) - t[0],
      static_cast<double>(npore) / static_cast<double>(L.size()) - t[0]);
  std::fflush(stdout);
}

// The darkest end member where auto extrapolated it (mixture_model.h dark_end_member_profile)
// against the truth, per scan (docs/segmentation-studies.md, "The extrapolated pore end member"): the
// end member and its interval, 2 ΔLL of the profile at the generator's pore grey, porosity_pv, how
// far the truth's pore reaches under the PSF (its blurred indicator f: the share of a voxel's
// noise-free grey deficit that pore makes, 1 in pure pore), and porosity_pv with the exact end
// members with the pore deficit the unmixing drops in voxels it counts pure SE or AM.
void extrapolation_cell(const vp::testing::CompositeScan& s, std::uint64_t seed, double snr, double blur, double p) {
  const phantom::ImagingSpec& im = s.imaging;
  const double mu[3] = {im.grey_level("pore"), im.grey_level("se"), im.grey_level("am")};
  const double truth = s.phantom.truth.volume_fraction.at("pore");
  std::printf("| %d | %g | %g | %g | %.4f |", static_cast<int>(seed), snr, blur, p, truth);
  SegmentOptions o;
  o.classes = 3;
  try {
    const SegmentResult r = segment_grey(s.grey, o);
    const PartialVolumeResult& pv = *r.partial_volume;
    const auto& e = r.auto_fit->dark_end_member;
    double label_pore = 0;
    for (index_t i = 0; i < r.labels.size(); ++i) label_pore += r.labels[i] == 0;
    std::printf(" %.4f |", label_pore / static_cast<double>(r.labels.size()));
    if (e) {
      const auto& g = e->profile_grey;
      const auto& ll = e->profile_log_likelihood;
      std::size_t at = 0;
      for (std::size_t i = 0; i < g.size(); ++i)
        if (std::fabs(g[i] - mu[0]) < std::fabs(g[at] - mu[0])) at = i;
      const double top = *std::max_element(ll.begin(), ll.end());
      std::printf(" %.0f (%.0f–%.0f) | %.1f |", e->mean, e->ci95_low, e->ci95_high, 2 * (top - ll[at]));
      // Indirect inference (scratch): the labels re-imaged with a trial pore end member, the scan's
      // PSF, noise and other end members; the same fit's darkest end member on that histogram.
      SimulatedScanOptions eo;
      eo.psf_sigma_vox = r.psf_sigma_vox;
      eo.noise_sigma = r.auto_fit->noise_sigma;
      eo.integral = true;
      const auto statistic = [&](const Volume<std::uint8_t>& labels, double mu0) {
        const Volume<float> sim = simulated_scan(labels, {mu0, pv.means[1], pv.means[2]}, eo);
        try {
          const AutoSegmentFit f =
              fit_auto_segmentation(histogram(sim, 256, r.histogram.lo, r.histogram.hi), 3, eo.noise_sigma);
          return f.dark_end_member ? f.dark_end_member->mean : f.mixture.means[0];
        } catch (const InputError&) {
          return std::nan("");
        }
      };
      std::printf(" %.0f / %.0f |", statistic(s.phantom.labels, mu[0]), statistic(r.labels, mu[0]));
    } else {
      std::printf(" %.0f fit | | |", pv.means[0]);
    }
    std::printf(" %.4f ± %.4f |", pv.fraction_pv[0], pv.fraction_pv_ci95[0]);
  } catch (const InputError&) {
    std::printf(" refused | | | | |");
  }
  // The pore's blurred indicator: the scan's PSF, no noise, pore 1 and every other phase 0.
  phantom::ImagingSpec unit = im;
  for (auto& [phase, a] : unit.attenuation) a = phase == "pore" ? 1.0 : 0.0;
  unit.noise = phantom::NoiseModel::none;
  unit.offset = 0;
  unit.gain = 60000;
  unit.cupping = unit.grain_contrast = 0;
  const Volume<std::uint16_t> f16 = phantom::ct_image(s.phantom.labels, unit);
  double fmax = 0, blend = 0, blend_half = 0, mass = 0, mass_half = 0, mass_pure = 0;
  std::vector<double> f;
  for (index_t i = 0; i < f16.size(); ++i) {
    const double v = f16[i] / unit.gain;
    fmax = std::max(fmax, v);
    mass += v, mass_half += v >= 0.5 ? v : 0, mass_pure += v >= 0.9 ? v : 0;
    if (v >= 0.05 && v < 0.95) ++blend, blend_half += v >= 0.5;
    if (v >= 0.05) f.push_back(v);
  }
  std::sort(f.begin(), f.end());
  const double q999 = f.empty() ? 0 : f[static_cast<std::size_t>(0.999 * static_cast<double>(f.size() - 1))];
  std::printf(" %.2f / %.2f (%.0f) | %.3f | %.3f / %.3f |", fmax, q999, mu[1] - q999 * (mu[1] - mu[0]),
              blend > 0 ? blend_half / blend : 0, mass > 0 ? mass_half / mass : 0, mass > 0 ? mass_pure / mass : 0);
  // The same scan unmixed with the exact end members.
  o.end_members = ReferenceEndMembers{{mu[0], mu[1], mu[2]}, {0, 0, 0}, "generator"};
  const SegmentResult x = segment_grey(s.grey, o);
  const PartialVolumeResult& pv = *x.partial_volume;
  const UnmixingSums& u = pv.unmixing;
  const auto n = static_cast<double>(u.voxels);
  double lost[3] = {0, 0, 0};
  for (int c = 1; c < 3; ++c)
    if (u.pure[c] > 0) lost[c] = (static_cast<double>(u.pure[c]) * mu[c] - u.pure_grey[c]) / (mu[c] - mu[0]) / n;
  double by_label[3] = {0, 0, 0}, mass_all = 0;
  for (index_t i = 0; i < f16.size(); ++i)
    if (s.phantom.labels[i] == phantom::kPore) by_label[x.labels[i]] += 1, mass_all += 1;
  std::printf(" %.4f ± %.4f | %+.4f / %+.4f | %+.4f / %+.4f | %.2f / %.2f / %.2f |\n", pv.fraction_pv[0],
              pv.fraction_pv_ci95[0], pv.fraction_pv[1] - s.phantom.truth.volume_fraction.at("se"),
              pv.fraction_pv[2] - s.phantom.truth.volume_fraction.at("am"), lost[1], lost[2], by_label[0] / mass_all,
              by_label[1] / mass_all, by_label[2] / mass_all);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  index_t size = 64;
  std::vector<std::uint64_t> seed_list{1};
  bool explore = false, extrapolate = false;
  ForwardModelOptions icm;
  index_t refit_side = PartialVolumeOptions{}.refit_max_side;
  std::vector<double> snrs{8}, blurs{1.5}, pressures{10, 250};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--refit") continue;  // the only comparison now
    if (a == "--explore" || a == "--extrapolate") {
      (a == "--extrapolate" ? extrapolate : explore) = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(
          stderr,
          "usage: bench_segment_end_members [--size N] [--seeds N | A-B] [--snr S,...] [--blur B,...] "
          "[--pressures P,...] [[--refit] [--refit-side N] | --explore [--icm-z Z] [--icm-anneal N] [--icm-sweeps N] | "
          "--extrapolate]\n");
      return 2;
    }
    if (a == "--size") size = std::stoll(argv[++i]);
    else if (a == "--seeds") seed_list = seed_range(argv[++i]);  // N or A-B (held-out seeds)
    else if (a == "--snr") snrs = number_list(argv[++i]);
    else if (a == "--blur") blurs = number_list(argv[++i]);
    else if (a == "--pressures") pressures = number_list(argv[++i]);
    else if (a == "--refit-side") refit_side = std::stoll(argv[++i]);
    else if (a == "--icm-z") icm.flat_interface_z = std::stod(argv[++i]);
    else if (a == "--icm-anneal") icm.anneal_sweeps = std::stoi(argv[++i]);
    else if (a == "--icm-sweeps") icm.max_sweeps = std::stoi(argv[++i]), icm.stop_share = 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (extrapolate) {
    std::printf(
        "| seed | SNR | σ | P MPa | truth | pore labels | pore end member (95 %%) | 2 ΔLL at the generator's | "
        "re-imaged at the generator's: truth / auto labels | porosity_pv | f max / 99.9 %% (grey) | blends f ≥ ½ | "
        "pore volume at f ≥ ½ / ≥ 0.9 | exact end members: porosity_pv | SE / AM − truth | pore dropped as pure SE / "
        "AM "
        "| true pore voxels labelled pore / SE / AM (exact end members) "
        "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (double snr : snrs)
      for (double blur : blurs)
        for (double p : pressures)
          for (std::uint64_t seed : seed_list)
            extrapolation_cell(vp::testing::composite_scan(seed, p, snr, blur, size), seed, snr, blur, p);
    return 0;
  }
  const char* moved = "refitted";
  std::printf(
      "| seed | SNR | σ | P MPa | pure voxels pore/SE/AM | fit end members | %s | truth | porosity | "
      "porosity_pv − truth: fit → %s | ci95: fit → %s | segment s (%s) |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
      moved, moved, moved, moved);
  std::map<std::array<double, 3>, Series> heckel;  // (SNR, σ, seed)
  for (double snr : snrs)
    for (double blur : blurs)
      for (double p : pressures)
        for (std::uint64_t seed : seed_list) {
          const vp::testing::CompositeScan scan = vp::testing::composite_scan(seed, p, snr, blur, size);
          const phantom::Phantom& ph = scan.phantom;
          const Volume<float>& grey = scan.grey;
          const phantom::ImagingSpec& im = scan.imaging;
          const double truth = ph.truth.volume_fraction.at("pore");
          SegmentOptions o;
          o.classes = 3;
          o.partial_volume.refit_max_side = refit_side;
          if (explore) {
            explore_cell(grey, ph, icm, o, seed, snr, blur, p);
            continue;
          }
          try {
            o.partial_volume.refit_end_members = false;  // on by default
            const SegmentResult off = segment_grey(grey, o);
            o.partial_volume.refit_end_members = true;
            const auto t0 = std::chrono::steady_clock::now();
            const SegmentResult on = segment_grey(grey, o);
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const PartialVolumeResult &a = *off.partial_volume, &b = *on.partial_volume;
            std::printf(
                "| %d | %g | %g | %g | %lld/%lld/%lld | %.0f/%.0f/%.0f | %.0f/%.0f/%.0f | %.0f/%.0f/%.0f | "
                "%.4f | %+.4f → %+.4f | %.4f → %.4f | %.2f |\n",
                static_cast<int>(seed), snr, blur, p, static_cast<long long>(a.pure_voxels[0]),
                static_cast<long long>(a.pure_voxels[1]), static_cast<long long>(a.pure_voxels[2]), a.means[0],
                a.means[1], a.means[2], b.means[0], b.means[1], b.means[2], im.grey_level("pore"), im.grey_level("se"),
                im.grey_level("am"), truth, a.fraction_pv[0] - truth, b.fraction_pv[0] - truth, a.fraction_pv_ci95[0],
                b.fraction_pv_ci95[0], s);
            Series& h = heckel[{snr, blur, static_cast<double>(seed)}];
            h.pressure.push_back(p);
            h.fitted.push_back(-std::log(a.fraction_pv[0]));
            h.refitted.push_back(-std::log(b.fraction_pv[0]));
          } catch (const InputError&) {
            std::printf("| %d | %g | %g | %g | refused | | | | | | | |\n", static_cast<int>(seed), snr, blur, p);
          }
          std::fflush(stdout);
        }
  std::printf(
      "\n| SNR | σ | seed | pressures | Heckel k, MPa⁻¹: fit → %s | error vs generator %g |\n"
      "|---|---|---|---|---|---|\n",
      moved, phantom::CompactionSpec{}.heckel_k);
  for (const auto& [key, h] : heckel) {
    if (h.pressure.size() < 3) continue;
    const double k0 = slope(h.pressure, h.fitted), k1 = slope(h.pressure, h.refitted);
    const double g = phantom::CompactionSpec{}.heckel_k;
    std::printf("| %g | %g | %g | %zu | %.5f → %.5f | %+.1f %% → %+.1f %% |\n", key[0], key[1], key[2],
                h.pressure.size(), k0, k1, 100 * (k0 / g - 1), 100 * (k1 / g - 1));
  }
  return 0;
}
