// Stages preprocess, segment, cleanup, particles and the `segment` command's registration.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "filters/io/slice_png.h"
#include "filters/preprocess/preprocess.h"
#include "filters/segment/cleanup.h"
#include "filters/segment/particles.h"
#include "filters/segment/segmenter.h"
#include "pipeline/catalog.h"
#include "pipeline/stages/segment_stages.h"

namespace vp {

Command make_segment_command();  // pipeline/commands/segment_command.cpp

namespace {

namespace fs = std::filesystem;

// A preflight problem at the key's line and column when the key was given.
void bad(Diagnostics& d, const Params& p, const std::string& key, const std::string& message) {
  if (p.has(key)) d.error(p.node(key), p.key_path(key), message);
  else d.error(p.key_path(key), message);
}

// Labels over grey in the three planes: labels_xy.png, labels_xz.png, labels_yz.png.
template <class L>
void write_overlays(SampleContext& ctx, const std::string& what, const Volume<L>& labels, bool all_planes) {
  // The grey as it is: the overlay converts only the slice it draws (to_float of the whole
  // volume cost a 4 B/voxel copy per stage for the same pixels).
  const AnyVolume* grey = ctx.grey && dims_of(*ctx.grey) == labels.dims() ? &*ctx.grey : nullptr;
  for (Plane p : {Plane::xy, Plane::xz, Plane::yz}) {
    if (!all_planes && p != Plane::xy) break;
    const auto path = ctx.artifact(what + "_" + to_string(p) + ".png");
    if (!path) return;
    write_label_overlay_png(grey, labels, p, -1, path->string());
  }
}

// Phase name -> label in the config's phase table; the key path names the offending entry.
const Phase& resolve_phase(const Params& params, const std::string& key, const PhaseTable& table,
                           const std::string& name) {
  try {
    return table.resolve(name);
  } catch (const InputError& e) {
    params.fail(key, e.what());
  }
}

const PhaseTable& table_of(const SampleContext& ctx) {
  if (ctx.labels) return ctx.labels->phases;
  static const PhaseTable empty;
  return ctx.config_phases ? *ctx.config_phases : empty;
}

// ---------------------------------------------------------------- preprocess

class PreprocessStage : public Stage {
 public:
  std::string name() const override { return "preprocess"; }
  std::string summary() const override {
    return "grey -> grey: crop, bin, ring and cupping correction, denoise, percentile normalisation";
  }
  std::vector<ParamSpec> params() const override {
    return {
        param("crop", ParamType::number_list, "voxel box [x0, y0, z0, nx, ny, nz]"),
        param("bin", ParamType::integer, "mean binning factor", "voxels", "1"),
        param("rings", ParamType::boolean, "ring-artefact reduction about the rotation centre", "", "false"),
        bounded(
            param("ring_window", ParamType::integer, "running-median window over radial shells (odd)", "shells", "9"),
            3),
        param("cupping", ParamType::boolean, "radial cupping (beam hardening) correction", "", "false"),
        bounded(param("cupping_degree", ParamType::integer, "polynomial degree in r²", "", "2"), 1, 4),
        param("centre", ParamType::number_list, "rotation centre [x, y] in voxels; default the slice centre", "voxels"),
        choices(
            param("deconvolve", ParamType::string, "deconvolution with a Gaussian PSF (before denoise)", "", "none"),
            {"none", "richardson-lucy"}),
        bounded(param("deconvolve_iterations", ParamType::integer, "Richardson–Lucy iterations", "", "10"), 1),
        bounded(param("deconvolve_sigma_vox", ParamType::number_list,
                      "PSF σ: S or [sx, sy, sz]; default estimated from the scan (edge-spread fit)", "voxels"),
                0),
        bounded(param("deconvolve_classes", ParamType::integer, "pure phases for the PSF estimate", "", "3"), 2, 16),
        bounded(
            param("deconvolve_smooth", ParamType::number, "Gaussian σ after Richardson–Lucy (noise)", "voxels", "0.5"),
            0),
        choices(param("denoise", ParamType::string, "denoising filter", "", "none"),
                {"none", "median", "bilateral", "anisotropic", "nlmeans"}),
        bounded(param("median_radius", ParamType::integer, "median box radius", "voxels", "1"), 1),
        bounded(param("bilateral_sigma", ParamType::number, "bilateral spatial σ", "µm", "1.0"), 0),
        bounded(
            param("bilateral_range", ParamType::number, "bilateral grey σ (0: twice the noise estimate)", "grey", "0"),
            0),
        bounded(param("diffusion_iterations", ParamType::integer, "anisotropic diffusion iterations", "", "5"), 1),
        bounded(param("diffusion_conductance", ParamType::number, "anisotropic diffusion conductance", "", "1.0"), 0),
        bounded(param("nlmeans_patch_radius", ParamType::integer, "non-local means patch radius", "voxels", "1"), 1),
        bounded(
            param("nlmeans_search_radius", ParamType::integer, "non-local means search cube half-width", "voxels", "5"),
            1),
        bounded(
            param("nlmeans_samples", ParamType::integer, "patches compared per voxel (the nearest offsets)", "", "50"),
            1),
        bounded(
            param("nlmeans_bandwidth", ParamType::number, "patch-weight kernel σ (0: the noise estimate)", "grey", "0"),
            0),
        bounded(param("nlmeans_iterations", ParamType::integer, "non-local means iterations", "", "1"), 1),
        param("normalise", ParamType::boolean, "map percentiles to 0 and 1", "", "false"),
        bounded(
            param("percentiles", ParamType::number_list, "low and high percentiles for normalise", "%", "[0.5, 99.5]"),
            0, 100),
        param("clamp", ParamType::boolean, "clamp normalised values to [0, 1]", "", "false"),
    };
  }
  unsigned needs() const override { return kGrey; }
  unsigned provides() const override { return kGrey; }
  double bytes_per_voxel() const override { return 16.0; }

