// The voxpress binary end to end: run, validate, info, stages, and bad input in a batch.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "core/hash.h"
#include "filters/io/volume_io.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

using Result = vp::testing::CliResult;
using vp::testing::slurp;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vp_test_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result voxpress(const std::string& args) const { return vp::testing::run_voxpress(args, dir_); }

  // 4x4x2 labels: 8 pore (0), 16 - n_am se (1), n_am + 8 am (2) arranged by index.
  void write_labels(const std::string& name, int am_voxels) {
    Volume<std::uint8_t> v({4, 4, 2}, {0.5, 0.5, 1.0});
    for (index_t i = 0; i < 32; ++i) v[i] = i < 8 ? 0 : i < 32 - am_voxels ? 1 : 2;
    write_volume(v, (dir_ / name).string());
  }

  void write_text(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  // Files left behind that are not whole outputs: working folders or temporary files.
  std::vector<std::string> partial_outputs(const fs::path& root) const {
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      const std::string n = e.path().filename().string();
      if (n.rfind(".vp-", 0) == 0 || n.rfind(".partial-", 0) == 0 || n.rfind(".tmp", 0) == 0)
        found.push_back(e.path().string());
    }
    return found;
  }

  fs::path dir_;
};

const char* kPhases =
    "phases:\n"
    "  - {name: pore, label: 0, role: pore}\n"
    "  - {name: se, label: 1, role: electrolyte}\n"
    "  - {name: am, label: 2, role: active}\n";

TEST_F(CliTest, RunWritesExactMetricsAndProvenance) {
  write_labels("p000.tif", 8);   // pore 8, se 16, am 8 of 32
  write_labels("p050.tif", 12);  // pore 8, se 12, am 12
  write_text("batch.yaml", std::string(kPhases) +
                               "samples:\n"
                               "  - {path: p000.tif, kind: labels, pressure_MPa: 0, series: cathode}\n"
                               "  - {path: p050.tif, kind: labels, pressure_MPa: 50, series: cathode,\n"
                               "     voxel_size_um: [1, 1, 2]}\n"
                               "stages:\n  - stage: volume_fraction\n");
  const Result r = voxpress("run batch.yaml --out out --jobs 2");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 of 2 samples ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find((dir_ / "out" / "metrics.csv").string()), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("p050 / volume_fraction: done in"), std::string::npos) << r.err;  // progress

  EXPECT_EQ(slurp(dir_ / "out" / "metrics.csv"),
            "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\n"
            "p000,cathode,0,volume_fraction,volume_fraction,pore,,0.25,1\n"
            "p000,cathode,0,volume_fraction,volume_fraction,se,,0.5,1\n"
            "p000,cathode,0,volume_fraction,volume_fraction,am,,0.25,1\n"
            "p000,cathode,0,volume_fraction,porosity,pore,,0.25,1\n"
            "p050,cathode,50,volume_fraction,volume_fraction,pore,,0.25,1\n"
            "p050,cathode,50,volume_fraction,volume_fraction,se,,0.375,1\n"
            "p050,cathode,50,volume_fraction,volume_fraction,am,,0.375,1\n"
            "p050,cathode,50,volume_fraction,porosity,pore,,0.25,1\n");

  const auto j = nlohmann::json::parse(slurp(dir_ / "out" / "metrics.json"));
  EXPECT_EQ(j["config"]["sha256"], sha256_file((dir_ / "batch.yaml").string()));
  EXPECT_EQ(j["config"]["path"], (dir_ / "batch.yaml").string());
  EXPECT_EQ(j["metrics"].size(), 8u);
  EXPECT_EQ(j["metrics"][5]["value"], 0.375);
  EXPECT_EQ(j["jobs"], 2);
  EXPECT_GE(j["threads"].get<int>(), 1);
  for (const char* key : {"voxpress_version", "started", "finished", "seconds", "memory_budget_bytes"})
    EXPECT_TRUE(j.contains(key)) << key;
  ASSERT_EQ(j["samples"].size(), 2u);
  const auto& s0 = j["samples"][0];
  EXPECT_EQ(s0["name"], "p000");
  EXPECT_EQ(s0["status"], "ok");
  EXPECT_EQ(s0["input"]["path"], (dir_ / "p000.tif").string());
  EXPECT_EQ(s0["input"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(s0["dims"], nlohmann::json({4, 4, 2}));
  EXPECT_EQ(s0["dtype"], "uint8");
  EXPECT_EQ(s0["spacing_um"], nlohmann::json({0.5, 0.5, 1.0}));               // from the TIFF
  EXPECT_EQ(j["samples"][1]["spacing_um"], nlohmann::json({1.0, 1.0, 2.0}));  // the config wins
  ASSERT_EQ(s0["stages"].size(), 2u);
  EXPECT_EQ(s0["stages"][0]["stage"], "read");
  EXPECT_EQ(s0["stages"][1]["stage"], "volume_fraction");
  EXPECT_TRUE(s0["stages"][1]["seconds"].is_number());
  EXPECT_EQ(s0["stages"][1]["details"]["total_voxels"], 32);
  EXPECT_TRUE(j["errors"].empty());

  EXPECT_TRUE(fs::is_directory(dir_ / "out" / "samples" / "p000"));
  EXPECT_TRUE(fs::is_directory(dir_ / "out" / "samples" / "p050"));
  EXPECT_NE(slurp(dir_ / "out" / "run.log").find("p000 / volume_fraction: done in"), std::string::npos);
  EXPECT_EQ(slurp(dir_ / "out" / "config.yaml"), slurp(dir_ / "batch.yaml"));
  EXPECT_TRUE(partial_outputs(dir_ / "out").empty());

  // --quiet silences stderr; the log still has everything. --only picks samples.
  const Result q = voxpress("run --only p050 batch.yaml --out out2 --quiet --max-memory 64M");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(q.err, "");
  EXPECT_NE(slurp(dir_ / "out2" / "run.log").find("p050 / volume_fraction: done in"), std::string::npos);
  EXPECT_EQ(slurp(dir_ / "out2" / "metrics.csv").find("p000"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(slurp(dir_ / "out2" / "metrics.json"))["memory_budget_bytes"], 64u << 20);
  const Result both = voxpress("run batch.yaml --out out3 -q --only p050,p000");
  ASSERT_EQ(both.code, 0) << both.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(dir_ / "out3" / "metrics.json"))["samples"].size(), 2u);
}

