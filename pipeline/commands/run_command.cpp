// voxpress run CONFIG [--out DIR] [--jobs N] [--only SAMPLE...] [--max-memory BYTES|4G] [--resume] [--force] [--quiet]
#include <iostream>

#include "core/stage.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/runner.h"

namespace vp {

namespace {

int run_main(const std::vector<std::string>& args) {
  CLI::App app("Validate the config, run every sample's stages, then the report stages", "run");
  std::string config_path, out_dir, max_memory;
  RunOptions options;
  bool quiet = false;
  app.add_option("CONFIG", config_path, "YAML batch configuration")->required();
  app.add_option("--out", out_dir, "run folder (default: the config's `output`, else runs/<config name>)");
  app.add_option("--jobs", options.jobs, "samples processed at once (default: number of threads)")
      ->check(CLI::PositiveNumber);
  // One value per --only (repeat it or comma-separate), so that CONFIG may follow it.
  app.add_option("--only", options.only, "run only these samples (repeat or comma-separate)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->delimiter(',');
  app.add_option("--max-memory", max_memory,
                 "memory budget for concurrent samples: bytes or 512M, 4G (default: half the RAM)");
  app.add_flag("--resume", options.resume,
               "keep the samples of the run folder that are complete with unchanged inputs and settings; run the rest");
  app.add_flag("--force", options.force,
               "write into a non-empty folder that is not a voxpress run folder (its files are never touched)");
  app.add_flag("--quiet,-q", quiet, "no progress on stderr (run.log still gets everything)");
  if (parse_cli(app, args)) return 0;
  if (!max_memory.empty()) options.max_memory = parse_bytes(max_memory);
  options.out_dir = out_dir;

  const Config config = load_config(config_path, Registry::global());
  Progress progress(quiet);
  const RunResult result = run_batch(config, options, progress);

  const auto& samples = result.record.samples;
  std::cout << samples.size() - static_cast<std::size_t>(result.failed_samples) << " of " << samples.size()
            << " samples ok";
  if (result.failed_samples > 0) {
    std::cout << "; failed:";
    for (const auto& s : samples)
      if (!s.ok) std::cout << " " << s.info.name;
  }
  if (result.failed_report_stages > 0) std::cout << "; " << result.failed_report_stages << " report stage(s) failed";
  if (result.record.resumed) {
    std::cout << "\nresumed: " << samples.size() - result.record.redone.size() << " kept, "
              << result.record.redone.size() << " run again";
    for (std::size_t i = 0; i < result.record.redone.size(); ++i)
      std::cout << (i == 0 ? ": " : ", ") << result.record.redone[i].sample << " (" << result.record.redone[i].reason
                << ")";
  }
  std::cout << "\nresults: " << (result.run_dir / "metrics.csv").string() << "\n         "
            << (result.run_dir / "metrics.json").string() << "\n         " << (result.run_dir / "run.log").string()
            << "\n";
  return result.exit_code();
}

}  // namespace

Command make_run_command() {
  return {"run", "run a YAML batch: samples, stages, report -> metrics.csv, metrics.json", run_main};
}

}  // namespace vp
