// Phase fractions, the volume_fraction stage, the outputs' exact text, and the runner's
// scheduling and failure handling.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include <tbb/task_arena.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "filters/io/volume_io.h"
#include "metrics/phase_fractions.h"
#include "phantoms/phantom.h"
#include "pipeline/catalog.h"
#include "pipeline/outputs.h"
#include "pipeline/runner.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

std::string vp_slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

PhaseTable three_phases() {
  return PhaseTable({{"pore", 0, Role::pore}, {"se", 1, Role::electrolyte}, {"am", 2, Role::active}});
}

// 4x3x2 = 24 voxels: 6 pore, 8 se, 10 am.
LabelVolume small_labels() {
  Volume<std::uint8_t> v({4, 3, 2}, {0.5, 1.0, 2.0});
  for (index_t i = 0; i < 24; ++i) v[i] = i < 6 ? 0 : i < 14 ? 1 : 2;
  v.provenance.path = "/data/small.tif";
  return LabelVolume(std::move(v), three_phases());
}

TEST(PhaseFractions, ExactCountsAndFractions) {
  const PhaseFractions f = phase_fractions(small_labels());
  EXPECT_EQ(f.total, 24);
  ASSERT_EQ(f.phases.size(), 3u);
  EXPECT_EQ(f.phases[0].phase, "pore");
  EXPECT_EQ(f.phases[0].voxels, 6);
  EXPECT_EQ(f.phases[1].voxels, 8);
  EXPECT_EQ(f.phases[2].voxels, 10);
  EXPECT_EQ(f.phases[0].fraction, 6.0 / 24.0);
  EXPECT_EQ(f.phases[1].fraction, 8.0 / 24.0);
  EXPECT_EQ(f.phases[2].fraction, 10.0 / 24.0);
  EXPECT_EQ(f.role_fraction(Role::pore), 0.25);
  EXPECT_EQ(f.role_fraction(Role::binder), 0.0);
}

TEST(PhaseFractions, PhaseAbsentFromTheVolumeHasFractionZero) {
  LabelVolume l = small_labels();
  l.phases = PhaseTable(
      {{"pore", 0, Role::pore}, {"se", 1, Role::electrolyte}, {"am", 2, Role::active}, {"cbd", 3, Role::binder}});
  const PhaseFractions f = phase_fractions(l);
  ASSERT_EQ(f.phases.size(), 4u);
  EXPECT_EQ(f.phases[3].voxels, 0);
  EXPECT_EQ(f.phases[3].fraction, 0.0);
}

TEST(PhaseFractions, LabelMissingFromTheTableIsAnErrorNamingLabelVoxelAndFile) {
  LabelVolume l = small_labels();
  l(1, 2, 1) = 7;
  l(3, 2, 1) = 7;
  try {
    phase_fractions(l);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/data/small.tif: label 7 occurs in 2 voxels (first at x=1, y=2, z=1) but the phase table does not "
              "name it; expected only pore=0, se=1, am=2 — add it to `phases`");
  }
}

TEST(PhaseFractions, CountsDoNotDependOnTheThreadCount) {
  Volume<std::uint8_t> v({61, 47, 33});
  std::mt19937 rng(7);
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(rng() % 5);
  std::array<index_t, 256> serial{};
  for (index_t i = 0; i < v.size(); ++i) ++serial[v[i]];
  for (int threads : {1, 2, 4}) {
    tbb::task_arena arena(threads);
    const auto counts = arena.execute([&] { return count_labels(v); });
    EXPECT_EQ(counts, serial) << threads << " threads";
  }
}

TEST(VolumeFractionStage, RowsDetailsAndPorosity) {
  Registry reg;
  register_pipeline(reg);
  const Stage* stage = reg.stage("volume_fraction");
  ASSERT_NE(stage, nullptr);
  EXPECT_EQ(stage->needs(), unsigned(kLabels));
  SampleContext ctx;
  ctx.labels = small_labels();
  ctx.current_stage = "volume_fraction";
  stage->run(Params(YAML::Node(), stage->params()), ctx);
  ASSERT_EQ(ctx.rows.size(), 4u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"volume_fraction", "pore"}, {"volume_fraction", "se"}, {"volume_fraction", "am"}, {"porosity", "pore"}};
  const std::vector<double> values = {0.25, 8.0 / 24, 10.0 / 24, 0.25};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(ctx.rows[i].metric, expected[i].first);
    EXPECT_EQ(ctx.rows[i].phase, expected[i].second);
    EXPECT_EQ(ctx.rows[i].axis, "");
    EXPECT_EQ(ctx.rows[i].unit, "1");
    EXPECT_EQ(ctx.rows[i].stage, "volume_fraction");
    EXPECT_EQ(ctx.rows[i].value, values[i]);
  }
  EXPECT_EQ(ctx.details["total_voxels"], 24);
  EXPECT_EQ(ctx.details["voxels"]["am"], 10);
  EXPECT_DOUBLE_EQ(ctx.details["volume_um3"].get<double>(), 24 * 0.5 * 1.0 * 2.0);
}

