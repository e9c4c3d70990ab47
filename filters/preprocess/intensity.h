// Grey-value preprocessing that needs no ITK: binning and percentile normalisation.
// (ROI crop is Volume::crop; see core/volume.h.)
#pragma once

#include "core/volume.h"

namespace vp {

// Mean of each factor³ block; spacing × factor; a trailing partial block along an axis is
// dropped. factor 1 returns a copy. Throws InputError when a dimension is below the factor.
Volume<float> bin_mean(const Volume<float>& grey, int factor);

// The value below which a fraction p (0..1) of the voxels lies (linear interpolation between
// order statistics, as numpy's default).
double percentile(const Volume<float>& grey, double p);

// Linear map that sends percentile p_low to 0 and p_high to 1 (values beyond are clamped when
// clamp is set). Throws InputError when the two percentiles coincide (a constant image).
struct NormaliseResult {
  Volume<float> grey;
  double low_value = 0, high_value = 1;  // the grey values of the two percentiles
};
NormaliseResult normalise_percentiles(const Volume<float>& grey, double p_low = 0.005, double p_high = 0.995,
                                      bool clamp = false);

}  // namespace vp
