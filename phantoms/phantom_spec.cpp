#include "phantoms/phantom_spec.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_util.h"

namespace vp::phantom {

namespace {

// Defaults shown in the specs are those of a default-constructed job: one source of truth.
const PhantomJob& defaults() {
  static const PhantomJob job;
  return job;
}

std::string num(double v) { return format_number(v); }
std::string list(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + num(v[i]);
  return s + "]";
}
std::string list(const Vec3& v) { return list(std::vector<double>{v[0], v[1], v[2]}); }
std::string boolean(bool b) { return b ? "true" : "false"; }

Vec3 vec3_from(const Params& ps, const std::string& key) {
  const auto v = ps.numbers(key);
  if (v.size() == 1) return {v[0], v[0], v[0]};
  if (v.size() != 3) ps.fail(key, "expected one number or a list of three [x, y, z]");
  return {v[0], v[1], v[2]};
}

}  // namespace

NoiseModel parse_noise_model(const std::string& name, const std::string& where) {
  if (name == "gaussian") return NoiseModel::gaussian;
  if (name == "poisson") return NoiseModel::poisson;
  if (name == "none") return NoiseModel::none;
  throw InputError(where + ": '" + name + "' is not a noise model; expected gaussian, poisson or none");
}

std::vector<ParamSpec> spec_top_level_params() {
  const CompositeSpec& c = defaults().composite;
  using T = ParamType;
  return {
      bounded(param("size", T::number_list, "image size in voxels: N or [nx, ny, nz]", "voxels", num(c.dims.x)), 1.0),
      bounded(param("spacing_um", T::number_list, "voxel size: S or [sx, sy, sz] (fib-sem default [0.01, 0.01, 0.02])",
                    "µm", list(c.spacing_um)),
              1e-9),
      bounded(param("seed", T::integer, "random seed: same seed, same bytes", "", std::to_string(c.seed)), 0.0),
      bounded(
          param("pressures_MPa", T::number_list, "applied pressures, one sample each", "MPa", list(c.pressures_MPa)),
          0.0),
      param("series", T::string, "series name written into series.yaml", "", defaults().series),
      choices(param("modality", T::string, "imaging model", "", "ct"), {"ct", "fib-sem"}),
      param("fractions", T::map, "target volume fractions {am, se, binder, pore}", "", ""),
      param("am_particles", T::map, "active-material particle population", "", ""),
      bounded(param("se_radius_vox", T::number, "SE particle radius (loose state), in voxels of the x spacing",
                    "voxels", num(c.se_radius_vox)),
              0.5),
      bounded(param("binder_radius_vox", T::number, "binder blob radius, in voxels of the x spacing", "voxels",
                    num(c.binder_radius_vox)),
              0.5),
      param("compaction", T::map, "Heckel compaction and the AM–SE contact law", "", ""),
      param("cracks", T::map, "cracks above an onset pressure", "", ""),
      bounded(param("contact_samples_per_voxel_face", T::integer, "surface quadrature density of the contact truth", "",
                    std::to_string(c.contact_samples_per_voxel_face)),
              1.0, 256.0),
      param("imaging", T::map, "CT / FIB-SEM forward model", "", ""),
  };
}

std::vector<ParamSpec> spec_fraction_params() {
  const CompositeSpec& c = defaults().composite;
  using T = ParamType;
  return {
      bounded(param("am", T::number, "active material share of the solid", "1", num(c.am_fraction)), 0.0, 1.0),
      bounded(param("se", T::number, "solid electrolyte share of the solid", "1", num(c.se_fraction)), 0.0, 1.0),
      bounded(param("binder", T::number, "binder share of the solid (> 0 adds label 3)", "1", num(c.binder_fraction)),
              0.0, 1.0),
      bounded(param("pore", T::number, "porosity when compaction is disabled", "1", num(c.pore_fraction)), 0.0, 0.95),
  };
}

std::vector<ParamSpec> spec_am_particle_params() {
  const CompositeSpec& c = defaults().composite;
  using T = ParamType;
  return {
      bounded(param("radius_vox", T::number, "mean radius (log-normal)", "voxels", num(c.am_radius_vox)), 0.5),
      bounded(param("radius_cv", T::number, "coefficient of variation of the radius", "1", num(c.am_radius_cv)), 0.0,
              2.0),
      bounded(param("radius_min_vox", T::number, "smallest radius", "voxels", num(c.am_radius_min_vox)), 0.5),
      bounded(param("radius_max_vox", T::number, "largest radius", "voxels", num(c.am_radius_max_vox)), 0.5),
      bounded(
          param("ellipsoid_fraction", T::number, "share of axis-aligned ellipsoids", "1", num(c.ellipsoid_fraction)),
          0.0, 1.0),
      bounded(param("aspect_max", T::number, "largest axis ratio of an ellipsoid", "1", num(c.aspect_max)), 1.0, 4.0),
      bounded(param("polycrystal_fraction", T::number, "share of polycrystalline agglomerates", "1",
                    num(c.polycrystal_fraction)),
              0.0, 1.0),
      bounded(param("grains", T::integer, "Voronoi grains per agglomerate", "", std::to_string(c.grains)), 2.0, 64.0),
  };
}

std::vector<ParamSpec> spec_compaction_params() {
  const CompactionSpec& c = defaults().composite.compaction;
  using T = ParamType;
  return {
      param("enabled", T::boolean, "press along z following Heckel; false: fixed porosity fractions.pore", "",
            boolean(c.enabled)),
      bounded(param("heckel_k", T::number, "Heckel slope k in ln(1/(1−D)) = kP + A", "MPa^-1", num(c.heckel_k)), 0.0),
      bounded(param("heckel_A", T::number, "Heckel intercept A (loose porosity exp(−A))", "1", num(c.heckel_A)), 1e-6),
      param("steer_contact", T::boolean, "steer SE flow so AM–SE contact follows the law below", "",
            boolean(c.steer_contact)),
      bounded(param("contact_c0", T::number, "contact fraction at P = 0", "1", num(c.contact_c0)), 0.0, 1.0),
      bounded(param("contact_max", T::number, "contact fraction of the plateau", "1", num(c.contact_max)), 0.0, 1.0),
      bounded(param("contact_knee_MPa", T::number, "pressure scale of the knee", "MPa", num(c.contact_knee_MPa)), 1e-6),
      bounded(
          param("contact_slope_per_MPa", T::number, "slow rise of the plateau", "MPa^-1", num(c.contact_slope_per_MPa)),
          0.0),
  };
}

std::vector<ParamSpec> spec_crack_params() {
  const CompositeSpec& s = defaults().composite;
  const CrackSpec& c = s.cracks;
  using T = ParamType;
  return {
      param("enabled", T::boolean, "generate cracks", "", boolean(s.cracks_enabled)),
      bounded(param("onset_MPa", T::number, "first crack appears at this pressure", "MPa", num(c.onset_MPa)), 0.0),
      bounded(param("full_pressure_MPa", T::number, "all cracks present from this pressure", "MPa",
                    num(c.full_pressure_MPa)),
              0.0),
      bounded(param("se_count", T::integer, "planar SE cracks at full pressure", "", std::to_string(c.se_count)), 0.0),
      bounded(param("se_aperture_um", T::number, "opening of SE cracks", "µm", num(c.se_aperture_um)), 0.0),
      bounded(param("se_radius_um", T::number, "radius of the SE crack discs", "µm", num(c.se_radius_um)), 0.0),
      param("se_normal", T::number_list, "mean normal of SE cracks [x, y, z]", "", list(c.se_normal)),
      bounded(param("se_tilt_deg", T::number, "largest tilt of a normal from se_normal", "°", num(c.se_tilt_deg)), 0.0,
              90.0),
      bounded(param("am_count", T::integer, "intergranular AM cracks at full pressure", "", std::to_string(c.am_count)),
              0.0),
      bounded(param("am_aperture_um", T::number, "opening of intergranular cracks", "µm", num(c.am_aperture_um)), 0.0),
  };
}

std::vector<ParamSpec> spec_imaging_params() {
  const ImagingSpec& im = defaults().imaging;
  using T = ParamType;
  return {
      param("attenuation", T::map, "per-phase attenuation {pore, se, am, binder}", "1", ""),
      bounded(param("offset", T::number, "grey = offset + gain·μ", "grey", num(im.offset)), 0.0),
      bounded(param("gain", T::number, "grey = offset + gain·μ", "grey", num(im.gain)), 0.0),
      bounded(param("blur_sigma_vox", T::number_list, "Gaussian PSF σ: S or [sx, sy, sz]", "voxels",
                    list(im.blur_sigma_vox)),
              0.0),
      choices(param("noise", T::string, "noise model", "", "gaussian"), {"gaussian", "poisson", "none"}),
      bounded(param("snr", T::number, "|grey(a) − grey(b)| / σ_noise", "1", num(im.snr)), 1e-6),
      param("snr_phases", T::string_list, "the two phases a, b that define the SNR", "", "[am, se]"),
      bounded(
          param("cupping", T::number, "beam-hardening cupping: centre darker by this fraction", "1", num(im.cupping)),
          0.0, 0.9),
      bounded(param("ring_amplitude", T::number, "ring artefacts: ± this fraction of gain per radius", "1",
                    num(im.ring_amplitude)),
              0.0, 1.0),
      bounded(param("curtain_amplitude", T::number, "FIB-SEM curtains: ± this fraction of gain (fib-sem default 0.08)",
                    "1", num(im.curtain_amplitude)),
              0.0, 1.0),
      bounded(
          param("curtain_period_vox", T::number, "typical curtain stripe width", "voxels", num(im.curtain_period_vox)),
          0.5),
      bounded(param("grain_contrast", T::number, "AM grain texture: each agglomerate grain ± this fraction of μ_am",
                    "1", num(im.grain_contrast)),
              0.0, 0.5),
      param("realistic", T::boolean,
            "harder, lab-like scan: poisson noise, cupping 0.08, grain_contrast 0.04 (each unless set)", "", "false"),
      bounded(param("seed", T::integer, "noise seed (default: the phantom seed)", "", ""), 0.0),
  };
}

PhantomJob phantom_job_from_yaml(const YAML::Node& root, const std::string& file) {
  Diagnostics diags(file);
  PhantomJob job;
  if (!root.IsMap()) {
    diags.error(root, "", "expected a map of phantom settings");
    diags.throw_if_any();
  }
  const Params top(root, spec_top_level_params(), file, "");
  top.check(diags);
  auto section = [&](const std::string& key, std::vector<ParamSpec> specs) {
    Params ps(top.has(key) ? root[key] : YAML::Node(), std::move(specs), file, key);
    ps.check(diags);
    return ps;
  };
  const Params fr = section("fractions", spec_fraction_params());
  const Params am = section("am_particles", spec_am_particle_params());
  const Params co = section("compaction", spec_compaction_params());
  const Params cr = section("cracks", spec_crack_params());
  const Params im = section("imaging", spec_imaging_params());
  diags.throw_if_any();

  CompositeSpec& c = job.composite;
  const auto size = top.numbers("size");
  if (size.size() != 1 && size.size() != 3) top.fail("size", "expected N or [nx, ny, nz]");
  for (double v : size)
    if (v != std::floor(v)) top.fail("size", "expected whole numbers of voxels");
  c.dims = size.size() == 1 ? Dims{index_t(size[0]), index_t(size[0]), index_t(size[0])}
                            : Dims{index_t(size[0]), index_t(size[1]), index_t(size[2])};
  job.fib_sem = top.string("modality") == "fib-sem";
  c.spacing_um = top.has("spacing_um") ? vec3_from(top, "spacing_um") : (job.fib_sem ? kFibSemSpacingUm : c.spacing_um);
  c.seed = static_cast<std::uint64_t>(top.integer("seed"));
  c.pressures_MPa = top.numbers("pressures_MPa");
  if (c.pressures_MPa.empty()) top.fail("pressures_MPa", "expected at least one pressure");
  job.series = top.string("series");
  c.se_radius_vox = top.number("se_radius_vox");
  c.binder_radius_vox = top.number("binder_radius_vox");
  c.contact_samples_per_voxel_face = static_cast<int>(top.integer("contact_samples_per_voxel_face"));

  c.am_fraction = fr.number("am");
  c.se_fraction = fr.number("se");
  c.binder_fraction = fr.number("binder");
  c.pore_fraction = fr.number("pore");
  if (c.am_fraction + c.se_fraction + c.binder_fraction <= 0) fr.fail("am", "am + se + binder must be positive");

  c.am_radius_vox = am.number("radius_vox");
  c.am_radius_cv = am.number("radius_cv");
  c.am_radius_min_vox = am.number("radius_min_vox");
  c.am_radius_max_vox = am.number("radius_max_vox");
  if (!(c.am_radius_min_vox <= c.am_radius_vox && c.am_radius_vox <= c.am_radius_max_vox))
    am.fail("radius_vox", "expected radius_min_vox ≤ radius_vox ≤ radius_max_vox");
  c.ellipsoid_fraction = am.number("ellipsoid_fraction");
  c.aspect_max = am.number("aspect_max");
  c.polycrystal_fraction = am.number("polycrystal_fraction");
  c.grains = static_cast<int>(am.integer("grains"));

  c.compaction.enabled = co.boolean("enabled");
  c.compaction.heckel_k = co.number("heckel_k");
  c.compaction.heckel_A = co.number("heckel_A");
  c.compaction.steer_contact = co.boolean("steer_contact");
  c.compaction.contact_c0 = co.number("contact_c0");
  c.compaction.contact_max = co.number("contact_max");
  c.compaction.contact_knee_MPa = co.number("contact_knee_MPa");
  c.compaction.contact_slope_per_MPa = co.number("contact_slope_per_MPa");

  c.cracks_enabled = cr.boolean("enabled");
  c.cracks.onset_MPa = cr.number("onset_MPa");
  c.cracks.full_pressure_MPa = cr.number("full_pressure_MPa");
  if (c.cracks.full_pressure_MPa < c.cracks.onset_MPa) cr.fail("full_pressure_MPa", "expected ≥ onset_MPa");
  c.cracks.se_count = static_cast<int>(cr.integer("se_count"));
  c.cracks.se_aperture_um = cr.number("se_aperture_um");
  c.cracks.se_radius_um = cr.number("se_radius_um");
  c.cracks.se_normal = vec3_from(cr, "se_normal");
  if (c.cracks.se_normal == Vec3{0, 0, 0}) cr.fail("se_normal", "expected a non-zero vector");
  c.cracks.se_tilt_deg = cr.number("se_tilt_deg");
  c.cracks.am_count = static_cast<int>(cr.integer("am_count"));
  c.cracks.am_aperture_um = cr.number("am_aperture_um");

  ImagingSpec& g = job.imaging;
  if (im.has("attenuation")) {
    const YAML::Node a = im.node("attenuation");
    for (const auto& kv : a) {
      const std::string phase = kv.first.Scalar();
      if (phase != "pore" && phase != "se" && phase != "am" && phase != "binder")
        throw InputError(location(file, kv.first) + ": imaging.attenuation." + phase +
                         ": unknown phase; expected pore, se, am or binder");
      try {
        g.attenuation[phase] = kv.second.as<double>();
      } catch (const YAML::Exception&) {
        throw InputError(location(file, kv.second) + ": imaging.attenuation." + phase + ": expected a number");
      }
    }
  }
  g.offset = im.number("offset");
  g.gain = im.number("gain");
  g.blur_sigma_vox = vec3_from(im, "blur_sigma_vox");
  g.noise = parse_noise_model(im.string("noise"), im.where("noise") + ": imaging.noise");
  g.snr = im.number("snr");
  const auto phases = im.strings("snr_phases");
  if (phases.size() != 2 || phases[0] == phases[1]) im.fail("snr_phases", "expected two different phase names");
  g.snr_phase_a = phases[0];
  g.snr_phase_b = phases[1];
  for (const auto& ph : phases)
    if (!g.attenuation.count(ph)) im.fail("snr_phases", "'" + ph + "' has no attenuation");
  g.cupping = im.number("cupping");
  g.ring_amplitude = im.number("ring_amplitude");
  g.curtain_amplitude = im.number("curtain_amplitude");
  g.curtain_period_vox = im.number("curtain_period_vox");
  g.grain_contrast = im.number("grain_contrast");
  if (im.boolean("realistic")) {
    if (!im.has("noise")) g.noise = NoiseModel::poisson;
    if (!im.has("cupping")) g.cupping = kRealisticCupping;
    if (!im.has("grain_contrast")) g.grain_contrast = kRealisticGrainContrast;
  }
  g.seed = im.has("seed") ? static_cast<std::uint64_t>(im.integer("seed")) : c.seed;
  return job;
}

PhantomJob load_phantom_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot read the phantom spec");
  std::stringstream ss;
  ss << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(ss.str());
  } catch (const YAML::ParserException& e) {
    throw InputError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": not valid YAML: " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  return phantom_job_from_yaml(root, path);
}

}  // namespace vp::phantom
