// Forward-model MAP relabelling: iterated conditional modes on a label image with the imaging
// model as likelihood (issue 11 items 2 and 6).
//
// Energy of labels L on a grey scan g:
//   E(L) = ‖g − B(μ[L])‖² / (2σ_n²) + Σ_{6-neighbour pairs p~q} β(L_p, L_q),
// B the Gaussian PSF (the clamped separable blur of gaussian_blur, filters/preprocess/psf.h), μ the
// end members, σ_n the scan's noise σ, β(a, a) = 0. Changing voxel v from a to b (Δμ = μ_b − μ_a)
// moves the data term by (−2 Δμ c(v) + Δμ² ‖B e_v‖²) / (2σ_n²), r = g − B(μ[L]), c = Bᵀ r. Within
// 4σ of a face the clamped B is not symmetric and ‖B e_v‖ not the interior ‖k‖, so both are taken
// exactly (per-axis column norms and the band of BᵀB). Only boundary voxels are candidates, and only
// for a label present in their 26-neighbourhood. A voxel's own evidence s = |Δμ| ‖k‖ / σ_n is weak
// under blur (0.3–2.1 at SNR 5–8, σ 1–1.5), so the prior decides most flips: β(a, b) is set from
// the physics so that noise alone moves a voxel of a flat a|b interface (a flip that adds 4 unlike
// pairs) with probability Φ(−z): s/2 + 4β/s = z, β = max(0, s (z − s/2) / 4).
// One sweep of plain ICM is `auto`'s last labelling step, with local end members under a sharp PSF
// and, under a wider PSF, global ones but the brightest class's where its neighbourhood is darker
// (PartialVolumeOptions::sharp_psf_sweep, low_snr_sweep), and the end-member refit
// runs it to convergence on a copy of the labels (refit_end_members); measured in docs/segmentation-studies.md,
// "Forward-model MAP relabelling" (both sections).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/volume.h"

namespace vp {

struct ForwardModelOptions {
  std::array<double, 3> psf_sigma_vox{1.0, 1.0, 1.0};  // Gaussian PSF σ per axis, voxels (≥ 0)
  double noise_sigma = 0;                              // the scan's noise σ (grey units, > 0)
  double flat_interface_z = 3.0;                       // noise moves a flat interface voxel with P = Φ(−z)
  bool single_beta = false;                            // one β for every pair: the largest pair's
  // β(brightest, c) the same for every other class c (the largest of them): the prior then prefers
  // no phase beside the brightest (AM), which is what the contact fraction counts.
  bool neutral_beside_brightest = false;
  // Gibbs sweeps before ICM, the temperature falling linearly from anneal_temperature (in units
  // of E) to 0: lets whole layers move that single greedy flips cannot (0: plain ICM).
  int anneal_sweeps = 0;
  double anneal_temperature = 1.0;
  // Before each sweep after the first, the end members refitted to the current labels by least
  // squares, g ≈ Σ_c μ_c B 1[L = c] (a class's histogram mean is pulled by the blends it sits in).
  bool refit_means = false;
  // > 0: each class's end member varies in space, μ_c + δ_c(x), δ_c the Gaussian-weighted (this σ,
  // voxels) mean of the residual g − B(μ[L]) over the input labels' interior voxels of class c
  // (all 6 face neighbours c), shrunk towards 0 where few are near; held on a grid 2× coarser per
  // axis (0.5 B/voxel a class) and read trilinearly. A smooth bias of the grey (AM grain texture,
  // cupping) enters c = Bᵀr at its full size but the noise only at σ_n ‖k‖ (‖k‖ 0.26 at σ 0.7):
  // with global end members a darker grain's surface voxels were read as SE or pore. The offsets
  // are taken once, from the input labels (+3 blur passes). 0: global end members.
  double local_means_sigma = 0;
  // The classes (bit c for class c) whose end members are local; the others keep the global one
  // (no offsets are summed or held for them).
  unsigned local_means_classes = ~0u;
  // Offsets clamped to ≤ 0: only a darker neighbourhood (a darker AM grain, the cup's centre) moves
  // an end member. The σ ≥ 0.85 sweep (low_snr_sweep) runs with the AM alone so
  // (docs/segmentation-studies.md, "The σ ≥ 0.85 sweep with local end members for AM only").
  bool local_means_darker_only = false;
  int max_sweeps = 20;        // raster (ICM) sweeps at most
  double stop_share = 0.002;  // stop once a sweep flips fewer than this share of boundary voxels
};

struct ForwardModelRelabelling {
  int sweeps = 0;
  std::int64_t flips = 0;                      // accepted flips over all sweeps
  double energy_before = 0, energy_after = 0;  // E of the input labels (given μ) and the output (last μ)
  std::vector<double> beta;                    // β(a, b) per pair, [a * classes + b]
  std::vector<double> means;                   // the end members of the last sweep
};

// Relabels `labels` (class c has end member means[c]) in place by ICM: r and c are computed once
// with two separable passes (again before a sweep only where refit_means changes μ); each sweep
// visits the voxels in raster order within z slabs at least 4R thick (R the kernel's z radius; the
// even slabs concurrently, then the odd ones) and takes the label change that lowers E most (if
// any), updating c locally with the kernel's autocorrelation BᵀB (its terms below 2⁻²⁴ of the
// centre skipped). energy_after is energy_before plus the accepted ΔE. The slabs do not depend on
// the thread count, so the same input gives the same labels. Throws InputError on a bad σ, a noise
// σ ≤ 0, fewer than 2 or more than 8 end members, or a label without one.
ForwardModelRelabelling forward_model_relabel(const Volume<float>& grey, Volume<std::uint8_t>& labels,
                                              const std::vector<double>& means, const ForwardModelOptions& options);

// Least-squares end members for fixed labels: the normal equations of g ≈ Σ_c μ_c B 1[L = c], B
// the PSF of σ `sigma` (voxels per axis). Returns `mu` unchanged when a class is empty, the system is
// singular or the result is not ascending.
std::vector<double> refit_means(const Volume<float>& grey, const Volume<std::uint8_t>& labels,
                                const std::vector<double>& mu, const std::array<double, 3>& sigma);

// E(L) as above, for tests and diagnostics.
double forward_model_energy(const Volume<float>& grey, const Volume<std::uint8_t>& labels,
                            const std::vector<double>& means, const ForwardModelOptions& options);

}  // namespace vp
