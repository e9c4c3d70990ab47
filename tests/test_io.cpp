// Volume I/O: round trips of every format x dtype with anisotropic spacing, TIFF variants
// written with libtiff here (1-bit, LZW, Deflate, tiles, slices), raw, npy, HDF5, ROI, provenance
// and the bad inputs that must give an InputError naming the file.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <tiffio.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>

#include <tbb/global_control.h>

#include "core/error.h"
#include "core/hash.h"
#include "filters/io/volume_io.h"
#include "tests/io_craft.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("vp_test_io_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A volume whose every voxel differs from its neighbours, with values covering the type's range.
template <class T>
Volume<T> pattern(Dims d, Vec3 spacing = {0.5, 0.75, 2.0}) {
  Volume<T> v(d, spacing);
  std::mt19937 rng(7);
  for (index_t i = 0; i < v.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) v[i] = std::uniform_real_distribution<float>(-1e3f, 1e3f)(rng);
    else
      v[i] = static_cast<T>(
          std::uniform_int_distribution<long long>(std::numeric_limits<T>::min(), std::numeric_limits<T>::max())(rng));
  }
  return v;
}

template <class T>
void expect_same_voxels(const Volume<T>& a, const AnyVolume& any) {
  ASSERT_TRUE(std::holds_alternative<Volume<T>>(any)) << "dtype " << to_string(dtype_of(any));
  const auto& b = std::get<Volume<T>>(any);
  ASSERT_EQ(a.dims(), b.dims());
  for (index_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "voxel " << i;
}

void expect_spacing(const Vec3& want, const Vec3& got, double rel = 1e-6) {
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(got[a], want[a], rel * want[a]) << "axis " << a;
}

AnyVolume read_path(const std::string& path);
// f throws an InputError whose message names `file` and each of `what`.
template <class... What>
void expect_input_error_naming(const std::function<void()>& f, const std::string& file, const What&... what) {
  try {
    f();
    ADD_FAILURE() << "no error for " << file;
  } catch (const InputError& e) {
    const std::string m = e.what();
    for (const std::string& part : {file, std::string(what)...}) EXPECT_NE(m.find(part), std::string::npos) << m;
  }
}

template <class T>
class RoundTrip : public ::testing::Test {};
using Types = ::testing::Types<std::uint8_t, std::uint16_t, std::int16_t, std::uint32_t, float>;
TYPED_TEST_SUITE(RoundTrip, Types);

TYPED_TEST(RoundTrip, EveryFormatKeepsVoxelsDtypeAndSpacing) {
  const fs::path dir = scratch("rt_" + to_string(dtype_of<TypeParam>()));
  const Volume<TypeParam> v = pattern<TypeParam>({7, 5, 4});
  for (const std::string name : {"v.tif", "v_plain.tif", "v.mha", "v.nrrd", "v.nii.gz", "v.npy", "v.h5"}) {
    SCOPED_TRACE(name);
    const std::string path = (dir / name).string();
    WriteOptions w;
    w.compress = name != "v_plain.tif";
    write_volume(v, path, w);
    ReadOptions o;
    o.path = path;
    const ReadResult r = read_volume(o);
    expect_same_voxels(v, r.volume);
    if (name != "v.npy") {
      EXPECT_TRUE(r.spacing_from_file);
      expect_spacing(v.spacing_um, spacing_of(r.volume));
    }
    const VolumeInfo info = probe_volume(o);
    EXPECT_EQ(info.dims, v.dims());
    EXPECT_EQ(info.dtype, dtype_of<TypeParam>());
    EXPECT_EQ(info.format, r.format);
  }
  // Raw: the caller supplies dims and dtype.
  const std::string raw = (dir / "v.raw").string();
  write_volume(v, raw);
  ReadOptions o;
  o.path = raw;
  o.dims = v.dims();
  o.dtype = dtype_of<TypeParam>();
  expect_same_voxels(v, read_volume(o).volume);
}

TEST(Write, DeflateTiffBytesDoNotDependOnTheThreadCount) {
  const fs::path dir = scratch("threads");
  const Volume<float> v = pattern<float>({40, 30, 37});
  std::string bytes[2];
  for (int k = 0; k < 2; ++k) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, k == 0 ? 1 : 4);
    const std::string path = (dir / ("t" + std::to_string(k) + ".tif")).string();
    write_volume(v, path);
    std::ifstream in(path, std::ios::binary);
    bytes[k].assign(std::istreambuf_iterator<char>(in), {});
    expect_same_voxels(v, read_path(path));
  }
  EXPECT_EQ(bytes[0], bytes[1]);
}

TEST(Write, LabelVolumeWritesAsUint8) {
  const fs::path dir = scratch("labels");
  LabelVolume labels(Volume<std::uint8_t>({3, 2, 2}, {0.4, 0.4, 0.8}, 2), PhaseTable{});
  labels[5] = 1;
  write_volume(labels, (dir / "labels.tif").string());
  const auto back = std::get<Volume<std::uint8_t>>(read_path((dir / "labels.tif").string()));
  EXPECT_EQ(back.storage(), labels.storage());
  expect_spacing({0.4, 0.4, 0.8}, back.spacing_um);
}

