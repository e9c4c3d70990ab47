// Fast edge-preserving denoisers of the preprocess stage, oneTBB-parallel over fixed 3-D tiles:
// each output voxel is computed by the same operations whatever the thread count or schedule,
// so results are bit-identical run to run and across thread counts.
#pragma once

#include <array>
#include <vector>

#include "core/volume.h"

namespace vp {

// Bilateral filter: out(p) = Σ_q G_s(q−p) G_r(I(q)−I(p)) I(q) / Σ_q G_s(q−p) G_r(I(q)−I(p)),
// G_s a Gaussian of σ = domain_sigma_um (per axis σ / spacing voxels, truncated at 3σ, edges
// clamped), G_r a Gaussian of σ = range_sigma grey. Evaluated in the piecewise-linear form
// (Durand & Dorsey 2002): the range axis is sampled every `range_sigma` grey from the image
// minimum; at each level i_k the weights W = G_r(I − i_k) and W·I are blurred separably and the
// output interpolates (W·I)*G_s / W*G_s linearly between the two levels bracketing I(p).
// A tile only visits the levels its own voxels need, so the result does not depend on the tiling.
Volume<float> bilateral_filter(const Volume<float>& grey, double domain_sigma_um, double range_sigma);

// The exact bilateral sum above, voxel by voxel (O(N·(6σ)³)): the reference of the tests.
Volume<float> bilateral_filter_direct(const Volume<float>& grey, double domain_sigma_um, double range_sigma);

struct NonlocalMeansOptions {
  int patch_radius = 1;   // patches of (2r+1)³ voxels
  int search_radius = 5;  // offsets lie in the cube [−R, R]³
  int samples = 50;       // offsets compared per voxel (nonlocal_means_offsets)
  double bandwidth = 1;   // h (grey): weight exp(−D̄ / (2h²)), D̄ the mean squared patch difference
  int iterations = 1;     // each pass filters the previous pass's output
};

// The offsets non-local means compares: the `samples` (rounded up to even, at most (2R+1)³ − 1)
// nearest the voxel in the cube [−R, R]³ \ {0}, in ± pairs; where a distance shell is cut part-way
// a fixed hash of the offset picks which. The same set for every voxel: that is what makes the
// patch distance one box filter per offset.
std::vector<std::array<int, 3>> nonlocal_means_offsets(int search_radius, int samples);

// Non-local means (Buades et al. 2005) in the per-offset form of Darbon et al. 2008: for each
// offset d, D̄_d(p) = box mean over the patch of (I(q) − I(q+d))², weight w = exp(−D̄/(2h²));
// out(p) = (Σ_d w_d I(p+d) + w_max I(p)) / (Σ_d w_d + w_max), the centre weighted by the largest
// weight of its neighbours. Offsets whose centre p+d leaves the volume are skipped; patch voxels
// outside it are read clamped to the edge.
Volume<float> nonlocal_means(const Volume<float>& grey, const NonlocalMeansOptions& options);

}  // namespace vp