RunRecord two_samples() {
  RunRecord run;
  run.config_path = "/c.yaml";
  run.config_sha256 = std::string(64, 'a');
  run.version = "0.1.0";
  SampleRecord ok;
  ok.ok = true;
  ok.info.name = "p050";
  ok.info.series = "cath,A";
  ok.info.pressure_MPa = 50;
  ok.rows = {{"volume_fraction", "am", "", 0.1, "1", "volume_fraction"},
             {"tau", "se", "z", std::numeric_limits<double>::infinity(), "1", "transport"},
             {"sigma", "se", "z", std::nan(""), "S/m", "transport"},
             {"interface_area", "am|se", "", 1234.5, "µm²", "interfaces"}};
  SampleRecord bad;
  bad.info.name = "p100";
  bad.info.pressure_MPa = 100;
  bad.error = "x.tif: truncated";
  bad.error_kind = "input";
  bad.rows = {{"volume_fraction", "am", "", 0.5, "1", "volume_fraction"}};  // never reported
  run.samples = {ok, bad};
  return run;
}

TEST(Outputs, MetricsCsvExactText) {
  EXPECT_EQ(metrics_csv(two_samples().samples),
            "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\n"
            "p050,\"cath,A\",50,volume_fraction,volume_fraction,am,,0.1,1\n"
            "p050,\"cath,A\",50,transport,tau,se,z,inf,1\n"
            "p050,\"cath,A\",50,transport,sigma,se,z,nan,S/m\n"
            "p050,\"cath,A\",50,interfaces,interface_area,am|se,,1234.5,µm²\n");
}

