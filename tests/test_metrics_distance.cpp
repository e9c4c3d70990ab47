// Exactness of the distance transforms and of local thickness against brute force and
// analytic cases (slabs, lines, spheres), with anisotropic spacing.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>

#include "metrics/distance_transform.h"
#include "metrics/local_thickness.h"

using namespace vp;

namespace {

Volume<std::uint8_t> random_mask(Dims d, Vec3 h, double p_fg, unsigned seed) {
  Volume<std::uint8_t> m(d, h);
  std::mt19937 rng(seed);
  std::bernoulli_distribution fg(p_fg);
  for (index_t i = 0; i < m.size(); ++i) m[i] = fg(rng) ? 1 : 0;
  return m;
}

// Brute force over every background voxel (and the outside planes when asked).
double brute_squared(const Volume<std::uint8_t>& m, index_t x, index_t y, index_t z, bool to_cube, bool outside_bg) {
  const Dims d = m.dims();
  const Vec3 h = m.spacing_um;
  auto axis_len = [&](index_t delta, int a) {
    double v = to_cube ? std::max(std::abs(static_cast<double>(delta)) - 0.5, 0.0) : static_cast<double>(delta);
    return v * h[a];
  };
  double best = std::numeric_limits<double>::infinity();
  if (!m(x, y, z)) return 0;
  for (index_t k = 0; k < d.z; ++k)
    for (index_t j = 0; j < d.y; ++j)
      for (index_t i = 0; i < d.x; ++i)
        if (!m(i, j, k)) {
          double a = axis_len(x - i, 0), b = axis_len(y - j, 1), c = axis_len(z - k, 2);
          best = std::min(best, a * a + b * b + c * c);
        }
  if (outside_bg) {
    const index_t p[3] = {x, y, z};
    for (int a = 0; a < 3; ++a) {
      double lo = axis_len(p[a] + 1, a), hi = axis_len(d[a] - p[a], a);
      best = std::min({best, lo * lo, hi * hi});
    }
  }
  return best;
}

}  // namespace

TEST(DistanceTransform, MatchesBruteForceAnisotropic) {
  for (bool outside : {false, true})
    for (bool to_cube : {false, true}) {
      auto m = random_mask({11, 9, 7}, {0.7, 1.3, 2.1}, 0.85, 7);
      DistanceOptions o{outside};
      auto d2 = to_cube ? squared_distance_to_boundary(m, o) : squared_distance_transform(m, o);
      for (index_t z = 0; z < 7; ++z)
        for (index_t y = 0; y < 9; ++y)
          for (index_t x = 0; x < 11; ++x) {
            double want = brute_squared(m, x, y, z, to_cube, outside);
            ASSERT_NEAR(d2(x, y, z), want, 1e-5 * (1 + want))
                << "voxel " << x << "," << y << "," << z << " cube=" << to_cube << " outside=" << outside;
          }
    }
}

TEST(DistanceTransform, MatchesBruteForceFromFarAndNear) {
  // Sparse background: lines mix short distances (direct search) and long ones (envelope),
  // so both ways of computing a line must give the exact minimum.
  for (double p_bg : {0.002, 0.02}) {
    auto m = random_mask({40, 33, 27}, {0.7, 1.3, 0.9}, 1.0 - p_bg, 3);
    std::vector<std::array<index_t, 3>> bg;
    for (index_t z = 0; z < 27; ++z)
      for (index_t y = 0; y < 33; ++y)
        for (index_t x = 0; x < 40; ++x)
          if (!m(x, y, z)) bg.push_back({x, y, z});
    ASSERT_FALSE(bg.empty());
    for (bool to_cube : {false, true}) {
      auto d2 = to_cube ? squared_distance_to_boundary(m) : squared_distance_transform(m);
      const Vec3 h = m.spacing_um;
      for (index_t z = 0; z < 27; ++z)
        for (index_t y = 0; y < 33; ++y)
          for (index_t x = 0; x < 40; ++x) {
            double want = 0;
            if (m(x, y, z)) {
              want = std::numeric_limits<double>::infinity();
              const index_t p[3] = {x, y, z};
              for (const auto& b : bg) {
                double s = 0;
                for (int a = 0; a < 3; ++a) {
                  double v = static_cast<double>(std::abs(p[a] - b[a]));
                  if (to_cube) v = std::max(v - 0.5, 0.0);
                  s += v * v * h[a] * h[a];
                }
                want = std::min(want, s);
              }
            }
            ASSERT_NEAR(d2(x, y, z), want, 1e-5 * (1 + want)) << x << "," << y << "," << z << " cube=" << to_cube;
          }
    }
  }
}

TEST(DistanceTransform, OneVoxelLineHasDistanceH) {
  Volume<std::uint8_t> m({9, 9, 9}, {0.5, 0.5, 0.5});
  for (index_t z = 0; z < 9; ++z) m(4, 4, z) = 1;
  auto d = distance_transform(m);
  for (index_t z = 0; z < 9; ++z) EXPECT_FLOAT_EQ(d(4, 4, z), 0.5f);
  EXPECT_EQ(d(0, 0, 0), 0.0f);
  auto b = squared_distance_to_boundary(m);
  EXPECT_FLOAT_EQ(b(4, 4, 4), 0.0625f);  // (h/2)²
}

TEST(DistanceTransform, NoBackgroundIsInfinite) {
  Volume<std::uint8_t> m({4, 4, 4}, {1, 1, 1}, 1);
  auto d = distance_transform(m);
  EXPECT_TRUE(std::isinf(d(1, 2, 3)));
  auto e = distance_transform(m, {true});
  EXPECT_FLOAT_EQ(e(0, 0, 0), 1.0f);
  EXPECT_FLOAT_EQ(e(1, 1, 1), 2.0f);
}

