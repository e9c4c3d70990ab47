// Outputs appear whole or not at all: write to a temporary name beside the
// target, then rename (atomic on POSIX within one filesystem).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace vp {

// Calls write(tmp_path) and renames tmp_path to path on success; removes tmp_path on failure
// (the exception propagates).
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& tmp_path)>& write);
void write_text_atomically(const std::filesystem::path& path, const std::string& text);
void write_bytes_atomically(const std::filesystem::path& path, const std::vector<unsigned char>& bytes);

// Temporary names are "<prefix>tmp<pid>_<n>_<file name>". The default prefix is "."; a batch run
// sets one carrying its run token (".vp-<token>-") so that the next run into the same folder can
// tell its own leftovers from anything else there. Returns the previous prefix.
std::string set_temporary_prefix(const std::string& prefix);

}  // namespace vp