// ---- TIFF written here with libtiff, the way other tools write them ----

struct PageSpec {
  std::uint32_t w, h;
  std::uint16_t bits = 8, format = SAMPLEFORMAT_UINT, compression = COMPRESSION_NONE;
  std::uint32_t rows_per_strip = 3;
  std::uint32_t tile = 0;  // tile edge (multiple of 16); 0 = strips
};

// Writes pages of `bytes` (each page's rows packed as TIFF stores them) to path.
void write_raw_tiff(const std::string& path, const PageSpec& s, const std::vector<std::vector<std::uint8_t>>& pages,
                    const std::string& description = "", float xres = 0, std::uint16_t res_unit = RESUNIT_NONE) {
  TIFF* t = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(t, nullptr);
  for (std::size_t p = 0; p < pages.size(); ++p) {
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, s.w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, s.h);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, s.bits);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, s.format);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, s.compression);
    if (!description.empty()) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
    if (xres > 0) {
      TIFFSetField(t, TIFFTAG_XRESOLUTION, xres);
      TIFFSetField(t, TIFFTAG_YRESOLUTION, xres / 2);
      TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, res_unit);
    }
    const std::size_t row_bytes = (static_cast<std::size_t>(s.w) * s.bits + 7) / 8;
    if (s.tile) {
      TIFFSetField(t, TIFFTAG_TILEWIDTH, s.tile);
      TIFFSetField(t, TIFFTAG_TILELENGTH, s.tile);
      const std::size_t bps = s.bits / 8;
      std::vector<std::uint8_t> tile(static_cast<std::size_t>(s.tile) * s.tile * bps);
      for (std::uint32_t ty = 0; ty < s.h; ty += s.tile)
        for (std::uint32_t tx = 0; tx < s.w; tx += s.tile) {
          std::fill(tile.begin(), tile.end(), 0);
          for (std::uint32_t y = ty; y < std::min(s.h, ty + s.tile); ++y)
            for (std::uint32_t x = tx; x < std::min(s.w, tx + s.tile); ++x)
              std::memcpy(&tile[((y - ty) * s.tile + (x - tx)) * bps], &pages[p][y * row_bytes + x * bps], bps);
          ASSERT_GE(TIFFWriteTile(t, tile.data(), tx, ty, 0, 0), 0);
        }
    } else {
      TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, s.rows_per_strip);
      for (std::uint32_t y = 0; y < s.h; ++y)
        ASSERT_GE(TIFFWriteScanline(t, const_cast<std::uint8_t*>(&pages[p][y * row_bytes]), y, 0), 0);
    }
    ASSERT_TRUE(TIFFWriteDirectory(t));
  }
  TIFFClose(t);
}

AnyVolume read_path(const std::string& path) {
  ReadOptions o;
  o.path = path;
  return read_volume(o).volume;
}

TEST(TiffRead, OneBitWithPaddedRows) {
  // 13 columns: each row takes 2 bytes, the last 3 bits are padding.
  const fs::path dir = scratch("onebit");
  const PageSpec s{13, 6, 1};
  std::vector<std::vector<std::uint8_t>> pages(3, std::vector<std::uint8_t>(2 * 6, 0));
  auto bit = [](int x, int y, int z) { return (x * 7 + y * 3 + z * 5) % 4 == 0; };
  for (int z = 0; z < 3; ++z)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 13; ++x)
        if (bit(x, y, z)) pages[z][y * 2 + x / 8] |= 0x80 >> (x % 8);
  // Padding bits set to 1: they must not leak into voxels.
  for (auto& p : pages)
    for (int y = 0; y < 6; ++y) p[y * 2 + 1] |= 0x07;
  write_raw_tiff((dir / "b.tif").string(), s, pages);
  const auto v = std::get<Volume<std::uint8_t>>(read_path((dir / "b.tif").string()));
  ASSERT_EQ(v.dims(), (Dims{13, 6, 3}));
  for (int z = 0; z < 3; ++z)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 13; ++x) ASSERT_EQ(v(x, y, z), bit(x, y, z) ? 1 : 0) << x << "," << y << "," << z;
}

class TiffCompression : public ::testing::TestWithParam<std::uint16_t> {};

