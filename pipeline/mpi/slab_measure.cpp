#include "pipeline/mpi/slab_measure.h"

#include "metrics/face_connectivity.h"
#include "metrics/mpi/slab_metrics.h"
#include "pipeline/mpi/mpi_session.h"

namespace vp {

const std::vector<std::string>& slab_measure_stages() {
  static const std::vector<std::string> stages = {"volume_fraction", "interfaces", "contact_area", "connectivity"};
  return stages;
}

PhaseFractions slab_phase_fractions(const LabelVolume& slab, const ZSlabLayout& layout) {
  return phase_fractions(slab_count_labels(slab, mpi_world().comm), layout.global.count(), slab.phases);
}

InterfaceAreas slab_interface_areas(const LabelVolume& slab, const ZSlabLayout& layout) {
  const MPI_Comm comm = mpi_world().comm;
  const auto counts = slab_count_labels(slab, comm);
  std::vector<int> present;
  for (int l = 0; l < 256; ++l)
    if (counts[static_cast<std::size_t>(l)] > 0) present.push_back(l);
  return slab_interface_areas(with_z_halo(slab, layout, comm), present, layout, comm);
}

TriplePhaseBoundary slab_triple_phase_boundary(const LabelVolume& slab, int a, int b, int c,
                                               const ZSlabLayout& layout) {
  const MPI_Comm comm = mpi_world().comm;
  return slab_triple_phase_boundary(with_z_halo(slab, layout, comm), a, b, c, layout, comm);
}

SlabConnectivity slab_connectivity(const LabelVolume& slab, int label, int connectivity, const std::vector<int>& axes,
                                   const ZSlabLayout& layout) {
  const MPI_Comm comm = mpi_world().comm;
  HaloSlab mask = with_z_halo(phase_mask(slab, {label}), layout, comm);
  SlabConnectivity out;
  out.topology = slab_topology(mask, connectivity, layout, comm);
  const Volume<std::uint8_t> owned = mask.owned();
  for (int axis : axes) out.percolation.push_back(slab_percolation(owned, axis, connectivity, layout, comm));
  return out;
}

}  // namespace vp
