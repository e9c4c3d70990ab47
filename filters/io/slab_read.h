// Reading one z-slab of a volume file, for a process that must never hold the whole volume
// (an MPI rank of `voxpress solve --engine petsc`, `mpirun ... voxpress measure`). Only the
// slab's voxels are read: TIFF pages z0..z1−1, an HDF5 hyperslab, raw and .npy byte offsets
// (read_volume's ROI path); the header is validated exactly as read_volume does (read_limits).
#pragma once

#include "core/z_slabs.h"
#include "filters/io/volume_io.h"

namespace vp {

struct SlabRead {
  ReadResult read;     // the slab's voxels (origin shifted to z0), format, spacing_from_file
  ZSlabLayout layout;  // the cut of the whole volume and this rank's place in it
};

// Probes the whole volume's header, cuts it into `ranks` even z-slabs and reads slab `rank`.
// options.roi must be unset; options.hash is ignored (no rank reads the whole file).
// Throws InputError naming the file and, for a failed read, the z-range of the slab.
SlabRead read_z_slab(ReadOptions options, int ranks, int rank);

}  // namespace vp
