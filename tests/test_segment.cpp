// Exact unit tests of the intensity classifiers, distance transforms, clean-up and particle
// separation on constructed volumes with known answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "core/error.h"
#include "filters/segment/cleanup.h"
#include "filters/segment/histogram.h"
#include "filters/segment/mixture_model.h"
#include "filters/segment/particles.h"
#include "metrics/connectivity.h"
#include "metrics/distance_transform.h"

using namespace vp;

namespace {

// Three slabs along x with grey levels 10, 50, 90 (labels 0, 1, 2).
Volume<float> three_levels(Dims d, Volume<std::uint8_t>* truth) {
  Volume<float> v(d);
  if (truth) *truth = Volume<std::uint8_t>(d);
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const int c = static_cast<int>((x + y) % 7 < 2 ? 0 : (x * 3 + z) % 5 < 3 ? 1 : 2);
        v(x, y, z) = 10.0f + 40.0f * c;
        if (truth) (*truth)(x, y, z) = static_cast<std::uint8_t>(c);
      }
  return v;
}

Volume<std::uint8_t> ball_mask(Dims d, Vec3 centre, double r, Vec3 spacing = {1, 1, 1}) {
  Volume<std::uint8_t> m(d, spacing);
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const double dx = (x - centre[0]) * spacing[0], dy = (y - centre[1]) * spacing[1],
                     dz = (z - centre[2]) * spacing[2];
        if (dx * dx + dy * dy + dz * dz <= r * r) m(x, y, z) = 1;
      }
  return m;
}

}  // namespace

TEST(Histogram, CountsEveryVoxelAndClampsRange) {
  Volume<float> v(Dims{4, 3, 2});
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const Histogram h = histogram(v, 23, 0.0, 23.0);  // bins of width 1
  EXPECT_DOUBLE_EQ(h.total(), 24.0);
  EXPECT_EQ(h.counts.front(), 1.0);
  EXPECT_EQ(h.counts.back(), 2.0);  // 22 and 23 (the maximum is clamped into the last bin)
  // Integer values over fewer levels than bins: one bin per level, centred on it.
  const Histogram g = histogram(v, 256);
  ASSERT_EQ(g.counts.size(), 24u);
  EXPECT_EQ(g.lo, -0.5);
  EXPECT_EQ(g.centre(5), 5.0);
  for (double c : g.counts) EXPECT_EQ(c, 1.0);
  v[0] = 0.25f;  // not integral any more: 256 bins over [min, max]
  EXPECT_EQ(histogram(v, 256).counts.size(), 256u);
}

TEST(Histogram, KthSmallestIsTheValueNthElementPlacesAtK) {
  // Rows of floats of every kind the bit-pattern order must get right: both signs, ±0, ties,
  // subnormals, infinities, and values sharing their high 16 bits.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const index_t rows = 37, width = 29;
  std::vector<float> all(static_cast<std::size_t>(rows * width));
  for (std::size_t i = 0; i < all.size(); ++i) {
    switch (i % 9) {
      case 0: all[i] = 0.0f; break;
      case 1: all[i] = -0.0f; break;
      case 2: all[i] = std::round(normal(rng)); break;  // ties
      case 3: all[i] = std::numeric_limits<float>::denorm_min() * static_cast<float>(i % 5); break;
      case 4: all[i] = 1.0f + static_cast<float>(i % 11) * std::numeric_limits<float>::epsilon(); break;
      default: all[i] = normal(rng);
    }
  }
  all[5] = std::numeric_limits<float>::infinity();
  all[6] = -std::numeric_limits<float>::infinity();
  auto row = [&](index_t r, float* out) { std::copy_n(all.begin() + r * width, width, out); };
  for (std::int64_t k :
       {std::int64_t{0}, std::int64_t{1}, std::int64_t{200}, rows * width / 2, rows * width - 2, rows * width - 1}) {
    std::vector<float> sorted = all;
    std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
    EXPECT_EQ(kth_smallest(rows, width, k, row), sorted[static_cast<std::size_t>(k)]) << "k = " << k;
    // Its ties: the values with its bit pattern, and those below it in the same order.
    const float at = sorted[static_cast<std::size_t>(k)];
    const auto key = [](float v) {
      const auto u = std::bit_cast<std::uint32_t>(v);
      return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    };
    std::int64_t below = 0, equal = 0;
    for (float v : all) {
      below += key(v) < key(at);
      equal += key(v) == key(at);
    }
    const OrderStatistic s = order_statistic(rows, width, k, row);
    EXPECT_EQ(s.value, at) << "k = " << k;
    EXPECT_EQ(s.below, below) << "k = " << k;
    EXPECT_EQ(s.equal, equal) << "k = " << k;
    EXPECT_GT(s.equal, 0);
    EXPECT_TRUE(s.below <= k && k < s.below + s.equal) << "k = " << k;
  }
  EXPECT_THROW(kth_smallest(rows, width, rows * width, row), InputError);
}

