// The attribute messages of one HDF5 object header, checked from the file's own bytes before
// libhdf5 decodes them. libhdf5 1.10.8 (H5O_attr_decode, reached from H5Aexists through
// H5O__msg_iterate_real) copies dataspace points × type size bytes of attribute data out of the
// header chunk without checking that the message holds them, and strdup()s the name without
// checking that it ends inside the message: fuzz_hdf5 found the heap over-read
// (tests/data/hdf5_libhdf5_attribute_overread.h5). Only the layout that leads there is followed:
// the object header prefix (version 1 or 2), its continuation chunks, and per attribute message
// the name, datatype size, dataspace extent and data length. The datatype's own decoding
// (compound members, enum values) and dense attribute storage (fractal heap) stay libhdf5's.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <vector>

#include "core/error.h"
#include "filters/io/io_formats.h"

namespace vp::io {
namespace {

constexpr std::uint16_t kContinuationMessage = 0x0010, kAttributeMessage = 0x000C, kAttributeInfoMessage = 0x0015;
// A message flag: the message is stored elsewhere (shared message heap or a committed object).
constexpr std::uint8_t kSharedMessageFlag = 0x02;
// More continuation chunks than any writer makes for one object (each holds messages).
constexpr std::size_t kMaxChunks = 4096;

// Unsigned little-endian integers of 1-8 bytes from a byte buffer.
std::uint64_t le(const unsigned char* p, unsigned bytes) {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < bytes; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

class HeaderWalk {
 public:
  HeaderWalk(const std::string& path, const Hdf5ObjectHeader& at) : path_(path), at_(at) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw InputError(path + ": cannot open to check its HDF5 object header");
    size_ = file_bytes(path);
  }
  ~HeaderWalk() { ::close(fd_); }
  HeaderWalk(const HeaderWalk&) = delete;
  HeaderWalk& operator=(const HeaderWalk&) = delete;

  AttributeVerdict run() {
    const std::uint64_t start = absolute(at_.address, 16);
    const std::vector<unsigned char> prefix = bytes(start, 16);
    if (std::memcmp(prefix.data(), "OHDR", 4) == 0) walk_v2(start);
    else walk_v1(start, prefix);
    return verdict_;
  }

 private:
  [[noreturn]] void corrupt(const std::string& what) const {
    throw InputError(path_ + ": HDF5 object header at " + std::to_string(at_.address) + ": " + what +
                     " (corrupt or hostile HDF5)");
  }

  // File offset of an address (relative to the base address), `n` bytes of it inside the file.
  std::uint64_t absolute(std::uint64_t address, std::uint64_t n) const {
    std::uint64_t off = 0, end = 0;
    if (__builtin_add_overflow(at_.base, address, &off) || __builtin_add_overflow(off, n, &end) || end > size_)
      corrupt("a header chunk at address " + std::to_string(address) + " reaches past the file's end");
    return off;
  }

  std::vector<unsigned char> bytes(std::uint64_t off, std::uint64_t n) const {
    std::vector<unsigned char> b(n);
    for (std::uint64_t got = 0; got < n;) {
      const ssize_t r = ::pread(fd_, b.data() + got, n - got, static_cast<off_t>(off + got));
      if (r <= 0) corrupt("cannot read " + std::to_string(n) + " header bytes at offset " + std::to_string(off));
      got += static_cast<std::uint64_t>(r);
    }
    return b;
  }

  // Version 1: 16-byte prefix, then messages of an 8-byte header (type 2, size 2, flags 1, 3
  // reserved), their data 8-aligned; continuation chunks hold messages only.
  void walk_v1(std::uint64_t start, const std::vector<unsigned char>& prefix) {
    if (prefix[0] != 1) corrupt("version " + std::to_string(prefix[0]) + ", expected 1 or an OHDR signature");
    const std::uint64_t length = le(&prefix[8], 4);
    pending_.push_back({start + 16, length});
    absolute(at_.address, 16 + length);
    while (!pending_.empty()) {
      const auto [off, n] = pending_.back();
      pending_.pop_back();
      const std::vector<unsigned char> chunk = bytes(off, n);
      for (std::uint64_t p = 0; p + 8 <= n;) {
        const std::uint64_t size = le(&chunk[p + 2], 2);
        if (p + 8 + size > n) corrupt("a message of " + std::to_string(size) + " bytes runs past its chunk");
        message(static_cast<std::uint16_t>(le(&chunk[p], 2)), chunk[p + 4], &chunk[p + 8], size);
        p += 8 + size;
      }
    }
  }

  // Version 2: "OHDR", version 2, flags, optional times and attribute phase values, the first
  // chunk's size in 1-8 bytes, messages of a 4-byte header (type 1, size 2, flags 1; + 2 bytes of
  // creation order when tracked), a checksum; continuation chunks are "OCHK", messages, checksum.
  void walk_v2(std::uint64_t start) {
    const std::vector<unsigned char> head = bytes(start, std::min<std::uint64_t>(size_ - start, 40));
    if (head.size() < 7 || head[4] != 2) corrupt("OHDR header of version other than 2");
    const std::uint8_t flags = head[5];
    std::uint64_t p = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
    const unsigned width = 1u << (flags & 0x03);
    if (p + width > head.size()) corrupt("OHDR prefix runs past the file's end");
    const std::uint64_t length = le(&head[p], width);
    message_header_ = (flags & 0x04) ? 6 : 4;
    absolute(at_.address, p + width + length);
    pending_.push_back({start + p + width, length});
    while (!pending_.empty()) {
      const auto [off, n] = pending_.back();
      pending_.pop_back();
      const std::vector<unsigned char> chunk = bytes(off, n);
      for (std::uint64_t q = 0; q + message_header_ <= n;) {
        const std::uint64_t size = le(&chunk[q + 1], 2);
        if (q + message_header_ + size > n)
          corrupt("a message of " + std::to_string(size) + " bytes runs past its chunk");
        message(chunk[q], chunk[q + 3], &chunk[q + message_header_], size);
        q += message_header_ + size;
      }
    }
  }

  void message(std::uint16_t type, std::uint8_t flags, const unsigned char* data, std::uint64_t size) {
    if (type == kContinuationMessage) return continuation(data, size);
    if (type == kAttributeInfoMessage) return attribute_info(data, size);
    if (type != kAttributeMessage) return;
    if (flags & kSharedMessageFlag) return unverifiable("a shared attribute message");
    attribute(data, size);
  }

  void continuation(const unsigned char* d, std::uint64_t size) {
    if (size < at_.offset_bytes + at_.length_bytes) corrupt("a continuation message shorter than its fields");
    const std::uint64_t address = le(d, at_.offset_bytes);
    std::uint64_t length = le(d + at_.offset_bytes, at_.length_bytes);
    if (!seen_.insert(address).second) corrupt("a continuation chunk listed twice");
    if (seen_.size() > kMaxChunks) corrupt("more than " + std::to_string(kMaxChunks) + " continuation chunks");
    std::uint64_t off = absolute(address, length);
    if (message_header_ != 0) {  // version 2: "OCHK" ... checksum
      if (length < 8) corrupt("a continuation chunk of " + std::to_string(length) + " bytes");
      if (std::memcmp(bytes(off, 4).data(), "OCHK", 4) != 0) corrupt("a continuation chunk without its OCHK signature");
      off += 4;
      length -= 8;
    }
    pending_.push_back({off, length});
  }

  // Attributes in dense storage live in a fractal heap this check does not follow.
  void attribute_info(const unsigned char* d, std::uint64_t size) {
    if (size < 2) corrupt("an attribute info message shorter than its fields");
    const std::uint64_t p = 2 + ((d[1] & 0x01) ? 2 : 0);
    if (p + at_.offset_bytes > size) corrupt("an attribute info message shorter than its fields");
    const std::uint64_t heap = le(d + p, at_.offset_bytes);
    const std::uint64_t undefined =
        at_.offset_bytes >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * at_.offset_bytes)) - 1;
    if (heap != undefined) unverifiable("attributes in dense storage (a fractal heap)");
  }

