// The 95 % interval of porosity_pv taken apart (issue 11): per phantom cell, in-process through
// segment_grey (method auto, 3 classes), the half-width's terms (noise of the unmixed voxels, each
// end member; the rest, the middle share of three-phase voxels and the pairing, with the raw share
// and ambiguity they scale) beside the actual error and the error with the true end members, and
// the end members against the generator's grey levels: the pure-voxel mean and the histogram fit's
// mean (the old interval took half their disagreement as an uncertainty). Prints one CSV row per cell
// (docs/segmentation-studies.md, "How wide the porosity_pv interval is, and why"), then the coverage and
// the median half-width / |error|. The last columns take the error apart by the conserved grey mean
// (the AM fraction's term, each end member's, the rest; docs/segmentation-studies.md, "The 10 MPa σ 1.5
// error taken apart"); --bootstrap 1 adds, per cell, the error of the same segmentation on auto's
// and on the truth's labels re-imaged with the estimated end members, PSF and noise σ ("#" lines).
// The last four columns (the widest PSF σ estimate, the pore's pairing ambiguity, the half-width
// and the pairing term's 1.96 × SD, at full precision) replay another pairing share from the rows
// (docs/segmentation-studies.md, "The pairing share that follows the PSF").
// The last column, err_am_labels: the labels' AM fraction minus the truth's (the AM fraction read
// another way, beside err_am; docs/segmentation-studies.md, "porosity_pv at 250–370 MPa taken apart").
// --realistic images as `phantom --realistic`; --imaging poisson|cup|grain (overriding --realistic)
// switches one of its parts on alone (Poisson noise, the 8 % cup, the ± 4 % AM grain texture) to say
// which one an error follows.
// After the cells, one "# heckel" line per (SNR, blur, seed) over the pressures that segmented: k from
// porosity_pv, from the unmixing with the generator's end members (err_true_em: the pairing's share
// of the bias) and from the truth (pipeline/report/fits.h fit_heckel; docs/segmentation-studies.md,
// "The sharp-PSF porosity_pv bias taken apart"). A run at SNR 1000 is the noiseless re-imaging.
// Usage: bench_segment_pv_ci [--size N] [--seeds N | A-B] [--snr S,...] [--blur B,...] [--pressures P,...]
//                            [--realistic 0|1] [--imaging poisson|cup|grain] [--bootstrap 0|1]
//   default: 48³, seed 1, SNR 8, blur 1, 50 MPa (a quick run for `ninja bench`).
// Timings are not asserted; this is a measurement, not a test.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "filters/segment/end_members.h"
#include "filters/segment/segmenter.h"
#include "phantoms/phantom.h"
#include "pipeline/report/fits.h"
#include "test_composite_scan.h"