TEST(Histogram, ScanNoiseSigmaOnAnIntegerScanFollowsTheNoise) {
  // An integer scan's second differences are whole numbers: the plain MAD jumps a lattice step at
  // a time (σ 0.91-1.51 all read 1.2105). Read as grouped data it follows the noise, with the
  // rounding's own 1/12 grey² (the grey the fit sees).
  Volume<float> v(Dims{64, 64, 32});
  double last = 0;
  for (double sigma : {0.7, 0.9, 1.1, 1.3, 1.5, 2.5}) {
    std::mt19937 rng(11);
    std::normal_distribution<double> noise(0.0, sigma);
    for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::round(100.0 + noise(rng)));
    const double expected = std::sqrt(sigma * sigma + 1.0 / 12);
    const double read = scan_noise_sigma(v);
    EXPECT_NEAR(read / expected, 1.0, 0.03) << "σ " << sigma << " read " << read;
    EXPECT_GT(read, last) << "σ " << sigma;
    last = read;
  }
}

TEST(Histogram, ScanNoiseSigmaIsTheMedianAbsoluteDeviationOfSecondDifferences) {
  // The definition, on a copy sorted by std::nth_element: the order statistics must be the same
  // floats whichever way they are found.
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 40.0f);
  Volume<float> v(Dims{23, 9, 7});
  for (index_t i = 0; i < v.size(); ++i) v[i] = (i % 23 < 11 ? 1000.0f : 5000.0f) + noise(rng);
  std::vector<float> diff;
  for (index_t z = 0; z < 7; ++z)
    for (index_t y = 0; y < 9; ++y)
      for (index_t x = 1; x + 1 < 23; ++x) diff.push_back(v(x - 1, y, z) - 2 * v(x, y, z) + v(x + 1, y, z));
  auto mid = diff.begin() + static_cast<std::ptrdiff_t>(diff.size() / 2);
  std::nth_element(diff.begin(), mid, diff.end());
  const float med = *mid;
  for (float& d : diff) d = std::abs(d - med);
  std::nth_element(diff.begin(), mid, diff.end());
  EXPECT_EQ(scan_noise_sigma(v), 1.4826 * *mid / std::sqrt(6.0));
}

TEST(Thresholds, ManualThresholdsGiveCountOfThresholdsReached) {
  Volume<float> v(Dims{5, 1, 1});
  const float vals[5] = {0, 1, 1.5f, 2, 3};
  for (int i = 0; i < 5; ++i) v[i] = vals[i];
  const auto l = apply_thresholds(v, {1.0, 2.0});
  const int expect[5] = {0, 1, 1, 2, 2};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(l[i], expect[i]) << i;
  EXPECT_THROW(apply_thresholds(v, {2.0, 1.0}), InputError);
}

TEST(Thresholds, MultiOtsuReproducesPiecewiseConstantLabelsExactly) {
  Volume<std::uint8_t> truth;
  const Volume<float> v = three_levels(Dims{20, 18, 16}, &truth);
  const auto t = otsu_thresholds(histogram(v, 256), 3);
  ASSERT_EQ(t.size(), 2u);
  // The split falls mid-gap between the occupied bins.
  EXPECT_NEAR(t[0], 30.0, 0.2);
  EXPECT_NEAR(t[1], 70.0, 0.2);
  const auto l = apply_thresholds(v, t);
  EXPECT_EQ(l.storage(), truth.storage());
}

