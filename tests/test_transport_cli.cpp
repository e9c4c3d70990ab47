// `voxpress solve` end to end: JSON contract, exit codes, optional outputs. Runs the built
// executable (VP_VOXPRESS_EXE); skipped when it has not been built.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "filters/io/volume_io.h"

namespace vp {
namespace {

namespace fs = std::filesystem;

using CommandRun = testing::CliResult;

class SolveCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(VP_VOXPRESS_EXE)) GTEST_SKIP() << VP_VOXPRESS_EXE << " not built";
    dir_ = fs::temp_directory_path() / ("vp_transport_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    // Halves along z: label 1 (z < 10) and label 2; label 0 nowhere.
    Volume<std::uint8_t> v({6, 7, 20}, {0.5, 0.5, 0.5});
    for (index_t z = 0; z < 20; ++z)
      for (index_t y = 0; y < 7; ++y)
        for (index_t x = 0; x < 6; ++x) v(x, y, z) = z < 10 ? 1 : 2;
    halves_ = (dir_ / "halves.tif").string();
    write_volume(v, halves_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  CommandRun voxpress(const std::string& args) const { return testing::run_voxpress(args, dir_); }
  fs::path dir_;
  std::string halves_;
};

TEST_F(SolveCommand, JsonHoldsEveryAxisAndTheInput) {
  const CommandRun r = voxpress("solve " + halves_ + " --cond 1=10,2=1 --axis all --tol 1e-10 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* a : {"x", "y", "z"})
    for (const char* key : {"sigma_eff", "tau", "macmullin", "porosity", "porosity_percolating", "iterations",
                            "residual", "flux_balance", "status", "seconds"})
      EXPECT_TRUE(j[a].contains(key)) << a << "." << key;
  EXPECT_NEAR(j["z"]["sigma_eff"].get<double>(), 1.0 / (0.5 / 10 + 0.5), 1e-7);  // series
  EXPECT_NEAR(j["x"]["sigma_eff"].get<double>(), 5.5, 1e-7);                     // parallel
  EXPECT_NEAR(j["y"]["tau"].get<double>(), 1.0, 1e-7);
  EXPECT_EQ(j["z"]["status"], "ok");
  EXPECT_EQ(j["input"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["input"]["dims"], nlohmann::json::array({6, 7, 20}));
  EXPECT_EQ(j["settings"]["tol"].get<double>(), 1e-10);
  EXPECT_EQ(j["conductivities"].size(), 2u);
}

TEST_F(SolveCommand, NonPercolatingGivesNullTauAndStatus) {
  // Label 1 alone fills only the lower half: no path along z, a full one along x.
  const CommandRun r = voxpress("solve " + halves_ + " --phase 1 --axis all --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["z"]["status"], "not_percolating");
  EXPECT_EQ(j["z"]["sigma_eff"].get<double>(), 0.0);
  EXPECT_TRUE(j["z"]["tau"].is_null());
  EXPECT_TRUE(j["z"]["macmullin"].is_null());
  EXPECT_EQ(j["x"]["status"], "ok");
  EXPECT_NEAR(j["x"]["sigma_eff"].get<double>(), 0.5, 1e-5);
}

TEST_F(SolveCommand, NamesFromLabelsAndSpacingOverride) {
  const CommandRun r =
      voxpress("solve " + halves_ + " --labels bottom=1,top=2 --phase bottom,top --spacing 1,2,3 --axis z --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["phase"], "bottom+top");
  EXPECT_NEAR(j["z"]["tau"].get<double>(), 1.0, 1e-6);
  EXPECT_NEAR(j["z"]["length_um"].get<double>(), 60.0, 1e-12);
  EXPECT_EQ(j["input"]["spacing_um"], nlohmann::json::array({1.0, 2.0, 3.0}));
}

TEST_F(SolveCommand, BadInputExitsWithTwo) {
  EXPECT_EQ(voxpress("solve " + halves_ + " --phase 9").code, 2);     // label absent
  EXPECT_EQ(voxpress("solve " + halves_ + " --cond 1=-3").code, 2);   // negative conductivity
  EXPECT_EQ(voxpress("solve " + halves_ + " --cond 1=abc").code, 2);  // not a number
  EXPECT_EQ(voxpress("solve " + halves_).code, 2);                    // no phase named
  EXPECT_EQ(voxpress("solve " + halves_ + " --phase 1 --axis w").code, 2);
  EXPECT_EQ(voxpress("solve " + (dir_ / "missing.tif").string() + " --phase 1").code, 2);
}

TEST_F(SolveCommand, OutWritesFieldsSlicesAndProfile) {
  const fs::path out = dir_ / "out";
  const CommandRun r = voxpress("solve " + halves_ + " --cond 1=10,2=1 --axis z --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* f : {"potential_z.tif", "current_z.tif", "potential_xy.png", "current_xy.png", "potential_xz.png",
                        "potential_yz.png", "transport_profile_z.csv"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  ReadOptions o;
  o.path = (out / "potential_z.tif").string();
  const Volume<float> pot = to_float(read_volume(o).volume);
  // Series halves, resistance per unit area in units of h: 10 slices of 1/10, then 10 of 1
  // (total 11). Centre of slice t < 10: V = 1 − (t + ½)/110; t ≥ 10: V = 1 − (t − 8.5)/11.
  EXPECT_NEAR(pot(2, 3, 0), 1.0 - 0.5 / 110, 1e-5);
  EXPECT_NEAR(pot(2, 3, 9), 1.0 - 9.5 / 110, 1e-5);
  EXPECT_NEAR(pot(2, 3, 10), 1.0 - 1.5 / 11, 1e-5);
  EXPECT_NEAR(pot(5, 6, 19), 1.0 - 10.5 / 11, 1e-5);
}

TEST_F(SolveCommand, NotConvergedExitsWithThree) {
  Volume<std::uint8_t> v({16, 16, 16});
  for (index_t i = 0; i < v.size(); ++i) v[i] = (i * 7919 % 13) < 8 ? 1 : 0;  // irregular, percolating
  for (index_t z = 0; z < 16; ++z) v(0, 0, z) = 1;
  const std::string path = (dir_ / "noise.tif").string();
  write_volume(v, path);
  const CommandRun r = voxpress("solve " + path + " --phase 1 --max-iterations 1 --json");
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(nlohmann::json::parse(r.out)["z"]["status"], "not_converged");
}

}  // namespace
}  // namespace vp
