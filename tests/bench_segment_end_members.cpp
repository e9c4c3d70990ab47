// End members of classes without pure voxels (filters/segment/end_members.h): per phantom cell,
// the histogram fit's end members and the inferred ones against the true grey levels, and
// porosity_pv with and without the inference, in-process through segment_grey (method auto,
// 3 classes). Prints a markdown table (docs/segmentation.md, "End members of classes without
// pure voxels"), then Heckel k per seed and imaging (least squares of −ln porosity_pv on P over the
// pressures that segmented) with and without.
// Usage: bench_segment_end_members [--size N] [--seeds N] [--snr S,...] [--blur B,...] [--pressures P,...]
//   default: 64³, seed 1, SNR 8, blur 1.5, pressures 10/250 MPa.
// Timings are not asserted; this is a measurement, not a test.
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "filters/segment/segmenter.h"
#include "phantoms/phantom.h"

using namespace vp;

namespace {

std::vector<double> numbers(const std::string& list) {
  std::vector<double> v;
  std::stringstream s(list);
  for (std::string item; std::getline(s, item, ',');) v.push_back(std::stod(item));
  return v;
}

// Least-squares slope of y on x.
double slope(const std::vector<double>& x, const std::vector<double>& y) {
  const auto n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

struct Series {
  std::vector<double> pressure, fitted, inferred;  // −ln porosity_pv
};

}  // namespace

int main(int argc, char** argv) {
  index_t size = 64;
  int seeds = 1;
  std::vector<double> snrs{8}, blurs{1.5}, pressures{10, 250};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr,
                   "usage: bench_segment_end_members [--size N] [--seeds N] [--snr S,...] [--blur B,...] "
                   "[--pressures P,...]\n");
      return 2;
    }
    if (a == "--size") size = std::stoll(argv[++i]);
    else if (a == "--seeds") seeds = std::stoi(argv[++i]);
    else if (a == "--snr") snrs = numbers(argv[++i]);
    else if (a == "--blur") blurs = numbers(argv[++i]);
    else if (a == "--pressures") pressures = numbers(argv[++i]);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::printf(
      "| seed | SNR | σ | P MPa | pure voxels pore/SE/AM | fit end members | inferred | truth | porosity | "
      "porosity_pv − truth: fit → inferred | ci95: fit → inferred | segment s (inferred) |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::map<std::array<double, 3>, Series> heckel;  // (SNR, σ, seed)
  for (double snr : snrs)
    for (double blur : blurs)
      for (double p : pressures)
        for (int seed = 1; seed <= seeds; ++seed) {
          phantom::CompositeSpec spec;
          spec.dims = {size, size, size};
          spec.seed = static_cast<std::uint64_t>(seed);
          const phantom::Phantom ph = phantom::generate_composite(spec, p);
          phantom::ImagingSpec im;
          im.seed = spec.seed;
          im.snr = snr;
          im.blur_sigma_vox = {blur, blur, blur};
          const Volume<std::uint16_t> g16 = phantom::ct_image(ph, im);
          Volume<float> grey = g16.like<float>(g16.dims());
          for (index_t i = 0; i < grey.size(); ++i) grey[i] = g16[i];
          const double truth = ph.truth.volume_fraction.at("pore");
          SegmentOptions o;
          o.classes = 3;
          try {
            o.partial_volume.infer_end_members = false;
            const SegmentResult off = segment_grey(grey, o);
            o.partial_volume.infer_end_members = true;
            const auto t0 = std::chrono::steady_clock::now();
            const SegmentResult on = segment_grey(grey, o);
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const PartialVolumeResult &a = *off.partial_volume, &b = *on.partial_volume;
            std::printf(
                "| %d | %g | %g | %g | %lld/%lld/%lld | %.0f/%.0f/%.0f | %.0f/%.0f/%.0f | %.0f/%.0f/%.0f | "
                "%.4f | %+.4f → %+.4f | %.4f → %.4f | %.2f |\n",
                seed, snr, blur, p, static_cast<long long>(a.pure_voxels[0]), static_cast<long long>(a.pure_voxels[1]),
                static_cast<long long>(a.pure_voxels[2]), a.means[0], a.means[1], a.means[2], b.means[0], b.means[1],
                b.means[2], im.grey_level("pore"), im.grey_level("se"), im.grey_level("am"), truth,
                a.fraction_pv[0] - truth, b.fraction_pv[0] - truth, a.fraction_pv_ci95[0], b.fraction_pv_ci95[0], s);
            Series& h = heckel[{snr, blur, static_cast<double>(seed)}];
            h.pressure.push_back(p);
            h.fitted.push_back(-std::log(a.fraction_pv[0]));
            h.inferred.push_back(-std::log(b.fraction_pv[0]));
          } catch (const InputError&) {
            std::printf("| %d | %g | %g | %g | refused | | | | | | | |\n", seed, snr, blur, p);
          }
          std::fflush(stdout);
        }
  std::printf(
      "\n| SNR | σ | seed | pressures | Heckel k, MPa⁻¹: fit → inferred | error vs generator %g |\n"
      "|---|---|---|---|---|---|\n",
      phantom::CompactionSpec{}.heckel_k);
  for (const auto& [key, h] : heckel) {
    if (h.pressure.size() < 3) continue;
    const double k0 = slope(h.pressure, h.fitted), k1 = slope(h.pressure, h.inferred);
    const double g = phantom::CompactionSpec{}.heckel_k;
    std::printf("| %g | %g | %g | %zu | %.5f → %.5f | %+.1f %% → %+.1f %% |\n", key[0], key[1], key[2],
                h.pressure.size(), k0, k1, 100 * (k0 / g - 1), 100 * (k1 / g - 1));
  }
  return 0;
}
