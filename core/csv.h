// CSV as the run folder writes it (RFC 4180): field quoting and the metrics.csv columns, shared
// by the writer (pipeline/outputs) and the report's readers and series tables (pipeline/report).
#pragma once

#include <string>

namespace vp {

// The exact header of metrics.csv (tidy long form, one MetricRow per line).
inline constexpr const char* kMetricsCsvHeader = "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit";

// RFC 4180 quoting: a field holding , " CR or LF is quoted with its quotes doubled; any other
// field is written as is.
std::string csv_field(const std::string& text);

}  // namespace vp