TEST_P(TiffCompression, SixteenBitStripsAndTilesDecode) {
  const fs::path dir = scratch("comp" + std::to_string(GetParam()));
  const std::uint32_t w = 37, h = 21;
  std::vector<std::vector<std::uint8_t>> pages(4, std::vector<std::uint8_t>(w * h * 2));
  for (std::uint32_t z = 0; z < 4; ++z)
    for (std::uint32_t i = 0; i < w * h; ++i) {
      const std::uint16_t value = static_cast<std::uint16_t>(i * 97 + z * 1013);
      std::memcpy(&pages[z][2 * i], &value, 2);
    }
  for (std::uint32_t tile : {0u, 16u}) {
    PageSpec s{w, h, 16, SAMPLEFORMAT_UINT, GetParam(), 5, tile};
    const std::string path = (dir / ("t" + std::to_string(tile) + ".tif")).string();
    write_raw_tiff(path, s, pages);
    const auto v = std::get<Volume<std::uint16_t>>(read_path(path));
    ASSERT_EQ(v.dims(), (Dims{w, h, 4}));
    for (std::uint32_t z = 0; z < 4; ++z)
      for (std::uint32_t i = 0; i < w * h; ++i)
        ASSERT_EQ(v[z * w * h + i], static_cast<std::uint16_t>(i * 97 + z * 1013)) << "tile " << tile;
    // ROI inside tiles/strips: only the box, origin moves with it.
    ReadOptions o;
    o.path = path;
    o.roi = Box{{3, 4, 1}, {20, 9, 2}};
    const auto r = std::get<Volume<std::uint16_t>>(read_volume(o).volume);
    ASSERT_EQ(r.dims(), (Dims{20, 9, 2}));
    for (index_t z = 0; z < 2; ++z)
      for (index_t y = 0; y < 9; ++y)
        for (index_t x = 0; x < 20; ++x) {
          const std::uint32_t i = static_cast<std::uint32_t>((x + 3) + (y + 4) * w);
          ASSERT_EQ(r(x, y, z), static_cast<std::uint16_t>(i * 97 + (z + 1) * 1013));
        }
    EXPECT_DOUBLE_EQ(r.origin_um[0], 3.0);
    EXPECT_DOUBLE_EQ(r.origin_um[2], 1.0);
  }
}
INSTANTIATE_TEST_SUITE_P(Codecs, TiffCompression,
                         ::testing::Values(COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE));

TEST(TiffRead, ReducedResolutionPagesAreNotSlices) {
  const fs::path dir = scratch("thumb");
  const std::string path = (dir / "thumb.tif").string();
  TIFF* t = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(t, nullptr);
  // slice 0 (4 x 3), a 2 x 2 thumbnail, slice 1.
  for (int page = 0; page < 3; ++page) {
    const bool thumb = page == 1;
    const std::uint32_t w = thumb ? 2 : 4, h = thumb ? 2 : 3;
    TIFFSetField(t, TIFFTAG_SUBFILETYPE, thumb ? FILETYPE_REDUCEDIMAGE : 0);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, h);
    std::vector<std::uint8_t> row(w, static_cast<std::uint8_t>(10 * page + 1));
    for (std::uint32_t y = 0; y < h; ++y) ASSERT_GE(TIFFWriteScanline(t, row.data(), y, 0), 0);
    ASSERT_TRUE(TIFFWriteDirectory(t));
  }
  TIFFClose(t);
  const auto v = std::get<Volume<std::uint8_t>>(read_path(path));
  ASSERT_EQ(v.dims(), (Dims{4, 3, 2}));
  EXPECT_EQ(v(3, 2, 0), 1);
  EXPECT_EQ(v(3, 2, 1), 21);
}

TEST(TiffRead, ImageJStackWithOneDirectoryAndContiguousPlanes) {
  const fs::path dir = scratch("ijbig");
  std::vector<std::uint16_t> values(5 * 4 * 3);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint16_t>(1000 + 3 * i);
  const std::string path = (dir / "big.tif").string();
  std::ofstream(path, std::ios::binary) << vp::craft::imagej_big_stack(5, 4, 3, values);
  ReadOptions o;
  o.path = path;
  const ReadResult r = read_volume(o);
  const auto& v = std::get<Volume<std::uint16_t>>(r.volume);
  ASSERT_EQ(v.dims(), (Dims{5, 4, 3}));
  for (index_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], values[i]);
  expect_spacing({0.5, 0.5, 3.0}, v.spacing_um);
  o.roi = Box{{1, 1, 2}, {3, 2, 1}};
  const auto roi = std::get<Volume<std::uint16_t>>(read_volume(o).volume);
  EXPECT_EQ(roi(0, 0, 0), v(1, 1, 2));
  EXPECT_EQ(roi(2, 1, 0), v(3, 2, 2));
  // The last plane cut short: an error, not a shorter stack.
  std::string bytes = vp::craft::imagej_big_stack(5, 4, 3, values);
  bytes.resize(bytes.size() - 10);
  std::ofstream(path, std::ios::binary) << bytes;
  o.roi.reset();
  EXPECT_THROW(read_volume(o), InputError);
}

TEST(TiffRead, Int8WidensToInt16) {
  const fs::path dir = scratch("int8");
  std::vector<std::vector<std::uint8_t>> pages{{0x80, 0xff, 0x00, 0x7f}};
  write_raw_tiff((dir / "i8.tif").string(), PageSpec{4, 1, 8, SAMPLEFORMAT_INT}, pages);
  const auto v = std::get<Volume<std::int16_t>>(read_path((dir / "i8.tif").string()));
  EXPECT_EQ(v[0], -128);
  EXPECT_EQ(v[1], -1);
  EXPECT_EQ(v[2], 0);
  EXPECT_EQ(v[3], 127);
}