TEST(Thresholds, OtsuTwoClassesMatchesBruteForce) {
  std::mt19937 rng(7);
  std::normal_distribution<double> a(20, 5), b(60, 8);
  Volume<float> v(Dims{40, 40, 10});
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 3 ? a(rng) : b(rng));
  const Histogram h = histogram(v, 128);
  const auto t = otsu_thresholds(h, 2);
  // Brute force: maximise w0 w1 (m0 - m1)^2 over every split.
  double best = -1;
  std::size_t best_k = 0;
  for (std::size_t k = 1; k < h.counts.size(); ++k) {
    double w0 = 0, s0 = 0, w1 = 0, s1 = 0;
    for (std::size_t i = 0; i < h.counts.size(); ++i)
      (i < k ? w0 : w1) += h.counts[i], (i < k ? s0 : s1) += h.counts[i] * h.centre(i);
    if (w0 == 0 || w1 == 0) continue;
    const double var = w0 * w1 * std::pow(s0 / w0 - s1 / w1, 2);
    if (var > best) best = var, best_k = k;
  }
  EXPECT_NEAR(t[0], h.lo + best_k * h.bin_width(), 1e-9);
}

TEST(Thresholds, KMeansFindsCentresOfSeparatedLevels) {
  const Volume<float> v = three_levels(Dims{20, 18, 16}, nullptr);
  const KMeansFit k = kmeans_intensity(histogram(v, 256), 3);
  ASSERT_EQ(k.centres.size(), 3u);
  const double bw = 80.0 / 256;
  EXPECT_NEAR(k.centres[0], 10, bw);
  EXPECT_NEAR(k.centres[1], 50, bw);
  EXPECT_NEAR(k.centres[2], 90, bw);
  EXPECT_NEAR(k.thresholds[0], 30, bw);
  EXPECT_NEAR(k.thresholds[1], 70, bw);
}

TEST(Thresholds, GaussianMixtureRecoversKnownMixture) {
  std::mt19937 rng(11);
  std::normal_distribution<double> a(100, 10), b(160, 15);
  Volume<float> v(Dims{50, 50, 40});  // 100k samples: 30 % a, 70 % b
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 10 < 3 ? a(rng) : b(rng));
  const GaussianMixture g = fit_gaussian_mixture(histogram(v, 256), 2);
  EXPECT_NEAR(g.weights[0], 0.3, 0.01);
  EXPECT_NEAR(g.means[0], 100, 0.5);
  EXPECT_NEAR(g.means[1], 160, 0.5);
  EXPECT_NEAR(g.sigmas[0], 10, 0.5);
  EXPECT_NEAR(g.sigmas[1], 15, 0.5);
  // Decision boundary where the weighted densities are equal.
  const auto cut = g.boundaries(50, 250);
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_NEAR(g.density(0, cut[0]), g.density(1, cut[0]), 1e-9);
}

TEST(Thresholds, HysteresisKeepsOnlyWeakRegionsConnectedToStrong) {
  // Row: strong seed at x=1, weak run x=2..4 connected; a weak run x=7..8 alone.
  Volume<float> v(Dims{10, 1, 1});
  const float vals[10] = {0, 9, 5, 5, 5, 0, 0, 5, 5, 0};
  for (int i = 0; i < 10; ++i) v[i] = vals[i];
  const auto m = hysteresis_threshold(v, 4, 8);
  const int expect[10] = {0, 1, 1, 1, 1, 0, 0, 0, 0, 0};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(m[i], expect[i]) << i;
  // Diagonal contact counts only with 26-connectivity.
  Volume<float> w(Dims{2, 2, 1});
  w(0, 0, 0) = 9;
  w(1, 1, 0) = 5;
  EXPECT_EQ(hysteresis_threshold(w, 4, 8, 6)(1, 1, 0), 0);
  EXPECT_EQ(hysteresis_threshold(w, 4, 8, 26)(1, 1, 0), 1);
}

