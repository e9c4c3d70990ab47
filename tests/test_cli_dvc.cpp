// voxpress dvc on the bundled series: the measured axial strain of a step against the
// generator's (z_scale ratio), the JSON keys and output files, and refused input.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_harness.h"

namespace {

namespace fs = std::filesystem;
using namespace vp::testing;

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("vp_test_cli_dvc_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

double z_scale(const std::string& step) {
  const auto j = nlohmann::json::parse(slurp(fs::path(VP_SOURCE_DIR) / "data_samples/series" / (step + ".truth.json")));
  return j.at("z_scale").get<double>();
}

TEST(CliDvc, BundledSeriesStepStrainMatchesTheGenerator) {
  const fs::path dir = temp_dir("series");
  const std::string series = std::string(VP_SOURCE_DIR) + "/data_samples/series/";
  const auto r = run_voxpress("dvc '" + series + "p010.tif' '" + series + "p050.tif' --affine --out out --json", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  // The generator presses z about z = 0 by the ratio of its z scales: ε_zz = s(50)/s(10) − 1.
  const double truth = z_scale("p050") / z_scale("p010") - 1;
  EXPECT_NEAR(j["strain"]["zz"].get<double>(), truth, 0.1 * std::abs(truth));
  EXPECT_NEAR(j["strain"]["xx"].get<double>(), 0, 0.01 * std::abs(truth) + 2e-3);
  for (const char* k : {"translation_vox", "rotation_deg", "affine"}) EXPECT_TRUE(j["registration"].contains(k)) << k;
  EXPECT_EQ(j["registration"]["affine"].size(), 3u);
  for (const char* k : {"xx", "yy", "zz", "xy", "xz", "yz", "volumetric"}) EXPECT_TRUE(j["strain"].contains(k)) << k;
  for (const char* k : {"count", "valid", "displacement_mean_vox", "displacement_std_vox", "residual_mean"})
    EXPECT_TRUE(j["nodes"].contains(k)) << k;
  EXPECT_GT(j["nodes"]["valid"].get<int>(), j["nodes"]["count"].get<int>() * 9 / 10);
  for (const char* f : {"displacement.mha", "strain.mha", "nodes.csv", "strain_zz_xz.png", "displacement_xz.png"})
    EXPECT_TRUE(fs::is_regular_file(dir / "out" / f)) << f;
  fs::remove_all(dir);
}

// Every later step of the series too: the issue asks for each step's ε_zz within 10 % of the
// step's strain (measured 0.3–1.7 %, docs/dvc.md).
TEST(CliDvc, EveryBundledSeriesStepStrainMatchesTheGenerator) {
  const fs::path dir = temp_dir("steps");
  const std::string series = std::string(VP_SOURCE_DIR) + "/data_samples/series/";
  const char* steps[] = {"p050", "p125", "p250", "p370"};
  for (int i = 1; i < 4; ++i) {
    const std::string ref = steps[i - 1], def = steps[i];
    const auto r = run_voxpress("dvc '" + series + ref + ".tif' '" + series + def + ".tif' --affine --json", dir);
    ASSERT_EQ(r.code, 0) << ref << " -> " << def << ": " << r.err;
    const double truth = z_scale(def) / z_scale(ref) - 1;
    EXPECT_NEAR(nlohmann::json::parse(r.out)["strain"]["zz"].get<double>(), truth, 0.1 * std::abs(truth))
        << ref << " -> " << def;
  }
  fs::remove_all(dir);
}

// voxpress phantom --motion writes a pair under a known motion; voxpress dvc reads it back.
TEST(CliDvc, PhantomMotionPairsCarryTheirKnownMotion) {
  const fs::path dir = temp_dir("motion");
  const auto ph =
      run_voxpress("phantom --out pair --size 48 --pressures 100 --snr 12 --motion rigid --shift 0.4,-0.3,0.25", dir);
  ASSERT_EQ(ph.code, 0) << ph.err;
  const auto truth = nlohmann::json::parse(slurp(dir / "pair" / "p100.motion.json"));
  EXPECT_EQ(truth["kind"], "rigid");
  EXPECT_DOUBLE_EQ(truth["displacement_at_centre_vox"][0].get<double>(), 0.4);
  const auto r = run_voxpress("dvc pair/p100_ref.tif pair/p100_def.tif --json", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const double expected[3] = {0.4, -0.3, 0.25};
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(j["nodes"]["displacement_mean_vox"][a].get<double>(), expected[a], 0.02) << "axis " << a;

  const auto stray = run_voxpress("phantom --out other --size 16 --pressures 100 --shift 1,0,0", dir);
  EXPECT_EQ(stray.code, 2);
  EXPECT_NE(stray.err.find("give --motion rigid|affine|field"), std::string::npos) << stray.err;
  const auto bad = run_voxpress("phantom --out other --size 16 --pressures 100 --motion shear", dir);
  EXPECT_EQ(bad.code, 2) << bad.err;
  fs::remove_all(dir);
}

TEST(CliDvc, ScansOfDifferentSizeAreRefused) {
  const fs::path dir = temp_dir("size");
  const std::string d = std::string(VP_SOURCE_DIR) + "/data_samples/";
  const auto r = run_voxpress("dvc '" + d + "series/p010.tif' '" + d + "fibsem/fibsem_p370.tif'", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("96x96x48"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("same size"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

}  // namespace