TEST(TiffRead, SpacingFromImageJAndResolutionUnits) {
  const fs::path dir = scratch("spacing");
  std::vector<std::vector<std::uint8_t>> pages(2, std::vector<std::uint8_t>(4, 1));
  const PageSpec s{2, 2};
  // ImageJ: unit in the description, z spacing there, x/y as pixels per unit.
  write_raw_tiff((dir / "ij.tif").string(), s, pages, "ImageJ=1.54f\nimages=2\nunit=nm\nspacing=250\n", 4.0f);
  ReadOptions o;
  o.path = (dir / "ij.tif").string();
  ReadResult r = read_volume(o);
  EXPECT_TRUE(r.spacing_from_file);
  expect_spacing({0.00025, 0.0005, 0.25}, spacing_of(r.volume));
  // Plain centimetre resolution: 5000 px/cm = 2 µm; z assumed equal to x.
  write_raw_tiff((dir / "cm.tif").string(), s, pages, "", 5000.0f, RESUNIT_CENTIMETER);
  o.path = (dir / "cm.tif").string();
  r = read_volume(o);
  EXPECT_TRUE(r.spacing_from_file);
  expect_spacing({2, 4, 2}, spacing_of(r.volume));
  // Inch: 25400 dpi = 1 µm.
  write_raw_tiff((dir / "in.tif").string(), s, pages, "", 25400.0f, RESUNIT_INCH);
  o.path = (dir / "in.tif").string();
  expect_spacing({1, 2, 1}, spacing_of(read_volume(o).volume));
  // 100 dpi is an editor's default, not a voxel size.
  write_raw_tiff((dir / "dpi.tif").string(), s, pages, "", 100.0f, RESUNIT_INCH);
  o.path = (dir / "dpi.tif").string();
  EXPECT_FALSE(read_volume(o).spacing_from_file);
  // No resolution: spacing not from the file.
  write_raw_tiff((dir / "none.tif").string(), s, pages);
  o.path = (dir / "none.tif").string();
  r = read_volume(o);
  EXPECT_FALSE(r.spacing_from_file);
  expect_spacing({1, 1, 1}, spacing_of(r.volume));
}

TEST(TiffWrite, ImageJDescriptionAndResolution) {
  const fs::path dir = scratch("ijwrite");
  Volume<std::uint16_t> v({3, 2, 4}, {0.390625, 0.390625, 1.5}, 9);
  v[0] = 2;
  write_volume(v, (dir / "v.tif").string());
  TIFF* t = TIFFOpen((dir / "v.tif").string().c_str(), "r");
  ASSERT_NE(t, nullptr);
  char* desc = nullptr;
  ASSERT_TRUE(TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc));
  const std::string d(desc);
  EXPECT_EQ(d.rfind("ImageJ=", 0), 0u);
  EXPECT_NE(d.find("\nimages=4\n"), std::string::npos);
  EXPECT_NE(d.find("\nunit=micron\n"), std::string::npos);
  EXPECT_NE(d.find("\nspacing=1.5\n"), std::string::npos);
  EXPECT_NE(d.find("\nmin=2\nmax=9\n"), std::string::npos);
  float xres = 0;
  std::uint16_t comp = 0;
  ASSERT_TRUE(TIFFGetField(t, TIFFTAG_XRESOLUTION, &xres));
  EXPECT_FLOAT_EQ(xres, 2.56f);
  TIFFGetField(t, TIFFTAG_COMPRESSION, &comp);
  EXPECT_EQ(comp, COMPRESSION_ADOBE_DEFLATE);
  EXPECT_EQ(TIFFNumberOfDirectories(t), 4);
  TIFFClose(t);
}

