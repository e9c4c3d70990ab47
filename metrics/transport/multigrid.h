// Internal to the transport solve: the matrix-free finite-volume operator on the voxel
// grid and its geometric multigrid preconditioner. Not a public header of vp_transport.
// Design and measurements: docs/transport.md, section Solver.
//
// Discretisation (DEVELOPERS.md): cell-centred finite volumes; the conductance of the face
// between voxels i and j along axis a is G = k_f·A_a/h_a with k_f = 2 k_i k_j/(k_i + k_j)
// (0 when either is 0) and A_a the face area; a voxel on an inlet/outlet face couples to the
// Dirichlet plane on that face through G_b = 2 k A_a/h_a (half a voxel away).
//
// Multigrid: connectivity-aware aggregation. Each coarse level is built on the cells of a
// 2×2×2 agglomeration of the level above (an axis of one cell, or whose cells are 1.5× longer
// than the shortest, is not coarsened: Grid::halves), but a coarse
// cell is split into the pieces of it that are connected (by strong couplings) inside the
// cell: each piece is one coarse unknown (a "node"; cells without conducting voxels have
// none). Prolongation is piecewise constant per piece, restriction its transpose, and coarse
// conductances by averaging: the coupling of two nodes is ½ × the sum of the fine couplings
// between their pieces (likewise the electrode couplings), i.e. the Galerkin operator PᵀAP
// scaled by ½, which equals the re-discretised operator for a uniform medium and keeps every
// fine connection, so every coarse operator stays non-singular.
// Smoother: Gauss-Seidel, red-black over the cells (three colours when a periodic axis has
// odd length) — the nodes of one cell are never coupled and couplings join face-adjacent
// cells only, so the cells' colouring separates coupled nodes — forward colours before the
// coarse correction and reverse colours after. Below the fine level each level is solved by
// a K-cycle (Notay & Vassilevski 2008): two Krylov steps preconditioned by the level's
// V-step. The coarsest level (≤ 512 nodes, or a single cell) is solved exactly by dense
// Cholesky.
//
// Files, one job each:
//   multigrid_grid.h       walking the structured cells of a level (rows, colours, parents);
//   fine_operator.h/.cpp   the fine level: conductance look-ups, boundary conditions, smoother,
//                          transfer to/from the first coarse level, A x, true residual, currents
//                          (a new boundary condition touches this file);
//   aggregation.h/.cpp     building the coarse levels (strong-coupling pieces, Galerkin sums);
//   multigrid.cpp          the cycle: coarse smoother and transfers, K-cycle, coarsest solve.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "core/volume.h"

namespace vp::transport {

// Allocator that default-initialises (leaves trivial values unwritten): the solver's
// voxel-sized vectors are each written once in parallel by the threads that use them, so a
// value-initialising std::vector would zero-fill and first-touch gigabytes serially for nothing.
template <class T>
struct NoInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInitAllocator<U>;
  };
  NoInitAllocator() = default;
  template <class U>
  NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// A voxel-sized vector whose entries are unwritten until the solver writes them.
template <class T>
using VoxelVector = std::vector<T, NoInitAllocator<T>>;

// Shape of one multigrid level and its colouring.
struct Grid {
  std::array<index_t, 3> n{1, 1, 1};
  std::array<bool, 3> wrap{false, false, false};  // periodic side axes with more than one cell
  int axis = 2;                                   // transport axis
  int colours = 2;
  std::array<std::vector<std::uint8_t>, 3> colour_term;  // colour = Σ colour_term[a][coord_a] mod colours

  // Size of a cell along each axis (µm; only the ratios matter). Anisotropic voxels make the
  // couplings along the long axis weak (G ∝ 1/h²), which a point smoother cannot follow, so
  // the coarsening halves only the axes whose cells are not much longer than the shortest
  // (semi-coarsening, halves()) until the coarse cells are about as long on every axis.
  std::array<double, 3> cell{1, 1, 1};

  Grid() = default;
  Grid(std::array<index_t, 3> n, int axis, bool periodic_sides, std::array<double, 3> cell = {1, 1, 1});
  index_t count() const { return n[0] * n[1] * n[2]; }
  index_t rows() const { return n[1] * n[2]; }
  // Whether the next coarser level halves axis a: more than one cell, and a cell shorter than
  // 1.5 × the shortest cell among the axes with more than one cell (always true for cubic voxels).
  bool halves(int a) const { return halve[static_cast<std::size_t>(a)]; }
  Grid coarsened() const;  // ceil(n/2) on every axis it halves(), the others kept

 private:
  std::array<bool, 3> halve{false, false, false};
};

// The fine level's per-voxel code (0 = no current): one byte per voxel, or one bit where the
// volume has a single conductivity (code 1 or 0): 0.125 B instead of 1 B per voxel, which at
// 256³ is 14.7 MB of the solve's peak. code[i] reads either; the fine row kernels unpack a
// row's bits into bytes first (code_rows, fine_operator.cpp).
struct CodeVolume {
  const std::uint8_t* bytes = nullptr;
  const std::uint64_t* bits = nullptr;  // voxel i is bit i % 64 of word i / 64
  int operator[](index_t i) const { return bits ? static_cast<int>(bits[i >> 6] >> (i & 63) & 1u) : bytes[i]; }

