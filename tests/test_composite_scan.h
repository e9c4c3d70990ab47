// A default composite phantom at one pressure imaged by the CT model, for the segmentation
// tests that need a grey scan with exact truth (seed = the phantom's).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "core/volume.h"
#include "filters/segment/histogram.h"
#include "phantoms/phantom.h"

namespace vp::testing {

// The benches' --seeds argument: "N" is seeds 1..N, "A-B" seeds A..B (held-out seeds). A count
// above kMaxSeedCount is refused: "--seeds 198" meant as seed 198 ran seeds 1..198 (three helper
// sessions' slip); seed 198 alone is "198-198".
inline constexpr std::uint64_t kMaxSeedCount = 9;
inline std::vector<std::uint64_t> seed_range(const std::string& range) {
  const std::size_t dash = range.find('-');
  const std::uint64_t first = dash == std::string::npos ? 1 : std::stoull(range.substr(0, dash));
  const std::uint64_t last = std::stoull(dash == std::string::npos ? range : range.substr(dash + 1));
  if (dash == std::string::npos && last > kMaxSeedCount) {
    std::fprintf(stderr,
                 "--seeds %s would run seeds 1..%s: a count above %llu is refused as a likely slip; write %s-%s for "
                 "seed %s alone, or A-B for a range\n",
                 range.c_str(), range.c_str(), static_cast<unsigned long long>(kMaxSeedCount), range.c_str(),
                 range.c_str(), range.c_str());
    std::exit(2);
  }
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t k = first; k <= last; ++k) seeds.push_back(k);
  return seeds;
}

// The benches' comma lists of numbers: "5,8,12".
inline std::vector<double> number_list(const std::string& list) {
  std::vector<double> v;
  std::stringstream s(list);
  for (std::string item; std::getline(s, item, ',');) v.push_back(std::stod(item));
  return v;
}

// A 16-bit scan as the float grey the segmentation reads.
inline Volume<float> grey_as_float(const Volume<std::uint16_t>& g16) {
  Volume<float> g = g16.like<float>(g16.dims());
  for (index_t i = 0; i < g.size(); ++i) g[i] = g16[i];
  return g;
}

// Dice of `label` between two label volumes: 2|A ∩ B| / (|A| + |B|).
inline double dice(const Volume<std::uint8_t>& a, const Volume<std::uint8_t>& b, int label) {
  double both = 0, na = 0, nb = 0;
  for (index_t i = 0; i < a.size(); ++i) {
    const bool x = a[i] == label, y = b[i] == label;
    both += x && y, na += x, nb += y;
  }
  return 2 * both / (na + nb);
}

// Voxels deep inside `label` in the truth (their 5³ box all `label`) that `labels` reads as
// something else: a textured grain's interior lost to a flat forward model.
inline int lost_inside(const Volume<std::uint8_t>& labels, const Volume<std::uint8_t>& truth, int label) {
  const Dims d = truth.dims();
  int lost = 0;
  for (index_t z = 2; z + 2 < d.z; ++z)
    for (index_t y = 2; y + 2 < d.y; ++y)
      for (index_t x = 2; x + 2 < d.x; ++x) {
        if (labels(x, y, z) == label) continue;
        bool inside = true;
        for (index_t dz = -2; dz <= 2 && inside; ++dz)
          for (index_t dy = -2; dy <= 2 && inside; ++dy)
            for (index_t dx = -2; dx <= 2 && inside; ++dx) inside = truth(x + dx, y + dy, z + dz) == label;
        lost += inside;
      }
  return lost;
}

// The blur ceiling's labels (issue 11): midpoint thresholds between the pure grey levels applied
// to the noise-free blurred image of the truth (no noise, cup or grain texture), so that only the
// PSF limits them.
inline Volume<std::uint8_t> blur_ceiling_labels(const LabelVolume& truth, phantom::ImagingSpec im) {
  im.noise = phantom::NoiseModel::none;
  im.cupping = 0;
  im.grain_contrast = 0;
  const double p = im.grey_level("pore"), se = im.grey_level("se"), am = im.grey_level("am");
  return apply_thresholds(grey_as_float(phantom::ct_image(truth, im)), {0.5 * (p + se), 0.5 * (se + am)});
}

struct CompositeScan {
  phantom::Phantom phantom;
  phantom::ImagingSpec imaging;
  Volume<float> grey;
};
// realistic: Poisson noise, the beam-hardening cup and AM grain texture of `phantom --realistic`.
inline CompositeScan composite_scan(std::uint64_t seed, double pressure_MPa, double snr, double blur_vox,
                                    index_t size = 64, bool realistic = false) {
  CompositeScan s;
  phantom::CompositeSpec spec;
  spec.dims = {size, size, size};
  spec.seed = seed;
  s.phantom = phantom::generate_composite(spec, pressure_MPa);
  s.imaging.seed = seed;
  s.imaging.snr = snr;
  s.imaging.blur_sigma_vox = {blur_vox, blur_vox, blur_vox};
  if (realistic) {
    s.imaging.noise = phantom::NoiseModel::poisson;
    s.imaging.cupping = phantom::kRealisticCupping;
    s.imaging.grain_contrast = phantom::kRealisticGrainContrast;
  }
  s.grey = grey_as_float(phantom::ct_image(s.phantom, s.imaging));
  return s;
}

}  // namespace vp::testing
