// Clusters of a phase over a volume cut into z-slabs, one per MPI rank, with exact merges
// across slab faces. Each rank labels its slab (label_clusters, metrics/connectivity.h); the
// clusters that meet through a slab face (the last slice of rank r and the first of r + 1, and
// through the wrap of periodic sides) are joined by union-find on rank 0, which holds one entry
// per cluster (never voxels) and sends every rank the merged answer for its own clusters.
// The counts are integers, so every fraction made from them is bit-identical to one process.
#pragma once

#include <cstdint>
#include <vector>

#include <mpi.h>

#include "core/z_slabs.h"
#include "metrics/connectivity.h"

namespace vp {

// This process's rank and the number of ranks of a communicator.
inline int comm_rank(MPI_Comm comm) {
  int r = 0;
  MPI_Comm_rank(comm, &r);
  return r;
}
inline int comm_size(MPI_Comm comm) {
  int s = 1;
  MPI_Comm_size(comm, &s);
  return s;
}

struct SlabClusterOptions {
  int connectivity = 6;   // 6, 18 or 26
  int axis = -1;          // face reachability along this axis (0..2); -1: none
  bool periodic = false;  // the side faces (the axes other than `axis`) wrap; connectivity 6 only
  bool enclosed = false;  // also count the clusters that touch no face of the volume (cavities)
  bool roots = false;     // also return each local cluster's whole-volume cluster (SlabClusters::root)
};

struct SlabClusters {
  Clusters local;                   // this slab's labelling (ids 1..local.count)
  std::vector<std::uint8_t> reach;  // per local id: bit 0 reaches the low face, bit 1 the high face
  std::int64_t global_count = 0;    // clusters of the whole volume
  // Whole-volume voxel counts (same on every rank) of the phase and of the voxels connected to
  // both faces / exactly one / neither (the last three only with an axis).
  std::int64_t phase_voxels = 0, percolating = 0, dead_end = 0, isolated = 0;
  std::int64_t enclosed = 0;  // clusters touching no face of the volume (options.enclosed)
  // Per local id (options.roots): the whole-volume cluster it belongs to, named by the smallest
  // global id (rank offset + local id − 1) of its parts, so the same on every rank that holds it.
  std::vector<std::int64_t> root;

  static constexpr std::uint8_t kLow = 1, kHigh = 2;
  static constexpr std::uint8_t kBorder = 4;  // merge-time only: touches a face of the volume
  bool percolates(std::uint32_t id) const { return id && reach[id] == (kLow | kHigh); }
};

// mask_slab: this rank's slab (layout.local() dims), nonzero = in the phase. Collective over comm.
// Throws InputError on a bad connectivity or periodic with connectivity ≠ 6.
SlabClusters slab_clusters(const Volume<std::uint8_t>& mask_slab, const ZSlabLayout& layout,
                           const SlabClusterOptions& options, MPI_Comm comm);

}  // namespace vp
