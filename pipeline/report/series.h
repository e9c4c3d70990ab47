// Pressure-series tables: per series, every metric (metric|phase|axis) against pressure,
// and the trend fits chosen from those columns.
#pragma once

#include <compare>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/report/fits.h"
#include "pipeline/report/run_folder.h"

namespace vp::report {

// A metric's identity in outputs.
struct MetricKey {
  std::string metric, phase, axis;
  std::string label() const { return metric + "|" + phase + "|" + axis; }  // "tau|se|z"
  auto operator<=>(const MetricKey&) const = default;
};

// Rows named <metric>_uncertainty with the same phase and axis give the uncertainty
// (one standard uncertainty, same unit) of <metric>; they become that column's error bars.
// One with empty phase and axis applies to <metric>'s only column when it has exactly one
// (the rev stage writes porosity_uncertainty|| for porosity|pore|).
inline constexpr const char* kUncertaintySuffix = "_uncertainty";

struct SeriesColumn {
  MetricKey key;
  std::string unit;
  std::vector<double> value;        // per pressure; NaN where missing (n == 0) or computed NaN
  std::vector<double> uncertainty;  // per pressure; NaN where none
  std::vector<int> n;               // samples that contributed a value at this pressure
  bool has_uncertainty = false;
};

struct SeriesTable {
  std::string name;                               // the config's `series` value ("" allowed)
  std::vector<double> pressures_MPa;              // ascending, distinct
  std::vector<std::vector<std::string>> samples;  // per pressure, in metrics.csv order
  std::vector<SeriesColumn> columns;              // in order of first appearance in metrics.csv

  const SeriesColumn* find(const MetricKey& key) const;
  std::vector<const SeriesColumn*> with_metric(const std::string& metric) const;
  // The companion column of `key` named <metric><suffix> (same phase and axis; a phase-less one
  // when it is the only column of that metric), e.g. porosity_pv_ci95 beside porosity_pv.
  const SeriesColumn* companion(const MetricKey& key, const std::string& suffix) const;
  std::string file_stem() const;  // name made safe for a file name; "default" when empty
};

// Groups rows by series (order of first appearance) and pressure. Several samples at the same
// pressure (replicates): value = their mean; uncertainty = sqrt(sd² + ū²) with sd the
// replicates' sample standard deviation and ū the mean of their own uncertainties (either
// term zero when absent). A metric seen twice for one sample (two stages) keeps the first
// value; the duplicate is noted in warnings. Throws InputError naming metrics.csv:line when
// one metric|phase|axis comes with two different units.
std::vector<SeriesTable> build_series(const std::vector<RunRow>& rows, std::vector<std::string>* warnings = nullptr,
                                      const std::string& csv_name = "metrics.csv");

// Wide CSV: pressure_MPa,n_samples,samples, then per column "metric|phase|axis [unit]" and, where
// an uncertainty exists, "metric_uncertainty|phase|axis [unit]". Empty cell = not measured.
std::string series_csv(const SeriesTable& table);
// {"series", "pressures_MPa", "samples", "columns": [{metric, phase, axis, unit, values,
//  uncertainty?, n, status?}]}; non-finite values are null with status "inf"/"-inf"/"nan"/"missing".
nlohmann::json series_json(const SeriesTable& table);
// All series in one wide CSV (union of columns), rows grouped by series: side-by-side comparison.
std::string all_series_csv(const std::vector<SeriesTable>& tables);

// Metric names the fits read (the contract of metrics.csv; see docs/report.md).
inline constexpr const char* kPorosityMetric = "porosity";
inline constexpr const char* kPorosityPvMetric = "porosity_pv";  // from the grey (segment auto)
inline constexpr const char* kCi95Suffix = "_ci95";              // a 95 % half-width companion
inline constexpr const char* kVolumeFractionMetric = "volume_fraction";
inline constexpr const char* kVolumeFractionPvMetric = "volume_fraction_pv";  // per phase, from the grey
inline constexpr const char* kContactAreaMetric = "contact_area_fraction";
inline constexpr const char* kTauMetric = "tau";
inline constexpr const char* kCrackFractionMetric = "crack_volume_fraction";

struct HeckelResult {
  MetricKey porosity;
  HeckelFit fit;
};
struct KneeResult {
  MetricKey column;
  KneeFit fit;
};
struct BruggemanResult {
  MetricKey tau, eps;
  BruggemanFit fit;
};
struct OnsetResult {
  MetricKey column;
  CrackOnset onset;
};

struct SeriesFits {
  std::string series;
  std::vector<HeckelResult> heckel;        // each porosity column (else volume_fraction|pore|)
  std::vector<KneeResult> knee;            // each contact_area_fraction column
  std::vector<BruggemanResult> bruggeman;  // each tau|P|A column against volume_fraction|P| (or porosity for pores)
  std::vector<OnsetResult> crack_onset;    // each crack_volume_fraction column
};

SeriesFits fit_series(const SeriesTable& table, double crack_threshold);
// {"series": [{"series": name, "fits": [{"model", "columns", "status", ...}]}]}
nlohmann::json fits_json(const std::vector<SeriesFits>& fits);

// File stems of the tables in order, made unique ("a_b", "a_b_2") when two names sanitise alike.
std::vector<std::string> file_stems(const std::vector<SeriesTable>& tables);

// What write_series_files wrote, relative to the run folder.
struct SeriesFiles {
  std::vector<std::filesystem::path> files;
};

// RUN/series/<stem>.csv and .json per series, RUN/series/all_series.csv, RUN/fits.json.
SeriesFiles write_series_files(const std::filesystem::path& run_dir, const std::vector<SeriesTable>& tables,
                               const std::vector<SeriesFits>& fits);

}  // namespace vp::report
