#include "metrics/transport/multigrid.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"

namespace vp::transport {

// ---------------------------------------------------------------------------------------
// Grid

Grid::Grid(std::array<index_t, 3> dims, int transport_axis, bool periodic_sides) : n(dims), axis(transport_axis) {
  bool odd_cycle = false;
  for (int a = 0; a < 3; ++a) {
    wrap[a] = periodic_sides && a != axis && n[a] > 1;
    odd_cycle = odd_cycle || (wrap[a] && n[a] % 2 == 1);
  }
  // A periodic axis of odd length is an odd cycle: two colours cannot separate neighbours,
  // three can (the last cell takes colour 2).
  colours = odd_cycle ? 3 : 2;
  for (int a = 0; a < 3; ++a) {
    colour_term[a].resize(static_cast<std::size_t>(n[a]));
    for (index_t c = 0; c < n[a]; ++c) colour_term[a][c] = static_cast<std::uint8_t>(c & 1);
    if (wrap[a] && n[a] % 2 == 1) colour_term[a][n[a] - 1] = 2;
  }
}

Grid Grid::coarsened() const {
  std::array<index_t, 3> m;
  for (int a = 0; a < 3; ++a) m[a] = n[a] > 1 ? (n[a] + 1) / 2 : 1;
  return Grid(m, axis, wrap[0] || wrap[1] || wrap[2]);
}

namespace {

// One cell with its six neighbours (−x, +x, −y, +y, −z, +z; −1 where there is none).
struct Cell {
  index_t i = 0;
  std::array<index_t, 3> at{0, 0, 0};
  std::array<index_t, 6> nb{-1, -1, -1, -1, -1, -1};
};

struct Row {
  index_t base, ym, yp, zm, zp;  // first cell of this row and of the neighbouring rows (−1: none)
};

Row row_of(const Grid& g, index_t y, index_t z) {
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

// Calls f(cell) for the cells of row (y, z), only those of `colour` unless colour < 0.
template <class F>
void for_row(const Grid& g, index_t y, index_t z, int colour, F&& f) {
  const Row r = row_of(g, y, z);
  Cell c;
  c.at = {0, y, z};
  if (colour < 0) {
    for (index_t x = 0; x < g.n[0]; ++x) fill_cell(g, r, x, c), f(c);
    return;
  }
  const int yz = g.colour_term[1][y] + g.colour_term[2][z];
  if (g.colours == 2) {
    for (index_t x = (colour - yz) & 1; x < g.n[0]; x += 2) fill_cell(g, r, x, c), f(c);
    return;
  }
  for (index_t x = 0; x < g.n[0]; ++x)
    if ((g.colour_term[0][x] + yz) % g.colours == colour) fill_cell(g, r, x, c), f(c);
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

// ---- the two kinds of level behind one interface --------------------------------------

inline index_t plane_index(const Grid& g, const Cell& c) {
  const int b = (g.axis + 1) % 3, d = (g.axis + 2) % 3;
  return c.at[b] + g.n[b] * c.at[d];
}

// Fine level through the generic Cell interface; Real = double reads the exact tables.
template <class Real = float>
struct FineViewT {
  const FineLevel& L;
  const Grid& grid() const { return L.grid; }
  bool active(const Cell& c) const { return L.code[c.i] != 0; }
  bool active_at(index_t i) const { return L.code[i] != 0; }
  const Real* faces(int a) const {
    if constexpr (std::is_same_v<Real, double>) return L.face_exact[a].data();
    else return L.face[a].data();
  }
  Real dirichlet(int code) const {
    if constexpr (std::is_same_v<Real, double>) return L.dirichlet_exact[code];
    else return L.dirichlet[code];
  }
  Real coupling(const Cell& c, int k) const {
    const index_t j = c.nb[k];
    return j < 0 ? Real(0) : faces(k >> 1)[L.code[c.i] * L.codes + L.code[j]];
  }
  Real electrode_low(const Cell& c) const { return c.at[L.grid.axis] == 0 ? dirichlet(L.code[c.i]) : Real(0); }
  Real electrode_high(const Cell& c) const {
    return c.at[L.grid.axis] == L.grid.n[L.grid.axis] - 1 ? dirichlet(L.code[c.i]) : Real(0);
  }
};
using FineView = FineViewT<float>;
using ExactView = FineViewT<double>;

// S = Σ_j G_ij x_j and D = Σ_j G_ij + electrode couplings, for one cell.
template <class V, class T, class Acc>
inline void stencil(const V& v, const Cell& c, const T* x, Acc& S, Acc& D) {
  S = 0, D = 0;
  for (int k = 0; k < 6; ++k) {
    const Acc g = v.coupling(c, k);
    if (g != 0) S += g * static_cast<Acc>(x[c.nb[k]]), D += g;
  }
  D += static_cast<Acc>(v.electrode_low(c)) + static_cast<Acc>(v.electrode_high(c));
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

// Electrode couplings of a row when the transport axis is y or z: how many of the row's
// voxels' faces lie on the inlet (low) and on the outlet (high).
struct RowElectrodes {
  bool low = false, high = false;
};
inline RowElectrodes row_electrodes(const Grid& g, index_t y, index_t z) {
  RowElectrodes e;
  if (g.axis == 1) e.low = y == 0, e.high = y == g.n[1] - 1;
  if (g.axis == 2) e.low = z == 0, e.high = z == g.n[2] - 1;
  return e;
}

// Fast row kernels: f(i, S, D, inlet) for each cell of the row and colour, with
// S = Σ G_ij x_j, D = Σ G_ij + electrode couplings (0 for cells carrying no current) and
// inlet = the cell's coupling to the inlet (its right-hand side for inlet potential 1).
// Missing neighbour rows read a row of zero codes / conductances, so the inner loop has
// no branches for them.
template <class T, class Acc, class F>
inline void fine_row(const FineLevel& L, index_t y, index_t z, int colour, const T* X, F&& f) {
  const Grid& g = L.grid;
  const Row r = row_of(g, y, z);
  const index_t n0 = g.n[0];
  const int nc = L.codes;
  const std::uint8_t* zero = L.no_code.data();
  const std::uint8_t* c = L.code + r.base;
  const std::uint8_t* cym = r.ym < 0 ? zero : L.code + r.ym;
  const std::uint8_t* cyp = r.yp < 0 ? zero : L.code + r.yp;
  const std::uint8_t* czm = r.zm < 0 ? zero : L.code + r.zm;
  const std::uint8_t* czp = r.zp < 0 ? zero : L.code + r.zp;
  const T* x0 = X + r.base;
  const T* xym = r.ym < 0 ? x0 : X + r.ym;
  const T* xyp = r.yp < 0 ? x0 : X + r.yp;
  const T* xzm = r.zm < 0 ? x0 : X + r.zm;
  const T* xzp = r.zp < 0 ? x0 : X + r.zp;
  const FineViewT<Acc> tables{L};
  const Acc* fx = tables.faces(0);
  const Acc* fy = tables.faces(1);
  const Acc* fz = tables.faces(2);
  const RowElectrodes e = row_electrodes(g, y, z);
  for_colour(g, y, z, colour, [&](index_t x) {
    const int ci = c[x];
    if (!ci) {
      f(r.base + x, Acc(0), Acc(0), Acc(0));
      return;
    }
    const int k = ci * nc;
    Acc S = 0, D = 0, G;
    const index_t xm = x > 0 ? x - 1 : g.wrap[0] ? n0 - 1 : -1;
    const index_t xp = x < n0 - 1 ? x + 1 : g.wrap[0] ? 0 : -1;
    if (xm >= 0) G = fx[k + c[xm]], S += G * static_cast<Acc>(x0[xm]), D += G;
    if (xp >= 0) G = fx[k + c[xp]], S += G * static_cast<Acc>(x0[xp]), D += G;
    G = fy[k + cym[x]], S += G * static_cast<Acc>(xym[x]), D += G;
    G = fy[k + cyp[x]], S += G * static_cast<Acc>(xyp[x]), D += G;
    G = fz[k + czm[x]], S += G * static_cast<Acc>(xzm[x]), D += G;
    G = fz[k + czp[x]], S += G * static_cast<Acc>(xzp[x]), D += G;
    const bool low = g.axis == 0 ? x == 0 : e.low;
    const bool high = g.axis == 0 ? x == n0 - 1 : e.high;
    const Acc dir = tables.dirichlet(ci);
    D += (low ? dir : Acc(0)) + (high ? dir : Acc(0));
    f(r.base + x, S, D, low ? dir : Acc(0));
  });
}

template <class T, class Acc, class F>
inline void level_row(const FineView& v, index_t y, index_t z, int colour, const T* X, F&& f) {
  fine_row<T, Acc>(v.L, y, z, colour, X, f);
}
template <class V>
void smooth(const V& v, const float* b, float* x, bool forward) {
  const Grid& g = v.grid();
  for (int step = 0; step < g.colours; ++step) {
    const int colour = forward ? step : g.colours - 1 - step;
    parallel_rows(g, [&](index_t y, index_t z) {
      level_row<float, float>(v, y, z, colour, x, [&](index_t i, float S, float D, float) {
        if (D > 0) x[i] = (b[i] + S) / D;
      });
    });
  }
}

// Coarse cell of a fine coordinate along axis a.
inline index_t parent_coord(const Grid& fine, int a, index_t c) { return fine.n[a] > 1 ? c >> 1 : c; }

// Children of coarse coordinate C along axis a: [first, last].
inline std::pair<index_t, index_t> child_range(const Grid& fine, int a, index_t C) {
  if (fine.n[a] == 1) return {0, 0};
  return {2 * C, std::min(2 * C + 1, fine.n[a] - 1)};
}

Cell cell_at(const Grid& g, index_t x, index_t y, index_t z) {
  Cell c;
  c.at = {x, y, z};
  fill_cell(g, row_of(g, y, z), x, c);
  return c;
}

// ---- connectivity-aware aggregation ---------------------------------------------------
//
// A coupling is "strong" when it is at least kStrong × the strongest coupling of either end
// (on the fine level: of either voxel's own phase along the same axis). Aggregates are the
// pieces of a cell that are connected by strong couplings only: a good conductor joined to
// another one only through a poor conductor (contrast 1e4: SE 1 / AM 1e-4) is not shorted
// to it on the coarse level, and a poor-conductor region is not lumped into a good one whose
// potential it cannot follow. For one phase (or a small contrast) every coupling is strong
// and the aggregates are the face-connected pieces of the cell.
constexpr double kStrong = 0.02;

// Piece of each of the 8 children of a cell: 4 bits per child (bit 4k), kNoPiece where the
// child carries no current.
constexpr std::uint32_t kNoPiece = 0xF;
inline int child_piece(std::uint32_t pieces, int k) { return static_cast<int>((pieces >> (4 * k)) & 0xF); }

inline index_t cell_index(const Grid& g, index_t X, index_t Y, index_t Z) { return X + g.n[0] * (Y + g.n[1] * Z); }

// Node of the first coarse level that holds the (active) fine voxel (x, y, z).
inline std::uint32_t fine_parent(const Grid& f, const CoarseLevel& C, index_t x, index_t y, index_t z) {
  const index_t ci = cell_index(C.grid, parent_coord(f, 0, x), parent_coord(f, 1, y), parent_coord(f, 2, z));
  const int k = (f.n[0] > 1 ? static_cast<int>(x & 1) : 0) | (f.n[1] > 1 ? static_cast<int>(y & 1) << 1 : 0) |
                (f.n[2] > 1 ? static_cast<int>(z & 1) << 2 : 0);
  return C.cell_start[static_cast<std::size_t>(ci)] +
         static_cast<std::uint32_t>(child_piece(C.pattern[static_cast<std::size_t>(ci)], k));
}

using Edge = std::pair<std::uint32_t, double>;  // neighbour node, summed conductance

// Per-thread scratch of the edge gathering: one edge list and electrode coupling per piece.
struct Scratch {
  std::vector<std::vector<Edge>> edges;
  std::vector<double> electrode;
  void reset(std::size_t pieces) {
    if (edges.size() < pieces) edges.resize(pieces);
    for (std::size_t p = 0; p < pieces; ++p) edges[p].clear();
    electrode.assign(pieces, 0.0);
  }
  // Sorts and merges piece p's edges (fixed order: deterministic sums).
  const std::vector<Edge>& merged(std::size_t p) {
    auto& e = edges[p];
    std::stable_sort(e.begin(), e.end(), [](const Edge& a, const Edge& b) { return a.first < b.first; });
    std::size_t out = 0;
    for (std::size_t i = 0; i < e.size(); ++i) {
      if (out > 0 && e[out - 1].first == e[i].first) e[out - 1].second += e[i].second;
      else e[out++] = e[i];
    }
    e.resize(out);
    return e;
  }
};

void prefix_sum(std::vector<std::uint32_t>& v) {
  std::uint64_t s = 0;
  for (auto& x : v) {
    s += x;
    if (s > 0xffffffffu) throw ComputeError("transport: multigrid level too large for 32-bit indices");
    x = static_cast<std::uint32_t>(s);
  }
}

// Builds C's adjacency from gather(scratch, X, Y, Z): gather fills scratch for the pieces of
// cell (X, Y, Z) with the fine couplings leaving each piece (Galerkin sums) and its electrode
// couplings; the coarse conductances are ½ × those sums (exact for a uniform medium).
template <class Gather>
void build_edges(CoarseLevel& C, Gather&& gather) {
  constexpr double kScale = 0.5;  // PᵀAP is twice the re-discretised operator
  const Grid& g = C.grid;
  const std::size_t m = C.cell_start.back();
  C.row.assign(m + 1, 0);
  C.electrode.assign(m, 0.0f);
  for (int pass = 0; pass < 2; ++pass) {
    parallel_rows(g, [&](index_t Y, index_t Z) {
      Scratch s;
      for (index_t X = 0; X < g.n[0]; ++X) {
        const auto ci = static_cast<std::size_t>(cell_index(g, X, Y, Z));
        const std::uint32_t first = C.cell_start[ci], pieces = C.cell_start[ci + 1] - first;
        if (pieces == 0) continue;
        s.reset(pieces);
        gather(s, X, Y, Z);
        for (std::uint32_t p = 0; p < pieces; ++p) {
          const auto& e = s.merged(p);
          const std::uint32_t node = first + p;
          if (pass == 0) {
            C.row[node + 1] = static_cast<std::uint32_t>(e.size());
            C.electrode[node] = static_cast<float>(kScale * s.electrode[p]);
          } else {
            std::uint32_t at = C.row[node];
            for (const auto& [t, w] : e) C.col[at] = t, C.weight[at++] = static_cast<float>(kScale * w);
          }
        }
      }
    });
    if (pass == 0) {
      prefix_sum(C.row);
      C.col.assign(C.row.back(), 0);
      C.weight.assign(C.row.back(), 0.0f);
    }
  }
  for (auto* w : {&C.x, &C.b, &C.c2, &C.w}) w->assign(m, 0.0f);
}

// First coarse level from the voxels.
CoarseLevel coarsen_fine(const FineLevel& F) {
  const FineView v{F};
  const Grid& f = F.grid;
  CoarseLevel C;
  C.grid = f.coarsened();
  const Grid& g = C.grid;
  const auto cells = static_cast<std::size_t>(g.count());
  C.pattern.assign(cells, 0);
  C.cell_start.assign(cells + 1, 0);
  // strong[a][ci * codes + cj]: the face between codes ci and cj along a is strong.
  std::array<std::vector<std::uint8_t>, 3> strong;
  for (int a = 0; a < 3; ++a) {
    strong[a].assign(static_cast<std::size_t>(F.codes * F.codes), 0);
    const float* G = F.face[a].data();
    for (int i = 1; i < F.codes; ++i)
      for (int j = 1; j < F.codes; ++j) {
        const double ref = std::max(G[i * F.codes + i], G[j * F.codes + j]);
        strong[a][i * F.codes + j] = G[i * F.codes + j] > 0 && G[i * F.codes + j] >= kStrong * ref;
      }
  }
  parallel_rows(g, [&](index_t Y, index_t Z) {
    const auto [y0, y1] = child_range(f, 1, Y);
    const auto [z0, z1] = child_range(f, 2, Z);
    for (index_t X = 0; X < g.n[0]; ++X) {
      const auto [x0, x1] = child_range(f, 0, X);
      int child_code[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (index_t z = z0; z <= z1; ++z)
        for (index_t y = y0; y <= y1; ++y)
          for (index_t x = x0; x <= x1; ++x)
            child_code[(x - x0) + 2 * (y - y0) + 4 * (z - z0)] = F.code[cell_index(f, x, y, z)];
      // Label the children's strongly connected pieces (8 nodes, 12 faces: a small flood fill).
      int piece[8];
      std::fill_n(piece, 8, -1);
      int count = 0;
      for (int k = 0; k < 8; ++k) {
        if (!child_code[k] || piece[k] >= 0) continue;
        int stack[8], top = 0;
        stack[top++] = k, piece[k] = count;
        while (top > 0) {
          const int c = stack[--top];
          for (int a = 0; a < 3; ++a) {
            const int d = c ^ (1 << a);
            if (!child_code[d] || piece[d] >= 0) continue;
            if (strong[a][child_code[c] * F.codes + child_code[d]]) piece[d] = count, stack[top++] = d;
          }
        }
        ++count;
      }
      std::uint32_t packed = 0;
      for (int k = 0; k < 8; ++k) packed |= (piece[k] < 0 ? kNoPiece : static_cast<std::uint32_t>(piece[k])) << (4 * k);
      const auto ci = static_cast<std::size_t>(cell_index(g, X, Y, Z));
      C.pattern[ci] = packed;
      C.cell_start[ci + 1] = static_cast<std::uint32_t>(count);
    }
  });
  prefix_sum(C.cell_start);
  build_edges(C, [&](Scratch& s, index_t X, index_t Y, index_t Z) {
    const auto [x0, x1] = child_range(f, 0, X);
    const auto [y0, y1] = child_range(f, 1, Y);
    const auto [z0, z1] = child_range(f, 2, Z);
    const auto ci = static_cast<std::size_t>(cell_index(g, X, Y, Z));
    const std::uint32_t pieces = C.pattern[ci];
    const index_t n0 = f.n[0], n01 = f.n[0] * f.n[1];
    for (index_t z = z0; z <= z1; ++z)
      for (index_t y = y0; y <= y1; ++y)
        for (index_t x = x0; x <= x1; ++x) {
          const Cell c = cell_at(f, x, y, z);
          if (!v.active(c)) continue;
          const int p = child_piece(pieces, static_cast<int>((x - x0) + 2 * (y - y0) + 4 * (z - z0)));
          const std::uint32_t node = C.cell_start[ci] + static_cast<std::uint32_t>(p);
          for (int k = 0; k < 6; ++k) {
            const index_t j = c.nb[k];
            if (j < 0 || !v.active_at(j)) continue;
            const float w = v.coupling(c, k);
            if (w == 0) continue;
            const std::uint32_t t = fine_parent(f, C, j % n0, (j / n0) % f.n[1], j / n01);
            if (t != node) s.edges[static_cast<std::size_t>(p)].emplace_back(t, static_cast<double>(w));
          }
          s.electrode[static_cast<std::size_t>(p)] += static_cast<double>(v.electrode_low(c)) + v.electrode_high(c);
        }
  });
  return C;
}

// Calls f(node) for the nodes of the children (cells of S) of cell (X, Y, Z) of S's coarsening,
// in increasing node order.
template <class F>
void for_child_nodes(const CoarseLevel& S, index_t X, index_t Y, index_t Z, F&& f) {
  const Grid& s = S.grid;
  const auto [x0, x1] = child_range(s, 0, X);
  const auto [y0, y1] = child_range(s, 1, Y);
  const auto [z0, z1] = child_range(s, 2, Z);
  for (index_t z = z0; z <= z1; ++z)
    for (index_t y = y0; y <= y1; ++y)
      for (index_t x = x0; x <= x1; ++x) {
        const auto fc = static_cast<std::size_t>(cell_index(s, x, y, z));
        for (std::uint32_t i = S.cell_start[fc]; i < S.cell_start[fc + 1]; ++i) f(i);
      }
}

// Next coarse level from a coarse level: the nodes of each 2×2×2 group of cells, split into
// the pieces connected inside the group. Fills S.parent.
CoarseLevel coarsen_graph(CoarseLevel& S, bool by_strength) {
  CoarseLevel C;
  C.grid = S.grid.coarsened();
  const Grid& g = C.grid;
  const auto cells = static_cast<std::size_t>(g.count());
  C.cell_start.assign(cells + 1, 0);
  S.parent.assign(S.nodes(), 0);
  auto find = [](std::vector<int>& uf, int a) {
    while (uf[a] != a) a = uf[a] = uf[uf[a]];
    return a;
  };
  // Strongest coupling of each node: with by_strength, a coupling joins two nodes into one
  // piece only if it is strong.
  std::vector<float> strongest(S.nodes(), 0.0f);
  if (by_strength)
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, S.nodes(), 1 << 14), [&](const tbb::blocked_range<std::size_t>& r) {
      for (std::size_t i = r.begin(); i < r.end(); ++i)
        for (std::uint32_t e = S.row[i]; e < S.row[i + 1]; ++e) strongest[i] = std::max(strongest[i], S.weight[e]);
    });
  parallel_rows(g, [&](index_t Y, index_t Z) {
    std::vector<std::uint32_t> items;
    std::vector<int> uf, label;
    for (index_t X = 0; X < g.n[0]; ++X) {
      items.clear();
      for_child_nodes(S, X, Y, Z, [&](std::uint32_t i) { items.push_back(i); });
      const int m = static_cast<int>(items.size());
      uf.resize(static_cast<std::size_t>(m));
      for (int a = 0; a < m; ++a) uf[a] = a;
      for (int a = 0; a < m; ++a)
        for (std::uint32_t e = S.row[items[a]]; e < S.row[items[a] + 1]; ++e) {
          if (S.weight[e] == 0) continue;
          if (by_strength && S.weight[e] < kStrong * std::max(strongest[items[a]], strongest[S.col[e]])) continue;
          const auto it = std::lower_bound(items.begin(), items.end(), S.col[e]);
          if (it == items.end() || *it != S.col[e]) continue;
          const int ra = find(uf, a), rb = find(uf, static_cast<int>(it - items.begin()));
          if (ra != rb) uf[std::max(ra, rb)] = std::min(ra, rb);
        }
      label.assign(static_cast<std::size_t>(m), -1);
      std::uint32_t pieces = 0;
      for (int a = 0; a < m; ++a) {
        const int r = find(uf, a);
        if (label[r] < 0) label[r] = static_cast<int>(pieces++);
        S.parent[items[a]] = static_cast<std::uint32_t>(label[r]);
      }
      C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z)) + 1] = pieces;
    }
  });
  prefix_sum(C.cell_start);
  parallel_rows(g, [&](index_t Y, index_t Z) {
    for (index_t X = 0; X < g.n[0]; ++X) {
      const std::uint32_t first = C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z))];
      for_child_nodes(S, X, Y, Z, [&](std::uint32_t i) { S.parent[i] += first; });
    }
  });
  build_edges(C, [&](Scratch& s, index_t X, index_t Y, index_t Z) {
    const std::uint32_t first = C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z))];
    for_child_nodes(S, X, Y, Z, [&](std::uint32_t i) {
      const std::uint32_t node = S.parent[i];
      auto& list = s.edges[node - first];
      for (std::uint32_t e = S.row[i]; e < S.row[i + 1]; ++e) {
        const std::uint32_t t = S.parent[S.col[e]];
        if (t != node) list.emplace_back(t, static_cast<double>(S.weight[e]));
      }
      s.electrode[node - first] += S.electrode[i];
    });
  });
  return C;
}

