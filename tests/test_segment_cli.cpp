// End-to-end: the `voxpress segment` command and the preprocess/segment/cleanup/particles
// stages in a YAML run, on small constructed volumes with exact answers. Skipped when the
// voxpress executable has not been built.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "filters/io/volume_io.h"

using namespace vp;
namespace fs = std::filesystem;

namespace {

class SegmentCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(VP_VOXPRESS_EXE)) GTEST_SKIP() << "voxpress not built at " << VP_VOXPRESS_EXE;
    dir_ = fs::temp_directory_path() / ("vp_segment_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Runs voxpress with args; returns the exit code, stdout+stderr in `out`.
  int run(const std::string& args, std::string* out = nullptr) const {
    auto r = vp::testing::run_voxpress(args, dir_, vp::testing::Streams::merged);
    if (out) *out = std::move(r.out);
    return r.code;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Grey levels 10 / 50 / 90 in a fixed pattern, and the labels 0 / 1 / 2 they stand for.
Volume<std::uint8_t> pattern(Dims d) {
  Volume<std::uint8_t> t(d, {0.5, 0.5, 1.0});
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) t(x, y, z) = static_cast<std::uint8_t>((x / 4 + y / 5 + z / 3) % 3);
  return t;
}

Volume<float> grey_of(const Volume<std::uint8_t>& t) {
  Volume<float> g = t.like<float>(t.dims());
  for (index_t i = 0; i < t.size(); ++i) g[i] = 10.0f + 40.0f * t[i];
  return g;
}

Volume<std::uint8_t> read_u8(const std::string& p) {
  ReadOptions o;
  o.path = p;
  return to_labels_u8(read_volume(o).volume);
}

}  // namespace

TEST_F(SegmentCli, MultiOtsuCommandWritesExactLabelsAndQualityImages) {
  const auto truth = pattern({24, 20, 12});
  write_volume(grey_of(truth), path("grey.mha"));
  std::string out;
  ASSERT_EQ(run("segment " + path("grey.mha") + " --out " + path("labels.tif") +
                    " --method multi-otsu --classes 3 --qc " + path("qc") + " --json",
                &out),
            0)
      << out;
  const auto labels = read_u8(path("labels.tif"));
  EXPECT_EQ(labels.storage(), truth.storage());
  EXPECT_EQ(labels.spacing_um, truth.spacing_um);
  for (const char* f : {"histogram.png", "labels_xy.png", "labels_xz.png", "labels_yz.png"})
    EXPECT_TRUE(fs::exists(dir_ / "qc" / f)) << f;
  EXPECT_NE(out.find("\"method\": \"multi-otsu\""), std::string::npos) << out;
}

TEST_F(SegmentCli, ForestTrainedFromScribblesIsReappliedFromItsFile) {
  const auto truth = pattern({24, 20, 12});
  write_volume(grey_of(truth), path("grey.mha"));
  Volume<std::uint8_t> scribbles(truth.dims(), truth.spacing_um);
  for (index_t x = 0; x < 24; ++x) scribbles(x, 2, 6) = static_cast<std::uint8_t>(truth(x, 2, 6) + 1);
  write_volume(scribbles, path("scribbles.tif"));
  std::string out;
  ASSERT_EQ(run("segment " + path("grey.mha") + " --out " + path("a.tif") + " --scribbles " + path("scribbles.tif") +
                    " --model-out " + path("model.yml.gz") + " --sigmas 0.5",
                &out),
            0)
      << out;
  ASSERT_TRUE(fs::exists(path("model.yml.gz")));
  ASSERT_EQ(run("segment " + path("grey.mha") + " --out " + path("b.tif") + " --model " + path("model.yml.gz"), &out),
            0)
      << out;
  EXPECT_EQ(read_u8(path("a.tif")).storage(), read_u8(path("b.tif")).storage());
}