TEST(Outputs, MetricsJsonHasTheSameNumbersNullForNonFiniteAndTheErrors) {
  const nlohmann::json j = metrics_json(two_samples());
  ASSERT_EQ(j["metrics"].size(), 4u);
  EXPECT_EQ(j["metrics"][0]["value"], 0.1);
  EXPECT_EQ(j["metrics"][0]["sample"], "p050");
  EXPECT_EQ(j["metrics"][0]["pressure_MPa"], 50.0);
  EXPECT_TRUE(j["metrics"][1]["value"].is_null());
  EXPECT_TRUE(j["metrics"][2]["value"].is_null());
  EXPECT_EQ(j["config"]["sha256"], std::string(64, 'a'));
  ASSERT_EQ(j["samples"].size(), 2u);
  EXPECT_EQ(j["samples"][0]["status"], "ok");
  EXPECT_TRUE(j["samples"][0]["error"].is_null());
  EXPECT_EQ(j["samples"][1]["status"], "failed");
  EXPECT_EQ(j["samples"][1]["error"], "x.tif: truncated");
  ASSERT_EQ(j["errors"].size(), 1u);
  EXPECT_EQ(j["errors"][0]["sample"], "p100");
  for (const char* key : {"voxpress_version", "threads", "jobs", "started", "finished", "seconds", "report"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST(Runner, ParseBytes) {
  EXPECT_EQ(parse_bytes("4G"), std::uint64_t{4} << 30);
  EXPECT_EQ(parse_bytes("512M"), std::uint64_t{512} << 20);
  EXPECT_EQ(parse_bytes("1.5G"), std::uint64_t{3} << 29);
  EXPECT_EQ(parse_bytes("2GiB"), std::uint64_t{2} << 30);
  EXPECT_EQ(parse_bytes("64k"), std::uint64_t{64} << 10);
  EXPECT_EQ(parse_bytes("1000"), 1000u);
  for (const char* bad : {"abc", "-1G", "4X", "", "0"}) EXPECT_THROW(parse_bytes(bad), InputError) << bad;
  try {
    parse_bytes("4X");
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--max-memory '4X': expected a positive size in bytes, optionally with K, M, G or T (e.g. 4G)");
  }
  EXPECT_EQ(format_bytes(std::uint64_t{3} << 29), "1.5 GiB");
  EXPECT_GT(default_memory_budget(), 0u);
}

// Test stages: one writes an artifact, one fails for the sample named "bad" after writing a file.
class WriteNote : public Stage {
 public:
  std::string name() const override { return "write_note"; }
  std::string summary() const override { return "test"; }
  std::vector<ParamSpec> params() const override { return {}; }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 100.0; }
  void run(const Params&, SampleContext& ctx) const override {
    const fs::path p = ctx.out_dir / "note.txt";
    write_text_atomically(p, ctx.sample.name);
    ctx.artifacts.push_back(p);
    ctx.details = {{"wrote", "note.txt"}};
  }
};
class FailForBad : public Stage {
 public:
  std::string name() const override { return "fail_for_bad"; }
  std::string summary() const override { return "test"; }
  std::vector<ParamSpec> params() const override { return {}; }
  unsigned needs() const override { return 0; }
  std::vector<MetricSpec> metrics() const override { return {{"before_failure", "1", ""}}; }
  void run(const Params&, SampleContext& ctx) const override {
    ctx.add("before_failure", "", "", 1, "1");
    if (ctx.sample.name == "bad") throw ComputeError("did not converge");
  }
};

// A report stage: counts the lines of metrics.csv (which must exist by then); fails on demand.
class CountLines : public BatchStage {
 public:
  std::string name() const override { return "count_lines"; }
  std::string summary() const override { return "test"; }
  std::vector<ParamSpec> params() const override {
    ParamSpec fail;
    fail.name = "fail";
    fail.type = ParamType::boolean;
    fail.default_yaml = "false";
    return {fail};
  }
  void run(const Params& p, const fs::path& run_dir, Progress&) const override {
    if (p.boolean("fail")) throw std::runtime_error("plot failed");
    std::ifstream in(run_dir / "metrics.csv");
    int lines = 0;
    for (std::string l; std::getline(in, l);) ++lines;
    write_text_atomically(run_dir / "lines.txt", std::to_string(lines));
  }
};

// The registry of these tests: the pipeline's stages and the test stages above. The test binary's
// own main hands `__sample` to the runner's worker with it, as voxpress's main does.
void register_test_registry(Registry& reg) {
  register_pipeline(reg);
  reg.add(std::make_unique<WriteNote>());
  reg.add(std::make_unique<FailForBad>());
  reg.add(std::make_unique<CountLines>());
}

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vp_test_runner_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    register_test_registry(reg_);
    for (int k = 0; k < 4; ++k) {
      Volume<std::uint8_t> v({6, 5, 4});
      for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(i % (k + 2) == 0 ? 1 : 0);
      write_volume(v, (dir_ / ("s" + std::to_string(k) + ".mha")).string());
    }
    std::ofstream(dir_ / "cfg.yaml") << "phases:\n  - {name: pore, label: 0, role: pore}\n"
                                        "  - {name: am, label: 1, role: active}\n"
                                        "defaults: {voxel_size_um: 1}\n"
                                        "samples:\n"
                                        "  - {path: s0.mha, kind: labels, pressure_MPa: 0}\n"
                                        "  - {path: s1.mha, kind: labels, pressure_MPa: 10, name: bad}\n"
                                        "  - {path: s2.mha, kind: labels, pressure_MPa: 20}\n"
                                        "  - {path: s3.mha, kind: labels, pressure_MPa: 30}\n"
                                        "stages:\n  - stage: volume_fraction\n  - stage: write_note\n"
                                        "  - stage: fail_for_bad\n";
  }
  void TearDown() override {
    ::unsetenv("VP_TEST_CRASH");
    fs::remove_all(dir_);
  }

  RunResult run(int jobs, std::uint64_t max_memory, const std::string& out, const std::string& config = "cfg.yaml",
                bool resume = false) {
    const Config c = load_config(dir_ / config, reg_);
    RunOptions o;
    o.jobs = jobs;
    o.max_memory = max_memory;
    o.out_dir = dir_ / out;
    o.resume = resume;
    Progress quiet(true);
    return run_batch(c, o, quiet);
  }

  fs::path dir_;
  Registry reg_;
};

