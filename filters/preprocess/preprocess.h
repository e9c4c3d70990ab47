// The preprocessing chain in its fixed order, shared by the `segment` command and the
// `preprocess` stage: crop -> bin -> rings -> cupping -> denoise -> normalise.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/volume.h"
#include "filters/preprocess/artifacts.h"
#include "filters/preprocess/denoise.h"

namespace vp {

struct PreprocessOptions {
  std::optional<Box> crop;          // voxel box, applied first
  int bin = 1;                      // 1, 2 or 4 (mean)
  bool rings = false;
  int ring_window = 9;              // shells
  bool cupping = false;
  int cupping_degree = 2;
  RadialGeometry centre;            // rotation centre for rings and cupping
  DenoiseOptions denoise;
  bool normalise = false;
  double percentile_low = 0.005, percentile_high = 0.995;  // fractions
  bool clamp = false;
};

struct PreprocessReport {
  std::vector<std::string> steps;   // what was applied, in order
  std::vector<double> cupping_coefficients;
  double normalise_low = 0, normalise_high = 0;
};

Volume<float> preprocess_grey(const Volume<float>& grey, const PreprocessOptions& options,
                              PreprocessReport* report = nullptr);

}  // namespace vp
