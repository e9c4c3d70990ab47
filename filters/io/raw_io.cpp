// Raw binary volumes and NumPy .npy files: both are a header (given or parsed) followed by
// samples in (z, y, x) C order, which is our x-fastest order. ROIs read row by row.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "filters/io/io_formats.h"

namespace vp::io {
namespace {

// How samples are stored in the file.
struct StoredType {
  char kind = 'u';  // u, i, f, b (bool)
  int bytes = 1;
  bool big_endian = false;
};

StoredType stored_type_of(DType t, bool big_endian) {
  switch (t) {
    case DType::u8: return {'u', 1, big_endian};
    case DType::u16: return {'u', 2, big_endian};
    case DType::i16: return {'i', 2, big_endian};
    case DType::u32: return {'u', 4, big_endian};
    case DType::f32: return {'f', 4, big_endian};
  }
  return {};
}

// The element type that holds a stored sample: int8 widens to int16, float64 narrows to float32.
std::optional<DType> dtype_for(const StoredType& s) {
  if ((s.kind == 'u' || s.kind == 'b') && s.bytes == 1) return DType::u8;
  if (s.kind == 'i' && (s.bytes == 1 || s.bytes == 2)) return DType::i16;
  if (s.kind == 'u' && s.bytes == 2) return DType::u16;
  if (s.kind == 'u' && s.bytes == 4) return DType::u32;
  if (s.kind == 'f' && (s.bytes == 4 || s.bytes == 8)) return DType::f32;
  return std::nullopt;
}

template <class S>
S load_sample(const std::uint8_t* p, bool swap) {
  std::uint8_t b[sizeof(S)];
  std::memcpy(b, p, sizeof(S));
  if (swap) std::reverse(b, b + sizeof(S));
  S s;
  std::memcpy(&s, b, sizeof(S));
  return s;
}

// Converts n stored samples into T (byte order, widening, narrowing).
template <class T>
void convert_samples(const std::uint8_t* src, const StoredType& s, std::size_t n, T* dst) {
  const bool swap = s.bytes > 1 && (s.big_endian != (std::endian::native == std::endian::big));
  auto each = [&](auto tag) {
    using S = decltype(tag);
    for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(load_sample<S>(src + i * sizeof(S), swap));
  };
  if (s.kind == 'b') each(std::uint8_t{});
  else if (s.kind == 'u' && s.bytes == 1) each(std::uint8_t{});
  else if (s.kind == 'u' && s.bytes == 2) each(std::uint16_t{});
  else if (s.kind == 'u' && s.bytes == 4) each(std::uint32_t{});
  else if (s.kind == 'i' && s.bytes == 1) each(std::int8_t{});
  else if (s.kind == 'i' && s.bytes == 2) each(std::int16_t{});
  else if (s.kind == 'f' && s.bytes == 4) each(float{});
  else if (s.kind == 'f' && s.bytes == 8) each(double{});
  else throw std::logic_error("convert_samples: unsupported stored type");
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr open_read(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) throw InputError(path + ": cannot open for reading");
  return f;
}

void read_exact(std::FILE* f, std::uint64_t offset, void* dst, std::size_t bytes, const std::string& path) {
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(dst, 1, bytes, f) != bytes)
    throw InputError(path + ": truncated; cannot read " + std::to_string(bytes) + " bytes at offset " +
                     std::to_string(offset));
}

// Reads the ROI of a C-ordered (z, y, x) block of samples starting at `offset`, one x-row at a
// time (a whole-volume read when the ROI is everything).
AnyVolume read_c_order(const std::string& path, std::uint64_t offset, const StoredType& s, const Dims& dims,
                       DType dtype, const Box& roi) {
  AnyVolume out = allocate_volume(dtype, box_dims(roi));
  FilePtr f = open_read(path);
  std::visit(
      [&](auto& vol) {
        using T = typename std::decay_t<decltype(vol)>::value_type;
        const std::size_t nx = roi.size[0];
        const bool full_rows = roi.min[0] == 0 && roi.size[0] == dims.x;
        // Whole (z) planes at a time when rows are complete: fewer seeks, a plane of scratch.
        const std::size_t chunk = full_rows && roi.min[1] == 0 && roi.size[1] == dims.y ? nx * roi.size[1] : nx;
        std::vector<std::uint8_t> buf(chunk * s.bytes);
        T* dst = vol.data();
        for (index_t z = roi.min[2]; z < roi.min[2] + roi.size[2]; ++z) {
          for (index_t y = roi.min[1]; y < roi.min[1] + roi.size[1];) {
            const std::uint64_t first = static_cast<std::uint64_t>(roi.min[0] + dims.x * (y + dims.y * z));
            read_exact(f.get(), offset + first * s.bytes, buf.data(), buf.size(), path);
            convert_samples(buf.data(), s, chunk, dst);
            dst += chunk;
            y += static_cast<index_t>(chunk / nx);
          }
        }
      },
      out);
  return out;
}

// ---- npy header ----
struct NpyHeader {
  StoredType stored;
  std::string descr;
  bool fortran = false;
  std::vector<std::uint64_t> shape;  // as stored: (z, y, x) or (y, x)
  std::uint64_t data_offset = 0;
};

// numpy caps its header at 10 000 bytes; anything longer is not a header numpy wrote.
constexpr std::uint32_t kMaxNpyHeader = 65536;

// The text after `'key':` in numpy's header dict (spaces skipped), or npos when absent.
std::size_t npy_value(const std::string& dict, const std::string& key) {
  std::size_t at = dict.find("'" + key + "'");
  if (at == std::string::npos) return at;
  at = dict.find_first_not_of(" \t", at + key.size() + 2);
  if (at == std::string::npos || dict[at] != ':') return std::string::npos;
  at = dict.find_first_not_of(" \t", at + 1);
  return at;
}

// One size of the 'shape' tuple: a whole number that fits 63 bits.
std::uint64_t npy_size(const std::string& item, const std::string& shape, const std::string& path) {
  const std::size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \tL");
  const std::string digits = item.substr(b, e - b + 1);
  errno = 0;
  const unsigned long long n = std::strtoull(digits.c_str(), nullptr, 10);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || errno == ERANGE ||
      n > static_cast<unsigned long long>(std::numeric_limits<index_t>::max()))
    throw InputError(path + ": .npy header field 'shape' (" + shape + ") is not a tuple of sizes below 2^63");
  return n;
}

