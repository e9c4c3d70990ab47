// voxpress measure VOLUME [--metrics LIST] [--labels NAME=VALUE,...] [--roles NAME=ROLE,...]
//                         [--spacing SX,SY,SZ] [--particles FILE] [--connectivity N] [--json]
// Runs the measurement stages (the same code as in a YAML batch) on one label volume and prints
// the rows: a table, or {"rows": [...]} with --json.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/json_util.h"
#include "core/stage.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/commands/command_api.h"
#if VP_MPI
#include "pipeline/mpi/mpi_session.h"
#include "pipeline/mpi/slab_measure.h"
#include "pipeline/mpi/slab_sample.h"
#endif

namespace vp {

namespace {

// The stages `measure` runs, in their default order.
const std::vector<std::string> kMeasureStages = {
    "volume_fraction",      "volume_fractions_profile", "interfaces",     "contact_area", "connectivity",
    "geometric_tortuosity", "local_thickness",          "particle_sizes", "rev"};

// What --metrics accepts: a stage name, a metric its stages declare (mapped to the stage that
// emits it), or a short alias.
const std::map<std::string, std::string>& metric_to_stage() {
  static const std::map<std::string, std::string> m = [] {
    std::map<std::string, std::string> out = {{"fractions", "volume_fraction"},
                                              {"profiles", "volume_fractions_profile"}};
    for (const std::string& name : kMeasureStages) {
      const Stage* stage = Registry::global().stage(name);
      if (!stage) continue;
      out.emplace(name, name);
      for (const MetricSpec& metric : stage->metrics()) out.emplace(metric.name, name);
    }
    return out;
  }();
  return m;
}

// Stage names to run, in order, without repeats.
std::vector<std::string> stages_for(const std::string& metrics, const PhaseTable& table, bool have_particles) {
  std::vector<std::string> wanted;
  if (metrics.empty()) {
    wanted = {"volume_fraction", "volume_fractions_profile", "interfaces",
              "connectivity",    "geometric_tortuosity",     "local_thickness"};
    // Defaults that need something the volume may not have are left out, not failed.
    if (!table.by_role(Role::active).empty() && !table.by_role(Role::electrolyte).empty())
      wanted.insert(wanted.begin() + 3, "contact_area");
    if (have_particles) wanted.push_back("particle_sizes");
  } else {
    for (const auto& name : split_list(metrics)) {
      auto it = metric_to_stage().find(name);
      if (it == metric_to_stage().end()) {
        std::string known;
        for (const auto& [k, v] : metric_to_stage()) known += (known.empty() ? "" : ", ") + k;
        throw InputError("--metrics: unknown metric '" + name + "'; expected one of " + known);
      }
      wanted.push_back(it->second);
    }
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& s : wanted)
    if (seen.insert(s).second) out.push_back(s);
  return out;
}

}  // namespace

const std::vector<std::string> kMeasureConnectivityFlags = {"connectivity"};

void measure_sample(SampleContext& ctx, const std::string& metrics,
                    const std::map<std::string, std::string>& connectivity_params) {
  const Registry& reg = Registry::global();
  const std::vector<std::string> stages = stages_for(metrics, ctx.labels->phases, ctx.particles.has_value());
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const std::string& name = stages[i];
    // Stage i of n is the fraction [i/n, (i+1)/n] of the call; stopping is safe between stages.
    const ScopedProgressRange range(static_cast<double>(i) / stages.size(), static_cast<double>(i + 1) / stages.size());
    progress_point(0.0);
    const Stage* stage = reg.stage(name);
    if (!stage) throw InputError("--metrics: stage '" + name + "' is not available in this build");
    const std::map<std::string, std::string> values =
        name == "connectivity" ? connectivity_params : std::map<std::string, std::string>{};
    const Params params =
        stage_params(*stage, values, "measure command line",
                     PreflightContext{ctx.labels->phases, kLabels | (ctx.particles ? kParticles : 0u)});
    run_stage(*stage, params, ctx);
  }
  progress_point(1.0);
}

