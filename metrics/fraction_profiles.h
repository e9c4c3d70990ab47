// Volume-fraction profiles along each axis (above all the pressing axis).
#pragma once

#include <string>
#include <vector>

#include "core/volume.h"

namespace vp {

struct FractionProfile {
  std::string phase;
  int label = 0;
  int axis = 2;
  std::vector<double> fraction;      // per slice along the axis: phase voxels / slice voxels
  std::vector<double> position_um;   // slice centre along the axis: origin + i·h (µm)
  double min = 0, max = 0, std = 0;  // over the slices (std: population)
};

// One profile per phase of the table and per axis, in the table's order then x, y, z.
std::vector<FractionProfile> fraction_profiles(const LabelVolume& labels);

}  // namespace vp
