// Fraction profiles, porosity / relative density, the REV study and particle sizes on volumes
// with exact answers.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "metrics/fraction_profiles.h"
#include "metrics/particle_sizes.h"
#include "metrics/phase_fractions.h"
#include "metrics/rev.h"

using namespace vp;

namespace {
PhaseTable pore_am() { return PhaseTable({{"pore", 0, Role::pore}, {"am", 2, Role::active}}); }
}  // namespace

TEST(FractionProfiles, LinearGradientAlongZ) {
  // Slice z holds pore in its first 10·z voxels (rows y < z), AM elsewhere.
  Volume<std::uint8_t> v({10, 10, 8}, {0.5, 0.5, 2.0});
  for (index_t z = 0; z < 8; ++z)
    for (index_t y = 0; y < 10; ++y)
      for (index_t x = 0; x < 10; ++x) v(x, y, z) = y < z ? 0 : 2;
  v.origin_um = {0, 0, 100};
  LabelVolume lv(std::move(v), pore_am());
  auto profiles = fraction_profiles(lv);
  ASSERT_EQ(profiles.size(), 6u);  // 2 phases × 3 axes
  const auto& pz = profiles[2];
  EXPECT_EQ(pz.phase, "pore");
  EXPECT_EQ(pz.axis, 2);
  for (int z = 0; z < 8; ++z) {
    EXPECT_DOUBLE_EQ(pz.fraction[z], z / 10.0);
    EXPECT_DOUBLE_EQ(pz.position_um[z], 100 + 2.0 * z);
  }
  EXPECT_DOUBLE_EQ(pz.min, 0.0);
  EXPECT_DOUBLE_EQ(pz.max, 0.7);
  // Along x every slice is alike: 28 pore voxels of 80.
  for (double f : profiles[0].fraction) EXPECT_DOUBLE_EQ(f, 28.0 / 80.0);
  EXPECT_NEAR(profiles[0].std, 0.0, 1e-15);
  // Along y: row y is pore in the slices z > y.
  for (int y = 0; y < 10; ++y) EXPECT_DOUBLE_EQ(profiles[1].fraction[y], std::max(0, 7 - y) * 10 / 80.0);
  EXPECT_DOUBLE_EQ(porosity(lv), 28.0 / 80.0);
}

TEST(Rev, UniformStructureHasZeroUncertainty) {
  // Alternating x-columns of pore and AM: every tile of even width has fraction 0.5.
  Volume<std::uint8_t> v({16, 16, 16});
  for (index_t z = 0; z < 16; ++z)
    for (index_t y = 0; y < 16; ++y)
      for (index_t x = 0; x < 16; ++x) v(x, y, z) = x % 2 ? 2 : 0;
  LabelVolume lv(std::move(v), pore_am());
  auto rev = rev_study(lv);
  bool seen = false;
  for (const auto& s : rev)
    if (s.metric == "volume_fraction" && s.phase == "pore") {
      seen = true;
      EXPECT_DOUBLE_EQ(s.value, 0.5);
      EXPECT_DOUBLE_EQ(s.uncertainty, 0.0);
      ASSERT_GE(s.points.size(), 2u);
      EXPECT_EQ(s.points[0].divisions, 2);
      EXPECT_EQ(s.points[0].tiles, 8);
      EXPECT_DOUBLE_EQ(s.points[0].edge_um[0], 8.0);
      // k = 3: tiles 5, 5, 6 wide hold 3/5, 2/5, 3/6 pore: mean 0.5, std > 0.
      EXPECT_NEAR(s.points[1].mean, 0.5, 1e-12);
      EXPECT_GT(s.points[1].std, 0.05);
    }
  EXPECT_TRUE(seen);
}

TEST(Rev, HalvesGiveStandardErrorOfTiles) {
  // x < 8 pore, x >= 8 AM: at k = 2 the tiles are all pore or all AM: std 0.5, uncertainty 0.5/√8.
  Volume<std::uint8_t> v({16, 16, 16});
  for (index_t z = 0; z < 16; ++z)
    for (index_t y = 0; y < 16; ++y)
      for (index_t x = 0; x < 16; ++x) v(x, y, z) = x < 8 ? 0 : 2;
  LabelVolume lv(std::move(v), pore_am());
  for (const auto& s : rev_study(lv))
    if (s.metric == "porosity") {
      EXPECT_DOUBLE_EQ(s.value, 0.5);
      EXPECT_DOUBLE_EQ(s.points[0].std, 0.5);
      EXPECT_DOUBLE_EQ(s.uncertainty, 0.5 / std::sqrt(8.0));
    }
}

TEST(ParticleSizes, EquivalentDiametersAndBorderParticles) {
  Volume<std::uint8_t> v({20, 20, 20}, {0.5, 0.5, 0.5});
  Volume<std::uint32_t> ids({20, 20, 20}, {0.5, 0.5, 0.5});
  auto box = [&](index_t x0, index_t n, std::uint32_t id, std::uint8_t label) {
    for (index_t z = x0; z < x0 + n; ++z)
      for (index_t y = x0; y < x0 + n; ++y)
        for (index_t x = x0; x < x0 + n; ++x) ids(x, y, z) = id, v(x, y, z) = label;
  };
  box(2, 4, 1, 2);   // 64 voxels, inside
  box(8, 6, 2, 2);   // 216 voxels, inside
  box(0, 2, 3, 2);   // touches the border
  box(16, 3, 4, 1);  // an SE particle
  LabelVolume lv(std::move(v),
                 PhaseTable({{"pore", 0, Role::pore}, {"se", 1, Role::electrolyte}, {"am", 2, Role::active}}));
  auto s = particle_sizes(lv, ids);
  ASSERT_EQ(s.particles.size(), 4u);
  EXPECT_EQ(s.by_phase["am"].count, 2);
  EXPECT_EQ(s.by_phase["am"].border_count, 1);
  EXPECT_EQ(s.by_phase["se"].count, 1);
  const double vox = 0.125;
  EXPECT_NEAR(s.particles[0].equivalent_diameter_um, std::cbrt(6 * 64 * vox / M_PI), 1e-12);
  EXPECT_NEAR(s.by_phase["am"].equivalent_diameter_um.max, std::cbrt(6 * 216 * vox / M_PI), 1e-12);
  EXPECT_TRUE(s.particles[2].touches_border);
  EXPECT_EQ(s.particles[3].phase, "se");
  Volume<std::uint32_t> wrong({5, 5, 5});
  EXPECT_THROW(particle_sizes(lv, wrong), InputError);
}
