// The dark-sheet response (sheetness.h) on analytic images: a one-voxel dark sheet responds on
// its plane only (the valley floor), a step edge not at all (the valley test), tilted and
// anisotropic sheets too, and the result is bit-identical for any thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <tbb/global_control.h>

#include "core/error.h"
#include "metrics/cracks/sheetness.h"

namespace vp {
namespace {

constexpr float kHost = 22000, kVoid = 6000;

SheetnessOptions options() {
  SheetnessOptions o;
  o.contrast = kHost - kVoid;
  o.host_level = kHost;
  return o;
}

TEST(Sheetness, OneVoxelSheetRespondsOnItsPlaneOnly) {
  Volume<float> grey({32, 32, 32}, {0.5, 0.5, 0.5}, kHost);
  for (index_t y = 0; y < 32; ++y)
    for (index_t x = 0; x < 32; ++x) grey(x, y, 16) = kVoid;
  const Volume<float> m = dark_sheetness(grey, options());
  for (index_t y = 8; y < 24; ++y)
    for (index_t x = 8; x < 24; ++x) {
      ASSERT_GT(m(x, y, 16), 0.8f) << x << "," << y;
      for (index_t z : {14, 15, 17, 18, 4, 28}) ASSERT_EQ(m(x, y, z), 0.0f) << x << "," << y << "," << z;
    }
}

TEST(Sheetness, StepEdgeIsNoSheet) {
  Volume<float> grey({32, 32, 32}, {0.5, 0.5, 0.5}, kHost);
  for (index_t z = 0; z < 16; ++z)
    for (index_t y = 0; y < 32; ++y)
      for (index_t x = 0; x < 32; ++x) grey(x, y, z) = kVoid;
  const Volume<float> m = dark_sheetness(grey, options());
  for (float v : m.storage()) ASSERT_EQ(v, 0.0f);
}

// A two-voxel sheet tilted 30° about y, on 0.5 × 0.5 × 1 µm voxels: the response follows the
// sheet (≥ 0.5 on most voxels within 0.5 µm of its mid-plane, nothing beyond 2 µm).
TEST(Sheetness, TiltedSheetOnAnisotropicVoxels) {
  const Vec3 h{0.5, 0.5, 1.0};
  Volume<float> grey({48, 48, 24}, h, kHost);
  const double nx = std::sin(M_PI / 6), nz = std::cos(M_PI / 6);
  auto dist = [&](index_t x, index_t z) { return ((x + 0.5) * h[0] - 12) * nx + ((z + 0.5) * h[2] - 12) * nz; };
  for (index_t z = 0; z < 24; ++z)
    for (index_t y = 0; y < 48; ++y)
      for (index_t x = 0; x < 48; ++x)
        if (std::abs(dist(x, z)) < 0.5) grey(x, y, z) = kVoid;
  const Volume<float> m = dark_sheetness(grey, options());
  index_t near = 0, near_on = 0;
  for (index_t z = 6; z < 18; ++z)
    for (index_t y = 8; y < 40; ++y)
      for (index_t x = 8; x < 40; ++x) {
        if (std::abs(dist(x, z)) > 2.0) {
          ASSERT_EQ(m(x, y, z), 0.0f) << x << "," << y << "," << z;
        }
        if (std::abs(dist(x, z)) < 0.5) ++near, near_on += m(x, y, z) >= 0.5f;
      }
  ASSERT_GT(near, 0);
  EXPECT_GT(near_on, 0.8 * near);
}

// A two-voxel dark sheet |x + slope·z − offset| < 1 in a 40 × 36 × 30 host, with Gaussian noise.
Volume<float> noisy_slanted_sheet(unsigned seed, double slope, double offset) {
  Volume<float> grey({40, 36, 30}, {0.5, 0.5, 0.5}, kHost);
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0, 2000);
  for (index_t z = 0; z < 30; ++z)
    for (index_t y = 0; y < 36; ++y)
      for (index_t x = 0; x < 40; ++x)
        grey(x, y, z) = (std::abs(x + slope * z - offset) < 1 ? kVoid : kHost) + noise(rng);
  return grey;
}

TEST(Sheetness, BitIdenticalForAnyThreadCount) {
  const Volume<float> grey = noisy_slanted_sheet(7, 0.4, 26);
  Volume<float> one, two;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
    one = dark_sheetness(grey, options());
  }
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
    two = dark_sheetness(grey, options());
  }
  index_t responding = 0;
  for (index_t i = 0; i < one.size(); ++i) {
    ASSERT_EQ(one[i], two[i]) << i;
    responding += one[i] > 0;
  }
  EXPECT_GT(responding, 0);
}

