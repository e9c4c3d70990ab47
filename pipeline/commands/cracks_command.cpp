// voxpress cracks VOLUME --host LABEL [--grey GREY] [--void LABEL] [--labels NAME=VALUE,...]
//                       [--roles NAME=ROLE,...] [--particles FILE] [--spacing ...] [--out DIR] [--json]
// Runs the `cracks` stage (the same code as in a YAML batch) on one label volume and prints the
// summary and the crack table, or with --json the stage's details plus {"rows": [...]}.
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
#include "pipeline/commands/cli_common.h"
#include "pipeline/commands/command_api.h"

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
  for (const char* key : {"crack_count", "crack_volume_fraction", "crack_surface_density", "crack_area", "aperture_mean",
                          "aperture_max", "total_length", "network_count", "largest_network_fraction",
                          "orientation_mean_deg"}) {
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
            << std::setw(10) << "angle" << "\n";
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
  app.add_option("--host", host, "host phase(s), comma-separated: role names (electrolyte, active) or phase names/labels")
      ->capture_default_str();
  app.add_option("--void", void_phases, "void phase(s) cracks consist of (role names or phase names/labels; without --labels: label 0)")
      ->capture_default_str();
  app.add_option("--grey", grey_path, "grey image of the same volume (adds the Hessian sheet response)");
  app.add_flag("--no-grey-sheetness", no_grey, "read --grey only for the slice PNGs");
  app.add_option("--labels", labels_flag, "phase names: NAME=VALUE,... (e.g. pore=0,se=1,am=2)");
  app.add_option("--roles", roles_flag, "phase roles: NAME=ROLE,... (e.g. se=electrolyte,am=active)");
  app.add_option("--particles", particles_path, "particle-id volume (same dims) for per-particle crack metrics");
  app.add_option("--pressing-axis", pressing_axis, "x, y or z")->capture_default_str();
  add_stage_flags(app, cracks_stage(), kCracksFlags, request.params);
  app.add_option("--out", out_dir, "folder for cracks.csv and cracks_xy/xz/yz.png (default: write nothing)");
  app.add_flag("--json", json, "print the results as JSON");
  if (parse_cli(app, args)) return 0;

  if (!out_dir.empty()) create_output_folder(out_dir, "--out");
  // A bare label file has no phase table, so no 'pore' role: its void is label 0.
  if (app.count("--void") == 0 && labels_flag.empty()) void_phases = "0";
  const ReadResult input = load_volume(volume);
  SampleContext ctx = label_sample_context(input, labels_flag, roles_flag);
  const LabelVolume& voxels = *ctx.labels;
  ctx.sample.pressing_axis = parse_axis(pressing_axis, "--pressing-axis");
  if (!grey_path.empty()) {
    VolumeArgs g = volume;
    g.path = grey_path;
    g.format = "auto";
    AnyVolume grey = load_volume(g).volume;
    if (!(dims_of(grey) == voxels.dims()))
      throw InputError("--grey " + grey_path + ": dims " + to_string(dims_of(grey)) + " differ from the label volume's " +
                       to_string(voxels.dims()));
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

  if (json) {
    out["input"] = {{"path", provenance_of(input.volume).path},
                    {"sha256", provenance_of(input.volume).sha256}};
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
