// voxpress dvc REF DEF [--ref-labels L] [--node-spacing N] [--subset N] [--affine] [--out DIR] [--json]
// Digital volume correlation of a deformed scan against its reference: registration (phase
// correlation + rigid/affine IC-GN), node-grid IC-GN displacements, strain, and with --ref-labels
// (particle ids of the reference) each particle's translation and rotation.
#include <cmath>
#include <iomanip>
#include <iostream>

#include "core/axis.h"
#include "core/error.h"
#include "core/json_util.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/commands/command_api.h"

namespace vp {

namespace {

std::string num(const nlohmann::json& v, int precision = 5) {
  if (!v.is_number()) return "-";
  std::ostringstream s;
  s << std::setprecision(precision) << v.get<double>();
  return s.str();
}

std::string vec(const nlohmann::json& v) { return "(" + num(v[0]) + ", " + num(v[1]) + ", " + num(v[2]) + ")"; }

void print_summary(const nlohmann::json& j) {
  const auto& r = j["registration"];
  std::cout << "registration (" << r["mode"].get<std::string>() << "): translation " << vec(r["translation_vox"])
            << " vox, rotation " << vec(r["rotation_deg"]) << " deg\n";
  const auto& s = j["strain"];
  std::cout << "strain (affine fit of " << s["nodes"] << " nodes): xx " << num(s["xx"]) << "  yy " << num(s["yy"])
            << "  zz " << num(s["zz"]) << "  xy " << num(s["xy"]) << "  xz " << num(s["xz"]) << "  yz " << num(s["yz"])
            << "  volumetric " << num(s["volumetric"]) << "\n";
  std::cout << "strain_zz heterogeneity: std " << num(j["heterogeneity"]["strain_zz_std"]) << ", p90 |ezz| "
            << num(j["heterogeneity"]["strain_zz_p90"]) << "\n";
  const auto& n = j["nodes"];
  std::cout << "nodes: " << n["valid"] << " valid of " << n["count"] << " " << n["quality"].dump() << "; mean u "
            << vec(n["displacement_mean_vox"]) << ", std " << vec(n["displacement_std_vox"]) << " vox, residual "
            << num(n["residual_mean"]) << "\n";
  if (j.contains("particles_summary")) {
    const auto& p = j["particles_summary"];
    std::cout << "particles: " << p["tracked"] << " tracked of " << p["count"] << ", mean |u| "
              << num(p["displacement_mean_vox"]) << " vox, mean rotation " << num(p["rotation_mean_deg"]) << " deg, "
              << p["residual_jumps"] << " residual jumps\n";
  }
  for (const auto& o : j["outputs"]) std::cout << "wrote " << o.get<std::string>() << "\n";
}

int dvc_main(const std::vector<std::string>& args) {
  CLI::App app("Digital volume correlation: displacement, strain and particle motion between two scans", "dvc");
  VolumeArgs ref, def;
  std::string labels_path, out_dir, spacing;
  long long node_spacing = 8, subset = 16;
  bool affine = false, json = false;
  app.add_option("REF", ref.path, "reference scan (the earlier step)")->required();
  app.add_option("DEF", def.path, "deformed scan (same size and voxel size)")->required();
  app.add_option("--ref-labels", labels_path,
                 "particle ids of the reference (integer volume, 0 = none): track each particle");
  app.add_option("--node-spacing", node_spacing, "voxels between nodes")->capture_default_str();
  app.add_option("--subset", subset, "subset edge in voxels ((subset+1)³ points about each node)")
      ->capture_default_str();
  app.add_flag("--affine", affine, "affine registration (default rigid: rotation + translation)");
  app.add_option("--spacing", spacing, "voxel size in µm for both scans: S or SX,SY,SZ (overrides the files)");
  app.add_option("--out", out_dir, "folder for displacement.mha, strain.mha, nodes.csv, particles.csv and PNGs");
  app.add_flag("--json", json, "print the results as JSON");
  if (parse_cli(app, args)) return 0;
  if (node_spacing < 1) throw InputError("--node-spacing " + std::to_string(node_spacing) + ": expected ≥ 1 voxel");
  if (subset < 4) throw InputError("--subset " + std::to_string(subset) + ": expected ≥ 4 voxels");
  if (!out_dir.empty()) create_output_folder(out_dir, "--out");
  ref.spacing = def.spacing = spacing;
  const ReadResult r = load_volume(ref), d = load_volume(def);
  if (!(dims_of(r.volume) == dims_of(d.volume)))
    throw InputError("dvc: " + def.path + " is " + to_string(dims_of(d.volume)) + " but " + ref.path + " is " +
                     to_string(dims_of(r.volume)) + "; the scans must have the same size (crop them to one region)");
  const Vec3 rs = spacing_of(r.volume), ds = spacing_of(d.volume);
  for (int a = 0; a < 3; ++a)
    if (std::abs(rs[a] - ds[a]) > 1e-9 * std::max(1.0, rs[a]))
      throw InputError("dvc: " + def.path + " has voxel size " + format_number(ds[a]) + " µm along " + axis_name(a) +
                       " but " + ref.path + " has " + format_number(rs[a]) +
                       " µm; resample one, or give --spacing when the files' metadata is wrong");
  // Different sample types are aligned by converting both scans to float grey values.
  const Volume<float> rf = to_float(r.volume), df = to_float(d.volume);
  std::optional<Volume<std::uint32_t>> ids;
  if (!labels_path.empty()) {
    const Volume<std::uint8_t> shape(dims_of(r.volume), rs);
    ids = read_particle_ids(labels_path, shape);
  }
  DvcRequest request;
  request.node_spacing = node_spacing;
  request.subset = subset;
  request.affine = affine;
  request.out_dir = out_dir;
  nlohmann::json out = dvc_pair(rf, df, ids ? &*ids : nullptr, request);
  if (json) {
    out["input"] = {{"reference", provenance_of(r.volume).path},
                    {"deformed", provenance_of(d.volume).path},
                    {"dtype", {to_string(dtype_of(r.volume)), to_string(dtype_of(d.volume))}},
                    {"spacing_um", to_json(rs)}};
    if (ids) out["input"]["ref_labels"] = labels_path;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  print_summary(out);
  return 0;
}

}  // namespace

Command make_dvc_command() {
  return {"dvc",
          "digital volume correlation between two scans: registration, displacement and strain fields, particle motion",
          dvc_main};
}

}  // namespace vp
