// _voxpress: the compiled half of the Python module. It wraps NumPy arrays as voxpress volumes and
// calls the same functions the CLI commands call (pipeline/commands/command_api.h), so a Python
// result is the CLI's --json result. The pure-Python package (python/voxpress/) checks arguments,
// converts dtypes with a warning and documents the API; this file trusts what it is given only as
// far as it checks it here.
//
// Axes: a NumPy array is indexed [z, y, x] (C order, as tifffile reads a stack), which is exactly
// voxpress's x-fastest memory layout, so no transpose is ever needed. Triples (spacing, origin,
// dims) are in voxpress's (x, y, z) order, as in every JSON output.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/axis.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/progress.h"
#include "filters/io/volume_io.h"
#include "filters/preprocess/preprocess.h"
#include "filters/segment/cleanup.h"
#include "filters/segment/forest.h"
#include "filters/segment/segmenter.h"
#include "pipeline/catalog.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/commands/command_api.h"
#include "pipeline/config.h"
#include "pipeline/runner.h"
#include "pipeline/stages/segment_stages.h"

namespace py = pybind11;

namespace vp {
namespace {

// ---- long calls: GIL released, progress reported, Ctrl-C honoured -----------------------------

// Thrown through the computation by the progress hook; not a std::exception, so no
// `catch (const std::exception&)` on the way turns a Ctrl-C into an ordinary error.
struct Interrupted {};

// Runs f() without the GIL. Every progress_point() the computation reaches on this thread takes
// the GIL, runs Python's signal handlers (PyErr_CheckSignals: Ctrl-C raises KeyboardInterrupt)
// and the caller's progress callback; a Python exception from either stops the computation and
// is re-raised here.
class LongCall {
 public:
  explicit LongCall(py::object progress) : progress_(std::move(progress)) {}

  template <class F>
  auto operator()(F&& f) -> decltype(f()) {
    std::optional<decltype(f())> result;
    {
      ScopedProgressHook hook([this](double done) { poll(done); });
      py::gil_scoped_release release;
      try {
        result.emplace(f());
      } catch (const Interrupted&) {
      }
    }
    if (error_) {
      error_->restore();
      error_.reset();
      throw py::error_already_set();
    }
    return std::move(*result);
  }

 private:
  void poll(double done) {
    py::gil_scoped_acquire gil;
    bool failed = PyErr_CheckSignals() != 0;
    if (!failed && !progress_.is_none() && done == done) {  // NaN: a checkpoint without a fraction
      PyObject* r = PyObject_CallFunction(progress_.ptr(), "d", done);
      failed = r == nullptr;
      Py_XDECREF(r);
    }
    if (failed) {
      error_.emplace();  // takes the pending Python exception
      throw Interrupted{};
    }
  }

