// The report on a synthetic run folder: the headline panel first (human titles, fits printed beside
// them, pressure axes from 0, partial-volume band and truth when present), small multiples, every
// section, embedded images, and a render in headless Chromium: headline on the first screen and
// ended within 3 screens, every image loaded, no console error, nothing fetched from the network.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
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
    for (int x = 0; x < img.cols; ++x)
      img.at<std::uint8_t>(y, x) = static_cast<std::uint8_t>((x * 5 + y * 3 + seed * 40) % 256);
  ASSERT_TRUE(cv::imwrite(p.string(), img));
}

// Two series ("dry", "wet") at five pressures with analytic metrics, slices for most samples,
// one failed sample recorded in metrics.json.
fs::path make_run(const std::string& name, bool with_pv_and_truth = false) {
  const fs::path run = fs::temp_directory_path() / ("vp_test_report_html_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(run);
  fs::create_directories(run / "samples");
  fs::create_directories(run / "inputs");
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
        csv += s + "," + series + "," + vp::format_number(P[i]) + "," + stage + "," + metric + "," + phase + "," +
               axis + "," + vp::format_number(v) + "," + unit + "\n";
      };
      add("metrics", "porosity", "", "", eps, "1");
      if (with_pv_and_truth) {  // as the segment stage writes them from a grey scan (branch i11-grey)
        add("segment", "porosity_pv", "pore", "", eps + 0.01, "1");
        add("segment", "porosity_pv_ci95", "pore", "", 0.004, "1");
        std::ofstream(run / "inputs" / (s + ".truth.json")) << nlohmann::json{
            {"volume_fraction", {{"pore", eps + 0.002}}},
            {"contact_area_fraction", caf + 0.01}}.dump();
      }
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
      samples.push_back(
          {{"name", s},
           {"series", series},
           {"pressure_MPa", P[i]},
           {"input", {{"path", (run / "inputs" / (s + ".tif")).string()}, {"sha256", std::string(64, 'a')}}},
           {"spacing_um", {0.5, 0.5, 0.5}},
           {"dims", {64, 64, 32}},
           {"status", "ok"},
           {"error", nullptr},
           {"stages", {{{"stage", "segment"}, {"seconds", 1.5}, {"details", nlohmann::json::object()}}}}});
    }
  }
  // As pipeline/outputs.cpp writes them: the failed sample with status and error, and the errors list.
  samples.push_back({{"name", "dry_p400"},
                     {"series", "dry"},
                     {"pressure_MPa", 400},
                     {"status", "failed"},
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
  std::ofstream(run / "config.yaml", std::ios::binary)
      << "phases:\n  - {name: pore, label: 0, role: pore}\n  - {name: se, label: 1, role: electrolyte}\n"
         "  - {name: am, label: 2, role: active}\nseries: [dry, wet]\nreport:\n  - stage: report\n";
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

// Text of every SVG chart title and axis label in the HTML.
std::vector<std::string> chart_labels(const std::string& html) {
  std::vector<std::string> out;
  const std::regex label("<text class=\"(chart-title|axis-label)\"[^>]*>(.*?)</text>");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), label); it != std::sregex_iterator(); ++it) {
    std::string text = std::regex_replace((*it)[2].str(), std::regex("</tspan><tspan[^>]*>"), " ");
    out.push_back(std::regex_replace(text, std::regex("<[^>]+>"), ""));
  }
  return out;
}

std::vector<double> attribute_values(const std::string& html, const std::string& name) {
  std::vector<double> out;
  const std::regex re(name + "=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back(std::stod((*it)[1].str()));
  return out;
}

// The notes box of a chart as one line of text (its wrapped lines joined by spaces).
std::string notes_text(const std::string& svg) {
  std::smatch m;
  if (!std::regex_search(svg, m, std::regex("<g class=\"notes\"[^>]*>(.*?)</g>"))) return "";
  return std::regex_replace(std::regex_replace(m[1].str(), std::regex("</text><text[^>]*>"), " "),
                            std::regex("<[^>]+>"), "");
}

// The inline SVG of the chart with this id.
std::string chart_svg(const std::string& html, const std::string& id) {
  const auto at = html.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  const auto begin = html.rfind("<svg", at), end = html.find("</svg>", at);
  return html.substr(begin, end - begin);
}

}  // namespace

