// Human names for the report: titles, axis labels and units built from the run's phase table
// (RUN/config.yaml `phases:`) and the metric definitions below, so a column
// `tau|se+am|z` reads "Tortuosity factor τ (z, SE + AM)" and `contact_area_fraction|se|am|`
// reads "AM–SE contact-area fraction" for any phase names, not only the demo's.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/phase_table.h"
#include "pipeline/report/chart.h"
#include "pipeline/report/series.h"

namespace vp::report {

// The `phases:` list of RUN/config.yaml (the run's copy of its config); empty when the file or
// the list is absent or unreadable (names then fall back to the phase names of metrics.csv:
// the report must render whatever the run left behind).
PhaseTable read_phase_table(const std::filesystem::path& run_dir);

class Names {
 public:
  explicit Names(PhaseTable phases = {});

  // One phase ("se" → "SE", "pore" → "pore"), a pair ("se|am" → "AM–SE", ordered active,
  // electrolyte, other, pore), a set of conducting phases ("se+am" → "SE + AM").
  std::string phase(const std::string& phase) const;
  // The quantity without qualifiers: "Tortuosity factor τ", "Local thickness, 90th percentile".
  std::string quantity(const std::string& metric) const;
  // The full title: quantity with phase and axis ("Tortuosity factor τ (z, SE + AM)"); contact
  // metrics name their pair first ("AM–SE contact-area fraction"); porosity of the pore phase
  // is just "Porosity".
  std::string title(const MetricKey& key) const;
  // Title of a panel inside its metric's small-multiple grid: only what differs ("SE, z").
  std::string qualifier(const MetricKey& key) const;
  // Unit for people: "" for 1, "µm⁻³" for µm^-3, "°" for deg.
  static std::string unit(const std::string& unit);
  // Axis label: quantity plus unit in parentheses when it has one ("Crack area (µm²)").
  std::string axis_label(const MetricKey& key, const std::string& unit) const;

  // The colour of a phase in the label slices (filters/io/slice_png.h label_colour), so plots and
  // gallery agree; for a pair or set, its first phase in display order; neutral when unknown.
  Colour phase_colour(const std::string& phase) const;
  // The name of the phase playing a role ("pore"), "" when none or several.
  std::string phase_with_role(Role role) const;
  const PhaseTable& phases() const { return phases_; }

 private:
  std::string base_title(const MetricKey& key) const;  // title without phase/axis qualifiers
  std::vector<std::string> ordered_members(const std::string& phase, char separator) const;
  PhaseTable phases_;
};

// True when the metric is a fraction in [0, 1] by definition (its axis stays within [0, 1]).
bool is_fraction_metric(const std::string& metric, const std::string& unit);

}  // namespace vp::report
