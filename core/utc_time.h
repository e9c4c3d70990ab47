// The current UTC time as text, for provenance and report headers.
#pragma once

#include <ctime>
#include <string>

namespace vp {

// strftime format, e.g. "%Y-%m-%dT%H:%M:%SZ" (ISO 8601, metrics.json) or "%Y-%m-%d %H:%M:%S UTC".
inline std::string utc_time(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

}  // namespace vp