TEST_F(SegmentCli, BadInputExitsWithCode2AndNamesTheProblem) {
  write_volume(grey_of(pattern({8, 8, 8})), path("grey.mha"));
  std::string out;
  EXPECT_EQ(run("segment " + path("grey.mha") + " --out " + path("l.tif") + " --method threshold", &out), 2);
  EXPECT_NE(out.find("thresholds"), std::string::npos) << out;
  EXPECT_EQ(run("segment " + path("grey.mha") + " --out " + path("l.tif") + " --method sharpen", &out), 2);
  EXPECT_NE(out.find("sharpen"), std::string::npos) << out;
  EXPECT_EQ(run("segment " + path("grey.mha") + " --out " + path("l.tif") + " --model " + path("none.yml"), &out), 2);
  EXPECT_NE(out.find("none.yml"), std::string::npos) << out;
}

// The command's class-index spellings are translations onto the cleanup / particles stages' keys
// (class C is phase phaseC): both spellings write the same bytes, and the island is removed.
TEST_F(SegmentCli, ClassIndexFlagsAreTheStageKeysOverClassNames) {
  auto truth = pattern({24, 20, 12});
  index_t stray = -1;  // one bright voxel inside a dark block: an island of 0.25 µm³
  for (index_t i = 0; i < truth.size() && stray < 0; ++i)
    if (truth[i] == 0 && i % 24 > 0 && i % 24 < 23 && truth[i - 1] == 0 && truth[i + 1] == 0) stray = i;
  ASSERT_GE(stray, 0);
  Volume<std::uint8_t> with_stray = truth;
  with_stray[stray] = 2;
  write_volume(grey_of(with_stray), path("grey.mha"));
  const std::string base = "segment " + path("grey.mha") + " --method multi-otsu --classes 3 --json";
  std::string out;
  ASSERT_EQ(run(base + " --out " + path("a.tif") + " --min-island 0.3 --particles " + path("a_ids.tif") +
                    " --particle-label 2 --min-particle 0.5",
                &out),
            0)
      << out;
  ASSERT_EQ(run(base + " --out " + path("b.tif") + " --min-island '{phase0: 0.3, phase1: 0.3, phase2: 0.3}'" +
                    " --particles " + path("b_ids.tif") + " --phase phase2 --min-volume 0.5",
                &out),
            0)
      << out;
  const auto a = read_u8(path("a.tif"));
  EXPECT_EQ(a.storage(), read_u8(path("b.tif")).storage());
  EXPECT_NE(a[stray], 2) << "the 0.25 µm³ island is below --min-island 0.3";
  EXPECT_NE(out.find("\"islands_removed\": 1"), std::string::npos) << out;
  ReadOptions ids;
  ids.path = path("a_ids.tif");
  const AnyVolume ia = read_volume(ids).volume;
  ids.path = path("b_ids.tif");
  EXPECT_TRUE(std::get<Volume<std::uint32_t>>(ia).storage() ==
              std::get<Volume<std::uint32_t>>(read_volume(ids).volume).storage());
  // A class the segmentation does not have, and a value outside the key's bounds, name the flag.
  EXPECT_EQ(run(base + " --out " + path("c.tif") + " --particles " + path("c_ids.tif") + " --particle-label 3", &out),
            2);
  EXPECT_NE(out.find("--particle-label 3: the segmentation has classes 0..2"), std::string::npos) << out;
  EXPECT_EQ(run(base + " --out " + path("c.tif") + " --open 0.5 --cleanup-label 7", &out), 2);
  EXPECT_NE(out.find("--cleanup-label 7"), std::string::npos) << out;
  EXPECT_EQ(run(base + " --out " + path("c.tif") + " --bins 1", &out), 2);
  EXPECT_NE(out.find("bins: value 1 is below the minimum 2"), std::string::npos) << out;
}