  void preflight(const Params& p, const PreflightContext&, Diagnostics& d) const override {
    if (p.has("crop") && p.numbers("crop").size() != 6)
      bad(d, p, "crop", "expected 6 numbers [x0, y0, z0, nx, ny, nz]");
    const long long bin = p.integer("bin");
    if (bin != 1 && bin != 2 && bin != 4) bad(d, p, "bin", "expected 1, 2 or 4");
    if (p.integer("ring_window") % 2 == 0) bad(d, p, "ring_window", "expected an odd number");
    if (p.has("centre") && p.numbers("centre").size() != 2) bad(d, p, "centre", "expected [x, y]");
    if (p.has("deconvolve_sigma_vox") && p.numbers("deconvolve_sigma_vox").size() != 1 &&
        p.numbers("deconvolve_sigma_vox").size() != 3)
      bad(d, p, "deconvolve_sigma_vox", "expected S or [sx, sy, sz]");
    const auto pc = p.numbers("percentiles");
    if (pc.size() != 2 || !(pc[0] < pc[1])) bad(d, p, "percentiles", "expected [low, high] with low < high");
  }

  void run(const Params& p, SampleContext& ctx) const override {
    PreprocessOptions o;
    if (p.has("crop")) {
      const auto c = p.numbers("crop");
      Box b;
      for (int a = 0; a < 3; ++a) {
        b.min[a] = static_cast<index_t>(c[a]);
        b.size[a] = static_cast<index_t>(c[3 + a]);
      }
      o.crop = b;
    }
    o.bin = static_cast<int>(p.integer("bin"));
    o.rings = p.boolean("rings");
    o.ring_window = static_cast<int>(p.integer("ring_window"));
    o.cupping = p.boolean("cupping");
    o.cupping_degree = static_cast<int>(p.integer("cupping_degree"));
    if (p.has("centre")) {
      const auto c = p.numbers("centre");
      o.centre.centre_x = c[0];
      o.centre.centre_y = c[1];
    }
    o.deconvolve.method = parse_deconvolve_method(p.string("deconvolve"));
    o.deconvolve.iterations = static_cast<int>(p.integer("deconvolve_iterations"));
    if (p.has("deconvolve_sigma_vox")) {
      const auto s = p.numbers("deconvolve_sigma_vox");
      o.deconvolve.psf_sigma_vox =
          s.size() == 1 ? std::array<double, 3>{s[0], s[0], s[0]} : std::array<double, 3>{s[0], s[1], s[2]};
    }
    o.deconvolve.classes = static_cast<int>(p.integer("deconvolve_classes"));
    o.deconvolve.smooth_vox = p.number("deconvolve_smooth");
    o.denoise.method = parse_denoise_method(p.string("denoise"));
    o.denoise.median_radius_vox = static_cast<int>(p.integer("median_radius"));
    o.denoise.bilateral_domain_um = p.number("bilateral_sigma");
    o.denoise.bilateral_range = p.number("bilateral_range");
    o.denoise.diffusion_iterations = static_cast<int>(p.integer("diffusion_iterations"));
    o.denoise.diffusion_conductance = p.number("diffusion_conductance");
    o.denoise.nlmeans_patch_radius = static_cast<int>(p.integer("nlmeans_patch_radius"));
    o.denoise.nlmeans_search_radius = static_cast<int>(p.integer("nlmeans_search_radius"));
    o.denoise.nlmeans_samples = static_cast<int>(p.integer("nlmeans_samples"));
    o.denoise.nlmeans_iterations = static_cast<int>(p.integer("nlmeans_iterations"));
    o.denoise.nlmeans_bandwidth = p.number("nlmeans_bandwidth");
    o.normalise = p.boolean("normalise");
    const auto pc = p.numbers("percentiles");
    o.percentile_low = pc[0] / 100;
    o.percentile_high = pc[1] / 100;
    o.clamp = p.boolean("clamp");
    PreprocessReport rep;
    Volume<float> out = preprocess_grey(to_float(*ctx.grey), o, &rep);
    ctx.details = {{"steps", rep.steps}, {"dims", to_json(out.dims())}, {"spacing_um", to_json(out.spacing_um)}};
    if (o.cupping) ctx.details["cupping_coefficients"] = rep.cupping_coefficients;
    if (o.normalise) ctx.details["normalise_grey"] = {rep.normalise_low, rep.normalise_high};
    if (o.deconvolve.method != DeconvolveMethod::none) ctx.details["deconvolve"] = deconvolve_json(rep);
    ctx.grey = AnyVolume(std::move(out));
    // Labels already present must keep matching the grey they were made from.
    if (ctx.labels && !(ctx.labels->dims() == dims_of(*ctx.grey)))
      throw InputError("preprocess: crop/bin changes the grey volume to " + to_string(dims_of(*ctx.grey)) +
                       " but the sample's labels are " + to_string(ctx.labels->dims()) +
                       "; run preprocess before segment or crop with the sample's roi");
    if (const auto path = ctx.artifact("grey_xy.png")) write_slice_png(*ctx.grey, Plane::xy, -1, path->string());
  }
};

// ---------------------------------------------------------------- segment

class SegmentStage : public Stage {
 public:
  std::string name() const override { return "segment"; }
  std::string summary() const override {
    return "grey -> phase labels: auto (partial-volume mixture, with partial-volume fractions), otsu, multi-otsu, gmm, "
           "kmeans, threshold, hysteresis or a trained forest";
  }
  std::vector<ParamSpec> params() const override {
    return {
        choices(param("method", ParamType::string, "segmentation method", "", "auto"),
                {"auto", "otsu", "multi-otsu", "gmm", "kmeans", "threshold", "hysteresis", "forest"}),
        bounded(
            param("classes", ParamType::integer,
                  "number of classes (default: entries of phases, else 3 for auto and multi-otsu, 2 for the others)"),
            2, 255),
        param("thresholds", ParamType::number_list, "threshold: ascending cuts; hysteresis: [low, high]", "grey"),
        bounded(param("bins", ParamType::integer, "histogram bins", "", "256"), 2, 65536),
        integer_choices(param("connectivity", ParamType::integer, "hysteresis connectivity", "", "6"), {6, 26}),
        param("model", ParamType::string, "forest: model file saved by voxpress segment --model-out"),
        bounded(param("psf_sigma", ParamType::number, "auto: point-spread-function σ (0: estimated from the scan)",
                      "voxels", "0"),
                0, 10),
        param("thin_pores", ParamType::boolean, "auto: label darkest-phase films thinner than the PSF", "",
              bool_default(PartialVolumeOptions{}.thin_pores)),
        param("pore_films", ParamType::boolean,
              "auto, 3 classes: relabel as pore the films along AM|SE faces found by a per-face profile fit "
              "(opt-in; lowers the contact fraction's PSF bias in most cells, not at blur σ 0.7 near 50 MPa)",
              "", bool_default(SegmentOptions{}.pore_films)),
        param("refit_end_members", ParamType::boolean,
              "auto: the end member of the one class other than the darkest with under 200 pure voxels refitted "
              "with the labels by forward-model MAP, and that class's and the darkest's fractions split by the "
              "conserved grey mean (default true; acts at low pressure under a wide PSF; false keeps the fit's)",
              "", bool_default(PartialVolumeOptions{}.refit_end_members)),
        param("sharp_psf_sweep", ParamType::boolean,
              "auto: where the PSF estimate is below 0.85 voxel on every axis, one sweep of forward-model MAP "
              "relabelling last (iterated conditional modes with the scan's PSF, noise σ and end members as the "
              "imaging model; false keeps the rules' labels)",
              "", bool_default(PartialVolumeOptions{}.sharp_psf_sweep)),
        param("low_snr_sweep", ParamType::boolean,
              "auto: where the PSF estimate is at least 0.85 voxel on some axis, one sweep of that MAP relabelling "
              "last at any SNR, its prior neutral beside the brightest class and that class's end member local where "
              "its neighbourhood is darker (named for the SNR 5 scans where it was first measured; false keeps the "
              "rules' labels)",
              "", bool_default(PartialVolumeOptions{}.low_snr_sweep)),
        param("end_members", ParamType::string,
              "auto: reference end members held fixed, K ascending grey values (6000,20000,43000) or the path of "
              "an earlier segment --json output (e.g. the series' low-pressure scan)",
              "grey"),
        param("phases", ParamType::map,
              "class index -> phase name of the config's phase table, e.g. {0: pore, 1: se, 2: am}"),
    };
  }
  // Opt-in options of `auto` that measured studies rejected, folded out of the code on 2026-12-07.
  std::vector<RemovedParam> removed_params() const override {
    return {
        {"rim_profile",
         "measured, it moved the 10 and 250-370 MPa contact away and gains less pore and SE Dice than the "
         "default sharp-PSF sweep: docs/segmentation-studies.md, \"Sandwiched runs read by their profile\""},
        {"infer_end_members",
         "measured, it moved the SE end member the wrong way at 50-125 MPa and the default refit_end_members "
         "replaced it: docs/segmentation-studies.md, \"End members of classes without pure voxels\""},
        {"map_relabel",
         "measured, it raised the contact error at SNR 5 and the default one-sweep relabellings (sharp_psf_sweep, "
         "low_snr_sweep) keep most of its Dice: docs/segmentation-studies.md, \"Forward-model MAP relabelling "
         "of `auto`'s labels\""},
        {"profile_pairing",
         "measured, on the default sweep's labels porosity_pv is nearer the truth in 16 and further in 8 of 40 "
         "cells (96³ seeds 255-257): docs/segmentation-studies.md, \"Pore|AM blends unmixed by their profile\""},
    };
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"volume_fraction_pv", "1", "phase"},
        {"volume_fraction_pv_ci95", "1", "phase"},
        {"porosity_pv", "1", "phase"},
        {"porosity_pv_ci95", "1", "phase"},
    };
  }
  unsigned needs() const override { return kGrey; }
  unsigned provides() const override { return kLabels; }
  // Measured peak 11.1 (bench_pipeline 256³, 3 classes: one reused label-grey slab, near and adjacent
  // phases and the middle class's confident bit in one byte; 12.1 with the confident bits in a byte of
  // their own, as 4 classes still have them; 13.1 with a slab mapped per pass, 17 before the label
  // grey was smoothed by slabs).
  double bytes_per_voxel() const override { return 12.0; }

