// The kernels of the measurement stages when ctx.slab is set (`mpirun -np N voxpress measure`):
// each takes this rank's z-slab of the label volume and returns the whole volume's answer, the
// same on every rank and bit-identical to one process (metrics/mpi/slab_metrics.h). Collective
// over the MPI world.
#pragma once

#include <string>
#include <vector>

#include "core/z_slabs.h"
#include "metrics/connectivity.h"
#include "metrics/interfaces.h"
#include "metrics/phase_fractions.h"

namespace vp {

// The stages that run on z-slabs with exact merges; measure refuses the others under N > 1 ranks.
const std::vector<std::string>& slab_measure_stages();

PhaseFractions slab_phase_fractions(const LabelVolume& slab, const ZSlabLayout& layout);
InterfaceAreas slab_interface_areas(const LabelVolume& slab, const ZSlabLayout& layout);
TriplePhaseBoundary slab_triple_phase_boundary(const LabelVolume& slab, int label_a, int label_b, int label_c,
                                               const ZSlabLayout& layout);
// Topology and percolation along `axes` of the phase with this label.
struct SlabConnectivity {
  Topology topology;
  std::vector<Percolation> percolation;  // one per axis, in the order asked
};
SlabConnectivity slab_connectivity(const LabelVolume& slab, int label, int connectivity, const std::vector<int>& axes,
                                   const ZSlabLayout& layout);

}  // namespace vp
