// The report on a synthetic run folder: every section, embedded images, plots (or a plain note
// without gnuplot), and a render in headless Chromium with no console errors and every image loaded.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli_harness.h"
#include "core/json_util.h"
#include "pipeline/report/report.h"

using namespace vp::report;
namespace fs = std::filesystem;

namespace {

using vp::testing::slurp;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

void write_slice(const fs::path& p, int seed) {
  cv::Mat img(32, 48, CV_8UC1);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) img.at<std::uint8_t>(y, x) = static_cast<std::uint8_t>((x * 5 + y * 3 + seed * 40) % 256);
  ASSERT_TRUE(cv::imwrite(p.string(), img));
}

// Two series ("dry", "wet") at five pressures with analytic metrics, slices for most samples,
// one failed sample recorded in metrics.json.
fs::path make_run(const std::string& name) {
  const fs::path run = fs::temp_directory_path() / ("vp_test_report_html_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(run);
  fs::create_directories(run / "samples");
  std::string csv = "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\n";
  nlohmann::json samples = nlohmann::json::array();
  const std::vector<double> P = {0, 50, 100, 200, 300};
  for (const std::string series : {"dry", "wet"}) {
    const double k = series == "dry" ? 0.004 : 0.006;
    for (std::size_t i = 0; i < P.size(); ++i) {
      const std::string s = series + "_p" + std::to_string(static_cast<int>(P[i]));
      const double eps = std::exp(-(k * P[i] + 0.5));
      const double tau = P[i] >= 300 && series == "wet" ? INFINITY : std::pow(eps, -1.4);
      const double caf = 0.5 + 0.0015 * std::min(P[i] - 150, 0.0);
      const double cvf = P[i] >= 200 ? 0.004 : 0.0;
      auto add = [&](const std::string& stage, const std::string& metric, const std::string& phase,
                     const std::string& axis, double v, const std::string& unit) {
        csv += s + "," + series + "," + vp::format_number(P[i]) + "," + stage + "," + metric + "," + phase + "," + axis +
               "," + vp::format_number(v) + "," + unit + "\n";
      };
      add("metrics", "porosity", "", "", eps, "1");
      add("metrics", "porosity_uncertainty", "", "", 0.005, "1");
      add("metrics", "volume_fraction", "pore", "", eps, "1");
      add("metrics", "interface_area", "am|se", "", 1000 + P[i], "µm²");
      add("metrics", "contact_area_fraction", "am|se", "", caf, "1");
      add("transport", "tau", "pore", "z", tau, "1");
      add("cracks", "crack_volume_fraction", "", "", cvf, "1");
      fs::create_directories(run / "samples" / s);
      if (!(series == "wet" && i == 1)) {  // one sample without slices: the gallery shows a dash
        write_slice(run / "samples" / s / "grey_xy.png", static_cast<int>(i));
        write_slice(run / "samples" / s / "labels_xy.png", static_cast<int>(i) + 1);
        write_slice(run / "samples" / s / "current_xy.png", static_cast<int>(i) + 2);
        if (P[i] >= 200) write_slice(run / "samples" / s / "cracks_xz.png", static_cast<int>(i) + 3);
      }
      samples.push_back({{"name", s},
                         {"series", series},
                         {"pressure_MPa", P[i]},
                         {"input", {{"path", "/data/" + s + ".tif"}, {"sha256", std::string(64, 'a')}}},
                         {"spacing_um", {0.5, 0.5, 0.5}},
                         {"dims", {64, 64, 32}},
                         {"status", "ok"},
                         {"error", nullptr},
                         {"stages", {{{"stage", "segment"}, {"seconds", 1.5}, {"details", nlohmann::json::object()}}}}});
    }
  }
  // As pipeline/outputs.cpp writes them: the failed sample with status and error, and the errors list.
  samples.push_back({{"name", "dry_p400"}, {"series", "dry"}, {"pressure_MPa", 400}, {"status", "failed"},
                     {"error", "segment: no pores found"}});
  const nlohmann::json errors = {{{"sample", "dry_p400"}, {"kind", "compute"}, {"message", "segment: no pores found"}},
                                 {{"report_stage", "series"}, {"message", "disk full"}}};
  std::ofstream(run / "metrics.csv", std::ios::binary) << csv;
  const nlohmann::json mj = {{"voxpress_version", "0.1.0"},
                             {"threads", 2},
                             {"config", {{"path", "/nonexistent/demo.yaml"}, {"sha256", std::string(64, 'b')}}},
                             {"samples", samples},
                             {"errors", errors}};
  std::ofstream(run / "metrics.json", std::ios::binary) << mj.dump(2);
  std::ofstream(run / "config.yaml", std::ios::binary) << "series: [dry, wet]\nreport:\n  - stage: report\n";
  return run;
}

std::string find_program(const std::vector<std::string>& names) {
  if (const char* env = std::getenv("VP_CHROMIUM")) return env;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    for (const auto& n : names)
      if (!dir.empty() && ::access((fs::path(dir) / n).c_str(), X_OK) == 0) return (fs::path(dir) / n).string();
  return "";
}

}  // namespace

