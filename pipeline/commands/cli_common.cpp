#include "pipeline/commands/cli_common.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace vp {

void add_volume_flags(CLI::App& app, VolumeArgs& a) {
  app.add_option("VOLUME", a.path, "volume file, folder of TIFF slices, or glob")->required();
  app.add_option("--format", a.format, "auto|tiff|mha|mhd|nrrd|nifti|raw|hdf5|npy")->capture_default_str();
  app.add_option("--dims", a.dims, "raw: NX,NY,NZ");
  app.add_option("--dtype", a.dtype, "raw: uint8|uint16|int16|uint32|float32");
  app.add_option("--endian", a.endian, "raw: little|big")->capture_default_str();
  app.add_option("--offset", a.offset, "raw: header bytes to skip")->capture_default_str();
  app.add_option("--dataset", a.dataset, "HDF5 dataset path, e.g. /exchange/data");
  app.add_option("--spacing", a.spacing, "voxel size in µm: S or SX,SY,SZ (overrides the file)");
}

std::vector<double> parse_numbers(const std::string& text, const std::string& flag, const std::string& expected) {
  std::vector<double> v;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    try {
      std::size_t used = 0;
      v.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw InputError(flag + " '" + text + "': '" + item + "' is not a number" +
                       (expected.empty() ? "" : "; expected " + expected));
    }
  }
  return v;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Vec3 parse_spacing(const std::string& text, const std::string& flag) {
  std::vector<double> v = parse_numbers(text, flag, "S or SX,SY,SZ in µm");
  if (v.size() == 1) v = {v[0], v[0], v[0]};
  if (v.size() != 3) throw InputError(flag + " '" + text + "': expected 1 or 3 comma-separated numbers");
  for (double s : v)
    if (!(s > 0) || !std::isfinite(s) || s > 1e6)
      throw InputError(flag + " '" + text + "': voxel sizes must be finite, positive numbers of µm (at most 1e6)");
  return {v[0], v[1], v[2]};
}

std::vector<std::pair<std::string, std::string>> parse_assignments(const std::string& text, const std::string& flag) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw InputError(flag + " '" + text + "': '" + item + "' is not NAME=VALUE");
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

ReadResult load_volume(const VolumeArgs& a) {
  ReadResult r = read_volume(read_options(a));
  if (!a.spacing.empty()) spacing_of(r.volume) = parse_spacing(a.spacing);
  return r;
}

ReadOptions read_options(const VolumeArgs& a) {
  ReadOptions o;
  o.path = a.path;
  o.format = a.format;
  if (!a.dims.empty()) {
    std::vector<index_t> d;
    std::stringstream ss(a.dims);
    for (std::string item; std::getline(ss, item, ',');) {
      try {
        d.push_back(std::stoll(item));
      } catch (const std::exception&) {
        throw InputError("--dims '" + a.dims + "': expected NX,NY,NZ");
      }
    }
    if (d.size() != 3) throw InputError("--dims '" + a.dims + "': expected NX,NY,NZ");
    o.dims = Dims{d[0], d[1], d[2]};
  }
  if (!a.dtype.empty()) o.dtype = parse_dtype(a.dtype);
  if (a.endian != "little" && a.endian != "big") throw InputError("--endian: expected little or big");
  o.big_endian = a.endian == "big";
  o.header_bytes = a.offset;
  o.dataset = a.dataset;
  return o;
}

std::vector<int> labels_present(const Volume<std::uint8_t>& labels) {
  bool seen[256] = {};
  for (index_t i = 0; i < labels.size(); ++i) seen[labels[i]] = true;
  std::vector<int> out;
  for (int l = 0; l < 256; ++l)
    if (seen[l]) out.push_back(l);
  return out;
}

Volume<std::uint32_t> to_id_volume(const AnyVolume& pv, const std::string& path, const Volume<std::uint8_t>& labels,
                                   const std::string& what) {
  if (!(dims_of(pv) == labels.dims()))
    throw InputError(path + ": dims " + to_string(dims_of(pv)) + " differ from the label volume's " +
                     to_string(labels.dims()));
  Volume<std::uint32_t> ids(labels.dims(), labels.spacing_um);
  std::visit(
      [&](const auto& v) {
        for (index_t i = 0; i < v.size(); ++i) {
          const double x = static_cast<double>(v[i]);
          if (x < 0 || x != std::floor(x))
            throw InputError(path + ": voxel " + std::to_string(i) + " holds " + std::to_string(x) +
                             "; expected a non-negative integer " + what);
          ids[i] = static_cast<std::uint32_t>(x);
        }
      },
      pv);
  return ids;
}

