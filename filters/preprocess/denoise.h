// Edge-preserving denoising (ITK): median, bilateral, curvature anisotropic diffusion and
// non-local means (patch-based, with a random spatial sampler so that it runs in seconds).
#pragma once

#include <string>

#include "core/volume.h"

namespace vp {

enum class DenoiseMethod { none, median, bilateral, anisotropic, nlmeans };
DenoiseMethod parse_denoise_method(const std::string& name);  // InputError listing the choices
std::string to_string(DenoiseMethod m);

struct DenoiseOptions {
  DenoiseMethod method = DenoiseMethod::none;
  int median_radius_vox = 1;          // median: box radius in voxels
  double bilateral_domain_um = 1.0;   // bilateral: spatial σ in µm
  double bilateral_range = 0;         // bilateral: grey-value σ; 0 = the image's noise estimate × 2
  int diffusion_iterations = 5;       // anisotropic
  double diffusion_conductance = 1.0; // anisotropic: edge threshold in units of grey gradient spread
  int nlmeans_patch_radius = 2;       // nlmeans: patch radius in voxels
  int nlmeans_iterations = 3;
  int nlmeans_search_radius = 5;      // random sampler radius (voxels)
  int nlmeans_samples = 50;           // patches sampled per voxel
  double nlmeans_bandwidth = 0;       // patch-weight kernel σ in grey units; 0 = 4 × estimate_noise_sigma
};

// Robust noise σ: 1.4826 × the median absolute deviation of neighbour differences along x,
// divided by √2 (the difference of two independent noisy voxels has variance 2σ²). Edges are
// rare among all pairs, so the median ignores them.
double estimate_noise_sigma(const Volume<float>& grey);

Volume<float> denoise(const Volume<float>& grey, const DenoiseOptions& options);

}  // namespace vp
