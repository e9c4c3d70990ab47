// Partial-volume mixture model of a grey-value histogram (Clausnitzer & Hopmans 1999 style):
// K pure phases, each a Gaussian (noise), plus one blended "interface" population per phase
// pair, whose noise-free grey is spread uniformly between the two phases' means (a blurred
// edge mixes the two end members in every proportion) and then carries the noise:
//   p(x) = Σ_k w_k N(x; μ_k, s_k) + Σ_{a<b} v_ab [Φ((x−μ_a)/s_ab) − Φ((x−μ_b)/s_ab)] / (μ_b − μ_a),
// s_ab = (s_a + s_b)/2. Fitted by expectation–maximisation on the histogram; the interface
// terms keep the blend voxels from widening or splitting the pure peaks, which is what makes
// plain Gaussian mixtures and Otsu fail once a phase is a few per cent of the voxels.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/volume.h"
#include "filters/segment/histogram.h"

namespace vp {

struct InterfacePopulation {
  int a = 0, b = 1;   // phase indices, a < b
  double weight = 0;  // fraction of voxels
};

struct PartialVolumeMixture {
  std::vector<double> weights, means, sigmas;   // pure phases, ascending means; σ = noise
  std::vector<InterfacePopulation> interfaces;  // every pair a < b
  double bin_width = 0;  // histogram bin: each population is widened by bin_width²/12 (Sheppard)
  int iterations = 0;
  double log_likelihood = 0;  // per voxel (binned, density × bin width)
  double bic = 0;             // −2 LL_total + parameters · ln N
  double ks = 0;              // fit quality: max |histogram CDF − model CDF| (0 = perfect)

