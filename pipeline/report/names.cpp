#include "pipeline/report/names.h"

#include <algorithm>
#include <cctype>
#include <map>

#include <yaml-cpp/yaml.h>

#include "filters/io/slice_png.h"

namespace vp::report {

namespace fs = std::filesystem;

PhaseTable read_phase_table(const fs::path& run_dir) {
  std::error_code ec;
  const fs::path cfg = run_dir / "config.yaml";
  if (!fs::is_regular_file(cfg, ec)) return {};
  try {
    const YAML::Node root = YAML::LoadFile(cfg.string());
    const YAML::Node list = root.IsMap() ? root["phases"] : YAML::Node();
    if (!list || !list.IsSequence()) return {};
    std::vector<Phase> phases;
    for (const auto& n : list) {
      if (!n.IsMap() || !n["name"]) continue;
      Phase p;
      p.name = n["name"].as<std::string>();
      p.label = n["label"] ? n["label"].as<int>(-1) : -1;
      p.role = parse_role(n["role"] ? n["role"].as<std::string>("other") : "other").value_or(Role::other);
      phases.push_back(p);
    }
    return PhaseTable(std::move(phases));
  } catch (const std::exception&) {
    return {};  // the batch validated this config; a damaged copy only costs the nicer names
  }
}

namespace {

struct Definition {
  const char* quantity;
  bool fraction;  // in [0, 1] by definition
};

// The metric contract (README "Definitions") in words. Statistics suffixes (_mean, _p90, ...) and
// the _facecount / _pv variants are appended generically below.
const std::map<std::string, Definition>& definitions() {
  static const std::map<std::string, Definition> d = {
      {"porosity", {"Porosity", true}},
      {"relative_density", {"Relative density", true}},
      {"volume_fraction", {"Volume fraction", true}},
      {"volume_fraction_profile", {"Slice volume fraction", true}},
      {"contact_area_fraction", {"contact-area fraction", true}},
      {"contact_area_fraction_particle", {"contact-area fraction per particle", true}},
      {"contact_area_particles", {"Particles with contact", false}},
      {"am_se_contact_area", {"Contact area", false}},
      {"am_surface_area", {"Active-material surface area", false}},
      {"interface_area", {"Interface area", false}},
      {"specific_interface_area", {"Specific interface area", false}},
      {"specific_surface_area", {"Specific surface area", false}},
      {"tpb_density", {"Triple-phase-boundary density", false}},
      {"tpb_length", {"Triple-phase-boundary length", false}},
      {"tpb_edge_fraction", {"Triple-phase-boundary edge fraction", true}},
      {"percolating_fraction", {"Percolating fraction", true}},
      {"dead_end_fraction", {"Dead-end fraction", true}},
      {"isolated_fraction", {"Isolated fraction", true}},
      {"cluster_count", {"Clusters", false}},
      {"euler_characteristic", {"Euler characteristic χ", false}},
      {"connectivity_density", {"Connectivity density", false}},
      {"geometric_tortuosity", {"Geometric tortuosity", false}},
      {"local_thickness", {"Local thickness", false}},
      {"particle_count", {"Particles", false}},
      {"particle_count_border", {"Particles touching the border", false}},
      {"particles_separated", {"Separated particles", false}},
      {"particle_diameter", {"Particle diameter", false}},
      {"sigma_eff", {"Effective conductivity σ_eff", false}},
      {"tau", {"Tortuosity factor τ", false}},
      {"macmullin", {"MacMullin number N_M", false}},
      {"porosity_percolating", {"Percolating conducting fraction", true}},
      {"crack_count", {"Cracks", false}},
      {"crack_network_count", {"Crack networks", false}},
      {"crack_volume_fraction", {"Crack volume fraction", true}},
      {"crack_volume", {"Crack volume", false}},
      {"crack_area", {"Crack area", false}},
      {"crack_surface_density", {"Crack surface density", false}},
      {"crack_total_length", {"Crack skeleton length", false}},
      {"crack_orientation", {"Crack orientation to the axis", false}},
      {"cracked_particle_fraction", {"Cracked particle fraction", true}},
      {"cracks_per_particle", {"Cracks per particle", false}},
      {"largest_network_fraction", {"Largest crack network fraction", true}},
      {"aperture", {"Crack aperture", false}},
      {"bottleneck_diameter", {"Bottleneck diameter", false}},
      {"percolates", {"Percolates (1 yes, 0 no)", true}},
      {"strain_zz", {"Axial strain ε_zz (DVC)", false}},
      {"strain_volumetric", {"Volumetric strain (DVC)", false}},
      {"strain_zz_p90", {"Axial strain |ε_zz|, 90th percentile (DVC)", false}},
      {"particle_displacement_mean", {"Particle displacement, mean (DVC)", false}},
      {"particle_rotation_mean_deg", {"Particle rotation, mean (DVC)", false}},
  };
  return d;
}

const std::vector<std::pair<std::string, std::string>>& suffixes() {
  static const std::vector<std::pair<std::string, std::string>> s = {
      {"_facecount", ", face count"}, {"_pv", " (partial volume)"},  {"_mean", ", mean"}, {"_median", ", median"},
      {"_p10", ", 10th percentile"},  {"_p90", ", 90th percentile"}, {"_min", ", min."},  {"_max", ", max."},
      {"_std", ", std. dev."}};
  return s;
}

// Splits "local_thickness_p90" into the defined base and what the suffixes add.
std::pair<const Definition*, std::string> lookup(std::string metric) {
  std::string added;
  for (int round = 0; round < 3; ++round) {
    if (const auto it = definitions().find(metric); it != definitions().end()) return {&it->second, added};
    bool stripped = false;
    for (const auto& [suffix, words] : suffixes())
      if (metric.size() > suffix.size() && metric.ends_with(suffix)) {
        metric.resize(metric.size() - suffix.size());
        added = words + added;
        stripped = true;
        break;
      }
    if (!stripped) break;
  }
  return {nullptr, added};
}

int role_rank(Role r) {
  switch (r) {
    case Role::active: return 0;
    case Role::electrolyte: return 1;
    case Role::binder: return 2;
    case Role::carbon: return 3;
    case Role::other: return 4;
    case Role::crack: return 5;
    case Role::pore: return 6;
  }
  return 4;
}

std::string capitalised(std::string s) {
  if (!s.empty() && std::islower(static_cast<unsigned char>(s[0]))) s[0] = static_cast<char>(std::toupper(s[0]));
  return s;
}

bool is_contact_metric(const std::string& metric) { return metric.rfind("contact_area_fraction", 0) == 0; }

}  // namespace

Names::Names(PhaseTable phases) : phases_(std::move(phases)) {}

std::vector<std::string> Names::ordered_members(const std::string& phase, char separator) const {
  std::vector<std::string> members;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= phase.size(); ++i)
    if (i == phase.size() || phase[i] == separator) {
      members.push_back(phase.substr(start, i - start));
      start = i + 1;
    }
  if (separator == '|')  // pairs read active first, pore last: "AM–SE", "SE–pore"
    std::stable_sort(members.begin(), members.end(), [&](const std::string& a, const std::string& b) {
      const Phase* pa = phases_.by_name(a);
      const Phase* pb = phases_.by_name(b);
      return role_rank(pa ? pa->role : Role::other) < role_rank(pb ? pb->role : Role::other);
    });
  return members;
}