TEST_F(CliTest, DefaultOutputFolderIsRunsConfigName) {
  write_labels("a.mha", 4);
  write_text("demo.yaml",
             std::string(kPhases) + "samples:\n  - {path: a.mha, kind: labels}\nstages:\n  - stage: volume_fraction\n");
  const Result r = voxpress("run demo.yaml -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "demo" / "metrics.csv"));
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "demo" / "metrics.json"));
}

TEST_F(CliTest, ValidateExitCodes) {
  write_labels("a.mha", 4);
  write_text("good.yaml", std::string(kPhases) +
                              "samples:\n  - {path: a.mha, kind: labels}\n  - {path: a.mha, name: b, kind: labels}\n"
                              "stages:\n  - stage: volume_fraction\n");
  Result r = voxpress("validate good.yaml");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "valid: 2 samples, 1 stages\n");

  write_text("bad.yaml",
             "samples:\n  - path: a.mha\n    pressure_MPa: -5\n  - path: missing.tif\n"
             "stages:\n  - stage: volume_fractio\n");
  r = voxpress("validate bad.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("bad.yaml:3:19: samples[0].pressure_MPa: value -5 is below the minimum 0"), std::string::npos)
      << r.err;
  EXPECT_NE(
      r.err.find("bad.yaml:6:12: stages[0].stage: unknown stage 'volume_fractio'; did you mean 'volume_fraction'?"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("bad.yaml:4:11: samples[1].path: file not found: " + (dir_ / "missing.tif").string()),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("invalid: 3 errors"), std::string::npos) << r.err;

  // `run` refuses an invalid config before doing any work.
  r = voxpress("run bad.yaml --out never");
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(fs::exists(dir_ / "never"));
  EXPECT_EQ(voxpress("validate nothere.yaml").code, 2);
  EXPECT_EQ(voxpress("validate").code, 2);  // CONFIG is required
}

TEST_F(CliTest, InfoJsonValues) {
  Volume<std::uint16_t> v({5, 4, 3}, {0.5, 0.25, 2.0});
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint16_t>(100 * (i % 4));  // 0,100,200,300
  write_volume(v, (dir_ / "g.mha").string());
  Result r = voxpress("info g.mha --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["dims"], nlohmann::json({5, 4, 3}));
  EXPECT_EQ(j["dtype"], "uint16");
  EXPECT_EQ(j["spacing_um"], nlohmann::json({0.5, 0.25, 2.0}));
  EXPECT_EQ(j["min"], 0.0);
  EXPECT_EQ(j["max"], 300.0);
  EXPECT_EQ(j["mean"], 150.0);  // 60 voxels, 15 of each value
  EXPECT_DOUBLE_EQ(j["std"].get<double>(), std::sqrt(12500.0));
  EXPECT_EQ(j["percentiles"]["50"], 150.0);  // halfway between the 30th and 31st values (100, 200)
  EXPECT_EQ(j["distinct_values"], nlohmann::json({0.0, 100.0, 200.0, 300.0}));
  EXPECT_EQ(j["voxels"], 60);

  // Raw with format flags and a spacing override; text output names the fields.
  write_text("r.raw", std::string(64, '\x07'));
  r = voxpress("info r.raw --format raw --dims 4,4,4 --dtype uint8 --spacing 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["dims"], nlohmann::json({4, 4, 4}));
  EXPECT_EQ(j["spacing_um"], nlohmann::json({2.0, 2.0, 2.0}));
  EXPECT_EQ(j["mean"], 7.0);
  r = voxpress("info r.raw --format raw --dims 4,4,4 --dtype uint8");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("dims         4 x 4 x 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 µm assumed"), std::string::npos) << r.out;
  r = voxpress("info r.raw --format raw --dims 4,4,5 --dtype uint8");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("r.raw"), std::string::npos) << r.err;
}

TEST_F(CliTest, StagesListsParameters) {
  Result r = voxpress("stages");
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("volume_fraction"), std::string::npos);
  r = voxpress("stages --json");
  ASSERT_EQ(r.code, 0);
  const auto j = nlohmann::json::parse(r.out);
  bool found = false;
  for (const auto& s : j["stages"])
    if (s["name"] == "volume_fraction") {
      found = true;
      EXPECT_EQ(s["needs"], "labels");
    }
  EXPECT_TRUE(found);
  EXPECT_EQ(voxpress("stages no_such_stage").code, 2);
}

