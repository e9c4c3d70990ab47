#include "metrics/cracks/skeleton.h"

#include <array>
#include <bit>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace vp {

namespace {

constexpr int kCentre = 13;

constexpr int bit_index(int dx, int dy, int dz) { return (dx + 1) + 3 * (dy + 1) + 9 * (dz + 1); }

// Adjacency inside the 3×3×3 cube: for each position, the bitmask of positions that are
// 26- (resp. 6-) neighbours of it, and the 18-neighbourhood of the centre.
struct CubeTables {
  std::array<std::uint32_t, 27> adj26{};
  std::array<std::uint32_t, 27> adj6{};
  std::uint32_t n18 = 0;        // positions with |dx|+|dy|+|dz| in 1..2
  std::uint32_t n6 = 0;         // the centre's 6-neighbours
  std::array<int, 256> phi8{};  // 8 × Euler contribution of one lattice vertex, by its 2×2×2 block

  CubeTables() {
    for (int i = 0; i < 27; ++i) {
      const int x = i % 3, y = i / 3 % 3, z = i / 9;
      for (int j = 0; j < 27; ++j) {
        if (j == i) continue;
        const int dx = std::abs(j % 3 - x), dy = std::abs(j / 3 % 3 - y), dz = std::abs(j / 9 - z);
        if (dx > 1 || dy > 1 || dz > 1) continue;
        adj26[i] |= 1u << j;
        if (dx + dy + dz == 1) adj6[i] |= 1u << j;
      }
      const int d = std::abs(x - 1) + std::abs(y - 1) + std::abs(z - 1);
      if (d >= 1 && d <= 2) n18 |= 1u << i;
      if (d == 1) n6 |= 1u << i;
    }
    // Block voxel (a, b, c) is bit a + 2b + 4c. At the shared vertex meet 8 cubes, 12 faces
    // (each shared by 2 cubes), 6 edges (each shared by 4) and the vertex; χ = Σ φ with
    // φ = v − e/2 + f/4 − c/8 (each edge has 2 vertices, each face 4, each cube 8).
    for (int cfg = 0; cfg < 256; ++cfg) {
      auto has = [&](int a, int b, int c) { return (cfg >> (a + 2 * b + 4 * c)) & 1; };
      int cubes = std::popcount(static_cast<unsigned>(cfg));
      int vertex = cfg != 0;
      int edges = 0, faces = 0;
      for (int s = 0; s < 2; ++s) {
        bool ex = false, ey = false, ez = false;
        for (int u = 0; u < 2; ++u)
          for (int v = 0; v < 2; ++v) {
            ex |= has(s, u, v);
            ey |= has(u, s, v);
            ez |= has(u, v, s);
          }
        edges += ex + ey + ez;
      }
      for (int u = 0; u < 2; ++u)
        for (int v = 0; v < 2; ++v) {
          faces += (has(0, u, v) | has(1, u, v));
          faces += (has(u, 0, v) | has(u, 1, v));
          faces += (has(u, v, 0) | has(u, v, 1));
        }
      phi8[cfg] = 8 * vertex - 4 * edges + 2 * faces - cubes;
    }
  }
};

const CubeTables& tables() {
  static const CubeTables t;
  return t;
}

// Number of connected components of `set` under the adjacency `adj`, counting only those
// that contain a position of `seeds`.
int count_components(std::uint32_t set, const std::array<std::uint32_t, 27>& adj, std::uint32_t seeds) {
  int count = 0;
  std::uint32_t left = set;
  while (left & seeds) {
    const int start = std::countr_zero(left & seeds);
    std::uint32_t component = 1u << start, frontier = component;
    while (frontier) {
      const int i = std::countr_zero(frontier);
      frontier &= frontier - 1;
      const std::uint32_t add = adj[i] & set & ~component;
      component |= add;
      frontier |= add;
    }
    left &= ~component;
    ++count;
  }
  return count;
}

// Zero-padded copy so that every object voxel has a full 3×3×3 neighbourhood in memory.
struct Padded {
  Dims dims;  // padded dims
  std::vector<std::uint8_t> v;
  std::array<index_t, 27> offset{};

