#include "metrics/connectivity.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <functional>

#include <tbb/blocked_range.h>
#include <tbb/combinable.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "metrics/face_connectivity.h"

namespace vp {
namespace {

constexpr std::uint32_t kNone = 0xFFFFFFFFu;

void check_connectivity(int c) {
  if (c != 6 && c != 18 && c != 26) throw InputError("connectivity " + std::to_string(c) + ": expected 6, 18 or 26");
}

// Neighbours already visited in raster order (z, then y, then x), within the connectivity.
std::vector<std::array<int, 3>> backward_neighbours(int connectivity) {
  std::vector<std::array<int, 3>> out;
  const int max_l1 = connectivity == 6 ? 1 : connectivity == 18 ? 2 : 3;
  for (int dz = -1; dz <= 0; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        bool backward = dz < 0 || (dy < 0) || (dy == 0 && dx < 0);
        if (dz == 0 && dy > 0) backward = false;
        if (!backward || std::abs(dx) + std::abs(dy) + std::abs(dz) > max_l1) continue;
        out.push_back({dx, dy, dz});
      }
  return out;
}

std::uint32_t find_root(std::uint32_t* parent, std::uint32_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

// The smaller index becomes the root, so roots are first voxels in raster order.
void unite(std::uint32_t* parent, std::uint32_t a, std::uint32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a == b) return;
  if (a < b) parent[b] = a;
  else parent[a] = b;
}

// Overwrites the union-find links (each pointing to a smaller index, roots to themselves) with
// cluster ids 1..count in raster order of the roots, and counts each cluster's voxels, in
// parallel over blocks of `block` voxels: (1) per block, in ascending order, each link is
// shortened to its root when the chain stays in the block, else to the chain's first voxel
// below it (reads and writes stay in the block), and the block's roots are listed; (2) the links
// that leave the block are followed to their roots (a voxel read there by another block holds
// its old or its shortened link, both on the same chain: relaxed atomics); (3) the roots take
// ids block by block after a prefix sum of the blocks' root counts; (4) every other voxel takes
// its root's id. The same ids as one ascending pass, at any thread count.
void number_clusters(const std::uint8_t* m, index_t n, index_t block, std::uint32_t* ids, Clusters& out) {
  const index_t blocks = (n + block - 1) / block;
  std::vector<std::vector<std::uint32_t>> roots(static_cast<std::size_t>(blocks));
  auto each_block = [&](auto&& f) {
    tbb::parallel_for(index_t{0}, blocks, [&](index_t b) { f(b, b * block, std::min(n, (b + 1) * block)); });
  };
  each_block([&](index_t b, index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      if (!m[i]) {
        ids[i] = 0;
        continue;
      }
      const std::uint32_t p = ids[i];
      if (p == static_cast<std::uint32_t>(i)) roots[static_cast<std::size_t>(b)].push_back(p);
      else if (p >= lo) ids[i] = ids[p];
    }
  });
  each_block([&](index_t, index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      if (!m[i] || ids[i] >= lo) continue;
      std::uint32_t r = ids[i];
      for (std::uint32_t up; (up = std::atomic_ref<std::uint32_t>(ids[r]).load(std::memory_order_relaxed)) != r;)
        r = up;
      std::atomic_ref<std::uint32_t>(ids[i]).store(r, std::memory_order_relaxed);
    }
  });
  std::vector<std::uint32_t> first_id(static_cast<std::size_t>(blocks) + 1, 1);
  for (std::size_t b = 0; b < roots.size(); ++b)
    first_id[b + 1] = first_id[b] + static_cast<std::uint32_t>(roots[b].size());
  out.count = first_id.back() - 1;
  std::vector<std::atomic<std::int64_t>> voxels(static_cast<std::size_t>(out.count) + 1);
  each_block([&](index_t b, index_t, index_t) {
    const auto& r = roots[static_cast<std::size_t>(b)];
    for (std::size_t k = 0; k < r.size(); ++k)
      ids[r[k]] = first_id[static_cast<std::size_t>(b)] + static_cast<std::uint32_t>(k);
  });
  each_block([&](index_t b, index_t lo, index_t hi) {
    const auto& r = roots[static_cast<std::size_t>(b)];
    std::size_t next_root = 0;
    std::uint32_t run_id = 0;  // voxels counted in runs of one id: one atomic add per run
    std::int64_t run = 0;
    for (index_t i = lo; i < hi; ++i) {
      if (!m[i]) continue;
      if (next_root < r.size() && r[next_root] == static_cast<std::uint32_t>(i)) ++next_root;
      else ids[i] = ids[ids[i]];
      if (ids[i] != run_id) {
        if (run) voxels[run_id].fetch_add(run, std::memory_order_relaxed);
        run_id = ids[i], run = 0;
      }
      ++run;
    }
    if (run) voxels[run_id].fetch_add(run, std::memory_order_relaxed);
  });
  out.voxels.assign(static_cast<std::size_t>(out.count) + 1, 0);
  for (std::size_t c = 1; c < voxels.size(); ++c) out.voxels[c] = voxels[c].load(std::memory_order_relaxed);
}

}  // namespace

