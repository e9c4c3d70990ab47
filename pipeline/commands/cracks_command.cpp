// voxpress cracks VOLUME --host LABEL [--grey GREY] [--void LABEL] [--labels NAME=VALUE,...]
//                       [--roles NAME=ROLE,...] [--particles FILE] [--spacing ...] [--out DIR] [--json]
// Runs the `cracks` stage (the same code as in a YAML batch) on one label volume and prints the
// summary and the crack table, or with --json the stage's details plus {"rows": [...]}.
// With --crack-ids IDS it measures the given cracks instead (no detection): the crack-network
// rows only, on one process or, under `mpirun -np N`, on z-slabs merged exactly
// (metrics/mpi/slab_cracks.h), the same numbers bit for bit.
#include <array>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "core/axis.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/stage.h"
#include "filters/io/volume_io.h"
#include "metrics/cracks/measure.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/commands/command_api.h"
#if VP_MPI
#include "filters/io/slab_read.h"
#include "metrics/mpi/slab_cracks.h"
#include "pipeline/mpi/mpi_session.h"
#include "pipeline/mpi/slab_sample.h"
#endif

namespace vp {

namespace {

// The cracks stage's parameters that `cracks` takes as flags of the same names (--max-aperture, ...).
const std::vector<std::string> kCracksFlags = {"max_aperture", "min_aspect", "min_voxels", "sheet_threshold",
                                               "connectivity"};

const Stage& cracks_stage() {
  const Stage* stage = Registry::global().stage("cracks");
  if (!stage) throw InputError("the cracks stage is not available in this build");
  return *stage;
}

std::string number_or_dash(const nlohmann::json& v, int precision = 6) {
  if (!v.is_number()) return "-";
  std::ostringstream s;
  s << std::setprecision(precision) << v.get<double>();
  return s.str();
}

void print_table(const nlohmann::json& d) {
  std::cout << "host " << d["host"].get<std::string>() << ", pressing axis " << d["pressing_axis"].get<std::string>()
            << "\n";
  for (const char* key :
       {"crack_count", "crack_volume_fraction", "crack_surface_density", "crack_area", "aperture_mean", "aperture_max",
        "total_length", "network_count", "largest_network_fraction", "orientation_mean_deg"}) {
    const auto& u = d["units"];
    std::cout << std::left << std::setw(28) << key << ' ' << std::setw(16) << number_or_dash(d[key]) << ' '
              << (u.contains(key) ? u[key].get<std::string>() : "") << "\n";
  }
  for (const char* axis : kAxisNames)
    std::cout << std::left << std::setw(28) << (std::string("percolates ") + axis) << ' ' << std::setw(16)
              << (d["percolates"][axis].get<bool>() ? "yes" : "no") << "\n";
  for (const char* axis : kAxisNames)
    std::cout << std::left << std::setw(28) << (std::string("bottleneck_diameter ") + axis) << ' ' << std::setw(16)
              << number_or_dash(d["bottleneck_diameter"][axis]) << " µm\n";
  std::cout << "\n"
            << std::right << std::setw(6) << "id" << std::setw(14) << "area_um2" << std::setw(12) << "ap_mean_um"
            << std::setw(12) << "ap_max_um" << std::setw(10) << "nx" << std::setw(10) << "ny" << std::setw(10) << "nz"
            << std::setw(10) << "angle"
            << "\n";
  for (const auto& c : d["cracks"]) {
    std::cout << std::setw(6) << c["id"].get<long long>() << std::setw(14) << number_or_dash(c["area_um2"], 5)
              << std::setw(12) << number_or_dash(c["aperture_mean_um"], 4) << std::setw(12)
              << number_or_dash(c["aperture_max_um"], 4);
    std::cout << std::fixed << std::setprecision(3);
    for (int k = 0; k < 3; ++k) std::cout << std::setw(10) << c["normal"][k].get<double>();
    std::cout << std::setprecision(1) << std::setw(10) << c["angle_to_pressing_axis_deg"].get<double>() << "\n";
    std::cout.unsetf(std::ios::fixed);
    std::cout << std::setprecision(6);
  }
}

// The rows of `cracks --crack-ids`: what merges exactly across z-slabs (slab_cracks.h), the
// same on one process and under mpirun.
struct CrackNetworkSummary {
  std::string host;
  std::int64_t crack_count = 0;
  double crack_volume_um3 = 0, host_volume_um3 = 0, crack_volume_fraction = 0;
  int network_count = 0;
  double largest_network_fraction = 0;
  std::array<bool, 3> percolates{};
  std::array<std::int64_t, 3> percolating_voxels{};
};

// Left out under --crack-ids (no detection, or not merged across slabs): named on stderr.
constexpr const char* kNotFromCrackIds =
    "crack_surface_density, crack_area, crack_total_length, aperture_mean, aperture_max, crack_orientation_mean, "
    "bottleneck_diameter";

void print_crack_networks(const CrackNetworkSummary& s, bool json, int ranks) {
  std::vector<MetricRow> rows = {{"crack_count", s.host, "", static_cast<double>(s.crack_count), "1"},
                                 {"crack_volume_fraction", s.host, "", s.crack_volume_fraction, "1"},
                                 {"crack_volume", s.host, "", s.crack_volume_um3, "µm³"},
                                 {"crack_network_count", s.host, "", static_cast<double>(s.network_count), "1"},
                                 {"largest_network_fraction", s.host, "", s.largest_network_fraction, "1"}};
  for (std::size_t a = 0; a < 3; ++a)
    rows.push_back({"percolates", "", kAxisNames[a], s.percolates[a] ? 1.0 : 0.0, "1"});
  if (!json) {
    for (const MetricRow& r : rows)
      std::cout << std::left << std::setw(28) << r.metric << ' ' << std::setw(12) << r.phase << ' ' << std::setw(5)
                << r.axis << ' ' << std::setw(24) << format_number(r.value) << ' ' << r.unit << "\n";
    return;
  }
  nlohmann::json out = rows_to_json(rows);
  out["host"] = s.host;
  out["crack_count"] = s.crack_count;
  out["crack_volume_fraction"] = json_number(s.crack_volume_fraction);
  out["crack_volume"] = json_number(s.crack_volume_um3);
  out["host_volume"] = json_number(s.host_volume_um3);
  out["network_count"] = s.network_count;
  out["largest_network_fraction"] = json_number(s.largest_network_fraction);
  for (std::size_t a = 0; a < 3; ++a) {
    out["percolates"][kAxisNames[a]] = s.percolates[a];
    out["percolating_voxels"][kAxisNames[a]] = s.percolating_voxels[a];
  }
  if (ranks > 0) out["ranks"] = ranks;
  std::cout << out.dump(2) << "\n";
}

struct CrackIdsRequest {
  std::string path, host, void_phases, labels_flag, roles_flag;
  std::map<std::string, std::string> params;  // the stage flags given (only connectivity applies)
};

// The host and void labels and the connectivity of a --crack-ids run, checked as the stage checks them.
struct CrackIdsSetup {
  std::string host_name;
  std::vector<int> host, voids;
  int connectivity = 26;
};
CrackIdsSetup crack_ids_setup(const CrackIdsRequest& r, const PhaseTable& table) {
  std::map<std::string, std::string> values = r.params;
  values["host"] = "[" + r.host + "]";
  values["void"] = "[" + r.void_phases + "]";
  const Params p = stage_params(cracks_stage(), values, "cracks command line", PreflightContext{table, kLabels});
  CrackIdsSetup s;
  for (const Phase* ph : table.resolve_list(p.strings("host"))) {
    s.host.push_back(ph->label);
    s.host_name += (s.host_name.empty() ? "" : "+") + ph->name;
  }
  for (const Phase* ph : table.resolve_list(p.strings("void"))) s.voids.push_back(ph->label);
  s.connectivity = static_cast<int>(p.integer("connectivity"));
  return s;
}

int crack_networks_one_process(const VolumeArgs& volume, const CrackIdsRequest& r, bool json) {
  SampleContext ctx = label_sample_context(load_volume(volume), r.labels_flag, r.roles_flag);
  ReadOptions ro;
  ro.path = r.path;
  const Volume<std::uint32_t> ids = to_id_volume(read_volume(ro).volume, r.path, *ctx.labels, "crack id");
  CrackIdsSetup setup;
  try {
    setup = crack_ids_setup(r, ctx.labels->phases);
  } catch (const InputError& e) {
    throw with_roles_hint(e, ctx.labels->phases, !r.labels_flag.empty());
  }
  CrackMeasureOptions mo;
  mo.host_labels = setup.host;
  mo.void_labels = setup.voids;
  mo.connectivity = setup.connectivity;
  mo.skeleton = false;
  const CrackMeasurements m = measure_cracks(*ctx.labels, ids, mo);
  CrackNetworkSummary s;
  s.host = setup.host_name;
  s.crack_count = static_cast<std::int64_t>(m.cracks.size());
  s.crack_volume_um3 = m.crack_volume_um3;
  s.host_volume_um3 = m.host_volume_um3;
  s.crack_volume_fraction = m.crack_volume_fraction;
  s.network_count = m.network_count;
  s.largest_network_fraction = m.largest_network_fraction;
  for (std::size_t a = 0; a < 3; ++a) {
    s.percolates[a] = m.short_circuit[a].percolates;
    s.percolating_voxels[a] = m.short_circuit[a].percolating_voxels;
  }
  std::cerr << "voxpress cracks --crack-ids: crack-network rows only; not measured: " << kNotFromCrackIds << "\n";
  print_crack_networks(s, json, 0);
  return 0;
}

#if VP_MPI
// `mpirun -np N voxpress cracks VOLUME --crack-ids IDS`: each rank reads its z-slab of both files.
int crack_networks_distributed(const VolumeArgs& volume, const CrackIdsRequest& r, bool json) {
  const MpiWorld& world = mpi_world();
  SlabSample sample = read_slab_sample(world, volume, r.labels_flag, r.roles_flag);
  const LabelVolume& labels = *sample.ctx.labels;
  const ZSlabLayout& layout = *sample.ctx.slab;
  Volume<std::uint32_t> ids;
  CrackIdsSetup setup;
  on_all_ranks(world, [&] {
    ReadOptions ro;
    ro.path = r.path;
    SlabRead slab = read_z_slab(ro, world.size, world.rank);
    if (!(slab.layout.global == layout.global))
      throw InputError(r.path + ": dims " + to_string(slab.layout.global) + " differ from the label volume's " +
                       to_string(layout.global));
    ids = to_id_volume(slab.read.volume,
                       r.path + " (z " + std::to_string(layout.z0()) + ".." + std::to_string(layout.z1() - 1) + ")",
                       labels, "crack id");
    try {
      setup = crack_ids_setup(r, labels.phases);
    } catch (const InputError& e) {
      throw with_roles_hint(e, labels.phases, !r.labels_flag.empty());
    }
  });
  CrackNetworkOptions o;
  o.host_labels = setup.host;
  o.void_labels = setup.voids;
  o.connectivity = setup.connectivity;
  const CrackNetworks n = slab_crack_networks(labels, ids, o, layout, world.comm);
  if (world.rank != 0) return 0;
  CrackNetworkSummary s;
  s.host = setup.host_name;
  s.crack_count = n.crack_count;
  s.crack_volume_um3 = n.crack_volume_um3;
  s.host_volume_um3 = n.host_volume_um3;
  s.crack_volume_fraction = n.crack_volume_fraction;
  s.network_count = n.network_count;
  s.largest_network_fraction = n.largest_network_fraction;
  s.percolates = n.percolates;
  s.percolating_voxels = n.percolating_voxels;
  std::cerr << "voxpress cracks --crack-ids on " << world.size
            << " MPI ranks: crack-network rows only; not measured: " << kNotFromCrackIds << "\n";
  print_crack_networks(s, json, world.size);
  return 0;
}
#endif

}  // namespace

nlohmann::json cracks_sample(SampleContext& ctx, const CracksRequest& request) {
  if (!request.out_dir.empty()) {
    std::filesystem::create_directories(request.out_dir);
    ctx.out_dir = request.out_dir;
  }
  std::map<std::string, std::string> values = request.params;
  values["host"] = "[" + request.host + "]";
  values["void"] = "[" + request.void_phases + "]";
  values["pressing_axis"] = "sample";
  if (!request.use_grey) values["use_grey"] = "false";

  const Stage* stage = &cracks_stage();
  const Params params = stage_params(*stage, values, "cracks command line",
                                     PreflightContext{ctx.labels->phases, kLabels | (ctx.grey ? kGrey : 0u)});
  progress_point(0.0);
  run_stage(*stage, params, ctx);
  progress_point(1.0);
  nlohmann::json out = ctx.details;
  out["rows"] = rows_to_json(ctx.rows)["rows"];
  return out;
}

namespace {

int cracks_main(const std::vector<std::string>& args) {
  CLI::App app("Detect and measure cracks in a host phase of a label volume", "cracks");
  VolumeArgs volume;
  add_volume_flags(app, volume);
  std::string host = "electrolyte", void_phases = "pore", grey_path, labels_flag, roles_flag, particles_path, out_dir,
              pressing_axis = "z";
  CracksRequest request;
  bool json = false, no_grey = false;
  app.add_option("--host", host,
                 "host phase(s), comma-separated: role names (electrolyte, active) or phase names/labels")
      ->capture_default_str();
  app.add_option("--void", void_phases,
                 "void phase(s) cracks consist of (role names or phase names/labels; without --labels: label 0)")
      ->capture_default_str();
  app.add_option("--grey", grey_path, "grey image of the same volume (adds the Hessian sheet response)");
  app.add_flag("--no-grey-sheetness", no_grey, "read --grey only for the slice PNGs");
  app.add_option("--labels", labels_flag, "phase names: NAME=VALUE,... (e.g. pore=0,se=1,am=2)");
  app.add_option("--roles", roles_flag, "phase roles: NAME=ROLE,... (e.g. se=electrolyte,am=active)");
  app.add_option("--particles", particles_path, "particle-id volume (same dims) for per-particle crack metrics");
  app.add_option("--pressing-axis", pressing_axis, "x, y or z")->capture_default_str();
  add_stage_flags(app, cracks_stage(), kCracksFlags, request.params);
  app.add_option("--out", out_dir,
                 "folder for cracks.csv, crack_ids.tif and cracks_xy/xz/yz.png (default: write nothing)");
  app.add_flag("--json", json, "print the results as JSON");
  std::string crack_ids_path;
  app.add_option("--crack-ids", crack_ids_path,
                 "crack-id volume (same dims, 0 = none): measure these cracks' networks and percolation instead of "
                 "detecting cracks (also under mpirun -np N, on z-slabs)");
  if (parse_cli(app, args)) return 0;

  if (!crack_ids_path.empty()) {
    for (const char* flag : {"--grey", "--particles", "--out", "--no-grey-sheetness"})
      if (app.count(flag))
        throw InputError(std::string(flag) +
                         " does not apply with --crack-ids (the cracks are given, only their "
                         "networks and percolation are measured)");
    for (const auto& [key, value] : request.params)
      if (key != "connectivity")
        throw InputError(flag_of(key) + " is a detection setting; with --crack-ids the cracks are given, not detected");
    if (app.count("--void") == 0 && labels_flag.empty()) void_phases = "0";
    const CrackIdsRequest r{crack_ids_path, host, void_phases, labels_flag, roles_flag, request.params};
#if VP_MPI
    if (launched_by_mpirun()) return crack_networks_distributed(volume, r, json);
#endif
    return crack_networks_one_process(volume, r, json);
  }
#if VP_MPI
  // Detection needs the whole volume (closing, local thickness, whole-crack shapes).
  if (launched_by_mpirun() && mpi_world().size > 1)
    throw InputError(
        "cracks: detection needs the whole volume, so it does not run on z-slabs; under mpirun -np " +
        std::to_string(mpi_world().size) +
        " give --crack-ids IDS (crack_ids.tif of `voxpress cracks "
        "--out DIR` without mpirun, or a phantom's --ids) to measure crack networks and percolation on slabs");
#endif

  if (!out_dir.empty()) create_output_folder(out_dir, "--out");
  // A bare label file has no phase table, so no 'pore' role: its void is label 0.
  if (app.count("--void") == 0 && labels_flag.empty()) void_phases = "0";
  SampleContext ctx = label_sample_context(load_volume(volume), labels_flag, roles_flag);
  const LabelVolume& voxels = *ctx.labels;
  ctx.sample.pressing_axis = parse_axis(pressing_axis, "--pressing-axis");
  if (!grey_path.empty()) {
    VolumeArgs g = volume;
    g.path = grey_path;
    g.format = "auto";
    AnyVolume grey = load_volume(g).volume;
    if (!(dims_of(grey) == voxels.dims()))
      throw InputError("--grey " + grey_path + ": dims " + to_string(dims_of(grey)) +
                       " differ from the label volume's " + to_string(voxels.dims()));
    spacing_of(grey) = voxels.spacing_um;
    ctx.grey = std::move(grey);
  }
  if (!particles_path.empty()) ctx.particles = read_particle_ids(particles_path, voxels);
  request.host = host;
  request.void_phases = void_phases;
  request.use_grey = !no_grey;
  request.out_dir = out_dir;
  nlohmann::json out;
  try {
    out = cracks_sample(ctx, request);
  } catch (const InputError& e) {
    throw with_roles_hint(e, ctx.labels->phases, !labels_flag.empty());
  }
  // The crack ids, for `mpirun -np N voxpress cracks --crack-ids` (detection needs the whole volume).
  if (!out_dir.empty() && ctx.cracks) {
    const std::string ids_path = (std::filesystem::path(out_dir) / "crack_ids.tif").string();
    WriteOptions wo;
    wo.compress = true;
    write_volume(*ctx.cracks, ids_path, wo);
    ctx.artifacts.push_back(ids_path);
  }

  if (json) {
    out["input"] = {{"path", voxels.provenance.path}, {"sha256", voxels.provenance.sha256}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  print_table(ctx.details);
  for (const auto& a : ctx.artifacts) std::cout << "wrote " << a.string() << "\n";
  return 0;
}

}  // namespace

Command make_cracks_command() {
  return {"cracks", "detect and measure cracks in a host phase (area, aperture, orientation, short-circuit risk)",
          cracks_main};
}

}  // namespace vp
