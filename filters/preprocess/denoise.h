// Edge-preserving denoising: median and curvature anisotropic diffusion (ITK); bilateral and
// non-local means (fast tiled kernels of filters/preprocess/edge_preserving.h).
#pragma once

#include <string>

#include "core/volume.h"

namespace vp {

enum class DenoiseMethod { none, median, bilateral, anisotropic, nlmeans };
DenoiseMethod parse_denoise_method(const std::string& name);  // InputError listing the choices
std::string to_string(DenoiseMethod m);

struct DenoiseOptions {
  DenoiseMethod method = DenoiseMethod::none;
  int median_radius_vox = 1;           // median: box radius in voxels
  double bilateral_domain_um = 1.0;    // bilateral: spatial σ in µm
  double bilateral_range = 0;          // bilateral: grey-value σ; 0 = the image's noise estimate × 2
  int diffusion_iterations = 5;        // anisotropic
  double diffusion_conductance = 1.0;  // anisotropic: edge threshold in units of grey gradient spread
  int nlmeans_patch_radius = 1;        // nlmeans: patch radius in voxels
  int nlmeans_iterations = 1;
  int nlmeans_search_radius = 5;  // offsets lie in the cube [−R, R]³ (voxels)
  int nlmeans_samples = 50;       // offsets (patches) compared per voxel, the nearest first
  double nlmeans_bandwidth = 0;   // patch-weight kernel σ in grey units; 0 = estimate_noise_sigma
};

// Robust noise σ: 1.4826 × the median absolute deviation of neighbour differences along x,
// divided by √2 (the difference of two independent noisy voxels has variance 2σ²). Edges are
// rare among all pairs, so the median ignores them.
double estimate_noise_sigma(const Volume<float>& grey);

Volume<float> denoise(const Volume<float>& grey, const DenoiseOptions& options);

}  // namespace vp
