// What a file header may claim: every size is checked in 64-bit arithmetic that cannot wrap,
// against the bytes the file holds and against the voxel cap, before any buffer is allocated.
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "filters/io/io_formats.h"

namespace vp {

std::uint64_t max_voxels(const ReadOptions& options) {
  if (options.max_voxels > 0) return options.max_voxels;
  const char* env = std::getenv("VP_MAX_VOXELS");
  if (!env || !*env) return kDefaultMaxVoxels;
  errno = 0;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(env, &end, 10);
  if (errno != 0 || *end != '\0' || n == 0 || env[0] == '-')
    throw InputError("VP_MAX_VOXELS='" + std::string(env) + "': expected a positive whole number of voxels");
  return n;
}

namespace io {

std::uint64_t checked_mul(const std::string& path, const std::string& field, std::uint64_t a, std::uint64_t b) {
  std::uint64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > kMaxHeaderBytes)
    throw InputError(path + ": header field " + field + " is absurd: " + std::to_string(a) + " x " + std::to_string(b) +
                     " overflows 64-bit sizes (corrupt or hostile file)");
  return r;
}

std::uint64_t checked_add(const std::string& path, const std::string& field, std::uint64_t a, std::uint64_t b) {
  std::uint64_t r;
  if (__builtin_add_overflow(a, b, &r) || r > kMaxHeaderBytes)
    throw InputError(path + ": header field " + field + " is absurd: " + std::to_string(a) + " + " + std::to_string(b) +
                     " overflows 64-bit sizes (corrupt or hostile file)");
  return r;
}

Dims checked_dims(const std::string& path, const std::string& field, std::uint64_t x, std::uint64_t y, std::uint64_t z,
                  std::uint64_t bytes_per_voxel) {
  checked_mul(path, field, checked_mul(path, field, checked_mul(path, field, x, y), z), bytes_per_voxel);
  return {static_cast<index_t>(x), static_cast<index_t>(y), static_cast<index_t>(z)};
}

void check_stored(const std::string& path, const std::string& what, std::uint64_t needed, std::uint64_t stored,
                  std::uint64_t max_ratio) {
  std::uint64_t reach;
  if (__builtin_mul_overflow(stored, max_ratio, &reach)) return;  // the file could hold anything
  if (needed <= reach) return;
  if (max_ratio == 1)
    throw InputError(path + ": " + what + " claims " + std::to_string(needed) + " bytes of voxels, the file holds " +
                     std::to_string(stored) + " (truncated, or a lying header)");
  throw InputError(path + ": " + what + " claims " + std::to_string(needed) + " bytes of voxels from " +
                   std::to_string(stored) + " compressed bytes, more than their " + std::to_string(max_ratio) +
                   ":1 maximum expansion (a lying header or a decompression bomb)");
}

void check_voxel_cap(const std::string& path, const Dims& dims, std::uint64_t cap) {
  const auto n = static_cast<std::uint64_t>(dims.count());
  if (n <= cap) return;
  throw InputError(path + ": header claims " + to_string(dims) + " = " + std::to_string(n) +
                   " voxels, over the voxel cap of " + std::to_string(cap) +
                   "; if the file is genuine, raise the cap: VP_MAX_VOXELS=" + std::to_string(n) + " voxpress ...");
}

std::uint64_t file_bytes(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  if (ec) throw InputError(path + ": cannot stat (" + ec.message() + ")");
  return n;
}

}  // namespace io
}  // namespace vp