// Each kind of bad input fails its own sample with a message naming the file; the good sample
// is still measured; nothing partial is left; the exit code says that something failed.
TEST_F(CliTest, BadInputInABatch) {
  write_labels("good.tif", 8);
  // Truncated TIFF: an uncompressed 3-page stack cut to 60 % of its bytes.
  {
    Volume<std::uint8_t> v({32, 32, 3});
    WriteOptions o;
    o.compress = false;
    write_volume(v, (dir_ / "trunc.tif").string(), o);
    fs::resize_file(dir_ / "trunc.tif", fs::file_size(dir_ / "trunc.tif") * 6 / 10);
  }
  write_text("short.raw", std::string(60, '\0'));                           // dims say 4x4x4 = 64 bytes
  write_volume(Volume<std::uint8_t>({4, 4, 2}), (dir_ / "d.h5").string());  // holds /exchange/data only
  {
    std::vector<float> f(32, 1.0f);
    f[13] = std::nanf("");
    std::ofstream(dir_ / "nan.raw", std::ios::binary)
        .write(reinterpret_cast<const char*>(f.data()), 32 * sizeof(float));
  }
  write_text("empty.mha",
             "ObjectType = Image\nNDims = 3\nDimSize = 0 4 4\nElementType = MET_UCHAR\n"
             "ElementSpacing = 1 1 1\nElementDataFile = LOCAL\n");
  write_text("batch.yaml", std::string(kPhases) +
                               "defaults: {voxel_size_um: 1}\n"
                               "samples:\n"
                               "  - {path: good.tif, kind: labels}\n"
                               "  - {path: trunc.tif, kind: labels}\n"
                               "  - {path: short.raw, kind: labels, format: raw, dims: [4, 4, 4], dtype: uint8}\n"
                               "  - {path: d.h5, kind: labels, dataset: /exchange/missing}\n"
                               "  - {path: nan.raw, name: nan, format: raw, dims: [4, 4, 2], dtype: float32,\n"
                               "     labels: good.tif}\n"
                               "  - {path: empty.mha, kind: labels}\n"
                               "stages:\n  - stage: volume_fraction\n");
  const Result r = voxpress("run batch.yaml --out out");
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("1 of 6 samples ok; failed: trunc short d nan empty"), std::string::npos) << r.out;

  const std::string csv = slurp(dir_ / "out" / "metrics.csv");
  EXPECT_NE(csv.find("good,default,0,volume_fraction,volume_fraction,am,,0.25,1\n"), std::string::npos) << csv;
  for (const char* bad : {"\ntrunc,", "\nshort,", "\nd,", "\nnan,", "\nempty,"})
    EXPECT_EQ(csv.find(bad), std::string::npos);

  const auto j = nlohmann::json::parse(slurp(dir_ / "out" / "metrics.json"));
  ASSERT_EQ(j["errors"].size(), 5u) << j["errors"].dump(2);
  const std::vector<std::pair<std::string, std::string>> expected = {{"trunc", "trunc.tif"},
                                                                     {"short", "short.raw"},
                                                                     {"d", "/exchange/missing"},
                                                                     {"nan", "nan.raw"},
                                                                     {"empty", "empty.mha"}};
  for (std::size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(j["errors"][k]["sample"], expected[k].first);
    EXPECT_EQ(j["errors"][k]["kind"], "input");
    const std::string msg = j["errors"][k]["message"];
    EXPECT_NE(msg.find(expected[k].second), std::string::npos) << msg;
    EXPECT_NE(r.err.find(expected[k].first + ": FAILED (input error): "), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out" / "samples" / expected[k].first));
  }
  EXPECT_NE(j["errors"][3]["message"].get<std::string>().find("x=1, y=3, z=0"), std::string::npos)
      << j["errors"][3]["message"];  // the NaN's voxel: index 13 in a 4x4 slice
  EXPECT_TRUE(fs::is_directory(dir_ / "out" / "samples" / "good"));
  EXPECT_TRUE(partial_outputs(dir_ / "out").empty());

  // validate reports the problems its header probe can see, without reading voxels.
  const Result v = voxpress("validate batch.yaml");
  EXPECT_EQ(v.code, 2);
  EXPECT_NE(v.err.find("samples[2].path: "), std::string::npos) << v.err;  // raw size
  EXPECT_NE(v.err.find("samples[3].path: "), std::string::npos) << v.err;  // HDF5 dataset
  EXPECT_NE(v.err.find("samples[5].path: "), std::string::npos) << v.err;  // empty
}