namespace {

void print_rows(const std::vector<MetricRow>& rows, bool json, int ranks) {
  if (json) {
    nlohmann::json out = rows_to_json(rows);
    if (ranks > 0) out["ranks"] = ranks;
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << std::left << std::setw(40) << "metric" << ' ' << std::setw(16) << "phase" << ' ' << std::setw(5)
            << "axis" << ' ' << std::setw(24) << "value" << ' ' << "unit\n";
  for (const MetricRow& r : rows)
    std::cout << std::left << std::setw(40) << r.metric << ' ' << std::setw(16) << r.phase << ' ' << std::setw(5)
              << r.axis << ' ' << std::setw(24) << format_number(r.value) << ' ' << r.unit << "\n";
}

#if VP_MPI
// `mpirun -np N voxpress measure`: every rank reads only its z-slab and runs the stages whose
// results merge exactly across slabs (slab_measure_stages); rank 0 prints. Under N > 1 a metric
// that cannot be merged exactly yet is refused by name, never measured on a slab.
int measure_distributed(const VolumeArgs& volume, const std::string& metrics, const std::string& labels_flag,
                        const std::string& roles_flag, const std::string& particles_path,
                        const std::map<std::string, std::string>& connectivity_params, bool json) {
  const MpiWorld& world = mpi_world();
  SlabSample s = read_slab_sample(world, volume, labels_flag, roles_flag);
  SampleContext& ctx = s.ctx;
  std::string run_metrics = metrics;
  on_all_ranks(world, [&] {
    if (!particles_path.empty() && world.size > 1)
      throw InputError(
          "--particles: per-particle metrics are not measured on z-slabs yet; run voxpress measure "
          "without mpirun for them");
    if (world.size == 1) return;  // one slab is the whole volume: every stage measures it as one process
    const std::vector<std::string> stages = stages_for(metrics, ctx.labels->phases, false);
    const auto& mergeable = slab_measure_stages();
    std::string kept, refused;
    for (const std::string& stage : stages) {
      const bool ok = std::find(mergeable.begin(), mergeable.end(), stage) != mergeable.end();
      std::string& list = ok ? kept : refused;
      list += (list.empty() ? "" : ",") + stage;
    }
    std::string available;
    for (const auto& m : mergeable) available += (available.empty() ? "" : ", ") + m;
    if (!refused.empty() && !metrics.empty())
      throw InputError("--metrics: " + refused +
                       " cannot be merged exactly across z-slabs yet, so measure refuses "
                       "them under mpirun -np " +
                       std::to_string(world.size) +
                       " (run them without mpirun); "
                       "measured on slabs: " +
                       available);
    if (!refused.empty() && world.rank == 0)
      std::cerr << "voxpress measure: on " << world.size << " MPI ranks only " << kept
                << " are measured; left out (not "
                << "merged exactly across z-slabs yet, run them without mpirun): " << refused << "\n";
    if (kept.empty()) throw InputError("--metrics: nothing to measure on z-slabs; measured on slabs: " + available);
    run_metrics = kept;
  });
  try {
    measure_sample(ctx, run_metrics, connectivity_params);
  } catch (const InputError& e) {
    throw with_roles_hint(e, ctx.labels->phases, !labels_flag.empty());
  }
  if (world.rank == 0) print_rows(ctx.rows, json, world.size);
  return 0;
}
#endif

int measure_main(const std::vector<std::string>& args) {
  CLI::App app("Measure microstructure metrics of a phase-label volume", "measure");
  VolumeArgs volume;
  add_volume_flags(app, volume);
  std::string metrics, labels_flag, roles_flag, particles_path;
  std::map<std::string, std::string> connectivity_params;
  bool json = false;
  app.add_option("--metrics", metrics, "comma-separated metric or stage names (default: all that apply)");
  app.add_option("--labels", labels_flag, "phase names: NAME=VALUE,... (e.g. pore=0,se=1,am=2)");
  app.add_option("--roles", roles_flag, "phase roles: NAME=ROLE,... (e.g. se=electrolyte,am=active)");
  app.add_option("--particles", particles_path, "particle-id volume (uint32, same dims) for per-particle metrics");
  const Stage* connectivity_stage = Registry::global().stage("connectivity");
  if (connectivity_stage) add_stage_flags(app, *connectivity_stage, kMeasureConnectivityFlags, connectivity_params);
  app.add_flag("--json", json, "print {\"rows\": [...]}");
  if (parse_cli(app, args)) return 0;
#if VP_MPI
  if (launched_by_mpirun())
    return measure_distributed(volume, metrics, labels_flag, roles_flag, particles_path, connectivity_params, json);
#endif

  SampleContext ctx = label_sample_context(load_volume(volume), labels_flag, roles_flag);
  if (!particles_path.empty()) ctx.particles = read_particle_ids(particles_path, *ctx.labels);

  try {
    measure_sample(ctx, metrics, connectivity_params);
  } catch (const InputError& e) {
    throw with_roles_hint(e, ctx.labels->phases, !labels_flag.empty());
  }

  print_rows(ctx.rows, json, 0);
  return 0;
}

}  // namespace

Command make_measure_command() {
  return {"measure", "microstructure metrics of a label volume (fractions, interfaces, contact, connectivity, ...)",
          measure_main};
}

}  // namespace vp
