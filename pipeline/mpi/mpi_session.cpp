#include "pipeline/mpi/mpi_session.h"

#include <cstdlib>
#include <vector>

#include "core/error.h"

namespace vp {

namespace {

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(var)) return true;
  return false;
}

const MpiWorld& mpi_world() {
  static const MpiWorld world = [] {
    int up = 0;
    MPI_Initialized(&up);
    if (!up) {
      // The thread level PETSc asks for when it starts MPI itself (its PETSC_MPI_THREAD_REQUIRED);
      // the PETSc engine (metrics/transport/petsc/petsc_engine.h) then starts on this MPI.
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw ComputeError("MPI could not be initialised");
      std::atexit(finalize_mpi);
    }
    MpiWorld w;
    MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w.size);
    w.comm = MPI_COMM_WORLD;
    return w;
  }();
  return world;
}

void on_all_ranks(const MpiWorld& world, const std::function<void()>& step) {
  std::string message;
  try {
    step();
  } catch (const InputError& e) {
    message = e.what();
    if (message.empty()) message = "input error";
  }
  // The lowest failing rank and its message's length, then the message itself.
  int failing = message.empty() ? world.size : world.rank;
  MPI_Allreduce(MPI_IN_PLACE, &failing, 1, MPI_INT, MPI_MIN, world.comm);
  if (failing == world.size) return;
  int length = static_cast<int>(message.size());
  MPI_Bcast(&length, 1, MPI_INT, failing, world.comm);
  std::vector<char> text(static_cast<std::size_t>(length));
  if (world.rank == failing) text.assign(message.begin(), message.end());
  MPI_Bcast(text.data(), length, MPI_CHAR, failing, world.comm);
  throw InputError(std::string(text.begin(), text.end()));
}

}  // namespace vp