// The report gallery's slices of the volumes as read: grey_xy.png for a grey sample,
// labels_xy.png for labels from a file (over the grey when there is one), recorded as artifacts.
TEST_F(RunnerTest, WritesTheInputSlicesForTheReportGallery) {
  Volume<std::uint16_t> g({6, 5, 4});
  for (index_t i = 0; i < g.size(); ++i) g[i] = static_cast<std::uint16_t>(100 * (i % 7));
  write_volume(g, (dir_ / "g.mha").string());
  std::ofstream(dir_ / "slices.yaml") << "phases:\n  - {name: pore, label: 0, role: pore}\n"
                                         "  - {name: am, label: 1, role: active}\n"
                                         "defaults: {voxel_size_um: 1}\n"
                                         "samples:\n"
                                         "  - {path: g.mha, labels: s0.mha, pressure_MPa: 0, name: both}\n"
                                         "  - {path: g.mha, pressure_MPa: 10, name: grey}\n"
                                         "  - {path: s0.mha, kind: labels, pressure_MPa: 20, name: labels}\n"
                                         "stages:\n  - stage: fail_for_bad\n";
  const RunResult r = run(0, 0, "run", "slices.yaml");
  ASSERT_EQ(r.failed_samples, 0);
  auto is_png = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char sig[8] = {};
    in.read(sig, 8);
    return in && std::string(sig, 8) == "\x89PNG\r\n\x1a\n";
  };
  const std::map<std::string, std::vector<std::string>> expected = {
      {"both", {"grey_xy.png", "labels_xy.png"}}, {"grey", {"grey_xy.png"}}, {"labels", {"labels_xy.png"}}};
  for (const SampleRecord& s : r.record.samples) {
    const std::vector<std::string>& files = expected.at(s.info.name);
    ASSERT_EQ(s.artifacts.size(), files.size()) << s.info.name;
    for (std::size_t k = 0; k < files.size(); ++k) {
      EXPECT_EQ(s.artifacts[k], "samples/" + s.info.name + "/" + files[k]);
      EXPECT_TRUE(is_png(r.run_dir / s.artifacts[k])) << s.artifacts[k];
    }
  }
  EXPECT_FALSE(fs::exists(r.run_dir / "samples" / "grey" / "labels_xy.png"));
  EXPECT_FALSE(fs::exists(r.run_dir / "samples" / "labels" / "grey_xy.png"));
}

TEST_F(RunnerTest, FailedSampleIsRecordedLeavesNoFolderAndTheOthersRun) {
  const RunResult r = run(2, 0, "run");
  EXPECT_EQ(r.failed_samples, 1);
  EXPECT_EQ(r.exit_code(), 4);
  ASSERT_EQ(r.record.samples.size(), 4u);
  const SampleRecord& bad = r.record.samples[1];
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error_kind, "compute");
  EXPECT_EQ(bad.error, "did not converge");
  EXPECT_TRUE(bad.rows.empty());
  EXPECT_FALSE(fs::exists(r.run_dir / "samples" / "bad"));
  EXPECT_FALSE(fs::exists(r.run_dir / "samples" / ".partial-bad"));
  for (int k : {0, 2, 3}) {
    const SampleRecord& s = r.record.samples[static_cast<std::size_t>(k)];
    EXPECT_TRUE(s.ok) << s.error;
    // labels_xy.png from the runner (labels read from a file), then the stage's note.
    ASSERT_EQ(s.artifacts.size(), 2u);
    EXPECT_EQ(s.artifacts[0], "samples/" + s.info.name + "/labels_xy.png");
    EXPECT_EQ(s.artifacts[1], "samples/" + s.info.name + "/note.txt");
    for (const auto& a : s.artifacts) EXPECT_TRUE(fs::exists(r.run_dir / a)) << a;
    ASSERT_EQ(s.stages.size(), 4u);  // read + three stages, each timed
    EXPECT_EQ(s.stages[0].stage, "read");
    EXPECT_EQ(s.stages[2].details["wrote"], "note.txt");
  }
  // s2: every voxel with i % 4 == 0 is am: 30 of 120.
  EXPECT_EQ(r.record.samples[2].rows[1].metric, "volume_fraction");
  EXPECT_EQ(r.record.samples[2].rows[1].phase, "am");
  EXPECT_EQ(r.record.samples[2].rows[1].value, 0.25);
  // metrics.csv holds the good samples only, metrics.json the error.
  std::ifstream csv(r.run_dir / "metrics.csv");
  std::stringstream text;
  text << csv.rdbuf();
  EXPECT_EQ(text.str().find("\nbad,"), std::string::npos);
  EXPECT_NE(text.str().find("s3,default,30,volume_fraction,volume_fraction,am,,0.2,1\n"), std::string::npos);
  const auto j = nlohmann::json::parse(std::ifstream(r.run_dir / "metrics.json"));
  EXPECT_EQ(j["errors"][0]["sample"], "bad");
  EXPECT_EQ(j["errors"][0]["kind"], "compute");
  EXPECT_TRUE(fs::exists(r.run_dir / "run.log"));
  EXPECT_TRUE(fs::exists(r.run_dir / "config.yaml"));
}