  int classes() const { return static_cast<int>(means.size()); }
  double pure_density(int k, double x) const;               // weighted
  double interface_density(std::size_t i, double x) const;  // weighted
  double density(double x) const;                           // whole model
  // Midpoints between consecutive means: the grey where a two-phase blend is half and half.
  std::vector<double> thresholds() const;
  // (μ_{k+1} − μ_k) / max(σ_k, σ_{k+1}) for each consecutive pair.
  std::vector<double> separations() const;
};

// EM fit with `classes` pure phases (1..8) from several starts (multi-Otsu classes, k-means,
// and starts with a small component at either tail, for a phase of well under 1 % of the
// voxels); the start with the highest likelihood wins.
// max_sigma > 0 caps every pure-phase σ (the scan's noise bounds it: a wider "pure" Gaussian is
// one that has swallowed the blend voxels of a thin phase, see fit_auto_segmentation).
// min_sigma > 0 floors it (a Gaussian narrower than the noise allows sits on a histogram comb
// tooth or a spike, not on a phase).
PartialVolumeMixture fit_partial_volume_mixture(const Histogram& h, int classes, int max_iterations = 400,
                                                double max_sigma = 0, double min_sigma = 0);

// The same EM from each start, every local optimum (ascending means, BIC and fit quality set),
// in start order.
std::vector<PartialVolumeMixture> partial_volume_optima(const Histogram& h, int classes, int max_iterations = 400,
                                                        double max_sigma = 0, double min_sigma = 0);

// Evidence for the number of classes: the fit for K = 1..asked with its BIC.
struct ClassEvidence {
  int classes = 0;
  double bic = 0;
  double min_separation = 0;        // smallest consecutive separation (fitted σ units); +inf for K = 1
  double min_separation_noise = 0;  // the same in units of the resolving σ (below); +inf for K = 1
};

// The darkest end member of a phase with no pure voxels, placed by the shape of its blends (the
// profile likelihood of its mean): the maximum and the 95 % range.
// Blends of films thinner than the PSF never reach their end member: the maximum sits where the
// deepest films' grey ends (11 700–12 800 for a true 6 000 at 370 MPa under σ 1.5, where 99.9 % of
// the voxels touching pore hold at most 0.75 of it), and the profile's lower crossing is an
// artefact of blends assumed to reach it. The data bound the end member from above only: the
// range runs from the histogram's darkest grey to the profile's upper crossing, and its 1σ
// uncertainty spans it (docs/segmentation-studies.md, "The extrapolated pore end member is a bound").
struct ExtrapolatedEndMember {
  double mean = 0;
  double ci95_low = 0;     // the histogram's darkest occupied grey (the profile's start)
  double ci95_high = 0;    // the profile's 95 % upper crossing (2 ΔLL = 3.84)
  double uncertainty = 0;  // (ci95_high − ci95_low) / (2 · 1.96)
  // The profile itself: its grid of end members and the total log-likelihood at each.
  std::vector<double> profile_grey, profile_log_likelihood;
};

// Noise whose neighbouring voxels are correlated (a reconstruction's filter, texture below the
// voxel size: FiberForm's void has lag-1 correlation 0.82) hides from second differences, which
// see its white part alone (1.21 grey there against a void grey spread of ~3.4-4.2): the σ bounds
// of the pure phases then forbid the real peak width and the fit is garbage. Second differences
// at lag 2 tell it: their σ is that at lag 1 for white noise (blurred edges raise it to at most
// 1.76 on 66 phantoms, seeds 298-300, SNR 5-12, blur 0.7-1.5, default and realistic imaging,
// docs/segmentation-studies.md), and 2.9 × (2.6 in theory) for Gaussian-smoothed noise of lag-1
// correlation 0.8.
inline constexpr double kCorrelatedLagRatio = 2.0;
struct ScanNoise {
  double sigma = 0;       // the σ the fit uses: `white`, or `peak_sigma` when `correlated`
  double white = 0;       // scan_noise_sigma: second differences at lag 1
  double lag_ratio = 0;   // lagged_noise_sigma at lag 2 / white
  double peak_sigma = 0;  // dominant_peak_sigma of the histogram (clipping spikes removed)
  // lag_ratio ≥ kCorrelatedLagRatio and the dominant peak wider than kMaxSigmaPerNoise × white:
  // the peak's own σ then bounds the pure phases. White-noise scans keep `white`, unchanged.
  bool correlated = false;
};

struct AutoSegmentFit {
  PartialVolumeMixture mixture;         // the fit with the asked number of classes
  std::vector<ClassEvidence> evidence;  // K = 1..asked
  std::vector<std::string> warnings;    // classes that overlap (separation < 3 σ)
  double noise_sigma = 0;               // the scan's own noise σ (0: not given)
  // (μ_{k+1} − μ_k) / min(max(σ_k, σ_{k+1}), noise σ) per consecutive pair: how far apart the
  // two end members are for the noise that must tell them apart (the refusal rule reads it).
  std::vector<double> resolving_separations;
  // Set when the darkest class was placed from its blends alone (fit_auto_segmentation).
  std::optional<ExtrapolatedEndMember> dark_end_member;
  // With reference end members (fit_with_reference_end_members): where they came from ("fit"
  // when the scan's own fit gave them), their 1σ uncertainty, and the scan's own free fit beside
  // them: its means and which of its classes it resolves (the drift check reads those).
  std::string end_members_source = "fit";
  std::vector<double> reference_uncertainty;
  std::vector<double> scan_fit_means;
  std::vector<bool> scan_fit_resolved;
  ScanNoise scan_noise;  // how noise_sigma was measured (segment_grey sets it)
  // "good", or "poor" where mixture.ks > kMaxFitKs: the histogram model does not describe the scan,
  // a warning says so and the fractions' intervals carry the misfit (widen_for_misfit).
  std::string fit_status = "good";
  bool poor_fit() const { return fit_status != "good"; }
};

// fit_ks (max |histogram CDF − model CDF|) above which the fit is "poor". Phantoms (66 scans, seeds 298-300,
// default and realistic imaging, SNR 5-12, blur 0.7-1.5, 10-370 MPa) reach at most 0.020; FiberForm's
// real scan 0.15-0.53, a phantom under correlated noise fitted with white-noise σ bounds 0.11.
inline constexpr double kMaxFitKs = 0.05;

// Pure-phase σ cap in units of the scan's noise σ (estimate_noise_sigma, which edges inflate by
// ~10 %): room for Poisson noise on the brightest phase (σ ∝ √grey) and mild texture.
inline constexpr double kMaxSigmaPerNoise = 1.5;
// Pure-phase σ floor in units of the scan's noise σ: Poisson noise on the darkest phase is
// ~0.4 × the median noise; a narrower class sat on one tooth of the comb that Poisson-quantised
// grey makes in a 256-bin histogram (realistic phantom, SNR 5, 370 MPa: σ 25 for noise 4260,
// porosity 0.55 for 0.03).
inline constexpr double kMinSigmaPerNoise = 0.25;
// Separation (σ units) below which two fitted classes are not distinguishable phases.
inline constexpr double kMinClassSeparation = 2.0;

// (μ_{k+1} − μ_k) / σ_ref per consecutive pair, σ_ref = min(max(σ_k, σ_{k+1}), noise_sigma)
// (noise_sigma ≤ 0: the fitted σ alone). A pure-phase Gaussian wider than the scan's noise has
// absorbed unresolved blend voxels or texture — it does not make the two means harder to tell
// apart; a class narrower than the average noise (Poisson noise on a dark phase) is resolved at
// its own σ.
std::vector<double> resolving_separations(const PartialVolumeMixture& m, double noise_sigma);
// Separation below which a class boundary misclassifies > 7 % of the class: warn.
inline constexpr double kWarnClassSeparation = 3.0;

// The scan's noise σ from second differences along x: 1.4826 · MAD(g(x−1) − 2g(x) + g(x+1)) / √6,
// the MAD read as grouped data where the grey sits on a coarse lattice (integer scans with a noise
// of a few grey levels), so that it does not jump from one lattice step to the next.
// A blurred edge contributes far less to second than to first differences (at σ_psf 1.5 its
// peak second difference is ~0.24 Δ/σ² against √6 σ of noise), so thin blurred phases do not
// inflate it as they do the first-difference estimate of filters/preprocess/denoise.h.
double scan_noise_sigma(const Volume<float>& grey);
// The same on second differences g(x−lag) − 2g(x) + g(x+lag).
double lagged_noise_sigma(const Volume<float>& grey, index_t lag);

// The scan's noise σ for the fit (ScanNoise).
ScanNoise scan_noise(const Volume<float>& grey, const Histogram& h);

// A spike in an end bin (over kClipSpikeRatio × its neighbour) is grey clipped at the range of
// the detector or the integer type, not a phase: a Gaussian fitted to it is a zero-width class
// that wins every separation test. It is left out of the fit (its voxels are still unmixed).
inline constexpr double kClipSpikeRatio = 3.0;
Histogram without_clipping_spikes(Histogram h);

// Fits K = 1..classes (on without_clipping_spikes(h)); for the asked K, when the likeliest optimum's classes are not
// all kMinClassSeparation resolving σ apart, the likeliest optimum that is the (K−1)-class fit plus a resolvable class
// at the dark or bright end (a thin phase mostly in blends), if a start reaches one. Throws InputError listing the BIC
// per K when the histogram supports fewer distinguishable classes than asked: the BIC is lowest at a smaller K, or two
// fitted classes are closer than kMinClassSeparation resolving σ (resolving_separations with `noise_sigma`, the scan's
// own noise σ, e.g. estimate_noise_sigma; ≤ 0: the fitted σ), or a class has under 0.05 % of the voxels (pure weight +
// half of its blends). Before refusing (noise σ > 0), it tries the (K−1)-class fit plus a darkest class with no pure
// voxels whose mean is the maximum of its profile likelihood (pore films thinner than the PSF: only their blends show);
// kept, with dark_end_member set and a warning, when it passes the rules above.
// max_sigma_per_noise caps every pure σ at that multiple of noise_sigma (0: no cap, for correlated noise
// whose σ was read from one peak: ScanNoise). Sets fit_status (kMaxFitKs).
AutoSegmentFit fit_auto_segmentation(const Histogram& h, int classes, double noise_sigma = 0,
                                     double max_sigma_per_noise = kMaxSigmaPerNoise);

// The 1σ uncertainty of an end member known only from the histogram fit: the standard error of
// a class of weight w among n voxels, σ/√(wn), and a quarter σ for the blend populations it is
// entangled with.
double fitted_end_member_uncertainty(double sigma, double weight, double voxels);

// End members calibrated elsewhere (typically the low-pressure scan of the same series, whose pore
// peak is clear) and carried to this scan: K ascending grey values, their 1σ uncertainty (0 where
// the user gave bare values) and where they came from (the spec as given).
struct ReferenceEndMembers {
  std::vector<double> means;
  std::vector<double> uncertainty;
  std::string source;
};

// Drift (grey-scale change between scans) beyond this many combined standard deviations of the
// reference and the scan's own fit is warned about.
inline constexpr double kEndMemberDriftSigmas = 3.0;

// The mixture on this scan's histogram with the reference means held fixed: EM fits the pure
// weights and σ (capped and floored by the scan's `noise_sigma` as in fit_auto_segmentation) and
// the blend weights. Never refused — whoever gave the end members vouched for the classes — but
// the scan's own free fit is made beside it (its evidence per K is reported) and a warning is
// added for each class that free fit resolves (kMinClassSeparation resolving σ from its
// neighbours) whose mean lies more than kEndMemberDriftSigmas combined uncertainties (the
// reference's and fitted_end_member_uncertainty of the free fit's) from the reference.
// Throws InputError when the count of means is not `classes` or they are not ascending.
AutoSegmentFit fit_with_reference_end_members(const Histogram& h, int classes, const ReferenceEndMembers& reference,
                                              double noise_sigma = 0, double max_sigma_per_noise = kMaxSigmaPerNoise);

}  // namespace vp
