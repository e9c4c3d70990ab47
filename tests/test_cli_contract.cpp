// The documented contract against the declarations: every parameter table in docs/ names the
// parameters `voxpress stages --json` declares, with the same defaults. A parameter added to a
// stage's params() and not to its docs table (or a default changed in one place) fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "pipeline/report/series.h"

namespace fs = std::filesystem;
using vp::testing::run_voxpress;

namespace {

// run_voxpress writes DIR/.stdout.txt: each test process needs its own DIR, or ctest -j runs
// of these tests read each other's (or an empty) output.
fs::path own_scratch_dir() {
  const fs::path d = fs::temp_directory_path() / ("vp_test_cli_contract_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// name -> {param -> default text ("" when none)}
using Declared = std::map<std::string, std::map<std::string, std::string>>;

const Declared& declared() {
  static const Declared d = [] {
    const auto r = run_voxpress("stages --json", own_scratch_dir());
    EXPECT_EQ(r.code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    Declared out;
    for (const char* kind : {"stages", "report_stages"})
      for (const auto& s : j[kind]) {
        auto& params = out[s["name"].get<std::string>()];
        for (const auto& p : s["params"])
          params[p["name"]] = p["default"].is_null() ? "" : p["default"].get<std::string>();
      }
    return out;
  }();
  return d;
}

std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  for (std::size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '|' && line[i - 1] != '\\') {
      out.push_back(cell);
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  for (auto& c : out) {
    c.erase(0, c.find_first_not_of(' '));
    c.erase(c.find_last_not_of(' ') + 1);
  }
  return out;
}

// The first `code` span of a cell, or "".
std::string first_code(const std::string& cell) {
  const auto a = cell.find('`');
  if (a == std::string::npos) return "";
  const auto b = cell.find('`', a + 1);
  return b == std::string::npos ? "" : cell.substr(a + 1, b - a - 1);
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

// "### Stage `cracks`" / "### Pipeline stage `transport`" followed by a "| key | ... | default |"
// table: same keys, same defaults.
TEST(DocsContract, StageKeyTablesMatchTheDeclaredParameters) {
  int tables = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(VP_SOURCE_DIR) / "docs")) {
    if (entry.path().extension() != ".md") continue;
    const auto lines = lines_of(entry.path());
    std::string stage;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string& line = lines[i];
      if (line.rfind("#", 0) == 0) {
        static const std::regex heading("^#+ .*[Ss]tage `([a-z_]+)`");
        std::smatch m;
        stage = std::regex_search(line, m, heading) && declared().count(m[1]) ? m[1].str() : "";
        continue;
      }
      if (stage.empty() || line.rfind("| key |", 0) != 0) continue;
      const auto header = cells(line);
      const auto def = std::find(header.begin(), header.end(), "default") - header.begin();
      ASSERT_LT(def, static_cast<long>(header.size())) << entry.path() << ":" << i + 1;
      const auto& params = declared().at(stage);
      std::set<std::string> documented;
      for (std::size_t k = i + 2; k < lines.size() && lines[k].rfind("|", 0) == 0; ++k) {
        const auto row = cells(lines[k]);
        const std::string key = first_code(row[0]);
        const std::string where = entry.path().filename().string() + ":" + std::to_string(k + 1);
        ASSERT_TRUE(params.count(key)) << where << ": stage " << stage << " declares no parameter '" << key << "'";
        documented.insert(key);
        const std::string want = params.at(key);
        if (!want.empty()) {
          EXPECT_EQ(first_code(row[def]), want) << where << ": default of " << stage << "." << key;
        }
      }
      for (const auto& [key, _] : params)
        EXPECT_TRUE(documented.count(key))
            << entry.path().filename() << ": stage " << stage << "'s table lacks '" << key << "'";
      ++tables;
      stage.clear();
    }
  }
  EXPECT_GE(tables, 2);  // cracks.md, transport.md
}

// One-row-per-stage tables (docs/metrics.md, docs/segmentation.md): the row of a stage names each
// of its parameters as `key`.
TEST(DocsContract, StageRowsNameEveryDeclaredParameter) {
  int rows = 0;
  for (const char* file : {"metrics.md", "segmentation.md"}) {
    const auto lines = lines_of(fs::path(VP_SOURCE_DIR) / "docs" / file);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].rfind("| `", 0) != 0) continue;
      const auto row = cells(lines[i]);
      const std::string stage = first_code(row[0]);
      if (!declared().count(stage) || row.size() < 2) continue;
      std::string rest;
      for (std::size_t c = 1; c < row.size(); ++c) rest += row[c] + " ";
      for (const auto& [key, _] : declared().at(stage))
        EXPECT_NE(rest.find("`" + key + "`"), std::string::npos)
            << file << ":" << i + 1 << ": the row of stage " << stage << " does not name its parameter '" << key << "'";
      ++rows;
    }
  }
  EXPECT_GE(rows, 10);
}