// configs/example.yaml uses every config key: write the data it names into a scratch copy of
// the repository layout and run it for real.
TEST_F(CliTest, ExampleConfigValidatesAndRuns) {
  fs::create_directories(dir_ / "configs");
  fs::create_directories(dir_ / "data_samples" / "example");
  fs::copy_file(fs::path(VP_SOURCE_DIR) / "configs" / "example.yaml", dir_ / "configs" / "example.yaml");
  const fs::path data = dir_ / "data_samples" / "example";
  const Dims d{32, 32, 16};
  Volume<std::uint8_t> labels(d);
  Volume<std::uint16_t> grey(d);
  for (index_t i = 0; i < labels.size(); ++i) {
    labels[i] = static_cast<std::uint8_t>(i % 4);  // = x % 4: each phase a quarter of any x-aligned box
    grey[i] = static_cast<std::uint16_t>(1000 * (i % 4) + 7);
  }
  write_volume(labels, (data / "p000_labels.tif").string());
  write_volume(grey, (data / "p050_grey.tif").string());
  write_volume(labels, (data / "p050_labels.tif").string());
  write_volume(labels, (data / "p100_labels.mha").string());
  write_volume(labels, (data / "p200_labels.h5").string());
  {
    std::ofstream raw(data / "p100_grey.raw", std::ios::binary);
    raw << std::string(512, 'H');
    for (index_t i = 0; i < grey.size(); ++i)
      raw.put(static_cast<char>(grey[i] >> 8)).put(static_cast<char>(grey[i] & 0xff));
  }
  Result r = voxpress("validate configs/example.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "valid: 4 samples, 1 stages\n");
  r = voxpress("run configs/example.yaml --quiet");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const fs::path run = dir_ / "runs" / "example";  // output: ../runs/example, relative to the config
  const std::string csv = slurp(run / "metrics.csv");
  const std::vector<std::pair<std::string, std::string>> pressures = {
      {"p000", "0"}, {"p050", "50"}, {"p100", "100"}, {"p200", "200"}};
  for (const auto& [sample, pressure] : pressures)
    for (const char* phase : {"pore", "se", "am", "cbd"})
      EXPECT_NE(
          csv.find(sample + ",cathode_A," + pressure + ",volume_fraction,volume_fraction," + phase + ",,0.25,1\n"),
          std::string::npos)
          << sample << " " << phase << "\n"
          << csv;
  const auto j = nlohmann::json::parse(slurp(run / "metrics.json"));
  EXPECT_EQ(j["samples"][1]["dims"], nlohmann::json({24, 24, 16}));  // the ROI
  EXPECT_EQ(j["samples"][1]["spacing_um"], nlohmann::json({0.5, 0.5, 0.65}));
  EXPECT_EQ(j["samples"][1]["labels_input"]["path"], (data / "p050_labels.tif").string());
  EXPECT_EQ(j["samples"][2]["dtype"], "uint16");
  EXPECT_EQ(j["samples"][3]["spacing_um"], nlohmann::json({0.5, 0.5, 0.5}));  // from defaults
}

// Real third-party volumes (see the data MANIFEST): phase fractions against TauFactor's
// notebook output and the Leopard sandstone's porosity, through `voxpress run`.
TEST_F(CliTest, RealVolumesPhaseFractions) {
  const fs::path real(VP_REAL_DATA_DIR);
  const fs::path electrode = real / "taufactor_electrode.tiff", leopard = real / "porespy_image_Leopard_slice100.npy";
  if (!fs::exists(electrode) || !fs::exists(leopard))
    GTEST_SKIP() << "real data not found under " << real
                 << " (taufactor_electrode.tiff, porespy_image_Leopard_slice100.npy)";
  write_text("electrode.yaml", "samples:\n  - {path: " + electrode.string() +
                                   ", kind: labels, voxel_size_um: 0.390625}\n"
                                   "phases:\n"
                                   "  - {name: pore, label: 0, role: pore}\n"
                                   "  - {name: nmc, label: 85, role: active}\n"
                                   "  - {name: cbd, label: 170, role: binder}\n"
                                   "stages:\n  - stage: volume_fraction\n");
  write_text("leopard.yaml", "samples:\n  - {path: " + leopard.string() +
                                 ", kind: labels, voxel_size_um: 2.25}\n"
                                 "phases:\n"
                                 "  - {name: grain, label: 0, role: other}\n"
                                 "  - {name: pore, label: 1, role: pore}\n"
                                 "stages:\n  - stage: volume_fraction\n");
  std::map<std::string, double> value;  // "metric/phase"
  for (const char* config : {"electrode", "leopard"}) {
    const Result r = voxpress(std::string("run ") + config + ".yaml --out " + config + " -q");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(slurp(dir_ / config / "metrics.json"));
    for (const auto& m : j["metrics"])
      value[std::string(config) + ":" + m["metric"].get<std::string>() + "/" + m["phase"].get<std::string>()] =
          m["value"];
  }
  // TauFactor 01-tortuosity.ipynb: pore 0.44991737604141235, NMC 0.40046632289886475,
  // CBD 0.1496163010597229 (each an exact count / 2^24).
  EXPECT_EQ(value["electrode:volume_fraction/pore"], 0.44991737604141235);
  EXPECT_EQ(value["electrode:volume_fraction/nmc"], 0.40046632289886475);
  EXPECT_EQ(value["electrode:volume_fraction/cbd"], 0.1496163010597229);
  EXPECT_EQ(value["electrode:porosity/pore"], 0.44991737604141235);
  // Leopard sandstone (1 = pore): 262235 of 10^6 voxels.
  EXPECT_EQ(value["leopard:porosity/pore"], 0.262235);
  EXPECT_EQ(value["leopard:volume_fraction/grain"], 0.737765);
}

// Ctrl-C or a crash at any moment leaves whole files or none: metrics.csv / metrics.json either absent or
// complete, and no sample folder under its final name unless that sample finished.
TEST_F(CliTest, InterruptedRunLeavesNoHalfWrittenOutputs) {
  std::string samples;
  for (int k = 0; k < 10; ++k) {
    Volume<std::uint8_t> v({160, 160, 128});
    for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>((i * (k + 3)) % 3);
    write_volume(v, (dir_ / ("s" + std::to_string(k) + ".mha")).string());
    samples += "  - {path: s" + std::to_string(k) + ".mha, kind: labels}\n";
  }
  write_text("big.yaml", std::string(kPhases) + "defaults: {voxel_size_um: 1}\nsamples:\n" + samples +
                             "stages:\n  - stage: volume_fraction\n");
  // SIGTERM stands in for Ctrl-C (a background job ignores SIGINT); SIGKILL for a crash.
  for (const auto& [delay_ms, signal] :
       std::vector<std::pair<int, std::string>>{{200, "TERM"}, {300, "KILL"}, {400, "TERM"}}) {
    const fs::path out = dir_ / ("int" + std::to_string(delay_ms));
    const std::string cmd = "cd '" + dir_.string() + "' && ('" VP_VOXPRESS_EXE "' run big.yaml -q --jobs 1 --out '" +
                            out.string() + "' >/dev/null 2>&1 & pid=$!; sleep " + std::to_string(delay_ms / 1000.0) +
                            "; kill -" + signal + " $pid 2>/dev/null; wait $pid) >/dev/null 2>&1";
    [[maybe_unused]] const int killed = std::system(cmd.c_str());  // the run is killed on purpose
    if (fs::exists(out / "metrics.csv")) {
      const std::string csv = slurp(out / "metrics.csv");
      EXPECT_EQ(csv.rfind("sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\n", 0), 0u);
      EXPECT_EQ(csv.back(), '\n');
      EXPECT_NO_THROW(nlohmann::json::parse(slurp(out / "metrics.json")));
    }
    if (!fs::exists(out / "samples")) continue;
    for (const auto& e : fs::directory_iterator(out / "samples")) {
      const std::string n = e.path().filename().string();
      if (n.rfind(".vp-", 0) == 0) continue;           // a working folder or result of the run: cleared by the next run
      EXPECT_TRUE(n.size() == 2 && n[0] == 's') << n;  // s0..s9, each complete
    }
    // The next run into the same folder clears the leftovers and completes.
    const Result again = voxpress("run big.yaml -q --out '" + out.string() + "'");
    EXPECT_EQ(again.code, 0) << again.err;
    EXPECT_TRUE(partial_outputs(out).empty());
    EXPECT_EQ(nlohmann::json::parse(slurp(out / "metrics.json"))["metrics"].size(), 10u * 4u);
  }
}

// metrics.json without what legitimately differs between runs of the same config: timings,
// scheduling, resources and provenance of the run itself.
nlohmann::json without_timing(nlohmann::json j) {
  for (const char* k : {"started", "finished", "seconds", "jobs", "threads", "memory_budget_bytes", "resume"})
    j.erase(k);
  for (auto& s : j["samples"]) {
    for (const char* k : {"seconds", "peak_rss_bytes", "reused"}) s.erase(k);
    for (auto& st : s["stages"]) st.erase("seconds");
  }
  for (auto& b : j["report"]) b.erase("seconds");
  return j;
}

// A batch killed by SIGKILL mid-way, then resumed, equals an uninterrupted run: metrics.csv byte
// for byte, metrics.json apart from timings; and metrics.csv is the same for --jobs 1 and 2.
TEST_F(CliTest, ResumeAfterSigkillEqualsAnUninterruptedRun) {
  std::string samples;
  for (int k = 0; k < 6; ++k) {
    Volume<std::uint8_t> v({48, 48, 32}, {0.5, 0.5, 0.5});
    for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>((i * (k + 3) / 7) % 3);
    write_volume(v, (dir_ / ("s" + std::to_string(k) + ".tif")).string());
    samples +=
        "  - {path: s" + std::to_string(k) + ".tif, kind: labels, pressure_MPa: " + std::to_string(10 * k) + "}\n";
  }
  write_text("b.yaml", std::string(kPhases) + "samples:\n" + samples +
                           "stages:\n  - stage: volume_fraction\n  - {stage: interfaces}\n");
  const Result full = voxpress("run b.yaml -q --jobs 2 --out full");
  ASSERT_EQ(full.code, 0) << full.err;
  const Result serial = voxpress("run b.yaml -q --jobs 1 --out serial");
  ASSERT_EQ(serial.code, 0) << serial.err;
  EXPECT_EQ(slurp(dir_ / "serial" / "metrics.csv"), slurp(dir_ / "full" / "metrics.csv"));  // --jobs 1 vs 2
  const Result again = voxpress("run b.yaml -q --jobs 2 --out full");
  EXPECT_EQ(slurp(dir_ / "serial" / "metrics.csv"), slurp(dir_ / "full" / "metrics.csv"));  // run to run

  // Killed once two samples are complete (the runner and, with it, its workers).
  const fs::path out = dir_ / "killed";
  const std::string cmd = "cd '" + dir_.string() + "' && ('" VP_VOXPRESS_EXE "' run b.yaml -q --jobs 1 --out '" +
                          out.string() + "' >/dev/null 2>&1 & pid=$!; for i in $(seq 600); do [ -e '" +
                          (out / "samples" / "s1").string() +
                          "' ] && break; sleep 0.05; done; kill -KILL $pid; wait $pid) "
                          ">/dev/null 2>&1";
  [[maybe_unused]] const int killed = std::system(cmd.c_str());  // the run is killed on purpose
  ASSERT_TRUE(fs::exists(out / "samples" / "s1"));
  EXPECT_FALSE(fs::exists(out / "samples" / "s5"));
  const Result resumed = voxpress("run b.yaml --resume --jobs 2 --out killed");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("resumed: "), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.out.find("s5 (missing)"), std::string::npos) << resumed.out;
  EXPECT_EQ(resumed.out.find("s0 ("), std::string::npos) << resumed.out;  // kept
  EXPECT_NE(resumed.err.find("s0: complete with unchanged inputs and settings: kept (--resume)"), std::string::npos);
  EXPECT_EQ(slurp(out / "metrics.csv"), slurp(dir_ / "full" / "metrics.csv"));
  const auto a = nlohmann::json::parse(slurp(out / "metrics.json"));
  const auto b = nlohmann::json::parse(slurp(dir_ / "full" / "metrics.json"));
  const auto diff = nlohmann::json::diff(without_timing(b), without_timing(a));
  EXPECT_TRUE(diff.empty()) << diff.dump();
  EXPECT_TRUE(a["resume"]["reused"].size() >= 2u) << a["resume"].dump();
  EXPECT_TRUE(partial_outputs(out).empty());
}

