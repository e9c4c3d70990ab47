#include "metrics/transport/multigrid.h"

#include <algorithm>
#include <cmath>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/error.h"
#include "metrics/transport/aggregation.h"
#include "metrics/transport/fine_operator.h"

namespace vp::transport {

using namespace detail;

// ---------------------------------------------------------------------------------------
// Grid

Grid::Grid(std::array<index_t, 3> dims, int transport_axis, bool periodic_sides, std::array<double, 3> cell_size)
    : n(dims), axis(transport_axis), cell(cell_size) {
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
  double shortest = 0;
  for (int a = 0; a < 3; ++a)
    if (n[a] > 1 && (shortest == 0 || cell[a] < shortest)) shortest = cell[a];
  for (int a = 0; a < 3; ++a) halve[a] = n[a] > 1 && cell[a] < 1.5 * shortest;
}

Grid Grid::coarsened() const {
  std::array<index_t, 3> m;
  std::array<double, 3> h;
  for (int a = 0; a < 3; ++a) {
    const bool half = halves(a);
    m[a] = half ? (n[a] + 1) / 2 : n[a];
    h[a] = half ? 2 * cell[a] : cell[a];
  }
  return Grid(m, axis, wrap[0] || wrap[1] || wrap[2], h);
}

namespace {

// ---------------------------------------------------------------------------------------
// Coarse levels: smoother and transfers between two coarse levels.

// S = Σ_j G_ij x_j and D = Σ_j G_ij + electrode coupling of node i of a coarse level, whose
// cell's couplings are cc.
inline void node_stencil(const CoarseLevel& L, const CellCouplings& cc, std::uint32_t i, const float* x, float& S,
                         float& D) {
  S = 0, D = cc.electrode(i);
  for (std::uint32_t e = L.row[i]; e < L.row[i + 1]; ++e) {
    const float w = cc.weight(e);
    S += w * x[cc.target(e)], D += w;
  }
}

// Whether cell i of level L holds nodes: cells without are skipped before their neighbours are found.
inline auto has_nodes(const CoarseLevel& L) {
  return [&L](index_t i) {
    return L.cell_start[static_cast<std::size_t>(i)] != L.cell_start[static_cast<std::size_t>(i) + 1];
  };
}

// Calls f(node, couplings of its cell) for every node of level L, cells in parallel by rows.
template <class F>
void parallel_nodes(const CoarseLevel& L, F&& f) {
  parallel_rows(L.grid, [&](index_t Y, index_t Z) {
    for_row_if(L.grid, Y, Z, -1, has_nodes(L), [&](const Cell& c) {
      const auto ci = static_cast<std::size_t>(c.i);
      const CellCouplings cc(L, c);
      for (std::uint32_t i = L.cell_start[ci]; i < L.cell_start[ci + 1]; ++i) f(i, cc);
    });
  });
}

// Gauss-Seidel on a coarse level, colour by colour of its cells: the nodes of one cell are
// never coupled (they are pieces not connected inside it) and couplings join face-adjacent
// cells only, so the cells' colouring separates every pair of coupled nodes.
void smooth_graph(const CoarseLevel& L, const float* b, float* x, bool forward) {
  const Grid& g = L.grid;
  for (int step = 0; step < g.colours; ++step) {
    const int colour = forward ? step : g.colours - 1 - step;
    parallel_rows(g, [&](index_t Y, index_t Z) {
      for_row_if(g, Y, Z, colour, has_nodes(L), [&](const Cell& c) {
        const auto ci = static_cast<std::size_t>(c.i);
        const CellCouplings cc(L, c);
        for (std::uint32_t i = L.cell_start[ci]; i < L.cell_start[ci + 1]; ++i) {
          float S, D;
          node_stencil(L, cc, i, x, S, D);
          if (D > 0) x[i] = (b[i] + S) / D;
        }
      });
    });
  }
}

// Restriction from coarse level S to the next one C (S's parents); clears C.x.
void restrict_graph(const CoarseLevel& S, const float* b, const float* x, CoarseLevel& C) {
  const Grid& g = C.grid;
  parallel_rows(g, [&](index_t Y, index_t Z) {
    clear_coarse_row(C, Y, Z);
    for (index_t X = 0; X < g.n[0]; ++X) {
      const std::uint32_t first = C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z))];
      for_child_cells(S, X, Y, Z, [&](const Cell& c, std::uint32_t i0, std::uint32_t i1) {
        const CellCouplings cc(S, c);  // once per cell, not per node
        for (std::uint32_t i = i0; i < i1; ++i) {
          float Sx, D;
          node_stencil(S, cc, i, x, Sx, D);
          C.b[parent_node(S, first, i)] += b[i] - (D * x[i] - Sx);
        }
      });
    }
  });
}

