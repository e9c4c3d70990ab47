// The preprocessing chain in its fixed order, shared by the `segment` command and the
// `preprocess` stage: crop -> bin -> rings -> cupping -> deconvolve -> denoise -> normalise.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/volume.h"
#include "filters/preprocess/artifacts.h"
#include "filters/preprocess/denoise.h"
#include "filters/preprocess/psf.h"

namespace vp {

// Deconvolution with a Gaussian PSF: given σ, or estimated from the scan (estimate_psf on the
// pure_phase_levels of `classes` pure phases). Richardson–Lucy for `iterations` steps, then
// a Gaussian of σ = `smooth_vox` (the resolution the result is brought to; it damps the noise
// that RL amplifies). Runs before denoising: a denoised scan no longer has the scan's PSF.
enum class DeconvolveMethod { none, richardson_lucy };
DeconvolveMethod parse_deconvolve_method(const std::string& name);  // InputError listing the choices
std::string to_string(DeconvolveMethod m);

struct DeconvolveOptions {
  DeconvolveMethod method = DeconvolveMethod::none;
  int iterations = 10;
  std::array<double, 3> psf_sigma_vox{0, 0, 0};  // all 0: estimate from the scan
  int classes = 3;                               // pure phases for the estimate
  double smooth_vox = 0.5;
};

struct PreprocessOptions {
  std::optional<Box> crop;  // voxel box, applied first
  int bin = 1;              // 1, 2 or 4 (mean)
  bool rings = false;
  int ring_window = 9;  // shells
  bool cupping = false;
  int cupping_degree = 2;
  RadialGeometry centre;  // rotation centre for rings and cupping
  DeconvolveOptions deconvolve;
  DenoiseOptions denoise;
  bool normalise = false;
  double percentile_low = 0.005, percentile_high = 0.995;  // fractions
  bool clamp = false;
};

struct PreprocessReport {
  std::vector<std::string> steps;  // what was applied, in order
  std::vector<double> cupping_coefficients;
  double normalise_low = 0, normalise_high = 0;
  std::optional<PsfEstimate> psf;                       // the PSF estimated for deconvolution (absent when given)
  std::array<double, 3> deconvolve_sigma_vox{0, 0, 0};  // the PSF σ deconvolved with
};

// Deconvolution alone (the step preprocess_grey runs); fills report->psf when it estimates.
// ComputeError when the PSF cannot be estimated on some axis (its status says why).
Volume<float> deconvolve(const Volume<float>& grey, const DeconvolveOptions& options,
                         PreprocessReport* report = nullptr);

// {"psf_sigma_vox": [..], and when estimated "psf_ci95_vox", "psf_edges", "psf_status"} (NaN → null).
nlohmann::json deconvolve_json(const PreprocessReport& report);

Volume<float> preprocess_grey(const Volume<float>& grey, const PreprocessOptions& options,
                              PreprocessReport* report = nullptr);

}  // namespace vp