  explicit Padded(const Volume<std::uint8_t>& mask) {
    const Dims d = mask.dims();
    dims = {d.x + 2, d.y + 2, d.z + 2};
    v.assign(static_cast<std::size_t>(dims.count()), 0);
    tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) v[at(x + 1, y + 1, z + 1)] = mask(x, y, z) != 0;
    });
    for (int i = 0; i < 27; ++i) offset[i] = (i % 3 - 1) + dims.x * ((i / 3 % 3 - 1) + dims.y * (i / 9 - 1));
  }
  std::size_t at(index_t x, index_t y, index_t z) const {
    return static_cast<std::size_t>(x + dims.x * (y + dims.y * z));
  }
  std::uint32_t neighbourhood(std::size_t i) const {
    std::uint32_t n = 0;
    for (int k = 0; k < 27; ++k)
      if (v[i + offset[k]]) n |= 1u << k;
    return n;
  }
};

}  // namespace

bool is_simple_point(std::uint32_t neighbours) {
  const CubeTables& t = tables();
  const std::uint32_t object = neighbours & ~(1u << kCentre) & ((1u << 27) - 1);
  if (count_components(object, t.adj26, object) != 1) return false;
  const std::uint32_t background = ~neighbours & t.n18;
  return count_components(background, t.adj6, t.n6) == 1;
}

int euler_change_on_removal(std::uint32_t neighbours) {
  const CubeTables& t = tables();
  int before = 0, after = 0;
  // The 2×2×2 block of the octant (sx, sy, sz) holds the voxels at offsets (a·sx, b·sy, c·sz).
  for (int sz = -1; sz <= 1; sz += 2)
    for (int sy = -1; sy <= 1; sy += 2)
      for (int sx = -1; sx <= 1; sx += 2) {
        int cfg = 0;
        for (int c = 0; c < 2; ++c)
          for (int b = 0; b < 2; ++b)
            for (int a = 0; a < 2; ++a)
              if ((neighbours >> bit_index(a * sx, b * sy, c * sz)) & 1) cfg |= 1 << (a + 2 * b + 4 * c);
        before += t.phi8[cfg];
        after += t.phi8[cfg & ~1];  // the centre voxel is block voxel (0, 0, 0)
      }
  return (after - before) / 8;
}

Volume<std::uint8_t> skeletonize(const Volume<std::uint8_t>& mask) {
  Padded p(mask);
  const Dims pd = p.dims;
  // Border directions in LKC order: the 6-neighbour that must be background.
  const std::array<index_t, 6> border = {-1, 1, -pd.x, pd.x, -pd.x * pd.y, pd.x * pd.y};

  // Collect the deletable border voxels of one direction, slab by slab in parallel; the
  // slabs are concatenated in z order, so the candidate list is the raster order whatever
  // the thread count.
  auto collect = [&](index_t step) {
    std::vector<std::vector<std::size_t>> per_z(static_cast<std::size_t>(pd.z));
    tbb::parallel_for(tbb::blocked_range<index_t>(1, pd.z - 1), [&](const tbb::blocked_range<index_t>& r) {
      for (index_t z = r.begin(); z < r.end(); ++z) {
        auto& out = per_z[static_cast<std::size_t>(z)];
        for (index_t y = 1; y < pd.y - 1; ++y)
          for (index_t x = 1; x < pd.x - 1; ++x) {
            const std::size_t i = p.at(x, y, z);
            if (!p.v[i] || p.v[i + step]) continue;
            const std::uint32_t n = p.neighbourhood(i);
            if (std::popcount(n) == 2) continue;  // a line end point stays
            if (euler_change_on_removal(n) != 0) continue;
            if (!is_simple_point(n)) continue;
            out.push_back(i);
          }
      }
    });
    std::vector<std::size_t> all;
    for (auto& v : per_z) all.insert(all.end(), v.begin(), v.end());
    return all;
  };

  for (int unchanged = 0; unchanged < 6;) {
    unchanged = 0;
    for (index_t step : border) {
      bool changed = false;
      // Deleting one candidate can make the next one non-simple: re-check in order.
      for (std::size_t i : collect(step)) {
        if (is_simple_point(p.neighbourhood(i))) {
          p.v[i] = 0;
          changed = true;
        }
      }
      if (!changed) ++unchanged;
    }
  }

  Volume<std::uint8_t> out = mask.like<std::uint8_t>(mask.dims());
  const Dims d = mask.dims();
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) out(x, y, z) = p.v[p.at(x + 1, y + 1, z + 1)];
  });
  return out;
}

}  // namespace vp
