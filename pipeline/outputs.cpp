#include "pipeline/outputs.h"

#include <cmath>
#include <limits>

#include "core/atomic_file.h"
#include "core/axis.h"
#include "core/csv.h"
#include "core/json_util.h"
#include "core/utc_time.h"

namespace vp {

std::string voxpress_version() { return VOXPRESS_VERSION; }

std::string utc_timestamp() { return utc_time("%Y-%m-%dT%H:%M:%SZ"); }

std::string metrics_csv(const std::vector<SampleRecord>& samples) {
  std::string out = std::string(kMetricsCsvHeader) + "\n";
  for (const auto& s : samples) {
    if (!s.ok) continue;
    const std::string prefix =
        csv_field(s.info.name) + "," + csv_field(s.info.series) + "," + format_number(s.info.pressure_MPa) + ",";
    for (const auto& r : s.rows)
      out += prefix + csv_field(r.stage) + "," + csv_field(r.metric) + "," + csv_field(r.phase) + "," +
             csv_field(r.axis) + "," + format_number(r.value) + "," + csv_field(r.unit) + "\n";
  }
  return out;
}

namespace {

nlohmann::json worker_failure_json(const std::optional<WorkerFailure>& w) {
  if (!w) return nullptr;
  return {{"signal", w->signal.empty() ? nlohmann::json(nullptr) : nlohmann::json(w->signal)},
          {"exit_status", w->exit_status < 0 ? nlohmann::json(nullptr) : nlohmann::json(w->exit_status)},
          {"stage", w->stage},
          {"last_progress", w->last_progress}};
}

nlohmann::json sample_json(const SampleRecord& s) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& st : s.stages)
    stages.push_back({{"stage", st.stage}, {"seconds", st.seconds}, {"details", st.details}});
  nlohmann::json j = {
      {"name", s.info.name},
      {"series", s.info.series},
      {"pressure_MPa", json_number(s.info.pressure_MPa)},
      {"kind", s.kind},
      {"status", s.ok ? "ok" : "failed"},
      {"error", s.ok ? nlohmann::json(nullptr) : nlohmann::json(s.error)},
      {"error_kind", s.ok ? nlohmann::json(nullptr) : nlohmann::json(s.error_kind)},
      {"input", {{"path", s.info.path}, {"sha256", s.input_sha256}}},
      {"labels_input", s.info.labels_path.empty()
                           ? nlohmann::json(nullptr)
                           : nlohmann::json{{"path", s.info.labels_path}, {"sha256", s.labels_sha256}}},
      {"spacing_um", to_json(s.info.spacing_um)},
      {"pressing_axis", axis_name(s.info.pressing_axis)},
      {"dims", to_json(s.dims)},
      {"dtype", s.dtype},
      {"roi", s.roi ? nlohmann::json{{"min", s.roi->min}, {"size", s.roi->size}} : nlohmann::json(nullptr)},
      {"stages", stages},
      {"artifacts", s.artifacts},
      {"seconds", s.seconds},
      {"settings_sha256", s.settings_hash},
      {"reused", s.reused},
      {"memory_estimate_bytes", s.memory_estimate_bytes},
      {"peak_rss_bytes", s.peak_rss_bytes},
      {"worker", worker_failure_json(s.worker_failure)},
  };
  return j;
}

// Exact doubles: nlohmann writes the shortest round-trip decimal; JSON has no inf/nan.
nlohmann::json exact_number(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

double exact_number_from(const nlohmann::json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string t = j.get<std::string>();
  if (t == "inf") return std::numeric_limits<double>::infinity();
  if (t == "-inf") return -std::numeric_limits<double>::infinity();
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

nlohmann::json sample_record_json(const SampleRecord& s) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : s.rows) rows.push_back({r.metric, r.phase, r.axis, exact_number(r.value), r.unit, r.stage});
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& st : s.stages)
    stages.push_back({{"stage", st.stage}, {"seconds", st.seconds}, {"details", st.details}});
  return {
      {"name", s.info.name},
      {"series", s.info.series},
      {"pressure_MPa", exact_number(s.info.pressure_MPa)},
      {"path", s.info.path},
      {"labels_path", s.info.labels_path},
      {"spacing_um",
       {exact_number(s.info.spacing_um[0]), exact_number(s.info.spacing_um[1]), exact_number(s.info.spacing_um[2])}},
      {"pressing_axis", s.info.pressing_axis},
      {"kind", s.kind},
      {"ok", s.ok},
      {"error", s.error},
      {"error_kind", s.error_kind},
      {"input_sha256", s.input_sha256},
      {"labels_sha256", s.labels_sha256},
      {"dtype", s.dtype},
      {"dims", to_json(s.dims)},
      {"roi", s.roi ? nlohmann::json{{"min", s.roi->min}, {"size", s.roi->size}} : nlohmann::json(nullptr)},
      {"stages", stages},
      {"rows", rows},
      {"artifacts", s.artifacts},
      {"seconds", s.seconds},
      {"settings_sha256", s.settings_hash},
      {"memory_estimate_bytes", s.memory_estimate_bytes},
      {"peak_rss_bytes", s.peak_rss_bytes},
  };
}

