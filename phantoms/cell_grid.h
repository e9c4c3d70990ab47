// Uniform grids of cells, each listing the bodies whose (expanded) bounding box overlaps it:
// point queries then visit only nearby bodies. Internal to phantoms/.
//   CellGrid        grows body by body (placement asks it between insertions);
//   PackedCellGrid  built once from every body's box, the lists packed end to end (one offset per
//                   cell): at 256³ the SE grid's half a million cells took 81 MB as a vector per
//                   cell, mostly headers, allocator slack and growth. A list keeps the gaps between
//                   its increasing ids in 16 bits (the SE grid's ids: 40 → 20 MiB at 256³).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <tbb/parallel_for.h>

#include "core/volume.h"

namespace vp::phantom {

// The cell layout both grids share: which cell a point falls in, which cells a box covers.
class CellLayout {
 public:
  CellLayout() = default;
  CellLayout(const Vec3& lo, const Vec3& hi, double cell) : lo_(lo), cell_(cell) {
    for (int a = 0; a < 3; ++a) n_[a] = std::max(1, static_cast<int>(std::ceil((hi[a] - lo[a]) / cell)));
  }

  std::size_t cell_count() const { return static_cast<std::size_t>(n_[0]) * n_[1] * n_[2]; }
  int layers() const { return n_[2]; }

