// A separable Gaussian along one axis of a float volume, edges clamped: the imaging model of
// the phantoms (phantoms/imaging.cpp) and the PSF filters (filters/preprocess/psf.cpp) both
// blur with it, so a phantom's blur and its estimate are the same operator.
#pragma once

#include "core/volume.h"

namespace vp {

// Convolves every line along `axis` (0 = x, 1 = y, 2 = z) in place with a normalised Gaussian of
// σ `sigma` voxels, cut at ceil(truncate · σ) voxels. σ ≤ 0: nothing. Lines are independent, so
// the result is the same for any thread count.
void gaussian_blur_axis(Volume<float>& v, int axis, double sigma, double truncate);

}  // namespace vp
