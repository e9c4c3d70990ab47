#include "filters/preprocess/preprocess.h"

#include <cmath>

#include "core/error.h"
#include "core/json_util.h"
#include "core/progress.h"
#include "filters/preprocess/intensity.h"

namespace vp {

DeconvolveMethod parse_deconvolve_method(const std::string& name) {
  if (name == "none") return DeconvolveMethod::none;
  if (name == "richardson-lucy") return DeconvolveMethod::richardson_lucy;
  throw InputError("deconvolve '" + name + "': expected none or richardson-lucy");
}

std::string to_string(DeconvolveMethod m) { return m == DeconvolveMethod::none ? "none" : "richardson-lucy"; }

Volume<float> deconvolve(const Volume<float>& grey, const DeconvolveOptions& o, PreprocessReport* report) {
  if (o.method == DeconvolveMethod::none) return grey;
  std::array<double, 3> sigma = o.psf_sigma_vox;
  if (sigma == std::array<double, 3>{0, 0, 0}) {
    const PsfEstimate psf = estimate_psf(grey, pure_phase_levels(grey, o.classes));
    for (int a = 0; a < 3; ++a)
      if (!std::isfinite(psf.sigma_vox[a]))
        throw ComputeError("deconvolve: the PSF could not be estimated from the scan (" + psf.status +
                           "); give its σ (deconvolve_sigma_vox / --deconvolve-sigma)");
    sigma = psf.sigma_vox;
    if (report) report->psf = psf;
  }
  if (o.smooth_vox < 0) throw InputError("deconvolve: smooth σ must be ≥ 0 voxels");
  Volume<float> out = richardson_lucy(grey, sigma, o.iterations);
  if (o.smooth_vox > 0) out = gaussian_blur(out, {o.smooth_vox, o.smooth_vox, o.smooth_vox});
  if (report) report->deconvolve_sigma_vox = sigma;
  return out;
}

nlohmann::json deconvolve_json(const PreprocessReport& r) {
  auto triple = [](const std::array<double, 3>& v) {
    return nlohmann::json::array({json_number(v[0]), json_number(v[1]), json_number(v[2])});
  };
  nlohmann::json j = {{"psf_sigma_vox", triple(r.deconvolve_sigma_vox)}};
  if (r.psf) {
    j["psf_ci95_vox"] = triple(r.psf->ci95_vox);
    j["psf_edges"] = r.psf->edges;
    j["psf_status"] = r.psf->status;
  }
  return j;
}

namespace {
// A finished step: recorded, and a safe place to stop (progress_point's hook, Ctrl-C in Python).
void step_done(PreprocessReport& rep, std::string step) {
  rep.steps.push_back(std::move(step));
  cancellation_point();
}
}  // namespace

Volume<float> preprocess_grey(const Volume<float>& grey, const PreprocessOptions& o, PreprocessReport* report) {
  PreprocessReport local;
  PreprocessReport& rep = report ? *report : local;
  Volume<float> v;
  if (o.crop) {
    try {
      v = grey.crop(*o.crop);
    } catch (const std::out_of_range&) {
      const Box& b = *o.crop;
      throw InputError("crop box min (" + std::to_string(b.min[0]) + "," + std::to_string(b.min[1]) + "," +
                       std::to_string(b.min[2]) + ") size (" + std::to_string(b.size[0]) + "," +
                       std::to_string(b.size[1]) + "," + std::to_string(b.size[2]) + ") leaves the volume " +
                       to_string(grey.dims()));
    }
    step_done(rep, "crop");
  } else {
    v = grey;
  }
  if (o.bin != 1) {
    if (o.bin != 2 && o.bin != 4) throw InputError("bin must be 1, 2 or 4, got " + std::to_string(o.bin));
    v = bin_mean(v, o.bin);
    step_done(rep, "bin" + std::to_string(o.bin));
  }
  if (o.rings) {
    v = reduce_rings(v, o.centre, o.ring_window);
    step_done(rep, "rings");
  }
  if (o.cupping) {
    CuppingFit fit = correct_cupping(v, o.centre, o.cupping_degree);
    v = std::move(fit.grey);
    rep.cupping_coefficients = fit.coefficients;
    step_done(rep, "cupping");
  }
  if (o.deconvolve.method != DeconvolveMethod::none) {
    v = deconvolve(v, o.deconvolve, &rep);
    step_done(rep, "deconvolve:" + to_string(o.deconvolve.method));
  }
  if (o.denoise.method != DenoiseMethod::none) {
    v = denoise(v, o.denoise);
    step_done(rep, "denoise:" + to_string(o.denoise.method));
  }
  if (o.normalise) {
    NormaliseResult n = normalise_percentiles(v, o.percentile_low, o.percentile_high, o.clamp);
    v = std::move(n.grey);
    rep.normalise_low = n.low_value;
    rep.normalise_high = n.high_value;
    step_done(rep, "normalise");
  }
  return v;
}

}  // namespace vp