// Parses the header by hand (linear time; a regex over a hostile header is not).
NpyHeader parse_npy(const std::string& path) {
  FilePtr f = open_read(path);
  unsigned char pre[12];
  const std::size_t got = std::fread(pre, 1, sizeof pre, f.get());
  if (got < 10 || std::memcmp(pre, "\x93NUMPY", 6) != 0) throw InputError(path + ": not a .npy file (bad magic)");
  const int major = pre[6];
  std::uint32_t len;
  std::uint64_t start;
  if (major == 1) {
    len = pre[8] | (pre[9] << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (got < 12) throw InputError(path + ": truncated .npy header");
    len = pre[8] | (pre[9] << 8) | (pre[10] << 16) | (static_cast<std::uint32_t>(pre[11]) << 24);
    start = 12;
  } else {
    throw InputError(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (len > kMaxNpyHeader || start + len > file_bytes(path))
    throw InputError(path + ": .npy header length field is " + std::to_string(len) + " bytes; the file holds " +
                     std::to_string(file_bytes(path)) + " (at most " + std::to_string(kMaxNpyHeader) + " expected)");
  std::string dict(len, '\0');
  read_exact(f.get(), start, dict.data(), len, path);
  NpyHeader h;
  h.data_offset = start + len;
  std::size_t at = npy_value(dict, "descr");
  const std::size_t descr_end = at == std::string::npos ? at : dict.find('\'', at + 1);
  if (at == std::string::npos || dict[at] != '\'' || descr_end == std::string::npos)
    throw InputError(path + ": .npy header has no 'descr'");
  h.descr = dict.substr(at + 1, descr_end - at - 1);
  at = npy_value(dict, "fortran_order");
  if (at != std::string::npos && dict.compare(at, 4, "True") == 0) h.fortran = true;
  else if (at == std::string::npos || dict.compare(at, 5, "False") != 0)
    throw InputError(path + ": .npy header has no 'fortran_order'");
  at = npy_value(dict, "shape");
  const std::size_t shape_end = at == std::string::npos ? at : dict.find(')', at);
  if (at == std::string::npos || dict[at] != '(' || shape_end == std::string::npos)
    throw InputError(path + ": .npy header has no 'shape'");
  const std::string shape = dict.substr(at + 1, shape_end - at - 1);
  std::stringstream ss(shape);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.find_first_not_of(" \t") == std::string::npos) continue;
    if (h.shape.size() == 3) throw InputError(path + ": .npy shape (" + shape + ") has more than 3 dimensions");
    h.shape.push_back(npy_size(item, shape, path));
  }
  const std::string& d = h.descr;
  if (d.size() < 3 || d.size() > 4 || std::string("<>|=").find(d[0]) == std::string::npos ||
      d.find_first_not_of("0123456789", 2) != std::string::npos)
    throw InputError(path + ": unsupported .npy dtype '" + d + "'");
  h.stored.big_endian = d[0] == '>';
  h.stored.kind = d[1];
  h.stored.bytes = std::atoi(d.c_str() + 2);
  return h;
}

Header header_from_npy(const NpyHeader& n, const std::string& path) {
  const auto t = dtype_for(n.stored);
  if (!t)
    throw InputError(path + ": unsupported sample format (numpy dtype '" + n.descr +
                     "'); expected bool, uint8, int8, uint16, int16, uint32, float32 or float64");
  Header h;
  h.dtype = *t;
  // numpy axes are (z, y, x) or (y, x): the last axis is x.
  const auto bytes = static_cast<std::uint64_t>(n.stored.bytes);
  if (n.shape.size() == 3) h.dims = checked_dims(path, "'shape'", n.shape[2], n.shape[1], n.shape[0], bytes);
  else if (n.shape.size() == 2) h.dims = checked_dims(path, "'shape'", n.shape[1], n.shape[0], 1, bytes);
  else throw InputError(path + ": array has " + std::to_string(n.shape.size()) + " dimensions; expected 2 or 3");
  return h;
}

void check_data_size(const std::string& path, std::uint64_t offset, const Dims& d, int bytes, const std::string& what) {
  const auto count = static_cast<std::uint64_t>(d.count());
  const std::uint64_t expected =
      checked_add(path, what + " header + data", offset,
                  checked_mul(path, what + " dims", count, static_cast<std::uint64_t>(bytes)));
  const std::uint64_t actual = file_bytes(path);
  if (actual != expected)
    throw InputError(path + ": size mismatch: " + what + " " + to_string(d) + " needs " + std::to_string(expected) +
                     " bytes (header " + std::to_string(offset) + " + " + std::to_string(count) + " x " +
                     std::to_string(bytes) + "), the file has " + std::to_string(actual) + " bytes");
}

}  // namespace

