// Internal to the transport solve: walking the structured cells of a multigrid level (rows,
// colours, neighbours, parent/child cells) and the node of the first coarse level holding a
// fine voxel. Shared by the fine operator, the aggregation and the cycle.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "metrics/transport/multigrid.h"

namespace vp::transport::detail {

// One cell with its six neighbours (−x, +x, −y, +y, −z, +z; −1 where there is none).
struct Cell {
  index_t i = 0;
  std::array<index_t, 3> at{0, 0, 0};
  std::array<index_t, 6> nb{-1, -1, -1, -1, -1, -1};
};

struct Row {
  index_t base, ym, yp, zm, zp;  // first cell of this row and of the neighbouring rows (−1: none)
};

inline Row row_of(const Grid& g, index_t y, index_t z) {
  const index_t sy = g.n[0], sz = g.n[0] * g.n[1];
  Row r;
  r.base = y * sy + z * sz;
  r.ym = y > 0 ? r.base - sy : g.wrap[1] ? r.base + (g.n[1] - 1) * sy : -1;
  r.yp = y < g.n[1] - 1 ? r.base + sy : g.wrap[1] ? r.base - (g.n[1] - 1) * sy : -1;
  r.zm = z > 0 ? r.base - sz : g.wrap[2] ? r.base + (g.n[2] - 1) * sz : -1;
  r.zp = z < g.n[2] - 1 ? r.base + sz : g.wrap[2] ? r.base - (g.n[2] - 1) * sz : -1;
  return r;
}

inline void fill_cell(const Grid& g, const Row& r, index_t x, Cell& c) {
  c.i = r.base + x;
  c.at[0] = x;
  c.nb[0] = x > 0 ? c.i - 1 : g.wrap[0] ? c.i + g.n[0] - 1 : -1;
  c.nb[1] = x < g.n[0] - 1 ? c.i + 1 : g.wrap[0] ? c.i - (g.n[0] - 1) : -1;
  c.nb[2] = r.ym < 0 ? -1 : r.ym + x;
  c.nb[3] = r.yp < 0 ? -1 : r.yp + x;
  c.nb[4] = r.zm < 0 ? -1 : r.zm + x;
  c.nb[5] = r.zp < 0 ? -1 : r.zp + x;
}

// Calls f(cell) for the cells of row (y, z), only those of `colour` unless colour < 0, and only
// those whose index i has keep(i): a cell is filled in (its neighbours found) only when kept.
template <class K, class F>
void for_row_if(const Grid& g, index_t y, index_t z, int colour, K&& keep, F&& f) {
  const Row r = row_of(g, y, z);
  Cell c;
  c.at = {0, y, z};
  if (colour < 0) {
    for (index_t x = 0; x < g.n[0]; ++x)
      if (keep(r.base + x)) fill_cell(g, r, x, c), f(c);
    return;
  }
  const int yz = g.colour_term[1][y] + g.colour_term[2][z];
  if (g.colours == 2) {
    for (index_t x = (colour - yz) & 1; x < g.n[0]; x += 2)
      if (keep(r.base + x)) fill_cell(g, r, x, c), f(c);
    return;
  }
  for (index_t x = 0; x < g.n[0]; ++x)
    if ((g.colour_term[0][x] + yz) % g.colours == colour && keep(r.base + x)) fill_cell(g, r, x, c), f(c);
}

// Calls f(cell) for the cells of row (y, z), only those of `colour` unless colour < 0.
template <class F>
void for_row(const Grid& g, index_t y, index_t z, int colour, F&& f) {
  for_row_if(
      g, y, z, colour, [](index_t) { return true; }, f);
}

// Runs f(y, z) for every row, rows in parallel.
template <class F>
void parallel_rows(const Grid& g, F&& f) {
  const index_t grain = std::max<index_t>(1, 4096 / g.n[0]);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, g.rows(), grain), [&](const tbb::blocked_range<index_t>& rr) {
    for (index_t r = rr.begin(); r < rr.end(); ++r) f(r % g.n[1], r / g.n[1]);
  });
}

