// Preprocessing (binning, percentiles, rings, cupping, denoising) and the forest's features and
// model file, on constructed volumes with known answers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "filters/preprocess/artifacts.h"
#include "filters/preprocess/denoise.h"
#include "filters/preprocess/intensity.h"
#include "filters/preprocess/preprocess.h"
#include "filters/segment/features.h"
#include "filters/segment/forest.h"

using namespace vp;

namespace {

double mean_of(const Volume<float>& v) {
  double s = 0;
  for (float x : v.storage()) s += x;
  return s / static_cast<double>(v.size());
}

Volume<float> noisy_constant(Dims d, double level, double sigma, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(level, sigma);
  Volume<float> v(d);
  for (auto& x : v.storage()) x = static_cast<float>(n(rng));
  return v;
}

}  // namespace

TEST(Preprocess, BinMeanAveragesBlocksAndScalesSpacing) {
  Volume<float> v(Dims{5, 4, 4}, {0.5, 0.5, 1.0});
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const auto b = bin_mean(v, 2);
  EXPECT_EQ(b.dims(), (Dims{2, 2, 2}));  // x = 5: the trailing voxel is dropped
  EXPECT_EQ(b.spacing_um, (Vec3{1.0, 1.0, 2.0}));
  EXPECT_DOUBLE_EQ(b.origin_um[0], 0.25);
  // Block (0,0,0): x 0..1, y 0..1, z 0..1 -> indices x + 5y + 20z.
  double s = 0;
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x) s += x + 5 * y + 20 * z;
  EXPECT_FLOAT_EQ(b(0, 0, 0), static_cast<float>(s / 8));
  EXPECT_FLOAT_EQ(b(1, 1, 1), b(0, 0, 0) + 2 + 10 + 40);
  EXPECT_THROW(bin_mean(v, 8), InputError);
}

