// Partial-volume mixture model of a grey-value histogram (Clausnitzer & Hopmans 1999 style):
// K pure phases, each a Gaussian (noise), plus one blended "interface" population per phase
// pair, whose noise-free grey is spread uniformly between the two phases' means (a blurred
// edge mixes the two end members in every proportion) and then carries the noise:
//   p(x) = Σ_k w_k N(x; μ_k, s_k) + Σ_{a<b} v_ab [Φ((x−μ_a)/s_ab) − Φ((x−μ_b)/s_ab)] / (μ_b − μ_a),
// s_ab = (s_a + s_b)/2. Fitted by expectation–maximisation on the histogram; the interface
// terms keep the blend voxels from widening or splitting the pure peaks, which is what makes
// plain Gaussian mixtures and Otsu fail once a phase is a few per cent of the voxels.
#pragma once

#include <string>
#include <vector>

#include "filters/segment/histogram.h"

namespace vp {

struct InterfacePopulation {
  int a = 0, b = 1;   // phase indices, a < b
  double weight = 0;  // fraction of voxels
};

struct PartialVolumeMixture {
  std::vector<double> weights, means, sigmas;  // pure phases, ascending means; σ = noise
  std::vector<InterfacePopulation> interfaces; // every pair a < b
  double bin_width = 0;  // histogram bin: each population is widened by bin_width²/12 (Sheppard)
  int iterations = 0;
  double log_likelihood = 0;  // per voxel (binned, density × bin width)
  double bic = 0;             // −2 LL_total + parameters · ln N
  double ks = 0;              // fit quality: max |histogram CDF − model CDF| (0 = perfect)

  int classes() const { return static_cast<int>(means.size()); }
  double pure_density(int k, double x) const;          // weighted
  double interface_density(std::size_t i, double x) const;  // weighted
  double density(double x) const;                      // whole model
  // Midpoints between consecutive means: the grey where a two-phase blend is half and half.
  std::vector<double> thresholds() const;
  // (μ_{k+1} − μ_k) / max(σ_k, σ_{k+1}) for each consecutive pair.
  std::vector<double> separations() const;
};

// EM fit with `classes` pure phases (1..8) from several starts (multi-Otsu classes, k-means,
// and starts with a small component at either tail, for a phase of well under 1 % of the
// voxels); the start with the highest likelihood wins.
PartialVolumeMixture fit_partial_volume_mixture(const Histogram& h, int classes, int max_iterations = 400);

// Evidence for the number of classes: the fit for K = 1..asked with its BIC.
struct ClassEvidence {
  int classes = 0;
  double bic = 0;
  double min_separation = 0;  // smallest consecutive separation (σ units); +inf for K = 1
};

struct AutoSegmentFit {
  PartialVolumeMixture mixture;        // the fit with the asked number of classes
  std::vector<ClassEvidence> evidence; // K = 1..asked
  std::vector<std::string> warnings;   // classes that overlap (separation < 3 σ)
};

// Separation (σ units) below which two fitted classes are not distinguishable phases.
inline constexpr double kMinClassSeparation = 2.0;
// Separation below which a class boundary misclassifies > 7 % of the class: warn.
inline constexpr double kWarnClassSeparation = 3.0;

// Fits K = 1..classes. Throws InputError listing the BIC per K when the histogram supports
// fewer distinguishable classes than asked: the BIC is lowest at a smaller K, or two fitted
// classes are closer than kMinClassSeparation σ, or a class has under 0.05 % of the voxels.
AutoSegmentFit fit_auto_segmentation(const Histogram& h, int classes);

}  // namespace vp
