// voxpress segment VOLUME --out LABELS [...]: preprocessing, phase segmentation, clean-up and
// particle separation of one volume from the command line (the same functions as the stages).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/stage.h"
#include "filters/io/slice_png.h"
#include "filters/preprocess/preprocess.h"
#include "filters/preprocess/psf.h"
#include "filters/segment/cleanup.h"
#include "filters/segment/particles.h"
#include "filters/segment/segmenter.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/commands/command_api.h"
#include "pipeline/stages/segment_stages.h"

namespace vp {

namespace {

namespace fs = std::filesystem;

const Stage& stage_named(const std::string& name) {
  const Stage* stage = Registry::global().stage(name);
  if (!stage) throw std::logic_error("segment: the " + name + " stage is not registered");
  return *stage;
}
const Stage& preprocess_stage() { return stage_named("preprocess"); }

// The preprocess stage's parameters as flags of their YAML names (--nlmeans-patch-radius for
// nlmeans_patch_radius), plus the spellings `segment` had before, kept as aliases.
void add_preprocess_flags(CLI::App& app, std::map<std::string, std::string>& values) {
  std::vector<std::string> names;
  for (const ParamSpec& spec : preprocess_stage().params()) names.push_back(spec.name);
  add_stage_flags(app, preprocess_stage(), names, values);
  add_stage_flag_alias(app, preprocess_stage(), "--nlmeans-patch", "nlmeans_patch_radius", values);
  add_stage_flag_alias(app, preprocess_stage(), "--deconvolve-sigma", "deconvolve_sigma_vox", values);
}

// The segment, cleanup and particles stages' keys that `segment` offers as flags. Not offered:
// segment's `phases` (the command writes class indices), and cleanup's and particles'
// `connectivity` (--connectivity is segment's; both keep their default, 26).
const std::vector<std::string> kSegmentFlags = {
    "method",          "classes",      "thresholds",  "bins",       "connectivity",
    "model",           "thin_pores",   "end_members", "pore_films", "refit_end_members",
    "sharp_psf_sweep", "low_snr_sweep"};
const std::vector<std::string> kCleanupFlags = {"min_island_voxels"};
const std::vector<std::string> kParticlesFlags = {"phase", "h", "min_volume"};

}  // namespace

nlohmann::json segmentation_summary(const Volume<float>& grey, const SegmentResult& r) {
  nlohmann::json summary = nlohmann::json::object();
  const Volume<std::uint8_t>& labels = r.labels;
  // Per class: voxel fraction of its label, grey mean and σ (auto: end member and noise σ).
  std::vector<double> fraction(r.classes, 0.0), sum(r.classes, 0.0), sum2(r.classes, 0.0);
  for (index_t i = 0; i < labels.size(); ++i)
    if (labels[i] < r.classes) {
      fraction[labels[i]] += 1;  // exact counts, divided once
      sum[labels[i]] += grey[i];
      sum2[labels[i]] += static_cast<double>(grey[i]) * grey[i];
    }
  nlohmann::json cls = nlohmann::json::array(), vf = nlohmann::json::object();
  for (int c = 0; c < r.classes; ++c) {
    const double n = fraction[c];
    double mean = n > 0 ? sum[c] / n : std::nan(""),
           sigma = n > 0 ? std::sqrt(std::max(sum2[c] / n - mean * mean, 0.0)) : std::nan("");
    if (r.partial_volume) mean = r.partial_volume->means[c], sigma = r.auto_fit->mixture.sigmas[c];
    fraction[c] /= static_cast<double>(labels.size());
    cls.push_back(
        {{"label", c}, {"mean", json_number(mean)}, {"sigma", json_number(sigma)}, {"fraction", fraction[c]}});
    vf[std::to_string(c)] = fraction[c];
  }
  summary["classes"] = cls;
  summary["volume_fraction"] = vf;
  // PSF σ per axis from the scan's own edges between the classes' grey levels.
  {
    std::vector<double> levels;
    for (const auto& c : cls)
      if (c["mean"].is_number()) levels.push_back(c["mean"].get<double>());
    std::sort(levels.begin(), levels.end());
    try {
      // auto estimated it already for its labelling (segment_grey); other methods measure it here.
      const PsfEstimate e = r.psf ? *r.psf : estimate_psf(grey, levels);
      summary["psf_sigma_vox"] = {json_number(e.sigma_vox[0]), json_number(e.sigma_vox[1]),
                                  json_number(e.sigma_vox[2])};
      summary["psf_sigma_ci95_vox"] = {json_number(e.ci95_vox[0]), json_number(e.ci95_vox[1]),
                                       json_number(e.ci95_vox[2])};
      summary["psf_status"] = e.status;
      if (r.psf) summary["psf_end_members"] = psf_end_members(r);
    } catch (const InputError& e) {
      summary["psf_sigma_vox"] = {nullptr, nullptr, nullptr};
      summary["psf_status"] = e.what();
    }
  }
  if (r.partial_volume) {
    const PartialVolumeResult& pv = *r.partial_volume;
    const PartialVolumeMixture& m = r.auto_fit->mixture;
    nlohmann::json f = nlohmann::json::object(), ci = nlohmann::json::object();
    for (int c = 0; c < r.classes; ++c) {
      f[std::to_string(c)] = pv.fraction_pv[c];
      ci[std::to_string(c)] = pv.fraction_pv_ci95[c];
    }
    summary["volume_fraction_pv"] = f;
    summary["volume_fraction_pv_ci95"] = ci;
    nlohmann::json interfaces = nlohmann::json::array();
    for (const auto& p : m.interfaces) interfaces.push_back({{"labels", {p.a, p.b}}, {"weight", p.weight}});
    nlohmann::json& fit = summary["fit"] = partial_volume_counters_json(r);
    fit.update({{"pure_weights", m.weights},
                {"interfaces", interfaces},
                {"log_likelihood_per_voxel", m.log_likelihood},
                {"separation_sigma", m.separations()},
                {"end_member_uncertainty", pv.mean_uncertainty},
                {"pure_voxels", pv.pure_voxels}});
    // Reference end members: the scan's own free fit beside them (the drift check's evidence).
    if (!r.auto_fit->scan_fit_means.empty()) {
      summary["fit"]["scan_fit_means"] = r.auto_fit->scan_fit_means;
      summary["fit"]["scan_fit_resolved"] = r.auto_fit->scan_fit_resolved;
    }
    // How sure the fit is (mixture_model.h, kMaxFitKs; `fit` holds the figures).
    summary["fit_status"] = r.auto_fit->fit_status;
    summary["end_members_source"] = r.auto_fit->end_members_source;
    summary["warnings"] = r.auto_fit->warnings;
  }
  if (r.pore_films) summary["pore_films"] = pore_films_json(*r.pore_films);
  if (r.mixture && !r.auto_fit)
    summary["mixture"] = {{"weights", r.mixture->weights}, {"means", r.mixture->means}, {"sigmas", r.mixture->sigmas}};
  return summary;
}

namespace {

void describe(CLI::App& app, const std::string& flag, const std::string& help) {
  app.get_option(flag)->description(help);
}

// --open 0.5 (the --cleanup-label class, as `segment` always read it) or --open "{phase2: 0.5}"
// (the cleanup stage's key: phase -> value). A number is written as the key's map over `names`;
// 0 means not given, as before.
bool is_number(const std::string& text) {
  char* end = nullptr;
  std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}
std::string class_map_value(const std::string& text, const std::vector<std::string>& names) {
  if (!is_number(text)) return text;  // a map (or nothing): the stage checks it
  if (std::stod(text) == 0) return "";
  std::string map = "{";
  for (std::size_t i = 0; i < names.size(); ++i) map += (i ? ", " : "") + names[i] + ": " + text;
  return map + "}";
}

// A class index flag (--cleanup-label, --particle-label) as the name of that class's phase.
std::string class_phase(int index, const PhaseTable& table, int classes, const std::string& flag) {
  if (index >= classes || !table.by_label(index))
    throw InputError(flag + " " + std::to_string(index) + ": the segmentation has classes 0.." +
                     std::to_string(classes - 1) + "; expected one of them");
  return table.by_label(index)->name;
}

}  // namespace

std::map<std::string, std::string> cleanup_values(const ClassCleanupFlags& flags, const PhaseTable& classes) {
  const int count = static_cast<int>(classes.phases().size());
  std::map<std::string, std::string> values = flags.stage_values;
  const bool by_class = is_number(flags.open) || is_number(flags.close) || flags.fill_holes;
  std::string cleanup_class;
  if (flags.cleanup_label >= 0 || by_class)
    cleanup_class =
        class_phase(flags.cleanup_label >= 0 ? flags.cleanup_label : count - 1, classes, count, "--cleanup-label");
  std::vector<std::string> all;
  for (const Phase& ph : classes.phases()) all.push_back(ph.name);
  const std::vector<std::pair<std::string, std::string>> given = {
      {"open", class_map_value(flags.open, {cleanup_class})},
      {"close", class_map_value(flags.close, {cleanup_class})},
      {"min_island", class_map_value(flags.min_island, all)}};
  for (const auto& [key, value] : given)
    if (!value.empty()) values[key] = value;
  if (flags.fill_holes) values["fill_holes"] = "[" + cleanup_class + "]";
  return values;
}

namespace {

int segment_main(const std::vector<std::string>& args) {
  CLI::App app(
      "Segment a greyscale volume into phase labels (0 = darkest class), optionally clean up and "
      "separate particles",
      "segment");
  VolumeArgs volume;
  add_volume_flags(app, volume);
  std::string out, scribbles, model_out, sigmas = "1,2,4", particles_out, particles_csv, qc_dir, psf_sigma;
  int trees = 64, particle_label = -1;
  bool json = false;
  ClassCleanupFlags cleanup;
  std::map<std::string, std::string> preprocess_values, segment_values, particle_values;
  const Stage &segment = stage_named("segment"), &cleanup_stage = stage_named("cleanup"),
              &particles = stage_named("particles");
  app.add_option("--out", out, "output label volume (TIFF, MHA, NRRD, NIfTI, raw by extension)")->required();
  // Flags of the stages' keys; the spellings `segment` had before stay as aliases.
  add_stage_flags(app, segment, kSegmentFlags, segment_values);
  describe(app, "--method", std::string(kSegmentMethodChoices) + " (default auto; forest with a model)");
  describe(app, "--classes", "number of classes K (auto and multi-otsu default 3, others 2)");
  describe(app, "--model", "apply a forest saved with --model-out");
  app.add_flag_callback(
      "--no-thin-pores", [&] { segment_values["thin_pores"] = "false"; },
      "auto: do not label darkest-phase films thinner than the PSF (--thin-pores false)");
  app.add_option("--psf-sigma", psf_sigma,
                 "auto: PSF σ in voxels, S or SX,SY,SZ (default: estimated from the scan's edges)");
  add_preprocess_flags(app, preprocess_values);
  app.add_option("--scribbles", scribbles, "label volume of scribbles (0 unlabelled, v = class v-1) to train a forest");
  app.add_option("--model-out", model_out, "save the trained forest here (.yml, .yml.gz, .xml)");
  app.add_option("--sigmas", sigmas, "forest feature scales in µm")->capture_default_str();
  app.add_option("--trees", trees, "forest size")->capture_default_str();
  app.add_option("--min-island", cleanup.min_island,
                 "remove islands below this volume, µm³: V for every class, or {phaseC: V, ...}");
  add_stage_flags(app, cleanup_stage, kCleanupFlags, cleanup.stage_values);
  describe(app, "--min-island-voxels", "remove islands below this many voxels: {phaseC: N, ...}");
  app.add_flag("--fill-holes", cleanup.fill_holes, "fill holes enclosed in the --cleanup-label class");
  app.add_option("--open", cleanup.open, "opening radius of the --cleanup-label class, µm (or {phaseC: R, ...})");
  app.add_option("--close", cleanup.close, "closing radius of the --cleanup-label class, µm (or {phaseC: R, ...})");
  app.add_option("--cleanup-label", cleanup.cleanup_label,
                 "class for --fill-holes/--open/--close (default: brightest)");
  app.add_option("--particles", particles_out, "write separated particle ids (uint32) of --phase here");
  add_stage_flags(app, particles, kParticlesFlags, particle_values);
  describe(app, "--phase", "phase to separate: phaseC for class C (default: the brightest class)");
  app.add_option("--particle-label", particle_label, "class to separate (same as --phase phaseC)");
  add_stage_flag_alias(app, particles, "--min-particle", "min_volume", particle_values);
  app.add_option("--particles-csv", particles_csv, "per-particle table (default: next to --particles, .csv)");
  app.add_option("--qc", qc_dir, "folder for histogram.png, labels_{xy,xz,yz}.png, particles_xy.png");
  app.add_flag("--json", json, "print the summary as JSON");
  if (parse_cli(app, args)) return 0;

  const std::string model_in = segment_values.count("model") ? segment_values["model"] : "";
  if (!model_in.empty() && !scribbles.empty()) throw InputError("--model and --scribbles exclude each other");
  if (!model_out.empty() && scribbles.empty()) throw InputError("--model-out needs --scribbles to train from");
  check_output_file(out, "--out");
  if (!qc_dir.empty()) create_output_folder(qc_dir, "--qc");
  // The command's default where it differs from the stage's: forest when a model is given.
  if (!segment_values.count("method"))
    segment_values["method"] = (!model_in.empty() || !scribbles.empty()) ? "forest" : "auto";
  if (!psf_sigma.empty()) {
    const auto s = parse_numbers(psf_sigma, "--psf-sigma");
    if ((s.size() != 1 && s.size() != 3) || !std::all_of(s.begin(), s.end(), [](double v) { return v > 0; }))
      throw InputError("--psf-sigma '" + psf_sigma + "': expected S or SX,SY,SZ voxels, each > 0");
    if (s.size() == 1) segment_values["psf_sigma"] = psf_sigma;  // the stage's key holds one σ
  }
  if (segment_values["method"] == "forest" && model_in.empty() && scribbles.empty())
    throw InputError("--method forest needs --model FILE or --scribbles FILE");

  // Every stage's values are checked like a config's keys before any voxel is read (phase names
  // again once the classes are known).
  const PhaseTable no_phases;
  const std::string origin = "segment command line";
  const Params preprocess =
      stage_params(preprocess_stage(), preprocess_values, origin, PreflightContext{no_phases, kGrey});
  // Training from --scribbles makes the forest here: the stage's "forest needs a model file"
  // preflight does not apply, its declared types, bounds and choices do.
  Params segment_params = Params::from_strings(segment_values, segment.params(), origin);
  segment_params.removed("segment stage", segment.removed_params());
  {
    Diagnostics diags(origin);
    segment_params.check(diags);
    if (scribbles.empty()) segment.preflight(segment_params, PreflightContext{no_phases, kGrey}, diags);
    diags.throw_if_any();
  }
  stage_params(cleanup_stage, cleanup.stage_values, origin, PreflightContext{no_phases, kLabels});
  stage_params(particles, particle_values, origin, PreflightContext{no_phases, kLabels});
  SegmentOptions so = segment_options(segment_params);
  if (!psf_sigma.empty()) {
    const auto s = parse_numbers(psf_sigma, "--psf-sigma");
    for (int a = 0; a < 3; ++a) so.partial_volume.psf_sigma_vox[a] = s[s.size() == 1 ? 0 : a];
  }

  ReadResult input = load_volume(volume);
  const Provenance source = provenance_of(input.volume);
  SampleContext prep;
  prep.grey = std::move(input.volume);
  run_stage(preprocess_stage(), preprocess, prep);
  const Volume<float> grey = std::get<Volume<float>>(std::move(*prep.grey));
  prep.grey.reset();

  std::optional<ForestModel> model;
  if (!model_in.empty()) model = ForestModel::load(model_in);
  if (!scribbles.empty()) {
    ReadOptions ro;
    ro.path = scribbles;
    Volume<std::uint8_t> s = to_labels_u8(read_volume(ro).volume);
    s.provenance.path = scribbles;
    if (preprocess.has("crop")) {
      const auto c = preprocess.numbers("crop");
      Box b;
      for (int a = 0; a < 3; ++a) {
        b.min[a] = static_cast<index_t>(c[a]);
        b.size[a] = static_cast<index_t>(c[3 + a]);
      }
      s = s.crop(b);
    }
    if (preprocess.integer("bin") != 1)
      throw InputError("--scribbles cannot be combined with --bin (scribbles are not binned)");
    FeatureSettings fset;
    fset.sigmas_um = parse_numbers(sigmas, "--sigmas");
    ForestOptions fo;
    fo.trees = trees;
    model = ForestModel::train(grey, s, fset, fo);
    if (!model_out.empty()) model->save(model_out);
  }
  so.model = model ? &*model : nullptr;
  SegmentResult r = segment_grey(grey, so);
  Volume<std::uint8_t>& labels = r.labels;

  // The classes as phases phase0, phase1, ...: the names the cleanup and particles keys take.
  std::vector<int> class_labels;
  for (int c = 0; c < r.classes; ++c) class_labels.push_back(c);
  const PhaseTable classes = PhaseTable::unnamed(class_labels);
  const Params cleanup_params =
      stage_params(cleanup_stage, cleanup_values(cleanup, classes), origin, PreflightContext{classes, kLabels});
  const CleanupReport cr = cleanup_labels(labels, cleanup_options(cleanup_params, classes, labels.spacing_um));
  write_volume(labels, out);

  nlohmann::json summary = {{"input", source.path},
                            {"sha256", source.sha256},
                            {"out", out},
                            {"dims", to_json(labels.dims())},
                            {"spacing_um", to_json(labels.spacing_um)},
                            {"preprocess", prep.details["steps"]},
                            {"method", to_string(so.method)},
                            {"thresholds", r.thresholds}};
  if (prep.details.contains("deconvolve")) summary["deconvolve"] = prep.details["deconvolve"];
  summary.update(segmentation_summary(grey, r));
  // With reference end members the warnings (drift among them) reach stderr with --json too.
  // A poor fit is never silent: its warnings reach stderr with --json too.
  if (r.auto_fit && (!json || so.end_members || r.auto_fit->poor_fit()))
    for (const auto& w : r.auto_fit->warnings) std::cerr << "warning: " << w << "\n";
  if (model)
    summary["model"] = {{"training_samples", model->training_samples()},
                        {"training_accuracy", model->training_accuracy()},
                        {"saved", model_out}};
  summary["cleanup"] = {{"voxels_opened", cr.voxels_opened},
                        {"voxels_closed", cr.voxels_closed},
                        {"islands_removed", cr.islands_removed},
                        {"voxels_filled", cr.voxels_filled}};

  std::optional<Volume<std::uint32_t>> ids;
  if (!particles_out.empty()) {
    if (particle_label >= 0 || !particle_values.count("phase"))
      particle_values["phase"] =
          class_phase(particle_label >= 0 ? particle_label : r.classes - 1, classes, r.classes, "--particle-label");
    const Params particle_params = stage_params(particles, particle_values, origin, PreflightContext{classes, kLabels});
    const auto pl = static_cast<std::uint8_t>(classes.resolve(particle_params.string("phase")).label);
    ids = separate_particles(labels, pl, particle_options(particle_params));
    write_volume(*ids, particles_out);
    const auto table = particle_table(*ids);
    if (particles_csv.empty()) particles_csv = fs::path(particles_out).replace_extension(".csv").string();
    write_text_atomically(particles_csv, particle_table_csv(table));
    summary["particles"] = {
        {"label", pl}, {"count", table.size()}, {"volume", particles_out}, {"table", particles_csv}};
  }
  if (!qc_dir.empty()) {
    fs::create_directories(qc_dir);
    write_bytes_atomically(
        fs::path(qc_dir) / "histogram.png",
        histogram_png(r.histogram, r.thresholds, r.mixture ? &*r.mixture : nullptr, to_string(so.method)));
    for (Plane p : {Plane::xy, Plane::xz, Plane::yz})
      write_label_overlay_png(&grey, labels, p, -1, (fs::path(qc_dir) / ("labels_" + to_string(p) + ".png")).string());
    if (ids) write_label_overlay_png(&grey, *ids, Plane::xy, -1, (fs::path(qc_dir) / "particles_xy.png").string());
    summary["qc"] = qc_dir;
  }
  if (json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << "segmented " << to_string(labels.dims()) << " by " << to_string(so.method) << " into " << r.classes
              << " classes";
    if (!r.thresholds.empty()) {
      std::cout << " (thresholds";
      for (double t : r.thresholds) std::cout << " " << format_number(t);
      std::cout << ")";
    }
    std::cout << "\n";
    for (int c = 0; c < r.classes; ++c) {
      std::cout << "  class " << c << ": fraction " << format_number(summary["classes"][c]["fraction"].get<double>());
      if (r.partial_volume)
        std::cout << ", partial-volume fraction " << format_number(r.partial_volume->fraction_pv[c]) << " ± "
                  << format_number(r.partial_volume->fraction_pv_ci95[c]);
      std::cout << "\n";
    }
    if (ids) std::cout << "  particles: " << summary["particles"]["count"] << " -> " << particles_out << "\n";
    std::cout << "wrote " << out << "\n";
  }
  return 0;
}

}  // namespace

Command make_segment_command() {
  return {"segment", "grey volume -> phase labels (auto, otsu, multi-otsu, gmm, kmeans, threshold, hysteresis, forest)",
          segment_main};
}

}  // namespace vp
