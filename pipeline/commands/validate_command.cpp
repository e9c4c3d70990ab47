// voxpress validate CONFIG: every problem of the config, without reading any voxel.
#include <iostream>

#include "core/stage.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/config.h"

namespace vp {

namespace {

int validate_main(const std::vector<std::string>& args) {
  CLI::App app("Check a YAML batch configuration (keys, types, values, files, stages) without running it", "validate");
  std::string config_path;
  app.add_option("CONFIG", config_path, "YAML batch configuration")->required();
  if (parse_cli(app, args)) return 0;
  Diagnostics diags(config_path);
  const Config config = parse_config(config_path, Registry::global(), diags);
  const std::vector<Diagnostic> problems = all_problems(diags, config);
  if (!problems.empty()) {
    for (const auto& d : problems) std::cerr << d.format() << "\n";
    std::cerr << "invalid: " << problems.size() << (problems.size() == 1 ? " error" : " errors") << "\n";
    return 2;
  }
  std::cout << "valid: " << config.samples.size() << " samples, " << config.stages.size() << " stages\n";
  return 0;
}

}  // namespace

Command make_validate_command() {
  return {"validate", "check a YAML batch config and report every problem", validate_main};
}

}  // namespace vp
