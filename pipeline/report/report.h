// The batch's pressure-series outputs, built from a finished run folder only:
//   RUN/series/<series>.csv|.json, RUN/series/all_series.csv, RUN/fits.json  (write_series_outputs)
//   + the self-contained RUN/report.html with its SVG figures                  (write_report)
//   + on request the paper figure set (write_report_figures, `report --figures DIR`)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/report/figures.h"
#include "pipeline/report/run_folder.h"
#include "pipeline/report/series.h"

namespace vp::report {

struct ReportOptions {
  std::string title = "voxpress pressure-series report";
  double crack_threshold = 0;  // crack volume fraction (1) a sample must exceed: 0 = any detected crack
  bool plots = true;           // draw the figures (SVG) in the report
};

struct SeriesOutputs {
  RunFolder run;
  std::vector<SeriesTable> tables;
  std::vector<SeriesFits> fits;
  std::vector<std::string> warnings;
  std::vector<std::filesystem::path> files;  // relative to the run folder
};

// Reads the run folder, builds the tables and fits, writes them. Throws InputError on bad input.
SeriesOutputs write_series_outputs(const std::filesystem::path& run_dir, const ReportOptions& options);

struct ReportOutputs {
  std::filesystem::path html;                // RUN/report.html
  std::vector<std::filesystem::path> files;  // everything written, relative to the run folder
  std::size_t figures = 0;                   // charts drawn (headline + small multiples)
  std::vector<std::string> warnings;
};

// write_series_outputs, then RUN/report.html (written atomically).
ReportOutputs write_report(const std::filesystem::path& run_dir, const ReportOptions& options);

// The figure inputs of a run: phase table from RUN/config.yaml, truth files beside the inputs,
// failed samples and the pressing axis from metrics.json.
struct RunFigures {
  Names names;
  std::map<std::string, nlohmann::json> truths;
  std::vector<std::string> failures;
  std::string pressing_axis = "z";
  FigureInputs inputs(const SeriesOutputs& s, const ReportOptions& o) const {
    return {s.tables, s.fits, names, truths, o.crack_threshold, pressing_axis, failures};
  }
};
RunFigures run_figures(const SeriesOutputs& s);

// The headline panel as paper figures in DIR (see write_figures). Reads the run like write_report
// (and writes the series files as it does); throws InputError on bad input.
FigureFiles write_report_figures(const std::filesystem::path& run_dir, const std::filesystem::path& dir,
                                 const ReportOptions& options);

// The HTML text itself (slices embedded as base64 data URIs, figures as inline SVG, no external
// resources).
std::string render_report_html(const SeriesOutputs& series, const ReportOptions& options);

// RFC 4648 base64 (for data URIs).
std::string base64(const std::string& bytes);
// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace vp::report
