// voxpress dvc on the bundled series: the measured axial strain of a step against the
// generator's (z_scale ratio), the JSON keys and output files, and refused input.
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "cli_harness.h"

namespace {

namespace fs = std::filesystem;
using namespace vp::testing;

// Per process: two runs of the suite at once (shared /tmp) must not remove each other's outputs.
fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("vp_test_cli_dvc_" + name + "_" + std::to_string(::getpid()));
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

// The per-axis fraction profile of `phase` along z from a sample's fraction_profiles.csv.
std::map<int, double> z_profile(const fs::path& sample_dir, const std::string& phase) {
  std::istringstream in(slurp(sample_dir / "fraction_profiles.csv"));
  std::map<int, double> out;
  std::string line;
  std::getline(in, line);  // phase,axis,index,position_um,fraction
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) f.push_back(c);
    if (f.size() == 5 && f[0] == phase && f[1] == "z") out[std::stoi(f[2])] = std::stod(f[4]);
  }
  return out;
}

// The align stage brings a later scan of a series onto its reference's grid: the shift it reads
// is the known one, and the AM profile along z then matches the reference's slice by slice
// (without it the 2.3-voxel shift moves the profile).
TEST(CliDvc, AlignStageBringsAStepOntoTheSeriesReference) {
  const fs::path dir = temp_dir("align");
  const auto ph =
      run_voxpress("phantom --out pair --size 48 --pressures 100 --snr 12 --motion rigid --shift 0.6,-0.4,2.3", dir);
  ASSERT_EQ(ph.code, 0) << ph.err;
  double mean_difference[2] = {0, 0};
  for (int aligned = 0; aligned < 2; ++aligned) {
    const std::string run = aligned ? "aligned" : "raw";
    std::ofstream(dir / (run + ".yaml")) << "phases:\n"
                                            "  - {name: pore, label: 0, role: pore}\n"
                                            "  - {name: se, label: 1, role: electrolyte}\n"
                                            "  - {name: am, label: 2, role: active}\n"
                                            "samples:\n"
                                            "  - {path: pair/p100_ref.tif, name: ref, series: s, pressure_MPa: 10}\n"
                                            "  - {path: pair/p100_def.tif, name: def, series: s, pressure_MPa: 20}\n"
                                            "stages:\n"
                                         << (aligned ? "  - {stage: align, max_outside: 0.2}\n" : "")
                                         << "  - {stage: segment, phases: {0: pore, 1: se, 2: am}}\n"
                                            "  - {stage: volume_fractions_profile}\n";
    const auto r = run_voxpress("run " + run + ".yaml --out " + run + " -q", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ref = z_profile(dir / run / "samples" / "ref", "am"),
               def = z_profile(dir / run / "samples" / "def", "am");
    ASSERT_EQ(ref.size(), 48u);
    ASSERT_EQ(def.size(), 48u);
    for (int z = 3; z < 45; ++z) mean_difference[aligned] += std::abs(ref.at(z) - def.at(z)) / 42;
    if (!aligned) continue;
    const std::string m = slurp(dir / run / "metrics.csv");
    const auto value = [&](const std::string& head) {
      const auto at = m.find(head);
      EXPECT_NE(at, std::string::npos) << head << "\n" << m;
      return at == std::string::npos ? NAN : std::stod(m.substr(at + head.size()));
    };
    // The phantom's voxels are 0.5 µm; the reference itself is not moved.
    const double shift[3] = {0.6, -0.4, 2.3};
    for (int a = 0; a < 3; ++a) {
      const std::string axis(1, "xyz"[a]);
      EXPECT_NEAR(value("def,s,20,align,align_shift,," + axis + ","), 0.5 * shift[a], 0.5 * 0.03) << axis;
      EXPECT_EQ(value("ref,s,10,align,align_shift,," + axis + ","), 0) << axis;
      EXPECT_NEAR(value("def,s,20,align,align_rotation,," + axis + ","), 0, 0.05) << axis;
    }
    EXPECT_GT(value("def,s,20,align,align_outside_fraction,,,"), 0.05);  // the shifted-in faces
  }
  // Measured 0.0047 aligned, 0.025 raw.
  EXPECT_LT(mean_difference[1], 0.01);
  EXPECT_GT(mean_difference[0], 2 * mean_difference[1]);
  // --resume redoes the aligned step when only its reference's bytes change.
  fs::copy_file(dir / "pair" / "p100.tif", dir / "pair" / "p100_ref.tif", fs::copy_options::overwrite_existing);
  const auto resumed = run_voxpress("run aligned.yaml --out aligned --resume -q", dir);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  const auto record = nlohmann::json::parse(slurp(dir / "aligned" / "metrics.json"));
  EXPECT_EQ(record["resume"]["redone"].size(), 2u) << record["resume"].dump();
  for (const auto& r : record["resume"]["redone"]) EXPECT_EQ(r["reason"], "input changed") << r.dump();
  // Too little overlap for the default max_outside: that sample fails, naming the fix.
  std::ofstream(dir / "strict.yaml") << "samples:\n"
                                        "  - {path: pair/p100_ref.tif, name: ref, series: s, pressure_MPa: 10}\n"
                                        "  - {path: pair/p100_def.tif, name: def, series: s, pressure_MPa: 20}\n"
                                        "stages:\n"
                                        "  - {stage: align}\n";
  const auto strict = run_voxpress("run strict.yaml --out strict -q", dir);
  EXPECT_EQ(strict.code, 4) << strict.err;
  EXPECT_NE(slurp(dir / "strict" / "run.log").find("raise max_outside"), std::string::npos);
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
