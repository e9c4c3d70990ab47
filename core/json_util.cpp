#include "core/json_util.h"

#include <charconv>

namespace vp {

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

nlohmann::json to_json(const MetricRow& row) {
  nlohmann::json j = {{"metric", row.metric},
                      {"phase", row.phase},
                      {"axis", row.axis},
                      {"value", json_number(row.value)},
                      {"unit", row.unit}};
  if (!row.stage.empty()) j["stage"] = row.stage;
  return j;
}

nlohmann::json rows_to_json(const std::vector<MetricRow>& rows) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& r : rows) arr.push_back(to_json(r));
  return {{"rows", arr}};
}

}  // namespace vp
