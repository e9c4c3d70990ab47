#include "core/phase_table.h"

#include <algorithm>

#include "core/error.h"

namespace vp {

namespace {
constexpr Role kRoles[] = {Role::pore,   Role::electrolyte, Role::active, Role::binder,
                           Role::carbon, Role::crack,       Role::other};
}

std::string to_string(Role r) {
  switch (r) {
    case Role::pore: return "pore";
    case Role::electrolyte: return "electrolyte";
    case Role::active: return "active";
    case Role::binder: return "binder";
    case Role::carbon: return "carbon";
    case Role::crack: return "crack";
    case Role::other: return "other";
  }
  return "other";
}

std::optional<Role> parse_role(const std::string& name) {
  for (Role r : kRoles)
    if (to_string(r) == name) return r;
  return std::nullopt;
}

std::string role_names() {
  std::string s;
  for (Role r : kRoles) s += (s.empty() ? "" : ", ") + to_string(r);
  return s;
}

PhaseTable::PhaseTable(std::vector<Phase> phases) : phases_(std::move(phases)) {
  for (std::size_t i = 0; i < phases_.size(); ++i) {
    if (phases_[i].label < 0 || phases_[i].label > 255)
      throw InputError("phase '" + phases_[i].name + "': label " + std::to_string(phases_[i].label) +
                       " is outside 0..255");
    for (std::size_t j = 0; j < i; ++j) {
      if (phases_[i].name == phases_[j].name) throw InputError("phase name '" + phases_[i].name + "' is used twice");
      if (phases_[i].label == phases_[j].label)
        throw InputError("label " + std::to_string(phases_[i].label) + " is given to both '" + phases_[j].name +
                         "' and '" + phases_[i].name + "'");
    }
  }
}

const Phase* PhaseTable::by_name(const std::string& name) const {
  for (const auto& p : phases_)
    if (p.name == name) return &p;
  return nullptr;
}

const Phase* PhaseTable::by_label(int label) const {
  for (const auto& p : phases_)
    if (p.label == label) return &p;
  return nullptr;
}

std::vector<const Phase*> PhaseTable::by_role(Role role) const {
  std::vector<const Phase*> out;
  for (const auto& p : phases_)
    if (p.role == role) out.push_back(&p);
  return out;
}

const Phase& PhaseTable::single(Role role) const {
  auto found = by_role(role);
  if (found.size() == 1) return *found.front();
  if (found.empty()) throw InputError("no phase has role '" + to_string(role) + "' in the phase table");
  std::string names;
  for (auto* p : found) names += (names.empty() ? "" : ", ") + p->name;
  throw InputError("several phases have role '" + to_string(role) + "' (" + names + "); name the phase explicitly");
}

std::vector<const Phase*> PhaseTable::resolve_list(const std::vector<std::string>& items) const {
  std::vector<const Phase*> out;
  for (const auto& item : items) {
    if (const Phase* p = by_name(item)) {
      out.push_back(p);
    } else if (auto role = parse_role(item)) {
      const auto found = by_role(*role);
      if (found.empty()) throw InputError("no phase with role '" + item + "' in the phase table");
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(&resolve(item));  // throws InputError listing the known names
    }
  }
  return out;
}

const Phase& PhaseTable::resolve(const std::string& name_or_label) const {
  if (auto* p = by_name(name_or_label)) return *p;
  if (!name_or_label.empty() && std::all_of(name_or_label.begin(), name_or_label.end(), ::isdigit))
    if (auto* p = by_label(std::stoi(name_or_label))) return *p;
  std::string names;
  for (const auto& p : phases_) names += (names.empty() ? "" : ", ") + p.name + "=" + std::to_string(p.label);
  throw InputError("unknown phase '" + name_or_label + "'; known phases: " + (names.empty() ? "(none)" : names));
}

PhaseTable PhaseTable::unnamed(const std::vector<int>& labels_present) {
  std::vector<Phase> phases;
  for (int l : labels_present) phases.push_back({"phase" + std::to_string(l), l, Role::other});
  return PhaseTable(std::move(phases));
}

}  // namespace vp