std::string Names::phase(const std::string& phase) const {
  if (phase.empty()) return "";
  const char separator = phase.find('|') != std::string::npos ? '|' : phase.find('+') != std::string::npos ? '+' : 0;
  if (separator) {
    std::string out;
    for (const auto& m : ordered_members(phase, separator))
      out += (out.empty() ? "" : separator == '|' ? "–" : " + ") + this->phase(m);
    return out;
  }
  // Short lower-case names are abbreviations (se, am, cbd): upper-case them; words stay.
  const bool abbreviation = phase.size() <= 3 && std::all_of(phase.begin(), phase.end(), [](char c) {
                              return std::islower(static_cast<unsigned char>(c));
                            });
  if (!abbreviation) return phase;
  std::string up = phase;
  for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return up;
}

std::string Names::quantity(const std::string& metric) const {
  const auto [def, added] = lookup(metric);
  if (def) return capitalised(def->quantity) + added;
  std::string words = metric;
  std::replace(words.begin(), words.end(), '_', ' ');
  return capitalised(words);
}

std::string Names::qualifier(const MetricKey& key) const {
  const std::string ph = phase(key.phase);
  if (is_contact_metric(key.metric) ||
      (key.metric.rfind("porosity", 0) == 0 && key.phase == phase_with_role(Role::pore)))
    return key.axis;  // the pair (or the pore phase) is already in the title
  if (!key.axis.empty() && !ph.empty()) return key.axis + ", " + ph;
  return key.axis.empty() ? ph : key.axis;
}

std::string Names::base_title(const MetricKey& key) const {
  if (!is_contact_metric(key.metric) || key.phase.empty()) return quantity(key.metric);
  const auto [def, added] = lookup(key.metric);
  return phase(key.phase) + " " + def->quantity + added;  // "AM–SE contact-area fraction"
}

std::string Names::title(const MetricKey& key) const {
  const std::string t = base_title(key);
  const std::string q = qualifier(key);
  return q.empty() ? t : t + " (" + q + ")";
}

std::string Names::unit(const std::string& unit) {
  if (unit == "1" || unit.empty()) return "";
  if (unit == "deg") return "°";
  std::string out;
  for (std::size_t i = 0; i < unit.size(); ++i) {
    if (unit[i] == '^') {  // µm^-3 -> µm⁻³
      static const char* sup[] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
      ++i;
      for (; i < unit.size() && (unit[i] == '-' || std::isdigit(static_cast<unsigned char>(unit[i]))); ++i)
        out += unit[i] == '-' ? "⁻" : sup[unit[i] - '0'];
      --i;
      continue;
    }
    out += unit[i];
  }
  return out;
}

std::string Names::axis_label(const MetricKey& key, const std::string& u) const {
  const std::string q = base_title(key);
  const std::string shown = unit(u);
  return shown.empty() ? q : q + " (" + shown + ")";
}

Colour Names::phase_colour(const std::string& phase) const {
  std::string first = phase;
  if (phase.find('|') != std::string::npos) first = ordered_members(phase, '|').front();
  else if (phase.find('+') != std::string::npos) first = ordered_members(phase, '+').front();
  if (const Phase* p = phases_.by_name(first); p && p->label >= 0 && p->label <= 255) {
    const Rgb c = label_colour(static_cast<std::uint8_t>(p->label));
    return {c.r, c.g, c.b};
  }
  return {31, 59, 87};
}

std::string Names::phase_with_role(Role role) const {
  const auto found = phases_.by_role(role);
  return found.size() == 1 ? found.front()->name : "";
}

bool is_fraction_metric(const std::string& metric, const std::string& unit) {
  if (unit != "1") return false;
  const auto [def, added] = lookup(metric);
  return def && def->fraction && added.find("std. dev.") == std::string::npos;
}

}  // namespace vp::report
