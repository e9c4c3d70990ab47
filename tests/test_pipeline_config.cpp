// Config validation: every error names file:line:column, the key path, what was found and
// what was expected; all errors are collected; relative paths resolve against the config.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "filters/io/volume_io.h"
#include "pipeline/catalog.h"
#include "pipeline/config.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

// A stand-in segmentation: turns grey into labels, so the data flow has a provider.
class FakeSegment : public Stage {
 public:
  std::string name() const override { return "fake_segment"; }
  std::string summary() const override { return "test"; }
  std::vector<ParamSpec> params() const override {
    ParamSpec method;
    method.name = "method";
    method.type = ParamType::string;
    method.default_yaml = "otsu";
    method.choices = {"otsu", "manual"};
    return {method};
  }
  unsigned needs() const override { return kGrey; }
  unsigned provides() const override { return kLabels; }
  void run(const Params&, SampleContext&) const override {}
};

class FakeReport : public BatchStage {
 public:
  std::string name() const override { return "fake_report"; }
  std::string summary() const override { return "test"; }
  std::vector<ParamSpec> params() const override {
    ParamSpec title;
    title.name = "title";
    title.type = ParamType::string;
    title.default_yaml = "x";
    return {title};
  }
  void run(const Params&, const fs::path&, Progress&) const override {}
};

