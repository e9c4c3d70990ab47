#include "metrics/transport/aggregation.h"

#include <algorithm>
#include <array>
#include <bit>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "metrics/transport/fine_operator.h"

namespace vp::transport::detail {
namespace {

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

using Edge = std::pair<std::uint32_t, double>;  // neighbour node, summed conductance

// Per-thread scratch of the edge gathering: one edge list and electrode coupling per piece.
// add() sums the couplings to one target in the order they come, which is the order the
// former sort-then-merge (a stable sort by target) added them in: the same sums, bit for bit,
// without sorting every raw coupling (a heap buffer per sort) and with shorter lists.
struct Scratch {
  std::vector<std::vector<Edge>> edges;  // per piece: its targets in first-seen order, summed
  std::vector<std::unordered_map<std::uint32_t, std::uint32_t>> where;  // target → entry, long lists only
  std::vector<double> electrode;
  static constexpr std::size_t kShortList = 32;  // searched linearly up to this many targets
  void reset(std::size_t pieces) {
    if (edges.size() < pieces) edges.resize(pieces), where.resize(pieces);
    for (std::size_t p = 0; p < pieces; ++p) {
      edges[p].clear();
      if (!where[p].empty()) where[p].clear();
    }
    electrode.assign(pieces, 0.0);
  }
  // Adds a coupling of conductance w from piece p to node t.
  void add(std::size_t p, std::uint32_t t, double w) {
    auto& e = edges[p];
    if (e.size() < kShortList) {
      for (auto& [u, sum] : e)
        if (u == t) {
          sum += w;
          return;
        }
      e.emplace_back(t, w);
      if (e.size() == kShortList)
        for (std::uint32_t k = 0; k < kShortList; ++k) where[p].emplace(e[k].first, k);
      return;
    }
    const auto [it, fresh] = where[p].try_emplace(t, static_cast<std::uint32_t>(e.size()));
    if (fresh) e.emplace_back(t, w);
    else e[it->second].second += w;
  }
  // Piece p's couplings by increasing target (the targets are distinct: any sort is deterministic).
  const std::vector<Edge>& merged(std::size_t p) {
    auto& e = edges[p];
    for (std::size_t i = 1; i < e.size(); ++i)  // insertion sort: the lists are short
      for (std::size_t j = i; j > 0 && e[j - 1].first > e[j].first; --j) std::swap(e[j - 1], e[j]);
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

// The link byte (CoarseLevel::link) of a coupling from a node of cell c to node t.
std::uint8_t link_to(const CoarseLevel& C, const Cell& c, std::uint32_t t) {
  for (int k = CoarseLevel::kSameCell; k >= 0; --k) {
    const index_t cell = k == CoarseLevel::kSameCell ? c.i : c.nb[static_cast<std::size_t>(k)];
    if (cell < 0) continue;
    const std::uint32_t first = C.cell_start[static_cast<std::size_t>(cell)];
    if (t >= first && t < C.cell_start[static_cast<std::size_t>(cell) + 1])
      return static_cast<std::uint8_t>(k << 5 | static_cast<int>(t - first));
  }
  throw std::logic_error("transport: a coarse coupling joins cells that are not face neighbours");
}

bool pieces_fit_links(const CoarseLevel& C) {
  for (std::size_t c = 0; c + 1 < C.cell_start.size(); ++c)
    if (C.cell_start[c + 1] - C.cell_start[c] > CoarseLevel::kLinkPieces) return false;
  return true;
}

// One code (a byte, or 2 bytes) per entry of v indexing `values` (its distinct entries, compared as
// bit patterns: every decoded value is the same float), or false where v holds more distinct values
// than a Code can index.
template <class Code, class T>
bool compact_values(const std::vector<T>& v, std::vector<Code>& code, std::vector<T>& values) {
  constexpr std::size_t kMaxValues = std::size_t{1} << (8 * sizeof(Code));
  constexpr std::uint32_t kSlots = 4 * kMaxValues;  // open addressing, 4× the values it may hold
  constexpr int kHashShift = 32 - std::countr_zero(kSlots);
  std::vector<std::uint32_t> key(kSlots);
  std::vector<std::int32_t> slot(kSlots, -1);
  values.clear();
  code.resize(v.size());
  for (std::size_t e = 0; e < v.size(); ++e) {
    const auto bits = std::bit_cast<std::uint32_t>(v[e]);
    std::uint32_t h = (bits * 2654435761u) >> kHashShift;
    while (slot[h] >= 0 && key[h] != bits) h = (h + 1) & (kSlots - 1);
    if (slot[h] < 0) {
      if (values.size() == kMaxValues) return false;
      key[h] = bits, slot[h] = static_cast<std::int32_t>(values.size());
      values.push_back(v[e]);
    }
    code[e] = static_cast<Code>(slot[h]);
  }
  return true;
}

// Replaces C.weight by one byte per coupling indexing C.weight_value where the level has at most
// 256 distinct conductances.
void compact_weights(CoarseLevel& C) {
  std::vector<std::uint8_t> code;
  std::vector<float> values;
  if (!compact_values(C.weight, code, values)) return;  // many phases: keep the floats
  C.weight_code = std::move(code);
  C.weight_value = std::move(values);
  std::vector<float>().swap(C.weight);
}

// Replaces C.pattern by a byte (≤ 256 patterns) or 2 bytes (≤ 65 536: two conductivities at
// 256³) per cell indexing C.pattern_value.
void compact_patterns(CoarseLevel& C) {
  std::vector<std::uint32_t> values;
  if (std::vector<std::uint8_t> code; compact_values(C.pattern, code, values)) {
    C.pattern_code = std::move(code);
  } else if (std::vector<std::uint16_t> wide; compact_values(C.pattern, wide, values)) {
    C.pattern_wide_code = std::move(wide);
  } else {
    return;
  }
  C.pattern_value = std::move(values);
  std::vector<std::uint32_t>().swap(C.pattern);
}

// Sizes C.electrode for the nodes of the cells on the two electrode planes, numbered slot by slot
// (CoarseLevel::electrode_slot), and sets C.electrode_first.
void number_electrode_nodes(CoarseLevel& C) {
  const Grid& g = C.grid;
  const int a = g.axis, u = (a + 1) % 3, w = (a + 2) % 3;
  const index_t plane = g.n[u] * g.n[w];
  C.electrode_first.assign(static_cast<std::size_t>(2 * plane), 0);
  std::uint32_t count = 0;
  for (index_t side = 0; side < 2; ++side) {
    std::array<index_t, 3> at{};
    at[a] = side == 0 ? 0 : g.n[a] - 1;
    if (side == 1 && at[a] == 0) break;  // one cell thick: the inlet plane's slots hold both
    for (at[w] = 0; at[w] < g.n[w]; ++at[w])
      for (at[u] = 0; at[u] < g.n[u]; ++at[u]) {
        const auto ci = static_cast<std::size_t>(cell_index(g, at[0], at[1], at[2]));
        C.electrode_first[static_cast<std::size_t>(C.electrode_slot(at))] = count;
        count += C.cell_start[ci + 1] - C.cell_start[ci];
      }
  }
  C.electrode.assign(count, 0.0f);
}

// Builds C's adjacency from gather(scratch, X, Y, Z): gather fills scratch for the pieces of
// cell (X, Y, Z) with the fine couplings leaving each piece (Galerkin sums) and its electrode
// couplings; the coarse conductances are ½ × those sums (exact for a uniform medium).
template <class Gather>
void build_edges(CoarseLevel& C, Gather&& gather) {
  constexpr double kScale = 0.5;  // PᵀAP is twice the re-discretised operator
  const Grid& g = C.grid;
  const std::size_t m = C.cell_start.back();
  const bool linked = pieces_fit_links(C);
  C.row.assign(m + 1, 0);
  number_electrode_nodes(C);
  for (int pass = 0; pass < 2; ++pass) {
    parallel_rows(g, [&](index_t Y, index_t Z) {
      Scratch s;
      const Row r = row_of(g, Y, Z);
      Cell cell;
      cell.at = {0, Y, Z};
      for (index_t X = 0; X < g.n[0]; ++X) {
        const auto ci = static_cast<std::size_t>(cell_index(g, X, Y, Z));
        const std::uint32_t first = C.cell_start[ci], pieces = C.cell_start[ci + 1] - first;
        if (pieces == 0) continue;
        s.reset(pieces);
        gather(s, X, Y, Z);
        if (pass == 1) fill_cell(g, r, X, cell);
        for (std::uint32_t p = 0; p < pieces; ++p) {
          const auto& e = s.merged(p);
          const std::uint32_t node = first + p;
          if (pass == 0) {
            C.row[node + 1] = static_cast<std::uint32_t>(e.size());
            const index_t slot = C.electrode_slot({X, Y, Z});
            if (slot >= 0)
              C.electrode[C.electrode_first[static_cast<std::size_t>(slot)] + p] =
                  static_cast<float>(kScale * s.electrode[p]);
            else if (s.electrode[p] != 0)
              throw std::logic_error("transport: an electrode coupling off the electrode planes");
          } else {
            std::uint32_t at = C.row[node];
            for (const auto& [t, w] : e) {
              if (linked) C.link[at] = link_to(C, cell, t);
              else C.col[at] = t;
              C.weight[at++] = static_cast<float>(kScale * w);
            }
          }
        }
      }
    });
    if (pass == 0) {
      prefix_sum(C.row);
      if (linked) C.link.assign(C.row.back(), 0);
      else C.col.assign(C.row.back(), 0);
      C.weight.assign(C.row.back(), 0.0f);
    }
  }
  compact_weights(C);
  for (auto* w : {&C.x, &C.b, &C.c2, &C.w}) w->assign(m, 0.0f);
}

}  // namespace

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
  compact_patterns(C);
  build_edges(C, [&](Scratch& s, index_t X, index_t Y, index_t Z) {
    const auto [x0, x1] = child_range(f, 0, X);
    const auto [y0, y1] = child_range(f, 1, Y);
    const auto [z0, z1] = child_range(f, 2, Z);
    const auto ci = static_cast<std::size_t>(cell_index(g, X, Y, Z));
    const std::uint32_t pieces = C.pattern_of(ci);
    for (index_t z = z0; z <= z1; ++z)
      for (index_t y = y0; y <= y1; ++y)
        for (index_t x = x0; x <= x1; ++x) {
          const int child = static_cast<int>((x - x0) + 2 * (y - y0) + 4 * (z - z0));
          const int p = child_piece(pieces, child);
          if (p == static_cast<int>(kNoPiece)) continue;  // the voxel carries no current
          const Cell c = cell_at(f, x, y, z);
          const std::uint32_t node = C.cell_start[ci] + static_cast<std::uint32_t>(p);
          for (int k = 0; k < 6; ++k) {
            // A neighbour in this coarse cell adds nothing where it carries no current or lies in
            // the same piece (t = node): the pattern says so without reading the code volume.
            const int a = k >> 1, bit = child >> a & 1;
            if (f.halves(a) && ((k & 1) ? bit == 0 && (a == 0 ? x < x1 : a == 1 ? y < y1 : z < z1) : bit == 1)) {
              const int q = child_piece(pieces, child ^ 1 << a);
              if (q == static_cast<int>(kNoPiece) || q == p) continue;
            }
            const index_t j = c.nb[k];
            if (j < 0 || !v.active_at(j)) continue;
            const float w = v.coupling(c, k);
            if (w == 0) continue;
            const std::array<index_t, 3> q = neighbour_at(f, c, k);
            const std::uint32_t t = fine_parent(f, C, q[0], q[1], q[2]);
            if (t != node) s.add(static_cast<std::size_t>(p), t, static_cast<double>(w));
          }
          s.electrode[static_cast<std::size_t>(p)] += static_cast<double>(v.electrode_low(c)) + v.electrode_high(c);
        }
  });
  return C;
}

namespace {

// Keeps S's parents (the nodes of C) as pieces of their cells where C's cells hold ≤ 256 nodes.
void store_parents(CoarseLevel& S, const CoarseLevel& C, std::vector<std::uint32_t> parent) {
  std::vector<std::uint8_t>().swap(S.parent_piece);
  std::vector<std::uint32_t>().swap(S.parent);
  const Grid& g = C.grid;
  for (std::size_t c = 0; c + 1 < C.cell_start.size(); ++c)
    if (C.cell_start[c + 1] - C.cell_start[c] > 256) {
      S.parent = std::move(parent);
      return;
    }
  S.parent_piece.resize(parent.size());
  parallel_rows(g, [&](index_t Y, index_t Z) {
    for (index_t X = 0; X < g.n[0]; ++X) {
      const std::uint32_t first = C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z))];
      for_child_nodes(S, X, Y, Z, [&](std::uint32_t i, const Cell&) {
        S.parent_piece[i] = static_cast<std::uint8_t>(parent[i] - first);
      });
    }
  });
}

}  // namespace

