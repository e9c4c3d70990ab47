#include "pipeline/outputs.h"


#include "core/atomic_file.h"
#include "core/utc_time.h"
#include "core/csv.h"
#include "core/json_util.h"

namespace vp {

std::string voxpress_version() { return VOXPRESS_VERSION; }

std::string utc_timestamp() { return utc_time("%Y-%m-%dT%H:%M:%SZ"); }

std::string metrics_csv(const std::vector<SampleRecord>& samples) {
  std::string out = std::string(kMetricsCsvHeader) + "\n";
  for (const auto& s : samples) {
    if (!s.ok) continue;
    const std::string prefix = csv_field(s.info.name) + "," + csv_field(s.info.series) + "," +
                               format_number(s.info.pressure_MPa) + ",";
    for (const auto& r : s.rows)
      out += prefix + csv_field(r.stage) + "," + csv_field(r.metric) + "," + csv_field(r.phase) + "," +
             csv_field(r.axis) + "," + format_number(r.value) + "," + csv_field(r.unit) + "\n";
  }
  return out;
}

namespace {

nlohmann::json sample_json(const SampleRecord& s) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& st : s.stages) stages.push_back({{"stage", st.stage}, {"seconds", st.seconds}, {"details", st.details}});
  nlohmann::json j = {
      {"name", s.info.name},
      {"series", s.info.series},
      {"pressure_MPa", json_number(s.info.pressure_MPa)},
      {"kind", s.kind},
      {"status", s.ok ? "ok" : "failed"},
      {"error", s.ok ? nlohmann::json(nullptr) : nlohmann::json(s.error)},
      {"error_kind", s.ok ? nlohmann::json(nullptr) : nlohmann::json(s.error_kind)},
      {"input", {{"path", s.info.path}, {"sha256", s.input_sha256}}},
      {"labels_input", s.info.labels_path.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json{{"path", s.info.labels_path}, {"sha256", s.labels_sha256}}},
      {"spacing_um", to_json(s.info.spacing_um)},
      {"pressing_axis", std::string(1, "xyz"[s.info.pressing_axis])},
      {"dims", to_json(s.dims)},
      {"dtype", s.dtype},
      {"roi", s.roi ? nlohmann::json{{"min", s.roi->min}, {"size", s.roi->size}} : nlohmann::json(nullptr)},
      {"stages", stages},
      {"artifacts", s.artifacts},
      {"seconds", s.seconds},
  };
  return j;
}

}  // namespace

nlohmann::json metrics_json(const RunRecord& run) {
  nlohmann::json metrics = nlohmann::json::array();
  nlohmann::json samples = nlohmann::json::array();
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& s : run.samples) {
    samples.push_back(sample_json(s));
    if (!s.ok) errors.push_back({{"sample", s.info.name}, {"kind", s.error_kind}, {"message", s.error}});
    if (!s.ok) continue;
    for (const auto& r : s.rows)
      metrics.push_back({{"sample", s.info.name}, {"series", s.info.series}, {"pressure_MPa", json_number(s.info.pressure_MPa)},
                         {"stage", r.stage}, {"metric", r.metric}, {"phase", r.phase}, {"axis", r.axis},
                         {"value", json_number(r.value)}, {"unit", r.unit}});
  }
  nlohmann::json report = nlohmann::json::array();
  for (const auto& b : run.report) {
    report.push_back({{"stage", b.stage}, {"status", b.ok ? "ok" : "failed"}, {"seconds", b.seconds},
                      {"error", b.ok ? nlohmann::json(nullptr) : nlohmann::json(b.error)}});
    if (!b.ok) errors.push_back({{"report_stage", b.stage}, {"message", b.error}});
  }
  return {
      {"voxpress_version", run.version},
      {"config", {{"path", run.config_path}, {"sha256", run.config_sha256}}},
      {"threads", run.threads},
      {"jobs", run.jobs},
      {"memory_budget_bytes", run.memory_budget_bytes},
      {"started", run.started},
      {"finished", run.finished},
      {"seconds", run.seconds},
      {"columns", {"sample", "series", "pressure_MPa", "stage", "metric", "phase", "axis", "value", "unit"}},
      {"metrics", metrics},
      {"samples", samples},
      {"report", report},
      {"errors", errors},
  };
}

void write_metrics(const std::filesystem::path& run_dir, const RunRecord& run) {
  write_text_atomically(run_dir / "metrics.csv", metrics_csv(run.samples));
  write_text_atomically(run_dir / "metrics.json", metrics_json(run).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace vp