TEST_F(RunnerTest, ReportStagesRunAfterTheMetricsAreWrittenAndTheirFailuresCount) {
  std::ofstream(dir_ / "report.yaml")
      << "phases:\n  - {name: pore, label: 0, role: pore}\n"
         "  - {name: am, label: 1, role: active}\n"
         "defaults: {voxel_size_um: 1}\n"
         "samples:\n  - {path: s0.mha, kind: labels}\n  - {path: s2.mha, kind: labels}\n"
         "stages:\n  - stage: volume_fraction\n"
         "report:\n  - stage: count_lines\n  - {stage: count_lines, fail: true}\n";
  const RunResult r = run(0, 0, "report_run", "report.yaml");
  EXPECT_EQ(r.failed_samples, 0);
  EXPECT_EQ(r.failed_report_stages, 1);
  EXPECT_EQ(r.exit_code(), 4);
  std::ifstream lines(r.run_dir / "lines.txt");
  int n = 0;
  lines >> n;
  EXPECT_EQ(n, 1 + 2 * 3);  // header + 2 samples × (2 fractions + porosity)
  const auto j = nlohmann::json::parse(std::ifstream(r.run_dir / "metrics.json"));
  ASSERT_EQ(j["report"].size(), 2u);
  EXPECT_EQ(j["report"][0]["status"], "ok");
  EXPECT_EQ(j["report"][1]["status"], "failed");
  EXPECT_EQ(j["report"][1]["error"], "plot failed");
  EXPECT_EQ(j["errors"][0]["report_stage"], "count_lines");
}

// The next run removes exactly the temporaries of the runs named in the folder's marker: names
// like voxpress's own but not carrying such a run's token are left alone.
TEST_F(RunnerTest, LeftoversOfAnInterruptedRunAreClearedAndNothingElse) {
  const fs::path out = dir_ / "again";
  run(2, 0, "again");
  const auto marker = nlohmann::json::parse(std::ifstream(out / ".voxpress-run"));
  ASSERT_EQ(marker["tokens"].size(), 1u);
  const std::string prefix = ".vp-" + marker["tokens"][0].get<std::string>() + "-";
  fs::create_directories(out / "samples" / (prefix + "s0.partial"));
  std::ofstream(out / "samples" / (prefix + "s0.partial") / "half.txt") << "x";
  std::ofstream(out / (prefix + "tmp123_0_metrics.csv")) << "sample,se";
  std::ofstream(out / "samples" / (prefix + "s2.result.json")) << "{";
  // Named like the leftovers of older versions or of another token: not ours to delete.
  fs::create_directories(out / "samples" / ".partial-s0");
  std::ofstream(out / ".tmp123_0_metrics.csv") << "user";
  std::ofstream(out / ".vp-0123456789abcdef-tmp1_0_x.csv") << "user";
  const RunResult r = run(2, 0, "again");
  EXPECT_EQ(r.failed_samples, 1);
  EXPECT_FALSE(fs::exists(out / "samples" / (prefix + "s0.partial")));
  EXPECT_FALSE(fs::exists(out / (prefix + "tmp123_0_metrics.csv")));
  EXPECT_FALSE(fs::exists(out / "samples" / (prefix + "s2.result.json")));
  EXPECT_TRUE(fs::exists(out / "samples" / ".partial-s0"));
  EXPECT_EQ(vp_slurp(out / ".tmp123_0_metrics.csv"), "user");
  EXPECT_EQ(vp_slurp(out / ".vp-0123456789abcdef-tmp1_0_x.csv"), "user");
  EXPECT_TRUE(fs::exists(out / "samples" / "s0" / "note.txt"));
}

