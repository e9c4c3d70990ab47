// JSON helpers shared by every writer of results.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/metric_row.h"
#include "core/volume.h"

namespace vp {

// JSON has no inf/nan: they become null, and the producer states why in a status field.
inline nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// CSV / text form of a number: shortest round-trip decimal, "inf", "-inf" or "nan".
std::string format_number(double v);

inline nlohmann::json to_json(const Vec3& v) { return nlohmann::json::array({v[0], v[1], v[2]}); }
inline nlohmann::json to_json(const Dims& d) { return nlohmann::json::array({d.x, d.y, d.z}); }

// {"metric","phase","axis","value","unit"} (+ "stage" when set); value null when not finite.
nlohmann::json to_json(const MetricRow& row);
nlohmann::json rows_to_json(const std::vector<MetricRow>& rows);  // {"rows": [...]}

}  // namespace vp
