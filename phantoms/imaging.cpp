// Imaging forward models: labels → uint16 grey values (CT, FIB-SEM).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <tbb/parallel_for.h>

#include "core/error.h"
#include "core/gaussian.h"
#include "phantoms/geometry.h"
#include "phantoms/phantom.h"
#include "phantoms/random.h"

namespace vp::phantom {

double ImagingSpec::grey_level(const std::string& phase) const {
  auto it = attenuation.find(phase);
  if (it == attenuation.end()) throw InputError("imaging: no attenuation given for phase '" + phase + "'");
  return offset + gain * it->second;
}

double ImagingSpec::noise_sigma() const {
  if (!(snr > 0)) throw InputError("imaging: snr: expected > 0");
  return std::fabs(grey_level(snr_phase_a) - grey_level(snr_phase_b)) / snr;
}

nlohmann::json ImagingSpec::to_json() const {
  nlohmann::json j = {{"attenuation", attenuation},
                      {"offset", offset},
                      {"gain", gain},
                      {"blur_sigma_vox", {blur_sigma_vox[0], blur_sigma_vox[1], blur_sigma_vox[2]}},
                      {"noise", noise == NoiseModel::none       ? "none"
                                : noise == NoiseModel::gaussian ? "gaussian"
                                                                : "poisson"},
                      {"snr", snr},
                      {"snr_phases", {snr_phase_a, snr_phase_b}},
                      {"cupping", cupping},
                      {"ring_amplitude", ring_amplitude},
                      {"curtain_amplitude", curtain_amplitude},
                      {"curtain_period_vox", curtain_period_vox},
                      {"seed", seed}};
  // Written only when on, so the truth files of scans without texture keep their bytes.
  if (grain_contrast > 0) j["grain_contrast"] = grain_contrast;
  return j;
}

namespace {

// Poisson variate from counter-based uniforms: inversion for small λ, Hörmann's PTRS otherwise.
double poisson(double lambda, std::uint64_t seed, std::uint64_t index) {
  std::uint64_t draw = 0;
  auto uniform = [&] { return unit_double(hash3(seed, kStreamNoise, index * 64 + (draw++ & 63))); };
  if (lambda <= 0) return 0;
  if (lambda < 10) {
    const double L = std::exp(-lambda);
    double p = uniform();
    int k = 0;
    while (p > L && k < 1000) p *= uniform(), ++k;
    return k;
  }
  const double slam = std::sqrt(lambda), loglam = std::log(lambda);
  const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (int tries = 0; tries < 1000; ++tries) {
    const double U = uniform() - 0.5, V = uniform();
    const double us = 0.5 - std::fabs(U);
    const double k = std::floor((2 * a / us + b) * U + lambda + 0.43);
    if (us >= 0.07 && V <= vr) return k;
    if (k < 0 || (us < 0.013 && V > us)) continue;
    if (std::log(V) + std::log(inv_alpha) - std::log(a / (us * us) + b) <= -lambda + k * loglam - std::lgamma(k + 1))
      return k;
  }
  return std::round(lambda);
}

// Smooth random profile: values at knots every `period`, linearly interpolated, in [-1, 1].
double smooth_profile(std::uint64_t seed, std::uint64_t stream, double t) {
  const double f = std::floor(t);
  const double a =
      2 * unit_double(hash3(seed, stream, static_cast<std::uint64_t>(static_cast<std::int64_t>(f) + (1 << 20)))) - 1;
  const double b =
      2 * unit_double(hash3(seed, stream, static_cast<std::uint64_t>(static_cast<std::int64_t>(f) + 1 + (1 << 20)))) -
      1;
  return a + (b - a) * (t - f);
}

// Fractional attenuation change of every voxel of a polycrystalline AM agglomerate (0 elsewhere):
// the voxel's grain is its nearest seed; each grain draws its factor from the texture stream.
Volume<float> grain_texture(const Phantom& ph, const ImagingSpec& spec) {
  if (ph.particles.empty() || !(ph.particles.dims() == ph.labels.dims()))
    throw InputError("imaging: grain_contrast needs the phantom's particle ids (same size as the labels)");
  struct Agglomerate {
    std::vector<Vec3> seeds;    // voxel coordinates
    std::vector<float> factor;  // fractional change per grain
  };
  std::map<std::uint32_t, Agglomerate> by_id;
  const Vec3 h = ph.labels.spacing_um;
  const Vec3 o = ph.labels.origin_um;
  for (const ParticleTruth& p : ph.truth.particles) {
    if (p.phase != "am" || p.grains < 2) continue;
    Agglomerate a;
    for (int g = 0; g < p.grains; ++g) {
      // Draws of grain g: 64 per grain; 3 per rejection try (uniform in the unit ball), the last
      // one for its attenuation factor.
      const std::uint64_t base = (static_cast<std::uint64_t>(p.id) << 8 | static_cast<std::uint64_t>(g)) * 64;
      auto draw = [&](std::uint64_t k) { return unit_double(hash3(spec.seed, kStreamTexture, base + k)); };
      Vec3 u{0, 0, 0};
      for (int attempt = 0; attempt < 20; ++attempt) {
        const Vec3 c{2 * draw(3 * attempt) - 1, 2 * draw(3 * attempt + 1) - 1, 2 * draw(3 * attempt + 2) - 1};
        if (c[0] * c[0] + c[1] * c[1] + c[2] * c[2] <= 1) {
          u = c;
          break;
        }
      }
      Vec3 seed;
      for (int a3 = 0; a3 < 3; ++a3)
        seed[a3] = (p.centre_um[a3] + 0.8 * p.semi_axes_um[a3] * u[a3] - o[a3]) / h[a3] - 0.5;
      a.seeds.push_back(seed);
      a.factor.push_back(static_cast<float>(spec.grain_contrast * (2 * draw(63) - 1)));
    }
    by_id.emplace(p.id, std::move(a));
  }
  const Dims d = ph.labels.dims();
  Volume<float> delta = ph.labels.like<float>(d);
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + d.x * (y + d.y * z);
        if (ph.labels[i] != kActive) continue;
        const auto it = by_id.find(ph.particles[i]);
        if (it == by_id.end()) continue;
        const Agglomerate& a = it->second;
        std::size_t best = 0;
        double best_d2 = std::numeric_limits<double>::infinity();
        for (std::size_t g = 0; g < a.seeds.size(); ++g) {
          // Physical distances: anisotropic spacing respected.
          const double dx = (x - a.seeds[g][0]) * h[0], dy = (y - a.seeds[g][1]) * h[1],
                       dz = (z - a.seeds[g][2]) * h[2];
          const double d2 = dx * dx + dy * dy + dz * dz;
          if (d2 < best_d2) best_d2 = d2, best = g;
        }
        delta[i] = a.factor[best];
      }
  });
  return delta;
}