TEST(Cleanup, RemovesIslandsBelowSizeAndGivesThemToSurroundings) {
  Volume<std::uint8_t> l(Dims{12, 12, 12}, {1, 1, 1}, 0);
  for (index_t z = 2; z < 4; ++z)  // island of 8 voxels of label 1 inside label 0
    for (index_t y = 2; y < 4; ++y)
      for (index_t x = 2; x < 4; ++x) l(x, y, z) = 1;
  for (index_t z = 6; z < 10; ++z)  // 64-voxel region of label 1, with a 1-voxel island of 2 inside
    for (index_t y = 6; y < 10; ++y)
      for (index_t x = 6; x < 10; ++x) l(x, y, z) = 1;
  l(7, 7, 7) = 2;
  EXPECT_EQ(remove_small_islands(l, 1, 9), 1u);
  EXPECT_EQ(l(2, 2, 2), 0);
  EXPECT_EQ(l(6, 6, 6), 1);
  EXPECT_EQ(remove_small_islands(l, 2, voxels_for_volume(2.0, l.spacing_um)), 1u);
  EXPECT_EQ(l(7, 7, 7), 1);
  index_t ones = 0;
  for (auto v : l.storage()) ones += v == 1;
  EXPECT_EQ(ones, 64);
}

TEST(Cleanup, FillsEnclosedHolesOnly) {
  Volume<std::uint8_t> l(Dims{10, 10, 10}, {1, 1, 1}, 0);
  for (index_t z = 1; z < 6; ++z)
    for (index_t y = 1; y < 6; ++y)
      for (index_t x = 1; x < 6; ++x) l(x, y, z) = 2;
  l(3, 3, 3) = 0;                                   // enclosed pore
  l(3, 3, 4) = 1;                                   // enclosed other phase, touching the pore
  for (index_t x = 0; x < 10; ++x) l(x, 8, 8) = 2;  // a rod through the volume: nothing enclosed
  EXPECT_EQ(fill_holes(l, 2), 2);
  EXPECT_EQ(l(3, 3, 3), 2);
  EXPECT_EQ(l(3, 3, 4), 2);
  EXPECT_EQ(l(0, 0, 0), 0);
}

TEST(Cleanup, DilationIsEllipsoidalInVoxelsForAnisotropicSpacing) {
  Volume<std::uint8_t> m(Dims{21, 21, 21}, {1.0, 1.0, 2.0});
  m(10, 10, 10) = 1;
  const auto d = dilate(m, 4.0);
  // Ball of 4 µm: 4 voxels along x and y, 2 along z.
  EXPECT_EQ(d(14, 10, 10), 1);
  EXPECT_EQ(d(15, 10, 10), 0);
  EXPECT_EQ(d(10, 10, 12), 1);
  EXPECT_EQ(d(10, 10, 13), 0);
  index_t n = 0, expect = 0;
  for (index_t z = 0; z < 21; ++z)
    for (index_t y = 0; y < 21; ++y)
      for (index_t x = 0; x < 21; ++x) {
        n += d(x, y, z);
        const double r2 = std::pow(x - 10.0, 2) + std::pow(y - 10.0, 2) + std::pow(2 * (z - 10.0), 2);
        expect += r2 <= 16.0;
      }
  EXPECT_EQ(n, expect);
  EXPECT_EQ(erode(d, 4.0).storage(), m.storage());
}