TEST(Report, HasEverySectionEmbeddedImagesAndNoExternalResources) {
  const auto run = make_run("sections");
  ReportOptions o;
  o.title = "Test <report>";
  const auto out = write_report(run, o);
  ASSERT_TRUE(fs::exists(run / "report.html"));
  const auto html = slurp(run / "report.html");
  for (const char* id : {"summary", "plots", "fits", "gallery", "tables", "settings", "provenance", "files"})
    EXPECT_NE(html.find(std::string("<section id=\"") + id + "\">"), std::string::npos) << id;
  EXPECT_NE(html.find("Test &lt;report&gt;"), std::string::npos);  // escaped title
  // No external resources: every src is a data URI, no http(s) anywhere in src/href.
  EXPECT_EQ(count(html, "src=\"http"), 0u);
  EXPECT_EQ(count(html, "href=\"http"), 0u);
  EXPECT_EQ(std::regex_search(html, std::regex("src=\"(?!data:image/png;base64,)")), false);
  // Gallery: 10 samples; 9 have grey, labels, current (27 slices) and 4 have a cracks slice (xz).
  EXPECT_EQ(count(html, "class=\"slice\""), 27u + 4u);
  EXPECT_NE(html.find("cracks_xz.png"), std::string::npos);
  // Summary: the failure from metrics.json.
  EXPECT_EQ(count(html, "<td class=\"error\">segment: no pores found</td>"), 1u);  // listed once though recorded twice
  EXPECT_NE(html.find("report stage series"), std::string::npos);
  EXPECT_NE(html.find("report stages)</th><td class=\"num\">2</td>"), std::string::npos);  // 2 failures
  // Fits: Heckel yield pressures 1/k for both series, knee at 150 MPa, alpha 1.4.
  EXPECT_NE(html.find(">250<"), std::string::npos);
  EXPECT_NE(html.find(">166.667<"), std::string::npos);
  EXPECT_NE(html.find(">150<"), std::string::npos);
  EXPECT_NE(html.find(">1.4<"), std::string::npos);
  // Tables with uncertainty, links to the data files, the config copy, provenance hashes.
  EXPECT_NE(html.find("± 0.005"), std::string::npos);
  for (const char* link : {"href=\"metrics.csv\"", "href=\"metrics.json\"", "href=\"series/dry.csv\"",
                           "href=\"series/wet.json\"", "href=\"fits.json\"", "href=\"series/all_series.csv\""})
    EXPECT_NE(html.find(link), std::string::npos) << link;
  EXPECT_NE(html.find("series: [dry, wet]"), std::string::npos);
  EXPECT_NE(html.find(std::string(64, 'a')), std::string::npos);
  EXPECT_TRUE(fs::exists(run / "fits.json"));
  EXPECT_TRUE(fs::exists(run / "series" / "dry.csv"));

  if (find_gnuplot().empty()) {
    EXPECT_NE(html.find("gnuplot was not found"), std::string::npos);
  } else {
    // One plot per metric column (porosity, volume_fraction, interface_area, contact_area_fraction,
    // tau, crack_volume_fraction), plus one Heckel and one Bruggeman plot (both series on each).
    EXPECT_EQ(out.plots.plots.size(), 6u + 1u + 1u) << out.plots.message;
    EXPECT_TRUE(out.plots.message.empty()) << out.plots.message;
    EXPECT_EQ(count(html, "class=\"plot\""), out.plots.plots.size());
    for (const auto& p : out.plots.plots) {
      EXPECT_GT(fs::file_size(run / p.png), 5000u) << p.png;
      const auto img = cv::imread((run / p.png).string());
      EXPECT_EQ(img.cols, 900) << p.png;
    }
  }
  if (!std::getenv("VP_KEEP_TEST_RUN")) fs::remove_all(run);
}