// A non-empty folder that is not a run folder is refused, naming it; --force writes into it
// without touching a user file, even ones named like voxpress's temporaries; and refuses when a
// user file holds one of voxpress's output names.
TEST_F(RunnerTest, ForeignFolderIsRefusedAndForceNeverTouchesUserFiles) {
  const fs::path out = dir_ / "mine";
  fs::create_directories(out / "samples" / ".partial-s0");
  std::ofstream(out / "samples" / ".partial-s0" / "data.txt") << "keep";
  std::ofstream(out / ".tmp123_0_metrics.csv") << "keep";
  std::ofstream(out / "notes.txt") << "keep";
  const Config c = load_config(dir_ / "cfg.yaml", reg_);
  RunOptions o;
  o.out_dir = out;
  Progress quiet(true);
  try {
    run_batch(c, o, quiet);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              out.string() +
                  " is not empty and is not a voxpress run folder (no .voxpress-run); "
                  "choose another --out, or pass --force to write into it (its files are left alone)");
  }
  EXPECT_FALSE(fs::exists(out / "metrics.csv"));
  o.force = true;
  const RunResult r = run_batch(c, o, quiet);
  EXPECT_EQ(r.failed_samples, 1);
  EXPECT_TRUE(fs::exists(out / "metrics.csv"));
  EXPECT_EQ(vp_slurp(out / "samples" / ".partial-s0" / "data.txt"), "keep");
  EXPECT_EQ(vp_slurp(out / ".tmp123_0_metrics.csv"), "keep");
  EXPECT_EQ(vp_slurp(out / "notes.txt"), "keep");
  // Now a run folder: a plain run into it is accepted and still leaves the user's files.
  o.force = false;
  EXPECT_EQ(run_batch(c, o, quiet).failed_samples, 1);
  EXPECT_EQ(vp_slurp(out / "notes.txt"), "keep");

  const fs::path taken = dir_ / "taken";
  fs::create_directories(taken);
  std::ofstream(taken / "metrics.csv") << "mine";
  o.out_dir = taken;
  o.force = true;
  try {
    run_batch(c, o, quiet);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--force never replaces files voxpress did not write"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("metrics.csv"), std::string::npos) << e.what();
  }
  EXPECT_EQ(vp_slurp(taken / "metrics.csv"), "mine");
}

TEST_F(RunnerTest, UnwritableRunFolderIsAnInputError) {
  std::ofstream(dir_ / "file") << "x";
  const Config c = load_config(dir_ / "cfg.yaml", reg_);
  RunOptions o;
  o.out_dir = dir_ / "file" / "run";
  Progress quiet(true);
  try {
    run_batch(c, o, quiet);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot prepare the run folder " + (dir_ / "file" / "run").string()),
              std::string::npos)
        << e.what();
  }
}

TEST_F(RunnerTest, ResultsDoNotDependOnJobsOrMemoryBudget) {
  const Config c = load_config(dir_ / "cfg.yaml", reg_);
  // 120 voxels × (1 + 1 byte loaded + 100 bytes of write_note).
  EXPECT_EQ(estimate_sample_bytes(c.samples[0], c.stages), 120u * 102u);
  const RunResult serial = run(1, 0, "serial");
  const RunResult tight = run(4, 120u * 102u, "tight");  // room for one sample at a time
  const RunResult wide = run(4, std::uint64_t{1} << 30, "wide");
  EXPECT_EQ(metrics_csv(serial.record.samples), metrics_csv(tight.record.samples));
  EXPECT_EQ(metrics_csv(serial.record.samples), metrics_csv(wide.record.samples));
  EXPECT_EQ(vp_slurp(serial.run_dir / "metrics.csv"), vp_slurp(wide.run_dir / "metrics.csv"));
  EXPECT_EQ(tight.record.memory_budget_bytes, 120u * 102u);
  EXPECT_EQ(wide.record.jobs, 4);
  EXPECT_EQ(tight.failed_samples, 1);
}

// A sample whose estimate exceeds the budget is refused up front, with the estimate and the
// budget; the others run, and the outputs are written for what finished.
TEST_F(RunnerTest, SampleLargerThanTheBudgetIsRefusedUpFront) {
  Volume<std::uint8_t> big({40, 30, 20});  // 24000 voxels × 102 B ≈ 2.3 MiB
  write_volume(big, (dir_ / "big.mha").string());
  std::ofstream(dir_ / "big.yaml") << "phases:\n  - {name: pore, label: 0, role: pore}\n"
                                      "  - {name: am, label: 1, role: active}\n"
                                      "defaults: {voxel_size_um: 1}\n"
                                      "samples:\n  - {path: s0.mha, kind: labels}\n  - {path: big.mha, kind: labels}\n"
                                      "  - {path: s2.mha, kind: labels}\n"
                                      "stages:\n  - stage: volume_fraction\n  - stage: write_note\n";
  const RunResult r = run(2, std::uint64_t{1} << 20, "big_run", "big.yaml");
  EXPECT_EQ(r.exit_code(), 4);
  ASSERT_EQ(r.record.samples.size(), 3u);
  const SampleRecord& big_rec = r.record.samples[1];
  EXPECT_FALSE(big_rec.ok);
  EXPECT_EQ(big_rec.error_kind, "memory");
  EXPECT_EQ(big_rec.error,
            "refused: needs about 2.3 MiB (40x30x20 voxels), more than the memory budget 1.0 MiB; "
            "raise --max-memory if the machine has the memory, or crop the sample with `roi`");
  EXPECT_EQ(big_rec.peak_rss_bytes, 0u);  // never started
  EXPECT_TRUE(r.record.samples[0].ok);
  EXPECT_TRUE(r.record.samples[2].ok);
  const std::string csv = vp_slurp(r.run_dir / "metrics.csv");
  EXPECT_NE(csv.find("\ns0,"), std::string::npos);
  EXPECT_NE(csv.find("\ns2,"), std::string::npos);
  EXPECT_EQ(csv.find("\nbig,"), std::string::npos);
  const auto j = nlohmann::json::parse(std::ifstream(r.run_dir / "metrics.json"));
  EXPECT_EQ(j["errors"][0]["sample"], "big");
  EXPECT_EQ(j["errors"][0]["kind"], "memory");
  EXPECT_GT(machine_memory_available(), 0u);
}

