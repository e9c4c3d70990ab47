// Voxel features for the trainable classifier: multi-scale Gaussian smoothing, gradient
// magnitude, Hessian eigenvalues, Laplacian of Gaussian and local standard deviation (texture).
// Scales are in µm, so a model trained at one voxel size applies at another.
#pragma once

#include <string>
#include <vector>

#include "core/volume.h"

namespace vp {

struct FeatureSettings {
  std::vector<double> sigmas_um{1.0, 2.0, 4.0};
};

// Names in column order: "intensity", then per σ "gauss_s<σ>", "gradient_s<σ>",
// "hessian1_s<σ>", "hessian2_s<σ>", "hessian3_s<σ>" (ascending eigenvalues), "log_s<σ>", "stddev_s<σ>".
std::vector<std::string> feature_names(const FeatureSettings& settings);

// The normalised 1-D Gaussian taps gaussian_smooth() uses along an axis (radius ⌈3σ⌉).
std::vector<double> gaussian_kernel(double sigma_vox);

// Separable Gaussian smoothing with σ in µm (per-axis σ / spacing voxels; kernel radius 3σ,
// replicated border). σ = 0 leaves the volume unchanged.
Volume<float> gaussian_smooth(const Volume<float>& v, double sigma_um);
// gaussian_smooth(v, sigma_um) one z-slab at a time, bit for bit, each slab smoothed from its slices
// and the z-kernel's radius of context on each side in one buffer reused from slab to slab: a pass
// that reads the smoothed volume slab by slab holds one slab, allocated once. `v` must outlive it.
class GaussianSlabs {
 public:
  GaussianSlabs(const Volume<float>& v, double sigma_um);
  // Smooths slices [z0, z1) (the previous slab is gone). std::out_of_range on an empty or
  // out-of-volume slab.
  void smooth(index_t z0, index_t z1);
  // The smoothed value of v's voxel i (an index into the whole volume) in the current slab.
  float operator[](index_t i) const { return buffer_[static_cast<std::size_t>(i - first_)]; }

 private:
  const Volume<float>& v_;
  double sigma_um_;
  index_t radius_;     // z-kernel radius in slices (0: z is not smoothed)
  index_t first_ = 0;  // index in v of the buffer's first voxel
  std::vector<float> buffer_;
};

// Features of the voxels in z-slices [z0, z1), row-major (voxel, feature), voxels in raster order.
// Computed on the slab plus a halo of 4σ so that results equal those on the whole volume.
std::vector<float> voxel_features(const Volume<float>& grey, const FeatureSettings& settings, index_t z0, index_t z1);

// Slices of context voxel_features() reads beyond each side of a slab (3σ kernel + 1).
index_t feature_halo(const Volume<float>& grey, const FeatureSettings& settings);

// Eigenvalues of the symmetric matrix [[a, d, e], [d, b, f], [e, f, c]], ascending.
std::array<double, 3> symmetric_eigenvalues(double a, double b, double c, double d, double e, double f);

}  // namespace vp
