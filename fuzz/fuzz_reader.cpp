// One libFuzzer target per reader; VP_FUZZ_FORMAT (set by fuzz/CMakeLists.txt) picks it.
// Where a format has two flavours, the input's first byte picks one (bit 0) and the rest is the file.
#include "fuzz/fuzz_common.h"

#include <cstring>

namespace {

using vp::ReadOptions;

// raw: the first 8 bytes give dims (3 x 2 bytes), dtype and byte order; 4 more the header size.
ReadOptions raw_options(const std::uint8_t* data, std::size_t size, std::size_t& skip) {
  ReadOptions o;
  skip = std::min<std::size_t>(size, 12);
  std::uint8_t h[12] = {};
  std::memcpy(h, data, skip);
  auto u16 = [&](int i) { return static_cast<vp::index_t>(h[i] | (h[i + 1] << 8)); };
  o.dims = vp::Dims{u16(0), u16(2), u16(4)};
  o.dtype = static_cast<vp::DType>(h[6] % 5);
  o.big_endian = h[7] & 1;
  o.header_bytes =
      h[8] | (h[9] << 8) | (static_cast<std::uint64_t>(h[10]) << 16) | (static_cast<std::uint64_t>(h[11]) << 24);
  o.format = "raw";
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vp::fuzz;
  const std::string format = VP_FUZZ_FORMAT;
  ReadOptions o;
  if (format == "raw") {
    std::size_t skip = 0;
    o = raw_options(data, size, skip);
    o.path = write_input("in.raw", data + skip, size - skip);
  } else if (format == "mha") {
    // MetaIO: bit 0 of byte 0 picks a one-file .mha or an .mhd whose ElementDataFile may name
    // data.raw (4 KiB of a ramp) beside it.
    if (size == 0) return 0;
    static const bool data_written = [] {
      std::uint8_t ramp[4096];
      for (int i = 0; i < 4096; ++i) ramp[i] = static_cast<std::uint8_t>(i);
      write_input("data.raw", ramp, sizeof ramp);
      return true;
    }();
    (void)data_written;
    o.path = write_input(data[0] & 1 ? "in.mhd" : "in.mha", data + 1, size - 1);
  } else if (format == "nifti") {
    if (size == 0) return 0;
    o.path = write_input(data[0] & 1 ? "in.nii.gz" : "in.nii", data + 1, size - 1);
  } else if (format == "tiff") {
    o.path = write_input("in.tif", data, size);
  } else if (format == "nrrd") {
    o.path = write_input("in.nrrd", data, size);
  } else if (format == "hdf5") {
    o.path = write_input("in.h5", data, size);
  } else if (format == "npy") {
    o.path = write_input("in.npy", data, size);
  }
  read_expecting_input_errors(o);
  return 0;
}