// ---- raw ----
Header probe_raw(const ReadOptions& o) {
  if (!o.dims || !o.dtype)
    throw InputError(o.path + ": a raw volume needs dims (NX,NY,NZ) and dtype (uint8, uint16, int16, uint32, float32)");
  Header h;
  h.dtype = *o.dtype;
  const Dims& d = *o.dims;
  if (d.x < 0 || d.y < 0 || d.z < 0) throw InputError(o.path + ": raw dims " + to_string(d) + " are negative");
  h.dims = checked_dims(o.path, "dims", d.x, d.y, d.z, dtype_size(h.dtype));
  if (h.dims.empty()) return h;  // the caller reports the zero-sized volume
  check_data_size(o.path, o.header_bytes, h.dims, static_cast<int>(dtype_size(h.dtype)), "raw " + to_string(h.dtype));
  return h;
}

AnyVolume read_contiguous(const std::string& path, std::uint64_t offset, DType dtype, bool big_endian, const Dims& dims,
                          const Box& roi) {
  return read_c_order(path, offset, stored_type_of(dtype, big_endian), dims, dtype, roi);
}

AnyVolume read_raw(const ReadOptions& o, const Header& h, const Box& roi) {
  return read_c_order(o.path, o.header_bytes, stored_type_of(h.dtype, o.big_endian), h.dims, h.dtype, roi);
}

