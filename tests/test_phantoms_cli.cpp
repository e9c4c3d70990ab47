// `voxpress phantom` end to end, and the bundled data_samples/ against their truth files.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "filters/io/volume_io.h"
#include "phantoms/phantom.h"

using namespace vp;
namespace fs = std::filesystem;

namespace {

using vp::testing::slurp;

class PhantomCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(VP_VOXPRESS_EXE)) GTEST_SKIP() << "voxpress not built at " << VP_VOXPRESS_EXE;
    dir_ = fs::temp_directory_path() / ("vp_phantom_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  int run(const std::string& args) const { return vp::testing::run_voxpress(args, dir_).code; }
  fs::path dir_;
};

}  // namespace

TEST_F(PhantomCli, SameArgumentsGiveTheSameBytesWhateverTheFolderAndThreads) {
  const std::string common = " --size 32 --seed 4 --pressures 10,260 --ids --noise poisson --snr 6";
  ASSERT_EQ(run("phantom --out " + (dir_ / "a").string() + common), 0);
  ASSERT_EQ(run("phantom --out " + (dir_ / "b").string() + common + " --threads 1"), 0);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_ / "a")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  const std::vector<std::string> expected = {
      "p010.tif",        "p010.truth.json", "p010_cracks.tif", "p010_labels.tif",    "p010_particles.tif", "p260.tif",
      "p260.truth.json", "p260_cracks.tif", "p260_labels.tif", "p260_particles.tif", "series.yaml"};
  EXPECT_EQ(names, expected);
  for (const auto& n : names) EXPECT_EQ(slurp(dir_ / "a" / n), slurp(dir_ / "b" / n)) << n;
  ASSERT_EQ(run("phantom --out " + (dir_ / "c").string() + " --size 32 --seed 5 --pressures 10"), 0);
  EXPECT_NE(slurp(dir_ / "a" / "p010_labels.tif"), slurp(dir_ / "c" / "p010_labels.tif"));

  // Truth beside the volume, consistent with the label file.
  const auto truth = nlohmann::json::parse(slurp(dir_ / "a" / "p260.truth.json"));
  EXPECT_EQ(truth["pressure_MPa"], 260.0);
  EXPECT_GE(truth["crack_count"].get<int>(), 1);
  EXPECT_EQ(truth["parameters"]["imaging"]["noise"], "poisson");
  ReadOptions ro;
  ro.path = (dir_ / "a" / "p260_labels.tif").string();
  const auto labels = std::get<Volume<std::uint8_t>>(read_volume(ro).volume);
  std::array<std::int64_t, 4> counts{};
  for (auto l : labels.storage()) ++counts[l];
  EXPECT_EQ(truth["voxel_count"]["pore"].get<std::int64_t>(), counts[0]);
  EXPECT_EQ(truth["voxel_count"]["am"].get<std::int64_t>(), counts[2]);

  const std::string yaml = slurp(dir_ / "a" / "series.yaml");
  EXPECT_NE(yaml.find("{name: p260, path: p260.tif, labels: p260_labels.tif, pressure_MPa: 260, series: composite}"),
            std::string::npos)
      << yaml;
  EXPECT_NE(yaml.find("voxel_size_um: [0.5, 0.5, 0.5]"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("{name: am, label: 2, role: active}"), std::string::npos) << yaml;
}

TEST_F(PhantomCli, BadInputExitsWithTwo) {
  EXPECT_EQ(run("phantom --out " + dir_.string() + " --size 0"), 2);
  EXPECT_EQ(run("phantom --out " + dir_.string() + " --pressures 10,abc"), 2);
  EXPECT_EQ(run("phantom --out " + dir_.string() + " --noise speckle"), 2);
  EXPECT_EQ(run("phantom --out " + dir_.string() + " --spec " + (dir_ / "missing.yaml").string()), 2);
}

// The committed series: labels match their truth files; porosity falls, contact does not.
TEST(DataSamples, BundledSeriesMatchesItsTruth) {
  const fs::path dir = fs::path(VP_SOURCE_DIR) / "data_samples" / "series";
  if (!fs::exists(dir / "series.yaml")) GTEST_SKIP() << "data_samples/series not present";
  double last_porosity = 2, last_contact = -1;
  for (const char* name : {"p010", "p050", "p125", "p250", "p370"}) {
    const auto truth = nlohmann::json::parse(slurp(dir / (std::string(name) + ".truth.json")));
    ReadOptions ro;
    ro.path = (dir / (std::string(name) + "_labels.tif")).string();
    const auto labels = std::get<Volume<std::uint8_t>>(read_volume(ro).volume);
    std::array<std::int64_t, 3> counts{};
    for (auto l : labels.storage()) ++counts.at(l);
    EXPECT_EQ(truth["voxel_count"]["pore"].get<std::int64_t>(), counts[0]) << name;
    EXPECT_EQ(truth["voxel_count"]["se"].get<std::int64_t>(), counts[1]) << name;
    EXPECT_EQ(truth["voxel_count"]["am"].get<std::int64_t>(), counts[2]) << name;
    EXPECT_EQ(labels.spacing_um, (Vec3{0.5, 0.5, 0.5})) << name;
    ro.path = (dir / (std::string(name) + ".tif")).string();
    const auto info = probe_volume(ro);
    EXPECT_EQ(info.dtype, DType::u16) << name;
    EXPECT_EQ(info.dims, labels.dims()) << name;
    const double porosity = truth["volume_fraction"]["pore"], contact = truth["contact_area_fraction"];
    EXPECT_LT(porosity, last_porosity) << name;
    EXPECT_GE(contact, last_contact) << name;
    last_porosity = porosity, last_contact = contact;
  }
}
