#include "phantoms/motion.h"

#include <cmath>
#include <map>
#include <numbers>
#include <sstream>

#include <tbb/parallel_for.h>

#include "core/error.h"
#include "phantoms/random.h"

namespace vp::phantom {

namespace {

constexpr double kPi = std::numbers::pi;

Vec3 centre_of(const Dims& d) { return {(d.x - 1) / 2.0, (d.y - 1) / 2.0, (d.z - 1) / 2.0}; }

std::array<std::array<double, 3>, 3> rotation(const Vec3& deg) {
  const Vec3 w{deg[0] * kPi / 180, deg[1] * kPi / 180, deg[2] * kPi / 180};
  const double th = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  std::array<std::array<double, 3>, 3> r{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  if (th == 0) return r;
  const Vec3 k{w[0] / th, w[1] / th, w[2] / th};
  const double c = std::cos(th), s = std::sin(th), C = 1 - c;
  r = {{{c + k[0] * k[0] * C, k[0] * k[1] * C - k[2] * s, k[0] * k[2] * C + k[1] * s},
        {k[1] * k[0] * C + k[2] * s, c + k[1] * k[1] * C, k[1] * k[2] * C - k[0] * s},
        {k[2] * k[0] * C - k[1] * s, k[2] * k[1] * C + k[0] * s, c + k[2] * k[2] * C}}};
  return r;
}

constexpr int kLobes = 6;  // Lanczos-6: passband flat to < 1e-3 where a PSF of σ ≥ 1 voxel leaves signal

double lanczos(double x) {
  if (x == 0) return 1;
  if (std::abs(x) >= kLobes) return 0;
  const double px = kPi * x;
  return kLobes * std::sin(px) * std::sin(px / kLobes) / (px * px);
}

// Lanczos interpolation with clamped borders.
double sample(const Volume<float>& v, const Vec3& p) {
  const Dims& d = v.dims();
  constexpr int taps = 2 * kLobes;
  double w[3][taps];
  index_t base[3];
  for (int a = 0; a < 3; ++a) {
    const double f = std::floor(p[a]);
    base[a] = static_cast<index_t>(f) - (kLobes - 1);
    double sum = 0;
    for (int k = 0; k < taps; ++k) sum += (w[a][k] = lanczos(p[a] - static_cast<double>(base[a] + k)));
    for (int k = 0; k < taps; ++k) w[a][k] /= sum;
  }
  auto clampi = [](index_t i, index_t n) { return std::min(std::max<index_t>(i, 0), n - 1); };
  double out = 0;
  for (int c = 0; c < taps; ++c) {
    const index_t z = clampi(base[2] + c, d.z);
    for (int b = 0; b < taps; ++b) {
      const index_t y = clampi(base[1] + b, d.y);
      double row = 0;
      for (int a = 0; a < taps; ++a) row += w[0][a] * v(clampi(base[0] + a, d.x), y, z);
      out += w[2][c] * w[1][b] * row;
    }
  }
  return out;
}

void add_noise(Volume<float>& v, double sigma, std::uint64_t seed, std::uint64_t stream) {
  if (sigma <= 0) return;
  Rng rng(seed, stream);
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(v[i] + sigma * rng.normal());
}

}  // namespace

MotionKind parse_motion_kind(const std::string& name) {
  if (name == "rigid") return MotionKind::rigid;
  if (name == "affine") return MotionKind::affine;
  if (name == "field") return MotionKind::field;
  throw InputError("motion '" + name + "': expected rigid, affine or field");
}

std::string to_string(MotionKind k) {
  return k == MotionKind::rigid ? "rigid" : k == MotionKind::affine ? "affine" : "field";
}

Vec3 motion_displacement(const MotionSpec& m, const Dims& d, const Vec3& X) {
  const Vec3 c = centre_of(d);
  const Vec3 r{X[0] - c[0], X[1] - c[1], X[2] - c[2]};
  Vec3 u = m.shift_vox;
  if (m.kind == MotionKind::rigid) {
    const auto R = rotation(m.rotation_deg);
    for (int i = 0; i < 3; ++i) u[i] += R[i][0] * r[0] + R[i][1] * r[1] + R[i][2] * r[2] - r[i];
    return u;
  }
  u[2] += m.strain_zz * r[2];
  if (m.kind == MotionKind::field) {
    const double A = m.field_amplitude_vox;
    u[0] += 0.5 * A * std::sin(2 * kPi * X[2] / static_cast<double>(d.z));
    u[2] += A * std::sin(kPi * X[0] / static_cast<double>(d.x)) * std::sin(kPi * X[1] / static_cast<double>(d.y));
  }
  return u;
}

MotionPair motion_pair(const Phantom& phantom, const ImagingSpec& imaging, const MotionSpec& motion) {
  if (imaging.noise == NoiseModel::poisson)
    throw InputError("motion phantom: noise must be gaussian or none (Poisson noise depends on the grey level)");
  ImagingSpec clean = imaging;
  clean.noise = NoiseModel::none;
  const Volume<std::uint16_t> grey = ct_image(phantom, clean);
  MotionPair out;
  out.motion = motion;
  Volume<float> noiseless(grey.dims(), grey.spacing_um);
  for (index_t i = 0; i < grey.size(); ++i) noiseless[i] = grey[i];
  out.reference = noiseless;
  out.deformed = Volume<float>(grey.dims(), grey.spacing_um);
  const Dims d = grey.dims();
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        // Fixed point X = x − u(X): converges for |∇u| < 1 (the fields here have |∇u| ≤ 0.1).
        const Vec3 p{static_cast<double>(x), static_cast<double>(y), static_cast<double>(z)};
        Vec3 X = p;
        for (int it = 0; it < 30; ++it) {
          const Vec3 u = motion_displacement(motion, d, X);
          const Vec3 next{p[0] - u[0], p[1] - u[1], p[2] - u[2]};
          const double change = std::abs(next[0] - X[0]) + std::abs(next[1] - X[1]) + std::abs(next[2] - X[2]);
          X = next;
          if (change < 1e-10) break;
        }
        out.deformed(x, y, z) = static_cast<float>(sample(noiseless, X));
      }
  });
  if (imaging.noise == NoiseModel::gaussian) {
    const double sigma = imaging.noise_sigma();
    add_noise(out.reference, sigma, imaging.seed, kStreamNoise);
    add_noise(out.deformed, sigma, imaging.seed, kStreamNoise + 1000);
  }
  return out;
}