// S = Σ_j G_ij x_j and D = Σ_j G_ij + electrode coupling of node i of a coarse level.
inline void node_stencil(const CoarseLevel& L, std::uint32_t i, const float* x, float& S, float& D) {
  S = 0, D = L.electrode[i];
  for (std::uint32_t e = L.row[i]; e < L.row[i + 1]; ++e) S += L.weight[e] * x[L.col[e]], D += L.weight[e];
}

// Gauss-Seidel on a coarse level, colour by colour of its cells: the nodes of one cell are
// never coupled (they are pieces not connected inside it) and couplings join face-adjacent
// cells only, so the cells' colouring separates every pair of coupled nodes.
void smooth_graph(const CoarseLevel& L, const float* b, float* x, bool forward) {
  const Grid& g = L.grid;
  for (int step = 0; step < g.colours; ++step) {
    const int colour = forward ? step : g.colours - 1 - step;
    parallel_rows(g, [&](index_t Y, index_t Z) {
      for_colour(g, Y, Z, colour, [&](index_t X) {
        const auto ci = static_cast<std::size_t>(cell_index(g, X, Y, Z));
        for (std::uint32_t i = L.cell_start[ci]; i < L.cell_start[ci + 1]; ++i) {
          float S, D;
          node_stencil(L, i, x, S, D);
          if (D > 0) x[i] = (b[i] + S) / D;
        }
      });
    });
  }
}

