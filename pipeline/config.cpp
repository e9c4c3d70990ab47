#include "pipeline/config.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/axis.h"
#include "core/error.h"
#include "core/hash.h"

namespace vp {

namespace fs = std::filesystem;

unsigned SampleConfig::initial_data() const {
  if (kind == "labels") return kLabels;
  return labels ? (kGrey | kLabels) : kGrey;
}

Dims SampleConfig::loaded_dims() const {
  if (roi) return {roi->size[0], roi->size[1], roi->size[2]};
  return header.dims;
}

std::size_t SampleConfig::loaded_bytes_per_voxel() const {
  // A label volume is read in its file type and converted to u8: both exist for a moment.
  std::size_t bytes = dtype_size(header.dtype) + (kind == "labels" ? 1 : 0);
  if (labels_header) bytes += dtype_size(labels_header->dtype) + 1;
  return bytes;
}

namespace {

std::vector<ParamSpec> format_specs() {
  return {
      choices(param("format", ParamType::string, "volume format", "", "auto"),
              {"auto", "tiff", "mha", "mhd", "nrrd", "nifti", "raw", "hdf5", "npy"}),
      bounded(param("dims", ParamType::number_list, "raw: [nx, ny, nz]", "voxels"), 1.0),
      choices(param("dtype", ParamType::string, "raw: element type"),
              {"uint8", "uint16", "int16", "uint32", "float32"}),
      choices(param("endian", ParamType::string, "raw: byte order", "", "little"), {"little", "big"}),
      bounded(param("offset", ParamType::integer, "raw: header bytes to skip", "bytes", "0"), 0.0),
      param("dataset", ParamType::string, "HDF5 dataset, e.g. /exchange/data (empty: the only 3-D one)"),
  };
}

ParamSpec voxel_size_spec() {
  return param("voxel_size_um", ParamType::number_list,
               "voxel size: S or [sx, sy, sz] (> 0); overrides the file's metadata", "µm");
}
ParamSpec pressing_axis_spec() {
  return choices(param("pressing_axis", ParamType::string, "axis along which the sample was pressed", "", "z"),
                 axis_choices());
}

std::vector<std::string> names_of(const std::vector<ParamSpec>& specs) {
  std::vector<std::string> out;
  for (const auto& s : specs) out.push_back(s.name);
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : sep) + i;
  return s;
}

// A copy of a map without some keys (checked by hand), sharing the remaining nodes and their marks.
YAML::Node without(const YAML::Node& map, const std::set<std::string>& keys) {
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& kv : map)
    if (!keys.count(kv.first.Scalar())) out.force_insert(kv.first, kv.second);
  return out;
}

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// Reads one value through Params; a failure was reported by Params::check already.
template <class F>
auto attempt(F&& f) -> std::optional<decltype(f())> {
  try {
    return f();
  } catch (const InputError&) {
    return std::nullopt;
  }
}

class ConfigParser {
 public:
  ConfigParser(const fs::path& path, const Registry& registry, Diagnostics& diags)
      : registry_(registry), diags_(diags), file_(diags.file().empty() ? path.string() : diags.file()) {
    config_.path = fs::absolute(path).lexically_normal();
    config_.name = path.stem().string();
    base_ = config_.path.parent_path();
  }