  // f(x) for each x in [0, n) whose voxel first + x carries current (code ≠ 0), in increasing x:
  // a volume of bits is read a word at a time, skipping the words without current (the
  // voxel-by-voxel operator[] costs a shift and a branch per voxel on whole-grid walks).
  template <class F>
  void for_each_carrying(index_t first, index_t n, F&& f) const {
    if (!bits) {
      for (index_t x = 0; x < n; ++x)
        if (bytes[first + x]) f(x);
      return;
    }
    for_each_bit_word(first, n, [&](index_t p, std::uint64_t word) {
      for (; word; word &= word - 1) f(p - first + std::countr_zero(word));
    });
  }
  // Number of voxels in [first, first + n) that carry current.
  index_t count_carrying(index_t first, index_t n) const {
    index_t count = 0;
    if (!bits) {
      for (index_t x = 0; x < n; ++x) count += bytes[first + x] != 0;
      return count;
    }
    for_each_bit_word(first, n, [&](index_t, std::uint64_t word) { count += std::popcount(word); });
    return count;
  }

 private:
  // g(p, word) over [first, first + n) of the bit volume, one piece per 64-bit word: word holds the
  // bits of voxels p, p + 1, … (bit 0 = voxel p), those past the range cleared.
  template <class G>
  void for_each_bit_word(index_t first, index_t n, G&& g) const {
    for (index_t p = first, end = first + n; p < end;) {
      const index_t limit = std::min(end, (p | 63) + 1);  // the end of p's word, or of the range
      std::uint64_t word = bits[p >> 6] >> (p & 63);
      if (limit - p < 64) word &= (std::uint64_t{1} << (limit - p)) - 1;
      g(p, word);
      p = limit;
    }
  }
};

// The fine level: conductances come from a per-voxel code (0 = no current) and small tables.
// The solver's vectors hold only the voxels that carry current (code ≠ 0), numbered row by
// row in memory order: the voxel at x of row (y, z) is row_start[y + n_y z] plus the number of
// carrying voxels before x in its row (the code volume is the mask, the row starts its rank
// counts, 8 B per row). Below percolation most of the image carries nothing, and the double
// potential and three float CG vectors (20 B) are then stored for that part only.
struct FineLevel {
  Grid grid;
  CodeVolume code;
  std::vector<index_t> row_start;  // grid.rows()+1: first carrying voxel of each row; back() = their count
  index_t carrying() const { return row_start.back(); }
  int codes = 1;                           // number of codes incl. 0
  std::array<std::vector<float>, 3> face;  // [a][ci * codes + cj]: face conductance along a
  std::vector<float> dirichlet;            // [c]: coupling of a boundary voxel to its electrode
  std::vector<std::uint8_t> no_code;       // grid.n[0] zeros: stands in for a missing neighbour row
  // The same tables in double: the true residual and the currents use these, so that
  // rounding the conductances to float never reaches σ_eff.
  std::array<std::vector<double>, 3> face_exact;
  std::vector<double> dirichlet_exact;
};

