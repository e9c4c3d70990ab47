#include "core/params.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace vp {

std::string to_string(ParamType t) {
  switch (t) {
    case ParamType::number: return "a number";
    case ParamType::integer: return "an integer";
    case ParamType::boolean: return "true or false";
    case ParamType::string: return "a string";
    case ParamType::number_list: return "a number or a list of numbers";
    case ParamType::string_list: return "a string or a list of strings";
    case ParamType::map: return "a map";
  }
  return "?";
}

ParamSpec param(std::string name, ParamType type, std::string help, std::string unit, std::string default_yaml) {
  ParamSpec s;
  s.name = std::move(name);
  s.type = type;
  s.help = std::move(help);
  s.unit = std::move(unit);
  s.default_yaml = std::move(default_yaml);
  return s;
}

ParamSpec bounded(ParamSpec spec, std::optional<double> min, std::optional<double> max) {
  spec.min = min;
  spec.max = max;
  return spec;
}

ParamSpec choices(ParamSpec spec, std::vector<std::string> allowed) {
  spec.choices = std::move(allowed);
  return spec;
}

ParamSpec integer_choices(ParamSpec spec, const std::vector<long long>& allowed) {
  spec.choices.clear();
  for (long long v : allowed) spec.choices.push_back(std::to_string(v));
  return spec;
}

ParamSpec above(ParamSpec spec, double min, std::optional<double> max) {
  spec.min = min;
  spec.min_exclusive = true;
  spec.max = max;
  return spec;
}

std::string number_default(double value) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  std::string s(buf, res.ptr);
  const auto e = s.find('e');
  if (e != std::string::npos) {
    std::size_t digits = e + 1 + (s[e + 1] == '-' || s[e + 1] == '+');
    while (digits + 1 < s.size() && s[digits] == '0') s.erase(digits, 1);
    if (s[e + 1] == '+') s.erase(e + 1, 1);
  }
  return s;
}

std::string number_list_default(const std::vector<double>& values) {
  std::string s = "[";
  for (std::size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + number_default(values[i]);
  return s + "]";
}

ParamSpec required(ParamSpec spec) {
  spec.required = true;
  return spec;
}

std::string Diagnostic::format() const {
  std::string s = where.empty() ? "" : where + ": ";
  if (!key_path.empty()) s += key_path + ": ";
  return s + message;
}

std::string location(const std::string& file, const YAML::Node& node) {
  if (!node.IsDefined() || node.Mark().is_null()) return file;
  const YAML::Mark m = node.Mark();
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

void Diagnostics::error(const YAML::Node& at, const std::string& key_path, const std::string& message) {
  items_.push_back({location(file_, at), key_path, message});
}
void Diagnostics::error(const std::string& key_path, const std::string& message) {
  items_.push_back({file_, key_path, message});
}
std::string Diagnostics::format() const {
  std::string s;
  for (const auto& d : items_) s += d.format() + "\n";
  return s;
}
void Diagnostics::throw_if_any() const {
  if (!ok()) {
    std::string s = format();
    s.pop_back();
    throw InputError(s);
  }
}

namespace {

bool is_number(const YAML::Node& n, bool integer) {
  if (!n.IsScalar()) return false;
  const std::string s = n.Scalar();
  try {
    std::size_t used = 0;
    if (integer) {
      (void)std::stoll(s, &used);
    } else {
      double v = std::stod(s, &used);
      if (!std::isfinite(v)) return false;
    }
    if (used != s.size()) return false;
    // yaml-cpp must read it as well (as<double>() after this check): it refuses what stod takes
    // with leading blanks or in hex (" 0.5", "0x1p3": BadConversion escaped the validator and
    // ended in std::terminate, fuzz_config; tests/data/fuzz_config_blank_number.yaml).
    double d;
    long long i;
    return integer ? YAML::convert<long long>::decode(n, i) : YAML::convert<double>::decode(n, d);
  } catch (...) {
    return false;
  }
}

bool is_bool(const YAML::Node& n) {
  if (!n.IsScalar()) return false;
  bool b;
  return YAML::convert<bool>::decode(n, b);
}

}  // namespace

std::string closest_name(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = 3;  // suggest only within edit distance 2
  for (const auto& c : candidates) {
    std::vector<std::size_t> row(c.size() + 1);
    for (std::size_t j = 0; j <= c.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= word.size(); ++i) {
      std::size_t diag = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= c.size(); ++j) {
        std::size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (word[i - 1] != c[j - 1])});
        diag = up;
      }
    }
    if (row[c.size()] < best_d) best_d = row[c.size()], best = c;
  }
  return best;
}