const std::vector<Offset>& neighbour_offsets(int connectivity) {
  check_connectivity(connectivity);
  static const auto make = [](int max_l1) {
    std::vector<Offset> o;
    for (int dz = -1; dz <= 1; ++dz)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int l1 = std::abs(dx) + std::abs(dy) + std::abs(dz);
          if (l1 > 0 && l1 <= max_l1) o.push_back({dx, dy, dz});
        }
    return o;
  };
  // 6 keeps its own order (x, y, z pairs): the watershed breaks ties in neighbour order.
  static const std::vector<Offset> six = {{-1, 0, 0}, {1, 0, 0}, {0, -1, 0}, {0, 1, 0}, {0, 0, -1}, {0, 0, 1}};
  static const std::vector<Offset> eighteen = make(2), all = make(3);
  return connectivity == 6 ? six : connectivity == 18 ? eighteen : all;
}

Clusters label_clusters(const Volume<std::uint8_t>& mask, int connectivity) {
  check_connectivity(connectivity);
  const Dims d = mask.dims();
  if (d.count() >= static_cast<index_t>(kNone))
    throw InputError("volume " + to_string(d) + " too large for 32-bit cluster ids");
  Clusters out;
  out.voxels.assign(1, 0);
  if (mask.empty()) {
    out.ids = mask.like<std::uint32_t>(d, 0);
    return out;
  }
  const auto nbrs = backward_neighbours(connectivity);
  // The union-find links live in the ids' own buffer (4 B per voxel, not 8), which the final
  // pass overwrites with the cluster ids.
  out.ids = mask.like<std::uint32_t>(d, kNone);
  std::uint32_t* parent = out.ids.data();
  const std::uint8_t* m = mask.data();

  // Union-find inside z-slabs in parallel, then across the slab boundaries.
  const index_t slab = std::max<index_t>(1, (d.z + 15) / 16);
  auto link = [&](index_t x, index_t y, index_t z, index_t zmin) {
    const index_t i = mask.index(x, y, z);
    for (const auto& o : nbrs) {
      index_t nx = x + o[0], ny = y + o[1], nz = z + o[2];
      if (nx < 0 || ny < 0 || nz < zmin || nx >= d.x || ny >= d.y) continue;
      index_t j = mask.index(nx, ny, nz);
      if (m[j]) unite(parent, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j));
    }
  };
  tbb::parallel_for(tbb::blocked_range<index_t>(0, (d.z + slab - 1) / slab), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t s = r.begin(); s != r.end(); ++s) {
      const index_t z0 = s * slab, z1 = std::min(d.z, z0 + slab);
      for (index_t z = z0; z < z1; ++z)
        for (index_t y = 0; y < d.y; ++y)
          for (index_t x = 0; x < d.x; ++x) {
            index_t i = mask.index(x, y, z);
            if (!m[i]) continue;
            parent[i] = static_cast<std::uint32_t>(i);
            link(x, y, z, z0);
          }
    }
  });
  for (index_t z0 = slab; z0 < d.z; z0 += slab)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x)
        if (m[mask.index(x, y, z0)]) link(x, y, z0, z0 - 1);

  number_clusters(m, d.count(), slab * d.x * d.y, parent, out);
  return out;
}