// A worker killed by a signal (segfault, abort, or SIGKILL as the OOM killer sends) is that
// sample's failure with the signal, the stage and the last progress line; the batch completes.
TEST_F(RunnerTest, CrashedWorkerIsThatSamplesFailureAndTheBatchCompletes) {
  for (const auto& [spec, signal, stage] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"s2:SEGV", "SIGSEGV", "volume_fraction"},
                                                                      {"s0:ABRT:write_note", "SIGABRT", "write_note"},
                                                                      {"s3:KILL", "SIGKILL", "volume_fraction"}}) {
    ::setenv("VP_TEST_CRASH", spec.c_str(), 1);
    const std::string out = "crash_" + signal;
    const RunResult r = run(2, 0, out);
    ::unsetenv("VP_TEST_CRASH");
    EXPECT_EQ(r.exit_code(), 4);
    EXPECT_EQ(r.failed_samples, 2) << spec;  // "bad" and the crashed one
    const std::string name = spec.substr(0, 2);
    for (const SampleRecord& s : r.record.samples) {
      if (s.info.name != name) {
        EXPECT_EQ(s.ok, s.info.name != "bad") << s.info.name << ": " << s.error;
        continue;
      }
      EXPECT_FALSE(s.ok);
      EXPECT_EQ(s.error_kind, "crash");
      ASSERT_TRUE(s.worker_failure.has_value());
      EXPECT_EQ(s.worker_failure->signal, signal);
      EXPECT_EQ(s.worker_failure->stage, stage);
      EXPECT_EQ(s.worker_failure->last_progress, name + " / " + stage + ": start");
      EXPECT_NE(s.error.find("worker process killed by " + signal), std::string::npos) << s.error;
      EXPECT_FALSE(fs::exists(r.run_dir / "samples" / name));
    }
    const std::string csv = vp_slurp(r.run_dir / "metrics.csv");
    EXPECT_EQ(csv.find("\n" + name + ","), std::string::npos);
    EXPECT_NE(csv.find(name == "s0" ? "\ns2," : "\ns0,"), std::string::npos);
    const auto j = nlohmann::json::parse(std::ifstream(r.run_dir / "metrics.json"));
    bool found = false;
    for (const auto& s : j["samples"])
      if (s["name"] == name) {
        found = true;
        EXPECT_EQ(s["worker"]["signal"], signal);
        EXPECT_EQ(s["worker"]["stage"], stage);
      }
    EXPECT_TRUE(found);
    for (const auto& e : fs::directory_iterator(r.run_dir / "samples"))
      EXPECT_NE(e.path().filename().string().rfind(".vp-", 0), 0u) << e.path();  // no leftovers
  }
}

