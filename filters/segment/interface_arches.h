// Interface areas from value–gradient arches and the coarea formula, without labels (issue 11
// item 6: a contact-area fraction the PSF does not bias).
//
// The grey is smoothed by a Gaussian of s voxels and its gradient taken by central differences.
// Across a planar interface between phases i < j (grey step Δ = μ_j − μ_i, PSF σ, total blur
// σ_e = √(σ² + s²)) the voxels lie on an arch in the (value, |gradient|) plane: value =
// μ_i + Δ Φ(d/σ_e), |gradient| = Δ φ(d/σ_e)/σ_e at signed distance d (Kindlmann & Durkin 1998).
// The three pairs pore|SE, pore|AM and SE|AM give three distinct arches: at SE grey a blurred
// pore|AM edge has a large gradient, pure SE only the noise's. Every voxel's (value, |gradient|)
// is binned; six classes — pure pore, SE, AM (value ~ N(μ, σ_v), |gradient| ~ Maxwell(σ_g)) and
// the three arches (voxels uniform in d over |d| ≤ extent · σ_e, value and gradient noise about
// the arch) — have their weights fitted by EM on the bins, the shapes
// fixed by the end members, the noise σ (σ_v, σ_g follow from it and s exactly: white noise
// through the smoothing taps) and the PSF. By the coarea formula the gradient summed over one
// interface's voxels is Δ times its area, so A_ij = Σ_v r_ij(v) |∇u|_v / Δ_ij, r the posterior
// (by default with the slope the arch expects in place of |∇u|_v: model_gradient). The contact
// fraction is A_SE|AM / (A_SE|AM + A_pore|AM).
//
// What it cannot see: a pore film or an SE layer thinner than the blur is, in (value, gradient),
// close to the arch of the edge it sits on (docs/segmentation-studies.md, "The contact excess at
// σ ≥ 1, 10 MPa, traced"): films read as contact, thin SE layers between pore and AM as none, and
// a thin pore's gap sums to less than 2Δ of |∇u|. Measured, not wired into the pipeline:
// docs/segmentation-studies.md, "Value–gradient arches and the coarea formula". Isotropic voxels
// are assumed: areas are in voxel faces.
#pragma once

#include <array>
#include <cmath>

#include "core/volume.h"

namespace vp {

struct InterfaceArchOptions {
  // s, the Gaussian σ before the gradient. Smaller s keeps thin pores' arches (a blurred gap's
  // |∇u| sums to less than 2Δ) but lets more noise in: 0.4 chosen on tuning seeds 312–314 over
  // 0–1.5 (docs/segmentation-studies.md, "Value–gradient arches and the coarea formula").
  double smoothing_vox = 0.4;
  // An arch spans |d| ≤ extent · σ_e; farther voxels are pure (their gradient is noise).
  double arch_extent = 3.0;
  int max_iterations = 500;  // EM on the class weights
  index_t block_vox = 16;    // edge of the blocks the jackknife leaves out
  // Coarea with each voxel's |∇u| replaced by the slope the arch model expects given its bin:
  // the noise's share of |∇u| (E|∇u| − slope ≈ σ_g²/slope on an arch, 2σ_g √(2/π) on a pure voxel
  // the posterior gives to an arch) does not enter.
  bool model_gradient = true;
};

// Pairs in the order pore|SE, pore|AM, SE|AM (the phases ordered by grey).
struct InterfaceArchAreas {
  std::array<double, 3> area_vox2{NAN, NAN, NAN};        // coarea: Σ r |∇u| / Δ per pair
  std::array<double, 3> count_area_vox2{NAN, NAN, NAN};  // the arch's voxel count / (2 extent σ_e)
  std::array<double, 6> weights{};                       // pure pore, SE, AM; arches pore|SE, pore|AM, SE|AM
  double unexplained = 0;                                // share of voxels no class can have produced (left out)
  double contact_fraction = NAN;                         // from area_vox2
  double count_contact_fraction = NAN;                   // from count_area_vox2
  double contact_ci95 = NAN;                             // 95 % half-width, block jackknife of contact_fraction
  double value_sigma = NAN, gradient_sigma = NAN, blur_sigma = NAN;  // σ_v, σ_g, σ_e used
  int iterations = 0;
};

// means: the pure grey levels pore < SE < AM; noise_sigma: the scan's per-voxel noise σ (white);
// psf_sigma_vox: the PSF σ per axis (their mean is used). Throws InputError for levels not
// ascending or a non-positive noise σ.
InterfaceArchAreas interface_arch_areas(const Volume<float>& grey, const std::array<double, 3>& means,
                                        double noise_sigma, const std::array<double, 3>& psf_sigma_vox,
                                        const InterfaceArchOptions& options = {});

}  // namespace vp
