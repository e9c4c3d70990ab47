// A uniform grid of cells, each listing the bodies whose (expanded) bounding box overlaps it:
// point queries then visit only nearby bodies. Internal to phantoms/.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/volume.h"

namespace vp::phantom {

class CellGrid {
 public:
  CellGrid() = default;
  CellGrid(const Vec3& lo, const Vec3& hi, double cell) : lo_(lo), cell_(cell) {
    for (int a = 0; a < 3; ++a) n_[a] = std::max(1, static_cast<int>(std::ceil((hi[a] - lo[a]) / cell)));
    cells_.resize(static_cast<std::size_t>(n_[0]) * n_[1] * n_[2]);
  }

  void insert(int id, const Vec3& bb_lo, const Vec3& bb_hi) {
    int a0[3], a1[3];
    for (int a = 0; a < 3; ++a) {
      a0[a] = std::clamp(static_cast<int>(std::floor((bb_lo[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
      a1[a] = std::clamp(static_cast<int>(std::floor((bb_hi[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
    }
    for (int k = a0[2]; k <= a1[2]; ++k)
      for (int j = a0[1]; j <= a1[1]; ++j)
        for (int i = a0[0]; i <= a1[0]; ++i)
          cells_[(static_cast<std::size_t>(k) * n_[1] + j) * n_[0] + i].push_back(id);
  }

  // Bodies near p (points outside the grid see the nearest border cell).
  const std::vector<int>& at(const Vec3& p) const {
    int c[3];
    for (int a = 0; a < 3; ++a) c[a] = std::clamp(static_cast<int>(std::floor((p[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
    return cells_[(static_cast<std::size_t>(c[2]) * n_[1] + c[1]) * n_[0] + c[0]];
  }

 private:
  Vec3 lo_{0, 0, 0};
  double cell_ = 1;
  int n_[3] = {1, 1, 1};
  std::vector<std::vector<int>> cells_;
};

}  // namespace vp::phantom
