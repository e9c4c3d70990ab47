// Error types. Messages name the file, key or voxel and say what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace vp {

// Bad input from the user: a file, a config key, a flag. Exit code 2 at the CLI.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A computation that could not produce a trustworthy number (did not converge, ...). Exit code 3.
class ComputeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace vp