// Σ over rows of f(y, z) -> double, in a fixed order whatever the thread count.
template <class F>
double deterministic_row_sum(const Grid& g, F&& f) {
  const index_t grain = std::max<index_t>(1, 16384 / g.n[0]);
  return tbb::parallel_deterministic_reduce(
      tbb::blocked_range<index_t>(0, g.rows(), grain), 0.0,
      [&](const tbb::blocked_range<index_t>& rr, double acc) {
        for (index_t r = rr.begin(); r < rr.end(); ++r) acc += f(r % g.n[1], r / g.n[1]);
        return acc;
      },
      [](double a, double b) { return a + b; });
}

// The x positions of row (y, z) with the given colour (all when colour < 0).
template <class F>
inline void for_colour(const Grid& g, index_t y, index_t z, int colour, F&& f) {
  if (colour < 0) {
    for (index_t x = 0; x < g.n[0]; ++x) f(x);
    return;
  }
  const int yz = g.colour_term[1][y] + g.colour_term[2][z];
  if (g.colours == 2) {
    for (index_t x = (colour - yz) & 1; x < g.n[0]; x += 2) f(x);
    return;
  }
  for (index_t x = 0; x < g.n[0]; ++x)
    if ((g.colour_term[0][x] + yz) % g.colours == colour) f(x);
}

// Coarse cell of a fine coordinate along axis a.
inline index_t parent_coord(const Grid& fine, int a, index_t c) { return fine.halves(a) ? c >> 1 : c; }

// Children of coarse coordinate C along axis a: [first, last].
inline std::pair<index_t, index_t> child_range(const Grid& fine, int a, index_t C) {
  if (!fine.halves(a)) return {C, C};
  return {2 * C, std::min(2 * C + 1, fine.n[a] - 1)};
}

inline Cell cell_at(const Grid& g, index_t x, index_t y, index_t z) {
  Cell c;
  c.at = {x, y, z};
  fill_cell(g, row_of(g, y, z), x, c);
  return c;
}

// Coordinates of neighbour k of cell c (one with c.nb[k] ≥ 0): one step along axis k / 2,
// wrapped on a periodic axis — the cell c.nb[k] without dividing its index.
inline std::array<index_t, 3> neighbour_at(const Grid& g, const Cell& c, int k) {
  std::array<index_t, 3> q = c.at;
  const int a = k >> 1;
  q[a] += (k & 1) ? 1 : -1;
  if (q[a] < 0) q[a] = g.n[a] - 1;
  else if (q[a] == g.n[a]) q[a] = 0;
  return q;
}

// Piece of each of the 8 children of a cell: 4 bits per child (bit 4k), kNoPiece where the
// child carries no current.
constexpr std::uint32_t kNoPiece = 0xF;
inline int child_piece(std::uint32_t pieces, int k) { return static_cast<int>((pieces >> (4 * k)) & 0xF); }

inline index_t cell_index(const Grid& g, index_t X, index_t Y, index_t Z) { return X + g.n[0] * (Y + g.n[1] * Z); }

// Node of the first coarse level that holds the (active) fine voxel (x, y, z).
inline std::uint32_t fine_parent(const Grid& f, const CoarseLevel& C, index_t x, index_t y, index_t z) {
  const index_t ci = cell_index(C.grid, parent_coord(f, 0, x), parent_coord(f, 1, y), parent_coord(f, 2, z));
  const int k = (f.halves(0) ? static_cast<int>(x & 1) : 0) | (f.halves(1) ? static_cast<int>(y & 1) << 1 : 0) |
                (f.halves(2) ? static_cast<int>(z & 1) << 2 : 0);
  return C.cell_start[static_cast<std::size_t>(ci)] +
         static_cast<std::uint32_t>(child_piece(C.pattern_of(static_cast<std::size_t>(ci)), k));
}

// The node of the next coarser level holding node i of level S, whose coarse cell's first node is
// cell_first.
inline std::uint32_t parent_node(const CoarseLevel& S, std::uint32_t cell_first, std::uint32_t i) {
  return S.parent_piece.empty() ? S.parent[i] : cell_first + S.parent_piece[i];
}

// A restriction's start on row (Y, Z) of level C: clears the row's right-hand side and
// solution, and returns the row's node range [n0, n1).
inline std::pair<std::uint32_t, std::uint32_t> clear_coarse_row(CoarseLevel& C, index_t Y, index_t Z) {
  const Grid& g = C.grid;
  const auto base = static_cast<std::size_t>(cell_index(g, 0, Y, Z));
  const std::uint32_t n0 = C.cell_start[base], n1 = C.cell_start[base + static_cast<std::size_t>(g.n[0])];
  std::fill(C.b.begin() + n0, C.b.begin() + n1, 0.0f);
  std::fill(C.x.begin() + n0, C.x.begin() + n1, 0.0f);
  return {n0, n1};
}

