// Slice PNGs: orientation, square micrometre pixels, percentile contrast, exact palette and
// blending of overlays, viridis end points, errors, atomic writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "filters/io/slice_png.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("vp_test_io_png_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

cv::Vec3b rgb_at(const cv::Mat& bgr, int row, int col) {
  const cv::Vec3b p = bgr.at<cv::Vec3b>(row, col);
  return {p[2], p[1], p[0]};
}

TEST(SlicePng, OrientationSquarePixelsAndPercentileContrast) {
  const fs::path dir = scratch("grey");
  // 8 x 6 x 4 voxels of 0.5 x 0.5 x 2 µm; value = x + 10 y + 100 z.
  Volume<std::uint16_t> v({8, 6, 4}, {0.5, 0.5, 2.0});
  for (index_t z = 0; z < 4; ++z)
    for (index_t y = 0; y < 6; ++y)
      for (index_t x = 0; x < 8; ++x) v(x, y, z) = static_cast<std::uint16_t>(x + 10 * y + 100 * z);
  write_slice_png(v, Plane::xy, -1, (dir / "grey_xy.png").string());
  const cv::Mat xy = cv::imread((dir / "grey_xy.png").string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(xy.type(), CV_8U);
  EXPECT_EQ(xy.rows, 6);  // rows = y
  EXPECT_EQ(xy.cols, 8);  // columns = x
  // The stretch maps the slice's extremes (0.5/99.5th percentiles of 48 values are the ends).
  EXPECT_EQ(xy.at<std::uint8_t>(0, 0), 0);
  EXPECT_EQ(xy.at<std::uint8_t>(5, 7), 255);
  EXPECT_LT(xy.at<std::uint8_t>(0, 7), xy.at<std::uint8_t>(1, 0));  // y weighs 10, x 1
  // xz: rows = z at 2 µm become 4 rows of 0.5 µm each.
  write_slice_png(AnyVolume(v), Plane::xz, 2, (dir / "grey_xz.png").string());
  const cv::Mat xz = cv::imread((dir / "grey_xz.png").string(), cv::IMREAD_UNCHANGED);
  EXPECT_EQ(xz.rows, 16);
  EXPECT_EQ(xz.cols, 8);
  EXPECT_EQ(xz.at<std::uint8_t>(0, 0), 0);
  EXPECT_EQ(xz.at<std::uint8_t>(15, 7), 255);
  write_slice_png(v, Plane::yz, 0, (dir / "grey_yz.png").string());
  const cv::Mat yz = cv::imread((dir / "grey_yz.png").string(), cv::IMREAD_UNCHANGED);
  EXPECT_EQ(yz.rows, 16);
  EXPECT_EQ(yz.cols, 6);
  // Nothing but the three PNGs (no temporary files left).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 3);
}

TEST(SlicePng, PhaseOverlayUsesTheFixedPaletteAndAlpha) {
  const fs::path dir = scratch("labels");
  Volume<std::uint8_t> labels({3, 2, 1});
  for (index_t i = 0; i < 6; ++i) labels[i] = static_cast<std::uint8_t>(i % 3);
  // No grey: opaque palette colours.
  write_label_overlay_png(nullptr, labels, Plane::xy, 0, (dir / "labels_xy.png").string());
  const cv::Mat a = cv::imread((dir / "labels_xy.png").string(), cv::IMREAD_COLOR);
  for (int i = 0; i < 6; ++i) {
    const Rgb c = label_colour(static_cast<std::uint8_t>(i % 3));
    EXPECT_EQ(rgb_at(a, i / 3, i % 3), cv::Vec3b(c.r, c.g, c.b)) << i;
  }
  EXPECT_NE(label_colour(0), label_colour(1));
  EXPECT_NE(label_colour(1), label_colour(2));
  // Over a constant grey (drawn mid-grey, 128): (1 - alpha) * 128 + alpha * colour.
  const AnyVolume grey = Volume<float>({3, 2, 1}, {1, 1, 1}, 5.0f);
  write_label_overlay_png(&grey, labels, Plane::xy, 0, (dir / "blend_xy.png").string(), 0.5);
  const cv::Mat b = cv::imread((dir / "blend_xy.png").string(), cv::IMREAD_COLOR);
  const Rgb c1 = label_colour(1);
  EXPECT_EQ(rgb_at(b, 0, 1), cv::Vec3b(static_cast<std::uint8_t>(std::lround(64 + c1.r / 2.0)),
                                       static_cast<std::uint8_t>(std::lround(64 + c1.g / 2.0)),
                                       static_cast<std::uint8_t>(std::lround(64 + c1.b / 2.0))));
}

TEST(SlicePng, IdOverlayLeavesIdZeroTransparent) {
  const fs::path dir = scratch("ids");
  Volume<std::uint32_t> ids({4, 1, 1});
  ids[1] = 7;
  ids[2] = 123456;
  ids[3] = 7;
  const Volume<std::uint8_t> grey({4, 1, 1}, {1, 1, 1}, 9);
  write_label_overlay_png(&grey, ids, Plane::xy, 0, (dir / "particles_xy.png").string(), 1.0);
  const cv::Mat m = cv::imread((dir / "particles_xy.png").string(), cv::IMREAD_COLOR);
  EXPECT_EQ(rgb_at(m, 0, 0), cv::Vec3b(128, 128, 128));  // id 0: the grey shows through
  const Rgb c7 = id_colour(7), c2 = id_colour(123456);
  EXPECT_EQ(rgb_at(m, 0, 1), cv::Vec3b(c7.r, c7.g, c7.b));
  EXPECT_EQ(rgb_at(m, 0, 3), rgb_at(m, 0, 1));  // same id, same colour
  EXPECT_EQ(rgb_at(m, 0, 2), cv::Vec3b(c2.r, c2.g, c2.b));
  EXPECT_NE(c7, c2);
}

TEST(SlicePng, FieldInViridisWithNonFiniteBlack) {
  const fs::path dir = scratch("field");
  Volume<float> f({5, 1, 1});
  f[0] = -1.0f;
  f[1] = 0.0f;
  f[2] = 3.0f;
  f[3] = std::numeric_limits<float>::quiet_NaN();
  f[4] = 1.0f;
  write_field_png(f, Plane::xy, 0, (dir / "potential_xy.png").string());
  const cv::Mat m = cv::imread((dir / "potential_xy.png").string(), cv::IMREAD_COLOR);
  // viridis: dark violet at the minimum, yellow at the maximum (matplotlib's end points).
  const cv::Vec3b lo = rgb_at(m, 0, 0), hi = rgb_at(m, 0, 2);
  EXPECT_NEAR(lo[0], 68, 2);
  EXPECT_NEAR(lo[1], 1, 2);
  EXPECT_NEAR(lo[2], 84, 2);
  EXPECT_NEAR(hi[0], 253, 2);
  EXPECT_NEAR(hi[1], 231, 2);
  EXPECT_NEAR(hi[2], 37, 2);
  EXPECT_EQ(rgb_at(m, 0, 3), cv::Vec3b(0, 0, 0));
  // A fixed range clamps: 3 is above [0, 1], so it is as yellow as 1.
  write_field_png(f, Plane::xy, 0, (dir / "current_xy.png").string(), std::pair{0.0, 1.0});
  const cv::Mat r = cv::imread((dir / "current_xy.png").string(), cv::IMREAD_COLOR);
  EXPECT_EQ(rgb_at(r, 0, 2), rgb_at(r, 0, 4));
  EXPECT_EQ(rgb_at(r, 0, 0), rgb_at(r, 0, 1));
}

TEST(SlicePng, BadSliceOrSizesAreInputErrors) {
  const fs::path dir = scratch("bad");
  const Volume<std::uint8_t> v({4, 4, 2});
  EXPECT_THROW(write_slice_png(v, Plane::xy, 2, (dir / "a.png").string()), InputError);
  const Volume<std::uint8_t> other({3, 4, 2});
  EXPECT_THROW(write_label_overlay_png(&other, v, Plane::xy, 0, (dir / "b.png").string()), InputError);
  EXPECT_THROW(parse_plane("zx"), InputError);
  EXPECT_EQ(parse_plane("yz"), Plane::yz);
  EXPECT_EQ(middle_index(v.dims(), Plane::xy), 1);
  EXPECT_TRUE(fs::is_empty(dir));
}

}  // namespace