const Registry& test_registry() {
  static Registry* reg = [] {
    auto* r = new Registry;
    register_pipeline(*r);
    r->add(std::make_unique<FakeSegment>());
    r->add(std::make_unique<FakeReport>());
    return r;
  }();
  return *reg;
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vp_test_config_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    // 8x6x4 labels with spacing recorded in the file (MHA).
    Volume<std::uint8_t> v({8, 6, 4}, {0.5, 0.5, 1.0});
    for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(i % 3);
    write_volume(v, (dir_ / "data" / "a.mha").string());
    // 4x4x4 raw bytes: no voxel size in the file.
    std::ofstream((dir_ / "data" / "r.raw").string(), std::ios::binary) << std::string(64, '\1');
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write_config(const std::string& text, const std::string& name = "cfg.yaml") {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }
  // Validates; returns the config, diagnostics in diags_.
  Config validate(const std::string& text) {
    const fs::path p = write_config(text);
    diags_ = Diagnostics(p.string());
    return parse_config(p, test_registry(), diags_);
  }
  // Replays a fuzzer input kept in tests/data; diagnostics in diags_ (a parse that gives up
  // throws InputError after recording them).
  void validate_kept(const std::string& file) {
    const fs::path kept = fs::path(VP_SOURCE_DIR) / "tests" / "data" / file;
    diags_ = Diagnostics(kept.string());
    try {
      parse_config(kept, test_registry(), diags_);
    } catch (const InputError&) {
    }
  }
  std::string where(int line, int col) const {
    return (dir_ / "cfg.yaml").string() + ":" + std::to_string(line) + ":" + std::to_string(col);
  }
  ::testing::AssertionResult has(const std::string& text) const {
    for (const auto& d : diags_.items())
      if (d.format().find(text) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "no diagnostic contains\n  " << text << "\ndiagnostics:\n"
                                         << diags_.format();
  }

  fs::path dir_;
  Diagnostics diags_;
};

const char* kPhases =
    "phases:\n"
    "  - {name: pore, label: 0, role: pore}\n"
    "  - {name: se, label: 1, role: electrolyte}\n"
    "  - {name: am, label: 2, role: active}\n";

TEST_F(ConfigTest, ValidConfigResolvesEverything) {
  const Config c = validate(std::string("version: 1\n") + kPhases +
                            "defaults:\n  pressing_axis: y\n"
                            "samples:\n"
                            "  - path: data/a.mha\n    kind: labels\n    pressure_MPa: 12.5\n    series: s1\n"
                            "  - path: data/r.raw\n    name: raw1\n    format: raw\n    dims: [4, 4, 4]\n"
                            "    dtype: uint8\n    voxel_size_um: [1, 2, 3]\n"
                            "    roi: {min: [1, 0, 0], size: [3, 4, 2]}\n"
                            "    labels: {path: data/r.raw, format: raw, dims: [4, 4, 4], dtype: uint8}\n"
                            "stages:\n  - stage: volume_fraction\n"
                            "report:\n  - stage: fake_report\n");
  ASSERT_TRUE(diags_.ok()) << diags_.format();
  ASSERT_EQ(c.samples.size(), 2u);
  EXPECT_EQ(c.name, "cfg");
  EXPECT_EQ(c.sha256.size(), 64u);
  EXPECT_EQ(c.output, fs::current_path() / "runs" / "cfg");
  EXPECT_EQ(c.phases.phases().size(), 3u);
  EXPECT_EQ(c.phases.single(Role::active).label, 2);

  const SampleConfig& a = c.samples[0];
  EXPECT_EQ(a.info.name, "a");  // default: the file's stem
  EXPECT_EQ(a.info.path, (dir_ / "data" / "a.mha").string());
  EXPECT_EQ(a.info.series, "s1");
  EXPECT_DOUBLE_EQ(a.info.pressure_MPa, 12.5);
  EXPECT_EQ(a.info.pressing_axis, 1);                   // from defaults
  EXPECT_EQ(a.info.spacing_um, (Vec3{0.5, 0.5, 1.0}));  // from the file
  EXPECT_FALSE(a.spacing_from_config);
  EXPECT_EQ(a.initial_data(), unsigned(kLabels));
  EXPECT_EQ(a.header.dims, (Dims{8, 6, 4}));
  EXPECT_FALSE(a.file_problem);

  const SampleConfig& r = c.samples[1];
  EXPECT_EQ(r.info.name, "raw1");
  EXPECT_EQ(r.info.series, "default");
  EXPECT_DOUBLE_EQ(r.info.pressure_MPa, 0.0);
  EXPECT_EQ(r.info.spacing_um, (Vec3{1, 2, 3}));  // anisotropic, from the config
  EXPECT_EQ(r.read.format, "raw");
  ASSERT_TRUE(r.read.dims && r.read.dtype);
  EXPECT_EQ(*r.read.dims, (Dims{4, 4, 4}));
  ASSERT_TRUE(r.roi);
  EXPECT_EQ(r.loaded_dims(), (Dims{3, 4, 2}));
  EXPECT_EQ(r.initial_data(), unsigned(kGrey | kLabels));
  ASSERT_TRUE(r.labels);
  ASSERT_TRUE(r.labels->roi);  // the companion is cropped like the grey volume
  EXPECT_EQ(r.labels->roi->size, r.roi->size);
  EXPECT_EQ(r.loaded_bytes_per_voxel(), 3u);  // u8 grey + u8 labels read + u8 labels kept

  ASSERT_EQ(c.stages.size(), 1u);
  EXPECT_EQ(c.stages[0].stage->name(), "volume_fraction");
  ASSERT_EQ(c.report.size(), 1u);
  EXPECT_EQ(c.report[0].stage->name(), "fake_report");
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigFolderNotTheWorkingDirectory) {
  const fs::path sub = dir_ / "configs";
  fs::create_directories(sub);
  const fs::path p = sub / "batch.yaml";
  std::ofstream(p) << "output: ../out/run1\nsamples:\n  - path: ../data/a.mha\n    kind: labels\n"
                      "    labels_unused: 1\n";
  // Run from elsewhere: resolution must not depend on the working directory.
  const fs::path cwd = fs::current_path();
  fs::current_path(fs::temp_directory_path());
  Diagnostics d(p.string());
  const Config c = parse_config(p, test_registry(), d);
  fs::current_path(cwd);
  ASSERT_EQ(d.items().size(), 1u) << d.format();  // only the deliberate unknown key
  ASSERT_EQ(c.samples.size(), 1u);
  EXPECT_EQ(c.samples[0].info.path, (dir_ / "data" / "a.mha").string());
  EXPECT_EQ(c.output, dir_ / "out" / "run1");
  EXPECT_FALSE(c.samples[0].file_problem);
}

TEST_F(ConfigTest, UnknownKeySuggestsTheClosestOne) {
  validate(
      "version: 1\n"
      "samples:\n"
      "  - path: data/a.mha\n"
      "    presure_MPa: 5\n"
      "stagse: []\n");
  EXPECT_TRUE(has(where(4, 5) + ": samples[0].presure_MPa: unknown key; did you mean 'pressure_MPa'?"));
  EXPECT_TRUE(has(where(5, 1) + ": stagse: unknown key; did you mean 'stages'?"));
}

TEST_F(ConfigTest, WrongTypeSaysWhatWasFoundAndExpected) {
  validate(
      "samples:\n"
      "  - path: data/a.mha\n"
      "    pressure_MPa: high\n"
      "    kind: [labels]\n");
  EXPECT_TRUE(has(where(3, 19) + ": samples[0].pressure_MPa: expected a number, found 'high'"));
  EXPECT_TRUE(has(where(4, 11) + ": samples[0].kind: expected a string"));
}

// fuzz_config: a dims scalar that is no YAML list ("G32, 32, 16]") made yaml-cpp's
// ParserException escape the validator (std::terminate); the fuzzer's input is kept.
TEST_F(ConfigTest, DimsThatAreNoListAreAnErrorNamingTheKey) {
  validate(
      "samples:\n"
      "  - path: data/r.raw\n"
      "    dtype: uint8\n"
      "    dims: G32, 32, 16]\n");
  EXPECT_TRUE(has(where(4, 11) + ": samples[0].dims: expected a number or a list of numbers"));
  validate_kept("fuzz_config_dims_scalar.yaml");
  EXPECT_TRUE(has("fuzz_config_dims_scalar.yaml:42:11: samples[2].dims: expected a number or a list of numbers"));
}

// fuzz_config: " 0.5" passed the number check (std::stod skips blanks) and then yaml-cpp's
// as<double>() threw BadConversion out of the validator (std::terminate). Kept input replayed.
TEST_F(ConfigTest, NumbersYamlCannotReadAreAnErrorNamingTheKey) {
  validate(
      "samples:\n"
      "  - path: data/a.mha\n"
      "    voxel_size_um: [1, \" 0.5\", 0x1p3]\n");
  EXPECT_TRUE(has("samples[0].voxel_size_um"));
  validate_kept("fuzz_config_blank_number.yaml");
  EXPECT_TRUE(has("samples[1].voxel_size_um"));
}

TEST_F(ConfigTest, MissingFileIsAnErrorOfThatSample) {
  const Config c = validate("samples:\n  - path: data/nothere.tif\n    voxel_size_um: 1\n");
  EXPECT_TRUE(diags_.ok());  // a problem of the data, not of the config: `run` goes on with others
  ASSERT_EQ(c.samples.size(), 1u);
  ASSERT_TRUE(c.samples[0].file_problem);
  const std::string msg = c.samples[0].file_problem->format();
  EXPECT_NE(msg.find(where(2, 11) + ": samples[0].path: file not found: " + (dir_ / "data" / "nothere.tif").string()),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("relative paths resolve against " + dir_.string()), std::string::npos) << msg;
  EXPECT_EQ(all_problems(diags_, c).size(), 1u);
}

TEST_F(ConfigTest, NegativePressureIsRejected) {
  validate("samples:\n  - path: data/a.mha\n    pressure_MPa: -3\n");
  EXPECT_TRUE(has(where(3, 19) + ": samples[0].pressure_MPa: value -3 is below the minimum 0"));
}

TEST_F(ConfigTest, ZeroOrNegativeVoxelSizeIsRejected) {
  validate(
      "samples:\n  - path: data/a.mha\n    voxel_size_um: [1, 0, 1]\n"
      "  - path: data/a.mha\n    name: b\n    voxel_size_um: -2\n"
      "  - path: data/a.mha\n    name: c\n    voxel_size_um: [1, 2]\n");
  EXPECT_TRUE(has(where(3, 20) + ": samples[0].voxel_size_um: found [1, 0, 1]; expected voxel sizes > 0 µm"));
  EXPECT_TRUE(has(where(6, 20) + ": samples[1].voxel_size_um: found -2; expected voxel sizes > 0 µm"));
  EXPECT_TRUE(has("samples[2].voxel_size_um: found 2 numbers; expected one number or [sx, sy, sz] in µm"));
  EXPECT_EQ(diags_.items().size(), 3u) << diags_.format();
}

TEST_F(ConfigTest, VoxelSizeFromDefaultsAndMissingVoxelSize) {
  Config c = validate(
      "defaults:\n  voxel_size_um: 0.25\n  format: raw\n  dims: [4, 4, 4]\n  dtype: uint8\n"
      "samples:\n  - path: data/r.raw\n");
  ASSERT_TRUE(diags_.ok()) << diags_.format();
  EXPECT_EQ(c.samples[0].info.spacing_um, (Vec3{0.25, 0.25, 0.25}));
  validate("samples:\n  - path: data/r.raw\n    format: raw\n    dims: [4, 4, 4]\n    dtype: uint8\n");
  EXPECT_TRUE(has(where(2, 5) + ": samples[0].voxel_size_um: " + (dir_ / "data" / "r.raw").string() +
                  " records no voxel size; add voxel_size_um (µm) to the sample or to defaults"));
}

TEST_F(ConfigTest, RawWithoutDimsOrWithWrongDims) {
  validate("samples:\n  - path: data/r.raw\n    format: raw\n    voxel_size_um: 1\n");
  EXPECT_TRUE(has(where(2, 5) + ": samples[0]: format raw needs `dims: [nx, ny, nz]` and `dtype`"));
  // 4*4*5 bytes expected, the file has 64: a problem of the file, found by probing its size.
  const Config c = validate(
      "samples:\n  - path: data/r.raw\n    format: raw\n    dims: [4, 4, 5]\n"
      "    dtype: uint8\n    voxel_size_um: 1\n");
  ASSERT_EQ(c.samples.size(), 1u);
  ASSERT_TRUE(c.samples[0].file_problem);
  const std::string msg = c.samples[0].file_problem->format();
  EXPECT_NE(msg.find(where(2, 11) + ": samples[0].path: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("r.raw"), std::string::npos) << msg;
  EXPECT_NE(msg.find("80"), std::string::npos) << msg;  // the expected byte count
  EXPECT_NE(msg.find("64"), std::string::npos) << msg;  // the actual one
}

TEST_F(ConfigTest, RoiOutsideTheVolume) {
  validate(
      "samples:\n  - path: data/a.mha\n    roi: {min: [2, 0, 0], size: [7, 6, 4]}\n"
      "  - path: data/a.mha\n    name: b\n    roi: {min: [0, -1, 0], size: [1, 1, 0]}\n");
  EXPECT_TRUE(
      has(where(3, 10) + ": samples[0].roi: reaches x = 8 but the volume is 8x6x4; expected min + size ≤ dims"));
  EXPECT_TRUE(has("samples[1].roi.min: found [0, -1, 0]; expected [x, y, z], three integers ≥ 0 and ≤ 2^53 (voxels)"));
  EXPECT_TRUE(has("samples[1].roi.size: found [1, 1, 0]; expected [x, y, z], three integers ≥ 1 and ≤ 2^53 (voxels)"));
}

// fuzz_config: an ROI size of 3.3e19 was cast to index_t (UBSan: outside the range of 'long').
// Kept input replayed.
TEST_F(ConfigTest, RoiBeyondAnyIntegerIsAnErrorNamingTheKey) {
  validate("samples:\n  - path: data/a.mha\n    roi: {min: [0, 0, 0], size: [1, 33333333333333333324, 1]}\n");
  EXPECT_TRUE(
      has("samples[0].roi.size: found [1, 33333333333333333324, 1]; expected [x, y, z], three integers ≥ 1 "
          "and ≤ 2^53 (voxels)"));
  validate_kept("fuzz_config_roi_huge.yaml");
  EXPECT_TRUE(has("samples[1].roi.size"));
}

// fuzz_config: a sample path with a component longer than the OS allows made std::filesystem::exists
// throw (ENAMETOOLONG) out of the validator (`voxpress validate`: internal error). Kept input replayed.
TEST_F(ConfigTest, PathTooLongForTheOsIsNotACrash) {
  EXPECT_NO_THROW(validate_kept("fuzz_config_path_too_long.yaml"));  // threw std::filesystem::filesystem_error
}

TEST_F(ConfigTest, DuplicateSampleNames) {
  validate(
      "samples:\n  - path: data/a.mha\n  - path: data/a.mha\n    pressure_MPa: 2\n"
      "  - path: data/r.raw\n    name: a\n    format: raw\n    dims: [4,4,4]\n    dtype: uint8\n"
      "    voxel_size_um: 1\n");
  EXPECT_TRUE(has(where(3, 5) + ": samples[1].name: duplicate sample name 'a' (first at " + where(2, 5) +
                  "); expected unique names — set `name`"));
  EXPECT_TRUE(has(where(6, 11) + ": samples[2].name: duplicate sample name 'a'"));
}

TEST_F(ConfigTest, StageNeedingLabelsOnAGreySample) {
  validate(
      "samples:\n  - path: data/a.mha\n    name: g1\n  - path: data/a.mha\n    name: g2\n"
      "  - path: data/a.mha\n    name: l1\n    kind: labels\n"
      "stages:\n  - stage: volume_fraction\n");
  EXPECT_TRUE(has(where(10, 12) + ": stages[0].stage: stage 'volume_fraction' needs labels, but samples g1, g2 only "
                                  "have grey at this point; expected an earlier stage that provides labels"));
  EXPECT_EQ(diags_.items().size(), 1u) << diags_.format();  // l1 is fine; g1 and g2 share one message
  // An earlier stage that provides labels satisfies the need.
  const Config c = validate(
      "samples:\n  - path: data/a.mha\nstages:\n  - stage: fake_segment\n    method: manual\n"
      "  - stage: volume_fraction\n");
  EXPECT_TRUE(diags_.ok()) << diags_.format();
  ASSERT_EQ(c.stages.size(), 2u);
  EXPECT_EQ(c.stages[0].params.string("method"), "manual");
  // ... but not a later one.
  validate("samples:\n  - path: data/a.mha\nstages:\n  - stage: volume_fraction\n  - stage: fake_segment\n");
  EXPECT_TRUE(has("stages[0].stage: stage 'volume_fraction' needs labels, but sample a only has grey"));
}

TEST_F(ConfigTest, UnknownStageNameSuggestsTheClosest) {
  validate(
      "samples:\n  - path: data/a.mha\n    kind: labels\nstages:\n  - stage: volume_fractoin\n"
      "  - stage: fake_report\n  - {stage: volume_fraction, phase: am}\n  - method: otsu\n"
      "report:\n  - stage: volume_fraction\n  - stage: fake_report\n    titel: t\n");
  EXPECT_TRUE(
      has(where(5, 12) + ": stages[0].stage: unknown stage 'volume_fractoin'; did you mean 'volume_fraction'?"));
  EXPECT_TRUE(has(where(6, 12) + ": stages[1].stage: unknown stage 'fake_report'; 'fake_report' is a report stage: "
                                 "list it under `report`"));
  EXPECT_TRUE(has(where(7, 30) + ": stages[2].phase: unknown key"));
  EXPECT_TRUE(has(where(8, 5) + ": stages[3].stage: missing `stage: NAME`"));
  EXPECT_TRUE(has(where(10, 12) + ": report[0].stage: unknown report stage 'volume_fraction'; 'volume_fraction' is a "
                                  "per-sample stage: list it under `stages`"));
  EXPECT_TRUE(has(where(12, 5) + ": report[1].titel: unknown key; did you mean 'title'?"));
}

TEST_F(ConfigTest, StageParametersAreCheckedWithTheirSpecs) {
  validate("samples:\n  - path: data/a.mha\nstages:\n  - stage: fake_segment\n    method: magic\n");
  EXPECT_TRUE(has(where(5, 13) + ": stages[0].method: 'magic' is not one of: otsu, manual"));
}

TEST_F(ConfigTest, UnknownPhaseRoleAndBadPhaseTable) {
  validate(
      "phases:\n  - {name: pore, label: 0, role: void}\n  - {name: se, label: 300}\n"
      "  - {name: am, label: 1}\n  - {name: am, label: 1, role: active}\n"
      "samples:\n  - path: data/a.mha\n");
  EXPECT_TRUE(has(where(2, 34) + ": phases[0].role: 'void' is not one of: pore, electrolyte, active, binder, carbon, "
                                 "crack, other"));
  EXPECT_TRUE(has(where(3, 23) + ": phases[1].label: value 300 is above the maximum 255"));
  EXPECT_TRUE(has(where(5, 12) + ": phases[3].name: duplicate phase name 'am'"));
  EXPECT_TRUE(has(where(5, 23) + ": phases[3].label: label 1 is already phase 'am'"));
}

TEST_F(ConfigTest, CollectsEveryErrorInsteadOfStoppingAtTheFirst) {
  validate(
      "version: 2\nsamples:\n  - path: data/a.mha\n    pressure_MPa: -1\n    voxel_size_um: 0\n"
      "    colour: red\nstages:\n  - stage: nope\n");
  EXPECT_TRUE(has(where(1, 10) + ": version: value 2 is above the maximum 1"));
  EXPECT_TRUE(has(where(5, 20) + ": samples[0].voxel_size_um: found 0; expected voxel sizes > 0 µm"));
  EXPECT_TRUE(has("samples[0].pressure_MPa: value -1 is below the minimum 0"));
  EXPECT_TRUE(has("samples[0].voxel_size_um: found 0; expected voxel sizes > 0 µm"));
  EXPECT_TRUE(has("samples[0].colour: unknown key"));
  EXPECT_TRUE(has("stages[0].stage: unknown stage 'nope'"));
  EXPECT_GE(diags_.items().size(), 5u) << diags_.format();
  // load_config throws them all at once.
  try {
    load_config(dir_ / "cfg.yaml", test_registry());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("version"), std::string::npos);
    EXPECT_NE(msg.find("stages[0].stage"), std::string::npos);
  }
}

TEST_F(ConfigTest, YamlSyntaxErrorHasLineAndColumn) {
  validate("samples:\n  - path: data/a.mha\n    roi: {min: [0, 0, 0]\n");
  ASSERT_EQ(diags_.items().size(), 1u) << diags_.format();
  EXPECT_NE(diags_.items()[0].where.find((dir_ / "cfg.yaml").string() + ":"), std::string::npos);
  EXPECT_NE(diags_.items()[0].message.find("YAML syntax error"), std::string::npos);
}

TEST_F(ConfigTest, NoSamplesAndWrongShapes) {
  validate("version: 1\n");
  EXPECT_TRUE(has("samples: no samples; expected a list of {path, pressure_MPa, ...}"));
  validate("samples: {path: a}\nstages: volume_fraction\n");
  EXPECT_TRUE(has(where(1, 10) + ": samples: expected a list of {path, pressure_MPa, ...} maps"));
  EXPECT_TRUE(has(where(2, 9) + ": stages: expected a list of {stage: NAME, ...parameters} maps"));
  validate("samples:\n  - data/a.mha\n  - {kind: labels}\n");
  EXPECT_TRUE(has(where(2, 5) + ": samples[0]: expected a map {path, pressure_MPa, ...}"));
  EXPECT_TRUE(has(where(3, 5) + ": samples[1].path: required key is missing"));
}

TEST_F(ConfigTest, LabelsCompanionMustMatchTheGreyVolume) {
  Volume<std::uint8_t> other({8, 6, 5});
  write_volume(other, (dir_ / "data" / "other.mha").string());
  const Config ok = validate("samples:\n  - path: data/a.mha\n    labels: data/a.mha\n");
  ASSERT_TRUE(diags_.ok()) << diags_.format();
  EXPECT_EQ(ok.samples[0].initial_data(), unsigned(kGrey | kLabels));
  EXPECT_EQ(ok.samples[0].info.labels_path, (dir_ / "data" / "a.mha").string());
  const Config bad = validate("samples:\n  - path: data/a.mha\n    labels: {path: data/other.mha, format: mha}\n");
  ASSERT_TRUE(diags_.ok()) << diags_.format();
  ASSERT_TRUE(bad.samples[0].file_problem);
  EXPECT_NE(
      bad.samples[0].file_problem->format().find("samples[0].labels: " + (dir_ / "data" / "other.mha").string() +
                                                 " is 8x6x5 but the grey volume is 8x6x4; expected the same dims"),
      std::string::npos)
      << bad.samples[0].file_problem->format();
}

TEST(ClosestName, WithinTwoEdits) {
  EXPECT_EQ(closest_name("volume_fractoin", {"segment", "volume_fraction"}), "volume_fraction");
  EXPECT_EQ(closest_name("zzz", {"segment", "volume_fraction"}), "");
}

}  // namespace
