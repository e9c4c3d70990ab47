// A default composite phantom at one pressure imaged by the CT model, for the segmentation
// tests that need a grey scan with exact truth (seed = the phantom's).
#pragma once

#include <cstdint>

#include "core/volume.h"
#include "phantoms/phantom.h"

namespace vp::testing {

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
  const Volume<std::uint16_t> g16 = phantom::ct_image(s.phantom, s.imaging);
  s.grey = g16.like<float>(g16.dims());
  for (index_t i = 0; i < s.grey.size(); ++i) s.grey[i] = g16[i];
  return s;
}

}  // namespace vp::testing