  py::object progress_;
  std::optional<py::error_already_set> error_;
};

// ---- arrays <-> volumes -----------------------------------------------------------------------

Dims dims_of_array(const py::array& a, const char* what) {
  if (a.ndim() != 3)
    throw InputError(std::string(what) + ": expected a 3-D array indexed [z, y, x]; got " + std::to_string(a.ndim()) +
                     "-D (a single slice: arr[np.newaxis])");
  if (!(a.flags() & py::array::c_style))
    throw InputError(std::string(what) + ": expected a C-contiguous array; pass np.ascontiguousarray(" + what + ")");
  return {a.shape(2), a.shape(1), a.shape(0)};
}

Vec3 checked_spacing(const Vec3& s, const char* what = "spacing_um") {
  for (double v : s)
    if (!(v > 0) || !std::isfinite(v))
      throw InputError(std::string(what) + ": voxel sizes must be positive and finite, in µm (x, y, z)");
  return s;
}

// A volume over the array's own voxels, used in place (no copy): the caller keeps the array alive
// for as long as the volume (the duration of one call). The label, metric and transport code only
// reads it; a copy of the volume owns its voxels.
template <class T>
Volume<T> volume_from_array(const py::array& a, const Vec3& spacing, const char* what) {
  const Dims d = dims_of_array(a, what);
  if (!py::isinstance<py::array_t<T>>(a))
    throw InputError(std::string(what) + ": expected dtype " + to_string(dtype_of<T>()) + "; got " +
                     std::string(py::str(a.dtype())));
  return Volume<T>::borrowing(static_cast<T*>(const_cast<void*>(a.data())), d, checked_spacing(spacing));
}

AnyVolume any_from_array(const py::array& a, const Vec3& spacing, const char* what) {
  if (py::isinstance<py::array_t<std::uint8_t>>(a)) return volume_from_array<std::uint8_t>(a, spacing, what);
  if (py::isinstance<py::array_t<std::uint16_t>>(a)) return volume_from_array<std::uint16_t>(a, spacing, what);
  if (py::isinstance<py::array_t<std::int16_t>>(a)) return volume_from_array<std::int16_t>(a, spacing, what);
  if (py::isinstance<py::array_t<std::uint32_t>>(a)) return volume_from_array<std::uint32_t>(a, spacing, what);
  if (py::isinstance<py::array_t<float>>(a)) return volume_from_array<float>(a, spacing, what);
  throw InputError(std::string(what) + ": dtype " + std::string(py::str(a.dtype())) +
                   " is not a voxpress volume type; expected uint8, uint16, int16, uint32 or float32 "
                   "(convert with arr.astype(...))");
}

// A NumPy array [z, y, x] over the volume's own voxels: the capsule owns the C++ volume.
template <class T>
py::array to_numpy(Volume<T>&& v) {
  auto* owned = new Volume<T>(std::move(v));
  py::capsule base(owned, [](void* p) { delete static_cast<Volume<T>*>(p); });
  const Dims d = owned->dims();
  const auto s = static_cast<py::ssize_t>(sizeof(T));
  return py::array_t<T>({d.z, d.y, d.x}, {s * d.x * d.y, s * d.x, s}, owned->data(), base);
}

py::array any_to_numpy(AnyVolume&& v) {
  return std::visit([](auto&& vol) -> py::array { return to_numpy(std::move(vol)); }, std::move(v));
}

py::tuple triple(const Vec3& v) { return py::make_tuple(v[0], v[1], v[2]); }

// ---- JSON -> Python ---------------------------------------------------------------------------

py::object to_python(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return py::none();
    case nlohmann::json::value_t::boolean: return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return py::int_(j.get<long long>());
    case nlohmann::json::value_t::number_unsigned: return py::int_(j.get<unsigned long long>());
    case nlohmann::json::value_t::number_float: return py::float_(j.get<double>());
    case nlohmann::json::value_t::string: return py::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      py::list l;
      for (const auto& e : j) l.append(to_python(e));
      return l;
    }
    case nlohmann::json::value_t::object: {
      py::dict d;
      for (const auto& [k, e] : j.items()) d[py::str(k)] = to_python(e);
      return d;
    }
    default: return py::none();
  }
}

py::list rows_to_python(const std::vector<MetricRow>& rows) {
  py::list out;
  for (const MetricRow& r : rows) {
    py::dict d;
    d["stage"] = r.stage;
    d["metric"] = r.metric;
    d["phase"] = r.phase;
    d["axis"] = r.axis;
    d["value"] = r.value;  // a float: inf and nan as in metrics.csv (JSON writes null)
    d["unit"] = r.unit;
    out.append(d);
  }
  return out;
}

// ---- the sample context of an array (as label_sample_context builds it for a file) -----------

SampleContext array_sample_context(const py::array& labels, const Vec3& spacing, const std::string& labels_flag,
                                   const std::string& roles_flag, const std::string& name) {
  Volume<std::uint8_t> voxels = volume_from_array<std::uint8_t>(labels, spacing, "labels");
  voxels.provenance.path = name;
  PhaseTable table = phase_table_from_flags(labels_flag, roles_flag, labels_present(voxels));
  SampleContext ctx;
  ctx.sample.name = name;
  ctx.sample.path = name;
  ctx.sample.spacing_um = voxels.spacing_um;
  ctx.labels = LabelVolume(std::move(voxels), std::move(table));
  return ctx;
}