TEST(TiffRead, FolderAndGlobOfSlicesSortNaturally) {
  const fs::path dir = scratch("slices");
  // slice_10 must come after slice_9.
  for (int z : {0, 1, 2, 9, 10}) {
    Volume<float> s({4, 3, 1}, {1, 1, 1}, static_cast<float>(z) + 0.5f);
    write_volume(s, (dir / ("slice_" + std::to_string(z) + ".tif")).string());
  }
  std::ofstream(dir / "notes.txt") << "not a slice";
  for (const std::string& path : {dir.string(), (dir / "slice_*.tif").string()}) {
    ReadOptions o;
    o.path = path;
    const ReadResult r = read_volume(o);
    const auto& v = std::get<Volume<float>>(r.volume);
    ASSERT_EQ(v.dims(), (Dims{4, 3, 5}));
    const float want[5] = {0.5f, 1.5f, 2.5f, 9.5f, 10.5f};
    for (int z = 0; z < 5; ++z) EXPECT_EQ(v(3, 2, z), want[z]);
    // Provenance: one hash over the slice files in order.
    Sha256 h;
    for (int z : {0, 1, 2, 9, 10}) {
      std::ifstream in(dir / ("slice_" + std::to_string(z) + ".tif"), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      h.update(bytes.data(), bytes.size());
    }
    EXPECT_EQ(v.provenance.sha256, h.hex_digest());
  }
}

TEST(Provenance, AbsolutePathAndFileHash) {
  const fs::path dir = scratch("prov");
  write_volume(Volume<std::uint8_t>({2, 2, 2}, {1, 1, 1}, 3), (dir / "p.mha").string());
  const fs::path cwd = fs::current_path();
  fs::current_path(dir);
  ReadOptions o;
  o.path = "p.mha";
  const auto r = read_volume(o);
  fs::current_path(cwd);
  EXPECT_EQ(provenance_of(r.volume).path, (dir / "p.mha").string());
  EXPECT_EQ(provenance_of(r.volume).sha256, sha256_file((dir / "p.mha").string()));
}

TEST(ItkFormats, OriginAndSpacingInMicrometres) {
  const fs::path dir = scratch("origin");
  Volume<float> v({3, 3, 3}, {0.1, 0.2, 0.3}, 1.0f);
  v.origin_um = {10, 20, 30};
  for (const std::string name : {"o.mha", "o.nrrd", "o.nii"}) {
    write_volume(v, (dir / name).string());
    const auto r = read_path((dir / name).string());
    expect_spacing({0.1, 0.2, 0.3}, spacing_of(r));
    const auto& o = std::get<Volume<float>>(r).origin_um;
    EXPECT_NEAR(o[0], 10, 1e-6) << name;
    EXPECT_NEAR(o[1], 20, 1e-6) << name;
    EXPECT_NEAR(o[2], 30, 1e-6) << name;
  }
}

TEST(ItkFormats, RoiEqualsTheCropOfTheFullRead) {
  const fs::path dir = scratch("itkroi");
  const Volume<std::int16_t> v = pattern<std::int16_t>({9, 7, 6});
  const Box box{{2, 1, 3}, {5, 4, 2}};
  const Volume<std::int16_t> want = v.crop(box);
  for (const std::string name : {"plain.mha", "zlib.mha", "v.nrrd", "v.nii"}) {
    WriteOptions w;
    w.compress = name == "zlib.mha";
    write_volume(v, (dir / name).string(), w);
    ReadOptions o;
    o.path = (dir / name).string();
    o.roi = box;
    const auto got = std::get<Volume<std::int16_t>>(read_volume(o).volume);
    ASSERT_EQ(got.dims(), want.dims()) << name;
    EXPECT_EQ(got.storage(), want.storage()) << name;
    EXPECT_NEAR(got.origin_um[2], 3 * 2.0, 1e-6) << name;  // NIfTI stores float32
  }
}

TEST(ItkFormats, DetachedMhdAndNhdrHeadersReadTheirDataFile) {
  const fs::path dir = scratch("detached");
  std::string data;
  for (std::uint16_t i = 0; i < 12; ++i) data.append(reinterpret_cast<const char*>(&i), 2);
  std::ofstream(dir / "v.raw", std::ios::binary) << data;
  std::ofstream(dir / "v.mhd") << "ObjectType = Image\nNDims = 3\nDimSize = 3 2 2\nElementSpacing = 0.5 0.25 2\n"
                                  "ElementType = MET_USHORT\nElementByteOrderMSB = False\nElementDataFile = v.raw\n";
  std::ofstream(dir / "v.nhdr") << "NRRD0004\ntype: uint16\ndimension: 3\nsizes: 3 2 2\nspacings: 0.5 0.25 2\n"
                                   "encoding: raw\nendian: little\ndata file: v.raw\n";
  for (const std::string name : {"v.mhd", "v.nhdr"}) {
    ReadOptions o;
    o.path = (dir / name).string();
    const ReadResult r = read_volume(o);
    const auto& v = std::get<Volume<std::uint16_t>>(r.volume);
    ASSERT_EQ(v.dims(), (Dims{3, 2, 2})) << name;
    EXPECT_EQ(v(2, 1, 1), 11);
    EXPECT_EQ(v(1, 0, 1), 7);
    expect_spacing({0.5, 0.25, 2}, v.spacing_um);
    // Provenance covers the header and the voxels: one hash over both files.
    std::ifstream in(dir / name, std::ios::binary);
    const std::string header((std::istreambuf_iterator<char>(in)), {});
    Sha256 h;
    h.update(header.data(), header.size());
    h.update(data.data(), data.size());
    EXPECT_EQ(v.provenance.sha256, h.hex_digest()) << name;
  }
  // The detached data file shorter than the header says.
  fs::resize_file(dir / "v.raw", 20);
  ReadOptions o;
  o.path = (dir / "v.mhd").string();
  EXPECT_THROW(read_volume(o), InputError);
}

// ---- raw ----

TEST(Raw, BigEndianWithHeaderOffsetAndRoi) {
  const fs::path dir = scratch("raw");
  const std::string path = (dir / "be.raw").string();
  const Dims d{5, 4, 3};
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(17, 'H');  // a 17-byte header to skip
    for (index_t i = 0; i < d.count(); ++i) {
      const std::uint16_t value = static_cast<std::uint16_t>(1000 + i * 7);
      const char be[2] = {static_cast<char>(value >> 8), static_cast<char>(value & 0xff)};
      out.write(be, 2);
    }
  }
  ReadOptions o;
  o.path = path;
  o.dims = d;
  o.dtype = DType::u16;
  o.big_endian = true;
  o.header_bytes = 17;
  const auto v = std::get<Volume<std::uint16_t>>(read_volume(o).volume);
  for (index_t i = 0; i < d.count(); ++i) ASSERT_EQ(v[i], 1000 + i * 7);
  o.roi = Box{{1, 2, 1}, {3, 2, 2}};
  const auto r = std::get<Volume<std::uint16_t>>(read_volume(o).volume);
  for (index_t z = 0; z < 2; ++z)
    for (index_t y = 0; y < 2; ++y)
      for (index_t x = 0; x < 3; ++x) EXPECT_EQ(r(x, y, z), 1000 + v.index(x + 1, y + 2, z + 1) * 7);
  // A box leaving the volume names the file and the axis.
  o.roi = Box{{0, 0, 2}, {5, 4, 2}};
  expect_input_error_naming([&] { read_volume(o); }, path, "ROI along z [2, 4)");
}

