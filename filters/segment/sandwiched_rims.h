#pragma once
// Sandwiched rims: a middle-class run of one or two voxels along an axis between a darker and a
// brighter class, left by `auto`'s labelling where the PSF blends a darker|brighter edge to middle
// grey (a pore|AM edge at SE grey, or a pore film against AM). partial_volume_segmentation calls
// relabel_sandwiched_rims after its labelling pass (docs/segmentation.md, "Method auto").

#include <array>
#include <cstdint>
#include <vector>

#include "core/volume.h"

namespace vp {

constexpr index_t kMaxRimRun = 2;      // the longest sandwiched run relabelled
constexpr int kRimBits = 3;            // labels use bits 0–2 (≤ 8 classes); bits 3–7 hold rim decisions
constexpr int kMaxDecidedClasses = 5;  // middle class m of k has m (k − 1 − m) ≤ 5 outer pairs

// Bit of the outer pair (dark < m < bright) in a middle-class voxel's decisions.
inline int rim_pair_bit(int dark, int bright, int m, int k) { return dark * (k - 1 - m) + (bright - m - 1); }

// Whether the darker end member of each outer pair of middle class m is at least as near to g as
// the brighter one: the comparison relabel_sandwiched_rims makes, as bits (rim_pair_bit).
unsigned rim_decisions(double g, int m, const std::vector<double>& centre);

// What reading a run's profile needs: the raw grey, the end members, the PSF σ per axis (voxels),
// the noise σ, and the least ΔRSS/σ_n² by which one shape must beat the other to decide.
struct RunProfileModel {
  const Volume<float>* grey = nullptr;
  std::vector<double> means;
  std::array<double, 3> psf_sigma_vox{};
  double noise_sigma = 0;
  double margin = 0;
};

// How many sandwiched voxels were relabelled, and how many kept as read as a middle layer.
struct RimCounts {
  std::int64_t relabelled = 0, kept = 0;
};

// A middle-class run of one or two voxels along an axis with a darker class on one side and a
// brighter one on the other is the blend of a darker|brighter edge (a pore|AM edge at SE grey,
// or a pore film against AM): each such voxel takes the nearer of the two outer end members.
// Reads a copy of the labels, so the result does not depend on the visiting order. The grey it
// compares with the end members is `grey` smoothed by `sigma_um`, computed one z-slab at a time;
// or, with `decided`, the labelling pass already made every such comparison on that grey and
// left it in the labels' high bits (kRimBits: with at most kMaxDecidedClasses classes), which
// this pass clears.
// With `profile` (rim_profile), each run's grey profile is also read against a blurred step, a
// middle layer and a dark film: a voxel is kept where some axis reads a layer and none an edge.
RimCounts relabel_sandwiched_rims(Volume<std::uint8_t>& labels, const Volume<float>& grey, double sigma_um,
                                  const std::vector<double>& centre, bool decided, const RunProfileModel* profile);

}  // namespace vp
