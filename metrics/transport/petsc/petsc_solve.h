// The conductivity solve of metrics/transport/conductivity_solve.h on PETSc, distributed over
// the ranks of an MPI communicator, each holding one z-slab of the label volume (core/z_slabs.h).
//
// Same problem, same numbers (docs/transport.md "What is computed"): a DMDA 3-D grid (the z-cut and
// the ghost planes) with one unknown per conducting voxel, the cell-centred finite-volume operator with harmonic-mean
// face conductances, Dirichlet inlet/outlet on the two faces of the axis through half a voxel, zero flux or periodic
// sides; voxels not face-connected to both electrodes are removed first by the distributed cluster merge
// (metrics/mpi/slab_clusters.h) and get no unknown. Conjugate gradients on the unpreconditioned residual with an
// algebraic multigrid preconditioner; stops when ‖b − Ax‖/‖b‖ ≤ tolerance and |I_in − I_out|/|I_in| ≤ flux_balance, as
// the native solve.
//
// PETSc must be initialised (PetscInitialize) before the call; the call is collective over comm.
#pragma once

#include <mpi.h>

#include <string>

#include "core/z_slabs.h"
#include "metrics/transport/conductivity_solve.h"

namespace vp {

// The algebraic multigrid preconditioners the benchmark compares: "hypre" (BoomerAMG through
// PCHYPRE, with hypre's 3-D settings: petsc_solve.cpp) and "gamg" (PETSc's smoothed aggregation).
// PCMG on DMDA coarsening is gone: its grid needs an unknown for every voxel, removed ones too.
inline constexpr const char* kDefaultPetscPreconditioner = "hypre";

struct PetscSolveStats {
  std::string preconditioner;           // the one used
  double halo_bytes_per_iteration = 0;  // ghost-plane bytes one operator application exchanges, all ranks
  int ranks = 1;
};

// slab: this rank's z-slab (layout.local() dims, spacing of the whole volume). Returns on every
// rank the same result for the whole volume (profile included; options.keep_fields is refused).
// Throws InputError on bad options (as solve_transport) and when the volume exceeds PETSc's index
// range; ComputeError when PETSc fails.
TransportResult solve_transport_petsc(const Volume<std::uint8_t>& slab, const ZSlabLayout& layout,
                                      const ConductivityTable& conductivity, const TransportOptions& options,
                                      MPI_Comm comm, const std::string& preconditioner = kDefaultPetscPreconditioner,
                                      PetscSolveStats* stats = nullptr);

}  // namespace vp