  static std::map<int, std::string> class_phases(const Params& p) {
    std::map<int, std::string> m;
    const YAML::Node n = p.node("phases");
    if (!n || n.IsNull()) return m;
    for (const auto& kv : n) {
      int k = -1;
      try {
        k = kv.first.as<int>();
      } catch (const YAML::Exception&) {
        p.fail("phases", "key '" + kv.first.as<std::string>() + "' is not a class index (0, 1, ...)");
      }
      if (k < 0 || k > 254) p.fail("phases", "class index " + std::to_string(k) + " outside 0..254");
      m[k] = kv.second.as<std::string>();
    }
    return m;
  }

  // K: given, else the phase map's highest class + 1, else the method's default (3 for auto and
  // multi-otsu: pore, electrolyte, active material). The commands and vp.segment default the same.
  static int classes(const Params& p) {
    if (p.has("classes")) return static_cast<int>(p.integer("classes"));
    const auto m = class_phases(p);
    return m.empty() ? default_class_count(parse_segment_method(p.string("method"))) : m.rbegin()->first + 1;
  }

  void preflight(const Params& p, const PreflightContext& pf, Diagnostics& d) const override {
    const std::string method = p.string("method");
    if (p.has("end_members")) {
      if (method != "auto")
        bad(d, p, "end_members",
            "end members are for method auto (held fixed in its partial-volume fit); method is " + method);
      else try {
          (void)reference_end_members(p);
        } catch (const InputError& e) {
          // reference_end_members() names the position already; keep only its message after the key path.
          const std::string what = e.what(), tag = p.key_path("end_members") + ": ";
          const auto at = what.find(tag);
          bad(d, p, "end_members", at == std::string::npos ? what : what.substr(at + tag.size()));
        }
    }
    // On by default, where it applies: only a refit asked for where it cannot act is an error.
    if (p.has("refit_end_members") && p.boolean("refit_end_members")) {
      if (method != "auto")
        bad(d, p, "refit_end_members", "refitting end members is for method auto; method is " + method);
      else if (p.has("end_members"))
        bad(d, p, "refit_end_members",
            "reference end_members are held fixed, so none would be refitted: give one of the two");
    }
    // The film fit reads faces between the auto fit's SE and AM classes, so it needs that fit's
    // three classes (pore, electrolyte, active): elsewhere it would be silently skipped.
    if (p.boolean("pore_films")) {
      if (method != "auto") bad(d, p, "pore_films", "pore films are fitted for method auto; method is " + method);
      else if (classes(p) != 3)
        bad(d, p, "pore_films",
            "pore films are fitted between the electrolyte and active classes of a 3-class segmentation; classes "
            "is " +
                std::to_string(classes(p)));
    }
    if (method == "threshold" && !p.has("thresholds")) bad(d, p, "thresholds", "method threshold needs thresholds");
    if (method == "hysteresis" && (!p.has("thresholds") || p.numbers("thresholds").size() != 2))
      bad(d, p, "thresholds", "method hysteresis needs [low, high]");
    if (method == "forest") {
      if (!p.has("model")) bad(d, p, "model", "method forest needs a model file");
      else if (!fs::exists(p.path("model")))
        bad(d, p, "model", "model file '" + p.path("model").string() + "' not found");
    }
    try {
      const auto m = class_phases(p);
      for (int k = 0; k < classes(p) && !m.empty(); ++k)
        if (!m.count(k)) bad(d, p, "phases", "class " + std::to_string(k) + " has no phase");
      for (const auto& [k, name] : m) {
        if (!pf.phases.empty() && !pf.phases.by_name(name))
          bad(d, p, "phases", "phase '" + name + "' is not in the config's phase table");
        if (k >= classes(p))
          bad(d, p, "phases", "class " + std::to_string(k) + " >= classes " + std::to_string(p.integer("classes")));
      }
    } catch (const InputError& e) {
      bad(d, p, "phases", e.what());
    }
  }

