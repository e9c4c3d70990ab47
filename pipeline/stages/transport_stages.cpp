// The `transport` stage (voxel conductivity solve) and the registration of `solve`.
// The solve itself is metrics/transport/conductivity_solve.h; this wrapper resolves phase
// names and conductivities, adds the rows, fills ctx.details and writes the optional fields,
// slice PNGs and through-plane profiles. The `solve` command runs this same stage.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <tbb/task_arena.h>

#include "core/atomic_file.h"
#include "core/axis.h"
#include "core/error.h"
#include "core/json_util.h"
#include "filters/io/slice_png.h"
#include "filters/io/volume_io.h"
#include "metrics/transport/conductivity_solve.h"
#include "pipeline/catalog.h"
#if VP_MPI
#include "pipeline/mpi/slab_sample.h"
#endif

namespace vp {

Command make_solve_command();  // pipeline/commands/solve_command.cpp

namespace {

namespace fs = std::filesystem;

// The conducting phases and their conductivities, resolved against the phase table.
struct ConductingPhases {
  ConductivityTable table{};
  std::vector<const Phase*> phases;  // in the phase table's order
  std::string name;                  // "se", or "se+am" with several
};

// Conductivities are 0 or within [1e-30, 1e30] in any unit: beyond that the solve's sums overflow or
// underflow (1e308 is a typo, not a material), so such values are input errors, not failed solves.
bool plausible_conductivity(double value) { return value == 0 || (value >= 1e-30 && value <= 1e30); }
const char* const kConductivityExpected = "expected 0 or a conductivity between 1e-30 and 1e30";

ConductingPhases resolve_conductivities(const Params& p, const PhaseTable& phases) {
  ConductingPhases out;
  auto add = [&](const std::string& key, const std::string& name_or_label, double value) {
    const Phase* ph = nullptr;
    try {
      ph = &phases.resolve(name_or_label);
    } catch (const InputError& e) {
      p.fail(key, e.what());
    }
    if (!std::isfinite(value) || value < 0 || !plausible_conductivity(value))
      p.fail(key, "conductivity of '" + name_or_label + "' is " + format_number(value) + "; " + kConductivityExpected);
    out.table[static_cast<std::size_t>(ph->label)] = value;
  };
  for (const auto& name : p.strings("phase")) add("phase", name, 1.0);
  const YAML::Node map = p.node("conductivities");
  if (map && map.IsMap())
    for (const auto& kv : map) {
      double value = 0;
      try {
        value = kv.second.as<double>();
      } catch (const YAML::Exception&) {
        p.fail("conductivities", "value of '" + kv.first.as<std::string>() + "' is not a number");
      }
      add("conductivities", kv.first.as<std::string>(), value);
    }
  for (const Phase& ph : phases.phases())
    if (out.table[static_cast<std::size_t>(ph.label)] > 0) out.phases.push_back(&ph);
  // "se", "se+am"; a long list (a grey range such as 0-89) as "phase0..phase89".
  if (out.phases.size() <= 4)
    for (const Phase* ph : out.phases) out.name += (out.name.empty() ? "" : "+") + ph->name;
  else out.name = out.phases.front()->name + ".." + out.phases.back()->name;
  return out;
}

nlohmann::json result_json(const TransportResult& r) {
  nlohmann::json j = {
      {"sigma_eff", json_number(r.sigma_eff)},
      {"tau", json_number(r.tau)},
      {"macmullin", json_number(r.macmullin)},
      {"porosity", json_number(r.conducting_fraction)},
      {"porosity_percolating", json_number(r.percolating_fraction)},
      {"iterations", r.iterations},
      {"residual", json_number(r.residual)},
      {"flux_in", json_number(r.flux_in)},
      {"flux_out", json_number(r.flux_out)},
      {"flux_balance", json_number(r.flux_balance)},
      {"status", r.status},
      {"seconds", r.seconds},
      {"sigma_ref", json_number(r.sigma_ref)},
      {"length_um", r.length_um},
      {"area_um2", r.area_um2},
      {"multigrid_levels", r.multigrid_levels},
  };
  if (r.status == "not_percolating")
    j["note"] = "no path of conducting voxels joins the two faces: sigma_eff = 0, tau and macmullin infinite (null)";
  if (r.status == "not_converged")
    j["note"] = "the iteration limit was reached before the tolerances were met; numbers are not trustworthy";
  return j;
}

std::string profile_csv(const TransportResult& r) {
  std::ostringstream csv;
  csv << "slice,position_um,current_in,potential_mean,percolating_fraction\n";
  for (std::size_t t = 0; t < r.profile.size(); ++t) {
    const ProfileSlice& s = r.profile[t];
    csv << t << ',' << format_number(s.position_um) << ',' << format_number(s.current_in) << ','
        << format_number(s.potential_mean) << ',' << format_number(s.percolating_fraction) << '\n';
  }
  csv << "outlet," << format_number(r.length_um) << ',' << format_number(r.flux_out) << ",0,\n";
  return csv.str();
}

// Fields as float TIFFs, and viridis slice PNGs of the primary axis (non-conducting voxels black).
void write_fields(const TransportResult& r, bool primary, SampleContext& ctx) {
  const std::string axis = axis_name(r.axis);
  const auto pot = ctx.artifact("potential_" + axis + ".tif");
  const auto cur = ctx.artifact("current_" + axis + ".tif");
  if (!pot || !cur) return;
  write_volume(*r.potential, pot->string());
  write_volume(*r.current_density, cur->string());
  if (!primary) return;
  Volume<float> shown = *r.potential;
  for (index_t i = 0; i < shown.size(); ++i)
    if ((*r.current_density)[i] == 0 && shown[i] == 0) shown[i] = std::numeric_limits<float>::quiet_NaN();
  for (Plane plane : {Plane::xy, Plane::xz, Plane::yz}) {
    if (const auto pp = ctx.artifact("potential_" + to_string(plane) + ".png"))
      write_field_png(shown, plane, -1, pp->string(), std::make_pair(0.0, 1.0));
    if (const auto cp = ctx.artifact("current_" + to_string(plane) + ".png"))
      write_field_png(*r.current_density, plane, -1, cp->string());
  }
}

class TransportStage : public Stage {
 public:
  std::string name() const override { return "transport"; }
  std::string summary() const override {
    return "voxel conductivity solve: sigma_eff, tortuosity factor, MacMullin number per axis (CG + multigrid)";
  }
  std::vector<ParamSpec> params() const override {
    return {
        param("phase", ParamType::string_list, "conducting phases (names or labels), conductivity 1 each", "", "[]"),
        param("conductivities", ParamType::map,
              "conductivity per phase name or label, e.g. {se: 1, am: 1e-4}; phases not named conduct nothing",
              "conductivity_unit", "{}"),
        param("conductivity_unit", ParamType::string, "unit of the conductivities, e.g. mS/cm (1 = normalised)", "",
              "\"1\""),
        choices(param("axes", ParamType::string_list, "transport directions", "", "[z]"), axis_choices()),
        above(param("tol", ParamType::number, "relative residual ‖b − Ax‖/‖b‖ to reach", "",
                    number_default(TransportOptions{}.tolerance)),
              0.0),
        above(param("flux_balance", ParamType::number, "inlet/outlet current balance |I_in − I_out|/|I_in| to reach",
                    "", number_default(TransportOptions{}.flux_balance)),
              0.0),
        param("periodic", ParamType::boolean, "side faces wrap around (periodic boundary)", "",
              bool_default(TransportOptions{}.periodic)),
        bounded(param("max_iterations", ParamType::integer, "conjugate-gradient iterations at most", "",
                      std::to_string(TransportOptions{}.max_iterations)),
                1.0),
        param("write_fields", ParamType::boolean, "write potential/current-density volumes (float TIFF) and slice PNGs",
              "", "false"),
        choices(param("engine", ParamType::string,
                      "solver: native (this process's threads) or petsc (PETSc + MPI, CG + BoomerAMG)", "", "native"),
                {"native", "petsc"}),
    };
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"sigma_eff", "{conductivity_unit}", "phase, axis"},
        {"tau", "1", "phase, axis"},
        {"macmullin", "1", "phase, axis"},
        {"porosity_percolating", "1", "phase, axis"},
    };
  }
  unsigned needs() const override { return kLabels; }
  // Potential 8 and three CG vectors 12 per carrying voxel, codes 1, coarse levels with 2-byte
  // couplings: measured 19.1–20.9 B/voxel (bench_pipeline 256, SE 1 + AM 1e-4), 20.8 on CliTest's
  // 150³ nearly all-conducting block (the input's byte included); fields add 8.
  double bytes_per_voxel() const override { return 20.0; }