// Restriction (Pᵀ) of the fine residual b − A x to the first coarse level; clears C.x.
void restrict_fine(const FineLevel& F, const float* b, const float* x, CoarseLevel& C) {
  const FineView v{F};
  const Grid& f = F.grid;
  const Grid& g = C.grid;
  parallel_rows(g, [&](index_t Y, index_t Z) {
    const auto base = static_cast<std::size_t>(cell_index(g, 0, Y, Z));
    const std::uint32_t n0 = C.cell_start[base], n1 = C.cell_start[base + static_cast<std::size_t>(g.n[0])];
    std::fill(C.b.begin() + n0, C.b.begin() + n1, 0.0f);
    std::fill(C.x.begin() + n0, C.x.begin() + n1, 0.0f);
    const auto [y0, y1] = child_range(f, 1, Y);
    const auto [z0, z1] = child_range(f, 2, Z);
    for (index_t z = z0; z <= z1; ++z)
      for (index_t y = y0; y <= y1; ++y) {
        const index_t fbase = cell_index(f, 0, y, z);
        level_row<float, float>(v, y, z, -1, x, [&](index_t i, float S, float D, float) {
          if (D > 0) C.b[fine_parent(f, C, i - fbase, y, z)] += b[i] - (D * x[i] - S);
        });
      }
  });
}

