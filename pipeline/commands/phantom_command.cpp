// voxpress phantom --out DIR [...]: a synthetic pressure series with exact ground truth.
// Per pressure: <name>.tif (grey uint16), <name>_labels.tif (uint8), <name>.truth.json, and with
// --ids <name>_particles.tif / <name>_cracks.tif (uint32); series.yaml lists the samples as a
// ready-to-run config fragment. Same arguments, same bytes.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include <tbb/global_control.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/stage.h"
#include "filters/io/slice_png.h"
#include "filters/io/volume_io.h"
#include "phantoms/motion.h"
#include "phantoms/phantom.h"
#include "phantoms/phantom_spec.h"
#include "pipeline/catalog.h"
#include "pipeline/commands/cli_common.h"

namespace vp {

namespace {

namespace fs = std::filesystem;
using namespace vp::phantom;

std::vector<double> parse_list(const std::string& text, const std::string& flag) {
  std::vector<double> v = parse_numbers(text, flag);
  if (v.empty()) throw InputError(flag + ": expected at least one number");
  return v;
}

// "p010" for 10 MPa, "p012p5" for 12.5 MPa.
std::string sample_name(const std::string& prefix, double pressure) {
  char buf[64];
  if (pressure == std::floor(pressure)) std::snprintf(buf, sizeof buf, "p%03lld", static_cast<long long>(pressure));
  else {
    std::snprintf(buf, sizeof buf, "p%05.1f", pressure);
    for (char* c = buf; *c; ++c)
      if (*c == '.') *c = 'p';
  }
  return prefix + buf;
}

std::string yaml_list(const Vec3& v) {
  return "[" + format_number(v[0]) + ", " + format_number(v[1]) + ", " + format_number(v[2]) + "]";
}

// A config fragment the pipeline accepts as is (add stages:); paths relative to DIR.
std::string series_yaml(const PhantomJob& job, const std::vector<std::pair<std::string, double>>& samples,
                        const std::string& command_line) {
  std::ostringstream y;
  y << "# Written by: " << command_line << "\n"
    << "# Ground truth beside each volume: <name>.truth.json. Add `stages:` to run it.\n"
    << "version: 1\n"
    << "phases:\n";
  const PhaseTable table = phase_table(job.composite.binder_fraction > 0);
  for (const Phase& p : table.phases())
    y << "  - {name: " << p.name << ", label: " << p.label << ", role: " << to_string(p.role) << "}\n";
  y << "defaults:\n"
    << "  voxel_size_um: " << yaml_list(job.composite.spacing_um) << "\n"
    << "  pressing_axis: z\n"
    << "samples:\n";
  for (const auto& [name, pressure] : samples)
    y << "  - {name: " << name << ", path: " << name << ".tif, labels: " << name
      << "_labels.tif, pressure_MPa: " << format_number(pressure) << ", series: " << job.series << "}\n";
  return y.str();
}

// A DVC pair of one step: the reference scan and the same scan moved by a known displacement,
// each with its own noise (phantoms/motion.h), and the motion that maps one onto the other.
void write_motion_pair(const Phantom& ph, const PhantomJob& job, const MotionSpec& m, const fs::path& dir,
                       const std::string& name, const std::string& ext, const WriteOptions& wo) {
  if (job.fib_sem) throw InputError("--motion: DVC pairs are written for CT phantoms only (drop --fib-sem)");
  if (job.imaging.noise == NoiseModel::poisson)
    throw InputError("--motion: the pairs need gaussian or no noise (give --noise gaussian with --realistic)");
  const MotionPair pair = motion_pair(ph, job.imaging, m);
  write_volume(pair.reference, (dir / (name + "_ref" + ext)).string(), wo);
  write_volume(pair.deformed, (dir / (name + "_def" + ext)).string(), wo);
  const Dims d = ph.labels.dims();
  const Vec3 centre{0.5 * (d.x - 1), 0.5 * (d.y - 1), 0.5 * (d.z - 1)};
  const Vec3 u_centre = motion_displacement(m, d, centre);
  nlohmann::json j = {{"kind", to_string(m.kind)},
                      {"shift_vox", {m.shift_vox[0], m.shift_vox[1], m.shift_vox[2]}},
                      {"rotation_deg", {m.rotation_deg[0], m.rotation_deg[1], m.rotation_deg[2]}},
                      {"strain_zz", m.kind == MotionKind::rigid ? 0.0 : m.strain_zz},
                      {"field_amplitude_vox", m.kind == MotionKind::field ? m.field_amplitude_vox : 0.0},
                      {"centre_vox", {centre[0], centre[1], centre[2]}},
                      {"displacement_at_centre_vox", {u_centre[0], u_centre[1], u_centre[2]}},
                      {"definition",
                       "x = X + u(X), voxels; rigid u = R(X - c) + c + shift - X; affine u = strain_zz (X_z - c_z) e_z "
                       "+ shift; field = affine + A (sin(2 pi X_z / n_z) / 2, 0, sin(pi X_x / n_x) sin(pi X_y / n_y))"},
                      {"files", {{"reference", name + "_ref" + ext}, {"deformed", name + "_def" + ext}}},
                      {"imaging", job.imaging.to_json()}};
  write_text_atomically(dir / (name + ".motion.json"), j.dump(2) + "\n");
}

int phantom_main(const std::vector<std::string>& args) {
  CLI::App app("Generate a synthetic composite-cathode pressure series with exact ground truth", "phantom");
  std::string out, spec_path, pressures, size, spacing, noise, prefix, format = "tif", slices;
  std::optional<std::uint64_t> seed;
  std::optional<double> snr, blur, cupping, rings, curtains, grain_contrast;
  bool fib_sem = false, ids = false, realistic = false;
  int threads = 0;
  app.add_option("--out", out, "output folder (created)")->required();
  app.add_option("--spec", spec_path, "YAML phantom spec (flags below override it)");
  app.add_option("--seed", seed, "random seed (default 1): same seed, same bytes");
  app.add_option("--size", size, "image size in voxels: N or NX,NY,NZ (default 64)");
  app.add_option("--spacing", spacing, "voxel size in µm: S or SX,SY,SZ (default 0.5; fib-sem 0.01,0.01,0.02)");
  app.add_option("--pressures", pressures, "applied pressures in MPa: P1,P2,... (default 10,50,125,250,370)");
  app.add_option("--snr", snr, "signal-to-noise ratio |grey(am) − grey(se)| / σ_noise (default 8)");
  app.add_option("--blur", blur, "Gaussian PSF σ in voxels (default 1)");
  app.add_option("--noise", noise, "gaussian|poisson|none (default gaussian)");
  app.add_option("--cupping", cupping, "beam-hardening cupping: centre darker by this fraction (default 0)");
  app.add_option("--rings", rings, "ring artefacts: ± this fraction of the gain (default 0)");
  app.add_option("--curtains", curtains, "FIB-SEM curtaining amplitude, fraction of the gain (default 0.08)");
  app.add_option("--grain-contrast", grain_contrast,
                 "AM grain texture: ± this fraction of the AM attenuation (default 0)");
  app.add_flag("--realistic", realistic,
               "harder, lab-like scan: poisson noise, cupping 0.08, grain contrast 0.04 (unless given)");
  app.add_flag("--fib-sem", fib_sem, "FIB-SEM flavour: 10×10×20 nm voxels unless --spacing, curtaining stripes");
  app.add_option("--prefix", prefix, "prefix of the sample names (names are <prefix>p<PPP>)");
  app.add_option("--format", format, "volume format: tif|mha (compressed)")->capture_default_str();
  app.add_flag("--ids", ids, "also write <name>_particles and <name>_cracks id volumes (uint32)");
  bool particle_motion = false;
  app.add_flag("--particle-motion", particle_motion,
               "also write particle_motion.csv: the exact displacement of every AM particle between consecutive steps");
  std::string motion, shift, rotation;
  std::optional<double> strain_zz, field_amplitude;
  app.add_option("--motion", motion,
                 "also write a DVC pair per step under a known motion: rigid|affine|field -> <name>_ref, <name>_def "
                 "(float32, independent noise) and <name>.motion.json");
  app.add_option("--shift", shift, "--motion: translation in voxels X,Y,Z (default 0.37,-0.61,0.83)");
  app.add_option("--rotation", rotation,
                 "--motion rigid: rotation vector in degrees X,Y,Z about the centre (default 0,0,0)");
  app.add_option("--strain-zz", strain_zz,
                 "--motion affine|field: uniaxial strain ε_zz about the centre (default -0.02)");
  app.add_option("--field-amplitude", field_amplitude,
                 "--motion field: amplitude of the smooth part in voxels (default 1)");
  app.add_option("--slices", slices, "also write mid-z slice PNGs here: <name>_xy.png, <name>_labels_xy.png");
  app.add_option("--threads", threads, "worker threads (0 = all); results do not depend on it");
  if (parse_cli(app, args)) return 0;
  if (format != "tif" && format != "mha") throw InputError("--format '" + format + "': expected tif or mha");
  std::optional<MotionSpec> motion_spec;
  if (!motion.empty()) {
    motion_spec = MotionSpec{};
    motion_spec->kind = parse_motion_kind(motion);
    auto vec3 = [](const std::string& text, const char* flag) {
      const auto v = parse_list(text, flag);
      if (v.size() != 3) throw InputError(std::string(flag) + " '" + text + "': expected X,Y,Z");
      return Vec3{v[0], v[1], v[2]};
    };
    if (!shift.empty()) motion_spec->shift_vox = vec3(shift, "--shift");
    if (!rotation.empty()) motion_spec->rotation_deg = vec3(rotation, "--rotation");
    if (strain_zz) {
      if (!(*strain_zz > -0.5 && *strain_zz < 0.5))
        throw InputError("--strain-zz: expected a strain between -0.5 and 0.5");
      motion_spec->strain_zz = *strain_zz;
    }
    if (field_amplitude) motion_spec->field_amplitude_vox = *field_amplitude;
  } else if (!shift.empty() || !rotation.empty() || strain_zz || field_amplitude) {
    throw InputError(
        "--shift, --rotation, --strain-zz and --field-amplitude describe --motion: give --motion rigid|affine|field");
  }

  std::unique_ptr<tbb::global_control> limit;
  if (threads > 0) limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, threads);