namespace {

// χ of the complex on voxel centres (6-connectivity).
std::int64_t euler_centres(const Volume<std::uint8_t>& mask, index_t z_begin, index_t z_end) {
  const Dims d = mask.dims();
  auto in = [&](index_t x, index_t y, index_t z) -> int {
    return x < d.x && y < d.y && z < d.z && mask(x, y, z) ? 1 : 0;
  };
  tbb::combinable<std::int64_t> chi(0);
  z_begin = std::max<index_t>(z_begin, 0);
  z_end = std::min(z_end, d.z);
  if (z_begin >= z_end) return 0;
  tbb::parallel_for(tbb::blocked_range<index_t>(z_begin, z_end), [&](const tbb::blocked_range<index_t>& r) {
    std::int64_t& c = chi.local();
    for (index_t z = r.begin(); z != r.end(); ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          if (!in(x, y, z)) continue;
          // Cells whose lowest corner is this voxel.
          int px = in(x + 1, y, z), py = in(x, y + 1, z), pz = in(x, y, z + 1);
          int pxy = in(x + 1, y + 1, z), pxz = in(x + 1, y, z + 1), pyz = in(x, y + 1, z + 1),
              pxyz = in(x + 1, y + 1, z + 1);
          std::int64_t edges = px + py + pz;
          std::int64_t faces = (px & py & pxy) + (px & pz & pxz) + (py & pz & pyz);
          std::int64_t cubes = px & py & pz & pxy & pxz & pyz & pxyz;
          c += 1 - edges + faces - cubes;
        }
  });
  return chi.combine(std::plus<>());
}

// χ of the union of closed voxel cubes (26-connectivity).
std::int64_t euler_cubes(const Volume<std::uint8_t>& mask, index_t k_begin, index_t k_end) {
  const Dims d = mask.dims();
  auto in = [&](index_t x, index_t y, index_t z) -> bool {
    return x >= 0 && y >= 0 && z >= 0 && x < d.x && y < d.y && z < d.z && mask(x, y, z);
  };
  tbb::combinable<std::int64_t> chi(0);
  // Lattice point (i, j, k) is the corner shared by voxels (i-1..i, j-1..j, k-1..k); the cells
  // listed at it: the vertex, the edges from it along +x/+y/+z, the faces spanned by pairs of
  // those directions, and the cube (voxel (i, j, k)).
  k_begin = std::max<index_t>(k_begin, 0);
  k_end = std::min(k_end, d.z + 1);
  if (k_begin >= k_end) return 0;
  tbb::parallel_for(tbb::blocked_range<index_t>(k_begin, k_end), [&](const tbb::blocked_range<index_t>& r) {
    std::int64_t& c = chi.local();
    for (index_t k = r.begin(); k != r.end(); ++k)
      for (index_t j = 0; j <= d.y; ++j)
        for (index_t i = 0; i <= d.x; ++i) {
          bool vertex = false;
          for (int a = 0; a < 8 && !vertex; ++a) vertex = in(i - (a & 1), j - ((a >> 1) & 1), k - ((a >> 2) & 1));
          if (!vertex) continue;
          // Edge along x from (i,j,k): voxels (i, j-1..j, k-1..k).
          bool ex = in(i, j, k) || in(i, j - 1, k) || in(i, j, k - 1) || in(i, j - 1, k - 1);
          bool ey = in(i, j, k) || in(i - 1, j, k) || in(i, j, k - 1) || in(i - 1, j, k - 1);
          bool ez = in(i, j, k) || in(i - 1, j, k) || in(i, j - 1, k) || in(i - 1, j - 1, k);
          // Face in the xy plane at height k: voxels (i, j, k-1..k); xz: (i, j-1..j, k); yz: (i-1..i, j, k).
          bool fxy = in(i, j, k) || in(i, j, k - 1);
          bool fxz = in(i, j, k) || in(i, j - 1, k);
          bool fyz = in(i, j, k) || in(i - 1, j, k);
          bool cube = in(i, j, k);
          c += 1 - (ex + ey + ez) + (fxy + fxz + fyz) - cube;
        }
  });
  return chi.combine(std::plus<>());
}

}  // namespace