  // end_members: K ascending grey values ("6000,20000,43000"), exact as given, or the path of a
  // `segment --json` output: its classes[].mean, with fit.end_member_uncertainty when it has one
  // (an auto run's; 0 otherwise). InputError at the key for a wrong count, values not ascending,
  // or a file that is not such an output.
  static std::optional<ReferenceEndMembers> reference_end_members(const Params& p) {
    if (!p.has("end_members")) return std::nullopt;
    const std::string spec = p.string("end_members");
    const int k = classes(p);
    const std::string expected = "expected " + std::to_string(k) +
                                 " ascending grey values (one per class) or the path of a voxpress segment --json "
                                 "output";
    ReferenceEndMembers ref;
    ref.source = spec;
    bool numbers = !spec.empty();
    {
      std::stringstream list(spec);
      for (std::string item; std::getline(list, item, ',');) {
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        const bool number = end != item.c_str() && std::string(end).find_first_not_of(" \t") == std::string::npos;
        numbers = numbers && number && std::isfinite(v);
        ref.means.push_back(v);
      }
    }
    if (numbers) {
      ref.uncertainty.assign(ref.means.size(), 0.0);
    } else {
      ref.means.clear();
      const fs::path file = p.path("end_members");  // a config's relative path: from the config's folder
      if (!fs::is_regular_file(file))
        p.fail("end_members",
               "'" + spec + "' is no list of numbers and no file (looked for " + file.string() + "); " + expected);
      nlohmann::json j;
      try {
        std::ifstream in(file);
        j = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception&) {
        p.fail("end_members", "file '" + spec + "' is not JSON; " + expected);
      }
      if (!j.is_object() || !j.contains("classes") || !j["classes"].is_array())
        p.fail("end_members", "file '" + spec + "' has no classes list; " + expected);
      for (const auto& c : j["classes"]) {
        if (!c.is_object() || !c.contains("mean") || !c["mean"].is_number())
          p.fail("end_members", "file '" + spec + "': every entry of classes needs a numeric mean; " + expected);
        ref.means.push_back(c["mean"].get<double>());
      }
      const nlohmann::json* u = j.contains("fit") && j["fit"].is_object() && j["fit"].contains("end_member_uncertainty")
                                    ? &j["fit"]["end_member_uncertainty"]
                                    : nullptr;
      if (u && u->is_array() && u->size() == ref.means.size())
        for (const auto& v : *u) ref.uncertainty.push_back(v.is_number() ? v.get<double>() : 0.0);
      else ref.uncertainty.assign(ref.means.size(), 0.0);
    }
    if (static_cast<int>(ref.means.size()) != k)
      p.fail("end_members", "'" + spec + "' gives " + std::to_string(ref.means.size()) + " end members for " +
                                std::to_string(k) + " classes (classes / --classes); " + expected);
    for (int c = 0; c + 1 < k; ++c)
      if (!(ref.means[c + 1] > ref.means[c]))
        p.fail("end_members", "'" + spec + "': end member " + std::to_string(c + 1) + " (" +
                                  format_number(ref.means[c + 1]) + ") is not above end member " + std::to_string(c) +
                                  " (" + format_number(ref.means[c]) + "); " + expected);
    return ref;
  }

