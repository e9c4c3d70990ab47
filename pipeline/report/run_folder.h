// Reading a finished run folder: RUN/metrics.csv (tidy long form), RUN/metrics.json
// (provenance) and the samples' slice PNGs. The report is built from these files only,
// so `voxpress report RUN_DIR` can regenerate it at any time.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/csv.h"

namespace vp::report {

// One line of metrics.csv.
struct RunRow {
  std::string sample, series;
  double pressure_MPa = 0;
  std::string stage, metric, phase, axis;
  double value = 0;
  std::string unit;
  int line = 0;  // 1-based line in metrics.csv (for messages)
};

// The exact header metrics.csv must have: vp::kMetricsCsvHeader (core/csv.h), the one the
// runner writes.

// Parses metrics.csv (RFC 4180 quoting). Throws InputError naming file:line and the column
// when the header differs, a line has the wrong number of fields, or a number does not parse
// (numbers: decimal, "inf", "-inf" or "nan").
std::vector<RunRow> read_metrics_csv(const std::filesystem::path& path);

// metrics.json, or an empty object when the file is absent (the report then says so).
// Throws InputError naming the file when it exists but is not valid JSON.
nlohmann::json read_metrics_json(const std::filesystem::path& path);

// The sample entries of metrics.json whether stored as an array of objects with "name" or as
// an object keyed by sample name; each returned entry has "name".
std::vector<nlohmann::json> sample_entries(const nlohmann::json& metrics_json);

// RUN/samples/<sample>/<what>_<plane>.png, preferring the mid-z plane xy, then xz, then yz;
// empty when none exists.
std::filesystem::path find_slice_png(const std::filesystem::path& run_dir, const std::string& sample,
                                     const std::string& what);

struct RunFolder {
  std::filesystem::path dir;
  std::vector<RunRow> rows;
  nlohmann::json metrics_json = nlohmann::json::object();
  bool has_metrics_json = false;
};

// Reads both files; throws InputError naming RUN/metrics.csv when it is missing.
RunFolder read_run_folder(const std::filesystem::path& run_dir);

// Splits one CSV record (RFC 4180 quoting) into fields; the writers' quoting is vp::csv_field
// (core/csv.h).
std::vector<std::string> split_csv_line(const std::string& line, bool* unterminated_quote = nullptr);

}  // namespace vp::report
