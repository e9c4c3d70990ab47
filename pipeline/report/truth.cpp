#include "pipeline/report/truth.h"

#include <cmath>
#include <fstream>

namespace vp::report {

namespace fs = std::filesystem;

namespace {

// data/p250.tif → data/p250.truth.json; data/p250_labels.tif → data/p250.truth.json.
fs::path truth_path_for(const std::string& input) {
  fs::path p(input);
  std::string stem = p.filename().string();
  for (const char* ext : {".nii.gz", ".tiff", ".tif", ".nrrd", ".nhdr", ".mha", ".mhd", ".nii", ".h5", ".hdf5", ".raw"})
    if (stem.size() > std::string(ext).size() && stem.ends_with(ext)) {
      stem.resize(stem.size() - std::string(ext).size());
      break;
    }
  if (stem.ends_with("_labels")) stem.resize(stem.size() - 7);
  return p.parent_path() / (stem + ".truth.json");
}

std::string input_path(const nlohmann::json& entry, const char* key) {
  if (!entry.contains(key)) return "";
  const auto& in = entry[key];
  if (in.is_string()) return in.get<std::string>();
  if (in.is_object() && in.contains("path") && in["path"].is_string()) return in["path"].get<std::string>();
  return "";
}

double number_at(const nlohmann::json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return NAN;
  return j[key].get<double>();
}

}  // namespace

std::map<std::string, nlohmann::json> read_truths(const RunFolder& run) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& e : sample_entries(run.metrics_json)) {
    if (!e.contains("name") || !e["name"].is_string()) continue;
    for (const char* key : {"input", "labels_input"}) {
      const std::string in = input_path(e, key);
      if (in.empty()) continue;
      const fs::path truth = truth_path_for(in);
      std::error_code ec;
      if (!fs::is_regular_file(truth, ec)) continue;
      try {
        std::ifstream f(truth);
        out[e["name"].get<std::string>()] = nlohmann::json::parse(f);
        break;
      } catch (const std::exception&) {
        // Not a truth file we can read: the report simply has no truth line for this sample.
      }
    }
  }
  return out;
}

double truth_value(const nlohmann::json& truth, const MetricKey& key, const Names& names) {
  const std::string pore = names.phase_with_role(Role::pore).empty() ? "pore" : names.phase_with_role(Role::pore);
  const auto& vf = truth.contains("volume_fraction") ? truth["volume_fraction"] : nlohmann::json();
  if (!key.axis.empty()) return NAN;
  if (key.metric == "volume_fraction") return number_at(vf, key.phase);
  if (key.metric == "porosity" && (key.phase.empty() || key.phase == pore)) return number_at(vf, pore);
  if (key.metric == "relative_density" && key.phase.empty()) return 1 - number_at(vf, pore);
  if (key.metric == "contact_area_fraction") {
    const std::string active = names.phase_with_role(Role::active),
                      electrolyte = names.phase_with_role(Role::electrolyte);
    if (key.phase == active + "|" + electrolyte || key.phase == electrolyte + "|" + active)
      return number_at(truth, "contact_area_fraction");
    return NAN;
  }
  if (key.metric == "crack_count" && truth.contains("cracks") && truth["cracks"].is_array()) {
    double n = 0;
    for (const auto& c : truth["cracks"])
      if (key.phase.empty() || (c.contains("host") && c["host"] == key.phase)) ++n;
    return n;
  }
  if (key.metric == "interface_area" && truth.contains("interface_area_um2")) {
    const auto bar = key.phase.find('|');
    if (bar == std::string::npos) return NAN;
    const std::string a = key.phase.substr(0, bar), b = key.phase.substr(bar + 1);
    const double v = number_at(truth["interface_area_um2"], a + "|" + b);
    return std::isfinite(v) ? v : number_at(truth["interface_area_um2"], b + "|" + a);
  }
  return NAN;
}

std::vector<double> truth_series(const SeriesTable& table, const MetricKey& key,
                                 const std::map<std::string, nlohmann::json>& truths, const Names& names) {
  std::vector<double> out(table.pressures_MPa.size(), NAN);
  for (std::size_t i = 0; i < table.pressures_MPa.size(); ++i) {
    double sum = 0;
    int n = 0;
    for (const auto& sample : table.samples[i])
      if (const auto it = truths.find(sample); it != truths.end()) {
        const double v = truth_value(it->second, key, names);
        if (std::isfinite(v)) sum += v, ++n;
      }
    if (n) out[i] = sum / n;
  }
  return out;
}

}  // namespace vp::report
