// End members of classes without pure voxels, by indirect inference (issue 11).
//
// Where a phase has (almost) no pure voxels — SE grains of 3-voxel radius under a PSF of σ 1.5,
// pore films at high pressure — its end member is the histogram fit's mean, pulled towards its
// neighbours by the blends the fit cannot tell from it (19 960 for a true 22 000). That pull is a
// property of the geometry (grain size against the PSF), which the labels carry. So the labels are
// imaged again with trial end members, the scan's PSF and noise σ, the same histogram fit is made
// on the simulated scan, and the trial end members are moved until the simulated fit's means
// equal the observed fit's: μ ← μ + (fit_observed − fit_simulated(μ)).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/volume.h"
#include "filters/segment/histogram.h"
#include "filters/segment/mixture_model.h"

namespace vp {

struct EndMemberInferenceOptions {
  std::array<double, 3> psf_sigma_vox{1.0, 1.0, 1.0};  // the scan's PSF
  double noise_sigma = 0;                              // the scan's noise σ (Gaussian)
  bool integral = false;                               // the scan's grey is integer: the simulated grey is rounded too
  int iterations = 3;                                  // fixed-point updates (each one simulated scan and one fit)
  std::uint64_t seed = 1;  // of the simulated noise: results never depend on the thread count
  index_t max_side = 160;  // a larger volume is simulated on its central block of this side
};

struct EndMemberInference {
  std::vector<double> means;     // end members: the inferred ones moved, the others as given
  std::vector<double> shift;     // means − the given start, per class
  std::vector<double> residual;  // observed fit − the last simulated fit's means, per class
};

// The central block of at most max_side voxels per axis of a volume of dims d (all of it where it is
// smaller): where the end-member fits read a large scan, one number from a few million voxels.
Box central_block(Dims d, index_t max_side);

// The labels (class 0..K−1) imaged with end members `mu`: grey = μ[label], blurred by the PSF
// (core/gaussian.h, as the phantoms), plus Gaussian noise of σ noise_sigma (core/random.h);
// rounded when `integral`. On the central block of at most max_side voxels per axis.
Volume<float> simulated_scan(const Volume<std::uint8_t>& labels, const std::vector<double>& mu,
                             const EndMemberInferenceOptions& options);

// The end members for which `infer[c]` is set, inferred from the observed fit (`observed`, made
// on a histogram of `binning`'s range and bin count) and the labels; the others stay at `start`.
// Each simulated scan is fitted by refit_partial_volume_mixture from `observed`.
EndMemberInference infer_end_members(const Volume<std::uint8_t>& labels, const PartialVolumeMixture& observed,
                                     const Histogram& binning, const std::vector<double>& start,
                                     const std::vector<bool>& infer, const EndMemberInferenceOptions& options);

// Fractions re-split by the conserved grey mean after the end member of class `moved` (> 0) was
// moved: the classes other than the darkest and `moved` keep `fractions`, and the darkest and
// `moved` share the rest so that Σ φ = 1 and Σ φ_c means[c] = grey_mean (blur conserves grey, so
// the scan's mean is known exactly; the classes with measured end members pin their own fractions).
// Returns `fractions` with those two replaced; ComputeError unless means[moved] > means[0].
std::vector<double> split_by_grey_mean(const std::vector<double>& fractions, const std::vector<double>& means,
                                       double grey_mean, int moved);

}  // namespace vp
