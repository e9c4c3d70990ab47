// `voxpress cracks` end to end on a planted-crack phantom written to disk: JSON keys of the
// contract, exact numbers for an axis-aligned through-crack, the crack table and slice PNGs.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "filters/io/volume_io.h"
#include "phantoms/phantom.h"

namespace vp {
namespace {

namespace fs = std::filesystem;

using CommandResult = testing::CliResult;

class CracksCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(VP_VOXPRESS_EXE)) GTEST_SKIP() << "voxpress not built at " << VP_VOXPRESS_EXE;
    dir_ = fs::temp_directory_path() / ("vp_cracks_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    phantom::PlanarCrackSpec s;
    s.dims = {40, 40, 40};
    s.spacing_um = {0.5, 0.5, 0.5};
    s.host = "se";
    // A through-crack normal to x, three voxels wide (voxel centres 15.75, 16.25, 16.75 µm lie
    // within ±0.75 µm of x = 16.25 µm), and a disc normal to z.
    s.cracks = {{{16.25, 10, 10}, {1, 0, 0}, 1.5, 0}, {{7, 10, 14}, {0, 0, 1}, 1.0, 5}};
    const phantom::Phantom ph = phantom::planar_cracks(s);
    labels_ = (dir_ / "labels.tif").string();
    write_volume(static_cast<const Volume<std::uint8_t>&>(ph.labels), labels_);
    phantom::ImagingSpec imaging;
    imaging.snr = 8;
    grey_ = (dir_ / "grey.tif").string();
    write_volume(phantom::ct_image(ph.labels, imaging), grey_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // stdout and stderr together in `out`.
  CommandResult run(const std::string& args) const {
    return testing::run_voxpress(args, dir_, testing::Streams::merged);
  }
  fs::path dir_;
  std::string labels_, grey_;
};

TEST_F(CracksCli, JsonHasTheContractKeysAndExactThroughCrack) {
  const fs::path out = dir_ / "out";
  const CommandResult r = run("cracks " + labels_ + " --labels pore=0,se=1 --host se --json --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key : {"crack_count", "crack_volume_fraction", "crack_surface_density", "crack_area",
                          "aperture_mean", "aperture_max", "percolates", "bottleneck_diameter", "cracks", "rows"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["crack_count"].get<int>(), 2);
  EXPECT_TRUE(j["percolates"]["z"].get<bool>());
  EXPECT_TRUE(j["percolates"]["y"].get<bool>());
  EXPECT_FALSE(j["percolates"]["x"].get<bool>());
  EXPECT_DOUBLE_EQ(j["bottleneck_diameter"]["z"].get<double>(), 1.5);  // 3 voxels of 0.5 µm
  EXPECT_TRUE(j["bottleneck_diameter"]["x"].is_null());
  ASSERT_EQ(j["cracks"].size(), 2u);
  for (const auto& c : j["cracks"]) {
    for (const char* key : {"id", "area_um2", "aperture_mean_um", "aperture_max_um", "normal", "volume_um3", "host"})
      EXPECT_TRUE(c.contains(key)) << key;
    EXPECT_EQ(c["host"], "se");
  }
  // The through-crack (lowest id: its first voxel comes first in raster order) is exact.
  const auto& through = j["cracks"][0]["area_um2"].get<double>() > 100 ? j["cracks"][0] : j["cracks"][1];
  EXPECT_NEAR(through["area_um2"].get<double>(), 20.0 * 20.0, 1e-9);
  EXPECT_NEAR(through["aperture_mean_um"].get<double>(), 1.5, 1e-9);
  EXPECT_NEAR(std::abs(through["normal"][0].get<double>()), 1.0, 1e-9);
  bool has_row = false;
  for (const auto& row : j["rows"])
    if (row["metric"] == "crack_count") has_row = row["value"].get<double>() == 2.0;
  EXPECT_TRUE(has_row);

  std::ifstream csv(out / "cracks.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind(
                "id,area_um2,aperture_mean_um,aperture_max_um,nx,ny,nz,angle_to_pressing_axis_deg,volume_um3,host", 0),
            0u);
  for (const char* png : {"cracks_xy.png", "cracks_xz.png", "cracks_yz.png"}) EXPECT_TRUE(fs::exists(out / png)) << png;
}

TEST_F(CracksCli, GreyImageKeepsTheLabelledCracks) {
  // Both cracks are labelled: the grey branch must neither lose nor widen them.
  const CommandResult r = run("cracks " + labels_ + " --labels pore=0,se=1 --host se --grey " + grey_ + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["crack_count"].get<int>(), 2);
  EXPECT_DOUBLE_EQ(j["bottleneck_diameter"]["z"].get<double>(), 1.5);
  EXPECT_GT(j["detection"]["grey_contrast"].get<double>(), 0);
}

TEST_F(CracksCli, TextOutputAndBadHost) {
  const CommandResult ok = run("cracks " + labels_ + " --labels pore=0,se=1 --host se");
  ASSERT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("crack_count"), std::string::npos);
  EXPECT_NE(ok.out.find("bottleneck_diameter z"), std::string::npos);
  const CommandResult bad = run("cracks " + labels_ + " --labels pore=0,se=1 --host am");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("am"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace vp