Volume<std::uint16_t> render(const LabelVolume& labels, const ImagingSpec& spec, double curtain_amplitude,
                             const Volume<float>* texture = nullptr) {
  // Grey level per label through the phase table.
  std::array<float, 256> level{};
  std::array<bool, 256> known{};
  for (const Phase& p : labels.phases.phases()) {
    level[p.label] = static_cast<float>(spec.grey_level(p.name));
    known[p.label] = true;
  }
  const Dims d = labels.dims();
  Volume<float> g = labels.like<float>(d);
  for (index_t i = 0; i < labels.size(); ++i) {
    const std::uint8_t l = labels[i];
    if (!known[l])
      throw InputError("imaging: label " + std::to_string(l) + " at voxel index " + std::to_string(i) +
                       " is not in the phase table");
    g[i] = level[l];
  }
  if (texture) {
    std::array<float, 256> attenuation_gain{};
    for (const Phase& p : labels.phases.phases())
      attenuation_gain[p.label] = static_cast<float>(spec.gain * spec.attenuation.at(p.name));
    for (index_t i = 0; i < labels.size(); ++i) g[i] += attenuation_gain[labels[i]] * (*texture)[i];
  }
  for (int a = 0; a < 3; ++a) gaussian_blur_axis(g, a, spec.blur_sigma_vox[a], 3.0);

  // Rounding to integers adds 1/12 grey² of variance: the noise drawn leaves room for it, so the
  // uint16 output carries σ_noise (exactly so for σ_noise ≥ 0.5 grey levels).
  const double sigma = spec.noise == NoiseModel::none ? 0 : spec.noise_sigma();
  const double sigma_drawn = std::sqrt(std::max(0.0, sigma * sigma - 1.0 / 12));
  const double mid = 0.5 * (spec.grey_level(spec.snr_phase_a) + spec.grey_level(spec.snr_phase_b));
  const double count_scale = sigma_drawn * sigma_drawn / mid;  // Poisson: var = c·grey, σ_drawn² at `mid`
  const double cx = 0.5 * d.x, cy = 0.5 * d.y;
  const double rmax = 0.5 * std::min(d.x, d.y);
  Volume<std::uint16_t> out = labels.like<std::uint16_t>(d);
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    const double curtain_z = 0.75 + 0.25 * std::sin(2 * kPi * z / (8 * spec.curtain_period_vox) +
                                                    2 * kPi * unit_double(hash3(spec.seed, kStreamCurtains, 0)));
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + d.x * (y + d.y * z);
        double v = g[i];
        const double r = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
        if (spec.cupping > 0) v *= 1 - spec.cupping * std::max(0.0, 1 - (r / rmax) * (r / rmax));
        if (spec.ring_amplitude > 0) {
          const auto ring = static_cast<std::uint64_t>(std::floor(r));
          v += spec.ring_amplitude * spec.gain * (2 * unit_double(hash3(spec.seed, kStreamRings, ring)) - 1);
        }
        if (curtain_amplitude > 0)
          v += curtain_amplitude * spec.gain * curtain_z *
               smooth_profile(spec.seed, kStreamCurtains, (x + 0.5) / spec.curtain_period_vox);
        const auto idx = static_cast<std::uint64_t>(i);
        if (spec.noise == NoiseModel::gaussian) v += sigma_drawn * normal_at(spec.seed, kStreamNoise, idx);
        else if (spec.noise == NoiseModel::poisson && count_scale > 0)
          v = count_scale * poisson(std::max(0.0, v) / count_scale, spec.seed, idx);
        out[i] = static_cast<std::uint16_t>(std::clamp(std::round(v), 0.0, 65535.0));
      }
  });
  return out;
}

}  // namespace

