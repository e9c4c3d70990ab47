// Accuracy of the segmentation chain on phantoms with exact ground truth, imaged with the CT
// forward model at SNR 5 and Gaussian blur σ = 1 voxel. Measured numbers are printed (and
// recorded in docs/segmentation.md); the assertions are the acceptance bars.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "core/gaussian.h"
#include "filters/io/volume_io.h"

#include "filters/preprocess/denoise.h"
#include "filters/segment/forest.h"
#include "filters/segment/histogram.h"
#include "filters/segment/mixture_model.h"
#include "filters/segment/particles.h"
#include "filters/segment/segmenter.h"
#include "metrics/distance_transform.h"
#include "phantoms/phantom.h"

using namespace vp;

namespace {

double dice(const Volume<std::uint8_t>& a, const Volume<std::uint8_t>& b, int label) {
  double both = 0, na = 0, nb = 0;
  for (index_t i = 0; i < a.size(); ++i) {
    na += a[i] == label;
    nb += b[i] == label;
    both += a[i] == label && b[i] == label;
  }
  return na + nb > 0 ? 2 * both / (na + nb) : 1.0;
}

double fraction(const Volume<std::uint8_t>& a, int label) {
  double n = 0;
  for (auto v : a.storage()) n += v == label;
  return n / static_cast<double>(a.size());
}

phantom::ImagingSpec ct_spec(double snr, const std::string& a, const std::string& b) {
  phantom::ImagingSpec s;
  s.snr = snr;
  s.snr_phase_a = a;
  s.snr_phase_b = b;
  s.blur_sigma_vox = {1.0, 1.0, 1.0};
  s.seed = 17;
  return s;
}

// The composite at 3x the default particle sizes (AM radius 24, SE radius 9 voxels) in 96³.
// At the default sizes (SE radius 3 voxels) blur σ = 1 alone, without noise, caps the pore
// Dice at 0.87: the bar needs phases several blur widths across (docs/segmentation.md).
phantom::Phantom coarse_composite(double pressure) {
  phantom::CompositeSpec spec;
  spec.dims = {96, 96, 96};
  spec.cracks_enabled = false;
  spec.seed = 3;
  spec.am_radius_vox *= 3;
  spec.am_radius_min_vox *= 3;
  spec.am_radius_max_vox *= 3;
  spec.se_radius_vox *= 3;
  return phantom::generate_composite(spec, pressure);
}

// The phantom's noise-free grey plus Gaussian noise of σ `sigma` smoothed by a Gaussian of σ
// `corr_vox` voxels (lag-1 correlation exp(−1/(4 corr_vox²)): 0.80 at 1.06), renormalised to σ.
// The phantom imaging has no correlated noise; a reconstruction's filter or sub-voxel texture makes it.
Volume<float> with_correlated_noise(Volume<float> grey, double sigma, double corr_vox, std::uint64_t seed) {
  Volume<float> noise(grey.dims(), grey.spacing_um);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01;
  for (index_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<float>(n01(rng));
  for (int axis = 0; axis < 3; ++axis) gaussian_blur_axis(noise, axis, corr_vox, 4.0);
  double ss = 0;
  for (index_t i = 0; i < noise.size(); ++i) ss += static_cast<double>(noise[i]) * noise[i];
  const double scale = sigma / std::sqrt(ss / static_cast<double>(noise.size()));
  for (index_t i = 0; i < grey.size(); ++i) grey[i] += static_cast<float>(scale * noise[i]);
  return grey;
}

}  // namespace

// Three phases pore / SE / AM, SNR 5 as the phantom defines it (AM–SE pair; the pore–SE
// pair is then at 3.6). A 3³ median precedes multi-Otsu, as a pipeline would.
TEST(Accuracy, MultiOtsuThreePhasesAtSnr5) {
  const phantom::Phantom ph = coarse_composite(50);
  const Volume<float> grey = to_float(phantom::ct_image(ph.labels, ct_spec(5, "am", "se")));
  DenoiseOptions dn;
  dn.method = DenoiseMethod::median;
  const Volume<float> smooth = denoise(grey, dn);
  SegmentOptions o;
  o.method = SegmentMethod::multi_otsu;
  o.classes = 3;
  const SegmentResult r = segment_grey(smooth, o);
  // Labels ascend with grey: pore (0.05) < se (0.45) < am (1.0), the phantom's own 0, 1, 2.
  for (int l = 0; l < 3; ++l) {
    const double d = dice(r.labels, ph.labels, l);
    const double err = 100 * std::abs(fraction(r.labels, l) - fraction(ph.labels, l));
    std::printf("multi-otsu phase %d: Dice %.4f, volume fraction %.4f vs %.4f (error %.2f points)\n", l, d,
                fraction(r.labels, l), fraction(ph.labels, l), err);
    EXPECT_GE(d, 0.95) << "phase " << l;
    EXPECT_LE(err, 1.5) << "phase " << l;
  }
}

// AM and SE of near-equal attenuation (SE 0.9 of AM): the grey histogram shows two peaks
// (pore, solid), not three. SNR 5 on the AM–pore pair, so the AM–SE contrast is 0.5 σ_noise.
// Scribbles: short strokes deep inside each phase (≥ 2 voxels from any other), < 1 % of voxels.
TEST(Accuracy, ForestSeparatesNearEqualAttenuationFromSparseScribbles) {
  const phantom::Phantom ph = coarse_composite(50);
  phantom::ImagingSpec spec = ct_spec(5, "am", "pore");
  spec.attenuation["se"] = 0.9;
  const Volume<float> grey = to_float(phantom::ct_image(ph.labels, spec));
  Volume<std::uint8_t> scribbles(grey.dims(), grey.spacing_um);
  index_t painted = 0;
  for (int l = 0; l < 3; ++l) {
    Volume<std::uint8_t> inside(grey.dims(), grey.spacing_um);
    for (index_t i = 0; i < grey.size(); ++i) inside[i] = ph.labels[i] == l;
    const Volume<float> depth = distance_transform(inside);
    // Every 8th slice, every 6th row: strokes along x through the phase interior.
    for (index_t z = 4; z < grey.dims().z; z += 8)
      for (index_t y = 3; y < grey.dims().y; y += 6)
        for (index_t x = 0; x < grey.dims().x; x += 2)
          if (depth(x, y, z) >= 2 * grey.spacing_um[0] && !scribbles(x, y, z)) {
            scribbles(x, y, z) = static_cast<std::uint8_t>(l + 1);
            ++painted;
          }
  }
  const double cover = static_cast<double>(painted) / static_cast<double>(grey.size());
  ASSERT_LT(cover, 0.01);
  const ForestModel model = ForestModel::train(grey, scribbles);
  const Volume<std::uint8_t> labels = model.classify(grey);
  const double dam = dice(labels, ph.labels, phantom::kActive), dse = dice(labels, ph.labels, phantom::kElectrolyte);
  std::printf("forest: scribbles %.3f %% of voxels, Dice am %.4f, se %.4f, pore %.4f\n", 100 * cover, dam, dse,
              dice(labels, ph.labels, phantom::kPore));
  EXPECT_GE(dam, 0.90);
  EXPECT_GE(dse, 0.90);
  // Intensity alone cannot: multi-Otsu's 3 classes split AM / SE far worse.
  SegmentOptions o;
  o.method = SegmentMethod::multi_otsu;
  o.classes = 3;
  const SegmentResult r = segment_grey(grey, o);
  std::printf("multi-otsu on the same image: Dice am %.4f, se %.4f\n", dice(r.labels, ph.labels, 2),
              dice(r.labels, ph.labels, 1));
}

TEST(Accuracy, ParticleCountOnSeparatedSpheres) {
  phantom::SpheresSpec s;
  s.dims = {64, 64, 64};
  s.count = 14;
  s.radius_min_um = 4;
  s.radius_max_um = 8;
  s.min_gap_um = 2;
  s.seed = 5;
  const phantom::Phantom ph = phantom::separated_spheres(s);
  const Volume<float> grey = to_float(phantom::ct_image(ph.labels, ct_spec(5, "am", "pore")));
  DenoiseOptions dn;
  dn.method = DenoiseMethod::median;
  const SegmentResult r = segment_grey(denoise(grey, dn), {SegmentMethod::otsu});
  const Volume<std::uint32_t> ids = separate_particles(r.labels, 1, {});
  const auto table = particle_table(ids);
  const int truth = ph.truth.particle_count("am");
  std::printf("separated spheres: %zu particles found, %d true\n", table.size(), truth);
  EXPECT_LE(std::abs(static_cast<double>(table.size()) - truth), 0.05 * truth);
}

// Real scan: PuMA's FiberForm micro-CT (MANIFEST.md), fibre = grey 90..255 by PuMA's own tests.
namespace {

const std::string kFiberform = std::string(VP_REAL_DATA_DIR) + "/puma_100_fiberform.tif";

Volume<float> read_grey(const std::string& file) {
  ReadOptions o;
  o.path = file;
  return to_float(read_volume(o).volume);
}

}  // namespace

TEST(RealData, FiberformThresholdReproducesPumaVolumeFraction) {
  if (!std::filesystem::exists(kFiberform)) GTEST_SKIP() << "real data not present: " << kFiberform;
  const Volume<float> grey = read_grey(kFiberform);
  const auto labels = apply_thresholds(grey, {90});
  index_t fibre = 0;
  for (auto v : labels.storage()) fibre += v == 1;
  EXPECT_EQ(fibre, 167140);  // PuMA: compute_volume_fraction(ws, (90, 255)) == 0.16714
  const SegmentResult otsu = segment_grey(grey, {SegmentMethod::otsu});
  std::printf("fiberform: Otsu threshold %.2f, fibre fraction %.5f (PuMA cut-off 90: 0.16714)\n", otsu.thresholds[0],
              fraction(otsu.labels, 1));
  EXPECT_NEAR(fraction(otsu.labels, 1), 0.16714, 0.02);
}

// Correlated noise (lag-1 correlation 0.8, the FiberForm scan's 0.82) on a composite at SNR 8, PSF
// σ 1: second differences see a quarter of its σ, and today's σ bounds (1.5 × that) forbid the
// phases' real width. auto must detect it (ScanNoise::correlated) and return the truth's fractions.
TEST(Accuracy, AutoFractionsUnderCorrelatedNoise) {
  phantom::CompositeSpec spec;
  // Tuning seed 298; VP_TEST_SEED reruns it on others (held-out 301-303: docs/segmentation-studies.md).
  spec.seed = std::getenv("VP_TEST_SEED") ? std::stoull(std::getenv("VP_TEST_SEED")) : 298;
  const phantom::Phantom ph = phantom::generate_composite(spec, 50);
  phantom::ImagingSpec im;
  im.noise = phantom::NoiseModel::none;
  const double sigma = (im.grey_level("am") - im.grey_level("se")) / 8;
  const Volume<float> grey = with_correlated_noise(to_float(phantom::ct_image(ph.labels, im)), sigma, 1.06, spec.seed);
  SegmentOptions o;
  o.classes = 3;
  const SegmentResult r = segment_grey(grey, o);
  const ScanNoise& n = r.auto_fit->scan_noise;
  std::printf("correlated noise σ %.0f: white %.0f, lag ratio %.2f, peak σ %.0f, correlated %d, fit_ks %.4f\n", sigma,
              n.white, n.lag_ratio, n.peak_sigma, int(n.correlated), r.auto_fit->mixture.ks);
  EXPECT_TRUE(n.correlated);
  for (int c = 0; c < 3; ++c) {
    const double truth = fraction(ph.labels, c), label = fraction(r.labels, c), pv = r.partial_volume->fraction_pv[c];
    std::printf("  class %d: truth %.4f, labels %.4f, pv %.4f ± %.4f\n", c, truth, label, pv,
                r.partial_volume->fraction_pv_ci95[c]);
    // Before the gate (white-noise σ bounds): porosity labels 0.165, pv 0.109 for 0.232 (fit_ks 0.11).
    EXPECT_NEAR(label, truth, 0.05) << "class " << c;
    EXPECT_NEAR(pv, truth, 0.03) << "class " << c;
    EXPECT_LE(std::fabs(pv - truth), r.partial_volume->fraction_pv_ci95[c]) << "class " << c;
  }
  EXPECT_EQ(r.auto_fit->fit_status, "good");
}

// The FiberForm scan (MANIFEST.md): correlated noise (lag-1 0.82), an 18 % dark plateau below the void
// peak and a fibre hump of σ ~36 that is texture, not noise. The model does not fit it, and auto must say
// so: fit_status "poor", levels inside the grey range, the fibre label fraction near PuMA's references
// (0.154 by Otsu, 0.16714 at cut-off 90), and a partial-volume interval that covers both.
// Before the fit-quality rule (763fe21) auto returned fibre level 276 (above 255), labels 0.118 and pv
// 0.048 ± 0.0045, without a warning.
TEST(RealData, FiberformAutoSaysHowSureItIs) {
  if (!std::filesystem::exists(kFiberform)) GTEST_SKIP() << "real data not present: " << kFiberform;
  const Volume<float> grey = read_grey(kFiberform);
  SegmentOptions o;
  o.classes = 2;
  const SegmentResult r = segment_grey(grey, o);
  const AutoSegmentFit& f = *r.auto_fit;
  const PartialVolumeResult& pv = *r.partial_volume;
  const double label = fraction(r.labels, 1);
  std::printf(
      "fiberform auto: status %s, fit_ks %.4f, noise %.3f (white %.3f, lag ratio %.2f), levels %.1f %.1f, "
      "fibre labels %.4f, pv %.4f ± %.4f\n",
      f.fit_status.c_str(), f.mixture.ks, f.noise_sigma, f.scan_noise.white, f.scan_noise.lag_ratio, f.mixture.means[0],
      f.mixture.means[1], label, pv.fraction_pv[1], pv.fraction_pv_ci95[1]);
  EXPECT_TRUE(f.scan_noise.correlated);
  EXPECT_EQ(f.fit_status, "poor");
  EXPECT_TRUE(std::any_of(f.warnings.begin(), f.warnings.end(),
                          [](const std::string& w) { return w.find("fit_ks") != std::string::npos; }));
  EXPECT_GT(f.mixture.means[0], 45);  // the void peak is at 57
  EXPECT_LT(f.mixture.means[0], 65);
  EXPECT_GT(f.mixture.means[1], 90);  // PuMA's fibre cut-off
  EXPECT_LT(f.mixture.means[1], 255);
  EXPECT_GT(label, 0.13);  // PuMA: 0.154-0.167 by threshold; the midpoint 119 between the levels cuts higher
  EXPECT_LT(label, 0.18);
  for (double reference : {0.154, 0.16714})
    EXPECT_LE(std::fabs(pv.fraction_pv[1] - reference), pv.fraction_pv_ci95[1]) << "reference " << reference;
}
