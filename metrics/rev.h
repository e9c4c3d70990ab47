// The REV study: sub-volume scatter of the whole-image metrics turned into an uncertainty.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/volume.h"

namespace vp {

// REV study. The image is cut into k×k×k tiles (k = 2, 3, 4: edges N/k along each axis) and
// each metric is computed on every tile. Metrics: volume_fraction per phase, porosity,
// specific_interface_area per touching pair (Crofton), contact_area_fraction when the table has
// active and electrolyte phases.
// Uncertainty of the whole-image value := std over the 8 tiles at k = 2 divided by √8 (the
// standard error of the mean of the half-size tiles).
struct RevPoint {
  int divisions = 1;                       // k
  std::array<double, 3> edge_um{0, 0, 0};  // tile edges
  int tiles = 0;                           // tiles where the metric is defined
  double mean = 0, std = 0;                // over the tiles (population std)
};
struct RevSeries {
  std::string metric, phase, unit;
  double value = 0;              // whole image
  double uncertainty = 0;        // std at k = 2 / √(tiles at k = 2)
  std::vector<RevPoint> points;  // k = 2, 3, 4 (where the tiles are at least 2 voxels wide)
};
std::vector<RevSeries> rev_study(const LabelVolume& labels);

}  // namespace vp
