#include "filters/segment/segmenter.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/axis.h"
#include "core/error.h"
#include "filters/io/slice_png.h"

namespace vp {

SegmentMethod parse_segment_method(const std::string& n) {
  if (n == "auto") return SegmentMethod::automatic;
  if (n == "otsu") return SegmentMethod::otsu;
  if (n == "multi-otsu" || n == "multi_otsu") return SegmentMethod::multi_otsu;
  if (n == "gmm") return SegmentMethod::gmm;
  if (n == "kmeans") return SegmentMethod::kmeans;
  if (n == "threshold") return SegmentMethod::threshold;
  if (n == "hysteresis") return SegmentMethod::hysteresis;
  if (n == "forest") return SegmentMethod::forest;
  throw InputError("segmentation method '" + n + "': expected one of " + kSegmentMethodChoices);
}

std::string to_string(SegmentMethod m) {
  switch (m) {
    case SegmentMethod::automatic: return "auto";
    case SegmentMethod::otsu: return "otsu";
    case SegmentMethod::multi_otsu: return "multi-otsu";
    case SegmentMethod::gmm: return "gmm";
    case SegmentMethod::kmeans: return "kmeans";
    case SegmentMethod::threshold: return "threshold";
    case SegmentMethod::hysteresis: return "hysteresis";
    case SegmentMethod::forest: return "forest";
  }
  return "otsu";
}

namespace {

// estimate_psf with the scan's noise σ (the mixture fit's), the same for both of auto's estimates.
PsfOptions psf_options(double noise_sigma) {
  PsfOptions po;
  po.noise_sigma = noise_sigma;
  return po;
}

// The PSF σ the partial-volume labelling uses: the given σ per axis, else the edge-spread estimate
// from the scan between the fitted end members (its neighbourhood and edge slope must match the
// scan's blur: a σ of 1 voxel on a scan blurred by 1.5 misses a third of every edge's blend). An
// axis the estimate cannot measure takes the mean of the measured axes (1 voxel if none), with
// a warning.
std::array<double, 3> labelling_psf(const Volume<float>& grey, AutoSegmentFit& fit, const std::array<double, 3>& given,
                                    SegmentResult& r) {
  std::array<double, 3> sigma = given;
  if (std::all_of(given.begin(), given.end(), [](double s) { return s > 0; })) return sigma;
  PsfOptions po = psf_options(fit.noise_sigma);
  po.keep_crossings = true;  // for the second estimate (refine_psf_with_refitted_end_members)
  r.psf = estimate_psf(grey, fit.mixture.means, po);
  double sum = 0;
  int measured = 0;
  for (int a = 0; a < 3; ++a)
    if (std::isfinite(r.psf->sigma_vox[a]) && r.psf->sigma_vox[a] > 0) sum += r.psf->sigma_vox[a], ++measured;
  const double fallback = measured ? sum / measured : 1.0;
  for (int a = 0; a < 3; ++a) {
    if (sigma[a] > 0) continue;
    const double e = r.psf->sigma_vox[a];
    if (std::isfinite(e) && e > 0) {
      sigma[a] = e;
    } else {
      sigma[a] = fallback;
      if (grey.dims()[a] > 1)
        fit.warnings.push_back("PSF σ along " + axis_name(a) + " not measurable (" + r.psf->status +
                               "); the partial-volume labelling assumed " + std::to_string(fallback) + " voxels");
    }
  }
  return sigma;
}

// A fit whose darkest end member was extrapolated from its blends (fit_auto_segmentation, instead
// of a refusal): its end members are used as fitted, like reference end members, with that one's
// wide uncertainty (ExtrapolatedEndMember) and the others' from the fit, so that the fractions'
// interval carries the extrapolation.
std::vector<double> extrapolated_fit_uncertainty(const AutoSegmentFit& fit, const Volume<float>& grey) {
  const PartialVolumeMixture& m = fit.mixture;
  std::vector<double> u{fit.dark_end_member->uncertainty};
  for (int c = 1; c < m.classes(); ++c)
    u.push_back(fitted_end_member_uncertainty(m.sigmas[c], m.weights[c], static_cast<double>(grey.size())));
  return u;
}

// The scan's PSF estimated again, on every scan, between the end members the partial-volume step
// used (pure-voxel means, refitted where a class has none): estimate_psf's plateau test is centred
// on the levels, and a histogram-fit SE level pulled low (Poisson noise, thin SE) admits SE plateaus
// a nearby pore has darkened, which read wide (SNR 5, σ 1 and 1.5, 50 MPa: +8 %). Started from the
// first estimate (its σ, window and kept crossings; PsfOptions::start_sigma_vox, start_crossings):
// about a quarter of its time. Reported, not relabelled with (docs/segmentation-studies.md, "PSF σ
// at SNR 5 under Poisson noise" and "A cheap second PSF estimate").
void refine_psf_with_refitted_end_members(const Volume<float>& grey, double noise_sigma, SegmentResult& r) {
  if (!r.psf || !r.partial_volume) return;
  PsfOptions po = psf_options(noise_sigma);
  po.start_sigma_vox = r.psf->sigma_vox;
  po.start_crossings = r.psf->crossings;
  try {
    r.psf = estimate_psf(grey, r.partial_volume->means, po);
    r.psf_from_refitted_end_members = true;
  } catch (const InputError&) {
    // End members that are not distinct and ascending keep the first estimate.
  }
  r.psf->crossings.reset();
}

}  // namespace

const char* psf_end_members(const SegmentResult& r) {
  return r.psf_from_refitted_end_members ? "refitted" : "histogram_fit";
}

SegmentResult segment_grey(const Volume<float>& grey, const SegmentOptions& o) {
  SegmentResult r;
  r.histogram = histogram(grey, o.bins);
  if (o.classes < 2 || o.classes > 255) throw InputError("classes must be 2..255, got " + std::to_string(o.classes));
  if (o.end_members && o.method != SegmentMethod::automatic)
    throw InputError("end members (--end-members / end_members) are for method auto, not " + to_string(o.method));
  switch (o.method) {
    case SegmentMethod::automatic: {
      // The scan's own noise σ decides whether fitted classes are resolvable (mixture_model.h)
      // and which voxels are pure (partial_volume.h).
      const ScanNoise sn = scan_noise(grey, r.histogram);
      const double noise = sn.sigma;
      const double cap = sn.correlated ? 0.0 : kMaxSigmaPerNoise;  // one peak's σ bounds no other phase
      r.auto_fit = o.end_members ? fit_with_reference_end_members(r.histogram, o.classes, *o.end_members, noise, cap)
                                 : fit_auto_segmentation(r.histogram, o.classes, noise, cap);
      r.auto_fit->scan_noise = sn;
      PartialVolumeOptions pvo = o.partial_volume;
      if (o.end_members) pvo.end_member_uncertainty = r.auto_fit->reference_uncertainty;
      if (r.auto_fit->dark_end_member) pvo.end_member_uncertainty = extrapolated_fit_uncertainty(*r.auto_fit, grey);
      if (!(pvo.noise_sigma > 0)) pvo.noise_sigma = r.auto_fit->noise_sigma;
      pvo.psf_sigma_vox = labelling_psf(grey, *r.auto_fit, pvo.psf_sigma_vox, r);
      r.psf_sigma_vox = pvo.psf_sigma_vox;
      r.partial_volume = partial_volume_segmentation(grey, r.auto_fit->mixture, pvo);
      r.labels = std::move(r.partial_volume->labels);
      r.partial_volume->labels = Volume<std::uint8_t>();
      refine_psf_with_refitted_end_members(grey, r.auto_fit->noise_sigma, r);
      if (o.pore_films && o.classes == 3)
        r.pore_films =
            relabel_pore_films(grey, r.labels, r.partial_volume->means, r.psf_sigma_vox, pvo.noise_sigma, o.films);
      if (r.pore_films && r.pore_films->voxels_relabelled > 0) {
        const double moved = static_cast<double>(r.pore_films->voxels_relabelled) / static_cast<double>(grey.size());
        r.partial_volume->fraction_labels[0] += moved, r.partial_volume->fraction_labels[1] -= moved;
      }
      if (r.auto_fit->poor_fit()) widen_for_misfit(*r.partial_volume, r.auto_fit->mixture.ks);
      r.thresholds = r.partial_volume->thresholds;
      r.mixture = pure_components(r.auto_fit->mixture);
      break;
    }
    case SegmentMethod::otsu:
    case SegmentMethod::multi_otsu:
      r.thresholds = otsu_thresholds(r.histogram, o.method == SegmentMethod::otsu ? 2 : o.classes);
      r.labels = apply_thresholds(grey, r.thresholds);
      break;
    case SegmentMethod::kmeans:
      r.kmeans = kmeans_intensity(r.histogram, o.classes);
      r.thresholds = r.kmeans->thresholds;
      r.labels = apply_thresholds(grey, r.thresholds);
      break;
    case SegmentMethod::gmm:
      r.mixture = fit_gaussian_mixture(r.histogram, o.classes);
      r.thresholds = r.mixture->boundaries(r.histogram.lo, r.histogram.hi);
      r.labels = classify_mixture(grey, *r.mixture);
      break;
    case SegmentMethod::threshold:
      if (o.thresholds.empty()) throw InputError("method threshold needs thresholds (e.g. --thresholds 0.3,0.7)");
      r.thresholds = o.thresholds;
      r.labels = apply_thresholds(grey, r.thresholds);
      break;
    case SegmentMethod::hysteresis:
      if (o.thresholds.size() != 2)
        throw InputError("method hysteresis needs exactly two thresholds LOW,HIGH; got " +
                         std::to_string(o.thresholds.size()));
      r.thresholds = o.thresholds;
      r.labels = hysteresis_threshold(grey, o.thresholds[0], o.thresholds[1], o.connectivity);
      break;
    case SegmentMethod::forest:
      if (!o.model) throw InputError("method forest needs a model (--model FILE, or --scribbles FILE to train one)");
      r.labels = o.model->classify(grey);
      break;
  }
  int mx = 0;
  for (auto v : r.labels.storage()) mx = std::max<int>(mx, v);
  r.classes = std::max(mx + 1, o.method == SegmentMethod::threshold   ? static_cast<int>(o.thresholds.size()) + 1
                               : o.method == SegmentMethod::automatic ? o.classes
                                                                      : 2);
  return r;
}

GaussianMixture pure_components(const PartialVolumeMixture& m) {
  GaussianMixture g;
  g.weights = m.weights;
  g.means = m.means;
  g.sigmas = m.sigmas;
  g.iterations = m.iterations;
  g.log_likelihood = m.log_likelihood;
  return g;
}

std::vector<unsigned char> histogram_png(const Histogram& h, const std::vector<double>& thresholds,
                                         const GaussianMixture* mixture, const std::string& title) {
  const int W = 800, H = 420, left = 60, right = 20, top = 40, bottom = 50;
  const int pw = W - left - right, ph = H - top - bottom;
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  const double peak = std::max(1.0, *std::max_element(h.counts.begin(), h.counts.end()));
  auto px = [&](double v) { return left + static_cast<int>(std::lround((v - h.lo) / (h.hi - h.lo) * pw)); };
  auto py = [&](double c) { return top + ph - static_cast<int>(std::lround(std::min(c / peak, 1.05) * ph)); };
  for (std::size_t b = 0; b < h.counts.size(); ++b) {
    const int x0 = px(h.lo + b * h.bin_width()), x1 = std::max(x0 + 1, px(h.lo + (b + 1) * h.bin_width()));
    cv::rectangle(img, cv::Point(x0, py(h.counts[b])), cv::Point(x1 - 1, top + ph), cv::Scalar(170, 170, 170),
                  cv::FILLED);
  }
  if (mixture) {
    const cv::Scalar colours[] = {{200, 60, 0}, {0, 150, 0}, {0, 100, 230}, {160, 0, 160}, {0, 180, 180}};
    const double scale = h.total() * h.bin_width();
    std::vector<cv::Point> sum;
    for (std::size_t c = 0; c < mixture->means.size(); ++c) {
      std::vector<cv::Point> pts;
      for (int i = 0; i <= pw; ++i) {
        const double v = h.lo + (h.hi - h.lo) * i / pw;
        pts.emplace_back(left + i, py(scale * mixture->density(c, v)));
      }
      cv::polylines(img, pts, false, colours[c % 5], 2, cv::LINE_AA);
    }
    for (int i = 0; i <= pw; ++i) {
      const double v = h.lo + (h.hi - h.lo) * i / pw;
      double s = 0;
      for (std::size_t c = 0; c < mixture->means.size(); ++c) s += mixture->density(c, v);
      sum.emplace_back(left + i, py(scale * s));
    }
    cv::polylines(img, sum, false, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  for (double t : thresholds) {
    const int x = px(t);
    cv::line(img, cv::Point(x, top), cv::Point(x, top + ph), cv::Scalar(0, 0, 220), 2);
    std::ostringstream s;
    s.precision(4);
    s << t;
    cv::putText(img, s.str(), cv::Point(x + 3, top + 14), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(0, 0, 220), 1,
                cv::LINE_AA);
  }
  cv::rectangle(img, cv::Point(left, top), cv::Point(left + pw, top + ph), cv::Scalar(0, 0, 0), 1);
  auto label = [&](double v, int x) {
    std::ostringstream s;
    s.precision(5);
    s << v;
    cv::putText(img, s.str(), cv::Point(x - 15, top + ph + 18), cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  };
  for (int k = 0; k <= 4; ++k) label(h.lo + (h.hi - h.lo) * k / 4, left + pw * k / 4);
  cv::putText(img, "grey value", cv::Point(left + pw / 2 - 40, H - 10), cv::FONT_HERSHEY_SIMPLEX, 0.5,
              cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::putText(img, title, cv::Point(left, 25), cv::FONT_HERSHEY_SIMPLEX, 0.6, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  return encode_png(img.ptr(), img.cols, img.rows, img.step, PngPixels::bgr);
}

}  // namespace vp