nlohmann::json array_input_json(const SampleContext& ctx) {
  return {{"path", ctx.sample.path},
          {"sha256", nullptr},
          {"format", "array"},
          {"dims", to_json(ctx.labels->dims())},
          {"spacing_um", to_json(ctx.labels->spacing_um)}};
}

VolumeArgs reader_args(const std::string& path, const std::string& format, const std::string& dims,
                       const std::string& dtype, const std::string& endian, std::uint64_t offset,
                       const std::string& dataset, const std::string& spacing) {
  VolumeArgs a;
  a.path = path;
  a.format = format;
  a.dims = dims;
  a.dtype = dtype;
  a.endian = endian;
  a.offset = offset;
  a.dataset = dataset;
  a.spacing = spacing;
  return a;
}

// ---- the functions ----------------------------------------------------------------------------

py::tuple py_read(const std::string& path, const std::string& format, const std::string& dims, const std::string& dtype,
                  const std::string& endian, std::uint64_t offset, const std::string& dataset,
                  const std::string& spacing) {
  const VolumeArgs args = reader_args(path, format, dims, dtype, endian, offset, dataset, spacing);
  ReadResult r = LongCall(py::none())([&] { return load_volume(args); });
  py::dict provenance;
  provenance["path"] = provenance_of(r.volume).path;
  provenance["sha256"] = provenance_of(r.volume).sha256;
  provenance["format"] = r.format;
  provenance["spacing_source"] = !spacing.empty() ? "flag" : r.spacing_from_file ? "file" : "default";
  const Vec3 sp = spacing_of(r.volume);
  const Vec3 origin = std::visit([](const auto& v) { return v.origin_um; }, r.volume);
  return py::make_tuple(any_to_numpy(std::move(r.volume)), triple(sp), triple(origin), provenance);
}

py::object py_info_file(const std::string& path, const std::string& format, const std::string& dims,
                        const std::string& dtype, const std::string& endian, std::uint64_t offset,
                        const std::string& dataset, const std::string& spacing) {
  const VolumeArgs args = reader_args(path, format, dims, dtype, endian, offset, dataset, spacing);
  const nlohmann::json j = LongCall(py::none())([&] {
    const ReadResult r = load_volume(args);
    return info_json(r, !args.spacing.empty() ? "flag" : r.spacing_from_file ? "file" : "default");
  });
  return to_python(j);
}

py::object py_info_array(const py::array& volume, const Vec3& spacing, bool spacing_given, const std::string& name) {
  ReadResult r{any_from_array(volume, spacing, "volume"), "array", false};
  provenance_of(r.volume).path = name;
  const nlohmann::json j = LongCall(py::none())([&] { return info_json(r, spacing_given ? "argument" : "default"); });
  return to_python(j);
}

py::object py_solve(const py::array& labels, const Vec3& spacing, const std::string& labels_flag,
                    const std::string& roles_flag, const std::string& name, const SolveRequest& request,
                    py::object progress) {
  SampleContext ctx = array_sample_context(labels, spacing, labels_flag, roles_flag, name);
  nlohmann::json out = {{"input", array_input_json(ctx)}};
  out.update(LongCall(std::move(progress))([&] { return solve_sample(ctx, request); }));
  return to_python(out);
}

