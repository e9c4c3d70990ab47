// Ground truth: phase table, exact counts, and the JSON written beside every phantom volume.
#include <algorithm>

#include "core/error.h"
#include "core/json_util.h"
#include "phantoms/phantom.h"

namespace vp::phantom {

PhaseTable phase_table(bool with_binder) {
  std::vector<Phase> p{
      {"pore", kPore, Role::pore}, {"se", kElectrolyte, Role::electrolyte}, {"am", kActive, Role::active}};
  if (with_binder) p.push_back({"binder", kBinder, Role::binder});
  return PhaseTable(std::move(p));
}

void count_phases(const LabelVolume& labels, GroundTruth& truth) {
  std::array<std::int64_t, 256> hist{};
  for (std::uint8_t v : labels.storage()) ++hist[v];
  truth.voxel_count.clear();
  truth.volume_fraction.clear();
  const double total = static_cast<double>(labels.size());
  for (const Phase& p : labels.phases.phases()) {
    truth.voxel_count[p.name] = hist[p.label];
    truth.volume_fraction[p.name] = total > 0 ? hist[p.label] / total : 0.0;
  }
  truth.dims = labels.dims();
  truth.spacing_um = labels.spacing_um;
  truth.phases = labels.phases;
}

int GroundTruth::particle_count(const std::string& phase) const {
  return static_cast<int>(
      std::count_if(particles.begin(), particles.end(), [&](const ParticleTruth& p) { return p.phase == phase; }));
}

namespace {

nlohmann::json particle_json(const ParticleTruth& p) {
  return {{"id", p.id},
          {"phase", p.phase},
          {"centre_um", to_json(p.centre_um)},
          {"semi_axes_um", to_json(p.semi_axes_um)},
          {"volume_um3", p.volume_um3},
          {"surface_area_um2", p.surface_area_um2},
          {"voxels", p.voxels},
          {"inside", p.inside},
          {"grains", p.grains}};
}

nlohmann::json crack_json(const CrackTruth& c) {
  return {{"id", c.id},
          {"host", c.host},
          {"kind", c.kind},
          {"centre_um", to_json(c.centre_um)},
          {"normal", to_json(c.normal)},
          {"aperture_um", c.aperture_um},
          {"area_um2", c.area_um2},
          {"radius_um", c.radius_um},
          {"particle_id", c.particle_id},
          {"voxels", c.voxels}};
}

const nlohmann::json& need(const nlohmann::json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key)) throw InputError("truth JSON: missing key '" + key + "'");
  return j.at(key);
}

Vec3 vec3(const nlohmann::json& j) { return {j.at(0).get<double>(), j.at(1).get<double>(), j.at(2).get<double>()}; }

}  // namespace

nlohmann::json GroundTruth::to_json() const {
  nlohmann::json phases_json = nlohmann::json::array();
  for (const Phase& p : phases.phases())
    phases_json.push_back({{"name", p.name}, {"label", p.label}, {"role", vp::to_string(p.role)}});
  nlohmann::json sizes = nlohmann::json::object();
  for (const char* phase : {"am", "se", "binder"}) {
    std::vector<double> r;
    for (const auto& p : particles)
      if (p.phase == phase) r.push_back(std::cbrt(p.semi_axes_um[0] * p.semi_axes_um[1] * p.semi_axes_um[2]));
    if (r.empty()) continue;
    std::sort(r.begin(), r.end());
    double mean = 0;
    for (double v : r) mean += v;
    mean /= r.size();
    sizes[phase] = {{"count", r.size()},
                    {"equivalent_radius_mean_um", mean},
                    {"equivalent_radius_min_um", r.front()},
                    {"equivalent_radius_max_um", r.back()},
                    {"equivalent_radius_median_um", r[r.size() / 2]}};
  }
  for (const auto& [phase, summary] : particle_summary.items()) sizes[phase] = summary;
  nlohmann::json particles_json = nlohmann::json::array();
  for (const auto& p : particles) particles_json.push_back(particle_json(p));
  nlohmann::json cracks_json = nlohmann::json::array();
  for (const auto& c : cracks) cracks_json.push_back(crack_json(c));
  return {
      {"format", "voxpress-phantom-truth/1"},
      {"generator", generator},
      {"pressure_MPa", pressure_MPa},
      {"seed", seed},
      {"dims", vp::to_json(dims)},
      {"spacing_um", vp::to_json(spacing_um)},
      {"phases", phases_json},
      {"voxel_count", voxel_count},
      {"volume_fraction", volume_fraction},
      {"target_porosity", target_porosity >= 0 ? nlohmann::json(target_porosity) : nlohmann::json(nullptr)},
      {"relative_density", relative_density >= 0 ? nlohmann::json(relative_density) : nlohmann::json(nullptr)},
      {"z_scale", z_scale},
      {"interface_area_um2", interface_area_um2},
      {"interface_area_method", interface_area_method},
      {"am_surface_area_um2", am_surface_area_um2},
      {"am_se_contact_area_um2", am_se_contact_area_um2},
      {"contact_area_fraction",
       contact_area_fraction >= 0 ? nlohmann::json(contact_area_fraction) : nlohmann::json(nullptr)},
      {"contact_samples_per_voxel_face", contact_samples_per_voxel_face},
      {"particle_count", sizes},
      {"particles", particles_json},
      {"crack_count", cracks.size()},
      {"cracks", cracks_json},
      {"parameters", parameters},
  };
}

