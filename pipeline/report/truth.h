// Ground truth beside the inputs: a phantom's grey file data/p250.tif comes with
// data/p250.truth.json (docs/phantoms.md). When present, the report draws the truth dashed next
// to the measurement, for the metrics whose truth has exactly the same definition.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/report/names.h"
#include "pipeline/report/run_folder.h"
#include "pipeline/report/series.h"

namespace vp::report {

// Sample name → its truth JSON, for every sample of metrics.json whose input (grey, else labels
// with the "_labels" suffix dropped) has a readable <stem>.truth.json beside it.
std::map<std::string, nlohmann::json> read_truths(const RunFolder& run);

// The truth of one metric column in one truth JSON; NaN when the truth holds no quantity of the
// same definition. Known: volume_fraction|P| and porosity (of the pore phase, cracks included),
// relative_density, contact_area_fraction (active–electrolyte pair), crack_count|host|,
// interface_area|a|b| (µm²).
double truth_value(const nlohmann::json& truth, const MetricKey& key, const Names& names);

// Per pressure of the table: the mean truth over the samples at that pressure; NaN where none.
std::vector<double> truth_series(const SeriesTable& table, const MetricKey& key,
                                 const std::map<std::string, nlohmann::json>& truths, const Names& names);

}  // namespace vp::report