  // Version 1: version, reserved, name / datatype / dataspace sizes (2 bytes each), each part
  // 8-aligned; versions 2 and 3: flags instead of reserved (bits 0, 1: shared datatype /
  // dataspace), version 3 one encoding byte more, parts not aligned. Then the data.
  void attribute(const unsigned char* d, std::uint64_t size) {
    if (size < 8 || d[0] < 1 || d[0] > 3) corrupt("an attribute message of version " + std::to_string(size ? d[0] : 0));
    const unsigned version = d[0];
    if (version >= 2 && (d[1] & 0x03)) return unverifiable("an attribute with a shared datatype or dataspace");
    const std::uint64_t name = le(d + 2, 2), type = le(d + 4, 2), space = le(d + 6, 2);
    auto padded = [&](std::uint64_t n) { return version == 1 ? (n + 7) / 8 * 8 : n; };
    std::uint64_t p = version == 3 ? 9 : 8;
    auto part = [&](std::uint64_t n, const char* what) {
      if (p + n > size) corrupt(std::string("an attribute's ") + what + " runs past its message");
      const std::uint64_t at = p;
      p += padded(n);
      return at;
    };
    const std::uint64_t name_at = part(name, "name");
    if (name == 0 || !std::memchr(d + name_at, 0, name)) corrupt("an attribute name without its terminating NUL");
    const std::string label = "attribute '" + std::string(reinterpret_cast<const char*>(d + name_at)) + "'";
    if (type < 8) corrupt(label + ": datatype of " + std::to_string(type) + " bytes");
    const std::uint64_t type_at = part(type, "datatype");
    const std::uint64_t space_at = part(space, "dataspace");
    const std::uint64_t points = dataspace_points(d + space_at, space, label);
    std::uint64_t sample = le(d + type_at + 4, 4);
    // A variable-length sample is stored as a length and a global heap id, whatever the size field says.
    if ((d[type_at] & 0x0f) == 9) sample = std::max<std::uint64_t>(sample, 4 + at_.offset_bytes + 4);
    const std::uint64_t held = size - std::min(p, size);
    std::uint64_t data = 0;
    if (__builtin_mul_overflow(points, sample, &data) || data > held)
      corrupt(label + " holds " + std::to_string(held) + " bytes of data where its dataspace (" +
              std::to_string(points) + " points) and datatype (" + std::to_string(sample) + " bytes each) need " +
              (data / std::max<std::uint64_t>(sample, 1) == points ? std::to_string(data) : "over 2^64"));
  }

