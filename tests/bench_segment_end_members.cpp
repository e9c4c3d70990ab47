// End members of classes without pure voxels (filters/segment/end_members.h): per phantom cell,
// the histogram fit's end members and the inferred ones against the true grey levels, and
// porosity_pv with and without the inference, in-process through segment_grey (method auto,
// 3 classes). Prints a markdown table (docs/segmentation.md, "End members of classes without
// pure voxels"), then Heckel k per seed and imaging (least squares of −ln porosity_pv on P over the
// pressures that segmented) with and without.
// --refit compares refit_end_members (off, then on) instead of infer_end_members; --refit-side N sets
// its central block's side (PartialVolumeOptions::refit_max_side; N ≥ the size: the whole scan). --explore prints, per
// scan, the candidates measured before refit_end_members was built (docs/segmentation.md, "End members refitted by
// forward-model MAP"): the ICM + least-squares refit's end members, unmixing with them (A1, A2) and the grey-mean split
// with the AM fraction unmixed, from the ICM labels, or true (B1–B3); --icm-z, --icm-anneal, --icm-sweeps set that
// ICM's flat_interface_z, anneal_sweeps and max_sweeps (no early stop). Usage: bench_segment_end_members [--size N]
// [--seeds N | A-B] [--snr S,...] [--blur B,...] [--pressures P,...]
//                                  [--refit [--refit-side N] | --explore [--icm-z Z] [--icm-anneal N] [--icm-sweeps N]]
//   default: 64³, seed 1, SNR 8, blur 1.5, pressures 10/250 MPa.
// Timings are not asserted; this is a measurement, not a test.
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
  std::vector<double> pressure, fitted, inferred;  // −ln porosity_pv
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

}  // namespace

int main(int argc, char** argv) {
  index_t size = 64;
  std::vector<std::uint64_t> seed_list{1};
  bool explore = false, refit = false;
  ForwardModelOptions icm;
  index_t refit_side = PartialVolumeOptions{}.refit_max_side;
  std::vector<double> snrs{8}, blurs{1.5}, pressures{10, 250};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--explore" || a == "--refit") {
      (a == "--refit" ? refit : explore) = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(
          stderr,
          "usage: bench_segment_end_members [--size N] [--seeds N | A-B] [--snr S,...] [--blur B,...] "
          "[--pressures P,...] [--refit [--refit-side N] | --explore [--icm-z Z] [--icm-anneal N] [--icm-sweeps N]]\n");
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
  const char* moved = refit ? "refitted" : "inferred";
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
          phantom::CompositeSpec spec;
          spec.dims = {size, size, size};
          spec.seed = static_cast<std::uint64_t>(seed);
          const phantom::Phantom ph = phantom::generate_composite(spec, p);
          phantom::ImagingSpec im;
          im.seed = spec.seed;
          im.snr = snr;
          im.blur_sigma_vox = {blur, blur, blur};
          const Volume<std::uint16_t> g16 = phantom::ct_image(ph, im);
          Volume<float> grey = g16.like<float>(g16.dims());
          for (index_t i = 0; i < grey.size(); ++i) grey[i] = g16[i];
          const double truth = ph.truth.volume_fraction.at("pore");
          SegmentOptions o;
          o.classes = 3;
          o.partial_volume.refit_max_side = refit_side;
          if (explore) {
            explore_cell(grey, ph, icm, o, seed, snr, blur, p);
            continue;
          }
          try {
            o.partial_volume.infer_end_members = false;
            o.partial_volume.refit_end_members = false;  // on by default
            const SegmentResult off = segment_grey(grey, o);
            (refit ? o.partial_volume.refit_end_members : o.partial_volume.infer_end_members) = true;
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
            h.inferred.push_back(-std::log(b.fraction_pv[0]));
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
    const double k0 = slope(h.pressure, h.fitted), k1 = slope(h.pressure, h.inferred);
    const double g = phantom::CompactionSpec{}.heckel_k;
    std::printf("| %g | %g | %g | %zu | %.5f → %.5f | %+.1f %% → %+.1f %% |\n", key[0], key[1], key[2],
                h.pressure.size(), k0, k1, 100 * (k0 / g - 1), 100 * (k1 / g - 1));
  }
  return 0;
}