TEST(DistanceTransform, SphereMaxIsRadius) {
  const int n = 48;
  for (double r : {5.0, 10.0, 20.0}) {
    Volume<std::uint8_t> m({n, n, n});
    double c = n / 2;  // a voxel centre, so one voxel sits at the sphere's centre
    for (index_t z = 0; z < n; ++z)
      for (index_t y = 0; y < n; ++y)
        for (index_t x = 0; x < n; ++x) m(x, y, z) = (x - c) * (x - c) + (y - c) * (y - c) + (z - c) * (z - c) <= r * r;
    auto d = distance_transform(m);
    float mx = 0;
    for (index_t i = 0; i < d.size(); ++i) mx = std::max(mx, d[i]);
    // The nearest background centre lies just beyond the digital surface: r < max <= r + 1.
    EXPECT_GT(mx, r);
    EXPECT_LE(mx, r + 1.0);
  }
}

TEST(LocalThickness, SlabOfOddThicknessIsExact) {
  // Slabs normal to z with hz = 0.8 µm, and normal to x with hx = 1.5 µm.
  for (int t : {1, 3, 5, 7}) {
    Volume<std::uint8_t> m({16, 16, 24}, {1.5, 1.0, 0.8});
    for (index_t z = 4; z < 4 + t; ++z)
      for (index_t y = 0; y < 16; ++y)
        for (index_t x = 0; x < 16; ++x) m(x, y, z) = 1;
    auto lt = local_thickness(m);
    for (index_t i = 0; i < m.size(); ++i)
      if (m[i]) ASSERT_NEAR(lt[i], t * 0.8, 1e-5) << "t=" << t;
      else ASSERT_EQ(lt[i], 0.0f);
    Volume<std::uint8_t> s({24, 10, 10}, {1.5, 1.0, 0.8});
    for (index_t z = 0; z < 10; ++z)
      for (index_t y = 0; y < 10; ++y)
        for (index_t x = 6; x < 6 + t; ++x) s(x, y, z) = 1;
    auto lts = local_thickness(s);
    auto dist = thickness_distribution(lts, s);
    EXPECT_NEAR(dist.mean, t * 1.5, 1e-5);
    EXPECT_NEAR(dist.median, t * 1.5, 1e-5);
    EXPECT_EQ(dist.count, 10 * 10 * t);
  }
}

TEST(LocalThickness, SlabOfEvenThicknessLosesOneVoxel) {
  // Balls are centred on voxel centres: an even slab's largest ball spans t - 1 voxels (documented).
  Volume<std::uint8_t> m({10, 10, 20});
  for (index_t z = 5; z < 11; ++z)
    for (index_t y = 0; y < 10; ++y)
      for (index_t x = 0; x < 10; ++x) m(x, y, z) = 1;
  auto lt = local_thickness(m);
  EXPECT_FLOAT_EQ(lt(3, 3, 5), 5.0f);
  EXPECT_FLOAT_EQ(lt(3, 3, 8), 5.0f);
}

TEST(LocalThickness, MatchesBruteForceDefinition) {
  for (bool outside : {false, true}) {
    auto m = random_mask({10, 9, 8}, {1.0, 0.6, 1.7}, 0.8, 11);
    auto lt = local_thickness(m, {outside});
    auto r2 = squared_distance_to_boundary(m, {outside});
    const Vec3 h = m.spacing_um;
    for (index_t z = 0; z < 8; ++z)
      for (index_t y = 0; y < 9; ++y)
        for (index_t x = 0; x < 10; ++x) {
          double best = 0;
          if (m(x, y, z))
            for (index_t k = 0; k < 8; ++k)
              for (index_t j = 0; j < 9; ++j)
                for (index_t i = 0; i < 10; ++i) {
                  if (!m(i, j, k)) continue;
                  double dx = (x - i) * h[0], dy = (y - j) * h[1], dz = (z - k) * h[2];
                  if (dx * dx + dy * dy + dz * dz < r2(i, j, k))
                    best = std::max(best, 2 * std::sqrt(double(r2(i, j, k))));
                }
          ASSERT_NEAR(lt(x, y, z), best, 1e-4) << x << "," << y << "," << z << " outside=" << outside;
        }
  }
}

TEST(LocalThickness, SphereCentreIsAboutTheDiameter) {
  const int n = 40;
  const double r = 12;
  Volume<std::uint8_t> m({n, n, n});
  double c = 20;
  for (index_t z = 0; z < n; ++z)
    for (index_t y = 0; y < n; ++y)
      for (index_t x = 0; x < n; ++x) m(x, y, z) = (x - c) * (x - c) + (y - c) * (y - c) + (z - c) * (z - c) <= r * r;
  auto lt = local_thickness(m);
  // The inscribed ball of the stepped cube surface: the nearest background cube corner
  // lies within about one voxel of the radius, so the diameter is within (2r - 2, 2r + 1].
  EXPECT_GT(lt(20, 20, 20), 2 * r - 2);
  EXPECT_LE(lt(20, 20, 20), 2 * r + 1);
  // A sphere is one thickness almost everywhere: the surface voxels too are inside the big ball.
  auto dist = thickness_distribution(lt, m);
  EXPECT_NEAR(dist.median, lt(20, 20, 20), 1e-4);
}

TEST(LocalThickness, NoBackgroundIsInfinite) {
  Volume<std::uint8_t> m({5, 5, 5}, {1, 1, 1}, 1);
  EXPECT_TRUE(std::isinf(local_thickness(m)(2, 2, 2)));
  EXPECT_FLOAT_EQ(local_thickness(m, {true})(2, 2, 2), 5.0f);
}