void prolong_fine(const FineLevel& F, const CoarseLevel& C, float* x) {
  const Grid& f = F.grid;
  parallel_rows(f, [&](index_t y, index_t z) {
    const index_t base = cell_index(f, 0, y, z);
    for (index_t i = 0; i < f.n[0]; ++i)
      if (F.code[base + i] != 0) x[base + i] += C.x[fine_parent(f, C, i, y, z)];
  });
}

// Restriction from coarse level S to the next one C (S.parent); clears C.x.
void restrict_graph(const CoarseLevel& S, const float* b, const float* x, CoarseLevel& C) {
  const Grid& g = C.grid;
  parallel_rows(g, [&](index_t Y, index_t Z) {
    const auto base = static_cast<std::size_t>(cell_index(g, 0, Y, Z));
    const std::uint32_t n0 = C.cell_start[base], n1 = C.cell_start[base + static_cast<std::size_t>(g.n[0])];
    std::fill(C.b.begin() + n0, C.b.begin() + n1, 0.0f);
    std::fill(C.x.begin() + n0, C.x.begin() + n1, 0.0f);
    for (index_t X = 0; X < g.n[0]; ++X)
      for_child_nodes(S, X, Y, Z, [&](std::uint32_t i) {
        float Sx, D;
        node_stencil(S, i, x, Sx, D);
        C.b[S.parent[i]] += b[i] - (D * x[i] - Sx);
      });
  });
}