// --resume keeps complete samples whose inputs and settings match, runs the rest again and says
// why; the tables equal those of an uninterrupted run.
TEST_F(RunnerTest, ResumeRedoesExactlyTheChangedOrMissingSamples) {
  const RunResult full = run(2, 0, "full");
  const std::string csv = vp_slurp(full.run_dir / "metrics.csv");
  fs::remove_all(full.run_dir / "samples" / "s3");                        // never finished
  fs::remove(full.run_dir / "samples" / "s0" / ".voxpress-sample.json");  // incomplete
  RunResult r = run(2, 0, "full", "cfg.yaml", true);
  auto redone = [](const RunResult& res) {
    std::vector<std::string> out;
    for (const auto& d : res.record.redone) out.push_back(d.sample + ":" + d.reason);
    return out;
  };
  EXPECT_EQ(redone(r), (std::vector<std::string>{"s0:incomplete", "bad:missing", "s3:missing"}));
  EXPECT_TRUE(r.record.samples[2].reused);
  EXPECT_FALSE(r.record.samples[3].reused);
  EXPECT_EQ(vp_slurp(r.run_dir / "metrics.csv"), csv);
  const auto j = nlohmann::json::parse(std::ifstream(r.run_dir / "metrics.json"));
  EXPECT_EQ(j["resume"]["reused"], nlohmann::json({"s2"}));
  EXPECT_EQ(j["resume"]["redone"][0]["sample"], "s0");

  // A changed pressure (settings) and changed voxels (input): exactly those samples run again.
  std::string text = vp_slurp(dir_ / "cfg.yaml");
  text.replace(text.find("pressure_MPa: 20"), 16, "pressure_MPa: 25");
  std::ofstream(dir_ / "cfg.yaml") << text;
  Volume<std::uint8_t> v({6, 5, 4});
  write_volume(v, (dir_ / "s3.mha").string());
  r = run(1, 0, "full", "cfg.yaml", true);
  EXPECT_EQ(redone(r), (std::vector<std::string>{"bad:missing", "s2:settings changed", "s3:input changed"}));
  EXPECT_TRUE(r.record.samples[0].reused);
  EXPECT_NE(vp_slurp(r.run_dir / "metrics.csv").find("s2,default,25,"), std::string::npos);
  EXPECT_NE(vp_slurp(r.run_dir / "metrics.csv").find("s3,default,30,volume_fraction,volume_fraction,pore,,1,1"),
            std::string::npos);
}

TEST_F(RunnerTest, OnlySelectsSamplesAndUnknownNamesAreErrors) {
  const Config c = load_config(dir_ / "cfg.yaml", reg_);
  RunOptions o;
  o.only = {"s3", "s0"};
  o.out_dir = dir_ / "only";
  Progress quiet(true);
  const RunResult r = run_batch(c, o, quiet);
  ASSERT_EQ(r.record.samples.size(), 2u);
  EXPECT_EQ(r.record.samples[0].info.name, "s0");  // config order
  EXPECT_EQ(r.record.samples[1].info.name, "s3");
  EXPECT_EQ(r.exit_code(), 0);
  o.only = {"s9"};
  try {
    run_batch(c, o, quiet);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--only: no sample named 's9'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("samples: s0, bad, s2, s3"), std::string::npos) << e.what();
  }
}

// A pressed composite phantom through the whole batch path (file, config, runner, stage):
// the fractions equal the generator's exact counts, and porosity follows its Heckel target.
TEST_F(RunnerTest, PhantomFractionsMatchGroundTruthThroughTheBatch) {
  phantom::CompositeSpec spec;
  spec.dims = {40, 40, 32};
  spec.spacing_um = {0.5, 0.5, 0.5};
  spec.cracks_enabled = false;
  const phantom::Phantom ph = phantom::generate_composite(spec, 125);
  write_volume(ph.labels, (dir_ / "phantom.tif").string());
  std::ofstream(dir_ / "phantom.yaml") << "phases:\n  - {name: pore, label: 0, role: pore}\n"
                                          "  - {name: se, label: 1, role: electrolyte}\n"
                                          "  - {name: am, label: 2, role: active}\n"
                                          "samples:\n  - {path: phantom.tif, kind: labels, pressure_MPa: 125}\n"
                                          "stages:\n  - stage: volume_fraction\n";
  const RunResult r = run(0, 0, "phantom_run", "phantom.yaml");
  ASSERT_EQ(r.exit_code(), 0) << r.record.samples[0].error;
  const auto& rows = r.record.samples[0].rows;
  ASSERT_EQ(rows.size(), 4u);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ(rows[i].value, ph.truth.volume_fraction.at(rows[i].phase)) << rows[i].phase;
  EXPECT_EQ(rows[3].metric, "porosity");
  EXPECT_EQ(rows[3].value, ph.truth.volume_fraction.at("pore"));
  EXPECT_NEAR(rows[3].value, ph.truth.target_porosity, 0.01);
  EXPECT_EQ(r.record.samples[0].info.spacing_um, (Vec3{0.5, 0.5, 0.5}));  // from the TIFF
}

}  // namespace

// The runner executes this binary again as the worker of each sample (`__sample`).
int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "__sample") {
    Registry reg;
    register_test_registry(reg);
    return sample_worker_main(std::vector<std::string>(argv + 2, argv + argc), reg);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
