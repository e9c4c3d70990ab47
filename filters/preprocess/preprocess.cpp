#include "filters/preprocess/preprocess.h"

#include "core/error.h"
#include "filters/preprocess/intensity.h"

namespace vp {

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
    rep.steps.push_back("crop");
  } else {
    v = grey;
  }
  if (o.bin != 1) {
    if (o.bin != 2 && o.bin != 4) throw InputError("bin must be 1, 2 or 4, got " + std::to_string(o.bin));
    v = bin_mean(v, o.bin);
    rep.steps.push_back("bin" + std::to_string(o.bin));
  }
  if (o.rings) {
    v = reduce_rings(v, o.centre, o.ring_window);
    rep.steps.push_back("rings");
  }
  if (o.cupping) {
    CuppingFit fit = correct_cupping(v, o.centre, o.cupping_degree);
    v = std::move(fit.grey);
    rep.cupping_coefficients = fit.coefficients;
    rep.steps.push_back("cupping");
  }
  if (o.denoise.method != DenoiseMethod::none) {
    v = denoise(v, o.denoise);
    rep.steps.push_back("denoise:" + to_string(o.denoise.method));
  }
  if (o.normalise) {
    NormaliseResult n = normalise_percentiles(v, o.percentile_low, o.percentile_high, o.clamp);
    v = std::move(n.grey);
    rep.normalise_low = n.low_value;
    rep.normalise_high = n.high_value;
    rep.steps.push_back("normalise");
  }
  return v;
}

}  // namespace vp