  // Version 1: version, rank, flags, 5 reserved, then rank dimensions (rank 0: scalar);
  // version 2: version, rank, flags, type (0 scalar, 1 simple, 2 null), then rank dimensions.
  std::uint64_t dataspace_points(const unsigned char* s, std::uint64_t n, const std::string& label) const {
    if (n < 4 || s[0] < 1 || s[0] > 2)
      corrupt(label + ": dataspace message of version " + std::to_string(n ? s[0] : 0));
    const unsigned rank = s[1];
    const std::uint64_t dims_at = s[0] == 1 ? 8 : 4;
    if (rank > 32 || dims_at + std::uint64_t{rank} * at_.length_bytes > n)
      corrupt(label + ": dataspace of rank " + std::to_string(rank) + " in " + std::to_string(n) + " bytes");
    if (s[0] == 2 && s[3] == 2) return 0;  // null dataspace: no data
    std::uint64_t points = 1;
    for (unsigned a = 0; a < rank; ++a)
      if (__builtin_mul_overflow(points, le(s + dims_at + a * at_.length_bytes, at_.length_bytes), &points))
        corrupt(label + ": dataspace of more than 2^64 points");
    return points;
  }

  void unverifiable(const std::string& why) {
    if (verdict_.verifiable) verdict_ = AttributeVerdict{false, why};
  }

  const std::string& path_;
  Hdf5ObjectHeader at_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  unsigned message_header_ = 0;  // version 2: bytes of a message header; 0 for version 1
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pending_;  // chunks to walk: offset, bytes
  std::set<std::uint64_t> seen_;
  AttributeVerdict verdict_{true, ""};
};

}  // namespace

AttributeVerdict check_attribute_messages(const std::string& path, const Hdf5ObjectHeader& at) {
  if (at.offset_bytes < 1 || at.offset_bytes > 8 || at.length_bytes < 1 || at.length_bytes > 8)
    throw InputError(path + ": HDF5 superblock gives " + std::to_string(at.offset_bytes) + "-byte addresses and " +
                     std::to_string(at.length_bytes) + "-byte lengths; expected 1-8 (corrupt or hostile HDF5)");
  return HeaderWalk(path, at).run();
}

}  // namespace vp::io
