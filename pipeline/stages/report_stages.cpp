// Batch stages over a finished run folder: `series` (tables and fits as files) and `report`
// (the same, plus RUN/report.html with its figures).
#include "core/error.h"
#include "pipeline/catalog.h"
#include "pipeline/report/report.h"

namespace vp {

// Defined in pipeline/commands/report_command.cpp.
Command make_report_command();

// The report stage's parameters; the `report` command reads the same keys from the run's config.
std::vector<ParamSpec> report_stage_params() {
  return {
      param("title", ParamType::string, "heading and <title> of report.html", "", "voxpress pressure-series report"),
      bounded(
          param("crack_threshold", ParamType::number,
                "crack volume fraction a sample must exceed to count as cracked (crack onset); 0 = any detected crack",
                "1", "0"),
          0.0, 1.0),
      param("plots", ParamType::boolean, "draw the figures (inline SVG) in report.html", "", "true"),
  };
}

report::ReportOptions report_options(const Params& params) {
  report::ReportOptions o;
  o.title = params.string("title");
  o.crack_threshold = params.number("crack_threshold");
  o.plots = params.boolean("plots");
  return o;
}

namespace {

class SeriesStage : public BatchStage {
 public:
  std::string name() const override { return "series"; }
  std::string summary() const override {
    return "per-series tables of every metric against pressure (RUN/series/*.csv|json) and trend fits (RUN/fits.json)";
  }
  std::vector<ParamSpec> params() const override {
    auto specs = report_stage_params();
    return {specs[1]};  // crack_threshold
  }
  void run(const Params& params, const std::filesystem::path& run_dir, Progress& progress) const override {
    report::ReportOptions o;
    o.crack_threshold = params.number("crack_threshold");
    const auto out = report::write_series_outputs(run_dir, o);
    for (const auto& w : out.warnings) progress.message("", name(), "warning: " + w);
    progress.message("", name(),
                     std::to_string(out.tables.size()) + " series, " + std::to_string(out.files.size()) +
                         " files under " + run_dir.string());
  }
};

class ReportStage : public BatchStage {
 public:
  std::string name() const override { return "report"; }
  std::string summary() const override {
    return "series tables, trend fits, figures and the self-contained HTML report (RUN/report.html)";
  }
  std::vector<ParamSpec> params() const override { return report_stage_params(); }
  void run(const Params& params, const std::filesystem::path& run_dir, Progress& progress) const override {
    const auto out = report::write_report(run_dir, report_options(params));
    for (const auto& w : out.warnings) progress.message("", name(), "warning: " + w);
    progress.message("", name(), std::to_string(out.figures) + " figures; wrote " + out.html.string());
  }
};

}  // namespace

void register_report(Registry& registry) {
  registry.add(make_report_command());
  registry.add(std::make_unique<SeriesStage>());
  registry.add(std::make_unique<ReportStage>());
}

}  // namespace vp
