// The report's figures, built from the series tables and fits: the headline panel (porosity
// with the Heckel fit, contact fraction with its knee, τ, σ_eff, cracks with their onset, the
// Heckel plot), small multiples for every other metric, the generated summary paragraph, and
// the paper figure set (`voxpress report RUN --figures DIR`).
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/report/chart.h"
#include "pipeline/report/names.h"
#include "pipeline/report/series.h"

namespace vp::report {

struct FigureInputs {
  const std::vector<SeriesTable>& tables;
  const std::vector<SeriesFits>& fits;
  const Names& names;
  const std::map<std::string, nlohmann::json>& truths;  // sample → truth JSON (may be empty)
  double crack_threshold = 0;
  std::string pressing_axis = "z";    // the τ / σ_eff axis shown in the headline
  std::vector<std::string> failures;  // "sample: message" of failed samples
};

struct HeadlinePanel {
  std::vector<Chart> charts;         // in reading order
  std::set<MetricKey> columns;       // metric columns drawn here (left out of the small multiples)
  std::vector<std::string> summary;  // sentences of the generated summary paragraph
  std::vector<std::string> caveats;  // poor fits, failed samples, missing data
};

HeadlinePanel headline_panel(const FigureInputs& in);

// One grid of small multiples: every column of one metric (per axis when one series, the phases
// as lines in their phase colours; else one panel per column, the series as lines), sharing the
// pressure axis and, when the unit agrees, the value axis.
struct MetricFamily {
  std::string metric, title, topic;
  std::vector<Chart> panels;
  bool phase_coloured = false;  // lines are phases in their gallery colours (legend given once)
};

// The families of every column not in `skip`, ordered by topic (phase fractions, interfaces and
// contact, connectivity, transport, sizes, cracks, other) then first appearance. Companion columns
// (*_uncertainty, *_ci95) are drawn with their metric, not as families.
std::vector<MetricFamily> metric_families(const FigureInputs& in, const std::set<MetricKey>& skip);

// Styles shared by the report and the paper figures.
ChartStyle headline_style();
ChartStyle panel_style();

// The charts side by side in `columns` columns as one standalone SVG (each keeps its own axes).
std::string compose_svg(const std::vector<Chart>& charts, const ChartStyle& style, int columns);

// The data behind a chart in long form: trace,kind,pressure_MPa,value,uncertainty,low,high.
std::string chart_csv(const Chart& chart);

// The paper figure set: DIR/headline.svg (the panel) and DIR/<chart id>.svg for each chart, their
// .csv, and when rsvg-convert is available (Debian librsvg2-bin; $VP_RSVG_CONVERT overrides, empty
// = none) also .pdf (vector) and .png (300 dpi). Returns the files written; `message` says what
// could not be converted. Throws InputError when DIR cannot be created.
struct FigureFiles {
  std::vector<std::filesystem::path> files;
  std::string message;
};
FigureFiles write_figures(const std::filesystem::path& dir, const HeadlinePanel& panel);

// The rsvg-convert executable ($VP_RSVG_CONVERT, else on PATH); "" when none.
std::string find_rsvg_convert();

}  // namespace vp::report