// Calls f(cell, first, end) for the children (cells of S) of cell (X, Y, Z) of S's coarsening
// that hold nodes, in increasing node order; [first, end) are the child's nodes.
template <class F>
void for_child_cells(const CoarseLevel& S, index_t X, index_t Y, index_t Z, F&& f) {
  const Grid& s = S.grid;
  const auto [x0, x1] = child_range(s, 0, X);
  const auto [y0, y1] = child_range(s, 1, Y);
  const auto [z0, z1] = child_range(s, 2, Z);
  Cell c;
  for (index_t z = z0; z <= z1; ++z)
    for (index_t y = y0; y <= y1; ++y) {
      const Row r = row_of(s, y, z);
      c.at = {0, y, z};
      for (index_t x = x0; x <= x1; ++x) {
        const auto fc = static_cast<std::size_t>(r.base + x);
        const std::uint32_t first = S.cell_start[fc], end = S.cell_start[fc + 1];
        if (first == end) continue;
        fill_cell(s, r, x, c);
        f(c, first, end);
      }
    }
}

// Calls f(node, cell) for the nodes of the children (cells of S) of cell (X, Y, Z) of S's
// coarsening, in increasing node order; cell is the child cell holding the node.
template <class F>
void for_child_nodes(const CoarseLevel& S, index_t X, index_t Y, index_t Z, F&& f) {
  for_child_cells(S, X, Y, Z, [&](const Cell& c, std::uint32_t first, std::uint32_t end) {
    for (std::uint32_t i = first; i < end; ++i) f(i, c);
  });
}

// The couplings of the nodes of one cell of a coarse level: node i's are e in [L.row[i],
// L.row[i+1]), coupled to target(e) with conductance weight(e), whichever way the level
// stores them (CoarseLevel::link or col, weight_code or weight); electrode(i) its coupling to
// the electrodes.
class CellCouplings {
 public:
  CellCouplings(const CoarseLevel& L, const Cell& c)
      : link_(L.link.empty() ? nullptr : L.link.data()),
        col_(L.col.data()),
        code_(L.weight_code.empty() ? nullptr : L.weight_code.data()),
        value_(L.weight_value.data()),
        weight_(L.weight.data()) {
    const index_t slot = L.electrode_slot(c.at);
    if (slot >= 0) {
      electrode_ = L.electrode.data() + L.electrode_first[static_cast<std::size_t>(slot)];
      cell_first_ = L.cell_start[static_cast<std::size_t>(c.i)];
    }
    if (!link_) return;
    for (int k = 0; k < 6; ++k) first_[k] = c.nb[k] < 0 ? 0 : L.cell_start[static_cast<std::size_t>(c.nb[k])];
    first_[CoarseLevel::kSameCell] = L.cell_start[static_cast<std::size_t>(c.i)];
  }
  std::uint32_t target(std::uint32_t e) const {
    if (!link_) return col_[e];
    const std::uint8_t l = link_[e];
    return first_[l >> 5] + (l & 31u);
  }
  float weight(std::uint32_t e) const { return code_ ? value_[code_[e]] : weight_[e]; }
  float electrode(std::uint32_t i) const { return electrode_ ? electrode_[i - cell_first_] : 0.0f; }

 private:
  const std::uint8_t* link_;
  const std::uint32_t* col_;
  const std::uint8_t* code_;
  const float* value_;
  const float* weight_;
  const float* electrode_ = nullptr;  // the electrode couplings of the cell's nodes, off the planes none
  std::uint32_t cell_first_ = 0;
  std::array<std::uint32_t, 7> first_{};  // first node of the cell in each direction of Cell::nb, then its own
};

template <class F>
void for_each_index(std::size_t n, F&& f) {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1 << 14), [&](const tbb::blocked_range<std::size_t>& r) {
    for (std::size_t i = r.begin(); i < r.end(); ++i) f(i);
  });
}

}  // namespace vp::transport::detail