void prolong_graph(const CoarseLevel& S, const CoarseLevel& C, float* x) {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, S.nodes(), 1 << 14), [&](const tbb::blocked_range<std::size_t>& r) {
    for (std::size_t i = r.begin(); i < r.end(); ++i) x[i] += C.x[S.parent[i]];
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Coarsest level: dense Cholesky over its unknowns.

struct Multigrid::Coarsest {
  std::vector<index_t> cells;  // level index of each unknown
  std::vector<double> L;       // lower factor, row-major m×m
  std::vector<double> work;

  // The fine level itself (small volumes): the active voxels with a positive diagonal.
  explicit Coarsest(const FineView& v) {
    const Grid& g = v.grid();
    std::vector<index_t> unknown(static_cast<std::size_t>(g.count()), -1);
    std::vector<Cell> all;
    for (index_t z = 0; z < g.n[2]; ++z)
      for (index_t y = 0; y < g.n[1]; ++y)
        for_row(g, y, z, -1, [&](const Cell& c) {
          if (!v.active(c)) return;
          float D = v.electrode_low(c) + v.electrode_high(c);
          for (int k = 0; k < 6; ++k) D += v.coupling(c, k);
          if (D <= 0) return;
          unknown[c.i] = static_cast<index_t>(cells.size());
          cells.push_back(c.i);
          all.push_back(c);
        });
    const std::size_t m = cells.size();
    L.assign(m * m, 0.0);
    for (std::size_t p = 0; p < m; ++p) {
      const Cell& c = all[p];
      double D = v.electrode_low(c) + v.electrode_high(c);
      for (int k = 0; k < 6; ++k) {
        const double gk = v.coupling(c, k);
        if (gk == 0) continue;
        D += gk;
        const index_t q = unknown[c.nb[k]];
        if (q >= 0 && static_cast<std::size_t>(q) != p) L[p * m + q] -= gk;
      }
      L[p * m + p] += D;
    }
    factorise();
  }

  // A coarse level: every node.
  explicit Coarsest(const CoarseLevel& C) {
    const std::size_t m = C.nodes();
    cells.resize(m);
    L.assign(m * m, 0.0);
    for (std::size_t p = 0; p < m; ++p) {
      cells[p] = static_cast<index_t>(p);
      double D = C.electrode[p];
      for (std::uint32_t e = C.row[p]; e < C.row[p + 1]; ++e) {
        D += C.weight[e];
        L[p * m + C.col[e]] -= C.weight[e];
      }
      L[p * m + p] += D;
    }
    factorise();
  }

  void factorise() {
    const std::size_t m = cells.size();
    for (std::size_t j = 0; j < m; ++j) {
      double d = L[j * m + j];
      for (std::size_t k = 0; k < j; ++k) d -= L[j * m + k] * L[j * m + k];
      if (!(d > 0)) throw ComputeError("transport: coarsest multigrid operator is not positive definite");
      d = std::sqrt(d);
      L[j * m + j] = d;
      for (std::size_t i = j + 1; i < m; ++i) {
        double s = L[i * m + j];
        for (std::size_t k = 0; k < j; ++k) s -= L[i * m + k] * L[j * m + k];
        L[i * m + j] = s / d;
      }
    }
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = i + 1; j < m; ++j) L[i * m + j] = 0;
    work.resize(m);
  }

  void solve(const float* b, float* x) {
    const std::size_t m = cells.size();
    for (std::size_t i = 0; i < m; ++i) {
      double s = b[cells[i]];
      for (std::size_t k = 0; k < i; ++k) s -= L[i * m + k] * work[k];
      work[i] = s / L[i * m + i];
    }
    for (std::size_t i = m; i-- > 0;) {
      double s = work[i];
      for (std::size_t k = i + 1; k < m; ++k) s -= L[k * m + i] * work[k];
      work[i] = s / L[i * m + i];
    }
    for (std::size_t i = 0; i < m; ++i) x[cells[i]] = static_cast<float>(work[i]);
  }
};