  void preflight(const Params& p, const PreflightContext& pf, Diagnostics& d) const override {
    if (p.strings("phase").empty() && (!p.node("conductivities") || p.node("conductivities").size() == 0))
      d.error(p.key_path("phase"), "name the conducting phase(s): phase: [se] or conductivities: {se: 1, am: 1e-4}");
    if (p.string("engine") == "petsc") {
#if VP_MPI
      if (p.boolean("write_fields"))
        d.error(p.key_path("write_fields"),
                "engine petsc writes no field volumes: set write_fields false or engine native");
#else
      d.error(p.key_path("engine"), "this voxpress was built without PETSc/MPI (cmake -DVP_MPI=ON); use engine native");
#endif
    }
    if (pf.phases.empty()) return;
    for (const auto& name : p.strings("phase")) {
      try {
        pf.phases.resolve(name);
      } catch (const InputError& e) {
        d.error(p.node("phase"), p.key_path("phase"), e.what());
      }
    }
    const YAML::Node map = p.node("conductivities");
    if (!map || !map.IsMap()) return;
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      const std::string where = p.key_path("conductivities") + "." + key;
      try {
        pf.phases.resolve(key);
      } catch (const InputError& e) {
        d.error(kv.first, where, e.what());
      }
      double value = -1;
      try {
        value = kv.second.as<double>();
      } catch (const YAML::Exception&) {
      }
      if (!std::isfinite(value) || value < 0 || !plausible_conductivity(value))
        d.error(kv.second, where, "found '" + kv.second.as<std::string>("") + "'; " + kConductivityExpected);
    }
  }

  void run(const Params& p, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    const ConductingPhases cond = resolve_conductivities(p, labels.phases);
    const std::string unit = p.string("conductivity_unit");
    TransportOptions o;
    o.periodic = p.boolean("periodic");
    o.tolerance = p.number("tol");
    o.flux_balance = p.number("flux_balance");
    o.max_iterations = p.integer("max_iterations");
    const std::string engine = p.string("engine");
    o.keep_fields = p.boolean("write_fields") && !ctx.out_dir.empty() && engine == "native";
    o.keep_profile = true;

    std::vector<int> axes;
    for (const auto& a : p.strings("axes")) axes.push_back(parse_axis(a, "axes"));
    int primary = axes.empty() ? 2 : axes.front();
    for (int a : axes)
      if (a == ctx.sample.pressing_axis) primary = a;

    nlohmann::json per_axis = nlohmann::json::object();
    tbb::task_arena arena(std::max(1, ctx.threads));
    for (std::size_t n = 0; n < axes.size(); ++n) {
      const int axis = axes[n];
      o.axis = axis;
      ctx.report("solving along " + axis_name(axis) + " for " + (cond.name.empty() ? "(nothing)" : cond.name));
      TransportResult r;
      if (engine == "petsc") {
#if VP_MPI
        r = solve_transport_engine_petsc(labels, ctx.slab, cond.table, o);
#else
        throw InputError("transport: engine petsc needs a voxpress built with PETSc/MPI (cmake -DVP_MPI=ON)");
#endif
      } else {
        if (ctx.slab)
          throw InputError("transport: engine native needs the whole volume, this process holds one z-slab");
        // The last axis of a command's solve may reuse the labels' buffer for its code volume.
        if (ctx.labels_last_use && n + 1 == axes.size() && !labels.borrowed()) {
          Volume<std::uint8_t> voxels = ctx.labels->release_voxels();
          arena.execute([&] { r = solve_transport(std::move(voxels), cond.table, o); });
        } else {
          arena.execute([&] { r = solve_transport(labels, cond.table, o); });
        }
      }
      const std::string a = axis_name(axis);
      ctx.add("sigma_eff", cond.name, a, r.sigma_eff, unit);
      ctx.add("tau", cond.name, a, r.tau, "1");
      ctx.add("macmullin", cond.name, a, r.macmullin, "1");
      ctx.add("porosity_percolating", cond.name, a, r.percolating_fraction, "1");
      char line[256];
      std::snprintf(line, sizeof line, "%s: %s, sigma_eff %.6g %s, tau %.6g, %ld iterations, %.2f s", a.c_str(),
                    r.status.c_str(), r.sigma_eff, unit.c_str(), r.tau, r.iterations, r.seconds);
      ctx.report(line);
      per_axis[a] = result_json(r);
      ctx.write_artifact("transport_profile_" + a + ".csv", profile_csv(r));
      if (r.potential) write_fields(r, axis == primary, ctx);
    }
    nlohmann::json conductivities = nlohmann::json::object();
    for (const Phase* ph : cond.phases) conductivities[ph->name] = cond.table[static_cast<std::size_t>(ph->label)];
    ctx.details["phase"] = cond.name;
    ctx.details["conductivities"] = conductivities;
    ctx.details["conductivity_unit"] = unit;
    ctx.details["settings"] = {{"tol", o.tolerance},
                               {"flux_balance", o.flux_balance},
                               {"periodic", o.periodic},
                               {"max_iterations", o.max_iterations},
                               {"connectivity", 6},
                               {"boundary", "Dirichlet on the two faces of the axis (L = N h), zero flux elsewhere"}};
    if (engine == "petsc") {
      ctx.details["settings"]["engine"] = "petsc";
      ctx.details["settings"]["preconditioner"] = "PETSc CG + hypre BoomerAMG";
    }
    ctx.details["axes"] = per_axis;
  }
};

}  // namespace

void register_transport(Registry& registry) {
  registry.add(std::make_unique<TransportStage>());
  registry.add(make_solve_command());
}

}  // namespace vp