TEST(Report, HeadlineFirstWithHumanLabelsFitsAndEverySection) {
  const auto run = make_run("sections");
  ReportOptions o;
  o.title = "Test <report>";
  const auto out = write_report(run, o);
  ASSERT_TRUE(fs::exists(run / "report.html"));
  const auto html = slurp(run / "report.html");
  for (const char* id :
       {"headline", "plots", "gallery", "tables", "fits", "summary", "settings", "provenance", "files"})
    EXPECT_NE(html.find(std::string("<section id=\"") + id + "\">"), std::string::npos) << id;
  EXPECT_LT(html.find("<section id=\"headline\">"), html.find("<section id=\"plots\">"));  // headline first
  EXPECT_NE(html.find("Test &lt;report&gt;"), std::string::npos);                          // escaped title
  // No external resources: every src is a data URI, no http(s) anywhere in src/href, a CSP forbidding fetches.
  EXPECT_FALSE(std::regex_search(html, std::regex("(src|href)=\"(https?:)?//")));
  EXPECT_EQ(std::regex_search(html, std::regex("src=\"(?!data:image/png;base64,)")), false);
  EXPECT_NE(html.find("Content-Security-Policy\" content=\"default-src 'none'"), std::string::npos);
  // Headline charts: human titles and axis labels, never a '|'; pressure axes from 0.
  for (const char* id : {"headline-porosity", "headline-contact", "headline-tau", "headline-cracks", "headline-heckel"})
    EXPECT_FALSE(chart_svg(html, id).empty()) << id;
  const auto labels = chart_labels(html);
  EXPECT_GT(labels.size(), 20u);
  for (const auto& l : labels) EXPECT_EQ(l.find('|'), std::string::npos) << l;
  for (const char* want :
       {"Porosity", "AM–SE contact-area fraction", "Tortuosity factor τ (z, pore)", "Pressure (MPa)"})
    EXPECT_NE(std::find(labels.begin(), labels.end(), want), labels.end()) << want;
  const auto xmin = attribute_values(html, "data-x-min");
  EXPECT_EQ(xmin.size(), out.figures);
  for (double v : xmin) EXPECT_EQ(v, 0.0);
  // Fractions stay within [0, 1].
  for (const char* id : {"headline-porosity", "headline-contact"}) {
    const auto svg = chart_svg(html, id);
    EXPECT_GE(attribute_values(svg, "data-y-min").at(0), 0.0) << id;
    EXPECT_LE(attribute_values(svg, "data-y-max").at(0), 1.0) << id;
  }
  // Fitted parameters beside the fits: Heckel k, A, 1/k, R²; the knee with its interval; crack onset bracket.
  const auto porosity = chart_svg(html, "headline-porosity");
  const auto heckel_notes = notes_text(porosity);
  // k's 95 % half-width here is the REV spread (0.005 per point) propagated: 1.96·√Σ c_i²(0.005/φ_i)².
  EXPECT_NE(heckel_notes.find("dry: Heckel ln(1/φ) = kP + A: k = 0.004 ± 0.00017 MPa⁻¹, A = 0.5 yield pressure 1/k "
                              "= 250 MPa (95 % 240–261 MPa) R² = 1.0000 (n = 5)"),
            std::string::npos)
      << heckel_notes;
  EXPECT_NE(heckel_notes.find("yield pressure 1/k = 167 MPa"), std::string::npos) << heckel_notes;
  const auto knee_notes = notes_text(chart_svg(html, "headline-contact"));
  EXPECT_NE(knee_notes.find("dry: knee P = 150 MPa (+0 / −0 MPa) 95 % interval 150–150 MPa"), std::string::npos)
      << knee_notes;  // noiseless: exact, and the interval collapses onto it
  const auto onset_notes = notes_text(chart_svg(html, "headline-cracks"));
  EXPECT_NE(onset_notes.find("dry: onset bracket 100–200 MPa interpolated crossing 100 MPa"), std::string::npos)
      << onset_notes;
  // Hover values on every point.
  EXPECT_NE(porosity.find("<title>dry: measured ± REV spread at 100 MPa: 0.40657 ± 0.005 (dry_p100)</title>"),
            std::string::npos);
  // The summary paragraph from the fits, with the failed sample as a caveat.
  EXPECT_NE(html.find("dry: Porosity fell from 60.7 % to 18.3 % between 0 and 300 MPa"), std::string::npos);
  EXPECT_NE(html.find("Heckel yield pressure 250 MPa (95 % 240–261 MPa), R² 1.000"), std::string::npos);
  EXPECT_NE(html.find("missing from these trends: dry_p400: segment: no pores found"), std::string::npos);
  EXPECT_NE(html.find("is ∞ at 300 MPa"), std::string::npos);  // wet τ not percolating
  // Small multiples: interface area (not a headline metric) with the series as lines.
  EXPECT_NE(html.find(">Interface area (AM–SE)</tspan>"), std::string::npos);
  // Downloads: SVG, PNG, CSV per figure, the CSV embedded.
  EXPECT_EQ(count(html, "data-dl=\"csv\""), out.figures);
  EXPECT_NE(html.find("<script type=\"text/csv\" id=\"csv-headline-porosity\">trace,kind,pressure_MPa"),
            std::string::npos);
  // Gallery: 10 samples; 9 have grey, labels, current (27 slices) and 4 have a cracks slice (xz); scale bars.
  EXPECT_EQ(count(html, "<div class=\"slice\">"), 27u + 4u);
  EXPECT_EQ(count(html, "<span class=\"bar-label\">10 µm</span>"), 27u + 4u);  // 32 px × 0.5 µm wide slices
  EXPECT_NE(html.find("cracks_xz.png"), std::string::npos);
  // Samples: the failure from metrics.json, listed once though recorded twice.
  EXPECT_EQ(count(html, "<td class=\"error\">segment: no pores found</td>"), 1u);
  EXPECT_NE(html.find("report stage series"), std::string::npos);
  EXPECT_NE(html.find("report stages)</th><td class=\"num\">2</td>"), std::string::npos);
  // Fit tables: Heckel yield pressures 1/k for both series, knee at 150 MPa, alpha 1.4.
  EXPECT_NE(html.find(">250<"), std::string::npos);
  EXPECT_NE(html.find(">166.667<"), std::string::npos);
  EXPECT_NE(html.find(">150<"), std::string::npos);
  EXPECT_NE(html.find(">1.4<"), std::string::npos);
  // Sortable table with units and uncertainties, links to the data files, the config copy, provenance hashes.
  EXPECT_NE(html.find("<table class=\"sortable\""), std::string::npos);
  EXPECT_NE(html.find("± 0.005"), std::string::npos);
  EXPECT_NE(html.find("<td>µm²</td>"), std::string::npos);
  for (const char* link : {"href=\"metrics.csv\"", "href=\"metrics.json\"", "href=\"series/dry.csv\"",
                           "href=\"series/wet.json\"", "href=\"fits.json\"", "href=\"series/all_series.csv\""})
    EXPECT_NE(html.find(link), std::string::npos) << link;
  EXPECT_NE(html.find("series: [dry, wet]"), std::string::npos);
  EXPECT_NE(html.find(std::string(64, 'a')), std::string::npos);
  EXPECT_TRUE(fs::exists(run / "fits.json"));
  EXPECT_TRUE(fs::exists(run / "series" / "dry.csv"));
  if (!std::getenv("VP_KEEP_TEST_RUN")) fs::remove_all(run);
}