Multigrid::Multigrid(const FineLevel& fine, index_t coarsest_cells) : fine_(fine) {
  if (fine.grid.count() > coarsest_cells) {
    coarse_.push_back(coarsen_fine(fine));
    while (coarse_.back().nodes() > static_cast<std::size_t>(coarsest_cells)) {
      const Grid& g = coarse_.back().grid;
      if (g.n[0] == 1 && g.n[1] == 1 && g.n[2] == 1) break;
      // Aggregates follow strong couplings, unless that leaves the level barely coarser (less
      // than 1.2×: weakly attached regions left as nodes of their own at every depth) or this is the
      // last possible level (one cell): there every connected piece becomes one node, so the
      // coarsest level stays small enough for the dense factorisation.
      const std::size_t before = coarse_.back().nodes();
      CoarseLevel next = coarsen_graph(coarse_.back(), true);
      const Grid& ng = next.grid;
      if ((ng.n[0] == 1 && ng.n[1] == 1 && ng.n[2] == 1) || 6 * next.nodes() > 5 * before)
        next = coarsen_graph(coarse_.back(), false);
      coarse_.push_back(std::move(next));
    }
  }
  if (coarse_.empty())
    coarsest_ = std::make_unique<Coarsest>(FineView{fine});
  else
    coarsest_ = std::make_unique<Coarsest>(coarse_.back());
}

