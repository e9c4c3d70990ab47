// SHA-256 content hashes for provenance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vp {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t n);
  std::string hex_digest();  // finalises; 64 lowercase hex digits

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::uint64_t bytes_ = 0;
  std::size_t fill_ = 0;
};

std::string sha256_hex(const void* data, std::size_t n);
std::string sha256_file(const std::string& path);  // throws InputError naming the file when unreadable

}  // namespace vp
