// Geometric tortuosity on channels with exact geodesic lengths.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "metrics/geometric_tortuosity.h"

using namespace vp;

TEST(GeometricTortuosity, StraightChannelsAreOne) {
  for (int axis = 0; axis < 3; ++axis) {
    Volume<std::uint8_t> m({16, 20, 24}, {0.5, 1.0, 2.0});
    const Dims d = m.dims();
    for (index_t z = 0; z < d.z; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t p[3] = {x, y, z};
          int a = (axis + 1) % 3, b = (axis + 2) % 3;
          if (p[a] >= 3 && p[a] < 6 && p[b] >= 4 && p[b] < 6) m(x, y, z) = 1;
        }
    auto t = geometric_tortuosity(m, {axis, 26, true});
    EXPECT_DOUBLE_EQ(t.mean, 1.0) << axis;
    EXPECT_EQ(t.outlet_voxels, 6);
    EXPECT_EQ(t.outlet_reached, 6);
    EXPECT_DOUBLE_EQ(t.ratios.max, 1.0);
    EXPECT_DOUBLE_EQ(t.straight_length_um, (d[axis] - 1) * m.spacing_um[axis]);
    ASSERT_TRUE(t.map.has_value());
    EXPECT_FLOAT_EQ((*t.map)(4, 4, 4), 1.0f);
  }
}

TEST(GeometricTortuosity, DiagonalChannelIsSqrtTwo) {
  // A channel running along (1, 0, 1): 26-neighbour paths follow it exactly; 6-neighbour paths
  // need a staircase of length 2 per diagonal step.
  Volume<std::uint8_t> m({24, 4, 20});
  for (index_t z = 0; z < 20; ++z)
    for (index_t y = 0; y < 4; ++y)
      for (index_t x = z; x < z + 2; ++x) m(x, y, z) = 1;
  // L = 19. Outlet x = 19: from inlet x = 1, 18 diagonal steps + 1 straight; outlet x = 20:
  // from inlet x = 1, 19 diagonal steps, exactly √2.
  auto t26 = geometric_tortuosity(m, {2, 26, false});
  EXPECT_NEAR(t26.ratios.min, (18 * std::sqrt(2.0) + 1) / 19, 1e-6);
  EXPECT_NEAR(t26.ratios.max, std::sqrt(2.0), 1e-6);
  auto t6 = geometric_tortuosity(m, {2, 6, false});
  EXPECT_NEAR(t6.ratios.min, (18 * 2.0 + 1) / 19, 1e-6);
}

TEST(GeometricTortuosity, DetourAroundAWall) {
  // A wall across z = 5 with one hole at x = 0 forces paths starting at x = 9 sideways.
  Volume<std::uint8_t> m({10, 1, 11}, {1, 1, 1}, 1);
  for (index_t x = 1; x < 10; ++x) m(x, 0, 5) = 0;
  auto t = geometric_tortuosity(m, {2, 26, false});
  // From the hole (0, 5) the outlet voxel (0, 10) is 5 away and (0, 0) is 5 away: ratio 1.
  EXPECT_DOUBLE_EQ(t.ratios.min, 1.0);
  // Outlet (9, 10): best path inlet (8,0)..(1,4) diagonal... exact value: through the hole,
  // from (0,5) to (9,10): 5 diagonal + 4 straight = 5√2 + 4; inlet to hole: 5 straight (from (0,0)).
  EXPECT_NEAR(t.ratios.max, (5 + 5 * std::sqrt(2.0) + 4) / 10.0, 1e-5);
  EXPECT_EQ(t.outlet_reached, 10);
}

TEST(GeometricTortuosity, NoPathGivesNaN) {
  Volume<std::uint8_t> m({5, 5, 5});
  m(2, 2, 0) = 1;
  m(2, 2, 4) = 1;
  auto t = geometric_tortuosity(m, {2, 26, false});
  EXPECT_EQ(t.outlet_voxels, 1);
  EXPECT_EQ(t.outlet_reached, 0);
  EXPECT_TRUE(std::isnan(t.mean));
  EXPECT_THROW(geometric_tortuosity(m, {3, 26, false}), InputError);
}

TEST(GeometricTortuosity, PhaseOnlyDistancesGiveTheWholeVolumeRatios) {
  // Without the map the distances are stored for the phase voxels only (addressed by rank); with
  // it, per voxel. A random 55 % mask whose size is not a multiple of 64 (words straddle rows):
  // every outlet ratio must be the same bits either way, along each axis.
  Volume<std::uint8_t> m({23, 19, 17}, {0.5, 0.7, 1.1});
  std::uint32_t state = 12345;
  for (index_t i = 0; i < m.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    m[i] = (state >> 8) % 100 < 55 ? 1 : 0;
  }
  for (int axis = 0; axis < 3; ++axis)
    for (int connectivity : {6, 26}) {
      const auto compact = geometric_tortuosity(m, {axis, connectivity, false});
      const auto whole = geometric_tortuosity(m, {axis, connectivity, true});
      ASSERT_GT(whole.outlet_reached, 0) << axis << " " << connectivity;
      EXPECT_EQ(compact.outlet_voxels, whole.outlet_voxels);
      EXPECT_EQ(compact.outlet_reached, whole.outlet_reached);
      EXPECT_EQ(compact.mean, whole.mean);
      EXPECT_EQ(compact.ratios.min, whole.ratios.min);
      EXPECT_EQ(compact.ratios.median, whole.ratios.median);
      EXPECT_EQ(compact.ratios.max, whole.ratios.max);
    }
}