  PhantomJob job = spec_path.empty() ? PhantomJob{} : load_phantom_spec(spec_path);
  if (spec_path.empty()) job.imaging.seed = job.composite.seed;
  CompositeSpec& c = job.composite;
  if (fib_sem && !job.fib_sem) {
    job.fib_sem = true;
    if (spacing.empty()) c.spacing_um = kFibSemSpacingUm;
  }
  if (seed) c.seed = *seed, job.imaging.seed = *seed;
  if (!size.empty()) {
    const auto v = parse_list(size, "--size");
    if ((v.size() != 1 && v.size() != 3) ||
        std::any_of(v.begin(), v.end(), [](double x) { return x < 1 || x != std::floor(x); }))
      throw InputError("--size '" + size + "': expected N or NX,NY,NZ (positive whole numbers)");
    c.dims = v.size() == 1 ? Dims{index_t(v[0]), index_t(v[0]), index_t(v[0])}
                           : Dims{index_t(v[0]), index_t(v[1]), index_t(v[2])};
  }
  if (!spacing.empty()) c.spacing_um = parse_spacing(spacing);
  if (!pressures.empty()) c.pressures_MPa = parse_list(pressures, "--pressures");
  if (snr) {
    if (!(*snr > 0)) throw InputError("--snr: expected > 0");
    job.imaging.snr = *snr;
  }
  if (blur) {
    if (!(*blur >= 0)) throw InputError("--blur: expected ≥ 0 voxels");
    job.imaging.blur_sigma_vox = {*blur, *blur, *blur};
  }
  if (!noise.empty()) job.imaging.noise = parse_noise_model(noise, "--noise");
  if (cupping) job.imaging.cupping = *cupping;
  if (rings) job.imaging.ring_amplitude = *rings;
  if (curtains) job.imaging.curtain_amplitude = *curtains;
  if (grain_contrast) {
    if (!(*grain_contrast >= 0 && *grain_contrast <= 0.5)) throw InputError("--grain-contrast: expected 0 … 0.5");
    job.imaging.grain_contrast = *grain_contrast;
  }
  if (realistic) {
    if (noise.empty()) job.imaging.noise = NoiseModel::poisson;
    if (!cupping) job.imaging.cupping = kRealisticCupping;
    if (!grain_contrast) job.imaging.grain_contrast = kRealisticGrainContrast;
  }