Params::Params(YAML::Node node, std::vector<ParamSpec> specs, std::string file, std::string key_path)
    : node_(node), specs_(std::move(specs)), file_(std::move(file)), key_path_(std::move(key_path)) {}

Params Params::from_strings(const std::map<std::string, std::string>& values, std::vector<ParamSpec> specs,
                            std::string origin) {
  YAML::Node node(YAML::NodeType::Map);
  for (const auto& [k, v] : values) {
    try {
      node[k] = YAML::Load(v);
    } catch (const YAML::Exception&) {
      node[k] = v;
    }
  }
  return Params(node, std::move(specs), std::move(origin), "");
}

const ParamSpec* Params::spec(const std::string& key) const {
  for (const auto& s : specs_)
    if (s.name == key) return &s;
  return nullptr;
}

std::string Params::key_path(const std::string& key) const { return key_path_.empty() ? key : key_path_ + "." + key; }

std::string Params::where(const std::string& key) const {
  if (node_.IsMap() && node_[key]) return location(file_, node_[key]);
  return location(file_, node_);
}

void Params::fail(const std::string& key, const std::string& message) const {
  std::string w = where(key);
  throw InputError((w.empty() ? "" : w + ": ") + key_path(key) + ": " + message);
}

bool Params::has(const std::string& key) const { return node_.IsMap() && node_[key] && !node_[key].IsNull(); }

YAML::Node Params::value(const std::string& key) const {
  if (has(key)) return node_[key];
  const ParamSpec* s = spec(key);
  if (!s) throw std::logic_error("parameter '" + key + "' is not declared by this stage");
  if (s->default_yaml.empty()) fail(key, "required parameter is missing");
  return YAML::Load(s->default_yaml);
}

YAML::Node Params::node(const std::string& key) const {
  if (has(key)) return node_[key];
  const ParamSpec* s = spec(key);
  if (s && !s->default_yaml.empty()) return YAML::Load(s->default_yaml);
  return YAML::Node();
}

double Params::number(const std::string& key) const {
  YAML::Node n = value(key);
  if (!is_number(n, false)) fail(key, "expected a number, found '" + YAML::Dump(n) + "'");
  return n.as<double>();
}
long long Params::integer(const std::string& key) const {
  YAML::Node n = value(key);
  if (!is_number(n, true)) fail(key, "expected an integer, found '" + YAML::Dump(n) + "'");
  return n.as<long long>();
}
bool Params::boolean(const std::string& key) const {
  YAML::Node n = value(key);
  if (!is_bool(n)) fail(key, "expected true or false, found '" + YAML::Dump(n) + "'");
  return n.as<bool>();
}
std::string Params::string(const std::string& key) const {
  YAML::Node n = value(key);
  if (!n.IsScalar()) fail(key, "expected a string");
  return n.Scalar();
}
std::filesystem::path Params::path(const std::string& key) const {
  const std::filesystem::path given = string(key);
  return folder_.empty() || given.is_absolute() ? given : (folder_ / given).lexically_normal();
}
std::vector<double> Params::numbers(const std::string& key) const {
  const YAML::Node given = value(key);
  // A fresh node: assigning to `given` would overwrite the config's own node (yaml-cpp nodes are references).
  // A scalar such as "1, 2, ]" is no YAML list: an InputError naming the key, not yaml-cpp's
  // ParserException escaping (fuzz_config: std::terminate; tests/data/fuzz_config_dims_scalar.yaml).
  auto as_list = [&](const std::string& text) {
    try {
      return YAML::Load("[" + text + "]");
    } catch (const YAML::Exception&) {
      fail(key, "expected a list of numbers, found '" + text + "'");
      throw;  // fail() throws; never reached
    }
  };
  const YAML::Node n = given.IsScalar() ? as_list(given.Scalar()) : given;
  std::vector<double> out;
  if (!n.IsSequence()) fail(key, "expected a list of numbers");
  for (const auto& e : n) {
    if (!is_number(e, false)) fail(key, "expected a list of numbers, found element '" + YAML::Dump(e) + "'");
    out.push_back(e.as<double>());
  }
  return out;
}
std::vector<std::string> Params::strings(const std::string& key) const {
  YAML::Node n = value(key);
  std::vector<std::string> out;
  if (n.IsScalar()) {
    // "a,b,c" from the command line is a list too.
    std::stringstream ss(n.Scalar());
    for (std::string item; std::getline(ss, item, ',');)
      if (!item.empty()) out.push_back(item);
    return out;
  }
  if (!n.IsSequence()) fail(key, "expected a list of strings");
  for (const auto& e : n) {
    if (!e.IsScalar()) fail(key, "expected a list of strings");
    out.push_back(e.Scalar());
  }
  return out;
}

