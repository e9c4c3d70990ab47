#pragma once
// Sandwiched rims: a middle-class run of one or two voxels along an axis between a darker and a
// brighter class, left by `auto`'s labelling where the PSF blends a darker|brighter edge to middle
// grey (a pore|AM edge at SE grey, or a pore film against AM). partial_volume_segmentation calls
// relabel_sandwiched_rims after its labelling pass (docs/segmentation.md, "Method auto").

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

// A middle-class run of one or two voxels along an axis with a darker class on one side and a
// brighter one on the other is the blend of a darker|brighter edge (a pore|AM edge at SE grey,
// or a pore film against AM): each such voxel takes the nearer of the two outer end members.
// Reads a copy of the labels, so the result does not depend on the visiting order. The grey it
// compares with the end members is `grey` smoothed by `sigma_um`, computed one z-slab at a time;
// or, with `decided`, the labelling pass already made every such comparison on that grey and
// left it in the labels' high bits (kRimBits: with at most kMaxDecidedClasses classes), which
// this pass clears. Returns how many voxels were relabelled.
std::int64_t relabel_sandwiched_rims(Volume<std::uint8_t>& labels, const Volume<float>& grey, double sigma_um,
                                     const std::vector<double>& centre, bool decided);

}  // namespace vp