std::vector<ParticleStepMotion> particle_step_motion(const GroundTruth& from, const GroundTruth& to) {
  std::map<std::uint32_t, const ParticleTruth*> later;
  for (const auto& p : to.particles) later[p.id] = &p;
  std::vector<ParticleStepMotion> out;
  for (const auto& p : from.particles) {
    const auto it = later.find(p.id);
    if (it == later.end()) continue;
    ParticleStepMotion m;
    m.id = p.id;
    m.pressure_from_MPa = from.pressure_MPa;
    m.pressure_to_MPa = to.pressure_MPa;
    for (int a = 0; a < 3; ++a) {
      // Voxel centres sit at (i + ½)·spacing in the generator's frame.
      m.centre_from_vox[a] = p.centre_um[a] / from.spacing_um[a] - 0.5;
      m.displacement_vox[a] = (it->second->centre_um[a] - p.centre_um[a]) / from.spacing_um[a];
    }
    out.push_back(m);
  }
  return out;
}

std::string particle_motion_csv(const std::vector<ParticleStepMotion>& rows, bool header) {
  std::ostringstream s;
  s.precision(10);
  if (header) s << "id,pressure_from_MPa,pressure_to_MPa,x_vox,y_vox,z_vox,dx_vox,dy_vox,dz_vox\n";
  for (const auto& r : rows)
    s << r.id << ',' << r.pressure_from_MPa << ',' << r.pressure_to_MPa << ',' << r.centre_from_vox[0] << ','
      << r.centre_from_vox[1] << ',' << r.centre_from_vox[2] << ',' << r.displacement_vox[0] << ','
      << r.displacement_vox[1] << ',' << r.displacement_vox[2] << '\n';
  return s.str();
}

}  // namespace vp::phantom
