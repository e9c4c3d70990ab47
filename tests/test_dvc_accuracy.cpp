// DVC accuracy against phantoms with exactly known motion (phantoms/motion.h).
#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>

#include <gtest/gtest.h>

#include "dvc/dvc.h"
#include "dvc/particles.h"
#include "dvc/registration.h"
#include "dvc/strain.h"
#include "phantoms/motion.h"

namespace vp::dvc {
namespace {

using phantom::MotionKind;
using phantom::MotionSpec;

const phantom::Phantom& composite64() {
  static const phantom::Phantom p = [] {
    phantom::CompositeSpec s;
    s.dims = {64, 64, 64};
    s.seed = 7;
    s.cracks_enabled = false;
    return phantom::generate_composite(s, 50);
  }();
  return p;
}

phantom::ImagingSpec imaging(double snr) {
  phantom::ImagingSpec im;
  im.snr = snr;
  im.grain_contrast = 0.04;
  im.seed = 11;
  return im;
}

struct Stats {
  Vec3 mean{0, 0, 0}, std{0, 0, 0};
  index_t n = 0;
};

// Error statistics of the valid nodes against the exact field (subset_half > 0: against the field
// averaged over the node's subset, what a first-order subset can resolve of a curved field).
Stats node_errors(const NodeGrid& g, const MotionSpec& m, const Dims& d, index_t subset_half = 0) {
  Stats s;
  std::vector<Vec3> e;
  for (const Node& n : g.nodes) {
    if (!n.valid()) continue;
    const Vec3 X{double(n.position[0]), double(n.position[1]), double(n.position[2])};
    Vec3 u{0, 0, 0};
    const double count = std::pow(2.0 * subset_half + 1, 3);
    for (index_t k = -subset_half; k <= subset_half; ++k)
      for (index_t j = -subset_half; j <= subset_half; ++j)
        for (index_t i = -subset_half; i <= subset_half; ++i) {
          const Vec3 v = phantom::motion_displacement(m, d, {X[0] + i, X[1] + j, X[2] + k});
          for (int a = 0; a < 3; ++a) u[a] += v[a] / count;
        }
    e.push_back({n.displacement[0] - u[0], n.displacement[1] - u[1], n.displacement[2] - u[2]});
  }
  s.n = static_cast<index_t>(e.size());
  for (const auto& v : e)
    for (int a = 0; a < 3; ++a) s.mean[a] += v[a] / double(e.size());
  for (const auto& v : e)
    for (int a = 0; a < 3; ++a) s.std[a] += (v[a] - s.mean[a]) * (v[a] - s.mean[a]) / double(e.size() - 1);
  for (double& v : s.std) v = std::sqrt(v);
  return s;
}

NodeGrid run(const phantom::MotionPair& pair, bool affine, Registration* reg_out = nullptr, index_t subset = 16) {
  RegistrationOptions ro;
  ro.affine = affine;
  const Registration reg = register_scans(pair.reference, pair.deformed, ro);
  if (reg_out) *reg_out = reg;
  DvcOptions o;
  o.node_spacing = 8;
  o.subset = subset;
  return correlate_nodes(pair.reference, pair.deformed, reg.warp, o);
}

// Per-node random error is noise-limited: at subset 16 (17³ points) the std is 0.025 voxel at
// SNR 8 and 0.040 at SNR 5 (docs/dvc.md); subset 24 (25³) meets the 0.02 / 0.04.
TEST(DvcAccuracy, RigidShiftPerNodeErrorAtSnr8And5) {
  MotionSpec m;  // shift (0.37, −0.61, 0.83)
  for (double snr : {8.0, 5.0}) {
    const auto pair = phantom::motion_pair(composite64(), imaging(snr), m);
    Registration reg;
    const NodeGrid g = run(pair, false, &reg, 24);
    // The mean over 125 overlapping subsets still carries ≈ std/√10 of noise; the systematic
    // bias is asserted where noise does not mask it (SNR 8; 0.003 voxel without noise).
    const double bias_limit = snr >= 8 ? 0.01 : 0.015;
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(reg.warp.t[a], m.shift_vox[a], 0.01) << "registration axis " << a;
    const Stats s = node_errors(g, m, pair.reference.dims());
    EXPECT_EQ(s.n, index_t(g.nodes.size()));
    const double limit = snr >= 8 ? 0.02 : 0.04;
    for (int a = 0; a < 3; ++a) {
      EXPECT_LE(std::abs(s.mean[a]), bias_limit) << "SNR " << snr << " axis " << a;
      EXPECT_LE(s.std[a], limit) << "SNR " << snr << " axis " << a;
    }
  }
}

TEST(DvcAccuracy, AffineCompressionGlobalStrain) {
  MotionSpec m;
  m.kind = MotionKind::affine;
  m.strain_zz = -0.02;
  const auto pair = phantom::motion_pair(composite64(), imaging(8), m);
  Registration reg;
  const NodeGrid g = run(pair, true, &reg);
  EXPECT_NEAR(reg.warp.f[2][2] - 1, -0.02, 1e-3);
  const GlobalStrain e = fit_affine_strain(g, pair.reference.spacing_um);
  EXPECT_NEAR(e.strain.zz, -0.02, 5e-4);
  EXPECT_NEAR(e.strain.xx, 0, 1e-3);
  EXPECT_NEAR(e.strain.yy, 0, 1e-3);
  EXPECT_NEAR(e.strain.volumetric(), -0.02, 1e-3);
  const StrainHeterogeneity h = strain_heterogeneity(node_strains(g, pair.reference.spacing_um));
  EXPECT_GT(h.nodes, 100);
  EXPECT_NEAR(h.zz_abs_p90, 0.02, 0.01);
}

TEST(DvcAccuracy, SmoothNonAffineField) {
  MotionSpec m;
  m.kind = MotionKind::field;
  m.strain_zz = -0.01;
  m.field_amplitude_vox = 1.0;
  const auto pair = phantom::motion_pair(composite64(), imaging(12), m);
  const NodeGrid g = run(pair, true);
  const Stats s = node_errors(g, m, pair.reference.dims(), 8);
  EXPECT_EQ(s.n, index_t(g.nodes.size()));
  for (int a = 0; a < 3; ++a) {
    EXPECT_LE(std::abs(s.mean[a]), 0.02) << a;
    EXPECT_LE(s.std[a], 0.05) << a;
  }
}

TEST(DvcAccuracy, FeaturelessNodesAreLowTextureWithoutDisplacement) {
  // Uniform grey plus noise: no texture anywhere.
  Volume<float> ref({48, 48, 48}), def({48, 48, 48});
  std::uint64_t state = 12345;
  auto noise = [&] {
    double s = 0;
    for (int i = 0; i < 12; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      s += double(state >> 11) * 0x1.0p-53;
    }
    return s - 6;
  };
  for (index_t i = 0; i < ref.size(); ++i) ref[i] = float(1000 + 20 * noise()), def[i] = float(1000 + 20 * noise());
  DvcOptions o;
  const NodeGrid g = correlate_nodes(ref, def, AffineWarp{}, o);
  ASSERT_GT(g.nodes.size(), 0u);
  for (const Node& n : g.nodes) {
    EXPECT_EQ(n.quality, NodeQuality::low_texture);
    EXPECT_TRUE(std::isnan(n.displacement[0]));
  }
  EXPECT_NEAR(g.noise_sigma, 20, 2);
}

TEST(DvcAccuracy, ParticleTranslationAndRotation) {
  MotionSpec m;
  m.kind = MotionKind::rigid;
  m.rotation_deg = {0, 0, 3};
  m.shift_vox = {0.4, -0.3, 0.6};
  const phantom::Phantom& ph = composite64();
  const auto pair = phantom::motion_pair(ph, imaging(8), m);
  RegistrationOptions ro;
  const Registration reg = register_scans(pair.reference, pair.deformed, ro);
  EXPECT_NEAR(rotation_vector_deg(reg.warp.f)[2], 3, 0.05);
  // Only the AM particles (ids 1..n_am) are bodies that move rigidly with a texture of their own.
  Volume<std::uint32_t> am = ph.particles;
  std::uint32_t n_am = 0;
  for (const auto& p : ph.truth.particles) n_am = std::max(n_am, p.id);
  for (index_t i = 0; i < am.size(); ++i)
    if (am[i] > n_am) am[i] = 0;
  const auto motions = track_particles(pair.reference, pair.deformed, am, reg.warp, ParticleOptions{});
  int checked = 0;
  for (const auto& p : motions) {
    const auto it =
        std::find_if(ph.truth.particles.begin(), ph.truth.particles.end(), [&](const auto& t) { return t.id == p.id; });
    if (it == ph.truth.particles.end() || !it->inside) continue;
    const double r =
        std::cbrt(it->semi_axes_um[0] * it->semi_axes_um[1] * it->semi_axes_um[2]) / ph.truth.spacing_um[0];
    if (r < 6) continue;
    ASSERT_TRUE(p.tracked()) << "particle " << p.id << " " << p.status;
    const Vec3 u = phantom::motion_displacement(m, am.dims(), p.centroid_vox);
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(p.displacement_vox[a], u[a], 0.1) << "particle " << p.id << " axis " << a;
    for (int a = 0; a < 3; ++a)
      EXPECT_NEAR(p.rotation_deg[a], m.rotation_deg[a], 0.5) << "particle " << p.id << " axis " << a;
    EXPECT_FALSE(p.residual_jump);
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

}  // namespace
}  // namespace vp::dvc
