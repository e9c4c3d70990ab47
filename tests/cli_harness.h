// Running the voxpress binary from a test: exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vp::testing {

struct CliResult {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// separate: stdout in `out`, stderr in `err`; merged: both interleaved in `out` (as a terminal
// shows them), `err` empty.
enum class Streams { separate, merged };

// Runs `voxpress ARGS` (ARGS as a shell fragment) in `dir`, capturing its streams there.
inline CliResult run_voxpress(const std::string& args, const std::filesystem::path& dir,
                              Streams streams = Streams::separate) {
  const auto out = dir / ".stdout.txt", err = dir / ".stderr.txt";
  const std::string cmd = "cd '" + dir.string() + "' && '" VP_VOXPRESS_EXE "' " + args + " >'" + out.string() +
                          (streams == Streams::merged ? "' 2>&1" : "' 2>'" + err.string() + "'");
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace vp::testing