// The memory estimate that schedules and refuses samples is within 25 % of what a worker
// really uses: its peak RSS minus that of a worker on an 8³ sample (the program itself).
TEST_F(CliTest, MemoryEstimateIsWithinAQuarterOfTheMeasuredPeak) {
  for (const auto& [name, edge] : std::vector<std::pair<std::string, index_t>>{{"tiny", 8}, {"big", 150}}) {
    Volume<std::uint8_t> v({edge, edge, edge}, {1, 1, 1});
    for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(i % (edge * edge) < edge ? 0 : 1);
    write_volume(v, (dir_ / (name + ".tif")).string());
  }
  for (const std::string stages : {"  - {stage: connectivity}\n", "  - {stage: transport, phase: se, tol: 1e-3}\n"}) {
    std::map<std::string, nlohmann::json> sample;
    for (const std::string name : {"tiny", "big"}) {
      write_text(name + ".yaml",
                 std::string(kPhases) + "samples:\n  - {path: " + name + ".tif, kind: labels}\nstages:\n" + stages);
      const Result r = voxpress("run " + name + ".yaml -q --out " + name + "_run");
      ASSERT_EQ(r.code, 0) << r.err;
      sample[name] = nlohmann::json::parse(slurp(dir_ / (name + "_run") / "metrics.json"))["samples"][0];
      fs::remove_all(dir_ / (name + "_run"));
    }
    const double estimate = sample["big"]["memory_estimate_bytes"].get<double>();
    const double used = sample["big"]["peak_rss_bytes"].get<double>() - sample["tiny"]["peak_rss_bytes"].get<double>();
    EXPECT_GT(used, 0) << stages;
    EXPECT_LE(std::abs(estimate - used), 0.25 * used)
        << stages << "estimate " << estimate << " B, measured " << used << " B";
    std::printf("%s  estimate %.1f MiB, measured %.1f MiB above the program's own\n", stages.c_str(),
                estimate / 1048576, used / 1048576);
  }
}