// Next coarse level from a coarse level: the nodes of each 2×2×2 group of cells, split into
// the pieces connected inside the group. Sets S's parents.
CoarseLevel coarsen_graph(CoarseLevel& S, bool by_strength) {
  CoarseLevel C;
  C.grid = S.grid.coarsened();
  const Grid& g = C.grid;
  const auto cells = static_cast<std::size_t>(g.count());
  C.cell_start.assign(cells + 1, 0);
  std::vector<std::uint32_t> parent(S.nodes(), 0);  // S's parents while C is built
  auto find = [](std::vector<int>& uf, int a) {
    while (uf[a] != a) a = uf[a] = uf[uf[a]];
    return a;
  };
  // Strongest coupling of each node: with by_strength, a coupling joins two nodes into one
  // piece only if it is strong.
  std::vector<float> strongest(S.nodes(), 0.0f);
  if (by_strength)
    parallel_rows(S.grid, [&](index_t Y, index_t Z) {
      for_row(S.grid, Y, Z, -1, [&](const Cell& c) {
        const CellCouplings couplings(S, c);
        for (std::uint32_t i = S.cell_start[static_cast<std::size_t>(c.i)];
             i < S.cell_start[static_cast<std::size_t>(c.i) + 1]; ++i)
          for (std::uint32_t e = S.row[i]; e < S.row[i + 1]; ++e)
            strongest[i] = std::max(strongest[i], couplings.weight(e));
      });
    });
  parallel_rows(g, [&](index_t Y, index_t Z) {
    std::vector<std::uint32_t> items;
    std::vector<int> uf, label;
    for (index_t X = 0; X < g.n[0]; ++X) {
      items.clear();
      for_child_nodes(S, X, Y, Z, [&](std::uint32_t i, const Cell&) { items.push_back(i); });
      const int m = static_cast<int>(items.size());
      uf.resize(static_cast<std::size_t>(m));
      for (int a = 0; a < m; ++a) uf[a] = a;
      int a = 0;
      for_child_nodes(S, X, Y, Z, [&](std::uint32_t i, const Cell& c) {
        const CellCouplings couplings(S, c);
        for (std::uint32_t e = S.row[i]; e < S.row[i + 1]; ++e) {
          const float w = couplings.weight(e);
          const std::uint32_t t = couplings.target(e);
          if (w == 0) continue;
          if (by_strength && w < kStrong * std::max(strongest[i], strongest[t])) continue;
          const auto it = std::lower_bound(items.begin(), items.end(), t);
          if (it == items.end() || *it != t) continue;
          const int ra = find(uf, a), rb = find(uf, static_cast<int>(it - items.begin()));
          if (ra != rb) uf[std::max(ra, rb)] = std::min(ra, rb);
        }
        ++a;
      });
      label.assign(static_cast<std::size_t>(m), -1);
      std::uint32_t pieces = 0;
      for (int a = 0; a < m; ++a) {
        const int r = find(uf, a);
        if (label[r] < 0) label[r] = static_cast<int>(pieces++);
        parent[items[a]] = static_cast<std::uint32_t>(label[r]);
      }
      C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z)) + 1] = pieces;
    }
  });
  prefix_sum(C.cell_start);
  parallel_rows(g, [&](index_t Y, index_t Z) {
    for (index_t X = 0; X < g.n[0]; ++X) {
      const std::uint32_t first = C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z))];
      for_child_nodes(S, X, Y, Z, [&](std::uint32_t i, const Cell&) { parent[i] += first; });
    }
  });
  build_edges(C, [&](Scratch& s, index_t X, index_t Y, index_t Z) {
    const std::uint32_t first = C.cell_start[static_cast<std::size_t>(cell_index(g, X, Y, Z))];
    for_child_nodes(S, X, Y, Z, [&](std::uint32_t i, const Cell& c) {
      const CellCouplings couplings(S, c);
      const std::uint32_t node = parent[i];
      for (std::uint32_t e = S.row[i]; e < S.row[i + 1]; ++e) {
        const std::uint32_t t = parent[couplings.target(e)];
        if (t != node) s.add(node - first, t, static_cast<double>(couplings.weight(e)));
      }
      s.electrode[node - first] += couplings.electrode(i);
    });
  });
  store_parents(S, C, std::move(parent));
  return C;
}

}  // namespace vp::transport::detail