// Small balls are dilated row by row, larger ones through the distance transform: both give the
// voxels whose exact squared distance to the mask (or to its complement, for erosion) is within
// the radius, on random masks, anisotropic and inexact spacings, and radii on a voxel sphere,
// empty and full masks included.
TEST(Cleanup, DilationAndErosionAreTheDistanceTransformThresholdForEveryRadius) {
  std::mt19937 rng(3);
  std::bernoulli_distribution sparse(0.02), dense(0.9);
  const Dims dims{37, 23, 19};
  auto reference = [](const Volume<std::uint8_t>& m, double r, bool of_set) {
    Volume<std::uint8_t> others = m.like<std::uint8_t>(m.dims());
    for (index_t i = 0; i < m.size(); ++i) others[i] = (m[i] != 0) != of_set;
    const Volume<float> d2 = squared_distance_transform(others);
    Volume<std::uint8_t> out = m.like<std::uint8_t>(m.dims());
    for (index_t i = 0; i < m.size(); ++i) out[i] = (d2[i] <= r * r * (1 + 1e-9)) == of_set;
    return out;
  };
  for (const Vec3& h : {Vec3{0.5, 0.5, 0.5}, Vec3{1.0, 1.0, 2.0}, Vec3{0.3, 0.7, 0.11}}) {
    const double h_max = std::max({h[0], h[1], h[2]});
    for (int kind = 0; kind < 4; ++kind) {
      Volume<std::uint8_t> m(dims, h, kind == 3 ? 1 : 0);
      for (index_t i = 0; i < m.size() && kind < 2; ++i) m[i] = kind == 0 ? sparse(rng) : dense(rng);
      for (double r : {0.0, 0.5 * h_max, 1.0 * h_max, std::sqrt(2.0) * h_max, std::sqrt(3.0) * h_max, 1.75 * h_max,
                       3.0 * h_max, 4.5 * h_max, 9.0 * h_max}) {
        ASSERT_EQ(dilate(m, r).storage(), reference(m, r, true).storage()) << h[2] << " " << kind << " " << r;
        ASSERT_EQ(erode(m, r).storage(), reference(m, r, false).storage()) << h[2] << " " << kind << " " << r;
      }
    }
  }
}

TEST(Cleanup, OpeningRemovesThinBridgeAndClosingFillsNarrowGap) {
  Volume<std::uint8_t> l(Dims{30, 12, 12}, {1, 1, 1}, 0);
  auto box = [&](int x0, int x1, int y0, int y1, int z0, int z1, std::uint8_t v) {
    for (int z = z0; z < z1; ++z)
      for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) l(x, y, z) = v;
  };
  box(2, 12, 1, 11, 1, 11, 1);
  box(18, 28, 1, 11, 1, 11, 1);
  box(12, 18, 6, 7, 6, 7, 1);  // 1-voxel-thick bridge
  Volume<std::uint8_t> opened = l;
  const index_t changed = open_phase(opened, 1, 1.5);
  index_t lost = 0;
  for (index_t i = 0; i < l.size(); ++i) lost += l[i] == 1 && opened[i] != 1;
  EXPECT_EQ(changed, lost);
  EXPECT_GE(lost, 6);
  for (int x = 12; x < 18; ++x) EXPECT_EQ(opened(x, 6, 6), 0);
  EXPECT_EQ(opened(7, 6, 6), 1);
  Volume<std::uint8_t> gap(Dims{20, 10, 10}, {1, 1, 1}, 1);
  for (index_t z = 0; z < 10; ++z)
    for (index_t y = 0; y < 10; ++y) gap(10, y, z) = 0;  // 1-voxel slit
  EXPECT_EQ(close_phase(gap, 1, 1.0), 100);
  for (auto v : gap.storage()) EXPECT_EQ(v, 1);
}