  Config parse() {
    std::error_code ec;  // the non-throwing overloads: a name too long for the OS is a diagnosis, not a crash
    if (!fs::is_regular_file(config_.path, ec)) {
      diags_.error("", "config file not found: " + config_.path.string() + (ec ? " (" + ec.message() + ")" : ""));
      return std::move(config_);
    }
    config_.sha256 = sha256_file(config_.path.string());
    YAML::Node loaded;
    try {
      loaded = YAML::LoadFile(config_.path.string());
    } catch (const YAML::Exception& e) {
      const std::string where =
          e.mark.is_null() ? file_
                           : file_ + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
      diags_.add({where, "", "YAML syntax error: " + e.msg});
      return std::move(config_);
    }
    const YAML::Node root = loaded;  // const: looking up a missing key must not insert it
    if (!root.IsMap()) {
      diags_.error(root, "", "expected a map with the keys " + join(names_of(top_level_specs())));
      return std::move(config_);
    }
    Params top(without(root, {"phases", "samples", "stages", "report"}), top_level_specs(), file_, "");
    top.check(diags_);
    if (auto out = attempt([&] { return top.string("output"); }); out && top.has("output"))
      config_.output = resolve(*out);
    else config_.output = fs::current_path() / "runs" / config_.name;

    parse_phases(root["phases"]);
    defaults_node_ = root["defaults"] ? root["defaults"] : YAML::Node();
    parse_samples(root["samples"]);
    parse_stages(root["stages"]);
    parse_report(root["report"]);
    return std::move(config_);
  }

 private:
  fs::path resolve(const std::string& p) const {
    fs::path path(p);
    return (path.is_absolute() ? path : base_ / path).lexically_normal();
  }

  bool expect_list(const YAML::Node& node, const std::string& key, const std::string& what) {
    if (!node || node.IsNull()) return false;
    if (!node.IsSequence()) {
      diags_.error(node, key, "expected a list of " + what);
      return false;
    }
    return true;
  }

