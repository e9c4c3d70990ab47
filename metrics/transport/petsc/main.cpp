// The entry point of the voxpress_petsc module (metrics/transport/petsc/petsc_engine.h).
#include <petscsys.h>

#include <cstdlib>

#include "core/error.h"
#include "metrics/transport/petsc/petsc_engine.h"
#include "metrics/transport/petsc/petsc_solve.h"

namespace {

void finalize_petsc() {
  PetscBool finalized = PETSC_FALSE;
  PetscFinalized(&finalized);
  if (!finalized) PetscFinalize();
}

vp::TransportResult solve(const vp::Volume<std::uint8_t>& slab, const vp::ZSlabLayout& layout,
                          const vp::ConductivityTable& conductivity, const vp::TransportOptions& options,
                          MPI_Comm comm) {
  PetscBool up = PETSC_FALSE;
  PetscInitialized(&up);
  if (!up) {
    // No command-line options for PETSc (the arguments are voxpress's); PETSC_OPTIONS still works.
    // MPI is already running (pipeline/mpi/mpi_session), so PetscFinalize leaves it to the caller;
    // registered after MPI_Finalize, this handler runs before it.
    if (PetscInitializeNoArguments() != 0) throw vp::ComputeError("PETSc could not be initialised");
    std::atexit(finalize_petsc);
  }
  return vp::solve_transport_petsc(slab, layout, conductivity, options, comm);
}

}  // namespace

extern "C" const vp::PetscEngine* vp_petsc_engine() {
  static const vp::PetscEngine engine{solve};
  return &engine;
}