GroundTruth GroundTruth::from_json(const nlohmann::json& j) {
  try {
    GroundTruth t;
    t.generator = need(j, "generator").get<std::string>();
    t.pressure_MPa = need(j, "pressure_MPa").get<double>();
    t.seed = need(j, "seed").get<std::uint64_t>();
    const auto& d = need(j, "dims");
    t.dims = {d.at(0).get<index_t>(), d.at(1).get<index_t>(), d.at(2).get<index_t>()};
    t.spacing_um = vec3(need(j, "spacing_um"));
    std::vector<Phase> phases;
    for (const auto& p : need(j, "phases")) {
      auto role = parse_role(p.at("role").get<std::string>());
      phases.push_back({p.at("name").get<std::string>(), p.at("label").get<int>(), role.value_or(Role::other)});
    }
    t.phases = PhaseTable(phases);
    t.voxel_count = need(j, "voxel_count").get<std::map<std::string, std::int64_t>>();
    t.volume_fraction = need(j, "volume_fraction").get<std::map<std::string, double>>();
    const auto& tp = need(j, "target_porosity");
    t.target_porosity = tp.is_null() ? -1 : tp.get<double>();
    const auto& rd = need(j, "relative_density");
    t.relative_density = rd.is_null() ? -1 : rd.get<double>();
    t.z_scale = need(j, "z_scale").get<double>();
    t.interface_area_um2 = need(j, "interface_area_um2").get<std::map<std::string, double>>();
    t.interface_area_method = need(j, "interface_area_method").get<std::string>();
    t.am_surface_area_um2 = need(j, "am_surface_area_um2").get<double>();
    t.am_se_contact_area_um2 = need(j, "am_se_contact_area_um2").get<double>();
    const auto& cf = need(j, "contact_area_fraction");
    t.contact_area_fraction = cf.is_null() ? -1 : cf.get<double>();
    t.contact_samples_per_voxel_face = need(j, "contact_samples_per_voxel_face").get<int>();
    for (const auto& p : need(j, "particles")) {
      ParticleTruth q;
      q.id = p.at("id").get<std::uint32_t>();
      q.phase = p.at("phase").get<std::string>();
      q.centre_um = vec3(p.at("centre_um"));
      q.semi_axes_um = vec3(p.at("semi_axes_um"));
      q.volume_um3 = p.at("volume_um3").get<double>();
      q.surface_area_um2 = p.at("surface_area_um2").get<double>();
      q.voxels = p.at("voxels").get<std::int64_t>();
      q.inside = p.at("inside").get<bool>();
      q.grains = p.at("grains").get<int>();
      t.particles.push_back(q);
    }
    for (const auto& c : need(j, "cracks")) {
      CrackTruth q;
      q.id = c.at("id").get<std::uint32_t>();
      q.host = c.at("host").get<std::string>();
      q.kind = c.at("kind").get<std::string>();
      q.centre_um = vec3(c.at("centre_um"));
      q.normal = vec3(c.at("normal"));
      q.aperture_um = c.at("aperture_um").get<double>();
      q.area_um2 = c.at("area_um2").get<double>();
      q.radius_um = c.at("radius_um").get<double>();
      q.particle_id = c.at("particle_id").get<std::uint32_t>();
      q.voxels = c.at("voxels").get<std::int64_t>();
      t.cracks.push_back(q);
    }
    t.particle_summary = nlohmann::json::object();
    for (const auto& [phase, summary] : need(j, "particle_count").items())
      if (t.particle_count(phase) == 0) t.particle_summary[phase] = summary;
    t.parameters = j.value("parameters", nlohmann::json::object());
    return t;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string("truth JSON: unexpected structure: ") + e.what());
  }
}

}  // namespace vp::phantom