  void parse_phases(const YAML::Node& list) {
    if (!expect_list(list, "phases", "{name, label, role} maps")) return;
    std::vector<Phase> phases;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string kp = "phases[" + std::to_string(i) + "]";
      const YAML::Node n = list[i];
      if (!n.IsMap()) {
        diags_.error(n, kp, "expected a map {name, label, role}");
        continue;
      }
      Params p(n, phase_specs(), file_, kp);
      const std::size_t before = diags_.items().size();
      p.check(diags_);
      if (diags_.items().size() != before) continue;
      Phase ph;
      ph.name = p.string("name");
      ph.label = static_cast<int>(p.integer("label"));
      ph.role = *parse_role(p.string("role"));
      bool unique = true;
      for (const auto& q : phases) {
        if (q.name == ph.name) {
          diags_.error(n["name"], kp + ".name", "duplicate phase name '" + ph.name + "'; expected unique names");
          unique = false;
        }
        if (q.label == ph.label) {
          diags_.error(
              n["label"], kp + ".label",
              "label " + std::to_string(ph.label) + " is already phase '" + q.name + "'; expected one phase per label");
          unique = false;
        }
      }
      if (unique) phases.push_back(ph);
    }
    try {
      config_.phases = PhaseTable(std::move(phases));
    } catch (const InputError& e) {
      diags_.error(list, "phases", e.what());  // duplicates were reported with their positions already
    }
  }

  // The value of a key that a sample may inherit from `defaults`.
  const Params& pick(const Params& sample, const Params& defaults, const std::string& key) const {
    return sample.has(key) ? sample : defaults;
  }

  std::optional<ReadOptions> read_options(const Params& p, const Params& d, const YAML::Node& node,
                                          const std::string& kp) {
    ReadOptions o;
    bool ok = true;
    auto path = attempt([&] { return p.string("path"); });
    if (!path) return std::nullopt;
    o.path = resolve(*path).string();
    o.format = attempt([&] { return pick(p, d, "format").string("format"); }).value_or("auto");
    if (pick(p, d, "dims").has("dims")) {
      const Params& src = pick(p, d, "dims");
      auto v = attempt([&] { return src.numbers("dims"); });
      if (v && (v->size() != 3 || std::any_of(v->begin(), v->end(), [](double x) { return x != std::floor(x); }))) {
        diags_.error(src.node("dims"), src.key_path("dims"),
                     "found " + YAML::Dump(src.node("dims")) + "; expected [nx, ny, nz], three positive integers");
        ok = false;
      } else if (v) {
        o.dims = Dims{static_cast<index_t>((*v)[0]), static_cast<index_t>((*v)[1]), static_cast<index_t>((*v)[2])};
      }
    }
    if (pick(p, d, "dtype").has("dtype"))
      if (auto t = attempt([&] { return pick(p, d, "dtype").string("dtype"); })) o.dtype = parse_dtype(*t);
    o.big_endian = attempt([&] { return pick(p, d, "endian").string("endian"); }).value_or("little") == "big";
    o.header_bytes = static_cast<std::uint64_t>(
        std::max(0LL, attempt([&] { return pick(p, d, "offset").integer("offset"); }).value_or(0)));
    o.dataset = attempt([&] { return pick(p, d, "dataset").string("dataset"); }).value_or("");
    if (o.format == "raw" && (!o.dims || !o.dtype)) {
      diags_.error(node, kp, "format raw needs `dims: [nx, ny, nz]` and `dtype` (here or in defaults)");
      ok = false;
    }
    return ok ? std::optional<ReadOptions>(o) : std::nullopt;
  }

  // Checks that the file exists and that its header reads with these options.
  std::optional<VolumeInfo> probe(const ReadOptions& o, const YAML::Node& at, const std::string& kp,
                                  Diagnostics& into) {
    std::error_code ec;  // e.g. a path component longer than the OS allows: reported, never thrown
    if (!has_glob(o.path) && !fs::exists(o.path, ec)) {
      into.error(at, kp,
                 "file not found: " + o.path + (ec ? " (" + ec.message() + ")" : "") +
                     " (relative paths resolve against " + base_.string() +
                     "); expected an existing volume file or folder of TIFF slices");
      return std::nullopt;
    }
    try {
      VolumeInfo info = probe_volume(o);
      if (info.dims.empty()) {
        into.error(at, kp,
                   o.path + ": the volume is empty (dims " + to_string(info.dims) +
                       "); expected at least one voxel along each axis");
        return std::nullopt;
      }
      return info;
    } catch (const InputError& e) {
      into.error(at, kp, e.what());
    } catch (const std::exception& e) {
      into.error(at, kp, o.path + ": cannot read the header: " + e.what());
    }
    return std::nullopt;
  }

  std::optional<Vec3> voxel_size(const Params& src) {
    const YAML::Node n = src.node("voxel_size_um");
    // A scalar goes through number(): Params::numbers() rewrites a scalar node in place.
    auto v = n.IsScalar() ? attempt([&] { return std::vector<double>(3, src.number("voxel_size_um")); })
                          : attempt([&] { return src.numbers("voxel_size_um"); });
    if (!v) return std::nullopt;
    if (v->size() != 3) {
      diags_.error(n, src.key_path("voxel_size_um"),
                   "found " + std::to_string(v->size()) + " numbers; expected one number or [sx, sy, sz] in µm");
      return std::nullopt;
    }
    for (double s : *v)
      if (!(s > 0)) {
        diags_.error(n, src.key_path("voxel_size_um"), "found " + YAML::Dump(n) + "; expected voxel sizes > 0 µm");
        return std::nullopt;
      }
    return Vec3{(*v)[0], (*v)[1], (*v)[2]};
  }

  std::optional<Box> roi(const YAML::Node& n, const std::string& kp) {
    Params p(n, roi_specs(), file_, kp);
    const std::size_t before = diags_.items().size();
    p.check(diags_);
    if (diags_.items().size() != before) return std::nullopt;
    Box b;
    const auto mn = p.numbers("min"), sz = p.numbers("size");
    bool ok = true;
    // Above 2^53 a double no longer holds every integer (and 1e19 no longer fits index_t).
    constexpr double kLargest = 9007199254740992.0;
    auto ints = [&](const std::vector<double>& v, const std::string& key, double lowest) {
      if (v.size() != 3 ||
          std::any_of(v.begin(), v.end(), [&](double x) { return x != std::floor(x) || x < lowest || x > kLargest; })) {
        diags_.error(n[key], kp + "." + key,
                     "found " + YAML::Dump(n[key]) + "; expected [x, y, z], three integers ≥ " +
                         std::to_string(static_cast<int>(lowest)) + " and ≤ 2^53 (voxels)");
        ok = false;
      }
    };
    ints(mn, "min", 0);
    ints(sz, "size", 1);
    if (!ok) return std::nullopt;
    for (int a = 0; a < 3; ++a) b.min[a] = static_cast<index_t>(mn[a]), b.size[a] = static_cast<index_t>(sz[a]);
    return b;
  }

  static std::vector<ParamSpec> roi_specs() {
    return {required(param("min", ParamType::number_list, "first voxel [x, y, z]", "voxels")),
            required(param("size", ParamType::number_list, "extent [x, y, z]", "voxels"))};
  }

  std::string default_name(const std::string& path) const {
    fs::path p(path);
    if (has_glob(path)) return p.parent_path().filename().string();
    if (p.filename().empty()) p = p.parent_path();
    std::string stem = p.stem().string();
    if (p.extension() == ".gz") stem = fs::path(stem).stem().string();  // .nii.gz
    return stem;
  }

  void parse_samples(const YAML::Node& list) {
    const Params defaults(defaults_node_, defaults_specs(), file_, "defaults");
    if (defaults_node_ && !defaults_node_.IsNull()) defaults.check(diags_);
    if (!list || list.IsNull() || (list.IsSequence() && list.size() == 0)) {
      diags_.error(list ? list : YAML::Node(), "samples", "no samples; expected a list of {path, pressure_MPa, ...}");
      return;
    }
    if (!expect_list(list, "samples", "{path, pressure_MPa, ...} maps")) return;
    std::map<std::string, std::string> seen;  // name -> where
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string kp = "samples[" + std::to_string(i) + "]";
      const YAML::Node n = list[i];
      if (!n.IsMap()) {
        diags_.error(n, kp, "expected a map {path, pressure_MPa, ...}");
        continue;
      }
      const bool labels_map = n["labels"] && n["labels"].IsMap();
      Params p(labels_map ? without(n, {"labels"}) : n, sample_specs(), file_, kp);
      p.check(diags_);
      if (auto s = parse_sample(p, defaults, n, kp)) {
        if (auto it = seen.find(s->info.name); it != seen.end()) {
          diags_.error(n["name"] ? n["name"] : n, kp + ".name",
                       "duplicate sample name '" + s->info.name + "' (first at " + it->second +
                           "); expected unique names — set `name`");
          continue;
        }
        seen[s->info.name] = location(file_, n);
        config_.samples.push_back(std::move(*s));
      }
    }
  }

  std::optional<SampleConfig> parse_sample(const Params& p, const Params& d, const YAML::Node& n,
                                           const std::string& kp) {
    SampleConfig s;
    auto read = read_options(p, d, n, kp);
    if (!read) return std::nullopt;
    s.read = *read;
    s.info.path = read->path;
    s.kind = attempt([&] { return p.string("kind"); }).value_or("grey");
    s.info.series = attempt([&] { return p.string("series"); }).value_or("default");
    s.info.name = p.has("name") ? attempt([&] { return p.string("name"); }).value_or("") : default_name(read->path);
    if (s.info.name.empty() || s.info.name.front() == '.' ||
        s.info.name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            std::string::npos) {
      diags_.error(
          n["name"] ? n["name"] : n["path"], kp + ".name",
          "sample name '" + s.info.name + "' is not usable as a folder name; expected letters, digits, '.', '_', '-'");
      return std::nullopt;
    }
    if (auto pr = attempt([&] { return p.number("pressure_MPa"); })) s.info.pressure_MPa = *pr;
    const int axis =
        axis_index(attempt([&] { return pick(p, d, "pressing_axis").string("pressing_axis"); }).value_or("z"));
    s.info.pressing_axis = axis < 0 ? 2 : axis;  // a name that is no axis is reported by its choices

    // Problems of the data files are kept with the sample: `run` records it as failed and goes
    // on with the others. Problems of the config itself go to diags_.
    Diagnostics file_problems(file_);
    const auto header = probe(s.read, n["path"], kp + ".path", file_problems);
    if (header) s.header = *header;
    bool ok = true;

    const Params& vs = pick(p, d, "voxel_size_um");
    if (vs.has("voxel_size_um")) {
      auto v = voxel_size(vs);
      if (v) s.info.spacing_um = *v;
      ok = ok && v.has_value();
      s.spacing_from_config = true;
    } else if (header && header->spacing_from_file) {
      s.info.spacing_um = header->spacing_um;
    } else if (header) {
      diags_.error(n, kp + ".voxel_size_um",
                   s.read.path + " records no voxel size; add voxel_size_um (µm) to the sample or to defaults");
      ok = false;
    }

    if (n["roi"] && n["roi"].IsMap()) {
      if (auto b = roi(n["roi"], kp + ".roi")) {
        for (int a = 0; header && a < 3; ++a)
          if (b->min[a] + b->size[a] > header->dims[a]) {
            diags_.error(n["roi"], kp + ".roi",
                         "reaches " + axis_name(a) + " = " + std::to_string(b->min[a] + b->size[a] - 1) +
                             " but the volume is " + to_string(header->dims) + "; expected min + size ≤ dims");
            ok = false;
            break;
          }
        s.roi = *b;
        s.read.roi = *b;
      } else {
        ok = false;
      }
    }

    if (n["labels"]) {
      if (s.kind == "labels") {
        diags_.error(n["labels"], kp + ".labels",
                     "a sample of kind labels takes no `labels` companion; expected kind: grey");
        ok = false;
      } else if (auto comp = labels_companion(n["labels"], kp + ".labels")) {
        const auto lh = probe(*comp, n["labels"], kp + ".labels", file_problems);
        if (lh && header && !(lh->dims == header->dims))
          file_problems.error(n["labels"], kp + ".labels",
                              comp->path + " is " + to_string(lh->dims) + " but the grey volume is " +
                                  to_string(header->dims) + "; expected the same dims");
        comp->roi = s.roi;
        s.labels = *comp;
        if (lh) s.labels_header = *lh;
        s.info.labels_path = comp->path;
      } else {
        ok = false;
      }
    }
    if (!file_problems.ok()) s.file_problem = file_problems.items().front();
    return ok ? std::optional<SampleConfig>(std::move(s)) : std::nullopt;
  }

  // `labels: PATH` (format detected) or `labels: {path, format, dims, dtype, ...}`. The companion
  // does not inherit `defaults`' format options: they describe the grey volumes.
  std::optional<ReadOptions> labels_companion(const YAML::Node& n, const std::string& kp) {
    std::vector<ParamSpec> specs = format_specs();
    specs.insert(specs.begin(), required(param("path", ParamType::string, "companion label volume")));
    const Params none(YAML::Node(), specs, file_, kp);
    if (n.IsScalar()) {
      YAML::Node m(YAML::NodeType::Map);
      m.force_insert(YAML::Node("path"), n);
      return read_options(Params(m, specs, file_, kp), none, n, kp);
    }
    Params p(n, specs, file_, kp);
    const std::size_t before = diags_.items().size();
    p.check(diags_);
    if (diags_.items().size() != before) return std::nullopt;
    return read_options(p, none, n, kp);
  }

  void parse_stages(const YAML::Node& list) {
    if (!expect_list(list, "stages", "{stage: NAME, ...parameters} maps")) return;
    std::vector<std::string> known, batch_known;
    for (const auto& s : registry_.stages()) known.push_back(s->name());
    std::vector<YAML::Node> stage_nodes;
    for (std::size_t j = 0; j < list.size(); ++j) {
      const std::string kp = "stages[" + std::to_string(j) + "]";
      const YAML::Node n = list[j];
      const Stage* stage = nullptr;
      if (auto name = stage_name(n, kp, known)) {
        stage = registry_.stage(*name);
        if (!stage) {
          std::string hint = registry_.batch_stage(*name)
                                 ? "; '" + *name + "' is a report stage: list it under `report`"
                                 : unknown_hint(*name, known);
          diags_.error(n["stage"], kp + ".stage", "unknown stage '" + *name + "'" + hint);
        }
      }
      if (!stage) continue;
      Params p(n, stage->params(), file_, kp);
      p.relative_to(base_).removed(stage->name() + " stage", stage->removed_params()).check(diags_);
      config_.stages.push_back({stage, p});
      stage_nodes.push_back(n);
    }
    check_data_flow(stage_nodes);
  }

  std::string unknown_hint(const std::string& name, const std::vector<std::string>& known) const {
    const std::string best = closest_name(name, known);
    return (best.empty() ? "" : "; did you mean '" + best + "'?") +
           "; known: " + (known.empty() ? "(none)" : join(known)) + " (see `voxpress stages`)";
  }

  std::optional<std::string> stage_name(const YAML::Node& n, const std::string& kp,
                                        const std::vector<std::string>& known) {
    if (!n.IsMap()) {
      diags_.error(n, kp, "expected a map {stage: NAME, ...parameters}");
      return std::nullopt;
    }
    if (!n["stage"] || !n["stage"].IsScalar()) {
      diags_.error(n, kp + ".stage", "missing `stage: NAME`; known stages: " + join(known));
      return std::nullopt;
    }
    return n["stage"].Scalar();
  }

  // Each stage's needs must be met by the sample's kind or by an earlier stage. Samples with the
  // same starting data share one pass, so each problem is reported once.
  void check_data_flow(const std::vector<YAML::Node>& nodes) {
    std::map<unsigned, std::vector<std::string>> groups;  // initial data -> sample names
    for (const auto& s : config_.samples) groups[s.initial_data()].push_back(s.info.name);
    if (groups.empty()) groups[kGrey] = {};  // samples invalid: still check the stages' parameters
    std::set<std::string> reported;
    for (const auto& [initial, names] : groups) {
      unsigned available = initial;
      for (std::size_t j = 0; j < config_.stages.size(); ++j) {
        const auto& sc = config_.stages[j];
        const std::string kp = "stages[" + std::to_string(j) + "]";
        const unsigned missing = sc.stage->needs() & ~available;
        Diagnostics local(file_);
        if (missing && !names.empty())
          local.error(nodes[j]["stage"], kp + ".stage",
                      "stage '" + sc.stage->name() + "' needs " + describe_data(missing) + ", but sample" +
                          (names.size() > 1 ? "s " : " ") + join(names) + " only " +
                          (names.size() > 1 ? "have " : "has ") + describe_data(available) +
                          " at this point; expected an earlier stage that provides " + describe_data(missing) +
                          (missing & kLabels ? " (e.g. segment) or kind: labels / a `labels` companion" : ""));
        sc.stage->preflight(sc.params, PreflightContext{config_.phases, available}, local);
        for (const auto& d : local.items())
          if (reported.insert(d.format()).second) diags_.add(d);
        available |= sc.stage->provides();
      }
    }
  }

  void parse_report(const YAML::Node& list) {
    if (!expect_list(list, "report", "{stage: NAME, ...parameters} maps")) return;
    std::vector<std::string> known;
    for (const auto& s : registry_.batch_stages()) known.push_back(s->name());
    for (std::size_t j = 0; j < list.size(); ++j) {
      const std::string kp = "report[" + std::to_string(j) + "]";
      const YAML::Node n = list[j];
      auto name = stage_name(n, kp, known);
      if (!name) continue;
      const BatchStage* stage = registry_.batch_stage(*name);
      if (!stage) {
        std::string hint = registry_.stage(*name) ? "; '" + *name + "' is a per-sample stage: list it under `stages`"
                                                  : unknown_hint(*name, known);
        diags_.error(n["stage"], kp + ".stage", "unknown report stage '" + *name + "'" + hint);
        continue;
      }
      Params p(n, stage->params(), file_, kp);
      p.relative_to(base_);
      const std::size_t before = diags_.items().size();
      p.check(diags_);
      if (diags_.items().size() == before) stage->preflight(p, diags_);
      config_.report.push_back({stage, p});
    }
  }

  const Registry& registry_;
  Diagnostics& diags_;
  std::string file_;
  fs::path base_;
  YAML::Node defaults_node_;
  Config config_;
};

}  // namespace