SampleRecord sample_record_from_json(const nlohmann::json& j) {
  SampleRecord s;
  s.info.name = j.at("name").get<std::string>();
  s.info.series = j.at("series").get<std::string>();
  s.info.pressure_MPa = exact_number_from(j.at("pressure_MPa"));
  s.info.path = j.at("path").get<std::string>();
  s.info.labels_path = j.at("labels_path").get<std::string>();
  for (int a = 0; a < 3; ++a)
    s.info.spacing_um[static_cast<std::size_t>(a)] = exact_number_from(j.at("spacing_um").at(a));
  s.info.pressing_axis = j.at("pressing_axis").get<int>();
  s.kind = j.at("kind").get<std::string>();
  s.ok = j.at("ok").get<bool>();
  s.error = j.at("error").get<std::string>();
  s.error_kind = j.at("error_kind").get<std::string>();
  s.input_sha256 = j.at("input_sha256").get<std::string>();
  s.labels_sha256 = j.at("labels_sha256").get<std::string>();
  s.dtype = j.at("dtype").get<std::string>();
  s.dims = {j.at("dims").at(0).get<index_t>(), j.at("dims").at(1).get<index_t>(), j.at("dims").at(2).get<index_t>()};
  if (!j.at("roi").is_null()) {
    Box b;
    b.min = j.at("roi").at("min").get<std::array<index_t, 3>>();
    b.size = j.at("roi").at("size").get<std::array<index_t, 3>>();
    s.roi = b;
  }
  for (const auto& st : j.at("stages"))
    s.stages.push_back({st.at("stage").get<std::string>(), st.at("seconds").get<double>(), st.at("details")});
  for (const auto& r : j.at("rows"))
    s.rows.push_back({r.at(0).get<std::string>(), r.at(1).get<std::string>(), r.at(2).get<std::string>(),
                      exact_number_from(r.at(3)), r.at(4).get<std::string>(), r.at(5).get<std::string>()});
  s.artifacts = j.at("artifacts").get<std::vector<std::string>>();
  s.seconds = j.at("seconds").get<double>();
  s.settings_hash = j.at("settings_sha256").get<std::string>();
  s.memory_estimate_bytes = j.at("memory_estimate_bytes").get<std::uint64_t>();
  s.peak_rss_bytes = j.at("peak_rss_bytes").get<std::uint64_t>();
  return s;
}

namespace {

// null for a plain run; with --resume, which samples were taken over and which were run again, and why.
nlohmann::json resume_json(const RunRecord& run) {
  if (!run.resumed) return nullptr;
  nlohmann::json reused = nlohmann::json::array(), redone = nlohmann::json::array();
  for (const auto& s : run.samples)
    if (s.reused) reused.push_back(s.info.name);
  for (const auto& r : run.redone) redone.push_back({{"sample", r.sample}, {"reason", r.reason}});
  return {{"reused", reused}, {"redone", redone}};
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
      metrics.push_back({{"sample", s.info.name},
                         {"series", s.info.series},
                         {"pressure_MPa", json_number(s.info.pressure_MPa)},
                         {"stage", r.stage},
                         {"metric", r.metric},
                         {"phase", r.phase},
                         {"axis", r.axis},
                         {"value", json_number(r.value)},
                         {"unit", r.unit}});
  }
  nlohmann::json report = nlohmann::json::array();
  for (const auto& b : run.report) {
    report.push_back({{"stage", b.stage},
                      {"status", b.ok ? "ok" : "failed"},
                      {"seconds", b.seconds},
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
      {"resume", resume_json(run)},
  };
}

void write_metrics(const std::filesystem::path& run_dir, const RunRecord& run) {
  write_text_atomically(run_dir / "metrics.csv", metrics_csv(run.samples));
  write_text_atomically(run_dir / "metrics.json",
                        metrics_json(run).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace vp