Volume<std::uint16_t> ct_image(const LabelVolume& labels, const ImagingSpec& spec) {
  if (spec.grain_contrast > 0)
    throw InputError("imaging: grain_contrast needs the phantom's particle ids; image the whole phantom");
  return render(labels, spec, spec.curtain_amplitude);
}

Volume<std::uint16_t> fib_sem_image(const LabelVolume& labels, const ImagingSpec& spec) {
  if (spec.grain_contrast > 0)
    throw InputError("imaging: grain_contrast needs the phantom's particle ids; image the whole phantom");
  return render(labels, spec, spec.curtain_amplitude > 0 ? spec.curtain_amplitude : 0.08);
}

Volume<std::uint16_t> ct_image(const Phantom& ph, const ImagingSpec& spec) {
  if (!(spec.grain_contrast > 0)) return render(ph.labels, spec, spec.curtain_amplitude);
  const Volume<float> texture = grain_texture(ph, spec);
  return render(ph.labels, spec, spec.curtain_amplitude, &texture);
}

Volume<std::uint16_t> fib_sem_image(const Phantom& ph, const ImagingSpec& spec) {
  const double curtains = spec.curtain_amplitude > 0 ? spec.curtain_amplitude : 0.08;
  if (!(spec.grain_contrast > 0)) return render(ph.labels, spec, curtains);
  const Volume<float> texture = grain_texture(ph, spec);
  return render(ph.labels, spec, curtains, &texture);
}

}  // namespace vp::phantom
