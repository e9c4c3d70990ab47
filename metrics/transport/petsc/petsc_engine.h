// The PETSc engine as a module that voxpress loads at run time, only for `--engine petsc`
// (`engine: petsc`): PETSc and what it pulls in (hypre, Trilinos, MUMPS ... 55 libraries, ≈ 16 MB
// resident) stay out of every other voxpress process. Built beside the binary (CMake target
// voxpress_petsc); its one C entry point returns the table below.
#pragma once

#include <mpi.h>

#include "core/z_slabs.h"
#include "metrics/transport/conductivity_solve.h"

namespace vp {

inline constexpr const char* kPetscEngineModule = "voxpress_petsc.so";  // the file, beside the voxpress binary
inline constexpr const char* kPetscEngineEntry = "vp_petsc_engine";     // extern "C" const PetscEngine* ()

struct PetscEngine {
  // solve_transport_petsc with the default preconditioner; initialises PETSc on the first call
  // (on the MPI already started by the caller) and finalises it at exit. Collective over comm.
  TransportResult (*solve)(const Volume<std::uint8_t>& slab, const ZSlabLayout& layout,
                           const ConductivityTable& conductivity, const TransportOptions& options, MPI_Comm comm);
};

}  // namespace vp