py::list py_measure(const py::array& labels, const Vec3& spacing, const std::string& labels_flag,
                    const std::string& roles_flag, const std::string& name, const std::string& metrics,
                    int connectivity, const std::optional<py::array>& particles, py::object progress) {
  SampleContext ctx = array_sample_context(labels, spacing, labels_flag, roles_flag, name);
  if (particles) {
    Volume<std::uint32_t> ids = volume_from_array<std::uint32_t>(*particles, spacing, "particles");
    if (!(ids.dims() == ctx.labels->dims()))
      throw InputError("particles: shape differs from the labels' (both [z, y, x])");
    ctx.particles = std::move(ids);
  }
  LongCall(std::move(progress))([&] {
    std::map<std::string, std::string> connectivity_params;
    if (connectivity != 0) connectivity_params["connectivity"] = std::to_string(connectivity);
    measure_sample(ctx, metrics, connectivity_params);
    return true;
  });
  return rows_to_python(ctx.rows);
}

py::object py_cracks(const py::array& labels, const Vec3& spacing, const std::string& labels_flag,
                     const std::string& roles_flag, const std::string& name, const std::optional<py::array>& grey,
                     const std::optional<py::array>& particles, const std::string& pressing_axis,
                     const CracksRequest& request, py::object progress) {
  SampleContext ctx = array_sample_context(labels, spacing, labels_flag, roles_flag, name);
  ctx.sample.pressing_axis = parse_axis(pressing_axis, "--pressing-axis");
  if (grey) {
    // An owned copy: the grey-level filters the crack detector runs may use vector storage.
    AnyVolume g = std::visit([](const auto& v) -> AnyVolume { return v; }, any_from_array(*grey, spacing, "grey"));
    if (!(dims_of(g) == ctx.labels->dims())) throw InputError("grey: shape differs from the labels' (both [z, y, x])");
    ctx.grey = std::move(g);
  }
  if (particles) {
    Volume<std::uint32_t> ids = volume_from_array<std::uint32_t>(*particles, spacing, "particles");
    if (!(ids.dims() == ctx.labels->dims()))
      throw InputError("particles: shape differs from the labels' (both [z, y, x])");
    ctx.particles = std::move(ids);
  }
  nlohmann::json out = LongCall(std::move(progress))([&] { return cracks_sample(ctx, request); });
  out["input"] = {{"path", name}, {"sha256", nullptr}};
  return to_python(out);
}