// Bare 0/1 label files work with the defaults; a missing role says how to give it, with the
// file's own labels; absurd numbers and unwritable outputs are input errors naming flag or path.
TEST_F(CliTest, BareLabelFilesAbsurdNumbersAndUnwritableOutputs) {
  Volume<std::uint8_t> v({16, 16, 16});
  for (index_t z = 0; z < 16; ++z)
    for (index_t y = 0; y < 16; ++y)
      for (index_t x = 0; x < 16; ++x) v(x, y, z) = (x == 7 || x == 8) && y > 1 && y < 14 ? 0 : 1;  // a slit in 1
  write_volume(v, (dir_ / "bare.tif").string());
  const Result cracks = voxpress("cracks bare.tif --host 1 --json");
  ASSERT_EQ(cracks.code, 0) << cracks.err;
  EXPECT_GE(nlohmann::json::parse(cracks.out)["rows"].size(), 1u);

  const Result role = voxpress("cracks bare.tif");  // host: electrolyte, which a bare file lacks
  EXPECT_EQ(role.code, 2);
  EXPECT_NE(role.err.find("\n  give roles with --labels pore=0,se=1 --roles se=electrolyte (roles: "),
            std::string::npos)
      << role.err;
  const Result measure = voxpress("measure bare.tif --metrics contact_area");
  EXPECT_EQ(measure.code, 2);
  EXPECT_NE(measure.err.find("give roles with --labels pore=0,se=1 --roles se=electrolyte"), std::string::npos)
      << measure.err;
  const Result named = voxpress("measure bare.tif --metrics contact_area --labels a=0,b=1");
  EXPECT_NE(named.err.find("give roles with --roles a=pore,b=electrolyte"), std::string::npos) << named.err;

  for (const auto& [args, expected] : std::vector<std::pair<std::string, std::string>>{
           {"solve bare.tif --phase 1 --spacing inf", "--spacing 'inf': voxel sizes must be finite"},
           {"solve bare.tif --phase 1 --spacing nan", "--spacing 'nan': voxel sizes must be finite"},
           {"solve bare.tif --cond 1=1e308", "conductivities.1: found '1e308'; expected 0 or a conductivity between"},
           {"solve bare.tif --phase 1 --out /proc/x.tif", "--out /proc/x.tif: cannot create this folder"},
           {"segment bare.tif --out /proc/x/l.tif", "--out /proc/x/l.tif: cannot write there"},
           {"cracks bare.tif --host 1 --out /proc/x", "--out /proc/x: cannot create this folder"}}) {
    const Result r = voxpress(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << args << ": " << r.err;
  }
  write_text("nan.yaml", std::string(kPhases) +
                             "defaults: {voxel_size_um: .nan}\nsamples:\n  - {path: bare.tif, kind: labels}\n"
                             "stages:\n  - {stage: transport, conductivities: {se: 1e308}}\n");
  const Result cfg = voxpress("validate nan.yaml");
  EXPECT_EQ(cfg.code, 2);
  EXPECT_NE(cfg.err.find("defaults.voxel_size_um: expected a number"), std::string::npos) << cfg.err;
  EXPECT_NE(cfg.err.find("conductivities.se: found '1e308'"), std::string::npos) << cfg.err;
}

}  // namespace