TEST(Raw, SizeMismatchSaysExpectedAndActualBytes) {
  const fs::path dir = scratch("rawsize");
  const std::string path = (dir / "short.raw").string();
  std::ofstream(path, std::ios::binary) << std::string(999, '\0');
  ReadOptions o;
  o.path = path;
  o.dims = Dims{10, 10, 10};
  o.dtype = DType::u8;
  expect_input_error_naming([&] { read_volume(o); }, path, "1000 bytes", "999 bytes");
  o.dims.reset();
  EXPECT_THROW(read_volume(o), InputError);  // raw needs dims
}

// ---- npy ----

void write_npy_file(const std::string& path, const std::string& descr, const std::string& shape, bool fortran,
                    const std::vector<std::uint8_t>& data) {
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
  while ((10 + dict.size() + 1) % 64) dict += ' ';
  dict += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(dict.size() & 0xff), static_cast<char>(dict.size() >> 8)};
  out.write(len, 2);
  out << dict;
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

TEST(Npy, Int8IsInt16AndFortranOrderIsTransposed) {
  const fs::path dir = scratch("npy");
  // shape (z=2, y=1, x=3), C order.
  write_npy_file((dir / "c.npy").string(), "|i1", "(2, 1, 3)", false, {0, 1, 2, 0xff, 4, 5});
  const auto c = std::get<Volume<std::int16_t>>(read_path((dir / "c.npy").string()));
  ASSERT_EQ(c.dims(), (Dims{3, 1, 2}));
  EXPECT_EQ(c(2, 0, 0), 2);
  EXPECT_EQ(c(0, 0, 1), -1);
  // The same array in Fortran order: numpy axis 0 (z) fastest in the file.
  write_npy_file((dir / "f.npy").string(), "|i1", "(2, 1, 3)", true, {0, 0xff, 1, 4, 2, 5});
  const auto f = std::get<Volume<std::int16_t>>(read_path((dir / "f.npy").string()));
  ASSERT_EQ(f.dims(), c.dims());
  for (index_t i = 0; i < c.size(); ++i) EXPECT_EQ(f[i], c[i]) << i;
  // float64 narrows to float32; big-endian is swapped.
  std::vector<std::uint8_t> be(8);
  const double x = 2.5;
  std::memcpy(be.data(), &x, 8);
  std::reverse(be.begin(), be.end());
  write_npy_file((dir / "d.npy").string(), ">f8", "(1, 1)", false, be);
  EXPECT_EQ(std::get<Volume<float>>(read_path((dir / "d.npy").string()))[0], 2.5f);
  write_npy_file((dir / "c16.npy").string(), "<c16", "(1, 1, 1)", false, std::vector<std::uint8_t>(16));
  EXPECT_THROW(read_path((dir / "c16.npy").string()), InputError);
}

// ---- HDF5 ----

void write_h5(const std::string& path, const std::string& name, const std::vector<hsize_t>& shape, hid_t type,
              const void* data) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t sp = H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr);
  hid_t ds = H5Dcreate2(f, name.c_str(), type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(ds);
  // A second, 1-D dataset that the "only 3-D dataset" rule must skip.
  const hsize_t n = 2;
  hid_t sp1 = H5Screate_simple(1, &n, nullptr);
  const double theta[2] = {0, 1};
  hid_t ds1 = H5Dcreate2(f, "/exchange/theta", H5T_NATIVE_DOUBLE, sp1, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds1, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, theta);
  H5Dclose(ds1);
  H5Sclose(sp1);
  H5Sclose(sp);
  H5Pclose(lcpl);
  H5Fclose(f);
}

