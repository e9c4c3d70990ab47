// Partial-volume-aware labelling and phase fractions from a grey scan and the end members of a
// fitted partial-volume mixture (filters/segment/mixture_model.h).
//
// Blur conserves attenuation and the noise is zero-mean, so Σ_voxels grey = Σ_k N_k μ_k: a
// voxel that mixes phases a and b, unmixed linearly without clipping,
//   f_a = (μ_b − g) / (μ_b − μ_a),  f_b = 1 − f_a,
// gives fractions whose sum over the volume is unbiased, provided each voxel is unmixed with
// the right pair. The pair comes from the phases present nearby, decided on a smoothed grey
// that leaves the voxel itself out (its own noise must not choose its pair, or the estimate
// is biased like clipping). Middle phases (grey between two others) count as present only
// where the smoothed grey is flat: every blurred pore|AM edge crosses SE grey, steeply.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/volume.h"
#include "filters/segment/mixture_model.h"

namespace vp {

struct PartialVolumeOptions {
  // Sets the neighbourhood and the edge slope; > 0 per axis (segment_grey estimates it from the
  // scan where it is 0, the default).
  std::array<double, 3> psf_sigma_vox{0.0, 0.0, 0.0};
  double smooth_sigma_vox = 1.0;  // Gaussian that decides which phases are near (never the fractions)
  double label_sigma_vox = 0.5;   // Gaussian on the grey the labels are read from (0: raw)
  bool thin_pores = true;         // label darkest-phase valleys thinner than the PSF (films)
  // The scan's noise σ (0: each class's fitted σ). The pure-voxel window reads min(fitted σ,
  // noise σ): a fitted σ widened by unresolved blend must not widen the window in which voxels
  // holding some of a thin neighbour are counted pure.
  double noise_sigma = 0;
  // Reference end members (fit_with_reference_end_members): when given (one 1σ uncertainty per
  // class), the fit's means are the end members as they are — not replaced by this scan's
  // pure-voxel means — and this is their uncertainty in the interval.
  std::vector<double> end_member_uncertainty;
  // Where every axis's PSF σ is below 0.85 voxel: one sweep of forward-model MAP relabelling
  // (forward_model.h: ICM, pair β, the scan's PSF, noise σ and end members), each class's end
  // member taken locally (σ 2 voxels, local_means_sigma), β(AM, SE) = β(AM, pore)
  // (neutral_beside_brightest). Under a sharp PSF the rules' labels lose
  // 0.02–0.04 Dice to the blur ceiling at SNR 8, all of it noise on boundary voxels
  // (docs/segmentation-studies.md, "Labels under a sharp PSF: one forward-model sweep", and "The
  // sharp-PSF sweep under textured AM" for the local end members); wider PSFs take low_snr_sweep below.
  bool sharp_psf_sweep = true;
  // Where sharp_psf_sweep does not run (a PSF σ ≥ 0.85 voxel on some axis):
  // one sweep of that relabelling, its prior neutral beside the brightest class, at every SNR; the
  // brightest class's end member local where its neighbourhood is darker (textured AM), the others
  // global. Named for the SNR 5 scans where it was first measured (worst gap to the
  // blur ceiling 0.081 → 0.015 held out); at SNR 6–12 it gains as much (fresh seeds 227–228: pore
  // Dice +0.02 … +0.08, SE −0.005 … +0.04, contact nearer the truth in 37 of 38 scans). ≈ 1.4 CPU-s
  // at 256³ (bench_segment, load ≈ 1.5: auto 10.3 → 7.0 Mvoxel/s; docs/segmentation-studies.md,
  // "Labels at SNR 5: one forward-model sweep" and "The σ ≥ 0.85 sweep at every SNR"). false keeps
  // the rules' labels.
  bool low_snr_sweep = true;
  // The end member of the one class other than the darkest with too few pure voxels (the SE
  // under a wide PSF at low pressure) refitted with the labels by forward-model MAP
  // (forward_model.h: ICM with the least-squares refit g ≈ Σ μ_c B 1[L = c] before each sweep, on
  // a copy of the labels), and the fractions of that class and the darkest re-split by the
  // conserved grey mean (split_by_grey_mean); the other classes keep theirs. Only where the
  // refit moves it brighter. Not with reference end members. On by default
  // (docs/segmentation-studies.md, "End members refitted by forward-model MAP" and "The end-member refit on
  // a central block"); false restores the fit's end member.
  bool refit_end_members = true;
  // The refit reads the central block of at most this many voxels per axis (end_members.h
  // central_block): bounds its CPU and bytes on a large scan.
  index_t refit_max_side = 128;
};

// Fractions from per-pair sums (exposed for the uncertainty and for tests): pure voxel counts
// per class, and per pair (a, b) the voxel count and grey sum of the voxels unmixed with it.
struct UnmixingSums {
  int classes = 0;
  std::int64_t voxels = 0;
  std::vector<std::int64_t> pure;             // per class
  std::vector<double> pure_grey, pure_grey2;  // Σ g, Σ g² of the pure voxels, per class
  std::vector<std::int64_t> pair_count;       // [a * classes + b], a < b
  std::vector<double> pair_grey;              // Σ g
  std::vector<double> pair_weight;            // Σ (1 − Σ_m s_m): the share split between a and b
  std::vector<double> pair_share;             // [(a * classes + b) * classes + m]: Σ s_m fixed shares
};
struct PartialVolumeResult {
  Volume<std::uint8_t> labels;            // class 0..K-1, ascending mean grey
  std::vector<double> thresholds;         // midpoints of the label end members (no pair restriction)
  std::vector<double> means;              // end members used for unmixing
  std::vector<double> mean_uncertainty;   // their 1σ uncertainty
  std::vector<double> fraction_labels;    // fraction of voxels per label
  std::vector<double> fraction_pv;        // partial-volume fraction per class
  std::vector<double> fraction_pv_ci95;   // 95 % half-width (end members, noise and pairing)
  std::vector<double> pairing_ambiguity;  // per class: how far the pairing of three-phase voxels could move it
  double pairing_share = 0;               // the share of pairing_ambiguity taken as one standard deviation
  std::vector<std::int64_t> pure_voxels;  // voxels taken as pure, per class
  std::vector<double> end_member_shift;   // refitted end member − the histogram fit's, per class (0: not refitted)
  std::int64_t mixed_voxels = 0;          // voxels unmixed with a pair
  std::int64_t thin_pore_voxels = 0;      // darkest-class labels from valleys (thin_pores)
  std::int64_t rim_voxels_avoided = 0;    // middle-class grey voxels labelled with a nearby pair
  std::int64_t map_flips = 0;  // labels changed by the forward-model MAP sweep (sharp_psf_sweep, low_snr_sweep)
  double scan_snr = 0;         // widest end-member step over its classes' noise (scan_snr below)
  UnmixingSums unmixing;       // the sums fraction_pv was unmixed from (unmixed_fractions)
};

// Labels and fractions in one pass over the volume (plus a smoothing and a dilation).
// Throws InputError for fewer than 2 or more than 8 classes.
PartialVolumeResult partial_volume_segmentation(const Volume<float>& grey, const PartialVolumeMixture& fit,
                                                const PartialVolumeOptions& options = {});

// A fit the histogram model does not describe (AutoSegmentFit::fit_status "poor") widens each
// class's fraction_pv_ci95 by the model's own error: the disagreement of its partial-volume and
// label fractions, plus fit_ks once per class boundary (the fraction of a class is the model CDF's
// mass between its cuts, each off by up to fit_ks). Nothing changes where the fit is good.
void widen_for_misfit(PartialVolumeResult& pv, double fit_ks);

std::vector<double> unmixed_fractions(const UnmixingSums& sums, const std::vector<double>& means);

// Each class's noise σ as the scan shows it: the standard deviation of its pure voxels (chosen by
// their neighbours' grey, so their own noise is whole), `fallback[c]` where it has under 200.
std::vector<double> class_noise_sigmas(const UnmixingSums& sums, const std::vector<double>& fallback);

// The scan's SNR as the phantoms and issue 11 define it (a step between two phases' grey over the
// noise σ of the grey between them), from its best-resolved step: the widest between adjacent end
// members (the others only shrink where an end member is pulled by its blends, the pore's at high
// pressure under a wide PSF), over the root mean square of the two classes' noise σ
// (`class_noise`). Under photon-counting noise the variance grows linearly with the grey, so this
// is the noise at the step's midpoint, where its boundary voxels are decided; under Gaussian noise
// it is the one σ. NaN with fewer than two classes. Reported with the fit (`segment --json`
// fit.scan_snr): how well the scan separates its phases.
double scan_snr(const std::vector<double>& means, const std::vector<double>& class_noise);

}  // namespace vp
