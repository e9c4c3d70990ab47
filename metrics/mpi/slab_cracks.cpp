#include "metrics/mpi/slab_cracks.h"

#include <algorithm>
#include <limits>
#include <map>

#include "core/error.h"
#include "metrics/mpi/slab_clusters.h"

namespace vp {

namespace {

// One crack id as one rank (or, after the merge, the whole volume) holds it.
struct CrackPart {
  std::int64_t voxels = 0;
  std::int64_t first = -1;    // raster index (whole volume) of its first voxel
  std::int64_t network = -1;  // that voxel's network (slab_clusters root)
};

std::array<bool, 256> label_set(const std::vector<int>& labels) {
  std::array<bool, 256> in{};
  for (int l : labels)
    if (l >= 0 && l < 256) in[static_cast<std::size_t>(l)] = true;
  return in;
}

// Rank 0 gets every rank's flat int64 array, in rank order.
std::vector<std::int64_t> gather_to_root(const std::vector<std::int64_t>& mine, MPI_Comm comm) {
  const int size = comm_size(comm), rank = comm_rank(comm);
  if (mine.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw ComputeError("slab cracks: more than 2^31 crack entries on one rank");
  const int n = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(size)), displ(static_cast<std::size_t>(size), 0);
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
  std::int64_t total = 0;
  if (rank == 0)
    for (int r = 0; r < size; ++r) {
      if (total > std::numeric_limits<int>::max()) throw ComputeError("slab cracks: more than 2^31 crack entries");
      displ[static_cast<std::size_t>(r)] = static_cast<int>(total);
      total += counts[static_cast<std::size_t>(r)];
    }
  std::vector<std::int64_t> all(static_cast<std::size_t>(total));
  MPI_Gatherv(mine.data(), n, MPI_INT64_T, all.data(), counts.data(), displ.data(), MPI_INT64_T, 0, comm);
  return all;
}

}  // namespace

CrackNetworks slab_crack_networks(const Volume<std::uint8_t>& labels, const Volume<std::uint32_t>& cracks,
                                  const CrackNetworkOptions& o, const ZSlabLayout& layout, MPI_Comm comm) {
  if (!(labels.dims() == layout.local()) || !(cracks.dims() == layout.local()))
    throw InputError("slab cracks: rank " + std::to_string(layout.rank) + " holds labels " + to_string(labels.dims()) +
                     " and crack ids " + to_string(cracks.dims()) + ", its slab is " + to_string(layout.local()));
  const int conn = o.connectivity == 6 ? 6 : 26;
  const std::array<bool, 256> host = label_set(o.host_labels), pore = label_set(o.void_labels);
  const Vec3 h = labels.spacing_um;
  const double voxel_um3 = h[0] * h[1] * h[2];

  // The network mask and the integer counts of measure_cracks.
  Volume<std::uint8_t> network = labels.like<std::uint8_t>(labels.dims());
  std::array<std::int64_t, 2> counts{0, 0};  // crack voxels, host voxels that are no crack
  for (index_t i = 0; i < labels.size(); ++i) {
    const bool crack = cracks[i] != 0;
    network[i] = crack || pore[labels[i]];
    counts[0] += crack;
    counts[1] += host[labels[i]] && !crack;
  }
  MPI_Allreduce(MPI_IN_PLACE, counts.data(), 2, MPI_INT64_T, MPI_SUM, comm);
  CrackNetworks out;
  out.crack_voxels = counts[0];
  out.host_volume_um3 = static_cast<double>(counts[1] + counts[0]) * voxel_um3;
  out.crack_volume_um3 = static_cast<double>(counts[0]) * voxel_um3;
  out.crack_volume_fraction = out.host_volume_um3 > 0 ? out.crack_volume_um3 / out.host_volume_um3 : 0;

  SlabClusterOptions net_options;
  net_options.connectivity = conn;
  net_options.roots = true;
  const SlabClusters nets = slab_clusters(network, layout, net_options, comm);

  // Per crack id of this slab: voxels, first voxel, its network. Raster order inside the slab is
  // raster order of the whole volume, so the first one seen is this slab's first.
  std::map<std::uint32_t, CrackPart> parts;
  const index_t base = layout.z0() * layout.global.x * layout.global.y;
  for (index_t i = 0; i < cracks.size(); ++i) {
    const std::uint32_t id = cracks[i];
    if (!id) continue;
    CrackPart& p = parts[id];
    if (p.voxels++ == 0) {
      p.first = base + i;
      p.network = nets.root[nets.local.ids[i]];
    }
  }
  std::vector<std::int64_t> flat;
  flat.reserve(parts.size() * 4);
  for (const auto& [id, p] : parts)
    flat.insert(flat.end(), {static_cast<std::int64_t>(id), p.voxels, p.first, p.network});
  const std::vector<std::int64_t> all = gather_to_root(flat, comm);

  std::int64_t ints[2] = {0, 0};  // crack count, network count
  double largest = 0;
  if (comm_rank(comm) == 0) {
    std::map<std::uint32_t, CrackPart> whole;
    for (std::size_t k = 0; k + 3 < all.size(); k += 4) {
      CrackPart& w = whole[static_cast<std::uint32_t>(all[k])];
      w.voxels += all[k + 1];
      if (w.first < 0 || all[k + 2] < w.first) w.first = all[k + 2], w.network = all[k + 3];
    }
    // As measure_cracks: per network the crack volumes added in crack-id order, then the largest.
    std::map<std::int64_t, double> crack_volume_of_net;
    for (const auto& [id, w] : whole) crack_volume_of_net[w.network] += static_cast<double>(w.voxels) * voxel_um3;
    for (const auto& [net, vol] : crack_volume_of_net) largest = std::max(largest, vol);
    ints[0] = static_cast<std::int64_t>(whole.size());
    ints[1] = static_cast<std::int64_t>(crack_volume_of_net.size());
  }
  MPI_Bcast(ints, 2, MPI_INT64_T, 0, comm);
  MPI_Bcast(&largest, 1, MPI_DOUBLE, 0, comm);
  out.crack_count = ints[0];
  out.network_count = static_cast<int>(ints[1]);
  out.largest_network_fraction = out.crack_volume_um3 > 0 ? largest / out.crack_volume_um3 : 0;

  for (int axis = 0; axis < 3; ++axis) {
    SlabClusterOptions po;
    po.connectivity = conn;
    po.axis = axis;
    const SlabClusters reach = slab_clusters(network, layout, po, comm);
    out.percolating_voxels[static_cast<std::size_t>(axis)] = reach.percolating;
    out.percolates[static_cast<std::size_t>(axis)] = reach.percolating > 0;
  }
  return out;
}

}  // namespace vp