// The segment command's pipeline (preprocess, segment, clean up) on an array, with its --json
// summary's keys; options are the command's flags with dashes as underscores.
py::tuple py_segment(const py::array& grey, const Vec3& spacing, const std::string& name, const py::dict& o,
                     py::object progress) {
  auto get = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    return o.contains(key) && !o[key].is_none() ? o[key].cast<T>() : fallback;
  };
  // Preprocessing, segmentation and clean-up are the preprocess, segment and cleanup stages, as
  // for `voxpress segment`: options named like their keys (and the command's older spellings)
  // become their parameters, checked against their specs.
  const Stage& preprocess_stage = *Registry::global().stage("preprocess");
  const Stage& segment_stage = *Registry::global().stage("segment");
  const Stage& cleanup_stage = *Registry::global().stage("cleanup");
  auto yaml_of = [](const py::handle& v) { return py::repr(v).cast<std::string>(); };  // True, [1, 2], 'median'
  auto given = [&](const std::string& key) { return o.contains(key.c_str()) && !o[key.c_str()].is_none(); };
  std::map<std::string, std::string> preprocess_values, segment_values;
  for (const ParamSpec& spec : preprocess_stage.params())
    if (given(spec.name)) preprocess_values[spec.name] = yaml_of(o[spec.name.c_str()]);
  if (given("nlmeans_patch")) preprocess_values["nlmeans_patch_radius"] = yaml_of(o["nlmeans_patch"]);
  // Every segment parameter but `phases` (the command writes class indices, as the CLI does).
  for (const ParamSpec& spec : segment_stage.params())
    if (spec.name != "phases" && given(spec.name)) segment_values[spec.name] = yaml_of(o[spec.name.c_str()]);
  // A removed key reaches the stage's check, which says why it went.
  for (const RemovedParam& gone : segment_stage.removed_params())
    if (given(gone.name)) segment_values[gone.name] = yaml_of(o[gone.name.c_str()]);
  const std::string model_path = get("model", std::string());
  // The command's default: forest with a model, else auto (K then follows the stage's rule).
  const std::string method = get("method", std::string(model_path.empty() ? "auto" : "forest"));
  segment_values["method"] = method;
  const PhaseTable no_phases;
  const Params preprocess =
      stage_params(preprocess_stage, preprocess_values, "segment options", PreflightContext{no_phases, kGrey});
  SegmentOptions so = segment_options(
      stage_params(segment_stage, segment_values, "segment options", PreflightContext{no_phases, kGrey}));
  ClassCleanupFlags cleanup;
  for (auto [key, text] :
       {std::pair{"open", &cleanup.open}, {"close", &cleanup.close}, {"min_island", &cleanup.min_island}})
    if (given(key)) *text = yaml_of(o[key]);
  cleanup.fill_holes = get("fill_holes", false);
  cleanup.cleanup_label = get("cleanup_label", -1);

  AnyVolume input = any_from_array(grey, spacing, "grey");
  std::optional<ForestModel> model;
  if (!model_path.empty()) model = ForestModel::load(model_path);
  so.model = model ? &*model : nullptr;

  SampleContext prep;
  CleanupReport cr;
  std::optional<Volume<float>> preprocessed;
  SegmentResult r = LongCall(std::move(progress))([&] {
    prep.grey = std::move(input);
    run_stage(preprocess_stage, preprocess, prep);
    preprocessed = std::get<Volume<float>>(std::move(*prep.grey));
    prep.grey.reset();
    const Volume<float>& g = *preprocessed;
    SegmentResult s = segment_grey(g, so);
    std::vector<int> class_labels;
    for (int c = 0; c < s.classes; ++c) class_labels.push_back(c);
    const PhaseTable classes = PhaseTable::unnamed(class_labels);
    const Params cleanup_params = stage_params(cleanup_stage, cleanup_values(cleanup, classes), "segment options",
                                               PreflightContext{classes, kLabels});
    cr = cleanup_labels(s.labels, cleanup_options(cleanup_params, classes, s.labels.spacing_um));
    return s;
  });
  const Volume<std::uint8_t>& labels = r.labels;
  nlohmann::json summary = {{"input", name},
                            {"sha256", nullptr},
                            {"dims", to_json(labels.dims())},
                            {"spacing_um", to_json(labels.spacing_um)},
                            {"preprocess", prep.details["steps"]},
                            {"method", to_string(so.method)},
                            {"thresholds", r.thresholds}};
  summary.update(segmentation_summary(*preprocessed, r));
  if (model)
    summary["model"] = {{"training_samples", model->training_samples()},
                        {"training_accuracy", model->training_accuracy()},
                        {"saved", ""}};
  summary["cleanup"] = {{"voxels_opened", cr.voxels_opened},
                        {"voxels_closed", cr.voxels_closed},
                        {"islands_removed", cr.islands_removed},
                        {"voxels_filled", cr.voxels_filled}};
  const Vec3 out_spacing = r.labels.spacing_um;
  const Vec3 out_origin = r.labels.origin_um;
  return py::make_tuple(to_numpy(std::move(r.labels)), to_python(summary), triple(out_spacing), triple(out_origin));
}

// A CLI command run in this process (same code, same bytes written): its exit code.
int py_run_command(const std::string& name, const std::vector<std::string>& args) {
  const Command* c = Registry::global().command(name);
  if (!c) throw InputError("no command '" + name + "' in this build");
  return LongCall(py::none())([&] { return c->run(args); });
}

// Samples run in worker processes of the voxpress binary (this process is Python, so
// /proc/self/exe cannot be the worker): $VOXPRESS_EXE, else the binary built beside the module.
std::filesystem::path sample_worker_program() {
  const char* env = std::getenv("VOXPRESS_EXE");
  const std::filesystem::path exe = env && *env ? std::filesystem::path(env) : std::filesystem::path(VP_VOXPRESS_EXE);
  if (!std::filesystem::exists(exe))
    throw InputError("vp.run: the voxpress program that runs each sample was not found at '" + exe.string() +
                     "'; build it (ninja -C build voxpress) or set VOXPRESS_EXE to its path");
  return exe;
}

