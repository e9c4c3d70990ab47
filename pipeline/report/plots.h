// Plots of every metric against pressure (series as separate lines, error bars where an
// uncertainty exists, fit curves overlaid), drawn by gnuplot (pngcairo) as a subprocess on
// data files written here. Without gnuplot nothing is drawn and the caller says so.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/report/series.h"

namespace vp::report {

struct Plot {
  std::string id;               // file stem, unique within the run
  std::string title;            // "tau|se|z"
  std::string caption;          // what is drawn, fits included
  std::filesystem::path png;    // relative to the run folder: plots/<id>.png
};

struct PlotSet {
  bool drawn = false;           // gnuplot ran
  std::string message;          // why not, or what failed (empty when all fine)
  std::vector<Plot> plots;      // only those whose PNG exists
};

// The gnuplot executable: $VP_GNUPLOT when set (empty or a missing file = "no gnuplot",
// which is how tests check the fallback), else "gnuplot" on PATH; "" when none.
std::string find_gnuplot();

// Writes RUN/plots/data/<id>.dat and <id>.gp, runs gnuplot, returns the PNGs that exist.
// Never throws for a failing or missing gnuplot: the message says what happened.
PlotSet draw_plots(const std::filesystem::path& run_dir, const std::vector<SeriesTable>& tables,
                   const std::vector<SeriesFits>& fits, const std::string& gnuplot);

}  // namespace vp::report
