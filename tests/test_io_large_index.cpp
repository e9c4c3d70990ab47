// 64-bit indexing past 2^31 and 2^32 voxels without allocating them: a sparse raw file of
// 2048 × 2048 × 1025 uint8 voxels (4.30 Gvoxel, a few MiB on disk) is cut into z-slabs the way
// `mpirun -np N voxpress measure/solve` cuts it, and single slabs are read (read_z_slab, a few
// planes each). Markers at byte offsets past 2^31 and 2^32 must come back at their (x, y, z),
// and a 32-bit wrap of any offset would read the decoys written at the wrapped offsets instead.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <system_error>

#include "core/z_slabs.h"
#include "filters/io/slab_read.h"

namespace vp {
namespace {

namespace fs = std::filesystem;

constexpr Dims kDims{2048, 2048, 1025};
constexpr std::uint64_t kPlane = 2048ull * 2048ull;  // 2^22 voxels

std::uint64_t offset_of(index_t x, index_t y, index_t z) {
  return static_cast<std::uint64_t>(x) + static_cast<std::uint64_t>(y) * 2048u + static_cast<std::uint64_t>(z) * kPlane;
}

// The sparse file and its markers (offset -> value); the decoys sit at each marker's offset mod 2^32 / 2^31.
struct SparseRaw {
  fs::path path;
  std::map<std::uint64_t, std::uint8_t> markers;
  ~SparseRaw() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

std::unique_ptr<SparseRaw> make_sparse_raw() {
  auto f = std::make_unique<SparseRaw>();
  f->path = fs::temp_directory_path() / ("vp_large_index_" + std::to_string(::getpid()) + ".raw");
  { std::ofstream(f->path, std::ios::binary); }
  fs::resize_file(f->path, kDims.count());                     // sparse: holes read as zeros
  f->markers = {{offset_of(0, 0, 512), 11},                    // 2^31 exactly
                {offset_of(5, 0, 1024), 13},                   // 2^32 + 5
                {offset_of(2047, 2047, 1024), 17},             // the last voxel, 2^32 + 2^22 − 1
                {offset_of(100, 3, 700), 19},                  // between 2^31 and 2^32
                {5, 23},                                       // the decoy of 2^32 + 5
                {offset_of(100, 3, 700) - (1ull << 31), 29}};  // the decoy of the marker above, wrapped at 2^31
  std::fstream out(f->path, std::ios::binary | std::ios::in | std::ios::out);
  for (const auto& [off, value] : f->markers) {
    out.seekp(static_cast<std::streamoff>(off));
    out.put(static_cast<char>(value));
  }
  return f;
}

ReadOptions raw_options(const fs::path& path) {
  ReadOptions o;
  o.path = path.string();
  o.format = "raw";
  o.dims = kDims;
  o.dtype = DType::u8;
  o.hash = false;
  return o;
}

// The nonzero voxels of a slab, as whole-volume offsets.
std::map<std::uint64_t, std::uint8_t> nonzero(const Volume<std::uint8_t>& slab, const ZSlabLayout& layout) {
  std::map<std::uint64_t, std::uint8_t> out;
  for (index_t i = 0; i < slab.size(); ++i)
    if (slab[i]) out[static_cast<std::uint64_t>(layout.z0()) * kPlane + static_cast<std::uint64_t>(i)] = slab[i];
  return out;
}

TEST(LargeIndex, ZSlabLayoutPast32Bits) {
  ASSERT_GT(kDims.count(), index_t{1} << 32);
  const ZSlabLayout l = even_z_slabs(kDims, 300, 299);  // 1025 = 300 · 3 + 125: the first 125 hold 4
  EXPECT_EQ(l.z_begin[125], 125 * 4);
  EXPECT_EQ(l.z0(), 1022);
  EXPECT_EQ(l.z1(), 1025);
  EXPECT_EQ(l.local().count(), index_t{3} * static_cast<index_t>(kPlane));
  EXPECT_EQ(static_cast<std::uint64_t>(l.z0()) * kPlane, 4286578688ull);  // past 2^31, below 2^32
}

TEST(LargeIndex, SparseRawSlabsReadPast2To32) {
  const auto file = make_sparse_raw();
  // One plane per rank at 1025 ranks: the planes that start at 2^31 and at 2^32.
  for (int rank : {512, 1024}) {
    const SlabRead s = read_z_slab(raw_options(file->path), 1025, rank);
    const auto& v = std::get<Volume<std::uint8_t>>(s.read.volume);
    ASSERT_EQ(v.dims(), (Dims{2048, 2048, 1}));
    std::map<std::uint64_t, std::uint8_t> expected;
    for (const auto& [off, value] : file->markers)
      if (off / kPlane == static_cast<std::uint64_t>(rank)) expected[off] = value;
    EXPECT_EQ(nonzero(v, s.layout), expected) << "rank " << rank;
  }
  // Uneven cut: the last of 300 ranks holds z 1022..1024, 12 MiB ending 4 MiB past 2^32.
  const SlabRead last = read_z_slab(raw_options(file->path), 300, 299);
  const auto& v = std::get<Volume<std::uint8_t>>(last.read.volume);
  ASSERT_EQ(v.dims().z, 3);
  EXPECT_EQ(v(5, 0, 2), 13);
  EXPECT_EQ(v(2047, 2047, 2), 17);
  EXPECT_EQ(nonzero(v, last.layout).size(), 2u);
  // The rank holding z = 700 (300 ranks: 4-plane slabs up to z 500, then 3-plane ones).
  const ZSlabLayout cut = even_z_slabs(kDims, 300, 0);
  int rank = 0;
  while (cut.z_begin[static_cast<std::size_t>(rank) + 1] <= 700) ++rank;
  const SlabRead mid = read_z_slab(raw_options(file->path), 300, rank);
  const auto& m = std::get<Volume<std::uint8_t>>(mid.read.volume);
  EXPECT_EQ(m(100, 3, 700 - mid.layout.z0()), 19);
  EXPECT_EQ(nonzero(m, mid.layout).size(), 1u);
}

}  // namespace
}  // namespace vp
