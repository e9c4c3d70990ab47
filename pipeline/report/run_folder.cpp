#include "pipeline/report/run_folder.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace vp::report {

namespace fs = std::filesystem;

std::vector<std::string> split_csv_line(const std::string& line, bool* unterminated_quote) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  if (unterminated_quote) *unterminated_quote = quoted;
  return fields;
}

namespace {

double parse_number(const std::string& text, const fs::path& path, int line, const char* column) {
  if (text == "inf" || text == "+inf") return std::numeric_limits<double>::infinity();
  if (text == "-inf") return -std::numeric_limits<double>::infinity();
  if (text == "nan" || text == "-nan") return std::numeric_limits<double>::quiet_NaN();
  if (!text.empty()) {
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    // strtod also takes "infinity", hex and leading blanks; only plain decimals are the contract.
    const bool plain = text.find_first_not_of("0123456789+-.eE") == std::string::npos;
    if (plain && end == text.c_str() + text.size() && errno != ERANGE) return v;
  }
  throw InputError(path.string() + ":" + std::to_string(line) + ": column " + column +
                   ": expected a decimal number, inf, -inf or nan, found '" + text + "'");
}

}  // namespace

std::vector<RunRow> read_metrics_csv(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open (expected the run's metrics.csv)");
  std::vector<RunRow> rows;
  std::string line, record;
  int line_no = 0, record_line = 0;
  bool header_seen = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (record.empty()) record_line = line_no;
    record += record.empty() ? line : "\n" + line;
    bool open_quote = false;
    auto fields = split_csv_line(record, &open_quote);
    if (open_quote) continue;  // a quoted field spans lines
    const std::string text = std::move(record);
    record.clear();
    if (!header_seen) {
      std::string header = text;
      if (header.rfind("\xEF\xBB\xBF", 0) == 0) header.erase(0, 3);  // UTF-8 BOM
      if (header != kMetricsCsvHeader)
        throw InputError(path.string() + ":1: expected the header '" + std::string(kMetricsCsvHeader) + "', found '" +
                         header + "'");
      header_seen = true;
      continue;
    }
    if (text.empty()) continue;
    if (fields.size() != 9)
      throw InputError(path.string() + ":" + std::to_string(record_line) + ": expected 9 fields (" + kMetricsCsvHeader +
                       "), found " + std::to_string(fields.size()));
    RunRow r;
    r.sample = fields[0];
    r.series = fields[1];
    r.pressure_MPa = parse_number(fields[2], path, record_line, "pressure_MPa");
    r.stage = fields[3];
    r.metric = fields[4];
    r.phase = fields[5];
    r.axis = fields[6];
    r.value = parse_number(fields[7], path, record_line, "value");
    r.unit = fields[8];
    r.line = record_line;
    if (r.sample.empty())
      throw InputError(path.string() + ":" + std::to_string(record_line) +
                       ": column sample: expected a sample name, found ''");
    if (r.metric.empty())
      throw InputError(path.string() + ":" + std::to_string(record_line) +
                       ": column metric: expected a metric name, found ''");
    if (!std::isfinite(r.pressure_MPa))
      throw InputError(path.string() + ":" + std::to_string(record_line) +
                       ": column pressure_MPa: expected a finite pressure in MPa, found '" + fields[2] + "'");
    rows.push_back(std::move(r));
  }
  if (!record.empty())
    throw InputError(path.string() + ":" + std::to_string(record_line) + ": unterminated quoted field");
  if (!header_seen)
    throw InputError(path.string() + ": empty file; expected the header '" + std::string(kMetricsCsvHeader) + "'");
  return rows;
}

nlohmann::json read_metrics_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

std::vector<nlohmann::json> sample_entries(const nlohmann::json& metrics_json) {
  std::vector<nlohmann::json> out;
  if (!metrics_json.is_object() || !metrics_json.contains("samples")) return out;
  const auto& s = metrics_json["samples"];
  if (s.is_array()) {
    for (const auto& e : s)
      if (e.is_object()) out.push_back(e);
  } else if (s.is_object()) {
    for (const auto& [name, e] : s.items()) {
      if (!e.is_object()) continue;
      auto copy = e;
      if (!copy.contains("name")) copy["name"] = name;
      out.push_back(std::move(copy));
    }
  }
  return out;
}

fs::path find_slice_png(const fs::path& run_dir, const std::string& sample, const std::string& what) {
  for (const char* plane : {"xy", "xz", "yz"}) {
    const fs::path p = run_dir / "samples" / sample / (what + "_" + plane + ".png");
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p;
  }
  return {};
}

RunFolder read_run_folder(const fs::path& run_dir) {
  RunFolder run;
  run.dir = run_dir;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec))
    throw InputError(run_dir.string() + ": not a folder (expected a finished run folder holding metrics.csv)");
  run.rows = read_metrics_csv(run_dir / "metrics.csv");
  // The dvc batch stage's rows (pairs of steps) live beside metrics.csv, in its format.
  if (fs::is_regular_file(run_dir / "dvc_metrics.csv", ec)) {
    auto dvc = read_metrics_csv(run_dir / "dvc_metrics.csv");
    run.rows.insert(run.rows.end(), dvc.begin(), dvc.end());
  }
  run.has_metrics_json = fs::is_regular_file(run_dir / "metrics.json", ec);
  run.metrics_json = read_metrics_json(run_dir / "metrics.json");
  return run;
}

}  // namespace vp::report
