// `voxpress report RUN_DIR` on a synthetic finished run: settings from the run's config copy,
// flags that override them, and exit code 2 with a message naming the file on bad input.
// Needs the voxpress executable (built with the whole tree); skips when it is not there.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cli_harness.h"

namespace fs = std::filesystem;

namespace {

using vp::testing::run_voxpress;
using vp::testing::slurp;

class ReportCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(VP_VOXPRESS_EXE))
      GTEST_SKIP() << "voxpress is not built (" << VP_VOXPRESS_EXE << "); command test skipped";
    run = fs::temp_directory_path() / ("vp_test_report_command_" + std::to_string(::getpid()));
    fs::remove_all(run);
    fs::create_directories(run / "samples");
    std::string csv = "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\n";
    const double cvf[] = {0.0, 0.002, 0.02, 0.03};
    for (int i = 0; i < 4; ++i) {
      const std::string s = std::string("p").append(std::to_string(i * 100));
      csv += s + ",A," + std::to_string(i * 100) + ",cracks,crack_volume_fraction,,," + std::to_string(cvf[i]) + ",1\n";
    }
    std::ofstream(run / "metrics.csv") << csv;
    std::ofstream(run / "config.yaml") << "report:\n  - stage: report\n    title: From the config\n"
                                          "    crack_threshold: 0.01\n    plots: false\n";
  }
  void TearDown() override {
    if (!run.empty()) fs::remove_all(run);
  }
  fs::path run;
};

}  // namespace

TEST_F(ReportCommand, UsesTheRunConfigsReportSettings) {
  const auto r = run_voxpress("report \"" + run.string() + "\"", run);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto html = slurp(run / "report.html");
  EXPECT_NE(html.find("<title>From the config</title>"), std::string::npos);
  EXPECT_NE(html.find("Plots were switched off"), std::string::npos);
  const auto fits = slurp(run / "fits.json");
  EXPECT_NE(fits.find("\"onset_pressure_MPa\": 200.0"), std::string::npos) << fits;  // 0.02 > 0.01 at 200 MPa
  EXPECT_TRUE(fs::exists(run / "series" / "A.csv"));
}

TEST_F(ReportCommand, FlagsOverrideTheConfig) {
  const auto r = run_voxpress("report \"" + run.string() + "\" --title Override --crack-threshold 0.001", run);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(run / "report.html").find("<title>Override</title>"), std::string::npos);
  EXPECT_NE(slurp(run / "fits.json").find("\"onset_pressure_MPa\": 100.0"), std::string::npos);
}

TEST_F(ReportCommand, BadInputExitsTwoNamingTheFile) {
  auto r = run_voxpress("report \"" + (run / "nope").string() + "\"", run);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  std::ofstream(run / "metrics.csv", std::ios::app) << "p9,A,900,cracks,crack_volume_fraction,,,lots,1\n";
  r = run_voxpress("report \"" + run.string() + "\"", run);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("metrics.csv:6"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lots"), std::string::npos) << r.err;
  r = run_voxpress("report \"" + run.string() + "\" --crack-threshold 2", run);
  EXPECT_EQ(r.code, 2);
}

TEST_F(ReportCommand, FiguresWritesThePanelAsSvgPdfAndPng) {
  // A porosity column as well, so the panel holds a Heckel fit next to the cracks.
  std::ofstream csv(run / "metrics.csv", std::ios::app);
  for (int i = 0; i < 4; ++i)
    csv << "p" << i * 100 << ",A," << i * 100 << ",metrics,porosity,pore,," << 0.3 * std::exp(-0.005 * i * 100)
        << ",1\n";
  csv.close();
  const fs::path figures = run / "paper";
  const auto r = run_voxpress("report \"" + run.string() + "\" --figures \"" + figures.string() + "\"", run);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* stem : {"headline", "porosity", "cracks", "heckel"}) {
    const auto svg = slurp(figures / (std::string(stem) + ".svg"));
    EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u) << stem;
    EXPECT_EQ(svg.find('|'), std::string::npos) << stem;  // no machine names anywhere in a paper figure
  }
  EXPECT_NE(slurp(figures / "headline.svg").find("yield pressure 1/k = 200 MPa"), std::string::npos);
  EXPECT_NE(slurp(figures / "porosity.csv").find("trace,kind,pressure_MPa,value"), std::string::npos);
  if (!fs::exists("/usr/bin/rsvg-convert") && !std::getenv("VP_RSVG_CONVERT"))
    GTEST_SKIP() << "rsvg-convert (librsvg2-bin) is not installed: SVG only, PDF/PNG not checked";
  for (const char* stem : {"headline", "porosity", "cracks"}) {
    EXPECT_EQ(slurp(figures / (std::string(stem) + ".pdf")).rfind("%PDF-", 0), 0u) << stem;
    EXPECT_EQ(slurp(figures / (std::string(stem) + ".png")).rfind("\x89PNG", 0), 0u) << stem;
  }
  // 300 dpi: the 610 px wide chart (CSS px, 96 per inch) is 1906.25 pixels wide, rounded either way.
  const auto png = slurp(figures / "porosity.png");
  ASSERT_GT(png.size(), 24u);
  const unsigned width = (static_cast<unsigned char>(png[16]) << 24) | (static_cast<unsigned char>(png[17]) << 16) |
                         (static_cast<unsigned char>(png[18]) << 8) | static_cast<unsigned char>(png[19]);
  EXPECT_NEAR(width, 1906.25, 1.0);
}

TEST_F(ReportCommand, FiguresIntoAFileIsBadInput) {
  std::ofstream(run / "occupied") << "x";
  const auto r = run_voxpress("report \"" + run.string() + "\" --figures \"" + (run / "occupied").string() + "\"", run);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("occupied"), std::string::npos) << r.err;
}