Volume<std::uint32_t> read_particle_ids(const std::string& path, const Volume<std::uint8_t>& labels) {
  ReadOptions ro;
  ro.path = path;
  return to_id_volume(read_volume(ro).volume, path, labels, "particle id");
}

SampleContext label_sample_context(ReadResult&& input, const std::string& labels_flag, const std::string& roles_flag) {
  Volume<std::uint8_t> voxels = to_labels_u8(std::move(input.volume));
  PhaseTable table = phase_table_from_flags(labels_flag, roles_flag, labels_present(voxels));
  SampleContext ctx;
  ctx.sample.name = voxels.provenance.path;
  ctx.sample.path = voxels.provenance.path;
  ctx.sample.spacing_um = voxels.spacing_um;
  ctx.labels = LabelVolume(std::move(voxels), std::move(table));
  return ctx;
}

PhaseTable phase_table_from_flags(const std::string& labels, const std::string& roles,
                                  const std::vector<int>& present) {
  std::vector<Phase> phases;
  if (labels.empty()) {
    phases = PhaseTable::unnamed(present).phases();
  } else {
    for (const auto& [name, value] : parse_assignments(labels, "--labels")) {
      int label = -1;
      try {
        label = std::stoi(value);
      } catch (const std::exception&) {
      }
      if (label < 0 || label > 255) throw InputError("--labels: '" + name + "=" + value + "': label must be 0..255");
      phases.push_back({name, label, parse_role(name).value_or(Role::other)});
    }
  }
  for (const auto& [name, role_text] : parse_assignments(roles.empty() ? "" : roles, "--roles")) {
    auto it = std::find_if(phases.begin(), phases.end(), [&](const Phase& p) { return p.name == name; });
    if (it == phases.end()) throw InputError("--roles: no phase named '" + name + "' (name it in --labels)");
    auto role = parse_role(role_text);
    if (!role) throw InputError("--roles: '" + role_text + "' is not a role; expected one of " + role_names());
    it->role = *role;
  }
  return PhaseTable(std::move(phases));
}

Params stage_params(const Stage& stage, const std::map<std::string, std::string>& values, const std::string& origin,
                    const PreflightContext& preflight) {
  Params params = Params::from_strings(values, stage.params(), origin);
  params.removed(stage.name() + " stage", stage.removed_params());
  Diagnostics diags(origin);
  params.check(diags);
  stage.preflight(params, preflight, diags);
  diags.throw_if_any();
  return params;
}

std::string flag_of(const std::string& param) {
  std::string flag = "--" + param;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

namespace {

const ParamSpec& spec_of(const Stage& stage, const std::vector<ParamSpec>& specs, const std::string& name) {
  const auto spec = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.name == name; });
  if (spec == specs.end()) throw std::logic_error("stage '" + stage.name() + "' declares no parameter '" + name + "'");
  return *spec;
}

// Puts a flag's text in values[name]; a list may be given bare: --crop 0,0,0,64,64,64.
std::function<void(const std::string&)> flag_setter(std::map<std::string, std::string>& values, const ParamSpec& spec) {
  const bool list = spec.type == ParamType::number_list || spec.type == ParamType::string_list;
  return [&values, name = spec.name, list](const std::string& v) {
    values[name] = list && v.rfind('[', 0) != 0 ? "[" + v + "]" : v;
  };
}

}  // namespace

