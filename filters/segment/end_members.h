// Simulated scans and the grey-mean split of the end-member refit (issue 11).
//
// Where a phase has (almost) no pure voxels — SE grains of 3-voxel radius under a PSF of σ 1.5,
// pore films at high pressure — its end member is the histogram fit's mean, pulled towards its
// neighbours by the blends the fit cannot tell from it (19 960 for a true 22 000). That pull is a
// property of the geometry (grain size against the PSF), which the labels carry:
// partial_volume_segmentation refits such an end member on the labels' central block
// (refit_end_members) and re-splits the fractions by the conserved grey mean; the benches image
// the labels again (simulated_scan) to take the pull apart.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/volume.h"

namespace vp {

struct SimulatedScanOptions {
  std::array<double, 3> psf_sigma_vox{1.0, 1.0, 1.0};  // the scan's PSF
  double noise_sigma = 0;                              // the scan's noise σ (Gaussian)
  bool integral = false;                               // the scan's grey is integer: the simulated grey is rounded too
  std::uint64_t seed = 1;  // of the simulated noise: results never depend on the thread count
  index_t max_side = 160;  // a larger volume is simulated on its central block of this side
};

// The central block of at most max_side voxels per axis of a volume of dims d (all of it where it is
// smaller): where the end-member fits read a large scan, one number from a few million voxels.
Box central_block(Dims d, index_t max_side);

// The labels (class 0..K−1) imaged with end members `mu`: grey = μ[label], blurred by the PSF
// (core/gaussian.h, as the phantoms), plus Gaussian noise of σ noise_sigma (core/random.h);
// rounded when `integral`. On the central block of at most max_side voxels per axis.
Volume<float> simulated_scan(const Volume<std::uint8_t>& labels, const std::vector<double>& mu,
                             const SimulatedScanOptions& options);

// Fractions re-split by the conserved grey mean after the end member of class `moved` (> 0) was
// moved: the classes other than the darkest and `moved` keep `fractions`, and the darkest and
// `moved` share the rest so that Σ φ = 1 and Σ φ_c means[c] = grey_mean (blur conserves grey, so
// the scan's mean is known exactly; the classes with measured end members pin their own fractions).
// Returns `fractions` with those two replaced; ComputeError unless means[moved] > means[0].
std::vector<double> split_by_grey_mean(const std::vector<double>& fractions, const std::vector<double>& means,
                                       double grey_mean, int moved);

}  // namespace vp
