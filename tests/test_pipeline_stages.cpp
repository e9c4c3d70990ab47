// Stages write files and rows through SampleContext only: artifact() writes nothing without an
// output folder, and add() refuses a metric the stage does not declare.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <set>

#include "core/stage.h"
#include "pipeline/catalog.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

const Registry& registry() {
  register_all(Registry::global());
  return Registry::global();
}

// Two grey levels, left and right halves: any segmentation finds two classes.
SampleContext two_phase_grey() {
  Volume<float> grey(Dims{16, 12, 8}, Vec3{1, 1, 1});
  for (index_t z = 0; z < 8; ++z)
    for (index_t y = 0; y < 12; ++y)
      for (index_t x = 0; x < 16; ++x) grey(x, y, z) = x < 8 ? 0.2f + 0.01f * ((x + y + z) % 3) : 0.8f;
  SampleContext ctx;
  ctx.sample.name = "halves";
  ctx.grey = AnyVolume(std::move(grey));
  return ctx;
}

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

// Runs `stage` on ctx with its defaults (plus `yaml`), inside `cwd`.
void run_in(const fs::path& cwd, const std::string& stage_name, const std::string& yaml, SampleContext& ctx) {
  const Stage* stage = registry().stage(stage_name);
  ASSERT_NE(stage, nullptr);
  const Params params(YAML::Load(yaml), stage->params());
  const fs::path before = fs::current_path();
  fs::current_path(cwd);
  try {
    run_stage(*stage, params, ctx);
  } catch (...) {
    fs::current_path(before);
    throw;
  }
  fs::current_path(before);
}

class StageOutputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vp_stage_outputs_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cwd");
    fs::create_directories(dir_ / "out");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

}  // namespace

// Before: segment stages run without an output folder wrote histogram.png and labels_*.png
// into the working directory.
TEST_F(StageOutputs, SegmentStagesWithoutAnOutputFolderWriteNothing) {
  SampleContext ctx = two_phase_grey();
  run_in(dir_ / "cwd", "preprocess", "{}", ctx);
  run_in(dir_ / "cwd", "segment", "{method: otsu, classes: 2}", ctx);
  run_in(dir_ / "cwd", "particles", "{phase: '1'}", ctx);
  EXPECT_TRUE(files_in(dir_ / "cwd").empty());
  EXPECT_TRUE(ctx.artifacts.empty());
  ASSERT_TRUE(ctx.labels.has_value());
  EXPECT_TRUE(ctx.particles.has_value());
}

TEST_F(StageOutputs, SegmentStagesWithAnOutputFolderRecordWhatTheyWrite) {
  SampleContext ctx = two_phase_grey();
  ctx.out_dir = dir_ / "out";
  run_in(dir_ / "cwd", "preprocess", "{}", ctx);
  run_in(dir_ / "cwd", "segment", "{method: otsu, classes: 2}", ctx);
  EXPECT_TRUE(files_in(dir_ / "cwd").empty());
  const std::set<std::string> want = {"grey_xy.png", "histogram.png", "labels_xy.png", "labels_xz.png",
                                      "labels_yz.png"};
  EXPECT_EQ(files_in(dir_ / "out"), want);
  std::set<std::string> recorded;
  for (const auto& a : ctx.artifacts) recorded.insert(a.filename().string());
  EXPECT_EQ(recorded, want);
}

TEST(SampleContextMetrics, AnUndeclaredMetricIsRefused) {
  struct Emits : Stage {
    std::string name() const override { return "emits"; }
    std::string summary() const override { return "test stage"; }
    std::vector<ParamSpec> params() const override { return {}; }
    std::vector<MetricSpec> metrics() const override { return {{"declared", "1", "sample"}}; }
    unsigned needs() const override { return 0; }
    void run(const Params&, SampleContext& ctx) const override {
      ctx.add("declared", "", "", 1, "1");
      ctx.add("undeclared", "", "", 2, "1");
    }
  };
  SampleContext ctx;
  EXPECT_THROW(run_stage(Emits{}, Params(), ctx), std::logic_error);
  ASSERT_EQ(ctx.rows.size(), 1u);
  EXPECT_EQ(ctx.rows[0].metric, "declared");
  EXPECT_EQ(ctx.rows[0].stage, "emits");
  // Outside run_stage (a command's own rows) nothing is declared and nothing is refused.
  ctx.add("anything", "", "", 3, "1");
  EXPECT_EQ(ctx.rows.size(), 2u);
}
