// Axis names and indices: x, y, z = 0, 1, 2 (x fastest, z the TIFF page). The one place that
// converts between the two; stages, commands, the config and the readers all use it.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace vp {

// Indexed by axis; also the `choices` of every axis parameter.
inline constexpr std::array<const char*, 3> kAxisNames{"x", "y", "z"};

// "x", "y" or "z"; throws InputError for an index outside 0..2.
inline std::string axis_name(int axis) {
  if (axis < 0 || axis > 2) throw InputError("axis " + std::to_string(axis) + " is not 0, 1 or 2");
  return kAxisNames[static_cast<std::size_t>(axis)];
}

// 0, 1, 2 for "x", "y", "z"; -1 for anything else.
inline int axis_index(std::string_view name) {
  for (int a = 0; a < 3; ++a)
    if (name == kAxisNames[static_cast<std::size_t>(a)]) return a;
  return -1;
}

// As axis_index, but a name that is no axis throws InputError naming `where` (a flag or key):
// "--pressing-axis 'w': expected x, y or z".
inline int parse_axis(const std::string& name, const std::string& where) {
  const int a = axis_index(name);
  if (a < 0) throw InputError(where + " '" + name + "': expected x, y or z");
  return a;
}

// The axes of a list of names, in the list's order.
inline std::vector<int> parse_axes(const std::vector<std::string>& names, const std::string& where) {
  std::vector<int> out;
  out.reserve(names.size());
  for (const auto& n : names) out.push_back(parse_axis(n, where));
  return out;
}

// The names as a parameter's `choices` list.
inline std::vector<std::string> axis_choices() { return {kAxisNames.begin(), kAxisNames.end()}; }

}  // namespace vp
