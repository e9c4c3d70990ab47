// A uniform grid of cells, each listing the bodies whose (expanded) bounding box overlaps it:
// point queries then visit only nearby bodies. Internal to phantoms/.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <tbb/parallel_for.h>

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
    const std::array<int, 6> s = span(bb_lo, bb_hi);
    for (int k = s[4]; k <= s[5]; ++k) insert_layer(id, s, k);
  }

  // insert(i, lo[i], hi[i]) for i = 0 … n − 1, one z layer of cells per task: every cell lists
  // its bodies in the same order as those calls would.
  void insert_all(const std::vector<Vec3>& bb_lo, const std::vector<Vec3>& bb_hi) {
    std::vector<std::array<int, 6>> spans(bb_lo.size());
    for (std::size_t i = 0; i < bb_lo.size(); ++i) spans[i] = span(bb_lo[i], bb_hi[i]);
    tbb::parallel_for(0, n_[2], [&](int k) {
      for (std::size_t i = 0; i < spans.size(); ++i)
        if (spans[i][4] <= k && k <= spans[i][5]) insert_layer(static_cast<int>(i), spans[i], k);
    });
  }

  // Bodies near p (points outside the grid see the nearest border cell).
  const std::vector<int>& at(const Vec3& p) const {
    int c[3];
    for (int a = 0; a < 3; ++a) c[a] = std::clamp(static_cast<int>(std::floor((p[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
    return cells_[(static_cast<std::size_t>(c[2]) * n_[1] + c[1]) * n_[0] + c[0]];
  }

 private:
  // The cell index ranges [x0, x1, y0, y1, z0, z1] a bounding box covers.
  std::array<int, 6> span(const Vec3& bb_lo, const Vec3& bb_hi) const {
    std::array<int, 6> s;
    for (int a = 0; a < 3; ++a) {
      s[2 * a] = std::clamp(static_cast<int>(std::floor((bb_lo[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
      s[2 * a + 1] = std::clamp(static_cast<int>(std::floor((bb_hi[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
    }
    return s;
  }
  void insert_layer(int id, const std::array<int, 6>& s, int k) {
    for (int j = s[2]; j <= s[3]; ++j)
      for (int i = s[0]; i <= s[1]; ++i) cells_[(static_cast<std::size_t>(k) * n_[1] + j) * n_[0] + i].push_back(id);
  }

  Vec3 lo_{0, 0, 0};
  double cell_ = 1;
  int n_[3] = {1, 1, 1};
  std::vector<std::vector<int>> cells_;
};

}  // namespace vp::phantom
