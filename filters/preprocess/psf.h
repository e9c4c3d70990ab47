// Point-spread function of a grey scan, estimated from the scan itself, and deconvolution with it.
//
// Model: the scan is the pure-phase image (one grey level per phase) convolved with a Gaussian
// PSF of σ = (σx, σy, σz) voxels, plus noise. Across a flat interface between phases i and j
// with unit normal n, the profile along axis a is the edge-spread function
//   g(t) = m_i + (m_j − m_i) Φ((t − t0) / s),   s² = σ_a² + Σ_{b≠a} (n_b / n_a)² σ_b²,
// so each interface crossed by a grid line is one equation for σ. estimate_psf finds every
// crossing of a midpoint (m_i + m_{i+1})/2 of consecutive levels (a pore|AM edge often hides an
// SE film thinner than the PSF, which would read as blur) along every grid line of every axis (lines averaged with
// [1 2 1] ⊗ [1 2 1] / 16 across, which cuts the noise to 0.375× and adds a known ½ voxel² to the
// oblique term), keeps those whose window (±max(5, 3σ) voxels) reaches both plateaus (the three
// outermost samples each side within 0.12 of the step, or 3 noise σ, of their level) and whose Sobel normal lies within
// 16° of the line (|n_a| ≥ 0.96), and fits σ_a by least squares over all kept edges at once, each edge with its own
// sub-voxel position t0 and its own two plateau levels (profile likelihood over σ; free levels absorb a nearby
// interface's tilt of a plateau instead of widening the edge). The oblique-normal term uses the other axes' current σ
// (three sweeps) and is debiased for the noise of the Sobel normal. Edges whose residual exceeds a χ² bound (nearby
// interfaces in the window: thin films, contacts) are dropped after the first sweep. Measured on composite phantoms
// (docs/segmentation.md, "Grey-scan accuracy"): mostly within 5 % for isotropic blur 0.7–1.5 voxels at SNR 5–12 (worst
// on 96³: −8 % at σ 0.7 and 370 MPa, the voxel sampling below; +8 % at SNR 5, σ 1.5, 50 MPa under Poisson noise, whose
// mixture-fit SE level sits low); biased high (up to +11 %) on the sharpest axis of a strongly anisotropic PSF (0.7
// / 1.0 / 1.5). Uncertainty: delete-a-group jackknife over 10 interleaved groups of edges (t₉ · SE), combined in
// quadrature with a 5 % systematic term (the model bias measured on phantoms) and a voxel-sampling term 1/(24σ): a step
// of a voxel label image lies on a voxel boundary on every line, which reads as s² = σ² − 1/12 on faces along the grid
// (σ 0.7 at 370 MPa: 6–8 % low), and the edge model cannot tell that from a smooth interface. Deterministic for a given
// input, independent of the thread count.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/volume.h"

namespace vp {

struct PsfCrossings;  // psf.cpp: a full estimate's midpoint crossings (PsfOptions::keep_crossings)

struct PsfEstimate {
  std::array<double, 3> sigma_vox{};              // Gaussian PSF σ per axis (x, y, z), voxels; NaN: not measurable
  std::array<double, 3> ci95_vox{};               // 95 % half-width of sigma_vox (NaN with it)
  std::array<std::size_t, 3> edges{};             // interface profiles used per axis
  std::string status;                             // "ok", or what limited the estimate (per axis)
  double noise_sigma = 0;                         // grey-value noise σ the fit assumed
  std::shared_ptr<const PsfCrossings> crossings;  // with PsfOptions::keep_crossings, for a second estimate
};

struct PsfOptions {
  double min_normal_cosine = 0.96;        // |n_a| of an edge profile used for axis a
  double plateau_tolerance = 0.12;        // 3 end samples each side within this fraction of the step (or 3 noise σ)
  std::size_t max_edges_per_axis = 5000;  // evenly thinned beyond this (speed)
  std::size_t min_edges = 30;             // fewer on an axis: that σ is NaN and the status says so
  double noise_sigma = 0;                 // grey-value noise σ; 0 = estimate_noise_sigma(grey)
  // Keep in the estimate where its lines crossed the levels' midpoints near both plateaus (a wider
  // band and normal test than an edge's), for a second estimate of the same scan (start_crossings):
  // 12 bytes a crossing, 0.3 B/voxel on bench_segment_fidelity's 256³ scan.
  bool keep_crossings = false;
  // A second estimate of the same scan between nearby levels: σ of the first (all three finite and
  // > 0; else a full estimate). It starts there instead of searching: one round with the first's
  // window, the oblique term from the start, outliers dropped at it, and only the last sweep's fine
  // grid (±8 % in 2 % steps, moved while its minimum lies on an end) with its jackknife, about a
  // sixth of the fits. With the first's crossings (every level within 0.3 of the smallest step
  // between the first's levels), only the samples near those are smoothed and searched, not every
  // line of the scan (docs/segmentation-studies.md, "A cheap second PSF estimate").
  std::array<double, 3> start_sigma_vox{0, 0, 0};
  std::shared_ptr<const PsfCrossings> start_crossings;
};

// class_means: the pure-phase grey levels, ascending (at least two); edges between consecutive
// levels are used. Throws InputError for fewer than two levels or levels not distinct.
PsfEstimate estimate_psf(const Volume<float>& grey, const std::vector<double>& class_means);
PsfEstimate estimate_psf(const Volume<float>& grey, const std::vector<double>& class_means, const PsfOptions& options);

// Pure-phase grey levels for a scan whose phases are unknown: the means of the partial-volume
// mixture fit (filters/segment/mixture_model.h) with `classes` phases, on 256 bins. Ascending.
std::vector<double> pure_phase_levels(const Volume<float>& grey, int classes);

// Separable Gaussian blur with σ per axis in voxels (kernel to 4σ, edges clamped). σ = 0: identity.
Volume<float> gaussian_blur(const Volume<float>& grey, const std::array<double, 3>& sigma_vox);

// Richardson–Lucy deconvolution with a Gaussian PSF (the PSF is symmetric, so its adjoint is
// itself): u ← u · H(d / H u), starting from u = d, for `iterations` steps. Works on the grey
// values shifted to be positive (RL needs positive data) and shifted back. Separable real-space
// blurs, no FFT: 2 × 3 one-dimensional passes per iteration.
Volume<float> richardson_lucy(const Volume<float>& grey, const std::array<double, 3>& sigma_vox, int iterations);

}  // namespace vp