TEST(Report, PartialVolumePorosityBandAndTruthOnTheHeadline) {
  const auto run = make_run("pv", true);
  write_report(run, ReportOptions{});
  const auto html = slurp(run / "report.html");
  const auto porosity = chart_svg(html, "headline-porosity");
  // Segmented and partial-volume porosity on one plot, the 95 % CI as a band, the truth dashed.
  EXPECT_EQ(count(porosity, "<polygon class=\"band\""), 2u);  // one per series
  EXPECT_NE(porosity.find("dry: partial volume, 95 % CI"), std::string::npos);
  EXPECT_NE(porosity.find("dry: segmented ± REV spread"), std::string::npos);
  EXPECT_NE(porosity.find("dry: truth"), std::string::npos);
  EXPECT_NE(porosity.find("stroke-dasharray=\"3 3\""), std::string::npos);
  EXPECT_NE(porosity.find("(95 % CI ± 0.004)"), std::string::npos);
  EXPECT_NE(notes_text(porosity).find("max |measured − truth| = 0.20 points"), std::string::npos)
      << notes_text(porosity);
  EXPECT_NE(notes_text(chart_svg(html, "headline-contact")).find("max |measured − truth| = 0.010"), std::string::npos);
  // The PV columns are drawn on the headline, not again as small multiples.
  EXPECT_EQ(html.find("Porosity (partial volume)</tspan>"), std::string::npos);
  // The grey-scan porosity gets its own Heckel fit with k's 95 % interval: on the headline, in the
  // Heckel plot, in the summary and in fits.json (its measurement term from porosity_pv_ci95).
  EXPECT_NE(porosity.find("dry: Heckel fit, partial volume"), std::string::npos);
  EXPECT_NE(notes_text(porosity).find("dry: Heckel, partial volume: k = "), std::string::npos) << notes_text(porosity);
  EXPECT_NE(chart_svg(html, "headline-heckel").find("dry: partial volume kP + A"), std::string::npos);
  EXPECT_NE(html.find("dry: From the grey values (partial-volume porosity) the Heckel slope is k = "),
            std::string::npos);
  const auto fits = nlohmann::json::parse(slurp(run / "fits.json"));
  int pv_fits = 0;
  for (const auto& f : fits["series"][0]["fits"])
    if (f["model"] == "heckel" && f["columns"]["porosity"] == "porosity_pv|pore|") {
      ++pv_fits;
      EXPECT_GT(f["k_ci95_measurement_per_MPa"].get<double>(), 0.0);
      EXPECT_GE(f["k_ci95_per_MPa"].get<double>(), f["k_ci95_measurement_per_MPa"].get<double>());
    }
  EXPECT_EQ(pv_fits, 1);
  if (!std::getenv("VP_KEEP_TEST_RUN")) fs::remove_all(run);
}