TEST(Hdf5, DXchangeDatasetShapeZyxAndHyperslabRoi) {
  const fs::path dir = scratch("h5");
  const std::string path = (dir / "scan.h5").string();
  // numpy shape (z=3, y=4, x=5) of float64.
  std::vector<double> data(60);
  for (int i = 0; i < 60; ++i) data[i] = i * 0.5;
  write_h5(path, "/exchange/data", {3, 4, 5}, H5T_NATIVE_DOUBLE, data.data());
  for (const std::string name : {"/exchange/data", ""}) {
    ReadOptions o;
    o.path = path;
    o.dataset = name;
    const auto v = std::get<Volume<float>>(read_volume(o).volume);
    ASSERT_EQ(v.dims(), (Dims{5, 4, 3}));
    EXPECT_EQ(v(4, 0, 0), 2.0f);
    EXPECT_EQ(v(0, 1, 0), 2.5f);
    EXPECT_EQ(v(0, 0, 2), 20.0f);
    o.roi = Box{{1, 2, 1}, {3, 1, 2}};
    const auto r = std::get<Volume<float>>(read_volume(o).volume);
    ASSERT_EQ(r.dims(), (Dims{3, 1, 2}));
    for (index_t z = 0; z < 2; ++z)
      for (index_t x = 0; x < 3; ++x) EXPECT_EQ(r(x, 0, z), v(x + 1, 2, z + 1));
  }
}

TEST(Hdf5, WriterPutsTheVolumeWhereAsked) {
  const fs::path dir = scratch("h5write");
  const Volume<std::int16_t> v = pattern<std::int16_t>({4, 3, 2}, {0.3, 0.4, 0.5});
  WriteOptions w;
  w.dataset = "/results/labels";
  write_volume(v, (dir / "out.hdf5").string(), w);
  ReadOptions o;
  o.path = (dir / "out.hdf5").string();
  o.dataset = "/results/labels";
  const ReadResult r = read_volume(o);
  expect_same_voxels(v, r.volume);
  EXPECT_TRUE(r.spacing_from_file);
  expect_spacing({0.3, 0.4, 0.5}, spacing_of(r.volume));
}