void add_stage_flags(CLI::App& app, const Stage& stage, const std::vector<std::string>& names,
                     std::map<std::string, std::string>& values) {
  const std::vector<ParamSpec> specs = stage.params();
  for (const std::string& name : names) {
    const ParamSpec* spec = &spec_of(stage, specs, name);
    std::string help = spec->help;
    if (!spec->unit.empty()) help += ", " + spec->unit;
    if (spec->type == ParamType::integer && !spec->choices.empty()) {
      help += " (";
      for (std::size_t i = 0; i < spec->choices.size(); ++i)
        help += (i == 0 ? "" : i + 1 == spec->choices.size() ? " or " : ", ") + spec->choices[i];
      help += ")";
    }
    const bool bare = spec->type == ParamType::boolean && spec->default_yaml == "false";
    if (!bare && !spec->default_yaml.empty()) help += " (default " + spec->default_yaml + ")";
    if (bare)
      app.add_flag_callback(
          flag_of(name), [&values, name] { values[name] = "true"; }, help);
    else if (spec->type == ParamType::boolean)
      // On by default: `--flag false` turns it off, and a bare `--flag` (scripts written while it
      // was opt-in) still means true.
      app.add_option_function<std::string>(
             flag_of(name), [&values, name](const std::string& v) { values[name] = v.empty() ? "true" : v; }, help)
          ->expected(0, 1)
          ->type_name("true|false");
    else
      app.add_option_function<std::string>(flag_of(name), flag_setter(values, *spec), help)
          ->type_name(spec->type == ParamType::integer  ? "INT"
                      : spec->type == ParamType::number ? "NUMBER"
                                                        : "TEXT");
  }
  // Hidden: a script still giving a removed key's flag fails naming the key and why (Params::check).
  for (const RemovedParam& gone : stage.removed_params())
    app.add_option_function<std::string>(
           flag_of(gone.name),
           [&values, name = gone.name](const std::string& v) { values[name] = v.empty() ? "true" : v; }, "removed")
        ->expected(0, 1)
        ->group("");
}

void add_stage_flag_alias(CLI::App& app, const Stage& stage, const std::string& alias, const std::string& name,
                          std::map<std::string, std::string>& values) {
  const std::vector<ParamSpec> specs = stage.params();
  app.add_option_function<std::string>(alias, flag_setter(values, spec_of(stage, specs, name)),
                                       "same as " + flag_of(name))
      ->group("");  // hidden: --help lists the YAML spelling
}

void create_output_folder(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw InputError(flag + " " + dir + ": cannot create this folder (" +
                     (ec ? ec.message() : "a file of that name exists") + "); expected a writable folder");
  // Writable for real (read-only mounts, /proc, permissions): create and remove a file of our own.
  const std::string probe = (std::filesystem::path(dir) / (".vp-probe-" + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw InputError(flag + " " + dir + ": cannot write into this folder (" + std::strerror(errno) + ")");
  ::close(fd);
  ::unlink(probe.c_str());
}

void check_output_file(const std::string& path, const std::string& flag) {
  const std::filesystem::path p(path);
  if (std::filesystem::is_directory(p)) throw InputError(flag + " " + path + ": is a folder; expected a file name");
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  try {
    create_output_folder(dir, flag);
  } catch (const InputError&) {
    throw InputError(flag + " " + path + ": cannot write there (its folder " + dir + " cannot be created or written)");
  }
}

InputError with_roles_hint(const InputError& e, const PhaseTable& table, bool labels_given) {
  const std::string what = e.what();
  if (what.find("role '") == std::string::npos) return e;
  static const char* const kNames[] = {"pore", "se", "am"};
  static const char* const kRoles[] = {"pore", "electrolyte", "active"};
  std::string labels, roles;
  std::size_t k = 0;
  for (const Phase& ph : table.phases()) {
    if (k == 3) break;
    const std::string name = labels_given ? ph.name : kNames[k];
    labels += (labels.empty() ? "" : ",") + name + "=" + std::to_string(ph.label);
    if (name != kRoles[k]) roles += (roles.empty() ? "" : ",") + name + "=" + kRoles[k];
    ++k;
  }
  std::string hint = "give roles with ";
  if (!labels_given) hint += "--labels " + labels + (roles.empty() ? "" : " ");
  if (!roles.empty()) hint += "--roles " + roles;
  return InputError(what + "\n  " + hint + " (roles: " + role_names() + ")");
}

bool parse_cli(CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return true;
  } catch (const CLI::ParseError& e) {
    throw InputError(e.what() + std::string(" (see voxpress ") + app.get_name() + " --help)");
  }
  return false;
}

}  // namespace vp
