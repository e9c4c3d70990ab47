#include "metrics/mpi/slab_clusters.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace vp {

namespace {

// Counts and displacements of an MPI_Gatherv, refused beyond int (MPI's count type).
std::vector<int> displacements(const std::vector<int>& counts) {
  std::vector<int> d(counts.size(), 0);
  std::int64_t at = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (at > std::numeric_limits<int>::max())
      throw ComputeError("slab clusters: more than 2^31 entries to merge on rank 0");
    d[i] = static_cast<int>(at);
    at += counts[i];
  }
  return d;
}

std::int64_t find_root(std::vector<std::int64_t>& parent, std::int64_t i) {
  while (parent[static_cast<std::size_t>(i)] != i) {
    parent[static_cast<std::size_t>(i)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(i)])];
    i = parent[static_cast<std::size_t>(i)];
  }
  return i;
}

}  // namespace

SlabClusters slab_clusters(const Volume<std::uint8_t>& mask, const ZSlabLayout& layout,
                           const SlabClusterOptions& options, MPI_Comm comm) {
  const int rank = comm_rank(comm), size = comm_size(comm);
  if (size != layout.ranks() || rank != layout.rank)
    throw InputError("slab clusters: the z-slab layout is for " + std::to_string(layout.ranks()) +
                     " ranks, the communicator has " + std::to_string(size));
  if (!(mask.dims() == layout.local()))
    throw InputError("slab clusters: rank " + std::to_string(rank) + " holds " + to_string(mask.dims()) +
                     " voxels, its slab is " + to_string(layout.local()));
  if (options.periodic && options.connectivity != 6)
    throw InputError("slab clusters: periodic sides need connectivity 6");
  if (options.axis < -1 || options.axis > 2) throw InputError("slab clusters: axis must be -1, 0, 1 or 2");

  SlabClusters out;
  out.local = label_clusters(mask, options.connectivity);
  const Volume<std::uint32_t>& ids = out.local.ids;
  const std::int64_t n = out.local.count;
  const index_t nx = mask.dims().x, ny = mask.dims().y, nz = mask.dims().z;
  const int axis = options.axis;

  // Which faces of the whole volume each local cluster touches.
  std::vector<std::uint8_t> flags(static_cast<std::size_t>(n) + 1, 0);
  auto mark = [&](index_t x, index_t y, index_t z, std::uint8_t bit) {
    if (const std::uint32_t id = ids(x, y, z)) flags[id] |= bit;
  };
  if (axis == 2) {
    for (index_t y = 0; y < ny; ++y)
      for (index_t x = 0; x < nx; ++x) {
        if (layout.z0() == 0) mark(x, y, 0, SlabClusters::kLow);
        if (layout.z1() == layout.global.z) mark(x, y, nz - 1, SlabClusters::kHigh);
      }
  } else if (axis >= 0) {
    const index_t last = axis == 0 ? nx - 1 : ny - 1;
    for (index_t z = 0; z < nz; ++z)
      for (index_t u = 0; u < (axis == 0 ? ny : nx); ++u) {
        if (axis == 0) mark(0, u, z, SlabClusters::kLow), mark(last, u, z, SlabClusters::kHigh);
        else mark(u, 0, z, SlabClusters::kLow), mark(u, last, z, SlabClusters::kHigh);
      }
  }

  if (options.enclosed)
    for (index_t z = 0; z < nz; ++z) {
      const bool face_z = (z == 0 && layout.z0() == 0) || (z == nz - 1 && layout.z1() == layout.global.z);
      for (index_t y = 0; y < ny; ++y)
        for (index_t x = 0; x < nx; ++x)
          if (face_z || x == 0 || y == 0 || x == nx - 1 || y == ny - 1) mark(x, y, z, SlabClusters::kBorder);
    }

  std::int64_t offset = 0;
  MPI_Exscan(&n, &offset, 1, MPI_INT64_T, MPI_SUM, comm);
  if (rank == 0) offset = 0;
  auto gid = [&](std::uint32_t id) { return offset + static_cast<std::int64_t>(id) - 1; };

  // Joins (global ids) through periodic sides inside the slab and through the slab's upper face.
  std::vector<std::pair<std::int64_t, std::int64_t>> joins;
  auto join = [&](std::uint32_t a, std::int64_t b) {
    if (a && b >= 0) joins.emplace_back(gid(a), b);
  };
  const bool wrap_x = options.periodic && axis != 0 && nx > 1;
  const bool wrap_y = options.periodic && axis != 1 && ny > 1;
  const bool wrap_z = options.periodic && axis != 2 && layout.global.z > 1;
  for (index_t z = 0; z < nz; ++z) {
    if (wrap_x)
      for (index_t y = 0; y < ny; ++y)
        if (const std::uint32_t b = ids(nx - 1, y, z)) join(ids(0, y, z), gid(b));
    if (wrap_y)
      for (index_t x = 0; x < nx; ++x)
        if (const std::uint32_t b = ids(x, ny - 1, z)) join(ids(x, 0, z), gid(b));
  }
  // Each rank sends its first slice (global ids, −1 outside) to the rank below and matches its
  // last slice against the first slice of the rank above (rank 0 above the last when z wraps).
  const index_t plane = nx * ny;
  std::vector<std::int64_t> first(static_cast<std::size_t>(plane), -1), above(static_cast<std::size_t>(plane), -1);
  for (index_t i = 0; i < plane; ++i)
    if (const std::uint32_t id = ids[i]) first[static_cast<std::size_t>(i)] = gid(id);
  const int up = rank + 1 < size ? rank + 1 : (wrap_z ? 0 : MPI_PROC_NULL);
  const int down = rank > 0 ? rank - 1 : (wrap_z ? size - 1 : MPI_PROC_NULL);
  if (plane > std::numeric_limits<int>::max()) throw ComputeError("slab clusters: a slice of more than 2^31 voxels");
  MPI_Sendrecv(first.data(), static_cast<int>(plane), MPI_INT64_T, down, 71, above.data(), static_cast<int>(plane),
               MPI_INT64_T, up, 71, comm, MPI_STATUS_IGNORE);
  if (up != MPI_PROC_NULL) {
    std::vector<Offset> forward;
    for (const Offset& o : neighbour_offsets(options.connectivity))
      if (o.dz == 1) forward.push_back(o);
    for (index_t y = 0; y < ny; ++y)
      for (index_t x = 0; x < nx; ++x) {
        const std::uint32_t a = ids(x, y, nz - 1);
        if (!a) continue;
        for (const Offset& o : forward) {
          const index_t x2 = x + o.dx, y2 = y + o.dy;
          if (x2 < 0 || y2 < 0 || x2 >= nx || y2 >= ny) continue;
          join(a, above[static_cast<std::size_t>(x2 + y2 * nx)]);
        }
      }
  }
  std::sort(joins.begin(), joins.end());
  joins.erase(std::unique(joins.begin(), joins.end()), joins.end());

  // Rank 0 merges: one entry per cluster of the whole volume.
  if (n > std::numeric_limits<int>::max() ||
      static_cast<std::int64_t>(joins.size()) * 2 > std::numeric_limits<int>::max())
    throw ComputeError("slab clusters: more than 2^31 clusters or joins on one rank");
  const int my_n = static_cast<int>(n), my_joins = static_cast<int>(joins.size() * 2);
  std::vector<int> counts(static_cast<std::size_t>(size)), join_counts(static_cast<std::size_t>(size));
  MPI_Gather(&my_n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
  MPI_Gather(&my_joins, 1, MPI_INT, join_counts.data(), 1, MPI_INT, 0, comm);
  std::vector<int> displ, join_displ;
  std::int64_t total = 0, total_joins = 0;
  if (rank == 0) {
    displ = displacements(counts);
    join_displ = displacements(join_counts);
    for (int c : counts) total += c;
    for (int c : join_counts) total_joins += c;
  }
  std::vector<std::uint8_t> all_flags(static_cast<std::size_t>(total));
  MPI_Gatherv(flags.data() + 1, my_n, MPI_UINT8_T, all_flags.data(), counts.data(), displ.data(), MPI_UINT8_T, 0, comm);
  std::vector<std::int64_t> flat;
  flat.reserve(joins.size() * 2);
  for (const auto& [a, b] : joins) flat.push_back(a), flat.push_back(b);
  std::vector<std::int64_t> all_joins(static_cast<std::size_t>(total_joins));
  MPI_Gatherv(flat.data(), my_joins, MPI_INT64_T, all_joins.data(), join_counts.data(), join_displ.data(), MPI_INT64_T,
              0, comm);
  std::int64_t global_count = 0, enclosed = 0;
  std::vector<std::int64_t> all_roots;  // rank 0: per global id, its root (the smallest id of its cluster)
  if (rank == 0) {
    std::vector<std::int64_t> parent(static_cast<std::size_t>(total));
    std::iota(parent.begin(), parent.end(), std::int64_t{0});
    for (std::size_t j = 0; j + 1 < all_joins.size(); j += 2) {
      const std::int64_t a = find_root(parent, all_joins[j]), b = find_root(parent, all_joins[j + 1]);
      if (a != b) parent[static_cast<std::size_t>(std::max(a, b))] = std::min(a, b);
    }
    for (std::int64_t i = 0; i < total; ++i) {
      const std::int64_t r = find_root(parent, i);
      if (r == i) ++global_count;
      all_flags[static_cast<std::size_t>(r)] |= all_flags[static_cast<std::size_t>(i)];
    }
    for (std::int64_t i = 0; i < total; ++i)
      if (find_root(parent, i) == i && !(all_flags[static_cast<std::size_t>(i)] & SlabClusters::kBorder)) ++enclosed;
    for (std::int64_t i = 0; i < total; ++i)
      all_flags[static_cast<std::size_t>(i)] =
          all_flags[static_cast<std::size_t>(find_root(parent, i))] & (SlabClusters::kLow | SlabClusters::kHigh);
    if (options.roots)
      for (std::int64_t i = 0; i < total; ++i) parent[static_cast<std::size_t>(i)] = find_root(parent, i);
    all_roots = std::move(parent);
  }
  MPI_Bcast(&global_count, 1, MPI_INT64_T, 0, comm);
  MPI_Bcast(&enclosed, 1, MPI_INT64_T, 0, comm);
  out.enclosed = options.enclosed ? enclosed : 0;
  out.global_count = global_count;
  out.reach.assign(static_cast<std::size_t>(n) + 1, 0);
  MPI_Scatterv(all_flags.data(), counts.data(), displ.data(), MPI_UINT8_T, out.reach.data() + 1, my_n, MPI_UINT8_T, 0,
               comm);
  if (options.roots) {
    out.root.assign(static_cast<std::size_t>(n) + 1, -1);
    MPI_Scatterv(all_roots.data(), counts.data(), displ.data(), MPI_INT64_T, out.root.data() + 1, my_n, MPI_INT64_T, 0,
                 comm);
  }

  std::int64_t sums[4] = {0, 0, 0, 0};  // phase, percolating, dead end, isolated
  for (std::int64_t id = 1; id <= n; ++id) {
    const std::int64_t v = out.local.voxels[static_cast<std::size_t>(id)];
    const std::uint8_t r = out.reach[static_cast<std::size_t>(id)];
    sums[0] += v;
    if (axis < 0) continue;
    sums[r == (SlabClusters::kLow | SlabClusters::kHigh) ? 1 : r ? 2 : 3] += v;
  }
  MPI_Allreduce(MPI_IN_PLACE, sums, 4, MPI_INT64_T, MPI_SUM, comm);
  out.phase_voxels = sums[0];
  out.percolating = sums[1];
  out.dead_end = sums[2];
  out.isolated = sums[3];
  return out;
}

}  // namespace vp