TEST(Report, PlotsOffKeepsSummaryTablesAndFits) {
  const auto run = make_run("noplots");
  ReportOptions o;
  o.plots = false;
  const auto out = write_report(run, o);
  EXPECT_EQ(out.figures, 0u);
  const auto html = slurp(run / "report.html");
  EXPECT_NE(html.find("Plots were switched off"), std::string::npos);
  EXPECT_NE(html.find("Heckel yield pressure 250 MPa"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"tables\">"), std::string::npos);
  EXPECT_NE(html.find("interface_area|am|se|"), std::string::npos);
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
  EXPECT_EQ(out.figures, 0u);
  const auto html = slurp(run / "report.html");
  EXPECT_EQ(count(html, "<td class=\"error\">p1.tif: truncated</td>"), 1u);
  EXPECT_NE(html.find("1 sample failed and is missing from these trends"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"files\">"), std::string::npos);
  fs::remove_all(run);
}

TEST(Report, RendersInHeadlessChromiumHeadlineFirstOfflineAndClean) {
  const std::string chromium = find_program({"chromium", "chromium-browser", "google-chrome"});
  if (chromium.empty())
    GTEST_SKIP() << "headless Chromium is not installed (apt-get install chromium); render check skipped";
  const auto run = make_run("chromium", true);
  write_report(run, ReportOptions{});
  const fs::path profile = run / "chromium-profile";
  const fs::path shot = fs::absolute(run / "screenshot.png");
  // Any host name resolves nowhere and any proxy is a dead port: a request could not succeed, and
  // the page's own check counts every resource that is not a data:/blob: URL.
  const std::string flags =
      "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--host-resolver-rules=\"MAP * ~NOTFOUND\" --proxy-server=127.0.0.1:9 "
      "--enable-logging=stderr --v=0 --user-data-dir=\"" +
      profile.string() + "\" --window-size=1280,900 ";
  const std::string url = "file://" + fs::absolute(run / "report.html").string();
  const std::string shot_cmd = "timeout 120 \"" + chromium + "\" " + flags + "--screenshot=\"" + shot.string() +
                               "\" \"" + url + "\" >\"" + (run / "shot.out").string() + "\" 2>\"" +
                               (run / "shot.err").string() + "\"";
  ASSERT_EQ(std::system(shot_cmd.c_str()), 0) << slurp(run / "shot.err");
  ASSERT_TRUE(fs::exists(shot)) << "no screenshot; chromium said:\n" << slurp(run / "shot.err");
  const auto img = cv::imread(shot.string());
  ASSERT_FALSE(img.empty());
  EXPECT_EQ(img.cols, 1280);
  cv::Scalar mean, stddev;
  cv::meanStdDev(img, mean, stddev);
  EXPECT_GT(stddev[0] + stddev[1] + stddev[2], 10.0) << "screenshot is nearly uniform";

  const std::string dom_cmd = "timeout 120 \"" + chromium + "\" " + flags +
                              "--virtual-time-budget=10000 --dump-dom \"" + url + "\" >\"" +
                              (run / "dom.html").string() + "\" 2>\"" + (run / "dom.err").string() + "\"";
  ASSERT_EQ(std::system(dom_cmd.c_str()), 0) << slurp(run / "dom.err");
  const auto dom = slurp(run / "dom.html");
  auto body_number = [&](const std::string& name) {
    std::smatch m;
    if (!std::regex_search(dom, m, std::regex("data-" + name + "=\"([-0-9.eE]+|Infinity)\""))) {
      ADD_FAILURE() << "no data-" << name << " on <body>: " << dom.substr(0, 1500);
      return std::numeric_limits<double>::quiet_NaN();
    }
    return m[1] == "Infinity" ? std::numeric_limits<double>::infinity() : std::stod(m[1]);
  };
  const auto html = slurp(run / "report.html");
  EXPECT_EQ(body_number("images-loaded"), static_cast<double>(count(html, "<img ")));
  EXPECT_GT(body_number("images-loaded"), 0);
  EXPECT_EQ(body_number("images-broken"), 0);
  EXPECT_EQ(body_number("pipe-labels"), 0);  // no title or axis label contains '|'
  EXPECT_GT(body_number("charts"), 5);
  EXPECT_EQ(body_number("min-pressure-axis"), 0);        // no pressure axis below 0
  EXPECT_LT(body_number("first-chart-top"), 900 - 250);  // the headline panel is on the first screen
  EXPECT_LE(body_number("headline-bottom"), 3 * 900);    // ≤ 3 screens to the end of the headline section
  EXPECT_EQ(body_number("remote-resources"), 0);         // nothing fetched but data: URIs
  // Page console messages (errors, uncaught exceptions, CSP violations of a blocked request) appear as
  // ":CONSOLE:<line>]" lines (older builds: "CONSOLE(<line>)") with --enable-logging=stderr.
  for (const auto* log : {"shot.err", "dom.err"}) {
    const auto text = slurp(run / log);
    EXPECT_FALSE(std::regex_search(text, std::regex("CONSOLE[:(]\\d+"))) << text;
  }
  if (!std::getenv("VP_KEEP_TEST_RUN")) fs::remove_all(run);
}