  // auto: partial-volume fractions per phase as metric rows (the segment stage is the one that
  // has both the grey values and the fitted end members), the fit in the details.
  static void add_partial_volume(const SegmentResult& r, const std::vector<int>& label_of, const PhaseTable& table,
                                 SampleContext& ctx) {
    const PartialVolumeResult& pv = *r.partial_volume;
    const PartialVolumeMixture& m = r.auto_fit->mixture;
    nlohmann::json pure = nlohmann::json::array(), interfaces = nlohmann::json::array();
    for (int c = 0; c < r.classes; ++c) {
      const Phase* phase = table.by_label(label_of[c]);
      const std::string name = phase ? phase->name : "phase" + std::to_string(label_of[c]);
      ctx.add("volume_fraction_pv", name, "", pv.fraction_pv[c], "1");
      ctx.add("volume_fraction_pv_ci95", name, "", pv.fraction_pv_ci95[c], "1");
      if (phase && phase->role == Role::pore) {
        ctx.add("porosity_pv", name, "", pv.fraction_pv[c], "1");
        ctx.add("porosity_pv_ci95", name, "", pv.fraction_pv_ci95[c], "1");
      }
      pure.push_back({{"class", c},
                      {"phase", name},
                      {"end_member", pv.means[c]},
                      {"end_member_uncertainty", pv.mean_uncertainty[c]},
                      {"sigma", m.sigmas[c]},
                      {"pure_weight", m.weights[c]},
                      {"pure_voxels", pv.pure_voxels[c]}});
    }
    for (const auto& q : m.interfaces) interfaces.push_back({{"classes", {q.a, q.b}}, {"weight", q.weight}});
    // A histogram the model does not describe is said where a batch user reads the run (the progress
    // lines), not only in the details: its fractions are estimates with the misfit in their interval.
    if (r.auto_fit->poor_fit())
      for (const std::string& w : r.auto_fit->warnings) ctx.report("warning: " + w);
    nlohmann::json& partial_volume = ctx.details["partial_volume"] = partial_volume_counters_json(r);
    partial_volume.update({{"classes", pure},
                           {"interfaces", interfaces},
                           {"psf_sigma_vox", r.psf_sigma_vox},
                           {"psf_estimated", r.psf.has_value()},
                           {"end_members_source", r.auto_fit->end_members_source},
                           {"warnings", r.auto_fit->warnings}});
    if (r.psf) {
      // The scan's PSF estimate, which `segment --json` prints as psf_sigma_vox: the second
      // estimate, between the partial-volume end members (the labels used the first).
      nlohmann::json sigma, ci95;
      for (int a = 0; a < 3; ++a)
        sigma.push_back(json_number(r.psf->sigma_vox[a])), ci95.push_back(json_number(r.psf->ci95_vox[a]));
      partial_volume["psf_estimate"] = {
          {"sigma_vox", sigma}, {"ci95_vox", ci95}, {"status", r.psf->status}, {"end_members", psf_end_members(r)}};
    }
    for (const auto& w : r.auto_fit->warnings) ctx.report("segment: warning: " + w);
  }

