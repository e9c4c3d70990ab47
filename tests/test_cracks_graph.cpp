// Skeleton graphs on constructed shapes: junctions, end points, branches, lengths, cycles.
#include <gtest/gtest.h>

#include <cmath>

#include "metrics/cracks/graph.h"
#include "metrics/cracks/skeleton.h"

namespace vp {
namespace {

using Mask = Volume<std::uint8_t>;

TEST(SkeletonGraph, PlusSignHasOneJunctionFourEndsFourBranches) {
  Mask m({11, 11, 3});
  for (index_t i = 1; i <= 9; ++i) m(i, 5, 1) = m(5, i, 1) = 1;
  const SkeletonGraph g = skeleton_graph(m);
  EXPECT_EQ(g.junction_count(), 1);
  EXPECT_EQ(g.end_count(), 4);
  EXPECT_EQ(g.branches.size(), 4u);
  ASSERT_EQ(g.networks.size(), 1u);
  EXPECT_EQ(g.networks[0].cycles, 0);
  // Branches run from the junction's centre (5, 5) to the tips: 4 voxels each.
  for (const auto& b : g.branches) EXPECT_NEAR(b.length_um, 4.0, 1e-12);
  EXPECT_NEAR(g.total_length_um(), 16.0, 1e-12);
}

TEST(SkeletonGraph, LengthsHonourAnisotropicSpacing) {
  Mask m({12, 12, 12}, {0.5, 1.0, 2.0});
  for (index_t i = 1; i <= 10; ++i) m(i, i, i) = 1;  // 9 diagonal steps
  const SkeletonGraph g = skeleton_graph(m);
  ASSERT_EQ(g.branches.size(), 1u);
  EXPECT_EQ(g.end_count(), 2);
  EXPECT_NEAR(g.total_length_um(), 9 * std::sqrt(0.25 + 1 + 4), 1e-9);
  Mask line({10, 4, 4}, {0.5, 1.0, 2.0});
  for (index_t x = 2; x <= 7; ++x) line(x, 1, 1) = 1;
  EXPECT_NEAR(skeleton_graph(line).total_length_um(), 5 * 0.5, 1e-12);
}

TEST(SkeletonGraph, RingHasOneCycle) {
  // An octagon of 26-connected voxels, each with exactly two neighbours.
  Mask m({9, 9, 3});
  for (index_t i = 2; i <= 6; ++i) m(i, 0, 1) = m(i, 8, 1) = m(0, i, 1) = m(8, i, 1) = 1;
  m(7, 1, 1) = m(7, 7, 1) = m(1, 7, 1) = m(1, 1, 1) = 1;
  const SkeletonGraph g = skeleton_graph(m);
  ASSERT_EQ(g.networks.size(), 1u);
  EXPECT_EQ(g.networks[0].cycles, 1);
  EXPECT_EQ(g.junction_count(), 0);
  EXPECT_EQ(g.end_count(), 0);
  EXPECT_NEAR(g.total_length_um(), 4 * 4 + 8 * std::sqrt(2.0), 1e-9);
}

TEST(SkeletonGraph, ThetaShapeHasTwoCycles) {
  // Two rings sharing a bar: 2 junctions, 3 branches, cycles = 3 − 2 + 1.
  Mask m({9, 9, 3});
  for (index_t i = 2; i <= 6; ++i) m(i, 0, 1) = m(i, 8, 1) = m(0, i, 1) = m(8, i, 1) = 1;
  m(7, 1, 1) = m(7, 7, 1) = m(1, 7, 1) = m(1, 1, 1) = 1;
  for (index_t y = 1; y <= 7; ++y) m(4, y, 1) = 1;
  const SkeletonGraph g = skeleton_graph(m);
  ASSERT_EQ(g.networks.size(), 1u);
  EXPECT_EQ(g.junction_count(), 2);
  EXPECT_EQ(g.branches.size(), 3u);
  EXPECT_EQ(g.cycle_count(), 2);
}

TEST(SkeletonGraph, SeparateNetworksAndIsolatedPoints) {
  Mask m({20, 6, 6});
  for (index_t x = 1; x <= 5; ++x) m(x, 2, 2) = 1;
  for (index_t x = 9; x <= 15; ++x) m(x, 3, 3) = 1;
  m(18, 4, 4) = 1;
  const SkeletonGraph g = skeleton_graph(m);
  ASSERT_EQ(g.networks.size(), 3u);
  EXPECT_NEAR(g.networks[0].length_um, 4, 1e-12);
  EXPECT_NEAR(g.networks[1].length_um, 6, 1e-12);
  EXPECT_EQ(g.networks[2].nodes, 1);
  EXPECT_EQ(g.networks[2].branches, 0);
  EXPECT_EQ(g.cycle_count(), 0);
}

TEST(SkeletonGraph, SkeletonOfTorusIsOneCycle) {
  const index_t n = 32;
  Mask t({n, n, n});
  const double c = (n - 1) / 2.0;
  for (index_t z = 0; z < n; ++z)
    for (index_t y = 0; y < n; ++y)
      for (index_t x = 0; x < n; ++x) {
        const double r = std::hypot(x - c, y - c) - 9;
        t(x, y, z) = r * r + (z - c) * (z - c) <= 16;
      }
  const SkeletonGraph g = skeleton_graph(skeletonize(t));
  ASSERT_EQ(g.networks.size(), 1u);
  EXPECT_EQ(g.cycle_count(), 1);
  // The core circle has circumference 2π·9 ≈ 56.5.
  EXPECT_NEAR(g.total_length_um(), 2 * M_PI * 9, 0.1 * 2 * M_PI * 9);
}

}  // namespace
}  // namespace vp
