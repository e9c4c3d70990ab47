// voxpress solve VOLUME [--phase LABEL[,LABEL...]] [--cond LABEL=VALUE,...] [--axis x|y|z|all]
//                       [--spacing SX,SY,SZ] [--tol T] [--periodic] [--json] [--out DIR] ...
// One-shot conductivity solve on a label volume. Runs the `transport` stage (the same code as
// in a YAML batch) and prints a table, or one JSON object with --json.
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "core/axis.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/stage.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/commands/command_api.h"
#if VP_MPI
#include "pipeline/mpi/slab_sample.h"
#endif

namespace vp {

namespace {

// "0-89" -> the labels present in 0..89; anything else is kept as a name or label.
std::vector<std::string> expand_ranges(const std::vector<std::string>& items, const std::vector<int>& present,
                                       const std::string& flag) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    const auto dash = item.find('-');
    int lo = -1, hi = -1;
    if (dash != std::string::npos && dash > 0 && std::sscanf(item.c_str(), "%d-%d", &lo, &hi) == 2) {
      if (lo < 0 || hi > 255 || lo > hi)
        throw InputError(flag + ": range '" + item + "' must be A-B with 0 ≤ A ≤ B ≤ 255");
      for (int l : present)
        if (l >= lo && l <= hi) out.push_back(std::to_string(l));
      continue;
    }
    out.push_back(item);
  }
  return out;
}

std::string yaml_list(const std::vector<std::string>& items) {
  std::string s = "[";
  for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + nlohmann::json(items[i]).dump();
  return s + "]";
}

// The transport stage's parameters that `solve` takes as flags of the same names (--tol, ...).
const std::vector<std::string> kSolveFlags = {"tol", "flux_balance", "max_iterations", "periodic"};

const Stage& transport_stage() {
  const Stage* stage = Registry::global().stage("transport");
  if (!stage) throw InputError("the transport stage is not registered in this build");
  return *stage;
}

void print_table(const nlohmann::json& axes, const std::string& phase, const std::string& unit) {
  std::cout << "conducting phase(s): " << phase << "   sigma_eff unit: " << unit << "\n";
  std::cout << std::left << std::setw(5) << "axis" << std::setw(17) << "status" << std::right << std::setw(13)
            << "sigma_eff" << std::setw(11) << "tau" << std::setw(11) << "macmullin" << std::setw(10) << "porosity"
            << std::setw(11) << "perc." << std::setw(7) << "iter" << std::setw(11) << "residual" << std::setw(11)
            << "balance" << std::setw(9) << "s"
            << "\n";
  auto num = [](const nlohmann::json& v, int digits = 6) {
    if (v.is_null()) return std::string("inf");
    std::ostringstream o;
    o << std::setprecision(digits) << v.get<double>();
    return o.str();
  };
  for (const auto& [axis, r] : axes.items()) {
    std::ostringstream sec;
    sec << std::fixed << std::setprecision(2) << r["seconds"].get<double>();
    std::cout << std::left << std::setw(5) << axis << std::setw(17) << r["status"].get<std::string>() << std::right
              << std::setw(13) << num(r["sigma_eff"]) << std::setw(11) << num(r["tau"]) << std::setw(11)
              << num(r["macmullin"]) << std::setw(10) << num(r["porosity"], 5) << std::setw(11)
              << num(r["porosity_percolating"], 5) << std::setw(7) << r["iterations"].get<long>() << std::setw(11)
              << num(r["residual"], 2) << std::setw(11) << num(r["flux_balance"], 2) << std::setw(9) << sec.str()
              << "\n";
  }
}

}  // namespace

