// Shared by the libFuzzer harnesses: our readers open files by name, so each input is written
// to a file in a scratch folder of this process's own, then read as a user's file would be.
#pragma once

#include <unistd.h>
#include <cstdio>
#include <cstdlib>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "filters/io/io_formats.h"
#include "filters/io/volume_io.h"

namespace vp::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("vp-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write_input(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = (scratch_dir() / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// A hostile file must end in InputError (exit 2); anything else escaping is a finding
// (libFuzzer reports the uncaught exception's abort as a crash).
inline void read_expecting_input_errors(const ReadOptions& options) {
  static const bool keep = [] {
    io::keep_hdf5_reader_after_errors(true);
    return true;
  }();
  (void)keep;
  const int aborts_before = io::hdf5_reader_aborts();
  try {
    ReadOptions o = options;
    o.hash = false;
    read_volume(o);
  } catch (const InputError&) {
  }
  // The HDF5 reader process outlives inputs, so a sanitizer report inside it (ASan aborts:
  // SIGABRT) is reported here, where libFuzzer saves the input that caused it. A plain SIGSEGV
  // in libhdf5 is the contained, exit-2 case the reader is built for, as in Release.
  if (io::hdf5_reader_aborts() != aborts_before) {
    std::fprintf(stderr, "fuzz: the HDF5 reader process aborted (a sanitizer report in it, above)\n");
    std::abort();
  }
}

}  // namespace vp::fuzz
