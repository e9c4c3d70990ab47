// Declared stage parameters, their values from YAML or CLI flags, and validation
// diagnostics that point at file:line:column and the key path.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace vp {

enum class ParamType { number, integer, boolean, string, number_list, string_list, map };
std::string to_string(ParamType t);  // "number", "integer", ... (used in "expected ..." messages)

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::number;
  std::string help;
  std::string unit;          // "µm", "MPa", "" when dimensionless
  std::string default_yaml;  // YAML text of the default; empty = no default
  bool required = false;
  std::vector<std::string> choices;  // allowed values (string, string_list; integer: compared as numbers)
  std::optional<double> min, max;    // bounds (number, integer, each list element), inclusive unless below
  bool min_exclusive = false, max_exclusive = false;  // "tol > 0" rather than "tol >= 0"
};

// Builders for the declared parameters of stages, configs and specs:
//   bounded(param("bins", ParamType::integer, "histogram bins", "", "256"), 2, 65536)
ParamSpec param(std::string name, ParamType type, std::string help, std::string unit = "",
                std::string default_yaml = "");
ParamSpec bounded(ParamSpec spec, std::optional<double> min, std::optional<double> max = std::nullopt);
ParamSpec choices(ParamSpec spec, std::vector<std::string> allowed);
// An integer parameter that takes one of a few values: integer_choices(param("connectivity", ...), {6, 18, 26}).
ParamSpec integer_choices(ParamSpec spec, const std::vector<long long>& allowed);
// Exclusive bounds: above(param("tol", ...), 0) accepts any value > 0.
ParamSpec above(ParamSpec spec, double min, std::optional<double> max = std::nullopt);
// The YAML text of a number as a default: the shortest text that reads back as the same double,
// exponents without a leading zero ("1e-6", "0.5", "1000"), so that defaults can be taken from
// the Options structs (`number_default(TransportOptions{}.tolerance)`).
std::string number_default(double value);
std::string number_list_default(const std::vector<double>& values);  // "[1, 2, 3]"
inline std::string bool_default(bool value) { return value ? "true" : "false"; }
ParamSpec required(ParamSpec spec);

// A key that is no longer taken (an option folded out of the code): naming it fails with why it went
// and where that was measured, not as an unknown key.
struct RemovedParam {
  std::string name;
  std::string why;  // one clause and the docs section: "measured, ...: docs/x.md, 'Section'"
};

struct Diagnostic {
  std::string where;           // "configs/demo.yaml:12:7" (1-based), or the file alone
  std::string key_path;        // "stages[2].method"
  std::string message;         // what was found and what was expected
  std::string format() const;  // "where: key_path: message"
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file = {}) : file_(std::move(file)) {}
  void error(const YAML::Node& at, const std::string& key_path, const std::string& message);
  void error(const std::string& key_path, const std::string& message);          // no position known
  void add(Diagnostic diagnostic) { items_.push_back(std::move(diagnostic)); }  // e.g. from another Diagnostics
  bool ok() const { return items_.empty(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  const std::string& file() const { return file_; }
  std::string format() const;  // one line per diagnostic
  void throw_if_any() const;   // InputError with format()

 private:
  std::string file_;
  std::vector<Diagnostic> items_;
};

// The closest candidate within edit distance 2, or "" (for "did you mean" hints).
std::string closest_name(const std::string& word, const std::vector<std::string>& candidates);

// "file:line:col" for a node (1-based), or the file alone when the node has no mark.
std::string location(const std::string& file, const YAML::Node& node);

// The parameters of one stage invocation. Values not given fall back to the spec's default.
class Params {
 public:
  Params() = default;
  // node: the stage's YAML map (may hold the "stage" key itself, which is ignored).
  Params(YAML::Node node, std::vector<ParamSpec> specs, std::string file = {}, std::string key_path = {});
  // From CLI flags: each value is parsed as YAML ("0.5", "[1,2]", "otsu").
  static Params from_strings(const std::map<std::string, std::string>& values, std::vector<ParamSpec> specs,
                             std::string origin = "command line");

  // Keys that `owner` ("segment stage") no longer takes: check() names them as removed, with why.
  Params& removed(std::string owner, std::vector<RemovedParam> keys) {
    removed_owner_ = std::move(owner);
    removed_ = std::move(keys);
    return *this;
  }

  // Generic checks against the specs: removed keys, unknown keys (with the closest known name),
  // types, choices, bounds, required keys.
  void check(Diagnostics& diags) const;

  bool has(const std::string& key) const;  // given explicitly
  double number(const std::string& key) const;
  long long integer(const std::string& key) const;
  bool boolean(const std::string& key) const;
  std::string string(const std::string& key) const;
  // A file named by a string parameter: relative to the config file's folder when the
  // parameters came from a config (relative_to), else as given (command line: the working directory).
  std::filesystem::path path(const std::string& key) const;
  Params& relative_to(std::filesystem::path folder) {
    folder_ = std::move(folder);
    return *this;
  }
  std::vector<double> numbers(const std::string& key) const;
  std::vector<std::string> strings(const std::string& key) const;
  YAML::Node node(const std::string& key) const;  // given value, else parsed default, else null

  // InputError "file:line:col: stages[2].phase: message".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  std::string where(const std::string& key) const;
  std::string key_path(const std::string& key) const;
  const std::vector<ParamSpec>& specs() const { return specs_; }

 private:
  const ParamSpec* spec(const std::string& key) const;
  YAML::Node value(const std::string& key) const;

  YAML::Node node_;
  std::vector<ParamSpec> specs_;
  std::string file_;
  std::string key_path_;
  std::filesystem::path folder_;  // relative paths resolve here (empty: the working directory)
  std::string removed_owner_;
  std::vector<RemovedParam> removed_;
};

}  // namespace vp