nlohmann::json solve_sample(SampleContext& ctx, const SolveRequest& request) {
  if (request.phase.empty() && request.cond.empty())
    throw InputError("name the conducting phase(s): --phase LABEL[,LABEL...] or --cond LABEL=VALUE,...");
  if (request.axis != "all" && axis_index(request.axis) < 0)
    throw InputError("--axis '" + request.axis + "': expected x, y, z or all");
  const int threads = request.threads;
  std::unique_ptr<tbb::global_control> limit;
  if (threads > 0) limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, threads);

  const std::vector<int> present =
      request.labels_present.empty() ? labels_present(*ctx.labels) : request.labels_present;

  std::map<std::string, std::string> values = request.params;
  if (!request.phase.empty()) values["phase"] = yaml_list(expand_ranges(split_list(request.phase), present, "--phase"));
  if (!request.cond.empty()) {
    std::string map = "{";
    for (const auto& [name, value] : parse_assignments(request.cond, "--cond")) {
      try {
        std::size_t used = 0;
        (void)std::stod(value, &used);
        if (used != value.size()) throw std::invalid_argument(value);
      } catch (const std::exception&) {
        throw InputError("--cond: '" + name + "=" + value + "': the conductivity is not a number");
      }
      map += (map.size() > 1 ? ", " : "") + nlohmann::json(name).dump() + ": " + value;
    }
    values["conductivities"] = map + "}";
  }
  values["axes"] = request.axis == "all" ? "[x, y, z]" : "[" + request.axis + "]";
  values["conductivity_unit"] = nlohmann::json(request.unit).dump();
  values["write_fields"] = request.out_dir.empty() || request.engine == "petsc" ? "false" : "true";
  values["engine"] = request.engine;

  const Stage* stage = &transport_stage();
  const Params params =
      stage_params(*stage, values, "solve command line", PreflightContext{ctx.labels->phases, kLabels});

  ctx.threads = threads > 0 ? threads : tbb::this_task_arena::max_concurrency();
  if (!request.out_dir.empty()) {
    std::filesystem::create_directories(request.out_dir);
    ctx.out_dir = request.out_dir;
  }
  run_stage(*stage, params, ctx);

  nlohmann::json out = {
      {"phase", ctx.details["phase"]},
      {"conductivities", ctx.details["conductivities"]},
      {"conductivity_unit", request.unit},
      {"settings", ctx.details["settings"]},
  };
  for (const auto& [a, r] : ctx.details["axes"].items()) out[a] = r;
  if (!request.out_dir.empty()) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : ctx.artifacts) files.push_back(f.string());
    out["outputs"] = files;
  }
  return out;
}

bool solve_converged(const nlohmann::json& solve_json) {
  for (const char* a : kAxisNames)
    if (solve_json.contains(a) && solve_json[a]["status"] == "not_converged") return false;
  return true;
}