TEST(Report, WithoutGnuplotSaysSoAndStillRendersTables) {
  const auto run = make_run("nognuplot");
  ::setenv("VP_GNUPLOT", "", 1);
  const auto out = write_report(run, ReportOptions{});
  ::unsetenv("VP_GNUPLOT");
  EXPECT_TRUE(out.plots.plots.empty());
  const auto html = slurp(run / "report.html");
  EXPECT_NE(html.find("gnuplot was not found"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"tables\">"), std::string::npos);
  EXPECT_NE(html.find("interface_area|am|se|"), std::string::npos);
  EXPECT_EQ(count(html, "class=\"plot\""), 0u);
  fs::remove_all(run);
}

TEST(Report, RunWhereEverySampleFailedStillGetsAReport) {
  const fs::path run = fs::temp_directory_path() / ("vp_test_report_html_failed_" + std::to_string(::getpid()));
  fs::remove_all(run);
  fs::create_directories(run);
  std::ofstream(run / "metrics.csv") << "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\n";
  const nlohmann::json mj = {{"samples", {{{"name", "p1"}, {"status", "failed"}, {"error", "p1.tif: truncated"}}}},
                             {"errors", {{{"sample", "p1"}, {"message", "p1.tif: truncated"}}}}};
  std::ofstream(run / "metrics.json") << mj.dump();
  const auto out = write_report(run, ReportOptions{});
  EXPECT_TRUE(out.plots.plots.empty());
  const auto html = slurp(run / "report.html");
  EXPECT_EQ(count(html, "<td class=\"error\">p1.tif: truncated</td>"), 1u);
  EXPECT_NE(html.find("<section id=\"files\">"), std::string::npos);
  fs::remove_all(run);
}

TEST(Report, RendersInHeadlessChromiumWithEveryImageLoaded) {
  const std::string chromium = find_program({"chromium", "chromium-browser", "google-chrome"});
  if (chromium.empty()) GTEST_SKIP() << "headless Chromium is not installed (apt-get install chromium); render check skipped";
  const auto run = make_run("chromium");
  write_report(run, ReportOptions{});
  const fs::path profile = run / "chromium-profile";
  const fs::path shot = fs::absolute(run / "screenshot.png");
  const std::string flags = "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
                            "--disable-background-networking --disable-component-update --disable-sync "
                            "--enable-logging=stderr --v=0 --user-data-dir=\"" + profile.string() + "\" --window-size=1280,900 ";
  const std::string url = "file://" + fs::absolute(run / "report.html").string();
  const std::string shot_cmd = "timeout 120 \"" + chromium + "\" " + flags + "--screenshot=\"" + shot.string() + "\" \"" +
                               url + "\" >\"" + (run / "shot.out").string() + "\" 2>\"" + (run / "shot.err").string() + "\"";
  ASSERT_EQ(std::system(shot_cmd.c_str()), 0) << slurp(run / "shot.err");
  ASSERT_TRUE(fs::exists(shot)) << "no screenshot; chromium said:\n" << slurp(run / "shot.err");
  const auto img = cv::imread(shot.string());
  ASSERT_FALSE(img.empty());
  EXPECT_EQ(img.cols, 1280);
  cv::Scalar mean, stddev;
  cv::meanStdDev(img, mean, stddev);
  EXPECT_GT(stddev[0] + stddev[1] + stddev[2], 10.0) << "screenshot is nearly uniform";

  const std::string dom_cmd = "timeout 120 \"" + chromium + "\" " + flags + "--virtual-time-budget=10000 --dump-dom \"" +
                              url + "\" >\"" + (run / "dom.html").string() + "\" 2>\"" + (run / "dom.err").string() + "\"";
  ASSERT_EQ(std::system(dom_cmd.c_str()), 0) << slurp(run / "dom.err");
  const auto dom = slurp(run / "dom.html");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom, m, std::regex("data-images-loaded=\"(\\d+)\""))) << dom.substr(0, 2000);
  const int loaded = std::stoi(m[1]);
  ASSERT_TRUE(std::regex_search(dom, m, std::regex("data-images-broken=\"(\\d+)\"")));
  EXPECT_EQ(std::stoi(m[1]), 0);
  const auto html = slurp(run / "report.html");
  EXPECT_EQ(static_cast<std::size_t>(loaded), count(html, "<img "));
  EXPECT_GT(loaded, 0);
  // Page console messages (errors, uncaught exceptions) appear as ":CONSOLE:<line>]" lines (older
  // builds: "CONSOLE(<line>)") with --enable-logging=stderr.
  for (const auto* log : {"shot.err", "dom.err"}) {
    const auto text = slurp(run / log);
    EXPECT_FALSE(std::regex_search(text, std::regex("CONSOLE[:(]\\d+"))) << text;
  }
  if (!std::getenv("VP_KEEP_TEST_RUN")) fs::remove_all(run);
}