  void run(const Params& p, SampleContext& ctx) const override {
    const Volume<float> grey = to_float(*ctx.grey);
    SegmentOptions o = segment_options(p);
    std::optional<ForestModel> model;
    if (o.method == SegmentMethod::forest) {
      model = ForestModel::load(p.path("model").string());
      o.model = &*model;
    }
    SegmentResult r = segment_grey(grey, o);
    const auto names = class_phases(p);
    // Class index -> label of the config's phase table (identity when no phases are mapped).
    const PhaseTable config = ctx.config_phases ? *ctx.config_phases : PhaseTable();
    std::vector<int> label_of(256);
    for (int c = 0; c < 256; ++c) label_of[c] = c;
    nlohmann::json mapping = nlohmann::json::object();
    for (const auto& [c, name] : names) {
      if (config.empty()) {
        // No config table: labels keep the class index, named as given.
        mapping[std::to_string(c)] = {{"phase", name}, {"label", c}};
        continue;
      }
      label_of[c] = resolve_phase(p, "phases", config, name).label;
      mapping[std::to_string(c)] = {{"phase", name}, {"label", label_of[c]}};
    }
    // Without a phase map the class index is the label: it must name a phase of the config.
    if (names.empty() && !config.empty())
      for (int c = 0; c < r.classes; ++c)
        if (!config.by_label(c))
          p.fail("phases", "class " + std::to_string(c) + " of " + std::to_string(r.classes) +
                               " is no label of the config's phase table; map the classes to phases, e.g. phases: "
                               "{0: pore, 1: se, 2: am}");
    if (!names.empty())
      for (int c = 0; c < r.classes; ++c)
        if (!names.count(c))
          p.fail("phases",
                 "class " + std::to_string(c) + " has no phase; map every class 0.." + std::to_string(r.classes - 1));
    Volume<std::uint8_t> labels = r.labels;
    for (auto& v : labels.storage()) v = static_cast<std::uint8_t>(label_of[v]);
    PhaseTable table;
    if (!config.empty()) {
      table = config;
    } else if (!names.empty()) {
      std::vector<Phase> ph;
      for (const auto& [c, name] : names) ph.push_back({name, c, parse_role(name).value_or(Role::other)});
      table = PhaseTable(ph);
    } else {
      std::vector<int> present;
      for (int c = 0; c < r.classes; ++c) present.push_back(c);
      table = PhaseTable::unnamed(present);
    }
    const std::vector<double> means = label_means(grey, r.labels, r.classes);
    std::vector<double> fractions(r.classes, 0.0);
    for (auto v : r.labels.storage()) fractions[v] += 1;  // exact counts, divided once
    for (double& f : fractions) f /= static_cast<double>(r.labels.size());
    ctx.details = {{"method", to_string(o.method)}, {"classes", r.classes},
                   {"thresholds", r.thresholds},    {"class_mean_grey", nlohmann::json::array()},
                   {"class_fraction", fractions},   {"class_to_phase", mapping}};
    for (double m : means) ctx.details["class_mean_grey"].push_back(json_number(m));
    if (r.mixture)
      ctx.details["mixture"] = {
          {"weights", r.mixture->weights}, {"means", r.mixture->means}, {"sigmas", r.mixture->sigmas}};
    if (model)
      ctx.details["model"] = {{"path", p.path("model").string()}, {"training_accuracy", model->training_accuracy()}};
    if (r.partial_volume) add_partial_volume(r, label_of, table, ctx);
    if (r.pore_films) ctx.details["pore_films"] = pore_films_json(*r.pore_films);
    ctx.labels = LabelVolume(std::move(labels), table);
    if (const auto hist = ctx.artifact("histogram.png"))
      write_bytes_atomically(*hist, histogram_png(r.histogram, r.thresholds, r.mixture ? &*r.mixture : nullptr,
                                                  ctx.sample.name + ": " + to_string(o.method)));
    write_overlays(ctx, "labels", static_cast<const Volume<std::uint8_t>&>(*ctx.labels), true);
  }
};