std::int64_t euler_characteristic(const Volume<std::uint8_t>& mask, int connectivity) {
  check_connectivity(connectivity);
  if (mask.empty()) return 0;
  return connectivity == 6 ? euler_centres(mask, 0, mask.dims().z) : euler_cubes(mask, 0, mask.dims().z + 1);
}

std::int64_t euler_characteristic_planes(const Volume<std::uint8_t>& mask, int connectivity, index_t z_begin,
                                         index_t z_end, bool top) {
  check_connectivity(connectivity);
  if (mask.empty()) return 0;
  if (connectivity == 6) return euler_centres(mask, z_begin, z_end);
  return euler_cubes(mask, z_begin, top ? z_end + 1 : z_end);
}

Topology topology(const Volume<std::uint8_t>& mask, int connectivity) {
  check_connectivity(connectivity);
  Topology t;
  const Dims d = mask.dims();
  t.components = label_clusters(mask, connectivity).count;
  Volume<std::uint8_t> complement = mask.like<std::uint8_t>(d);
  for (index_t i = 0; i < mask.size(); ++i) complement[i] = mask[i] ? 0 : 1;
  Clusters holes = label_clusters(complement, connectivity == 6 ? 26 : 6);
  std::vector<char> open(static_cast<std::size_t>(holes.count) + 1, 0);
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x)
        if (x == 0 || y == 0 || z == 0 || x == d.x - 1 || y == d.y - 1 || z == d.z - 1) open[holes.ids(x, y, z)] = 1;
  for (std::uint32_t id = 1; id <= holes.count; ++id)
    if (!open[id]) ++t.cavities;
  t.euler = euler_characteristic(mask, connectivity);
  // 18 is measured with the 26 complex: take β0 under 26 too so that β1 = β0 + β2 − χ is that
  // complex's (the complement is 6-connected in both cases).
  const std::int64_t b0 = connectivity == 18 ? label_clusters(mask, 26).count : t.components;
  t.tunnels = b0 + t.cavities - t.euler;
  const Vec3 h = mask.spacing_um;
  double volume = static_cast<double>(d.count()) * h[0] * h[1] * h[2];
  t.connectivity_density_per_um3 = volume > 0 ? static_cast<double>(t.tunnels) / volume : 0;
  return t;
}

Percolation percolation(const Volume<std::uint8_t>& mask, int axis, int connectivity) {
  check_connectivity(connectivity);
  FaceConnectivityOptions o;
  o.axis = axis;
  o.connectivity = connectivity;
  FaceReach r = face_reachability(mask, o);
  Percolation p;
  p.axis = axis;
  p.phase_voxels = r.phase_voxels;
  if (r.phase_voxels > 0) {
    double n = static_cast<double>(r.phase_voxels);
    p.percolating_fraction = static_cast<double>(r.percolating) / n;
    p.dead_end_fraction = static_cast<double>(r.dead_end) / n;
    p.isolated_fraction = static_cast<double>(r.isolated) / n;
  }
  return p;
}

}  // namespace vp
