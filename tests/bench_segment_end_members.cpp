// End members of classes without pure voxels (filters/segment/end_members.h): per phantom cell,
// the histogram fit's end members and the inferred ones against the true grey levels, and
// porosity_pv with and without the inference, in-process through segment_grey (method auto,
// 3 classes). Prints a markdown table (docs/segmentation.md, "End members of classes without
// pure voxels").
// Usage: bench_segment_end_members [--size N] [--seeds N] [--snr S,...] [--blur B,...] [--pressures P,...]
//   default: 64³, seed 1, SNR 8, blur 1.5, pressures 10/250 MPa.
// Timings are not asserted; this is a measurement, not a test.
#include <chrono>
#include <cmath>
#include <cstdio>
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
      "| seed | SNR | σ | P MPa | pure voxels pore/SE/AM | fit end members | inferred | truth | "
      "porosity_pv − truth: fit → inferred | ci95: fit → inferred | inference s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n");
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
                "%+.4f → %+.4f | %.4f → %.4f | %.2f |\n",
                seed, snr, blur, p, static_cast<long long>(a.pure_voxels[0]), static_cast<long long>(a.pure_voxels[1]),
                static_cast<long long>(a.pure_voxels[2]), a.means[0], a.means[1], a.means[2], b.means[0], b.means[1],
                b.means[2], im.grey_level("pore"), im.grey_level("se"), im.grey_level("am"), a.fraction_pv[0] - truth,
                b.fraction_pv[0] - truth, a.fraction_pv_ci95[0], b.fraction_pv_ci95[0], s);
          } catch (const InputError& e) {
            std::printf("| %d | %g | %g | %g | refused | | | | | | |\n", seed, snr, blur, p);
          }
          std::fflush(stdout);
        }
  return 0;
}