py::dict py_run(const std::string& config_path, const std::string& out, int jobs, const std::vector<std::string>& only,
                const std::string& max_memory, bool quiet, py::object progress, bool resume, bool force) {
  RunOptions options;
  options.out_dir = out;
  options.jobs = jobs;
  options.only = only;
  options.resume = resume;
  options.force = force;
  if (!max_memory.empty()) options.max_memory = parse_bytes(max_memory);
  options.worker_program = sample_worker_program();
  const RunResult r = LongCall(std::move(progress))([&] {
    const Config config = load_config(config_path, Registry::global());
    Progress progress(quiet);
    return run_batch(config, options, progress);
  });
  py::dict d;
  d["run_dir"] = r.run_dir.string();
  d["exit_code"] = r.exit_code();
  d["failed_samples"] = r.failed_samples;
  d["failed_report_stages"] = r.failed_report_stages;
  return d;
}

}  // namespace
}  // namespace vp

PYBIND11_MODULE(_voxpress, m) {
  using namespace vp;
  m.doc() = "voxpress's compiled core; use the `voxpress` package, which wraps it";
  register_all(Registry::global());

  static py::exception<InputError> input_error(m, "InputError", PyExc_ValueError);
  static py::exception<ComputeError> compute_error(m, "ComputeError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InputError& e) {
      PyErr_SetString(input_error.ptr(), e.what());
    } catch (const ComputeError& e) {
      PyErr_SetString(compute_error.ptr(), e.what());
    }
  });
  m.attr("version") = VOXPRESS_VERSION;

  py::class_<SolveRequest>(m, "SolveRequest")
      .def(py::init<>())
      .def_readwrite("phase", &SolveRequest::phase)
      .def_readwrite("cond", &SolveRequest::cond)
      .def_readwrite("axis", &SolveRequest::axis)
      .def_readwrite("params", &SolveRequest::params)
      .def_readwrite("unit", &SolveRequest::unit)
      .def_readwrite("out_dir", &SolveRequest::out_dir)
      .def_readwrite("threads", &SolveRequest::threads);
  py::class_<CracksRequest>(m, "CracksRequest")
      .def(py::init<>())
      .def_readwrite("host", &CracksRequest::host)
      .def_readwrite("void_phases", &CracksRequest::void_phases)
      .def_readwrite("use_grey", &CracksRequest::use_grey)
      .def_readwrite("params", &CracksRequest::params)
      .def_readwrite("out_dir", &CracksRequest::out_dir);

  m.def("read", &vp::py_read);
  m.def("info_file", &vp::py_info_file);
  m.def("info_array", &vp::py_info_array);
  m.def("solve", &vp::py_solve);
  m.def("measure", &vp::py_measure);
  m.def("cracks", &vp::py_cracks);
  m.def("segment", &vp::py_segment);
  m.def("run_command", &vp::py_run_command);
  m.def("run", &vp::py_run);
  // A stage's parameter names as `voxpress stages --json` lists them (the package's option sets), and the
  // keys it no longer takes (Stage::removed_params: vp.segment passes them on to be refused with why).
  auto stage_named = [](const std::string& stage) -> const Stage& {
    const Stage* s = Registry::global().stage(stage);
    if (!s) throw InputError("no stage '" + stage + "'");
    return *s;
  };
  m.def("stage_param_names", [stage_named](const std::string& stage) {
    std::vector<std::string> names;
    for (const ParamSpec& spec : stage_named(stage).params()) names.push_back(spec.name);
    return names;
  });
  m.def("stage_removed_param_names", [stage_named](const std::string& stage) {
    std::vector<std::string> names;
    for (const RemovedParam& gone : stage_named(stage).removed_params()) names.push_back(gone.name);
    return names;
  });
}