Multigrid::~Multigrid() = default;

std::size_t Multigrid::bytes() const {
  std::size_t total = coarsest_->L.size() * sizeof(double);
  for (const auto& c : coarse_)
    total += (c.cell_start.size() + c.row.size() + c.col.size() + c.parent.size()) * sizeof(std::uint32_t) +
             c.pattern.size() + (c.weight.size() + c.electrode.size() * 5) * sizeof(float);
  return total;
}

void Multigrid::precondition(const float* r, float* z) {
  const auto n = static_cast<std::size_t>(fine_.grid.count());
  std::fill_n(z, n, 0.0f);
  if (coarse_.empty())
    coarsest_->solve(r, z);
  else
    cycle(0, r, z);
}

void Multigrid::cycle(int level, const float* b, float* x) {
  CoarseLevel& next = coarse_[static_cast<std::size_t>(level)];
  if (level == 0) {
    const FineView v{fine_};
    smooth(v, b, x, true);
    restrict_fine(fine_, b, x, next);
    solve_coarse(level + 1);
    prolong_fine(fine_, next, x);
    smooth(v, b, x, false);
    return;
  }
  const CoarseLevel& L = coarse_[static_cast<std::size_t>(level - 1)];
  smooth_graph(L, b, x, true);
  restrict_graph(L, b, x, next);
  solve_coarse(level + 1);
  prolong_graph(L, next, x);
  smooth_graph(L, b, x, false);
}

namespace {

double level_dot(const std::vector<float>& a, const std::vector<float>& b) {
  const auto n = static_cast<index_t>(a.size());
  return tbb::parallel_deterministic_reduce(
      tbb::blocked_range<index_t>(0, n, 1 << 14), 0.0,
      [&](const tbb::blocked_range<index_t>& r, double acc) {
        for (index_t i = r.begin(); i < r.end(); ++i) acc += static_cast<double>(a[i]) * b[i];
        return acc;
      },
      [](double u, double v) { return u + v; });
}

template <class F>
void for_each_index(std::size_t n, F&& f) {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1 << 14), [&](const tbb::blocked_range<std::size_t>& r) {
    for (std::size_t i = r.begin(); i < r.end(); ++i) f(i);
  });
}

void level_apply(const CoarseLevel& L, const float* x, float* y) {
  for_each_index(L.nodes(), [&](std::size_t i) {
    float S, D;
    node_stencil(L, static_cast<std::uint32_t>(i), x, S, D);
    y[i] = D * x[i] - S;
  });
}

}  // namespace

// Level l ≥ 1: x_l ≈ A_l⁻¹ b_l. Exact on the coarsest level; elsewhere a K-cycle (Notay &
// Vassilevski 2008): two steps of a Krylov method preconditioned by this level's V-step, which
// makes the piecewise-constant hierarchy as strong as a W-cycle and independent of depth.
void Multigrid::solve_coarse(int level) {
  CoarseLevel& L = coarse_[static_cast<std::size_t>(level - 1)];
  if (level == levels() - 1) {
    coarsest_->solve(L.b.data(), L.x.data());
    return;
  }
  const std::size_t n = L.b.size();
  auto B = [&](const std::vector<float>& rhs, std::vector<float>& out) {
    std::fill(out.begin(), out.end(), 0.0f);
    cycle(level, rhs.data(), out.data());
  };
  // c₁ is built in x and r₁ in b (b is not needed afterwards): two vectors fewer per level.
  B(L.b, L.x);
  level_apply(L, L.x.data(), L.w.data());
  const double rho1 = level_dot(L.x, L.w), alpha1 = level_dot(L.x, L.b);
  if (!(rho1 > 0)) return;
  const auto a1 = static_cast<float>(alpha1 / rho1);
  const double b2 = level_dot(L.b, L.b);
  for_each_index(n, [&](std::size_t i) { L.b[i] -= a1 * L.w[i]; });
  const double r2 = level_dot(L.b, L.b);
  if (r2 <= 0.0625 * b2) {  // ‖r₁‖ ≤ ¼‖b‖: one step is enough
    for_each_index(n, [&](std::size_t i) { L.x[i] *= a1; });
    return;
  }
  B(L.b, L.c2);
  level_apply(L, L.c2.data(), L.w.data());
  const double gamma = level_dot(L.x, L.w), beta = level_dot(L.c2, L.w), alpha2 = level_dot(L.c2, L.b);
  const double rho2 = beta - gamma * gamma / rho1;
  if (!(rho2 > 0)) {
    for_each_index(n, [&](std::size_t i) { L.x[i] *= a1; });
    return;
  }
  const auto k1 = static_cast<float>(alpha1 / rho1 - gamma * alpha2 / (rho1 * rho2));
  const auto k2 = static_cast<float>(alpha2 / rho2);
  for_each_index(n, [&](std::size_t i) { L.x[i] = k1 * L.x[i] + k2 * L.c2[i]; });
}