TEST(Particles, TwoTouchingSpheresGiveTwoParticles) {
  const Dims d{40, 24, 24};
  Volume<std::uint8_t> a = ball_mask(d, {12, 12, 12}, 8), b = ball_mask(d, {26, 12, 12}, 8);
  Volume<std::uint8_t> l(d);
  for (index_t i = 0; i < l.size(); ++i) l[i] = a[i] || b[i] ? 2 : 0;
  const auto ids = separate_particles(l, 2);
  const auto t = particle_table(ids);
  ASSERT_EQ(t.size(), 2u);
  // The cut runs through the neck's mid-plane: each half keeps its own ball.
  EXPECT_EQ(ids(12, 12, 12) != ids(26, 12, 12), true);
  EXPECT_EQ(t[0].voxels + t[1].voxels, [&] {
    index_t n = 0;
    for (auto v : l.storage()) n += v == 2;
    return n;
  }());
  for (const Particle& p : t) {
    EXPECT_NEAR(p.centroid_um[1], 12, 1e-9);
    EXPECT_NEAR(p.centroid_um[2], 12, 1e-9);
    EXPECT_FALSE(p.touches_border);
    EXPECT_GT(p.sphericity, 0.9);
  }
  // The cut is the neck's mid-plane x = 19: every voxel off that plane lies with its own ball.
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x)
        if (ids(x, y, z) && x != 19) {
          EXPECT_EQ(ids(x, y, z), x < 19 ? ids(12, 12, 12) : ids(26, 12, 12));
        }
}

// Overlapping balls of random centres and radii in a volume of several reconstruction slabs.
Volume<std::uint8_t> packed_balls(Dims d, int count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Volume<std::uint8_t> l(d);
  for (int k = 0; k < count; ++k) {
    const Vec3 c{u(rng) * static_cast<double>(d.x), u(rng) * static_cast<double>(d.y),
                 u(rng) * static_cast<double>(d.z)};
    const Volume<std::uint8_t> b = ball_mask(d, c, 3 + 5 * u(rng));
    for (index_t i = 0; i < l.size(); ++i) l[i] = l[i] || b[i] ? 2 : 0;
  }
  return l;
}

TEST(Particles, SeparationEqualsTheWatershedOfItsMarkers) {
  // separate_particles floods on packed words (level rank beside the label); the public
  // watershed_from_markers floods on the distance map itself: the same queue, so the same ids.
  const Volume<std::uint8_t> l = packed_balls(Dims{40, 36, 52}, 30, 7);
  Volume<std::uint8_t> mask(l.dims());
  for (index_t i = 0; i < l.size(); ++i) mask[i] = l[i] == 2;
  const Volume<float> dist = distance_transform(mask);
  for (int connectivity : {6, 26})
    for (double h : {0.5, 1.0}) {
      std::uint32_t n = 0;
      const auto markers = h_maxima_markers(dist, h, connectivity, &n);
      ASSERT_GT(n, 5u);
      const auto expected = watershed_from_markers(dist, markers, connectivity);
      const auto ids = separate_particles(l, 2, ParticleOptions{h, 0, connectivity});
      EXPECT_TRUE(ids.storage() == expected.storage()) << connectivity << " " << h;
    }
}

TEST(Particles, ReconstructionEqualsRepeatedDilationUnderTheMask) {
  // Reconstruction runs per slab of z-planes, then across the cuts; the definition is the
  // fixpoint of J = min(max of J over the neighbourhood, mask), reached here by plain iteration.
  const Dims d{14, 12, 70};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  Volume<float> mask(d), marker(d);
  for (index_t i = 0; i < mask.size(); ++i) {
    mask[i] = u(rng) < 0.1f ? -std::numeric_limits<float>::infinity() : 10 + 4 * u(rng);
    marker[i] = u(rng) < 0.002f ? mask[i] : 0.0f;
  }
  for (int connectivity : {6, 26}) {
    const auto& offs = neighbour_offsets(connectivity);
    Volume<float> J(d);
    for (index_t i = 0; i < J.size(); ++i) J[i] = std::min(marker[i], mask[i]);
    for (bool changed = true; changed;) {
      changed = false;
      const Volume<float> prev = J;
      for (index_t z = 0; z < d.z; ++z)
        for (index_t y = 0; y < d.y; ++y)
          for (index_t x = 0; x < d.x; ++x) {
            float m = prev(x, y, z);
            for (const Offset& o : offs) {
              const index_t nx = x + o.dx, ny = y + o.dy, nz = z + o.dz;
              if (nx >= 0 && ny >= 0 && nz >= 0 && nx < d.x && ny < d.y && nz < d.z) m = std::max(m, prev(nx, ny, nz));
            }
            const float v = std::min(m, mask(x, y, z));
            changed = changed || v != J(x, y, z);
            J(x, y, z) = v;
          }
    }
    const auto R = reconstruct_by_dilation(marker, mask, connectivity);
    EXPECT_TRUE(R.storage() == J.storage()) << connectivity;
  }
}

