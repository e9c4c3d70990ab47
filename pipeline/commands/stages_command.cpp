// voxpress stages [NAME] [--json]: the registered stages and their parameters (the schema of
// a config's `stages:` and `report:` entries).
#include <iostream>

#include "core/error.h"
#include "core/json_util.h"
#include "core/stage.h"
#include "pipeline/commands/cli_common.h"

namespace vp {

namespace {

nlohmann::json params_json(const std::vector<ParamSpec>& specs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : specs) {
    nlohmann::json p = {{"name", s.name},
                        {"type", to_string(s.type)},
                        {"unit", s.unit},
                        {"default", s.default_yaml.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.default_yaml)},
                        {"required", s.required},
                        {"help", s.help}};
    if (!s.choices.empty() && s.type == ParamType::integer) {
      p["choices"] = nlohmann::json::array();
      for (const auto& c : s.choices) p["choices"].push_back(std::stoll(c));
    } else if (!s.choices.empty()) {
      p["choices"] = s.choices;
    }
    if (s.min) p["min"] = *s.min;
    if (s.max) p["max"] = *s.max;
    if (s.min_exclusive) p["min_exclusive"] = true;
    if (s.max_exclusive) p["max_exclusive"] = true;
    out.push_back(p);
  }
  return out;
}

nlohmann::json metrics_json(const std::vector<MetricSpec>& specs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : specs) out.push_back({{"name", m.name}, {"unit", m.unit}, {"per", m.per}});
  return out;
}

void print_params(const std::vector<ParamSpec>& specs) {
  if (specs.empty()) {
    std::cout << "    (no parameters)\n";
    return;
  }
  for (const auto& s : specs) {
    std::cout << "    " << s.name << "  (" << to_string(s.type);
    if (!s.unit.empty()) std::cout << ", " << s.unit;
    if (s.required) std::cout << ", required";
    else if (!s.default_yaml.empty()) std::cout << ", default " << s.default_yaml;
    std::cout << ")";
    if (!s.choices.empty()) {
      std::cout << " one of:";
      for (const auto& c : s.choices) std::cout << " " << c;
    }
    if (s.min || s.max) {
      std::cout << " range " << (s.min_exclusive ? "(" : "[") << (s.min ? format_number(*s.min) : "-inf") << ", "
                << (s.max ? format_number(*s.max) : "inf") << (s.max_exclusive ? ")" : "]");
    }
    std::cout << "\n        " << s.help << "\n";
  }
}

int stages_main(const std::vector<std::string>& args) {
  CLI::App app("List the registered stages and batch stages with their parameters", "stages");
  std::string only;
  bool json = false;
  app.add_option("NAME", only, "show only this stage");
  app.add_flag("--json", json, "one JSON object {stages: [...], report_stages: [...]}");
  if (parse_cli(app, args)) return 0;
  const Registry& reg = Registry::global();
  if (!only.empty() && !reg.stage(only) && !reg.batch_stage(only))
    throw InputError("no stage named '" + only + "'; run `voxpress stages` for the list");

  nlohmann::json stages = nlohmann::json::array(), batch = nlohmann::json::array();
  for (const auto& s : reg.stages()) {
    if (!only.empty() && s->name() != only) continue;
    stages.push_back({{"name", s->name()},
                      {"summary", s->summary()},
                      {"needs", describe_data(s->needs())},
                      {"provides", s->provides() ? describe_data(s->provides()) : ""},
                      {"bytes_per_voxel", s->bytes_per_voxel()},
                      {"params", params_json(s->params())},
                      {"metrics", metrics_json(s->metrics())}});
  }
  for (const auto& s : reg.batch_stages()) {
    if (!only.empty() && s->name() != only) continue;
    batch.push_back({{"name", s->name()}, {"summary", s->summary()}, {"params", params_json(s->params())}});
  }
  if (json) {
    std::cout << nlohmann::json{{"stages", stages}, {"report_stages", batch}}.dump(2) << "\n";
    return 0;
  }
  if (!stages.empty()) std::cout << "Stages (config `stages:` entries, run per sample in order):\n";
  for (const auto& s : reg.stages()) {
    if (!only.empty() && s->name() != only) continue;
    std::cout << "\n  " << s->name() << " — " << s->summary() << "\n    needs: " << describe_data(s->needs());
    if (s->provides()) std::cout << "; provides: " << describe_data(s->provides());
    std::cout << "\n";
    print_params(s->params());
  }
  if (!batch.empty()) std::cout << "\nReport stages (config `report:` entries, run once after all samples):\n";
  for (const auto& s : reg.batch_stages()) {
    if (!only.empty() && s->name() != only) continue;
    std::cout << "\n  " << s->name() << " — " << s->summary() << "\n";
    print_params(s->params());
  }
  return 0;
}

}  // namespace

Command make_stages_command() {
  return {"stages", "list stages and their parameters (the config schema)", stages_main};
}

}  // namespace vp
