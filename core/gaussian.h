// A separable Gaussian along one axis of a float volume, edges clamped: the imaging model of
// the phantoms (phantoms/imaging.cpp) and the PSF filters (filters/preprocess/psf.cpp) both
// blur with it, so a phantom's blur and its estimate are the same operator.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include <tbb/parallel_for.h>

#include "core/volume.h"

namespace vp {

// The taps of a Gaussian of σ `sigma` voxels sampled at the voxel centres, exp(−i²/2σ²) for
// i = −R..R with R = ceil(truncate · σ), normalised; σ ≤ 0: the single tap 1. On a voxel image
// (uniform cubes) they blur a face along the grid like a continuum Gaussian of √(σ² − 1/12) voxels
// (σ 0.7 reads 0.634): the phantoms' blur convention. Taps integrated over each voxel instead were
// measured for the phantoms and for the forward model, and not kept (docs/segmentation-studies.md,
// "The blur of a voxel image: sampled or voxel-integrated taps").
std::vector<double> gaussian_taps(double sigma, double truncate);

// Convolves every line along `axis` (0 = x, 1 = y, 2 = z) in place with gaussian_taps(σ, truncate),
// edges clamped. σ ≤ 0: nothing. Lines are independent, so the result is the same for any thread
// count.
void gaussian_blur_axis(Volume<float>& v, int axis, double sigma, double truncate);

// Calls f(width, base, w, n, stride) in parallel for every line of a volume of dims d along
// `axis`: the line (or group of lines) starts at voxel `base`, has n voxels `stride` apart, and
// `width` (a std::integral_constant, for the kernel's fixed-size arrays) neighbouring lines of
// consecutive x go together, w ≤ width of them inside the volume. Along x one line at a time;
// along y and z 16 lines, so that each read and write touches 16 floats of a row rather than one
// per cache line. Lines are independent: a kernel that sums each voxel's taps in a fixed order
// gives the same result for any grouping and thread count.
template <class F>
void for_each_line_group(const Dims& d, int axis, F&& f) {
  const index_t n = d[axis];
  if (axis == 0) {
    tbb::parallel_for(index_t{0}, d.y * d.z, [&](index_t line) {
      f(std::integral_constant<index_t, 1>{}, line * d.x, index_t{1}, n, index_t{1});
    });
    return;
  }
  constexpr index_t kWidth = 16;
  const index_t stride = axis == 1 ? d.x : d.x * d.y;
  const index_t groups_x = (d.x + kWidth - 1) / kWidth;
  tbb::parallel_for(index_t{0}, groups_x * (d.count() / (n * d.x)), [&](index_t g) {
    const index_t outer = g / groups_x, x0 = (g % groups_x) * kWidth;  // z (axis y) or y (axis z), x
    const index_t base = (axis == 1 ? outer * d.x * d.y : outer * d.x) + x0;
    f(std::integral_constant<index_t, kWidth>{}, base, std::min(kWidth, d.x - x0), n, stride);
  });
}

}  // namespace vp