// ---------------------------------------------------------------- cleanup

class CleanupStage : public Stage {
 public:
  std::string name() const override { return "cleanup"; }
  std::string summary() const override {
    return "labels -> labels: opening/closing (µm radii), small islands per phase, enclosed holes";
  }
  std::vector<ParamSpec> params() const override {
    return {
        param("open", ParamType::map, "phase -> opening radius, e.g. {se: 0.5}", "µm"),
        param("close", ParamType::map, "phase -> closing radius", "µm"),
        param("min_island", ParamType::map, "phase -> minimum island volume, e.g. {pore: 2.0}", "µm³"),
        param("min_island_voxels", ParamType::map, "phase -> minimum island size", "voxels"),
        param("fill_holes", ParamType::string_list, "phases whose enclosed holes are filled"),
        integer_choices(param("connectivity", ParamType::integer, "island connectivity", "", "26"), {6, 26}),
    };
  }
  unsigned needs() const override { return kLabels; }
  unsigned provides() const override { return kLabels; }
  double bytes_per_voxel() const override { return 9.0; }  // measured peak (bench_pipeline, 128³ and 256³)

  static std::vector<std::pair<std::string, double>> entries(const Params& p, const std::string& key) {
    std::vector<std::pair<std::string, double>> out;
    const YAML::Node n = p.node(key);
    if (!n || n.IsNull()) return out;
    if (!n.IsMap()) p.fail(key, "expected a map phase -> number");
    for (const auto& kv : n) {
      double v = 0;
      try {
        v = kv.second.as<double>();
      } catch (const YAML::Exception&) {
        p.fail(key, "value of '" + kv.first.as<std::string>() + "' is not a number");
      }
      if (!(v >= 0)) p.fail(key, "value of '" + kv.first.as<std::string>() + "' must be >= 0");
      out.emplace_back(kv.first.as<std::string>(), v);
    }
    return out;
  }

  void preflight(const Params& p, const PreflightContext& pf, Diagnostics& d) const override {
    for (const char* key : {"open", "close", "min_island", "min_island_voxels"}) {
      std::vector<std::pair<std::string, double>> given;
      try {
        given = entries(p, key);
      } catch (const InputError& e) {
        // entries() names the position already; keep only its message after the key path.
        const std::string what = e.what(), tag = p.key_path(key) + ": ";
        const auto at = what.find(tag);
        bad(d, p, key, at == std::string::npos ? what : what.substr(at + tag.size()));
      }
      for (const auto& [name, v] : given)
        if (!pf.phases.empty() && !pf.phases.by_name(name))
          bad(d, p, key, "phase '" + name + "' is not in the config's phase table");
    }
    if (p.has("fill_holes"))
      for (const auto& name : p.strings("fill_holes"))
        if (!pf.phases.empty() && !pf.phases.by_name(name))
          bad(d, p, "fill_holes", "phase '" + name + "' is not in the config's phase table");
  }

  void run(const Params& p, SampleContext& ctx) const override {
    LabelVolume& labels = *ctx.labels;
    const CleanupReport rep = cleanup_labels(labels, cleanup_options(p, labels.phases, labels.spacing_um));
    ctx.details = {{"voxels_opened", rep.voxels_opened},
                   {"voxels_closed", rep.voxels_closed},
                   {"islands_removed", rep.islands_removed},
                   {"voxels_filled", rep.voxels_filled}};
    write_overlays(ctx, "labels", static_cast<const Volume<std::uint8_t>&>(labels), true);
  }
};

// ---------------------------------------------------------------- particles

class ParticlesStage : public Stage {
 public:
  std::string name() const override { return "particles"; }
  std::string summary() const override {
    return "labels -> particle ids: distance map, h-maxima markers, watershed; particles.csv";
  }
  std::vector<ParamSpec> params() const override {
    return {
        param("phase", ParamType::string, "phase to separate", "", "am"),
        above(param("h", ParamType::number, "h-maxima marker height of the distance map", "µm", "1.0"), 0),
        bounded(param("min_volume", ParamType::number, "drop particles smaller than this", "µm³", "0"), 0),
        integer_choices(param("connectivity", ParamType::integer, "6 or 26", "", "26"), {6, 26}),
    };
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"particles_separated", "1", "phase"},
    };
  }
  unsigned needs() const override { return kLabels; }
  unsigned provides() const override { return kParticles; }
  double bytes_per_voxel() const override { return 13.0; }  // measured: distance map, h-maxima, ids (bench_pipeline)

  void preflight(const Params& p, const PreflightContext& pf, Diagnostics& d) const override {
    if (!pf.phases.empty()) {
      try {
        pf.phases.resolve(p.string("phase"));
      } catch (const InputError& e) {
        bad(d, p, "phase", e.what());
      }
    }
  }

  void run(const Params& p, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    const Phase& phase = resolve_phase(p, "phase", table_of(ctx), p.string("phase"));
    const ParticleOptions o = particle_options(p);
    Volume<std::uint32_t> ids = separate_particles(labels, static_cast<std::uint8_t>(phase.label), o);
    const std::vector<Particle> table = particle_table(ids);
    ctx.write_artifact("particles.csv", particle_table_csv(table));
    // Only how many ids were produced: particle_count and the size distribution (border
    // particles excluded) are the particle_sizes stage's metrics.
    ctx.add("particles_separated", phase.name, "", static_cast<double>(table.size()), "1");
    ctx.details = {{"phase", phase.name}, {"h_um", o.h_um}, {"particles", table.size()}, {"table", "particles.csv"}};
    ctx.particles = std::move(ids);
    write_overlays(ctx, "particles", *ctx.particles, false);
  }
};

}  // namespace