TEST_F(SegmentCli, YamlStagesSegmentCleanAndCountParticles) {
  // Two separated bright cubes (AM) in a mid-grey matrix (SE) with dark pores; one stray
  // bright voxel that the clean-up removes.
  Volume<float> g(Dims{32, 24, 24}, {1, 1, 1}, 50.0f);
  for (index_t z = 4; z < 14; ++z)
    for (index_t y = 4; y < 14; ++y) {
      for (index_t x = 3; x < 13; ++x) g(x, y, z) = 90;
      for (index_t x = 18; x < 28; ++x) g(x, y, z) = 90;
    }
  for (index_t z = 17; z < 21; ++z)
    for (index_t y = 17; y < 21; ++y)
      for (index_t x = 10; x < 14; ++x) g(x, y, z) = 10;
  g(25, 20, 20) = 90;
  write_volume(g, path("g.mha"));
  std::ofstream(dir_ / "cfg.yaml") << "phases:\n"
                                      "  - {name: pore, label: 0, role: pore}\n"
                                      "  - {name: se, label: 1, role: electrolyte}\n"
                                      "  - {name: am, label: 2, role: active}\n"
                                      "samples:\n"
                                      "  - {path: g.mha, pressure_MPa: 10, name: s}\n"
                                      "stages:\n"
                                      "  - {stage: preprocess, normalise: true}\n"
                                      "  - {stage: segment, method: multi-otsu, phases: {0: pore, 1: se, 2: am}}\n"
                                      "  - {stage: cleanup, min_island_voxels: {am: 2}}\n"
                                      "  - {stage: particles, phase: am}\n"
                                      "  - {stage: volume_fraction}\n";
  std::string out;
  ASSERT_EQ(run("run " + path("cfg.yaml") + " --out " + path("run") + " -q", &out), 0) << out;
  const std::string m = vp::testing::slurp(dir_ / "run" / "metrics.csv");
  EXPECT_NE(m.find(",particles,particles_separated,am,,2,1"), std::string::npos) << m;
  EXPECT_EQ(m.find(",particles,particle_count"), std::string::npos) << m;  // particle_sizes' metric
  // 2000 AM voxels and 64 pore voxels of 18432.
  EXPECT_NE(m.find(",volume_fraction,volume_fraction,am,,0.1085069444444444"), std::string::npos) << m;
  EXPECT_NE(m.find(",volume_fraction,volume_fraction,pore,,0.003472222222222222"), std::string::npos) << m;
  const fs::path s = dir_ / "run" / "samples" / "s";
  for (const char* f : {"histogram.png", "labels_xy.png", "labels_xz.png", "labels_yz.png", "particles_xy.png",
                        "particles.csv", "grey_xy.png"})
    EXPECT_TRUE(fs::exists(s / f)) << f;
}

// A segment stage that names neither classes nor phases fits the method's K (3 for multi-otsu
// and auto, as `voxpress segment` does), and its class indices must be labels of the config's
// phase table: a table they do not fit is an error naming `phases`, never silently wrong labels.
TEST_F(SegmentCli, YamlSegmentWithoutClassesFitsTheMethodsClassCount) {
  Volume<float> g(Dims{32, 24, 24}, {1, 1, 1}, 50.0f);
  for (index_t z = 4; z < 14; ++z)
    for (index_t y = 4; y < 14; ++y)
      for (index_t x = 3; x < 13; ++x) g(x, y, z) = 90;
  for (index_t z = 17; z < 21; ++z)
    for (index_t y = 17; y < 21; ++y)
      for (index_t x = 10; x < 14; ++x) g(x, y, z) = 10;
  write_volume(g, path("g.mha"));
  const std::string samples =
      "samples:\n"
      "  - {path: g.mha, pressure_MPa: 10, name: s}\n"
      "stages:\n"
      "  - {stage: segment, method: multi-otsu}\n"
      "  - {stage: volume_fraction}\n";
  std::ofstream(dir_ / "cfg.yaml") << "phases:\n"
                                      "  - {name: pore, label: 0, role: pore}\n"
                                      "  - {name: se, label: 1, role: electrolyte}\n"
                                      "  - {name: am, label: 2, role: active}\n"
                                   << samples;
  std::string out;
  ASSERT_EQ(run("run " + path("cfg.yaml") + " --out " + path("run") + " -q", &out), 0) << out;
  const std::string m = vp::testing::slurp(dir_ / "run" / "metrics.csv");
  // 1000 AM voxels and 64 pore voxels of 18432.
  EXPECT_NE(m.find(",volume_fraction,volume_fraction,am,,0.05425347222222222"), std::string::npos) << m;
  EXPECT_NE(m.find(",volume_fraction,volume_fraction,pore,,0.003472222222222222"), std::string::npos) << m;

  std::ofstream(dir_ / "cfg255.yaml") << "phases:\n"
                                         "  - {name: pore, label: 0, role: pore}\n"
                                         "  - {name: se, label: 128, role: electrolyte}\n"
                                         "  - {name: am, label: 255, role: active}\n"
                                      << samples;
  EXPECT_EQ(run("run " + path("cfg255.yaml") + " --out " + path("run255") + " -q", &out), 4) << out;
  const std::string log = vp::testing::slurp(dir_ / "run255" / "run.log");
  EXPECT_NE(log.find("phases: class 1 of 3 is no label of the config's phase table"), std::string::npos) << log;
}