TEST(Particles, TableOfABoxIsExact) {
  Volume<std::uint32_t> ids(Dims{10, 10, 10}, {0.5, 1.0, 2.0});
  ids.origin_um = {1, 2, 3};
  for (index_t z = 0; z < 3; ++z)
    for (index_t y = 2; y < 6; ++y)
      for (index_t x = 4; x < 9; ++x) ids(x, y, z) = 1;
  const auto t = particle_table(ids);
  ASSERT_EQ(t.size(), 1u);
  const Particle& p = t[0];
  EXPECT_EQ(p.voxels, 60);
  EXPECT_DOUBLE_EQ(p.volume_um3, 60.0);
  EXPECT_NEAR(p.equivalent_diameter_um, std::cbrt(6 * 60.0 / M_PI), 1e-12);
  EXPECT_DOUBLE_EQ(p.centroid_um[0], 1 + 6.0 * 0.5);
  EXPECT_DOUBLE_EQ(p.centroid_um[1], 2 + 3.5 * 1.0);
  EXPECT_DOUBLE_EQ(p.centroid_um[2], 3 + 1.0 * 2.0);
  EXPECT_EQ(p.bbox_min, (std::array<index_t, 3>{4, 2, 0}));
  EXPECT_EQ(p.bbox_max, (std::array<index_t, 3>{8, 5, 2}));
  // Box 2.5 x 4 x 6 µm: area 2 (10 + 15 + 24) = 98 µm², reported as 2/3 of it.
  EXPECT_NEAR(p.surface_area_um2, 98.0 * 2 / 3, 1e-12);
  EXPECT_TRUE(p.touches_border);
  const std::string csv = particle_table_csv(t);
  EXPECT_EQ(csv.substr(0, 3), "id,");
  EXPECT_NE(csv.find("\n1,60,60,"), std::string::npos);
}

TEST(Particles, HMaximaMergesShallowBumps) {
  // A 1-D profile with two peaks 5 and 4.5 separated by a saddle at 4: h = 1 keeps one marker.
  Volume<float> f(Dims{7, 1, 1});
  const float vals[7] = {1, 5, 4, 4.5f, 2, 0, 3};
  for (int i = 0; i < 7; ++i) f[i] = vals[i];
  std::uint32_t n = 0;
  auto m = h_maxima_markers(f, 1.0, 6, &n);
  EXPECT_EQ(n, 2u);  // the big peak, and the separate component at x=6
  EXPECT_EQ(m[1], 1u);
  EXPECT_EQ(m[3], 1u);  // the marker is the whole plateau of the reconstruction, x = 1..3
  EXPECT_EQ(m[4], 0u);
  m = h_maxima_markers(f, 0.25, 6, &n);
  EXPECT_EQ(n, 3u);
}

TEST(Particles, HMaximaPlateauCutByAVoxelWithAHigherNeighbourIsNoMaximum) {
  // Row y = 1 is a plateau at 5 whose middle voxel (2, 1) touches the peak 6 at (2, 0) (6-
  // connectivity); the peak's other neighbours are background. The plateau's two outer parts
  // x = 0..1 and x = 3..4 touch no higher voxel themselves, only through the middle one: neither
  // is a maximum, for either part scanned first.
  Volume<float> f(Dims{5, 2, 1});
  for (index_t x = 0; x < 5; ++x) f(x, 1, 0) = 5;
  f(2, 0, 0) = 6;
  std::uint32_t n = 0;
  const auto m = h_maxima_markers(f, 0.5, 6, &n);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(m(2, 0, 0), 1u);
  for (index_t x = 0; x < 5; ++x) EXPECT_EQ(m(x, 1, 0), 0u) << x;
}
