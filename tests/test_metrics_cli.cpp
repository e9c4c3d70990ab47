// `voxpress measure` end to end: flags, metric selection, JSON rows with the contract's names.
// Runs the built executable (skips when it has not been built in this build folder).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "filters/io/volume_io.h"
#include "phantoms/phantom.h"

using namespace vp;
namespace fs = std::filesystem;

namespace {

using Result = vp::testing::CliResult;

const nlohmann::json* find_row(const nlohmann::json& rows, const std::string& metric, const std::string& phase,
                               const std::string& axis = "") {
  for (const auto& r : rows)
    if (r["metric"] == metric && r["phase"] == phase && r["axis"] == axis) return &r;
  return nullptr;
}

class MeasureCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(VP_VOXPRESS_EXE)) GTEST_SKIP() << "voxpress not built: " << VP_VOXPRESS_EXE;
    dir_ = fs::temp_directory_path() / ("vp_measure_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    // Half-capped AM sphere: pore 0, se 1, am 2; exact contact fraction 0.5.
    phantom::CappedSphereSpec spec;
    spec.dims = {40, 40, 40};
    spec.radius_um = 12;
    spec.shell_um = 3;
    ph_ = phantom::capped_sphere(spec);
    labels_ = (dir_ / "capped.tif").string();
    write_volume(static_cast<const Volume<std::uint8_t>&>(ph_.labels), labels_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  vp::testing::CliResult run(const std::string& args) const { return vp::testing::run_voxpress(args, dir_); }
  fs::path dir_;
  phantom::Phantom ph_;
  std::string labels_;
};

}  // namespace

TEST_F(MeasureCommand, JsonRowsCarryTheContractNames) {
  Result r =
      run("measure " + labels_ +
          " --labels pore=0,se=1,am=2 --roles se=electrolyte,am=active --spacing 0.5 "
          "--metrics volume_fraction,contact_area_fraction,interface_area,tpb_density,percolating_fraction --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  const auto& rows = j.at("rows");
  for (const auto& row : rows)
    for (const char* key : {"metric", "phase", "axis", "value", "unit"}) ASSERT_TRUE(row.contains(key)) << row.dump();
  const auto* vf = find_row(rows, "volume_fraction", "am");
  ASSERT_NE(vf, nullptr);
  EXPECT_DOUBLE_EQ(vf->at("value").get<double>(), ph_.truth.volume_fraction.at("am"));
  ASSERT_NE(find_row(rows, "porosity", "pore"), nullptr);
  const auto* c = find_row(rows, "contact_area_fraction", "se|am");
  ASSERT_NE(c, nullptr);
  EXPECT_NEAR(c->at("value").get<double>(), 0.5, 0.02);
  const auto* a = find_row(rows, "interface_area", "se|am");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->at("unit"), "µm²");
  // Spacing 0.5 µm: half the sphere's 4π(6 µm)² surface touches SE.
  EXPECT_NEAR(a->at("value").get<double>() / (2 * M_PI * 36), 1.0, 0.03);
  ASSERT_NE(find_row(rows, "tpb_density", "am|se|pore"), nullptr);
  ASSERT_NE(find_row(rows, "percolating_fraction", "se", "z"), nullptr);
}

TEST_F(MeasureCommand, BadInputExitsWithTwo) {
  EXPECT_EQ(run("measure " + labels_ + " --metrics no_such_metric").code, 2);
  // contact_area_fraction without roles: the preflight names the missing role.
  EXPECT_EQ(run("measure " + labels_ + " --labels pore=0,se=1,am=2 --metrics contact_area_fraction").code, 2);
  EXPECT_EQ(run("measure " + (dir_ / "missing.tif").string()).code, 2);
}
