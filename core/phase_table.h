// Names and roles of the integer labels in a phase-label volume.
// Metrics ask for roles ("active", "electrolyte"), never for magic label numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vp {

enum class Role : std::uint8_t { pore, electrolyte, active, binder, carbon, crack, other };

std::string to_string(Role r);                            // "pore", "electrolyte", ...
std::optional<Role> parse_role(const std::string& name);  // nullopt when unknown
std::string role_names();                                 // "pore, electrolyte, active, binder, carbon, crack, other"

struct Phase {
  std::string name;  // short, used in outputs: "pore", "se", "am"
  int label = 0;     // 0..255
  Role role = Role::other;
};

class PhaseTable {
 public:
  PhaseTable() = default;
  explicit PhaseTable(std::vector<Phase> phases);  // throws InputError on duplicate names or labels

  const std::vector<Phase>& phases() const { return phases_; }
  bool empty() const { return phases_.empty(); }

  const Phase* by_name(const std::string& name) const;
  const Phase* by_label(int label) const;
  std::vector<const Phase*> by_role(Role role) const;

  // The one phase with this role; throws InputError naming the role when there is none or several.
  const Phase& single(Role role) const;
  // Phase by name, or by its label written as a number ("2"); throws InputError listing the known names.
  const Phase& resolve(const std::string& name_or_label) const;
  // Each item a phase name or label, or a role name meaning every phase of that role (in that
  // order); throws InputError naming a role no phase has, or listing the known names.
  std::vector<const Phase*> resolve_list(const std::vector<std::string>& items) const;

  // The default table when nothing names the labels: one "phase<N>" entry of role other per label present.
  static PhaseTable unnamed(const std::vector<int>& labels_present);

 private:
  std::vector<Phase> phases_;
};

}  // namespace vp
