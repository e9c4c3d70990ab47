// `mpirun -np N voxpress ARGS` for the MPI tests (--oversubscribe, allowed as root as CI runs).
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli_harness.h"

namespace vp::testing {

inline std::string mpirun(int ranks) {
  return "mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) + " '" VP_VOXPRESS_EXE "' ";
}

// Runs `mpirun -np N voxpress ARGS` in dir (a shell command, not through run_voxpress's exe prefix).
inline CliResult run_mpi(int ranks, const std::string& args, const std::filesystem::path& dir) {
  const auto out = dir / ".mpi_out.txt", err = dir / ".mpi_err.txt";
  const std::string cmd = "cd '" + dir.string() + "' && OMPI_MCA_btl_vader_single_copy_mechanism=none " +
                          mpirun(ranks) + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace vp::testing