namespace {

int solve_main(const std::vector<std::string>& args) {
  CLI::App app("Effective conductivity, tortuosity factor and MacMullin number by a voxel conduction solve", "solve");
  VolumeArgs volume;
  add_volume_flags(app, volume);
  std::string labels_flag, roles_flag;
  bool json = false;
  // The flags fill the request solve_sample takes (its defaults are the flags' defaults).
  SolveRequest request;
  app.add_option("--phase", request.phase, "conducting phase(s), conductivity 1: names or labels, A-B ranges (0-89)");
  app.add_option("--cond", request.cond, "conductivities: LABEL=VALUE,... (names or labels; others 0)");
  app.add_option("--axis", request.axis, "x, y, z or all")
      ->check(CLI::IsMember({"x", "y", "z", "all"}))
      ->capture_default_str();
  add_stage_flags(app, transport_stage(), kSolveFlags, request.params);
  app.add_option("--unit", request.unit, "unit of the conductivities (e.g. mS/cm; 1 = normalised)")
      ->capture_default_str();
  app.add_option("--labels", labels_flag, "phase names: NAME=VALUE,... (e.g. pore=0,se=1,am=2)");
  app.add_option("--roles", roles_flag, "phase roles: NAME=ROLE,...");
  app.add_option(
      "--out", request.out_dir,
      "folder for potential/current volumes (TIFF), potential_*.png, current_*.png, transport_profile_*.csv");
  app.add_option("--threads", request.threads, "worker threads (0 = all)");
  app.add_option("--engine", request.engine,
                 "solver: native (threads) or petsc (PETSc + MPI: mpirun -np N voxpress solve ...)")
      ->check(CLI::IsMember({"native", "petsc"}))
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object");
  if (parse_cli(app, args)) return 0;
  if (request.phase.empty() && request.cond.empty())
    throw InputError("name the conducting phase(s): --phase LABEL[,LABEL...] or --cond LABEL=VALUE,...");

  SampleContext ctx;
  nlohmann::json result, input_json;
  int ranks = 0;  // 0: native (no "ranks" key)
  if (request.engine == "petsc") {
#if VP_MPI
    // Every rank reads only its z-slab; rank 0 prints, the others only return the exit code.
    const bool under_mpirun = launched_by_mpirun();  // before MPI starts: a singleton sets the same variables
    const MpiWorld& world = mpi_world();
    if (!under_mpirun && world.rank == 0)
      std::cerr << "voxpress solve: --engine petsc without mpirun: running on 1 rank (mpirun -np N voxpress solve ... "
                   "--engine petsc for N)\n";
    if (world.rank != 0) request.out_dir.clear();
    on_all_ranks(world, [&] {
      if (!request.out_dir.empty()) create_output_folder(request.out_dir, "--out");
    });
    SlabSample s = read_slab_sample(world, volume, labels_flag, roles_flag);
    ctx = std::move(s.ctx);
    request.labels_present = s.labels_present;
    on_all_ranks(world, [&] {
      try {
        result = solve_sample(ctx, request);
      } catch (const InputError& e) {
        throw with_roles_hint(e, ctx.labels->phases, !labels_flag.empty());
      }
    });
    if (world.rank != 0) return solve_converged(result) ? 0 : 3;
    ranks = world.size;
    input_json = s.input;
#else
    throw InputError(
        "--engine petsc: this voxpress was built without PETSc/MPI (install libpetsc-real-dev and "
        "OpenMPI, then cmake -DVP_MPI=ON)");
#endif
  } else {
    if (!request.out_dir.empty()) create_output_folder(request.out_dir, "--out");
    ReadResult input = load_volume(volume);
    const std::string format = input.format;
    ctx = label_sample_context(std::move(input), labels_flag, roles_flag);
    ctx.labels_last_use = true;  // read below for dims, spacing and provenance only
    try {
      result = solve_sample(ctx, request);
    } catch (const InputError& e) {
      throw with_roles_hint(e, ctx.labels->phases, !labels_flag.empty());
    }
    input_json = {{"path", ctx.labels->provenance.path},
                  {"sha256", ctx.labels->provenance.sha256},
                  {"format", format},
                  {"dims", to_json(ctx.labels->dims())},
                  {"spacing_um", to_json(ctx.labels->spacing_um)}};
  }
  const bool converged = solve_converged(result);
  const Vec3 spacing = ctx.labels->spacing_um;
  const Dims dims = ctx.slab ? ctx.slab->global : ctx.labels->dims();
  if (json) {
    nlohmann::json out = {{"input", input_json}};
    out.update(result);
    if (ranks > 0) out["ranks"] = ranks;
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << volume.path << "  " << to_string(dims) << " voxels of " << format_number(spacing[0]) << " x "
              << format_number(spacing[1]) << " x " << format_number(spacing[2]) << " µm\n";
    if (ranks > 0) std::cout << "engine petsc on " << ranks << (ranks == 1 ? " MPI rank\n" : " MPI ranks\n");
    print_table(ctx.details["axes"], ctx.details["phase"].get<std::string>(), request.unit);
    for (const auto& f : ctx.artifacts) std::cout << "wrote " << f.string() << "\n";
  }
  if (!converged) {
    std::cerr << "voxpress solve: not converged within --max-iterations " << result["settings"]["max_iterations"]
              << "\n";
    return 3;
  }
  return 0;
}

}  // namespace

Command make_solve_command() {
  return {"solve", "effective conductivity, tortuosity factor, MacMullin number (voxel conduction solve)", solve_main};
}

}  // namespace vp