  // The command line goes into series.yaml and the truth (reproducibility), without the output
  // folders and thread count, so the bytes depend on neither.
  std::string command_line = "voxpress phantom";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" || args[i] == "--slices" || args[i] == "--threads") {
      ++i;
      continue;
    }
    if (args[i].rfind("--out=", 0) == 0 || args[i].rfind("--slices=", 0) == 0 || args[i].rfind("--threads=", 0) == 0)
      continue;
    command_line += " " + args[i];
  }

  const fs::path dir(out);
  fs::create_directories(dir);
  if (!slices.empty()) fs::create_directories(slices);
  WriteOptions wo;
  wo.compress = true;
  std::vector<std::pair<std::string, double>> written;
  std::vector<GroundTruth> truths;  // --particle-motion
  for (double pressure : c.pressures_MPa) {
    const std::string name = sample_name(prefix, pressure);
    Phantom ph = generate_composite(c, pressure);
    const Volume<std::uint16_t> grey = job.fib_sem ? fib_sem_image(ph, job.imaging) : ct_image(ph, job.imaging);
    const std::string ext = "." + format;
    write_volume(grey, (dir / (name + ext)).string(), wo);
    write_volume(static_cast<const Volume<std::uint8_t>&>(ph.labels), (dir / (name + "_labels" + ext)).string(), wo);
    if (ids) {
      write_volume(ph.particles, (dir / (name + "_particles" + ext)).string(), wo);
      write_volume(ph.cracks, (dir / (name + "_cracks" + ext)).string(), wo);
    }
    ImagingSpec imaging = job.imaging;
    if (job.fib_sem && imaging.curtain_amplitude <= 0) imaging.curtain_amplitude = 0.08;
    ph.truth.parameters["imaging"] = imaging.to_json();
    ph.truth.parameters["imaging"]["modality"] = job.fib_sem ? "fib-sem" : "ct";
    nlohmann::json files = {{"grey", name + ext}, {"labels", name + "_labels" + ext}};
    if (ids) files["particles"] = name + "_particles" + ext, files["cracks"] = name + "_cracks" + ext;
    ph.truth.parameters["files"] = files;
    ph.truth.parameters["command"] = command_line;
    write_text_atomically(dir / (name + ".truth.json"), ph.truth.to_json().dump() + "\n");
    if (!slices.empty()) {
      write_slice_png(grey, Plane::xy, -1, (fs::path(slices) / (name + "_xy.png")).string());
      write_label_overlay_png(&grey, ph.labels, Plane::xy, -1, (fs::path(slices) / (name + "_labels_xy.png")).string());
    }
    std::printf("%s  %6.1f MPa  porosity %.4f  am %.4f  se %.4f  contact %.4f  cracks %zu\n", name.c_str(), pressure,
                ph.truth.volume_fraction.at("pore"), ph.truth.volume_fraction.at("am"),
                ph.truth.volume_fraction.at("se"), ph.truth.contact_area_fraction, ph.truth.cracks.size());
    const double n = static_cast<double>(c.dims.count());
    if (ph.truth.target_porosity >= 0 && std::fabs(ph.truth.voxel_count.at("pore") - ph.truth.target_porosity * n) > 1)
      std::fprintf(stderr,
                   "voxpress phantom: warning: %s: porosity %.4f cannot reach the Heckel target %.4f "
                   "(solids or cracks leave no room at this size)\n",
                   name.c_str(), ph.truth.volume_fraction.at("pore"), ph.truth.target_porosity);
    if (motion_spec) write_motion_pair(ph, job, *motion_spec, dir, name, ext, wo);
    written.emplace_back(name, pressure);
    if (particle_motion) truths.push_back(ph.truth);
  }
  if (particle_motion) {
    std::string csv = particle_motion_csv({}, true);
    for (std::size_t k = 1; k < truths.size(); ++k)
      csv += particle_motion_csv(particle_step_motion(truths[k - 1], truths[k]), false);
    write_text_atomically(dir / "particle_motion.csv", csv);
  }
  write_text_atomically(dir / "series.yaml", series_yaml(job, written, command_line));
  return 0;
}

}  // namespace

void register_phantoms(Registry& registry) {
  registry.add(Command{"phantom", "synthetic pressure series with exact ground truth (CT / FIB-SEM)", phantom_main});
}

}  // namespace vp