// A coarse level: an aggregate graph. Its nodes are the connected pieces of the structured
// cells of `grid` (2×2×2 agglomerates of the level above): the voxels / nodes of one cell that
// are connected inside it form one node, so a cell holding two pieces that meet only outside
// it has two nodes, and a cell without conducting voxels has none. Nodes are numbered cell by
// cell; couplings (both directions, CSR) join nodes of face-adjacent cells only.
struct CoarseLevel {
  Grid grid;
  std::vector<std::uint32_t> cell_start;  // grid.count()+1: the nodes of cell c are [cell_start[c], cell_start[c+1])
  // First coarse level only: the piece of child dx+2dy+4dz of each cell in bits 4k..4k+3 (0xF: no
  // current). Few patterns occur (one conductivity: at most one per occupancy of the 8 children),
  // so where there are ≤ 256 a byte per cell indexes pattern_value (1 B instead of 4 B per cell),
  // where there are ≤ 65 536 (several conductivities) 2 bytes do; else pattern holds them.
  std::vector<std::uint8_t> pattern_code;
  std::vector<std::uint16_t> pattern_wide_code;
  std::vector<std::uint32_t> pattern_value, pattern;
  std::uint32_t pattern_of(std::size_t cell) const {
    if (!pattern_code.empty()) return pattern_value[pattern_code[cell]];
    return pattern_wide_code.empty() ? pattern[cell] : pattern_value[pattern_wide_code[cell]];
  }
  std::vector<std::uint32_t> row;  // couplings of node i: [row[i], row[i+1]), read through CellCouplings
  // The coupled node. Couplings join nodes of the same or of face-adjacent cells, so on a level
  // whose cells hold ≤ kLinkPieces nodes each (always on the first, ≤ 8) one byte names it: the
  // direction of its cell (k of Cell::nb, kSameCell for the node's own cell) in bits 5–7 and its
  // piece in that cell in bits 0–4 (link: 1 B instead of the 4-byte node index col, kept elsewhere).
  std::vector<std::uint8_t> link;
  std::vector<std::uint32_t> col;
  // The coupling's conductance: a byte indexing weight_value where the level has ≤ 256 distinct
  // values (few phases: sums of a few face conductances), else the value itself (weight).
  std::vector<std::uint8_t> weight_code;
  std::vector<float> weight_value, weight;
  static constexpr std::uint32_t kLinkPieces = 32;
  static constexpr int kSameCell = 6;
  // Coupling to the electrodes (inlet + outlet), held only for the nodes of the cells on the two
  // electrode planes (the others have none; 4 B per node saved): node i of such a cell c is
  // electrode[electrode_first[electrode_slot(c)] + i − cell_start[c]]; read through CellCouplings.
  std::vector<float> electrode;
  std::vector<std::uint32_t> electrode_first;
  // Slot of the cell at `at` among the cells of the inlet plane then the outlet plane, −1 off them.
  index_t electrode_slot(const std::array<index_t, 3>& at) const {
    const int a = grid.axis, u = (a + 1) % 3, w = (a + 2) % 3;
    const index_t in_plane = at[u] + grid.n[u] * at[w];
    if (at[a] == 0) return in_plane;
    if (at[a] == grid.n[a] - 1) return grid.n[u] * grid.n[w] + in_plane;
    return -1;
  }
  // The node of the next coarser level holding each node (both empty on the last level): where
  // the coarser level's cells hold ≤ 256 nodes each, its piece in that cell (1 B instead of 4 B
  // per node; the node is the cell's cell_start plus it), else the node itself. Read through
  // parent_node (multigrid_grid.h).
  std::vector<std::uint8_t> parent_piece;
  std::vector<std::uint32_t> parent;
  std::vector<float> x, b;   // correction and right-hand side of this level
  std::vector<float> c2, w;  // K-cycle work vectors (c₁ is built in x, r₁ in b)
  std::size_t nodes() const { return cell_start.back(); }
};

class Multigrid {
 public:
  // `fine` must outlive the Multigrid. Levels are built until ≤ coarsest_cells nodes remain.
  explicit Multigrid(const FineLevel& fine, index_t coarsest_cells = 512);
  ~Multigrid();

  // z = M⁻¹ r: one symmetric V-cycle from z = 0. r and z hold the carrying voxels.
  void precondition(const float* r, float* z);

  // y = A x on the fine level (homogeneous: electrodes at 0).
  void apply(const float* x, float* y) const;

  int levels() const { return static_cast<int>(coarse_.size()) + 1; }

 private:
  struct Coarsest;
  void cycle(int level, const float* b, float* x);
  void solve_coarse(int level);

  const FineLevel& fine_;
  std::vector<CoarseLevel> coarse_;
  std::unique_ptr<Coarsest> coarsest_;
};

// Numbers the carrying voxels: fills fine.row_start from fine.code.
void number_carrying_voxels(FineLevel& fine);

// Number of carrying voxels before voxel i (index in the whole grid, i ≤ grid.count()).
index_t carrying_before(const FineLevel& fine, index_t i);

// Index among the carrying voxels of voxel (x, y, z), or -1 where it carries no current.
index_t carrying_index(const FineLevel& fine, index_t x, index_t y, index_t z);

// Indices among the carrying voxels (-1: none) of the plane at coordinate t of axis a, laid
// out [w · n_b + u] with u the coordinate along b = (a+1) mod 3 and w along d = (a+2) mod 3:
// the order in which the plane sums of the solve add their voxels.
std::vector<index_t> plane_indices(const FineLevel& fine, int a, index_t t);

// Residual of the full problem (inlet at potential 1, outlet at 0) in double precision:
// r = b − A x, written as float (x and r hold the carrying voxels, as every vector below); returns Σ r² (double) and Σ
// b² via b_norm2.
double true_residual(const FineLevel& fine, const double* x, float* r, double* b_norm2);

// Currents into the inlet face and out of the outlet face (double, fixed-order sums).
struct FaceCurrents {
  double in = 0, out = 0;
};
FaceCurrents electrode_currents(const FineLevel& fine, const double* x);

// Current through each plane perpendicular to the axis: N+1 values, plane 0 = inlet face,
// plane N = outlet face, plane t between slices t−1 and t.
std::vector<double> plane_currents(const FineLevel& fine, const double* x);

// |j| at voxel centres: per axis the mean of the current densities through the voxel's two
// faces (electrode faces included), then the Euclidean norm; 0 where no current flows.
// spacing: voxel size, so that face areas are known. out covers the whole grid.
void current_density(const FineLevel& fine, const double* x, const std::array<double, 3>& spacing, float* out);

}  // namespace vp::transport