void Params::check(Diagnostics& diags) const {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    diags.error(node_, key_path_, "expected a map of parameters");
    return;
  }
  if (node_.IsMap()) {
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (key == "stage" || spec(key)) continue;
      const auto gone =
          std::find_if(removed_.begin(), removed_.end(), [&](const RemovedParam& r) { return r.name == key; });
      if (gone != removed_.end()) {
        diags.error(kv.first, key_path(key), removed_owner_ + " key '" + key + "' was removed (" + gone->why + ")");
        continue;
      }
      std::vector<std::string> names;
      for (const auto& s : specs_) names.push_back(s.name);
      const std::string best = closest_name(key, names);
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      diags.error(kv.first, key_path(key),
                  "unknown key" + (best.empty() ? "" : "; did you mean '" + best + "'?") +
                      (best.empty() ? "; known keys: " : " Known keys: ") + (known.empty() ? "(none)" : known));
    }
  }
  for (const auto& s : specs_) {
    if (!has(s.name)) {
      if (s.required) diags.error(node_, key_path(s.name), "required key is missing (" + s.help + ")");
      continue;
    }
    const YAML::Node n = node_[s.name];
    auto bad = [&](const std::string& what) { diags.error(n, key_path(s.name), what); };
    auto check_bounds = [&](const YAML::Node& e) {
      double v = e.as<double>();
      if (s.min && (v < *s.min || (s.min_exclusive && v == *s.min)))
        bad("value " + e.Scalar() + " is " + (s.min_exclusive ? "not above " : "below the minimum ") +
            YAML::Dump(YAML::Node(*s.min)));
      if (s.max && (v > *s.max || (s.max_exclusive && v == *s.max)))
        bad("value " + e.Scalar() + " is " + (s.max_exclusive ? "not below " : "above the maximum ") +
            YAML::Dump(YAML::Node(*s.max)));
    };
    auto check_choice = [&](const std::string& v) {
      if (s.choices.empty() || std::find(s.choices.begin(), s.choices.end(), v) != s.choices.end()) return;
      std::string c;
      for (const auto& x : s.choices) c += (c.empty() ? "" : ", ") + x;
      bad("'" + v + "' is not one of: " + c);
    };
    auto check_integer_choice = [&](const YAML::Node& e) {
      const long long v = e.as<long long>();
      std::string c;
      for (std::size_t i = 0; i < s.choices.size(); ++i) {
        if (std::stoll(s.choices[i]) == v) return;
        c += (i == 0 ? "" : i + 1 == s.choices.size() ? " or " : ", ") + s.choices[i];
      }
      bad("found " + e.Scalar() + "; expected " + c);
    };
    switch (s.type) {
      case ParamType::number:
      case ParamType::integer:
        if (!is_number(n, s.type == ParamType::integer))
          bad("expected " + to_string(s.type) + ", found '" + YAML::Dump(n) + "'");
        else if (s.type == ParamType::integer && !s.choices.empty()) check_integer_choice(n);
        else check_bounds(n);
        break;
      case ParamType::boolean:
        if (!is_bool(n)) bad("expected true or false, found '" + YAML::Dump(n) + "'");
        break;
      case ParamType::string:
        if (!n.IsScalar()) bad("expected a string");
        else check_choice(n.Scalar());
        break;
      case ParamType::number_list:
        if (n.IsScalar()) {
          if (!is_number(n, false)) bad("expected " + to_string(s.type));
          else check_bounds(n);
        } else if (!n.IsSequence()) {
          bad("expected " + to_string(s.type));
        } else {
          for (const auto& e : n) {
            if (!is_number(e, false)) bad("expected " + to_string(s.type) + ", found element '" + YAML::Dump(e) + "'");
            else check_bounds(e);
          }
        }
        break;
      case ParamType::string_list:
        if (n.IsScalar()) {
          for (const auto& v : strings(s.name)) check_choice(v);
        } else if (!n.IsSequence()) {
          bad("expected " + to_string(s.type));
        } else {
          for (const auto& e : n) {
            if (!e.IsScalar()) bad("expected " + to_string(s.type));
            else check_choice(e.Scalar());
          }
        }
        break;
      case ParamType::map:
        if (!n.IsMap()) bad("expected a map");
        break;
    }
  }
}

}  // namespace vp
