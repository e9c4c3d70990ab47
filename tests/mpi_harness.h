// `mpirun -np N voxpress ARGS` for the MPI tests (--oversubscribe, allowed as root as CI runs).
#pragma once

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "cli_harness.h"
#include "core/volume.h"
#include "filters/io/volume_io.h"

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

// A uint8 label volume `label(x, y, z)` written as dir/case.tif; returns its path quoted for a
// shell command line.
inline std::string write_case(const std::filesystem::path& dir, Dims dims,
                              const std::function<int(index_t, index_t, index_t)>& label, Vec3 spacing_um = {1, 1, 1}) {
  Volume<std::uint8_t> v(dims, spacing_um);
  for (index_t z = 0; z < dims.z; ++z)
    for (index_t y = 0; y < dims.y; ++y)
      for (index_t x = 0; x < dims.x; ++x) v(x, y, z) = static_cast<std::uint8_t>(label(x, y, z));
  const std::filesystem::path p = dir / "case.tif";
  write_volume(v, p.string());
  return "'" + p.string() + "'";
}

}  // namespace vp::testing