std::vector<ParamSpec> top_level_specs() {
  return {
      bounded(param("version", ParamType::integer, "config schema version", "", "1"), 1.0, 1.0),
      param("output", ParamType::string,
            "run folder (relative: to the config's folder); default runs/<config name> in the working directory"),
      param("phases", ParamType::string_list, "phase table: list of {name, label, role}"),
      param("defaults", ParamType::map, "values every sample inherits: voxel_size_um, pressing_axis, format options"),
      param("samples", ParamType::string_list, "list of samples"),
      param("stages", ParamType::string_list, "per-sample stages in order: list of {stage: NAME, ...parameters}"),
      param("report", ParamType::string_list, "batch stages run after all samples: list of {stage: NAME, ...}"),
  };
}

std::vector<ParamSpec> defaults_specs() {
  std::vector<ParamSpec> s = format_specs();
  s.push_back(voxel_size_spec());
  s.push_back(pressing_axis_spec());
  return s;
}

std::vector<ParamSpec> sample_specs() {
  std::vector<ParamSpec> s = {
      param("name", ParamType::string, "unique sample name (default: the file's stem)"),
      required(param("path", ParamType::string, "grey or label volume: file, folder of TIFF slices, or glob")),
      choices(param("kind", ParamType::string, "what the volume holds", "", "grey"), {"grey", "labels"}),
      param("labels", ParamType::string, "companion label volume of a grey sample: PATH or {path, format options}"),
      bounded(param("pressure_MPa", ParamType::number, "applied stack pressure", "MPa", "0"), 0.0),
      param("series", ParamType::string, "pressure series the sample belongs to", "", "default"),
      param("roi", ParamType::map, "region of interest {min: [x, y, z], size: [x, y, z]}", "voxels"),
      voxel_size_spec(),
      pressing_axis_spec(),
  };
  for (auto& f : format_specs()) s.push_back(f);
  return s;
}

std::vector<ParamSpec> phase_specs() {
  std::vector<std::string> roles;
  for (Role r : {Role::pore, Role::electrolyte, Role::active, Role::binder, Role::carbon, Role::crack, Role::other})
    roles.push_back(to_string(r));
  return {required(param("name", ParamType::string, "short phase name used in outputs (am, se, pore)")),
          required(bounded(param("label", ParamType::integer, "label value in the label volume"), 0.0, 255.0)),
          choices(param("role", ParamType::string, "what the phase is", "", "other"), roles)};
}

Config parse_config(const fs::path& path, const Registry& registry, Diagnostics& diags) {
  return ConfigParser(path, registry, diags).parse();
}

std::vector<Diagnostic> all_problems(const Diagnostics& diags, const Config& config) {
  std::vector<Diagnostic> out = diags.items();
  for (const auto& s : config.samples)
    if (s.file_problem) out.push_back(*s.file_problem);
  return out;
}

Config load_config(const fs::path& path, const Registry& registry) {
  Diagnostics diags(path.string());
  Config c = parse_config(path, registry, diags);
  diags.throw_if_any();
  return c;
}

}  // namespace vp