TEST(Preprocess, PercentilesAndNormalisation) {
  Volume<float> v(Dims{100, 1, 1});
  for (index_t i = 0; i < 100; ++i) v[i] = static_cast<float>(99 - i);
  EXPECT_DOUBLE_EQ(percentile(v, 0.5), 49.5);
  EXPECT_DOUBLE_EQ(percentile(v, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(percentile(v, 1.0), 99.0);
  const auto n = normalise_percentiles(v, 0.1, 0.9, true);
  EXPECT_NEAR(n.low_value, 9.9, 1e-12);
  EXPECT_NEAR(n.high_value, 89.1, 1e-12);
  EXPECT_FLOAT_EQ(n.grey[0], 1.0f);   // 99 clamped
  EXPECT_FLOAT_EQ(n.grey[99], 0.0f);  // 0 clamped
  EXPECT_NEAR(n.grey[50], (49 - 9.9) / 79.2, 1e-6);
  EXPECT_THROW(normalise_percentiles(Volume<float>(Dims{4, 4, 4}, {1, 1, 1}, 3.0f)), InputError);
}

TEST(Preprocess, CuppingFitRemovesARadialQuadraticExactly) {
  Volume<float> v(Dims{41, 41, 3}, {0.5, 0.5, 1.0});
  for (index_t z = 0; z < 3; ++z)
    for (index_t y = 0; y < 41; ++y)
      for (index_t x = 0; x < 41; ++x) {
        const double r2 = std::pow((x - 20) * 0.5, 2) + std::pow((y - 20) * 0.5, 2);
        v(x, y, z) = static_cast<float>(100 + 0.2 * r2);
      }
  const CuppingFit fit = correct_cupping(v, {}, 1);
  ASSERT_EQ(fit.coefficients.size(), 2u);
  EXPECT_NEAR(fit.coefficients[0], 100, 1e-6);
  EXPECT_NEAR(fit.coefficients[1], 0.2, 1e-9);
  const double m = mean_of(v);
  for (float x : fit.grey.storage()) EXPECT_NEAR(x, m, 1e-3);  // flat, mean kept
}

TEST(Preprocess, RingReductionRemovesShellOffsetsAndKeepsStructure) {
  const Dims d{48, 48, 2};
  Volume<float> clean(d, {1, 1, 1}, 10.0f);
  for (index_t z = 0; z < 2; ++z)  // an off-centre block: not rotationally symmetric
    for (index_t y = 30; y < 38; ++y)
      for (index_t x = 6; x < 14; ++x) clean(x, y, z) = 20.0f;
  Volume<float> ringed = clean;
  for (index_t z = 0; z < 2; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const double r = std::hypot(x - 23.5, y - 23.5);
        if (std::lround(r) == 12 || std::lround(r) == 17) ringed(x, y, z) += 3.0f;
      }
  const Volume<float> fixed = reduce_rings(ringed, {}, 9);
  double before = 0, after = 0;
  for (index_t i = 0; i < clean.size(); ++i) {
    before += std::abs(ringed[i] - clean[i]);
    after += std::abs(fixed[i] - clean[i]);
  }
  EXPECT_LT(after, 0.1 * before);
  EXPECT_NEAR(fixed(10, 34, 0), 20.0f, 0.5);  // the block survives
}

TEST(Denoise, NoiseEstimateOfGaussianNoise) {
  const auto v = noisy_constant(Dims{64, 64, 16}, 100, 4, 3);
  EXPECT_NEAR(estimate_noise_sigma(v), 4.0, 0.2);
}

TEST(Denoise, MedianRemovesIsolatedOutlierExactly) {
  Volume<float> v(Dims{9, 9, 9}, {1, 1, 1}, 5.0f);
  v(4, 4, 4) = 1000;
  DenoiseOptions o;
  o.method = DenoiseMethod::median;
  const auto m = denoise(v, o);
  for (float x : m.storage()) EXPECT_EQ(x, 5.0f);
}

TEST(Denoise, EdgePreservingFiltersReduceNoiseAndKeepAStep) {
  // Two halves 100 | 200 along x with noise σ = 10.
  Volume<float> v = noisy_constant(Dims{32, 32, 16}, 0, 10, 5);
  for (index_t z = 0; z < 16; ++z)
    for (index_t y = 0; y < 32; ++y)
      for (index_t x = 0; x < 32; ++x) v(x, y, z) += x < 16 ? 100.0f : 200.0f;
  for (DenoiseMethod m :
       {DenoiseMethod::median, DenoiseMethod::bilateral, DenoiseMethod::anisotropic, DenoiseMethod::nlmeans}) {
    DenoiseOptions o;
    o.method = m;
    const auto f = denoise(v, o);
    EXPECT_LT(estimate_noise_sigma(f), 0.7 * estimate_noise_sigma(v)) << to_string(m);
    // The step stays sharp: voxels two away from it keep their side's level.
    double left = 0, right = 0;
    for (index_t z = 0; z < 16; ++z)
      for (index_t y = 0; y < 32; ++y) {
        left += f(13, y, z);
        right += f(18, y, z);
      }
    EXPECT_NEAR(left / 512, 100, 3) << to_string(m);
    EXPECT_NEAR(right / 512, 200, 3) << to_string(m);
  }
  EXPECT_THROW(parse_denoise_method("gauss"), InputError);
}

TEST(Preprocess, ChainAppliesStepsInOrder) {
  Volume<float> v = noisy_constant(Dims{16, 16, 16}, 50, 1, 9);
  PreprocessOptions o;
  Box b;
  b.min = {2, 2, 2};
  b.size = {8, 8, 8};
  o.crop = b;
  o.bin = 2;
  o.normalise = true;
  PreprocessReport rep;
  const auto out = preprocess_grey(v, o, &rep);
  EXPECT_EQ(out.dims(), (Dims{4, 4, 4}));
  EXPECT_EQ(rep.steps, (std::vector<std::string>{"crop", "bin2", "normalise"}));
  b.size = {20, 8, 8};
  o.crop = b;
  EXPECT_THROW(preprocess_grey(v, o), InputError);
}

TEST(Features, EigenvaluesAndSmoothing) {
  const auto ev = symmetric_eigenvalues(2, 3, 1, 0, 0, 0);
  EXPECT_DOUBLE_EQ(ev[0], 1);
  EXPECT_DOUBLE_EQ(ev[2], 3);
  // [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 1, 3, 5.
  const auto e2 = symmetric_eigenvalues(2, 2, 5, 1, 0, 0);
  EXPECT_NEAR(e2[0], 1, 1e-12);
  EXPECT_NEAR(e2[1], 3, 1e-12);
  EXPECT_NEAR(e2[2], 5, 1e-12);
  Volume<float> c(Dims{10, 10, 10}, {1, 1, 1}, 7.0f);
  const Volume<float> smooth = gaussian_smooth(c, 2.0);
  for (float x : smooth.storage()) EXPECT_NEAR(x, 7.0f, 1e-5);
}

TEST(Features, SlabsWithHaloEqualWholeVolume) {
  const Volume<float> v = noisy_constant(Dims{12, 10, 20}, 0, 1, 4);
  FeatureSettings s;
  s.sigmas_um = {1.0, 2.0};
  const std::size_t nf = feature_names(s).size();
  ASSERT_EQ(nf, 15u);
  const auto whole = voxel_features(v, s, 0, 20);
  const auto part = voxel_features(v, s, 8, 12);
  for (std::size_t i = 0; i < part.size(); ++i) ASSERT_FLOAT_EQ(part[i], whole[8 * 120 * nf + i]) << i;
}

TEST(Features, GaussianSmoothSumsEachVoxelsTapsInKernelOrder) {
  // The separable passes x, y, z, each voxel's taps summed in float from 0 in kernel order along
  // the clamped line: the rows-at-once y and z passes must give these floats bit for bit. Lines
  // shorter than the kernel (y: 3 voxels) clamp at both ends.
  Volume<float> v = noisy_constant(Dims{11, 3, 17}, 50, 10, 5);
  v.spacing_um = {0.5, 0.5, 0.3};
  for (double sigma_um : {0.5, 1.0}) {
    Volume<float> expected = v;
    for (int a = 0; a < 3; ++a) {
      const std::vector<double> k = gaussian_kernel(sigma_um / v.spacing_um[a]);
      const auto r = static_cast<index_t>(k.size() / 2);
      const Volume<float> in = expected;
      const Dims d = v.dims();
      for (index_t z = 0; z < d.z; ++z)
        for (index_t y = 0; y < d.y; ++y)
          for (index_t x = 0; x < d.x; ++x) {
            float s = 0;
            for (index_t t = 0; t <= 2 * r; ++t) {
              std::array<index_t, 3> p{x, y, z};
              p[a] = std::clamp<index_t>(p[a] + t - r, 0, d[a] - 1);
              s += static_cast<float>(k[t]) * in(p[0], p[1], p[2]);
            }
            expected(x, y, z) = s;
          }
    }
    const Volume<float> smooth = gaussian_smooth(v, sigma_um);
    for (index_t i = 0; i < v.size(); ++i) ASSERT_EQ(smooth[i], expected[i]) << "σ " << sigma_um << " µm, voxel " << i;
  }
}

TEST(Features, GaussianSlabsEqualTheWholeVolumeBitForBit) {
  Volume<float> v = noisy_constant(Dims{9, 7, 23}, 50, 10, 3);
  v.spacing_um = {0.5, 0.5, 0.7};  // anisotropic: the z kernel's radius differs from x and y
  for (double sigma_um : {0.0, 0.25, 0.5, 1.5}) {
    const Volume<float> whole = gaussian_smooth(v, sigma_um);
    // One buffer through slabs at both ends (clamped border), inside, thinner than the kernel,
    // the whole volume after smaller slabs and a small one after it.
    GaussianSlabs slabs(v, sigma_um);
    for (auto [z0, z1] : std::vector<std::pair<index_t, index_t>>{{0, 5}, {5, 9}, {9, 10}, {18, 23}, {0, 23}, {3, 4}}) {
      slabs.smooth(z0, z1);
      for (index_t i = z0 * 63; i < z1 * 63; ++i)
        ASSERT_EQ(slabs[i], whole[i]) << "σ " << sigma_um << " µm, slab " << z0 << ".." << z1 << ", voxel " << i;
    }
  }
  GaussianSlabs slabs(v, 1.0);
  EXPECT_THROW(slabs.smooth(5, 5), std::out_of_range);
  EXPECT_THROW(slabs.smooth(20, 24), std::out_of_range);
  EXPECT_THROW(GaussianSlabs(v, -1.0), InputError);
}

TEST(Forest, TrainsOnTextureSavesAndReloadsIdentically) {
  // Same mean grey on both halves; the right half is textured (±40 checkerboard).
  Volume<float> v = noisy_constant(Dims{24, 24, 16}, 100, 5, 2);
  for (index_t z = 0; z < 16; ++z)
    for (index_t y = 0; y < 24; ++y)
      for (index_t x = 12; x < 24; ++x) v(x, y, z) += ((x + y + z) % 2 ? 40.0f : -40.0f);
  Volume<std::uint8_t> scribbles(v.dims());
  for (index_t y = 4; y < 20; ++y) {
    scribbles(3, y, 8) = 1;   // class 0
    scribbles(20, y, 8) = 2;  // class 1
  }
  const ForestModel m = ForestModel::train(v, scribbles, {}, {});
  EXPECT_EQ(m.labels(), (std::vector<int>{0, 1}));
  const auto l = m.classify(v);
  index_t right = 0, total = 0;
  for (index_t z = 0; z < 16; ++z)
    for (index_t y = 0; y < 24; ++y)
      for (index_t x = 0; x < 24; ++x)
        if (x < 9 || x > 14) {  // away from the boundary
          right += l(x, y, z) == (x >= 12 ? 1 : 0);
          ++total;
        }
  EXPECT_GT(static_cast<double>(right) / total, 0.98);
  // Per-process names: the clean-clone CI and a developer's ctest may run this test at once.
  const std::string pid = std::to_string(::getpid());
  const std::string path = (std::filesystem::temp_directory_path() / ("vp_test_forest_" + pid + ".yml.gz")).string();
  m.save(path);
  const ForestModel back = ForestModel::load(path);
  EXPECT_EQ(back.labels(), m.labels());
  EXPECT_EQ(back.features().sigmas_um, m.features().sigmas_um);
  EXPECT_EQ(back.classify(v).storage(), l.storage());
  std::filesystem::remove(path);
  const std::string bad = (std::filesystem::temp_directory_path() / ("vp_test_bad_model_" + pid + ".yml")).string();
  std::ofstream(bad) << "%YAML:1.0\nformat: something-else\n";
  EXPECT_THROW(ForestModel::load(bad), InputError);
  std::filesystem::remove(bad);
  EXPECT_THROW(ForestModel::load("/nonexistent/model.yml"), InputError);
  Volume<std::uint8_t> one_class(v.dims());
  one_class(1, 1, 1) = 1;
  EXPECT_THROW(ForestModel::train(v, one_class), InputError);
}
