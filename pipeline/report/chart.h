// A small SVG chart writer for the report: x–y charts of a metric against pressure with points,
// error bars, uncertainty bands, fitted and truth curves (dashed), reference lines, shaded
// brackets and a box of fitted parameters printed beside the plot.
//
// Written by hand rather than drawn by gnuplot so that every figure is vector, carries its
// values as hover text (SVG <title>), has its data attached for download, and the same
// drawing code (one ChartStyle) makes the on-screen report and the paper figures.
// Deterministic: the same chart gives the same bytes.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vp::report {

struct Colour {
  unsigned char r = 0, g = 0, b = 0;
  std::string hex() const;  // "#rrggbb"
};

// A trace is one thing drawn in the plot area.
struct Trace {
  enum class Kind {
    measured,  // markers joined by a thin line, error bars from `err`
    fit,       // dashed curve
    truth,     // dashed dark curve with small open markers
    band,      // filled region between lo and hi (no markers); y unused
  };
  Kind kind = Kind::measured;
  std::string name;  // legend text ("" = not in the legend)
  Colour colour;
  std::vector<double> x, y;        // x ascending for curves
  std::vector<double> err;         // measured: ± half-length of the error bar (NaN = none)
  std::vector<double> lo, hi;      // band
  std::vector<std::string> hover;  // per point (measured, truth): text shown on hover
};

// A vertical reference line (knee, onset) with an optional shaded span [span_lo, span_hi].
struct VerticalMarker {
  double x = 0;
  double span_lo = 0, span_hi = 0;  // shaded when span_hi > span_lo
  std::string label;                // short text drawn at the top of the line
  std::string hover;
  Colour colour;
};

struct HorizontalMarker {
  double y = 0;
  std::string label;
  Colour colour;
};

struct Chart {
  std::string id;  // unique in the page; file stem of downloads
  std::string title, xlabel, ylabel;
  std::vector<Trace> traces;
  std::vector<VerticalMarker> vmarkers;
  std::vector<HorizontalMarker> hmarkers;
  std::vector<std::string> notes;  // fitted parameters etc., printed in a box beside the plot
  // Axis ranges: fixed when set; otherwise from the data (x from 0 when x_from_zero, y from 0
  // when y_from_zero; y ≤ 1 when y_fraction).
  std::optional<std::pair<double, double>> x_range, y_range;
  bool x_from_zero = true;  // pressure axes start at 0
  bool y_from_zero = false;
  bool y_fraction = false;  // a fraction: the axis stays within [0, 1]
  std::string csv;          // the data behind the chart (downloadable)
};

struct ChartStyle {
  int width = 600, height = 300;  // px (SVG user units)
  int notes_width = 0;            // px reserved right of the plot for the notes box (0: no box)
  double font_px = 12;
  bool legend = true;
  bool compact = false;  // small multiples: fewer ticks, smaller markers
};

// "Nice" axis range and ticks (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi].
struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
};
Axis nice_axis(double lo, double hi, int max_ticks);

// The axis ranges the chart would use (for sharing axes across small multiples).
std::pair<double, double> data_x_range(const Chart& c);
std::pair<double, double> data_y_range(const Chart& c);

// The chart as one <svg> element. standalone: with the XML namespace and fonts declared, a valid
// .svg file on its own; otherwise for inlining in HTML (which needs neither). The root records
// the drawn ranges (data-x-min, data-x-max, data-y-min, data-y-max) for automated checks.
std::string render_svg(const Chart& c, const ChartStyle& style, bool standalone = false);

// Escapes & < > " ' for XML text and attributes.
std::string xml_escape(const std::string& text);

// Numbers for hover text and notes: `digits` significant digits, "−" for minus, "∞" for inf.
std::string human_number(double v, int digits = 4);

}  // namespace vp::report