// --pore-films where the film fit cannot run (another method, or not 3 classes) is refused, naming
// the key, instead of being skipped without a word.
TEST_F(SegmentCli, PoreFilmsWhereTheyCannotBeFittedExitTwo) {
  ASSERT_EQ(run("phantom --size 32 --seed 3 --pressures 10 --snr 8 --blur 1 --out " + path("pf")), 0);
  const std::string grey = path("pf/p010.tif");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--method multi-otsu --pore-films", "pore films are fitted for method auto; method is multi-otsu"},
      {"--classes 2 --pore-films", "3-class segmentation; classes is 2"},
  };
  for (const auto& [flags, expected] : cases) {
    std::string out;
    EXPECT_EQ(run("segment " + grey + " --out " + path("pf.tif") + " " + flags, &out), 2) << flags << ": " << out;
    EXPECT_NE(out.find("pore_films"), std::string::npos) << flags << ": " << out;
    EXPECT_NE(out.find(expected), std::string::npos) << flags << ": " << out;
  }
}

// --pore-films (stage key pore_films): the SE voxels of the films it finds become pore, and the
// JSON says how many; without it the labels are auto's as before. A 10 MPa composite at blur 1
// has films along its AM|SE faces.
TEST_F(SegmentCli, PoreFilmsFlagRelabelsFilmVoxelsAndReportsThem) {
  ASSERT_EQ(run("phantom --size 48 --seed 3 --pressures 10 --snr 8 --blur 1 --out " + path("ph")), 0);
  const std::string grey = path("ph/p010.tif");
  std::string plain, films;
  ASSERT_EQ(run("segment " + grey + " --out " + path("a.tif") + " --json", &plain), 0) << plain;
  ASSERT_EQ(run("segment " + grey + " --out " + path("b.tif") + " --pore-films --json", &films), 0) << films;
  const auto jp = nlohmann::json::parse(plain.substr(plain.find('{')));
  const auto jf = nlohmann::json::parse(films.substr(films.find('{')));
  EXPECT_FALSE(jp.contains("pore_films"));
  ASSERT_TRUE(jf.contains("pore_films")) << films;
  const auto moved = jf["pore_films"]["voxels_relabelled"].get<std::int64_t>();
  EXPECT_GT(jf["pore_films"]["films_accepted"].get<std::int64_t>(), 0);
  EXPECT_GT(moved, 0);
  const auto a = read_u8(path("a.tif")), b = read_u8(path("b.tif"));
  std::int64_t changed = 0;
  for (index_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    ++changed;
    EXPECT_TRUE(a[i] == 1 && b[i] == 0) << "voxel " << i << ": " << int(a[i]) << " -> " << int(b[i]);
  }
  EXPECT_EQ(changed, moved);
  EXPECT_NEAR(jf["volume_fraction"]["0"].get<double>() - jp["volume_fraction"]["0"].get<double>(),
              static_cast<double>(moved) / static_cast<double>(a.size()), 1e-12);
}
