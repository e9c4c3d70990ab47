// Crack networks and their percolation over a volume cut into z-slabs, one per MPI rank
// (`mpirun -np N voxpress cracks VOLUME --crack-ids IDS`), merged exactly: the numbers equal
// measure_cracks' (metrics/cracks/measure.h) on the whole volume bit for bit.
//
// Network = cluster (connectivity 6 or 26) of crack ∪ void voxels; a crack belongs to the
// network of its first voxel in raster order, as in measure_cracks. Each rank labels its slab,
// the clusters are joined across slab faces (slab_clusters, union-find on rank 0, one entry per
// cluster); each rank then sends one entry per crack id it holds (voxels, first voxel, that
// voxel's network) and rank 0 adds the crack volumes per network in crack-id order, as one
// process does. Percolation per axis = slab_clusters' face reach of the same mask. Not merged
// here: the bottleneck diameter (a distance map across slab faces) and the shape metrics.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <mpi.h>

#include "core/z_slabs.h"

namespace vp {

struct CrackNetworkOptions {
  std::vector<int> host_labels;
  std::vector<int> void_labels;
  int connectivity = 26;  // 6, else 26 (as measure_cracks)
};

// The fields of CrackMeasurements (metrics/cracks/measure.h) of the same names.
struct CrackNetworks {
  std::int64_t crack_count = 0;  // distinct crack ids
  std::int64_t crack_voxels = 0;
  double host_volume_um3 = 0;  // host ∪ cracks
  double crack_volume_um3 = 0;
  double crack_volume_fraction = 0;
  int network_count = 0;
  double largest_network_fraction = 0;
  std::array<bool, 3> percolates{};                  // short_circuit[axis].percolates
  std::array<std::int64_t, 3> percolating_voxels{};  // short_circuit[axis].percolating_voxels
};

// labels, cracks: this rank's slab (layout.local() dims; crack ids 0 = none). Collective.
// Throws InputError when the slabs' dims differ from the layout.
CrackNetworks slab_crack_networks(const Volume<std::uint8_t>& labels, const Volume<std::uint32_t>& cracks,
                                  const CrackNetworkOptions& options, const ZSlabLayout& layout, MPI_Comm comm);

}  // namespace vp