  // The cell of p (points outside the grid see the nearest border cell).
  std::size_t cell_of(const Vec3& p) const {
    int c[3];
    for (int a = 0; a < 3; ++a) c[a] = std::clamp(static_cast<int>(std::floor((p[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
    return index(c[0], c[1], c[2]);
  }
  std::size_t index(int i, int j, int k) const { return (static_cast<std::size_t>(k) * n_[1] + j) * n_[0] + i; }

  // The cell index ranges [x0, x1, y0, y1, z0, z1] a bounding box covers.
  std::array<int, 6> span(const Vec3& bb_lo, const Vec3& bb_hi) const {
    std::array<int, 6> s;
    for (int a = 0; a < 3; ++a) {
      s[2 * a] = std::clamp(static_cast<int>(std::floor((bb_lo[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
      s[2 * a + 1] = std::clamp(static_cast<int>(std::floor((bb_hi[a] - lo_[a]) / cell_)), 0, n_[a] - 1);
    }
    return s;
  }

 private:
  Vec3 lo_{0, 0, 0};
  double cell_ = 1;
  int n_[3] = {1, 1, 1};
};

class CellGrid {
 public:
  CellGrid() = default;
  CellGrid(const Vec3& lo, const Vec3& hi, double cell) : layout_(lo, hi, cell), cells_(layout_.cell_count()) {}

  void insert(int id, const Vec3& bb_lo, const Vec3& bb_hi) {
    const std::array<int, 6> s = layout_.span(bb_lo, bb_hi);
    for (int k = s[4]; k <= s[5]; ++k)
      for (int j = s[2]; j <= s[3]; ++j)
        for (int i = s[0]; i <= s[1]; ++i) cells_[layout_.index(i, j, k)].push_back(id);
  }

  // Bodies near p, in the order they were inserted.
  std::span<const int> at(const Vec3& p) const { return cells_[layout_.cell_of(p)]; }

 private:
  CellLayout layout_;
  std::vector<std::vector<int>> cells_;
};

// The bodies one cell of a PackedCellGrid lists, in increasing id. Each entry is one 16-bit word,
// the gap to the previous id (the first: id + 1, so never 0); a gap that does not fit is a 0
// followed by the id's high and low 16 bits.
class CellBodies {
 public:
  class iterator {
   public:
    iterator(const std::uint16_t* at, int previous) : at_(at), previous_(previous) {}
    int operator*() const { return *at_ ? previous_ + *at_ : (static_cast<int>(at_[1]) << 16) | at_[2]; }
    iterator& operator++() {
      previous_ = **this;
      at_ += *at_ ? 1 : 3;
      return *this;
    }
    bool operator!=(const iterator& other) const { return at_ != other.at_; }

   private:
    const std::uint16_t* at_;
    int previous_;
  };
  CellBodies(const std::uint16_t* first, const std::uint16_t* last) : first_(first), last_(last) {}
  iterator begin() const { return {first_, -1}; }
  iterator end() const { return {last_, -1}; }

  // The words that code `id` after `previous` (−1 at a list's start) ...
  static std::size_t words(int previous, int id) { return id - previous <= kLargestGap ? 1 : 3; }
  // ... written at `at`; returns the word after them.
  static std::uint16_t* put(std::uint16_t* at, int previous, int id) {
    if (id - previous <= kLargestGap) {
      *at = static_cast<std::uint16_t>(id - previous);
      return at + 1;
    }
    at[0] = 0;
    at[1] = static_cast<std::uint16_t>(id >> 16);
    at[2] = static_cast<std::uint16_t>(id & 0xffff);
    return at + 3;
  }

 private:
  static constexpr int kLargestGap = 0xffff;
  const std::uint16_t* first_;
  const std::uint16_t* last_;
};

class PackedCellGrid {
 public:
  PackedCellGrid() = default;
  // Body i's box is [bb_lo[i], bb_hi[i]]; every cell lists its bodies in increasing i, as
  // CellGrid::insert(i, …) for i = 0 … n − 1 would. One z layer of cells per task, twice: count
  // the words, then fill. With `z` = {z_lo, z_hi}, only the layers that points with
  // z_lo ≤ z ≤ z_hi fall in list their bodies (the same lists); the others list none, so only
  // such points may be asked about: a slab of queries holds a slab of the lists and offsets.
  PackedCellGrid(const Vec3& lo, const Vec3& hi, double cell, const std::vector<Vec3>& bb_lo,
                 const std::vector<Vec3>& bb_hi, const std::optional<std::array<double, 2>>& z = {})
      : layout_(lo, hi, cell) {
    int first_layer = 0, last_layer = layout_.layers() - 1;
    if (z) {
      const std::array<int, 6> s = layout_.span({lo[0], lo[1], (*z)[0]}, {lo[0], lo[1], (*z)[1]});
      first_layer = s[4], last_layer = s[5];
    }
    first_cell_ = layout_.index(0, 0, first_layer);
    start_.assign(layout_.index(0, 0, last_layer + 1) - first_cell_ + 1, 0);
    std::vector<std::array<int, 6>> spans(bb_lo.size());
    for (std::size_t i = 0; i < bb_lo.size(); ++i) spans[i] = layout_.span(bb_lo[i], bb_hi[i]);
    // visit(cell, the id listed before in that cell or −1, id) for the layer's cells of every
    // body, in increasing id.
    auto each_cell_of_layer = [&](int k, auto&& visit) {
      const std::size_t first = layout_.index(0, 0, k);
      std::vector<int> previous(layout_.index(0, 0, k + 1) - first, -1);
      for (std::size_t i = 0; i < spans.size(); ++i) {
        const std::array<int, 6>& s = spans[i];
        if (!(s[4] <= k && k <= s[5])) continue;
        for (int y = s[2]; y <= s[3]; ++y)
          for (int x = s[0]; x <= s[1]; ++x) {
            const std::size_t c = layout_.index(x, y, k);
            visit(c, previous[c - first], static_cast<int>(i));
            previous[c - first] = static_cast<int>(i);
          }
      }
    };
    // Counts land one cell ahead, so the prefix sum turns them into each cell's start.
    tbb::parallel_for(first_layer, last_layer + 1, [&](int k) {
      each_cell_of_layer(k, [&](std::size_t c, int previous, int id) {
        start_[c - first_cell_ + 1] += CellBodies::words(previous, id);
      });
    });
    for (std::size_t c = 1; c < start_.size(); ++c) start_[c] += start_[c - 1];
    codes_.resize(start_.back());
    tbb::parallel_for(first_layer, last_layer + 1, [&](int k) {
      const std::size_t first = layout_.index(0, 0, k);
      std::vector<std::size_t> next(
          start_.begin() + static_cast<std::ptrdiff_t>(first - first_cell_),
          start_.begin() + static_cast<std::ptrdiff_t>(layout_.index(0, 0, k + 1) - first_cell_));
      each_cell_of_layer(k, [&](std::size_t c, int previous, int id) {
        next[c - first] =
            static_cast<std::size_t>(CellBodies::put(codes_.data() + next[c - first], previous, id) - codes_.data());
      });
    });
  }

  // The cell of p, and the bodies listed in a cell: a row walk asks for them only when the cell changes.
  std::size_t cell_of(const Vec3& p) const { return layout_.cell_of(p); }
  CellBodies bodies(std::size_t cell) const {
    // A cell outside the layers listed has no bodies.
    if (cell < first_cell_ || cell - first_cell_ + 1 >= start_.size()) return {codes_.data(), codes_.data()};
    const std::size_t c = cell - first_cell_;
    return {codes_.data() + start_[c], codes_.data() + start_[c + 1]};
  }
  CellBodies at(const Vec3& p) const { return bodies(cell_of(p)); }

 private:
  CellLayout layout_;
  std::size_t first_cell_ = 0;      // the first cell of the first layer listed
  std::vector<std::size_t> start_;  // cell c's words are codes_[start_[c − first_cell_], start_[c − first_cell_ + 1])
  std::vector<std::uint16_t> codes_;  // CellBodies' coding
};

}  // namespace vp::phantom
