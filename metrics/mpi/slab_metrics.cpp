#include "metrics/mpi/slab_metrics.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "metrics/mpi/slab_clusters.h"
#include "metrics/phase_fractions.h"

namespace vp {

namespace {

// Sums int64 counts over the ranks (integers: the order of the sum cannot change the result).
template <std::size_t N>
void sum_over_ranks(std::array<std::int64_t, N>& counts, MPI_Comm comm) {
  MPI_Allreduce(MPI_IN_PLACE, counts.data(), static_cast<int>(N), MPI_INT64_T, MPI_SUM, comm);
}

void check_layout(const Volume<std::uint8_t>& slab, const ZSlabLayout& layout, MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  if (size != layout.ranks() || comm_rank(comm) != layout.rank)
    throw InputError("slab metrics: the z-slab layout is for " + std::to_string(layout.ranks()) +
                     " ranks, the communicator has " + std::to_string(size));
  if (!(slab.dims() == layout.local()))
    throw InputError("slab metrics: rank " + std::to_string(layout.rank) + " holds " + to_string(slab.dims()) +
                     " voxels, its slab is " + to_string(layout.local()));
}

}  // namespace

Volume<std::uint8_t> HaloSlab::owned() const {
  const Dims d = volume.dims();
  auto* first = const_cast<std::uint8_t*>(volume.data()) + below * d.x * d.y;
  Volume<std::uint8_t> v = Volume<std::uint8_t>::borrowing(first, {d.x, d.y, d.z - below - above}, volume.spacing_um);
  return v;
}

HaloSlab with_z_halo(const Volume<std::uint8_t>& slab, const ZSlabLayout& layout, MPI_Comm comm) {
  check_layout(slab, layout, comm);
  const int rank = layout.rank, size = layout.ranks();
  const Dims d = slab.dims();
  const index_t plane = d.x * d.y;
  if (plane > std::numeric_limits<int>::max()) throw ComputeError("slab metrics: a slice of more than 2^31 voxels");
  HaloSlab out;
  out.below = rank > 0 ? 1 : 0;
  out.above = rank + 1 < size ? 1 : 0;
  out.volume = slab.like<std::uint8_t>({d.x, d.y, d.z + out.below + out.above});
  std::copy(slab.data(), slab.data() + slab.size(), out.volume.data() + out.below * plane);
  const int up = out.above ? rank + 1 : MPI_PROC_NULL, down = out.below ? rank - 1 : MPI_PROC_NULL;
  std::uint8_t* ext = out.volume.data();
  // My last plane goes up (it is the plane below of the rank above), my first plane goes down.
  MPI_Sendrecv(slab.data() + (d.z - 1) * plane, static_cast<int>(plane), MPI_UINT8_T, up, 81, ext,
               static_cast<int>(plane), MPI_UINT8_T, down, 81, comm, MPI_STATUS_IGNORE);
  MPI_Sendrecv(slab.data(), static_cast<int>(plane), MPI_UINT8_T, down, 82, ext + (out.below + d.z) * plane,
               static_cast<int>(plane), MPI_UINT8_T, up, 82, comm, MPI_STATUS_IGNORE);
  out.halo_bytes = (out.below + out.above) * plane;
  return out;
}

std::array<index_t, 256> slab_count_labels(const Volume<std::uint8_t>& slab, MPI_Comm comm) {
  std::array<std::int64_t, 256> counts{};
  const auto local = count_labels(slab);
  std::copy(local.begin(), local.end(), counts.begin());
  sum_over_ranks(counts, comm);
  std::array<index_t, 256> out{};
  std::copy(counts.begin(), counts.end(), out.begin());
  return out;
}

InterfaceAreas slab_interface_areas(const HaloSlab& labels, const std::vector<int>& label_set,
                                    const ZSlabLayout& layout, MPI_Comm comm) {
  CroftonCrossings c = crofton_crossings(labels.volume, label_set, labels.below, labels.volume.dims().z - labels.above);
  if (c.counts.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw ComputeError("slab metrics: too many label pairs to merge");
  MPI_Allreduce(MPI_IN_PLACE, c.counts.data(), static_cast<int>(c.counts.size()), MPI_INT64_T, MPI_SUM, comm);
  return interface_areas(c, layout.global, labels.volume.spacing_um);
}

TriplePhaseBoundary slab_triple_phase_boundary(const HaloSlab& labels, int a, int b, int c, const ZSlabLayout& layout,
                                               MPI_Comm comm) {
  std::array<std::int64_t, 3> edges =
      triple_phase_edges(labels.volume, a, b, c, labels.below, labels.volume.dims().z - labels.above);
  sum_over_ranks(edges, comm);
  return triple_phase_boundary(edges, layout.global, labels.volume.spacing_um);
}

Topology slab_topology(const HaloSlab& mask, int connectivity, const ZSlabLayout& layout, MPI_Comm comm) {
  const Volume<std::uint8_t> owned = mask.owned();
  Topology t;
  SlabClusterOptions o;
  o.connectivity = connectivity;
  t.components = slab_clusters(owned, layout, o, comm).global_count;
  // Cavities: clusters of the complement (complementary connectivity) touching no face.
  {
    Volume<std::uint8_t> complement = owned.like<std::uint8_t>(owned.dims());
    for (index_t i = 0; i < owned.size(); ++i) complement[i] = owned[i] ? 0 : 1;
    SlabClusterOptions co;
    co.connectivity = connectivity == 6 ? 26 : 6;
    co.enclosed = true;
    t.cavities = slab_clusters(complement, layout, co, comm).enclosed;
  }
  const index_t nz = mask.volume.dims().z;
  std::array<std::int64_t, 1> chi = {euler_characteristic_planes(mask.volume, connectivity, mask.below, nz - mask.above,
                                                                 layout.z1() == layout.global.z)};
  sum_over_ranks(chi, comm);
  t.euler = chi[0];
  // As topology(): 18 is measured with the 26 complex, so β0 under 26 too.
  std::int64_t b0 = t.components;
  if (connectivity == 18) {
    SlabClusterOptions o26;
    o26.connectivity = 26;
    b0 = slab_clusters(owned, layout, o26, comm).global_count;
  }
  t.tunnels = b0 + t.cavities - t.euler;
  const Vec3 h = mask.volume.spacing_um;
  const double volume = static_cast<double>(layout.global.count()) * h[0] * h[1] * h[2];
  t.connectivity_density_per_um3 = volume > 0 ? static_cast<double>(t.tunnels) / volume : 0;
  return t;
}

Percolation slab_percolation(const Volume<std::uint8_t>& mask_slab, int axis, int connectivity,
                             const ZSlabLayout& layout, MPI_Comm comm) {
  SlabClusterOptions o;
  o.connectivity = connectivity;
  o.axis = axis;
  const SlabClusters c = slab_clusters(mask_slab, layout, o, comm);
  Percolation p;
  p.axis = axis;
  p.phase_voxels = c.phase_voxels;
  if (c.phase_voxels > 0) {
    const double n = static_cast<double>(c.phase_voxels);
    p.percolating_fraction = static_cast<double>(c.percolating) / n;
    p.dead_end_fraction = static_cast<double>(c.dead_end) / n;
    p.isolated_fraction = static_cast<double>(c.isolated) / n;
  }
  return p;
}

}  // namespace vp
