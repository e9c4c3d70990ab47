// The batch's pressure-series outputs, built from a finished run folder only:
//   RUN/series/<series>.csv|.json, RUN/series/all_series.csv, RUN/fits.json  (write_series_outputs)
//   + RUN/plots/*.png and the self-contained RUN/report.html                  (write_report)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/report/plots.h"
#include "pipeline/report/run_folder.h"
#include "pipeline/report/series.h"

namespace vp::report {

struct ReportOptions {
  std::string title = "voxpress pressure-series report";
  double crack_threshold = 0;      // crack volume fraction (1) a sample must exceed: 0 = any detected crack
  bool plots = true;               // draw plots with gnuplot
  std::string gnuplot;             // executable; empty = find_gnuplot()
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
  PlotSet plots;
  std::vector<std::string> warnings;
};

// write_series_outputs, the plots, then RUN/report.html (written atomically).
ReportOutputs write_report(const std::filesystem::path& run_dir, const ReportOptions& options);

// The HTML text itself (images embedded as base64 data URIs, no external resources).
std::string render_report_html(const SeriesOutputs& series, const PlotSet& plots, const ReportOptions& options);

// RFC 4648 base64 (for data URIs).
std::string base64(const std::string& bytes);
// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace vp::report