void Multigrid::apply(const float* x, float* y) const {
  const FineView v{fine_};
  const Grid& g = fine_.grid;
  parallel_rows(g, [&](index_t yy, index_t zz) {
    level_row<float, float>(v, yy, zz, -1, x, [&](index_t i, float S, float D, float) { y[i] = D * x[i] - S; });
  });
}

double true_residual(const FineLevel& fine, const double* x, float* r, double* b_norm2) {
  const FineView v{fine};
  const Grid& g = fine.grid;
  std::vector<double> b2(static_cast<std::size_t>(g.rows()), 0.0);
  const double r2 = deterministic_row_sum(g, [&](index_t y, index_t z) {
    double acc = 0, bacc = 0;
    level_row<double, double>(v, y, z, -1, x, [&](index_t i, double S, double D, double inlet) {
      if (!(D > 0)) {
        r[i] = 0;
        return;
      }
      const double b = inlet;  // inlet at potential 1, outlet at 0
      const double res = b - (D * x[i] - S);
      r[i] = static_cast<float>(res);
      acc += res * res;
      bacc += b * b;
    });
    b2[static_cast<std::size_t>(y + g.n[1] * z)] = bacc;
    return acc;
  });
  if (b_norm2) {
    double s = 0;
    for (double v2 : b2) s += v2;
    *b_norm2 = s;
  }
  return r2;
}

FaceCurrents electrode_currents(const FineLevel& fine, const double* x) {
  const ExactView v{fine};
  const Grid& g = fine.grid;
  const int a = g.axis, b = (a + 1) % 3, d = (a + 2) % 3;
  FaceCurrents out;
  for (index_t t : {index_t(0), g.n[a] - 1}) {
    double in = 0, outflow = 0;
    for (index_t v2 = 0; v2 < g.n[d]; ++v2)
      for (index_t u = 0; u < g.n[b]; ++u) {
        std::array<index_t, 3> p;
        p[a] = t, p[b] = u, p[d] = v2;
        const Cell c = cell_at(g, p[0], p[1], p[2]);
        if (!v.active(c)) continue;
        if (t == 0) in += static_cast<double>(v.electrode_low(c)) * (1.0 - x[c.i]);
        if (t == g.n[a] - 1) outflow += static_cast<double>(v.electrode_high(c)) * x[c.i];
      }
    if (t == 0) out.in = in;
    if (t == g.n[a] - 1) out.out = outflow;
  }
  return out;
}

std::vector<double> plane_currents(const FineLevel& fine, const double* x) {
  const ExactView v{fine};
  const Grid& g = fine.grid;
  const int a = g.axis, b = (a + 1) % 3, d = (a + 2) % 3;
  const index_t N = g.n[a];
  std::vector<double> out(static_cast<std::size_t>(N + 1), 0.0);
  tbb::parallel_for(index_t(0), N + 1, [&](index_t t) {
    double sum = 0;  // one plane summed serially: fixed order
    for (index_t w = 0; w < g.n[d]; ++w)
      for (index_t u = 0; u < g.n[b]; ++u) {
        std::array<index_t, 3> p;
        p[a] = t < N ? t : N - 1, p[b] = u, p[d] = w;
        const Cell c = cell_at(g, p[0], p[1], p[2]);
        if (!v.active(c)) continue;
        if (t == 0)
          sum += static_cast<double>(v.electrode_low(c)) * (1.0 - x[c.i]);
        else if (t == N)
          sum += static_cast<double>(v.electrode_high(c)) * x[c.i];
        else
          sum += static_cast<double>(v.coupling(c, 2 * a)) * (x[c.nb[2 * a]] - x[c.i]);
      }
    out[static_cast<std::size_t>(t)] = sum;
  });
  return out;
}

void current_density(const FineLevel& fine, const double* x, const std::array<double, 3>& h, float* out) {
  const ExactView v{fine};
  const Grid& g = fine.grid;
  const double area[3] = {h[1] * h[2], h[0] * h[2], h[0] * h[1]};
  parallel_rows(g, [&](index_t y, index_t z) {
    for_row(g, y, z, -1, [&](const Cell& c) {
      if (!v.active(c)) {
        out[c.i] = 0;
        return;
      }
      double j2 = 0;
      for (int a = 0; a < 3; ++a) {
        // Currents in the + direction through the − face and the + face of the voxel.
        double minus = c.nb[2 * a] < 0 ? 0.0 : v.coupling(c, 2 * a) * (x[c.nb[2 * a]] - x[c.i]);
        double plus = c.nb[2 * a + 1] < 0 ? 0.0 : v.coupling(c, 2 * a + 1) * (x[c.i] - x[c.nb[2 * a + 1]]);
        if (a == g.axis) {
          if (c.at[a] == 0) minus = v.electrode_low(c) * (1.0 - x[c.i]);
          if (c.at[a] == g.n[a] - 1) plus = v.electrode_high(c) * x[c.i];
        }
        const double j = 0.5 * (minus + plus) / area[a];
        j2 += j * j;
      }
      out[c.i] = static_cast<float>(std::sqrt(j2));
    });
  });
}

}  // namespace vp::transport