using namespace vp;
using vp::report::fit_heckel;
using vp::testing::composite_scan;
using vp::testing::CompositeScan;
using vp::testing::number_list;
using vp::testing::seed_range;

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  index_t size = 48;
  std::vector<std::uint64_t> seeds{1};
  std::vector<double> snrs{8}, blurs{1.0}, pressures{50};
  bool bootstrap = false, realistic = false;
  std::string imaging_part;  // one part of the realistic imaging alone (empty: as --realistic says)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr,
                   "usage: bench_segment_pv_ci [--size N] [--seeds N | A-B] [--snr S,...] [--blur B,...] "
                   "[--pressures P,...] [--realistic 0|1] [--imaging poisson|cup|grain] [--bootstrap 0|1]\n");
      return 2;
    }
    if (a == "--size") size = std::stoll(argv[++i]);
    else if (a == "--seeds") seeds = seed_range(argv[++i]);
    else if (a == "--snr") snrs = number_list(argv[++i]);
    else if (a == "--blur") blurs = number_list(argv[++i]);
    else if (a == "--pressures") pressures = number_list(argv[++i]);
    else if (a == "--bootstrap") bootstrap = std::stoi(argv[++i]) != 0;
    else if (a == "--realistic") realistic = std::stoi(argv[++i]) != 0;
    else if (a == "--imaging") imaging_part = argv[++i];
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (!imaging_part.empty() && imaging_part != "poisson" && imaging_part != "cup" && imaging_part != "grain") {
    std::fprintf(stderr, "--imaging %s: expected poisson, cup or grain\n", imaging_part.c_str());
    return 2;
  }
  // Half-width terms are 1.96 × each standard deviation (they add in quadrature).
  std::printf(
      "seed,snr,blur,P,truth,pv,err,ci95,hw_noise,hw_em0,hw_em1,hw_em2,hw_share_pairing,"
      "d0,d1,d2,stat0,stat1,stat2,mu0,mu1,mu2,fit0,fit1,fit2,true0,true1,true2,pure0,pure1,pure2,u0,u1,u2,"
      "ambiguity0,mid_share,mixed,err_true_em,sigma0,sigma1,sigma2,noise_sigma,w0,w1,w2,n01,n02,n12,thin,label0,"
      "shift1,labels1,err_am,dec_am,dec_em0,dec_em1,dec_em2,dec_grey,err_true_em1,psf,ambiguity0_exact,ci95_exact,"
      "hw_pairing,err_am_labels\n");
  std::vector<double> widths, errors;
  int cells = 0, inside = 0;
  // Per (SNR, blur, seed): the pressures and porosities that go into the Heckel lines.
  struct Series {
    double snr, blur;
    std::uint64_t seed;
    std::vector<double> p, pv, true_em, truth;
  };
  std::vector<Series> series;
  auto series_of = [&](double snr, double blur, std::uint64_t seed) -> Series& {
    for (Series& s : series)
      if (s.snr == snr && s.blur == blur && s.seed == seed) return s;
    series.push_back({snr, blur, seed, {}, {}, {}, {}});
    return series.back();
  };
  for (double snr : snrs)
    for (double blur : blurs)
      for (double p : pressures)
        for (std::uint64_t seed : seeds) {
          CompositeScan scan = composite_scan(seed, p, snr, blur, size, realistic && imaging_part.empty());
          if (!imaging_part.empty()) {  // the default imaging with one realistic part on, re-imaged
            if (imaging_part == "poisson") scan.imaging.noise = phantom::NoiseModel::poisson;
            if (imaging_part == "cup") scan.imaging.cupping = phantom::kRealisticCupping;
            if (imaging_part == "grain") scan.imaging.grain_contrast = phantom::kRealisticGrainContrast;
            scan.grey = vp::testing::grey_as_float(phantom::ct_image(scan.phantom, scan.imaging));
          }
          const phantom::Phantom& ph = scan.phantom;
          const phantom::ImagingSpec& im = scan.imaging;
          const Volume<float>& grey = scan.grey;
          const double truth = ph.truth.volume_fraction.at("pore");
          SegmentOptions o;
          o.classes = 3;
          SegmentResult r;
          try {
            r = segment_grey(grey, o);
          } catch (const InputError& e) {
            std::fprintf(stderr, "seed %llu SNR %g σ %g P %g refused: %s\n", static_cast<unsigned long long>(seed), snr,
                         blur, p, e.what());
            continue;
          }
          const PartialVolumeResult& pv = *r.partial_volume;
          const UnmixingSums& s = pv.unmixing;
          const int k = 3;
          const double N = static_cast<double>(s.voxels);
          const std::vector<double>& fit = r.auto_fit->mixture.means;
          const std::vector<double>& sigma = r.auto_fit->mixture.sigmas;
          const double tru[3] = {im.grey_level("pore"), im.grey_level("se"), im.grey_level("am")};
          // The terms as partial_volume_segmentation sums them, for class 0.
          double noise = 0;
          for (int b = 1; b < k; ++b) {
            const double span = pv.means[b] - pv.means[0];
            noise += static_cast<double>(s.pair_count[b]) * 0.5 * (sigma[0] * sigma[0] + sigma[b] * sigma[b]) /
                     (span * span) / (N * N);
          }
          double d[3], stat[3];
          for (int j = 0; j < k; ++j) {
            const double h = 1e-4 * (pv.means[k - 1] - pv.means[0]);
            std::vector<double> up = pv.means, dn = pv.means;
            up[j] += h, dn[j] -= h;
            d[j] = (unmixed_fractions(s, up)[0] - unmixed_fractions(s, dn)[0]) / (2 * h);
            const double nj = static_cast<double>(s.pure[j]);
            stat[j] =
                nj > 0 ? std::sqrt(std::max(s.pure_grey2[j] / nj - std::pow(s.pure_grey[j] / nj, 2), 0.0) / nj) : NAN;
          }
          const double mid = s.pair_share[(0 * k + 2) * k + 1] / N;
          // Middle share and pairing: what the noise and the end members leave of the half-width.
          double rest = std::pow(pv.fraction_pv_ci95[0] / 1.96, 2) - noise;
          for (int j = 0; j < k; ++j) rest -= std::pow(d[j] * pv.mean_uncertainty[j], 2);
          const double err = pv.fraction_pv[0] - truth;
          const double err_true_em = unmixed_fractions(s, {tru[0], tru[1], tru[2]})[0] - truth;
          std::printf(
              "%llu,%g,%g,%g,%.5f,%.5f,%+.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.4g,%.4g,%.4g,%.1f,%.1f,%.1f,%.1f,%."
              "1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%lld,%lld,%lld,%.1f,%.1f,%.1f,%.5f,%.5f,%lld,%+.5f,%.1f,%.1f,%."
              "1f,"
              "%.1f,%.5f,%.5f,%.5f,%lld,%lld,%lld,%.5f,%.5f",
              static_cast<unsigned long long>(seed), snr, blur, p, truth, pv.fraction_pv[0], err,
              pv.fraction_pv_ci95[0], 1.96 * std::sqrt(noise), 1.96 * std::fabs(d[0]) * pv.mean_uncertainty[0],
              1.96 * std::fabs(d[1]) * pv.mean_uncertainty[1], 1.96 * std::fabs(d[2]) * pv.mean_uncertainty[2],
              1.96 * std::sqrt(std::max(rest, 0.0)), d[0], d[1], d[2], stat[0], stat[1], stat[2], pv.means[0],
              pv.means[1], pv.means[2], fit[0], fit[1], fit[2], tru[0], tru[1], tru[2],
              static_cast<long long>(s.pure[0]), static_cast<long long>(s.pure[1]), static_cast<long long>(s.pure[2]),
              pv.mean_uncertainty[0], pv.mean_uncertainty[1], pv.mean_uncertainty[2], pv.pairing_ambiguity[0], mid,
              static_cast<long long>(pv.mixed_voxels), err_true_em, sigma[0], sigma[1], sigma[2],
              r.auto_fit->noise_sigma, r.auto_fit->mixture.weights[0], r.auto_fit->mixture.weights[1],
              r.auto_fit->mixture.weights[2], static_cast<long long>(s.pair_count[1]),
              static_cast<long long>(s.pair_count[2]), static_cast<long long>(s.pair_count[5]),
              static_cast<double>(pv.thin_pore_voxels) / N, pv.fraction_labels[0]);
          // The error taken apart by the grey mean (blur conserves it, and so does the unmixing up to
          // `unmixed`): with δ_c = φ̂_c − φ_c (Σ δ = 0) and true levels μ_c, δ_pore (μ_se − μ_pore) =
          // δ_am (μ_am − μ_se) + Σ φ̂_c (μ̂_c − μ_c) + (what the unmixing fails to conserve − what the
          // imaging fails to conserve): the AM fraction's term, each end member's, and the split's rest.
          double grey_mean = 0;
          for (index_t i = 0; i < grey.size(); ++i) grey_mean += grey[i];
          grey_mean /= N;
          const double phi[3] = {truth, ph.truth.volume_fraction.at("se"), ph.truth.volume_fraction.at("am")};
          double imaged = grey_mean, unmixed = grey_mean, dec_em[3];
          const double span = tru[1] - tru[0];
          for (int c = 0; c < k; ++c) {
            imaged -= phi[c] * tru[c];
            unmixed -= pv.fraction_pv[c] * pv.means[c];
            dec_em[c] = pv.fraction_pv[c] * (pv.means[c] - tru[c]) / span;
          }
          const double err_am = pv.fraction_pv[2] - phi[2];
          // The interval's inputs at full precision, so that another pairing share can be replayed
          // from these rows (the pairing term adds (share × ambiguity)² to the variance): the widest
          // PSF σ estimate, the pore's ambiguity, the half-width and the pairing's own 1.96 × SD.
          const double psf = *std::max_element(r.psf_sigma_vox.begin(), r.psf_sigma_vox.end());
          std::printf(",%.1f,%.0f,%+.5f,%+.5f,%+.5f,%+.5f,%+.5f,%+.5f,%+.5f,%.4f,%.8g,%.8g,%.8g,%+.5f\n",
                      pv.end_member_shift[1], pv.fraction_labels[1] * N, err_am, err_am * (tru[2] - tru[1]) / span,
                      dec_em[0], dec_em[1], dec_em[2], (unmixed - imaged) / span,
                      unmixed_fractions(s, {pv.means[0], tru[1], pv.means[2]})[0] - truth, psf, pv.pairing_ambiguity[0],
                      pv.fraction_pv_ci95[0], 1.96 * pv.pairing_share * pv.pairing_ambiguity[0],
                      pv.fraction_labels[2] - phi[2]);
          if (bootstrap) {
            // The unmixing's bias on labels of known fractions (auto's, then the truth's), imaged with
            // the estimated end members, PSF and noise σ and segmented the same way: where the truth's
            // reproduces the error, the error is the geometry's under the PSF, not the end members'.
            for (int which = 0; which < 2; ++which) {
              const Volume<std::uint8_t>& L =
                  which == 0 ? r.labels : static_cast<const Volume<std::uint8_t>&>(ph.labels);
              SimulatedScanOptions eo;
              eo.psf_sigma_vox = r.psf_sigma_vox;
              eo.noise_sigma = r.auto_fit->noise_sigma;
              eo.integral = true;
              eo.seed = seed + 1000;
              eo.max_side = size;
              std::vector<double> lab_frac(3, 0.0);
              for (index_t i = 0; i < L.size(); ++i) lab_frac[std::min<int>(L[i], 2)] += 1.0 / N;
              const Volume<float> sim = simulated_scan(L, pv.means, eo);
              try {
                const SegmentResult rs = segment_grey(sim, o);
                std::printf(
                    "# bootstrap on %s labels, seed %llu SNR %g P %g: error %+.4f, bias %+.4f (label pore %.4f)\n",
                    which == 0 ? "auto" : "truth", static_cast<unsigned long long>(seed), snr, p, err,
                    rs.partial_volume->fraction_pv[0] - lab_frac[0], lab_frac[0]);
              } catch (const std::exception& e) {
                std::printf("# bootstrap refused: %s\n", e.what());
              }
            }
          }
          Series& line = series_of(snr, blur, seed);
          line.p.push_back(p), line.pv.push_back(pv.fraction_pv[0]);
          line.true_em.push_back(truth + err_true_em), line.truth.push_back(truth);
          std::fflush(stdout);
          ++cells, inside += std::fabs(err) <= pv.fraction_pv_ci95[0];
          widths.push_back(pv.fraction_pv_ci95[0]), errors.push_back(std::fabs(err));
        }
  for (const Series& s : series) {
    const double k_truth = fit_heckel(s.p, s.truth).k_per_MPa;
    const double k_pv = fit_heckel(s.p, s.pv).k_per_MPa, k_em = fit_heckel(s.p, s.true_em).k_per_MPa;
    std::printf(
        "# heckel SNR %g blur %g seed %llu: k porosity_pv %.5f (%+.1f %%), true end members %.5f (%+.1f %%), "
        "truth %.5f\n",
        s.snr, s.blur, static_cast<unsigned long long>(s.seed), k_pv, 100 * (k_pv / k_truth - 1), k_em,
        100 * (k_em / k_truth - 1), k_truth);
  }
  if (cells > 0)
    std::printf(
        "# cells %d, truth inside the interval %d (%.1f %%), median half-width %.4f / median |error| %.4f = %.2f\n",
        cells, inside, 100.0 * inside / cells, median(widths), median(errors), median(widths) / median(errors));
  return 0;
}
