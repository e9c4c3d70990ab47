// 3-D thinning: topology preserved, result one voxel thin, known shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include <tbb/global_control.h>

#include "metrics/connectivity.h"
#include "metrics/cracks/skeleton.h"

namespace vp {
namespace {

using Mask = Volume<std::uint8_t>;

long long count_components_26(const Mask& m) { return label_clusters(m, 26).count; }
// χ of the 26-connected object (the cubical complex of closed voxel cubes).
long long thinning_euler(const Mask& m) { return euler_characteristic(m, 26); }

Mask box(Dims d, index_t x0, index_t y0, index_t z0, index_t x1, index_t y1, index_t z1) {
  Mask m(d);
  for (index_t z = z0; z < z1; ++z)
    for (index_t y = y0; y < y1; ++y)
      for (index_t x = x0; x < x1; ++x) m(x, y, z) = 1;
  return m;
}

Mask torus(index_t n, double major, double minor) {
  Mask m({n, n, n});
  const double c = (n - 1) / 2.0;
  for (index_t z = 0; z < n; ++z)
    for (index_t y = 0; y < n; ++y)
      for (index_t x = 0; x < n; ++x) {
        const double r = std::hypot(x - c, y - c) - major;
        m(x, y, z) = r * r + (z - c) * (z - c) <= minor * minor;
      }
  return m;
}

index_t count(const Mask& m) {
  index_t n = 0;
  for (index_t i = 0; i < m.size(); ++i) n += m[i] != 0;
  return n;
}

std::uint32_t neighbourhood(const Mask& m, index_t x, index_t y, index_t z) {
  std::uint32_t n = 0;
  for (int k = 0; k < 27; ++k) {
    const index_t xx = x + k % 3 - 1, yy = y + k / 3 % 3 - 1, zz = z + k / 9 - 1;
    if (xx < 0 || yy < 0 || zz < 0 || xx >= m.dims().x || yy >= m.dims().y || zz >= m.dims().z) continue;
    if (m(xx, yy, zz)) n |= 1u << k;
  }
  return n;
}

// One voxel thin: no voxel could still be removed (every voxel is a line end, an isolated
// point, or not simple), and, where the shape has no cavity (a cavity survives as a closed
// surface), no 2×2 square of voxels lies in any axis plane.
void expect_thin(const Mask& s, bool squares_allowed = false) {
  const Dims d = s.dims();
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        if (!s(x, y, z)) continue;
        const std::uint32_t n = neighbourhood(s, x, y, z);
        const bool end = __builtin_popcount(n) <= 2;
        EXPECT_TRUE(end || !is_simple_point(n) || euler_change_on_removal(n) != 0)
            << "deletable voxel left at " << x << "," << y << "," << z;
        if (squares_allowed) continue;
        auto at = [&](index_t a, index_t b, index_t c) { return a < d.x && b < d.y && c < d.z && s(a, b, c); };
        EXPECT_FALSE(at(x + 1, y, z) && at(x, y + 1, z) && at(x + 1, y + 1, z))
            << "xy square at " << x << "," << y << "," << z;
        EXPECT_FALSE(at(x + 1, y, z) && at(x, y, z + 1) && at(x + 1, y, z + 1))
            << "xz square at " << x << "," << y << "," << z;
        EXPECT_FALSE(at(x, y + 1, z) && at(x, y, z + 1) && at(x, y + 1, z + 1))
            << "yz square at " << x << "," << y << "," << z;
      }
}

TEST(SimplePoint, ElementaryNeighbourhoods) {
  const std::uint32_t centre = 1u << 13;
  EXPECT_FALSE(is_simple_point(centre));                         // isolated: removal deletes a component
  EXPECT_TRUE(is_simple_point(centre | 1u << 14));               // end of a line
  EXPECT_FALSE(is_simple_point(centre | 1u << 12 | 1u << 14));   // middle of a line: would split it
  EXPECT_FALSE(is_simple_point((1u << 27) - 1));                 // interior: would open a cavity
  EXPECT_TRUE(is_simple_point(((1u << 27) - 1) & ~(1u << 22)));  // +z face voxel of a solid
  // A 3×3 disc in the xy plane: removing its centre punches a hole (χ 1 → 0), unless a
  // full layer below closes it.
  std::uint32_t disc = 0;
  for (int k = 9; k < 18; ++k) disc |= 1u << k;
  EXPECT_FALSE(is_simple_point(disc));
  EXPECT_EQ(euler_change_on_removal(disc), -1);
  EXPECT_TRUE(is_simple_point(disc | ((1u << 9) - 1)));
  EXPECT_EQ(euler_change_on_removal(centre), -1);  // point gone: χ 1 → 0
  EXPECT_EQ(euler_change_on_removal(centre | 1u << 14), 0);
}

TEST(EulerCharacteristic, KnownShapes) {
  EXPECT_EQ(thinning_euler(box({10, 10, 10}, 2, 2, 2, 8, 8, 8)), 1);
  EXPECT_EQ(thinning_euler(torus(32, 9, 4)), 0);
  Mask shell = box({12, 12, 12}, 1, 1, 1, 11, 11, 11);
  for (index_t z = 3; z < 9; ++z)
    for (index_t y = 3; y < 9; ++y)
      for (index_t x = 3; x < 9; ++x) shell(x, y, z) = 0;
  EXPECT_EQ(thinning_euler(shell), 2);
  Mask two = box({12, 4, 4}, 0, 0, 0, 3, 3, 3);
  two(8, 1, 1) = 1;
  EXPECT_EQ(thinning_euler(two), 2);
  EXPECT_EQ(count_components_26(two), 2);
  // Diagonal (corner-touching) voxels are one 26-component.
  Mask diag({3, 3, 3});
  diag(0, 0, 0) = diag(1, 1, 1) = diag(2, 2, 2) = 1;
  EXPECT_EQ(count_components_26(diag), 1);
  EXPECT_EQ(thinning_euler(diag), 1);
}

TEST(Skeleton, LineStaysUnchanged) {
  Mask line = box({20, 9, 9}, 2, 4, 4, 17, 5, 5);
  Mask s = skeletonize(line);
  EXPECT_EQ(s.storage(), line.storage());
  Mask diagonal({16, 16, 16});
  for (index_t i = 1; i < 15; ++i) diagonal(i, i, i) = 1;
  EXPECT_EQ(skeletonize(diagonal).storage(), diagonal.storage());
}

TEST(Skeleton, SolidBoxThinsToConnectedThinTree) {
  Mask solid = box({24, 18, 14}, 2, 2, 2, 22, 16, 12);
  Mask s = skeletonize(solid);
  EXPECT_EQ(count_components_26(s), 1);
  EXPECT_EQ(thinning_euler(s), 1);  // a tree: no cycles
  EXPECT_GT(count(s), 0);
  EXPECT_LT(count(s), 40);  // curves along the medial axis of a 20×14×10 box
  expect_thin(s);
  // Every skeleton voxel lies inside the object.
  for (index_t i = 0; i < s.size(); ++i)
    if (s[i]) {
      EXPECT_TRUE(solid[i]);
    }
  // The spacing travels with the result.
  Mask aniso = solid;
  aniso.spacing_um = {0.5, 0.5, 2.0};
  EXPECT_EQ(skeletonize(aniso).spacing_um, aniso.spacing_um);
}

TEST(Skeleton, CubeThinsToAPointOrShortLine) {
  // The border directions are visited in a fixed order, so a cube is not thinned
  // symmetrically: what remains is a short line near the centre.
  Mask s = skeletonize(box({9, 9, 9}, 2, 2, 2, 7, 7, 7));
  EXPECT_GE(count(s), 1);
  EXPECT_LE(count(s), 3);
  EXPECT_EQ(count_components_26(s), 1);
  for (index_t z = 0; z < 9; ++z)
    for (index_t y = 0; y < 9; ++y)
      for (index_t x = 0; x < 9; ++x)
        if (s(x, y, z)) {
          EXPECT_LE(std::abs(x - 4) + std::abs(y - 4) + std::abs(z - 4), 2);
        }
}

TEST(Skeleton, TorusKeepsItsHole) {
  Mask t = torus(32, 9, 4);
  Mask s = skeletonize(t);
  EXPECT_EQ(count_components_26(s), 1);
  EXPECT_EQ(thinning_euler(s), 0);  // one cycle
  expect_thin(s);
  // The cycle runs round the torus' core circle: roughly 2π·9 ≈ 57 voxels long (26-steps).
  EXPECT_GT(count(s), 40);
  EXPECT_LT(count(s), 70);
}

TEST(Skeleton, PlateThinsToMedialLines) {
  // LKC's curve variant thins a plate to lines inside its mid-plane (not to a surface).
  Mask plate = box({30, 30, 9}, 3, 3, 3, 27, 27, 6);
  Mask s = skeletonize(plate);
  EXPECT_EQ(count_components_26(s), 1);
  EXPECT_EQ(thinning_euler(s), 1);
  expect_thin(s);
  for (index_t z = 0; z < 9; ++z)
    for (index_t y = 0; y < 30; ++y)
      for (index_t x = 0; x < 30; ++x)
        if (s(x, y, z)) {
          EXPECT_EQ(z, 4) << "skeleton voxel off the mid-plane";
        }
}

TEST(Skeleton, HollowShellKeepsItsCavity) {
  Mask shell = box({14, 14, 14}, 1, 1, 1, 13, 13, 13);
  for (index_t z = 4; z < 10; ++z)
    for (index_t y = 4; y < 10; ++y)
      for (index_t x = 4; x < 10; ++x) shell(x, y, z) = 0;
  Mask s = skeletonize(shell);
  EXPECT_EQ(thinning_euler(s), 2);
  EXPECT_EQ(count_components_26(s), 1);
}

Mask random_blobs(index_t n, std::uint64_t seed, double threshold) {
  // Sum of random Gaussian bumps, thresholded: blobs with handles and cavities.
  std::mt19937_64 rng(seed);
  Volume<float> field({n, n, n});
  for (int b = 0; b < 40; ++b) {
    const double cx = rng() % n, cy = rng() % n, cz = rng() % n;
    const double r = 2.0 + (rng() % 1000) / 250.0;
    for (index_t z = 0; z < n; ++z)
      for (index_t y = 0; y < n; ++y)
        for (index_t x = 0; x < n; ++x) {
          const double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy) + (z - cz) * (z - cz);
          field(x, y, z) += static_cast<float>(std::exp(-d2 / (2 * r * r)));
        }
  }
  Mask m({n, n, n});
  for (index_t i = 0; i < m.size(); ++i) m[i] = field[i] > threshold;
  // Speckle: isolated voxels and pinholes make small components and cavities.
  for (int k = 0; k < 60; ++k) m[static_cast<index_t>(rng() % static_cast<std::uint64_t>(m.size()))] ^= 1;
  return m;
}

TEST(Skeleton, TopologyPreservedOnRandomBlobs) {
  for (std::uint64_t seed : {1u, 2u, 3u, 4u}) {
    for (double threshold : {0.3, 0.6}) {
      Mask m = random_blobs(40, seed, threshold);
      Mask s = skeletonize(m);
      EXPECT_EQ(count_components_26(s), count_components_26(m)) << "seed " << seed << " threshold " << threshold;
      EXPECT_EQ(thinning_euler(s), thinning_euler(m)) << "seed " << seed << " threshold " << threshold;
      for (index_t i = 0; i < s.size(); ++i)
        if (s[i]) {
          ASSERT_TRUE(m[i]);
        }
      expect_thin(s, /*squares_allowed=*/true);
    }
  }
}

TEST(Skeleton, SameResultForAnyThreadCount) {
  Mask m = random_blobs(40, 7, 0.4);
  Mask one, many;
  {
    tbb::global_control c(tbb::global_control::max_allowed_parallelism, 1);
    one = skeletonize(m);
  }
  {
    tbb::global_control c(tbb::global_control::max_allowed_parallelism, 4);
    many = skeletonize(m);
  }
  EXPECT_EQ(one.storage(), many.storage());
}

}  // namespace
}  // namespace vp
