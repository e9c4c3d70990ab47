// Every volume in the shared real-data folder loads with the dims, dtype and values its
// MANIFEST.md gives. Manifest shapes are numpy (z, y, x); ours are (x, y, z).
// Skipped when VP_REAL_DATA_DIR is absent (the files are never copied into the repo).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "filters/io/volume_io.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

std::string real_file(const std::string& name) { return (fs::path(VP_REAL_DATA_DIR) / name).string(); }

#define REQUIRE_REAL(name) \
  if (!fs::exists(real_file(name))) GTEST_SKIP() << "real data absent: " << real_file(name)

template <class T>
std::map<long long, index_t> histogram(const Volume<T>& v) {
  std::map<long long, index_t> h;
  for (index_t i = 0; i < v.size(); ++i) ++h[static_cast<long long>(v[i])];
  return h;
}

ReadResult read(const std::string& name) {
  ReadOptions o;
  o.path = real_file(name);
  return read_volume(o);
}

TEST(RealData, TaufactorElectrodeLabelsAndPoreFraction) {
  REQUIRE_REAL("taufactor_electrode.tiff");
  const auto v = std::get<Volume<std::uint8_t>>(read("taufactor_electrode.tiff").volume);
  ASSERT_EQ(v.dims(), (Dims{256, 256, 256}));
  const auto h = histogram(v);
  ASSERT_EQ(h.size(), 3u);
  // TauFactor's notebook fractions are float32 counts / 256^3: exact voxel counts.
  EXPECT_EQ(h.at(0), 7548361);
  EXPECT_EQ(h.at(85), 6718710);
  EXPECT_EQ(h.at(170), 2510145);
  EXPECT_DOUBLE_EQ(static_cast<double>(h.at(0)) / v.size(), 0.44991737604141235);
}

TEST(RealData, PumaFiberformGreyAndFibreFraction) {
  REQUIRE_REAL("puma_100_fiberform.tif");
  const auto v = std::get<Volume<std::uint8_t>>(read("puma_100_fiberform.tif").volume);
  ASSERT_EQ(v.dims(), (Dims{100, 100, 100}));
  index_t fibre = 0;
  for (index_t i = 0; i < v.size(); ++i) fibre += v[i] >= 90;
  EXPECT_EQ(fibre, 167140);  // PuMA: compute_volume_fraction(ws, (90, 255)) == 0.16714
  EXPECT_EQ(histogram(v).size(), 256u);
  // Its ImageJ header says 100 pixels per inch (254 µm): a print default, not the 1.3 µm voxel.
  EXPECT_FALSE(read("puma_100_fiberform.tif").spacing_from_file);
}

TEST(RealData, OpenImpalaOneBitTrueFraction) {
  REQUIRE_REAL("openimpala_SampleData_2Phase_stack_3d_1bit.tif");
  const auto v = std::get<Volume<std::uint8_t>>(read("openimpala_SampleData_2Phase_stack_3d_1bit.tif").volume);
  ASSERT_EQ(v.dims(), (Dims{100, 100, 100}));
  const auto h = histogram(v);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.at(1), 398309);
}

TEST(RealData, MatboxAxisOrderAndLabelFractions) {
  REQUIRE_REAL("matbox_nmc-1-cal_generatedCBD_bridge.tif");
  const auto v = std::get<Volume<std::uint8_t>>(read("matbox_nmc-1-cal_generatedCBD_bridge.tif").volume);
  // numpy (z, y, x) = (251, 301, 301): 251 pages of 301 x 301.
  ASSERT_EQ(v.dims(), (Dims{301, 301, 251}));
  const auto h = histogram(v);
  ASSERT_EQ(h.size(), 3u);
  const double n = static_cast<double>(v.size());
  EXPECT_NEAR(h.at(0) / n, 0.4005, 5e-5);
  EXPECT_NEAR(h.at(1) / n, 0.4995, 5e-5);
  EXPECT_NEAR(h.at(2) / n, 0.1000, 5e-5);
}

TEST(RealData, LeopardNpyInt8IsInt16WithPorosity) {
  REQUIRE_REAL("porespy_image_Leopard_slice100.npy");
  const ReadResult r = read("porespy_image_Leopard_slice100.npy");
  EXPECT_EQ(r.format, "npy");
  const auto v = std::get<Volume<std::int16_t>>(r.volume);  // int8 widens to int16
  ASSERT_EQ(v.dims(), (Dims{100, 100, 100}));
  const auto h = histogram(v);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.at(1), 262235);
}

TEST(RealData, RoiOfARealStackMatchesTheFullRead) {
  REQUIRE_REAL("taufactor_electrode.tiff");
  ReadOptions o;
  o.path = real_file("taufactor_electrode.tiff");
  const auto full = std::get<Volume<std::uint8_t>>(read_volume(o).volume);
  o.roi = Box{{17, 100, 200}, {50, 31, 40}};
  const auto roi = std::get<Volume<std::uint8_t>>(read_volume(o).volume);
  const auto want = full.crop(*o.roi);
  ASSERT_EQ(roi.dims(), want.dims());
  EXPECT_EQ(roi.storage(), want.storage());
}

}  // namespace