// Evaluated only inside a mask (detect_cracks reads it only at host voxels clear of the rest):
// the full response there, bit for bit, and 0 outside; a mask of other dims is refused.
TEST(Sheetness, MaskedResponseIsTheFullResponseInsideTheMask) {
  const Volume<float> grey = noisy_slanted_sheet(11, -0.3, 14);
  Volume<std::uint8_t> where(grey.dims(), grey.spacing_um, 0);
  for (index_t i = 0; i < where.size(); ++i) where[i] = (i * 7919) % 3 != 0;
  const Volume<float> full = dark_sheetness(grey, options());
  const Volume<float> masked = dark_sheetness(grey, options(), where);
  index_t responding = 0, masked_out = 0;
  for (index_t i = 0; i < full.size(); ++i) {
    ASSERT_EQ(masked[i], where[i] ? full[i] : 0.0f) << i;
    responding += where[i] && full[i] > 0;
    masked_out += !where[i] && full[i] > 0;
  }
  EXPECT_GT(responding, 0);
  EXPECT_GT(masked_out, 0);
  EXPECT_THROW(dark_sheetness(grey, options(), Volume<std::uint8_t>({40, 36, 29}, grey.spacing_um, 1)), InputError);
}

// The levels detect_cracks' hysteresis reads, without the float volume: 2 where the masked response
// is ≥ high, 1 where ≥ low, 0 below and outside the mask, for every voxel and thresholds that
// cut through the responses (one of them a response value itself, so ≥ is tested at equality).
TEST(Sheetness, LevelsAreTheMaskedResponseThresholded) {
  const Volume<float> grey = noisy_slanted_sheet(11, -0.3, 14);
  Volume<std::uint8_t> where(grey.dims(), grey.spacing_um, 0);
  for (index_t i = 0; i < where.size(); ++i) where[i] = (i * 7919) % 3 != 0;
  const Volume<float> response = dark_sheetness(grey, options(), where);
  std::vector<float> values;
  for (index_t i = 0; i < response.size(); ++i)
    if (response[i] > 0) values.push_back(response[i]);
  ASSERT_GT(values.size(), 10u);
  std::sort(values.begin(), values.end());
  const double low = values[values.size() / 4], high = values[values.size() * 3 / 4] + 1e-3;
  Volume<std::uint8_t> levels = where;
  dark_sheetness_levels(grey, options(), levels, low, high);
  index_t counts[3] = {0, 0, 0};
  for (index_t i = 0; i < levels.size(); ++i) {
    const int expected = where[i] ? (response[i] >= low) + (response[i] >= high) : 0;
    ASSERT_EQ(levels[i], expected) << i;
    ++counts[expected];
  }
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
  // A low threshold of 0: every masked voxel reaches it, responding or not.
  levels = where;
  dark_sheetness_levels(grey, options(), levels, 0, high);
  for (index_t i = 0; i < levels.size(); ++i) ASSERT_EQ(levels[i], where[i] ? 1 + (response[i] >= high) : 0) << i;
}

TEST(Sheetness, RejectsBadInput) {
  Volume<float> grey({8, 8, 8}, {1, 1, 1}, kHost);
  SheetnessOptions o = options();
  o.contrast = 0;
  EXPECT_THROW(dark_sheetness(grey, o), InputError);
  o = options();
  o.scales_vox = {1, 0};
  EXPECT_THROW(dark_sheetness(grey, o), InputError);
}

}  // namespace
}  // namespace vp