nlohmann::json partial_volume_counters_json(const SegmentResult& r) {
  const PartialVolumeResult& pv = *r.partial_volume;
  nlohmann::json evidence = nlohmann::json::array();
  for (const auto& e : r.auto_fit->evidence)
    evidence.push_back({{"classes", e.classes},
                        {"bic", e.bic},
                        {"min_separation_sigma", json_number(e.min_separation)},
                        {"min_separation_resolving", json_number(e.min_separation_noise)}});
  // How sure the fit is (mixture_model.h, kMaxFitKs) and how the noise σ was read (ScanNoise).
  const ScanNoise& sn = r.auto_fit->scan_noise;
  return {{"fit_ks", r.auto_fit->mixture.ks},
          {"fit_status", r.auto_fit->fit_status},
          {"fit_ks_bound", kMaxFitKs},
          {"bic_per_k", evidence},
          {"noise_sigma", r.auto_fit->noise_sigma},
          {"noise_white_sigma", sn.white},
          {"noise_lag2_ratio", sn.lag_ratio},
          {"noise_peak_sigma", sn.peak_sigma},
          {"noise_correlated", sn.correlated},
          {"separation_resolving", r.auto_fit->resolving_separations},
          {"pairing_ambiguity", pv.pairing_ambiguity},
          {"mixed_voxels", pv.mixed_voxels},
          {"thin_pore_voxels", pv.thin_pore_voxels},
          {"rim_voxels_avoided", pv.rim_voxels_avoided},
          {"map_flips", pv.map_flips},
          {"scan_snr", json_number(pv.scan_snr)}};
}

SegmentOptions segment_options(const Params& p) {
  SegmentOptions o;
  o.method = parse_segment_method(p.string("method"));
  o.classes = SegmentStage::classes(p);
  if (p.has("thresholds")) o.thresholds = p.numbers("thresholds");
  o.bins = static_cast<int>(p.integer("bins"));
  o.connectivity = static_cast<int>(p.integer("connectivity"));
  o.partial_volume.psf_sigma_vox.fill(p.number("psf_sigma"));
  o.partial_volume.thin_pores = p.boolean("thin_pores");
  o.pore_films = p.boolean("pore_films");
  o.partial_volume.sharp_psf_sweep = p.boolean("sharp_psf_sweep");
  o.partial_volume.low_snr_sweep = p.boolean("low_snr_sweep");
  o.partial_volume.refit_end_members = p.boolean("refit_end_members");
  o.end_members = SegmentStage::reference_end_members(p);
  return o;
}

CleanupOptions cleanup_options(const Params& p, const PhaseTable& table, const Vec3& spacing_um) {
  auto label = [&](const std::string& key, const std::string& name) {
    return static_cast<std::uint8_t>(resolve_phase(p, key, table, name).label);
  };
  CleanupOptions o;
  for (const auto& [n, r] : CleanupStage::entries(p, "open")) o.open_um.emplace_back(label("open", n), r);
  for (const auto& [n, r] : CleanupStage::entries(p, "close")) o.close_um.emplace_back(label("close", n), r);
  for (const auto& [n, v] : CleanupStage::entries(p, "min_island"))
    o.min_island_um3.emplace_back(label("min_island", n), v);
  const Vec3& s = spacing_um;
  for (const auto& [n, v] : CleanupStage::entries(p, "min_island_voxels"))
    o.min_island_um3.emplace_back(label("min_island_voxels", n), v * s[0] * s[1] * s[2]);
  if (p.has("fill_holes"))
    for (const auto& n : p.strings("fill_holes")) o.fill_holes.push_back(label("fill_holes", n));
  o.connectivity = static_cast<int>(p.integer("connectivity"));
  return o;
}

ParticleOptions particle_options(const Params& p) {
  ParticleOptions o;
  o.h_um = p.number("h");
  o.min_volume_um3 = p.number("min_volume");
  o.connectivity = static_cast<int>(p.integer("connectivity"));
  return o;
}

void register_segment(Registry& registry) {
  registry.add(make_segment_command());
  registry.add(std::make_unique<PreprocessStage>());
  registry.add(std::make_unique<SegmentStage>());
  registry.add(std::make_unique<CleanupStage>());
  registry.add(std::make_unique<ParticlesStage>());
}

}  // namespace vp