void write_raw(VolumeRef volume, const std::string& path) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    const std::size_t bytes = static_cast<std::size_t>(ref_dims(volume).count()) * dtype_size(ref_dtype(volume));
    out.write(static_cast<const char*>(ref_bytes(volume)), static_cast<std::streamsize>(bytes));
    out.close();
    if (!out) throw InputError(path + ": cannot write");
  });
}

// ---- npy ----
Header probe_npy(const std::string& path) {
  const NpyHeader n = parse_npy(path);
  Header h = header_from_npy(n, path);
  if (!h.dims.empty()) check_data_size(path, n.data_offset, h.dims, n.stored.bytes, "npy '" + n.descr + "'");
  return h;
}

AnyVolume read_npy(const std::string& path, const Header& h, const Box& roi) {
  const NpyHeader n = parse_npy(path);
  if (!n.fortran) return read_c_order(path, n.data_offset, n.stored, h.dims, h.dtype, roi);
  // Fortran order: numpy axis 0 (z) is fastest in the file. Read it all and transpose.
  FilePtr f = open_read(path);
  const std::size_t count = static_cast<std::size_t>(h.dims.count());
  std::vector<std::uint8_t> raw(count * n.stored.bytes);
  read_exact(f.get(), n.data_offset, raw.data(), raw.size(), path);
  AnyVolume out = allocate_volume(h.dtype, box_dims(roi));
  std::visit(
      [&](auto& vol) {
        using T = typename std::decay_t<decltype(vol)>::value_type;
        std::vector<T> all(count);
        convert_samples(raw.data(), n.stored, count, all.data());
        const Dims& d = h.dims;
        for (index_t z = 0; z < roi.size[2]; ++z)
          for (index_t y = 0; y < roi.size[1]; ++y)
            for (index_t x = 0; x < roi.size[0]; ++x) {
              const index_t gx = x + roi.min[0], gy = y + roi.min[1], gz = z + roi.min[2];
              vol(x, y, z) = all[static_cast<std::size_t>(gz + d.z * (gy + d.y * gx))];
            }
      },
      out);
  return out;
}

void write_npy(VolumeRef volume, const std::string& path) {
  static const char* descr[] = {"|u1", "<u2", "<i2", "<u4", "<f4"};
  const Dims d = ref_dims(volume);
  std::string dict = "{'descr': '" + std::string(descr[static_cast<int>(ref_dtype(volume))]) +
                     "', 'fortran_order': False, 'shape': (" + std::to_string(d.z) + ", " + std::to_string(d.y) + ", " +
                     std::to_string(d.x) + "), }";
  // Magic (6) + version (2) + length (2) + dict + padding, a multiple of 64, ending in '\n'.
  const std::size_t total = ((10 + dict.size() + 1 + 63) / 64) * 64;
  dict.append(total - 10 - dict.size() - 1, ' ');
  dict.push_back('\n');
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    const unsigned char pre[10] = {0x93,
                                   'N',
                                   'U',
                                   'M',
                                   'P',
                                   'Y',
                                   1,
                                   0,
                                   static_cast<unsigned char>(dict.size() & 0xff),
                                   static_cast<unsigned char>(dict.size() >> 8)};
    out.write(reinterpret_cast<const char*>(pre), sizeof pre);
    out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
    static_assert(std::endian::native == std::endian::little, "npy writer assumes a little-endian host");
    const std::size_t bytes = static_cast<std::size_t>(d.count()) * dtype_size(ref_dtype(volume));
    out.write(static_cast<const char*>(ref_bytes(volume)), static_cast<std::streamsize>(bytes));
    out.close();
    if (!out) throw InputError(path + ": cannot write");
  });
}

}  // namespace vp::io
