// One entry point per job, shared by the `segment` command and the YAML stages:
// grey -> class labels by the chosen method, with the diagnostics the quality plot needs.
#pragma once

#include <cmath>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/volume.h"
#include "filters/preprocess/psf.h"
#include "filters/segment/film_profile.h"
#include "filters/segment/forest.h"
#include "filters/segment/histogram.h"
#include "filters/segment/mixture_model.h"
#include "filters/segment/partial_volume.h"

namespace vp {

// auto: partial-volume mixture fit, neighbourhood-aware labels and partial-volume fractions
// (filters/segment/mixture_model.h, partial_volume.h); the default when no method is named.
enum class SegmentMethod { automatic, otsu, multi_otsu, gmm, kmeans, threshold, hysteresis, forest };
SegmentMethod parse_segment_method(const std::string& name);  // InputError listing the choices
std::string to_string(SegmentMethod m);
// Classes fitted when none are asked for: 3 (pore, electrolyte, active material) for the methods
// that model a composite's histogram (multi-otsu, auto), 2 for the others.
inline int default_class_count(SegmentMethod m) {
  return m == SegmentMethod::multi_otsu || m == SegmentMethod::automatic ? 3 : 2;
}
inline const char* kSegmentMethodChoices = "auto|otsu|multi-otsu|gmm|kmeans|threshold|hysteresis|forest";

struct SegmentOptions {
  SegmentMethod method = SegmentMethod::automatic;
  int classes = 2;                      // auto, multi-otsu, gmm, kmeans (otsu: always 2)
  std::vector<double> thresholds;       // threshold: ascending cut values; hysteresis: {low, high}
  int bins = 256;                       // histogram bins for otsu / multi-otsu / gmm / kmeans
  int connectivity = 6;                 // hysteresis
  const ForestModel* model = nullptr;   // forest
  PartialVolumeOptions partial_volume;  // auto
  // auto: end members calibrated on another scan (the series' low-pressure scan), held fixed in
  // the fit, the labels, the fractions and the PSF estimate (fit_with_reference_end_members).
  std::optional<ReferenceEndMembers> end_members;
  // auto, three classes: pore films along AM|SE faces from a per-face profile fit
  // (filters/segment/film_profile.h); their SE voxels become pore.
  bool pore_films = false;
  FilmProfileOptions films;
};

struct SegmentResult {
  Volume<std::uint8_t> labels;  // class 0..k-1, ascending mean grey for intensity methods
  int classes = 0;
  Histogram histogram;
  std::vector<double> thresholds;  // cut values used (GMM: decision boundaries)
  std::optional<GaussianMixture> mixture;
  std::optional<KMeansFit> kmeans;
  std::optional<AutoSegmentFit> auto_fit;              // auto: the mixture and the evidence per K
  std::optional<PartialVolumeResult> partial_volume;   // auto: fractions (its labels moved out)
  std::optional<PsfEstimate> psf;                      // auto: the PSF estimated from the scan (absent when given)
  std::array<double, 3> psf_sigma_vox{NAN, NAN, NAN};  // auto: the PSF σ the partial-volume labelling used
  // auto: `psf` was estimated again between the end members the partial-volume step used (every
  // scan; false where those were not distinct); the labels were made with the first estimate, psf_sigma_vox.
  bool psf_from_refitted_end_members = false;
  std::optional<FilmProfileResult> pore_films;  // auto with pore_films: faces fitted, films found
};

// auto: the end members its PSF estimate was taken between, "refitted" or "histogram_fit"
// (`segment --json` psf_end_members, the stage's partial_volume.psf_estimate.end_members).
const char* psf_end_members(const SegmentResult& r);

// The pure-phase Gaussians of a partial-volume mixture, for histogram_png.
GaussianMixture pure_components(const PartialVolumeMixture& m);

SegmentResult segment_grey(const Volume<float>& grey, const SegmentOptions& options);

// PNG (bytes) of the grey histogram with the thresholds as red lines and, when given, the
// mixture components (coloured) and their sum (black) scaled to the counts.
std::vector<unsigned char> histogram_png(const Histogram& h, const std::vector<double>& thresholds,
                                         const GaussianMixture* mixture, const std::string& title);

}  // namespace vp
