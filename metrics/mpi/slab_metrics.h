// The metrics of `mpirun -np N voxpress measure` over a label volume cut into z-slabs, one per
// MPI rank, merged exactly: every metric is finished from integer counts summed over the ranks
// (voxel counts per label, Crofton crossings per direction and label pair, triple-phase edges,
// Euler cells, cluster counts), with the same floating-point steps as one process, so the
// numbers are bit-identical to it. A rank holds its slab plus one plane of each neighbour (the
// halo, sent by the neighbours: no rank reads beyond its slab).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <mpi.h>

#include "core/z_slabs.h"
#include "metrics/connectivity.h"
#include "metrics/interfaces.h"

namespace vp {

// A slab with the plane of the rank below and the plane of the rank above around it (none
// beyond the ends of the volume): slab plane z is volume plane z + below.
struct HaloSlab {
  Volume<std::uint8_t> volume;
  index_t below = 0, above = 0;
  std::int64_t halo_bytes = 0;  // bytes this rank received for the halo
  // This rank's own planes, without copying.
  Volume<std::uint8_t> owned() const;
};

// Collective over comm. slab: this rank's planes (layout.local() dims).
HaloSlab with_z_halo(const Volume<std::uint8_t>& slab, const ZSlabLayout& layout, MPI_Comm comm);

// Voxels per label value over the whole volume (the same on every rank). Collective.
std::array<index_t, 256> slab_count_labels(const Volume<std::uint8_t>& slab, MPI_Comm comm);

// interface_areas of the whole volume; label_set: the labels present anywhere. Collective.
InterfaceAreas slab_interface_areas(const HaloSlab& labels, const std::vector<int>& label_set,
                                    const ZSlabLayout& layout, MPI_Comm comm);

// triple_phase_boundary of the whole volume. Collective.
TriplePhaseBoundary slab_triple_phase_boundary(const HaloSlab& labels, int label_a, int label_b, int label_c,
                                               const ZSlabLayout& layout, MPI_Comm comm);

// topology of the whole volume's mask (nonzero = phase). Collective.
Topology slab_topology(const HaloSlab& mask, int connectivity, const ZSlabLayout& layout, MPI_Comm comm);

// percolation of the whole volume's mask along `axis`. Collective.
Percolation slab_percolation(const Volume<std::uint8_t>& mask_slab, int axis, int connectivity,
                             const ZSlabLayout& layout, MPI_Comm comm);

}  // namespace vp