// The flags `solve` generates from the transport stage: docs/transport.md's flag table gives the
// stage's defaults.
TEST(DocsContract, SolveFlagDefaultsAreTheTransportStagesDefaults) {
  const auto lines = lines_of(fs::path(VP_SOURCE_DIR) / "docs" / "transport.md");
  const auto& params = declared().at("transport");
  int checked = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("| `--", 0) != 0) continue;
    const auto row = cells(lines[i]);
    std::string key = first_code(row[0]).substr(2);
    std::replace(key.begin(), key.end(), '-', '_');
    if (key != "tol" && key != "flux_balance" && key != "max_iterations") continue;  // --periodic reads "off"
    EXPECT_EQ(first_code(row.back()), params.at(key)) << "transport.md:" << i + 1 << ": --" << key;
    ++checked;
  }
  EXPECT_EQ(checked, 3);  // --tol, --flux-balance, --max-iterations
}

namespace {

// Every metric name some stage declares (stages --json "metrics").
std::set<std::string> declared_metrics() {
  const auto r = run_voxpress("stages --json", own_scratch_dir());
  const nlohmann::json j = nlohmann::json::parse(r.out);
  std::set<std::string> out;
  for (const auto& s : j["stages"])
    for (const auto& m : s["metrics"]) out.insert(m["name"].get<std::string>());
  return out;
}

}  // namespace

// The README's metric table names only metrics a stage declares (`x_*` stands for a family).
TEST(MetricContract, ReadmeMetricTableNamesDeclaredMetrics) {
  const std::set<std::string> metrics = declared_metrics();
  const auto lines = lines_of(fs::path(VP_SOURCE_DIR) / "README.md");
  const auto start = std::find(lines.begin(), lines.end(), "| metric (`metric` column) | definition |");
  ASSERT_NE(start, lines.end());
  int names = 0;
  for (auto it = start + 2; it != lines.end() && it->rfind("|", 0) == 0; ++it) {
    const std::string first = cells(*it)[0];
    static const std::regex code("`([a-z0-9_*]+)`");
    for (std::sregex_iterator m(first.begin(), first.end(), code), end; m != end; ++m) {
      const std::string name = (*m)[1];
      if (name.front() == '_' || (name.find('_') == std::string::npos && !metrics.count(name)))
        continue;  // `_facecount`, `median`
      if (name.back() == '*') {
        const std::string prefix = name.substr(0, name.size() - 1);
        EXPECT_TRUE(
            std::any_of(metrics.begin(), metrics.end(), [&](const std::string& d) { return d.rfind(prefix, 0) == 0; }))
            << "README names metric family '" << name << "' that no stage declares";
      } else {
        EXPECT_TRUE(metrics.count(name)) << "README names metric '" << name << "' that no stage declares";
      }
      ++names;
    }
  }
  EXPECT_GE(names, 25);
}

// The metric names the report's fits read are declared by a stage.
TEST(MetricContract, ReportConstantsAreDeclaredMetrics) {
  const std::set<std::string> metrics = declared_metrics();
  for (const char* name : {vp::report::kPorosityMetric, vp::report::kVolumeFractionMetric,
                           vp::report::kContactAreaMetric, vp::report::kTauMetric, vp::report::kCrackFractionMetric})
    EXPECT_TRUE(metrics.count(name)) << name;
  // Uncertainty rows are <metric>_uncertainty of a declared metric.
  for (const auto& m : metrics) {
    const std::string suffix = vp::report::kUncertaintySuffix;
    if (m.size() > suffix.size() && m.compare(m.size() - suffix.size(), suffix.size(), suffix) == 0) {
      EXPECT_TRUE(metrics.count(m.substr(0, m.size() - suffix.size()))) << m;
    }
  }
}