TEST(Hdf5, WithoutANameExactlyOne3DDatasetIsRequired) {
  const fs::path dir = scratch("h5two");
  const std::string path = (dir / "two.h5").string();
  write_volume(Volume<std::uint8_t>({2, 2, 2}), path);  // /exchange/data
  {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hsize_t shape[3] = {1, 2, 3};
    hid_t sp = H5Screate_simple(3, shape, nullptr);
    hid_t ds = H5Dcreate2(f, "/exchange/data_dark", H5T_NATIVE_UINT16, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const std::uint16_t dark[6] = {1, 2, 3, 4, 5, 6};  // written: a shape without data is refused
    H5Dwrite(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, dark);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
  }
  ReadOptions o;
  o.path = path;
  expect_input_error_naming([&] { read_volume(o); }, path, "2 3-D datasets", "/exchange/data (2, 2, 2) uint8",
                            "/exchange/data_dark (1, 2, 3) uint16");
  o.dataset = "/exchange/data_dark";
  EXPECT_EQ(dims_of(read_volume(o).volume), (Dims{3, 2, 1}));
}

TEST(Hdf5, MissingDatasetListsTheDatasetsFound) {
  const fs::path dir = scratch("h5missing");
  const std::string path = (dir / "scan.h5").string();
  const std::uint8_t data[8] = {};
  write_h5(path, "/exchange/data", {2, 2, 2}, H5T_NATIVE_UINT8, data);
  ReadOptions o;
  o.path = path;
  o.dataset = "/exchange/data_white";
  expect_input_error_naming([&] { read_volume(o); }, path, "'/exchange/data_white' not found",
                            "/exchange/data (2, 2, 2) uint8", "/exchange/theta (2) float64");
}

// ---- bad input: InputError naming the file, and no partial output ----

TEST(BadInput, EachGivesInputErrorNamingTheFile) {
  const fs::path dir = scratch("bad");
  // Truncated TIFF: a valid uncompressed stack cut in the middle of its voxels.
  Volume<std::uint16_t> big({64, 64, 8}, {1, 1, 1}, 7);
  WriteOptions plain;
  plain.compress = false;
  const std::string whole = (dir / "whole.tif").string(), cut = (dir / "cut.tif").string();
  write_volume(big, whole, plain);
  {
    // libtiff writes each page's data, then its IFD: cutting the file at 3/4 loses the data
    // and IFD of the last pages, which must not read as a shorter stack.
    std::ifstream in(whole, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    bytes.resize(bytes.size() * 3 / 4);
    std::ofstream(cut, std::ios::binary) << bytes;
  }
  expect_input_error_naming([&] { read_path(cut); }, cut, "");
  // Corrupt compressed data: page 1's first Deflate strip overwritten with garbage.
  const std::string bad_strip = (dir / "bad_strip.tif").string();
  write_volume(pattern<std::uint16_t>({32, 32, 2}), bad_strip);
  {
    TIFF* t = TIFFOpen(bad_strip.c_str(), "r");
    ASSERT_TRUE(TIFFSetDirectory(t, 1));
    std::uint64_t* offsets = nullptr;
    ASSERT_TRUE(TIFFGetField(t, TIFFTAG_STRIPOFFSETS, &offsets));
    const std::uint64_t at = offsets[0];
    TIFFClose(t);
    std::fstream io(bad_strip, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(at));
    io << std::string(64, '\xff');
  }
  expect_input_error_naming([&] { read_path(bad_strip); }, bad_strip, "page 1");
  // Truncated MHA, NRRD and npy: the header promises more voxels than the file holds.
  for (const std::string name :
       {"cut.mha", "cut.nrrd", "cut.npy", "cut.nii", "cutz.mha", "cutz.nrrd", "cutz.nii.gz", "cut.h5", "cutz.h5"}) {
    const std::string path = (dir / name).string();
    WriteOptions w;
    w.compress = name.find("cutz") == 0;
    write_volume(pattern<std::uint16_t>({64, 64, 8}), path, w);
    fs::resize_file(path, fs::file_size(path) - 1000);
    expect_input_error_naming([&] { read_path(path); }, path, "");
  }
  // Zero-sized: a raw volume with a zero dimension.
  const std::string empty = (dir / "empty.raw").string();
  std::ofstream(empty, std::ios::binary).close();
  ReadOptions o;
  o.path = empty;
  o.dims = Dims{0, 4, 4};
  o.dtype = DType::u8;
  expect_input_error_naming([&] { read_volume(o); }, empty, "zero-sized");
  // NaN and Inf in a float volume: the voxel is named.
  Volume<float> nan({4, 3, 2}, {1, 1, 1}, 1.0f);
  nan(2, 1, 1) = std::numeric_limits<float>::quiet_NaN();
  write_volume(nan, (dir / "nan.tif").string());
  expect_input_error_naming([&] { read_path((dir / "nan.tif").string()); }, "nan.tif", "voxel (x=2, y=1, z=1)");
  // Of several, the first in memory order is named (whatever the thread count).
  Volume<float> many({128, 64, 32}, {1, 1, 1}, 0.0f);
  many(5, 60, 31) = std::numeric_limits<float>::infinity();
  many(100, 3, 17) = std::numeric_limits<float>::quiet_NaN();
  write_volume(many, (dir / "many.mha").string());
  expect_input_error_naming([&] { read_path((dir / "many.mha").string()); }, "many.mha", "voxel (x=100, y=3, z=17)");
  nan(2, 1, 1) = 1;
  nan(0, 2, 0) = -std::numeric_limits<float>::infinity();
  write_volume(nan, (dir / "inf.mha").string());
  expect_input_error_naming([&] { read_path((dir / "inf.mha").string()); }, "inf.mha", "voxel (x=0, y=2, z=0)");
  // Unsupported sample format: 64-bit float TIFF.
  write_raw_tiff((dir / "f64.tif").string(), PageSpec{1, 1, 64, SAMPLEFORMAT_IEEEFP},
                 {std::vector<std::uint8_t>(8, 0)});
  expect_input_error_naming([&] { read_path((dir / "f64.tif").string()); }, "f64.tif", "unsupported sample format");
  // Missing file.
  expect_input_error_naming([&] { read_path((dir / "nope.tif").string()); }, "nope.tif", "no such file");
  expect_input_error_naming([&] { read_path((dir / "nope_*.tif").string()); }, "nope_*.tif", "matches no file");
  // Not a TIFF at all.
  std::ofstream(dir / "text.tif") << "hello";
  expect_input_error_naming([&] { read_path((dir / "text.tif").string()); }, "text.tif", "");
  // Unknown extension.
  std::ofstream(dir / "v.xyz") << "hello";
  expect_input_error_naming([&] { read_path((dir / "v.xyz").string()); }, "v.xyz", "format");
}

TEST(BadInput, FailedWritesLeaveNoFile) {
  const fs::path dir = scratch("nopartial");
  // A zero-sized volume is refused before anything is written.
  Volume<std::uint8_t> empty({0, 3, 3});
  EXPECT_THROW(write_volume(empty, (dir / "e.tif").string()), InputError);
  // MHD would need a second (.raw) file: refused, nothing written.
  EXPECT_THROW(write_volume(Volume<std::uint8_t>({2, 2, 2}), (dir / "v.mhd").string()), InputError);
  // ITK refuses to write into a folder that does not exist; nothing is left behind.
  EXPECT_THROW(write_volume(Volume<std::uint8_t>({2, 2, 2}), (dir / "missing" / "v.mha").string()), std::exception);
  std::size_t files = 0;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) ++files;
  EXPECT_EQ(files, 0u);
}

}  // namespace
