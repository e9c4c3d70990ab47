// Volume-fraction profiles along each axis (above all the pressing axis), porosity and relative
// density, and the REV study that turns sub-volume scatter into an uncertainty.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/volume.h"
#include "metrics/distribution.h"

namespace vp {

// Void = phases of role pore or crack. porosity = void voxels / all voxels; relative density
// = 1 − porosity.
double porosity(const LabelVolume& labels);

struct FractionProfile {
  std::string phase;
  int label = 0;
  int axis = 2;
  std::vector<double> fraction;  // per slice along the axis: phase voxels / slice voxels
  std::vector<double> position_um;  // slice centre along the axis: origin + i·h (µm)
  double min = 0, max = 0, std = 0;  // over the slices (std: population)
};

// One profile per phase of the table and per axis, in the table's order then x, y, z.
std::vector<FractionProfile> fraction_profiles(const LabelVolume& labels);

// REV study. The image is cut into k×k×k tiles (k = 2, 3, 4: edges N/k along each axis) and
// each metric is computed on every tile. Metrics: volume_fraction per phase, porosity,
// specific_interface_area per touching pair (Crofton), contact_area_fraction when the table has
// active and electrolyte phases.
// Uncertainty of the whole-image value := std over the 8 tiles at k = 2 divided by √8 (the
// standard error of the mean of the half-size tiles).
struct RevPoint {
  int divisions = 1;          // k
  std::array<double, 3> edge_um{0, 0, 0};  // tile edges
  int tiles = 0;              // tiles where the metric is defined
  double mean = 0, std = 0;   // over the tiles (population std)
};
struct RevSeries {
  std::string metric, phase, unit;
  double value = 0;           // whole image
  double uncertainty = 0;     // std at k = 2 / √(tiles at k = 2)
  std::vector<RevPoint> points;  // k = 2, 3, 4 (where the tiles are at least 2 voxels wide)
};
std::vector<RevSeries> rev_study(const LabelVolume& labels);

}  // namespace vp
