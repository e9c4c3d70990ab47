// voxpress report RUN_DIR [--figures DIR]: regenerates the series tables, fits and report.html of
// a finished run from its files alone (metrics.csv, metrics.json, config.yaml, samples/*/ slices),
// and on request the headline panel as paper figures (SVG, PDF, 300-dpi PNG).
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/params.h"
#include "core/stage.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/report/report.h"

namespace vp {

std::vector<ParamSpec> report_stage_params();  // pipeline/stages/report_stages.cpp
report::ReportOptions report_options(const Params& params);

namespace {

namespace fs = std::filesystem;

// The `report` entry of the run's own config copy (RUN/config.yaml), so a regenerated report
// keeps the settings the batch used; defaults when there is none.
Params run_report_params(const fs::path& run_dir) {
  const fs::path cfg = run_dir / "config.yaml";
  std::error_code ec;
  if (fs::is_regular_file(cfg, ec)) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(cfg.string());
    } catch (const YAML::Exception& e) {
      throw InputError(cfg.string() + ": not valid YAML (" + e.what() + ")");
    }
    const YAML::Node list = root.IsMap() ? root["report"] : YAML::Node();
    if (list && list.IsSequence())
      for (std::size_t i = 0; i < list.size(); ++i)
        if (list[i].IsMap() && list[i]["stage"] && list[i]["stage"].as<std::string>("") == "report") {
          Params p(list[i], report_stage_params(), cfg.string(), "report[" + std::to_string(i) + "]");
          Diagnostics diags(cfg.string());
          p.check(diags);
          diags.throw_if_any();
          return p;
        }
  }
  return Params::from_strings({}, report_stage_params());
}

int report_main(const std::vector<std::string>& args) {
  CLI::App app("Regenerate the pressure-series tables, trend fits, figures and report.html of a finished run",
               "report");
  std::string run_dir, title, figures;
  std::optional<double> crack_threshold;
  bool no_plots = false;
  app.add_option("RUN_DIR", run_dir, "run folder holding metrics.csv (and metrics.json, samples/)")->required();
  app.add_option("--title", title, "report title (default: the run config's report.title, else the built-in one)");
  app.add_option("--crack-threshold", crack_threshold,
                 "crack volume fraction a sample must exceed to count as cracked, 0..1 (default: the run config's, "
                 "else 0 = any crack)");
  app.add_flag("--no-plots", no_plots, "leave the figures out of report.html (summary, tables and fits stay)");
  app.add_option("--figures", figures,
                 "also write the headline panel for a paper into this folder: headline.svg and one SVG per figure, "
                 "each as PDF and 300-dpi PNG too (rsvg-convert), with the CSV behind it");
  if (parse_cli(app, args)) return 0;

  const fs::path dir(run_dir);
  if (!fs::is_directory(dir)) throw InputError(run_dir + ": not a folder (expected a finished run folder)");
  auto options = report_options(run_report_params(dir));
  if (!title.empty()) options.title = title;
  if (crack_threshold) {
    if (!(*crack_threshold >= 0 && *crack_threshold <= 1))
      throw InputError("--crack-threshold: expected a crack volume fraction in 0..1, found " +
                       std::to_string(*crack_threshold));
    options.crack_threshold = *crack_threshold;
  }
  if (no_plots) options.plots = false;

  const auto out = report::write_report(dir, options);
  for (const auto& w : out.warnings) std::cerr << "warning: " << w << "\n";
  std::cout << "wrote " << out.html.string() << " (" << out.figures << " figures, " << out.files.size() << " files)\n";
  if (!figures.empty()) {
    const auto paper = report::write_report_figures(dir, figures, options);
    if (!paper.message.empty()) std::cerr << "warning: " << paper.message << "\n";
    std::cout << "wrote " << paper.files.size() << " figure files to " << figures << "\n";
  }
  return 0;
}

}  // namespace

Command make_report_command() {
  return {"report",
          "regenerate the pressure-series report (tables, fits, figures, report.html) of a run folder; --figures for a "
          "paper",
          report_main};
}

}  // namespace vp
