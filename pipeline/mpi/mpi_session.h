// MPI for the commands that run distributed (`voxpress solve --engine petsc`,
// `mpirun -np N voxpress measure`): started on first use, finalised at exit, so a voxpress
// that never asks for it never touches MPI. PETSc starts on it in its own module (petsc_engine.h).
#pragma once

#include <mpi.h>

#include <functional>
#include <string>

namespace vp {

struct MpiWorld {
  int rank = 0;
  int size = 1;
  MPI_Comm comm = MPI_COMM_WORLD;
};

// True when this process was started by mpirun/mpiexec (Open MPI, MPICH/PMI or PMIx environment).
bool launched_by_mpirun();

// MPI initialised once; the world communicator's rank and size.
const MpiWorld& mpi_world();

// Runs `step` on every rank; when it throws InputError on any rank, every rank throws an
// InputError with the message of the lowest failing rank (so no rank waits for a collective
// the failing one never reaches). Collective over world.comm.
void on_all_ranks(const MpiWorld& world, const std::function<void()>& step);

}  // namespace vp