// x += the correction of the coarse node holding each node, coarse cell by coarse cell (the nodes
// of a coarse cell's children along x are one run: nodes are numbered cell by cell).
void prolong_graph(const CoarseLevel& S, const CoarseLevel& C, float* x) {
  const Grid& g = C.grid;
  const Grid& s = S.grid;
  parallel_rows(g, [&](index_t Y, index_t Z) {
    const auto [y0, y1] = child_range(s, 1, Y);
    const auto [z0, z1] = child_range(s, 2, Z);
    for (index_t X = 0; X < g.n[0]; ++X) {
      const std::uint32_t first = C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z))];
      const auto [x0, x1] = child_range(s, 0, X);
      for (index_t z = z0; z <= z1; ++z)
        for (index_t y = y0; y <= y1; ++y) {
          const auto c0 = static_cast<std::size_t>(cell_index(s, x0, y, z));
          const auto c1 = static_cast<std::size_t>(cell_index(s, x1, y, z)) + 1;
          for (std::uint32_t i = S.cell_start[c0]; i < S.cell_start[c1]; ++i) x[i] += C.x[parent_node(S, first, i)];
        }
    }
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Coarsest level: dense Cholesky over its unknowns.

struct Multigrid::Coarsest {
  std::vector<index_t> cells;  // level index of each unknown (fine level: among the carrying voxels)
  std::vector<double> L;       // lower factor, row-major m×m
  std::vector<double> work;

  // The fine level itself (small volumes): the active voxels with a positive diagonal.
  explicit Coarsest(const FineView& v) {
    const Grid& g = v.grid();
    std::vector<index_t> unknown(static_cast<std::size_t>(g.count()), -1);
    std::vector<Cell> all;
    index_t carrying = 0;  // cells are visited in the order the carrying voxels are numbered
    for (index_t z = 0; z < g.n[2]; ++z)
      for (index_t y = 0; y < g.n[1]; ++y)
        for_row(g, y, z, -1, [&](const Cell& c) {
          if (!v.active(c)) return;
          const index_t k = carrying++;
          float D = v.electrode_low(c) + v.electrode_high(c);
          for (int j = 0; j < 6; ++j) D += v.coupling(c, j);
          if (D <= 0) return;
          unknown[c.i] = static_cast<index_t>(cells.size());
          cells.push_back(k);
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
    const Grid& g = C.grid;
    cells.resize(m);
    L.assign(m * m, 0.0);
    for (index_t z = 0; z < g.n[2]; ++z)
      for (index_t y = 0; y < g.n[1]; ++y)
        for_row(g, y, z, -1, [&](const Cell& c) {
          const CellCouplings cc(C, c);
          const auto ci = static_cast<std::size_t>(c.i);
          for (std::size_t p = C.cell_start[ci]; p < C.cell_start[ci + 1]; ++p) {
            cells[p] = static_cast<index_t>(p);
            double D = cc.electrode(static_cast<std::uint32_t>(p));
            for (auto e = C.row[p]; e < C.row[p + 1]; ++e) {
              D += cc.weight(e);
              L[p * m + cc.target(e)] -= cc.weight(e);
            }
            L[p * m + p] += D;
          }
        });
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
  if (coarse_.empty()) coarsest_ = std::make_unique<Coarsest>(FineView{fine});
  else coarsest_ = std::make_unique<Coarsest>(coarse_.back());
#if defined(__GLIBC__)
  // The set-up's scratch (the 4-byte piece patterns and parents before they were compacted, edge
  // lists, strongest couplings) was freed inside glibc's heap, where its pages stay resident under
  // the levels allocated after it; hand them back before the solve's vectors add to the peak
  // (8.5 MB of the SE phantom's 256³ solve).
  malloc_trim(0);
#endif
}

Multigrid::~Multigrid() = default;

// Gauss-Seidel sweeps on the fine level before the coarse correction (as many after, in reverse
// colour order, so the preconditioner stays symmetric). Piecewise-constant aggregates leave the
// fine level a rough correction; one sweep each way gave a CG reduction of ≈ 0.23 per iteration,
// two give ≈ 0.10 (TauFactor 500³ crops, docs/transport.md "Solver"), for two more fine sweeps
// per iteration: fewer CPU s at the same accuracy.
constexpr int kFineSweeps = 2;

void Multigrid::precondition(const float* r, float* z) {
  const auto n = static_cast<std::size_t>(fine_.carrying());
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1 << 16),
                    [&](const tbb::blocked_range<std::size_t>& rg) { std::fill(z + rg.begin(), z + rg.end(), 0.0f); });
  if (coarse_.empty()) coarsest_->solve(r, z);
  else cycle(0, r, z);
}

void Multigrid::cycle(int level, const float* b, float* x) {
  CoarseLevel& next = coarse_[static_cast<std::size_t>(level)];
  if (level == 0) {
    for (int s = 0; s < kFineSweeps; ++s) smooth_fine(fine_, b, x, true);
    restrict_fine(fine_, b, x, next);
    solve_coarse(level + 1);
    prolong_fine(fine_, next, x);
    for (int s = 0; s < kFineSweeps; ++s) smooth_fine(fine_, b, x, false);
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

void level_apply(const CoarseLevel& L, const float* x, float* y) {
  parallel_nodes(L, [&](std::uint32_t i, const CellCouplings& cc) {
    float S, D;
    node_stencil(L, cc, i, x, S, D);
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

}  // namespace vp::transport
