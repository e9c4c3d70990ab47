// One measured number in tidy long form, as it appears in metrics.csv:
// sample,series,pressure_MPa,stage,metric,phase,axis,value,unit
#pragma once

#include <string>

namespace vp {

struct MetricRow {
  std::string metric;  // "volume_fraction", "interface_area", "tau", ...
  std::string phase;   // phase name, a pair "am|se", or "" when not phase-specific
  std::string axis;    // "x", "y", "z", or "" when not directional
  double value = 0;    // inf / nan allowed: CSV writes "inf"/"nan", JSON writes null plus a status
  std::string unit;    // "1", "µm", "µm²", "µm^-1", "MPa", "s", ...
  std::string stage;   // filled in by the runner
};

}  // namespace vp
