// Crack detection and measures against phantoms with planted planar cracks of known area,
// aperture and orientation; no false cracks on noisy crack-free phantoms.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "metrics/cracks/detection.h"
#include "metrics/cracks/measure.h"
#include "metrics/cracks/short_circuit.h"
#include "phantoms/phantom.h"

namespace vp {
namespace {

using phantom::kActive;
using phantom::kElectrolyte;
using phantom::kPore;

Vec3 unit(Vec3 v) {
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  return {v[0] / n, v[1] / n, v[2] / n};
}

double angle_deg(const Vec3& a, const Vec3& b) {
  const double c = std::abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]);
  return std::acos(std::min(1.0, c)) * 180 / M_PI;
}

double distance(const Vec3& a, const Vec3& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

CrackDetectionOptions options_for(int host) {
  CrackDetectionOptions o;
  o.host_labels = {host};
  o.void_labels = {kPore};
  return o;
}

CrackMeasureOptions measure_options_for(int host) {
  CrackMeasureOptions o;
  o.host_labels = {host};
  o.void_labels = {kPore};
  return o;
}

// The measured crack nearest to a planted one (phantom centres are at (i + ½)·h; ours at i·h).
const CrackProperties& match(const CrackMeasurements& m, const phantom::CrackTruth& t, const Vec3& h) {
  const Vec3 c{t.centre_um[0] - h[0] / 2, t.centre_um[1] - h[1] / 2, t.centre_um[2] - h[2] / 2};
  const CrackProperties* best = &m.cracks.front();
  for (const auto& p : m.cracks)
    if (distance(p.centroid_um, c) < distance(best->centroid_um, c)) best = &p;
  return *best;
}

// Planted cracks → detected cracks: count exact, area within 10 %, aperture within one voxel,
// normal within 10°.
void expect_recovered(const phantom::Phantom& ph, int host, const std::string& what) {
  const CrackDetection det = detect_cracks(ph.labels, nullptr, options_for(host));
  ASSERT_EQ(det.count, ph.truth.cracks.size()) << what;
  const CrackMeasurements m = measure_cracks(ph.labels, det.ids, measure_options_for(host));
  const Vec3 h = ph.labels.spacing_um;
  const double voxel = std::max({h[0], h[1], h[2]});
  for (const auto& t : ph.truth.cracks) {
    const CrackProperties& c = match(m, t, h);
    EXPECT_NEAR(c.area_um2, t.area_um2, 0.10 * t.area_um2) << what << " crack " << t.id;
    EXPECT_NEAR(c.aperture_mean_um, t.aperture_um, voxel) << what << " crack " << t.id;
    EXPECT_NEAR(c.aperture_max_um, t.aperture_um, voxel) << what << " crack " << t.id;
    EXPECT_LT(angle_deg(c.normal, t.normal), 10.0) << what << " crack " << t.id;
    const Vec3 axis{0, 0, 1};
    EXPECT_NEAR(c.angle_to_pressing_axis_deg, angle_deg(t.normal, axis), 10.0) << what << " crack " << t.id;
  }
}

TEST(CrackAccuracy, ThreeDiscsInElectrolyte) {
  phantom::PlanarCrackSpec s;
  s.dims = {64, 64, 64};
  s.host = "se";
  s.cracks = {{{32, 32, 16}, {0, 0, 1}, 2.0, 13},
              {{34, 34, 46}, unit({0.5, 0, 0.866}), 3.0, 12},
              {{10, 30, 32}, unit({1, 0.3, 0.2}), 1.5, 9}};
  const phantom::Phantom ph = phantom::planar_cracks(s);
  expect_recovered(ph, kElectrolyte, "three discs");
}

TEST(CrackAccuracy, SteepAndObliqueDiscs) {
  phantom::PlanarCrackSpec s;
  s.dims = {64, 64, 64};
  s.host = "se";
  s.cracks = {{{20, 20, 32}, unit({0.6, 0.6, 0.53}), 2.0, 11}, {{44, 44, 32}, unit({0, 1, 0.1}), 2.5, 12}};
  expect_recovered(phantom::planar_cracks(s), kElectrolyte, "oblique discs");
}

TEST(CrackAccuracy, AnisotropicSpacing) {
  phantom::PlanarCrackSpec s;
  s.dims = {64, 64, 40};
  s.spacing_um = {0.5, 0.5, 0.8};
  s.host = "se";
  s.cracks = {{{16, 16, 10}, unit({0, 0.3, 1}), 1.6, 10}, {{16, 16, 24}, unit({1, 0, 0.2}), 1.2, 8}};
  expect_recovered(phantom::planar_cracks(s), kElectrolyte, "anisotropic");
}

TEST(CrackAccuracy, CrackThroughActiveParticle) {
  phantom::PlanarCrackSpec s;
  s.dims = {64, 64, 64};
  s.host = "am";
  s.am_radius_um = 24;
  s.cracks = {{{32, 32, 34}, unit({0.2, 0.1, 1}), 2.0, 0}};
  const phantom::Phantom ph = phantom::planar_cracks(s);
  expect_recovered(ph, kActive, "through an AM sphere");
  // The crack splits the one AM particle: it is cracked.
  const CrackDetection det = detect_cracks(ph.labels, nullptr, options_for(kActive));
  CrackMeasureOptions mo = measure_options_for(kActive);
  mo.particles = &ph.particles;
  const CrackMeasurements m = measure_cracks(ph.labels, det.ids, mo);
  EXPECT_TRUE(m.has_particles);
  EXPECT_EQ(m.host_particles, 1);
  EXPECT_EQ(m.cracked_particles, 1);
  EXPECT_DOUBLE_EQ(m.cracked_particle_fraction, 1.0);
  // Fully enclosed by AM and SE: no face-to-face void path.
  for (const auto& r : m.short_circuit) EXPECT_FALSE(r.percolates);
}

TEST(CrackAccuracy, ThroughCrackPercolatesWithExactBottleneck) {
  phantom::PlanarCrackSpec s;
  s.dims = {48, 48, 48};
  s.host = "se";
  // Voxel centres at 31.5, 32.5, 33.5 lie within ±1.5 of x = 32.5: three voxels wide.
  s.cracks = {{{32.5, 24, 24}, {1, 0, 0}, 3.0, 0}};
  const phantom::Phantom ph = phantom::planar_cracks(s);
  const CrackDetection det = detect_cracks(ph.labels, nullptr, options_for(kElectrolyte));
  ASSERT_EQ(det.count, 1u);
  const CrackMeasurements m = measure_cracks(ph.labels, det.ids, measure_options_for(kElectrolyte));
  EXPECT_FALSE(m.short_circuit[0].percolates);
  EXPECT_TRUE(m.short_circuit[1].percolates);
  EXPECT_TRUE(m.short_circuit[2].percolates);
  EXPECT_DOUBLE_EQ(m.short_circuit[2].bottleneck_diameter_um, 3.0);
  EXPECT_DOUBLE_EQ(m.short_circuit[0].bottleneck_diameter_um, 0.0);
  EXPECT_NEAR(m.cracks[0].area_um2, 48.0 * 48.0, 1e-9);  // exact for an axis-aligned sheet
  EXPECT_DOUBLE_EQ(m.crack_volume_fraction, 3.0 / 48.0);
  EXPECT_NEAR(m.crack_surface_density, 48.0 * 48.0 / (48.0 * 48 * 48), 1e-12);
  EXPECT_EQ(m.network_count, 1);
  EXPECT_DOUBLE_EQ(m.largest_network_fraction, 1.0);
  EXPECT_DOUBLE_EQ(m.aperture_max_um, 3.0);
  EXPECT_NEAR(m.cracks[0].angle_to_pressing_axis_deg, 90.0, 1e-6);
}

TEST(CrackAccuracy, DiscThatStopsShortDoesNotPercolate) {
  phantom::PlanarCrackSpec s;
  s.dims = {48, 48, 48};
  s.host = "se";
  s.cracks = {{{24, 24, 24}, {1, 0, 0}, 2.0, 20}};  // reaches z 4..44 only
  const phantom::Phantom ph = phantom::planar_cracks(s);
  const CrackDetection det = detect_cracks(ph.labels, nullptr, options_for(kElectrolyte));
  ASSERT_EQ(det.count, 1u);
  const CrackMeasurements m = measure_cracks(ph.labels, det.ids, measure_options_for(kElectrolyte));
  for (const auto& r : m.short_circuit) EXPECT_FALSE(r.percolates);
}

TEST(ShortCircuit, WidestPathPicksTheWiderOfTwoChannels) {
  // Two straight channels through a block along z, 1 and 5 voxels wide, joined nowhere: the
  // bottleneck is the wider one's width. A narrow waist of 3 in the wide one limits it to 3.
  Volume<std::uint8_t> net({40, 20, 30}, {0.5, 0.5, 0.5});
  for (index_t z = 0; z < 30; ++z)
    for (index_t y = 5; y < 15; ++y) {
      net(5, y, z) = 1;
      for (index_t x = 20; x < 25; ++x) net(x, y, z) = 1;
    }
  ShortCircuitRisk r = short_circuit_risk(net, {2, 26});
  EXPECT_TRUE(r.percolates);
  EXPECT_DOUBLE_EQ(r.bottleneck_diameter_um, 5 * 0.5);
  for (index_t y = 5; y < 15; ++y) net(20, y, 12) = net(24, y, 12) = 0;
  r = short_circuit_risk(net, {2, 26});
  EXPECT_DOUBLE_EQ(r.bottleneck_diameter_um, 3 * 0.5);
  EXPECT_FALSE(short_circuit_risk(net, {0, 26}).percolates);
}

TEST(ShortCircuit, AllAxesAtOnceGiveEachAxisItsOwnWidestPath) {
  // A channel along z, 5 × 10 voxels, and apart from it one along x, 3 × 3 voxels: along x the
  // bottleneck is 3 voxels, along z 5, and nothing crosses along y. One ranking and one
  // union-find buffer serve all three axes; each answer equals the one-axis call's.
  Volume<std::uint8_t> net({40, 20, 30}, {0.5, 0.5, 0.5});
  for (index_t z = 0; z < 30; ++z)
    for (index_t y = 5; y < 15; ++y)
      for (index_t x = 20; x < 25; ++x) net(x, y, z) = 1;
  for (index_t z = 10; z < 13; ++z)
    for (index_t y = 17; y < 20; ++y)
      for (index_t x = 0; x < 40; ++x) net(x, y, z) = 1;
  const std::vector<ShortCircuitRisk> r = short_circuit_risks(net, {0, 1, 2}, 26);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r[0].percolates);
  EXPECT_DOUBLE_EQ(r[0].bottleneck_diameter_um, 3 * 0.5);
  EXPECT_EQ(r[0].percolating_voxels, 40 * 3 * 3);
  EXPECT_FALSE(r[1].percolates);
  EXPECT_EQ(r[1].bottleneck_diameter_um, 0);
  EXPECT_TRUE(r[2].percolates);
  EXPECT_DOUBLE_EQ(r[2].bottleneck_diameter_um, 5 * 0.5);
  for (int axis = 0; axis < 3; ++axis) {
    const ShortCircuitRisk one = short_circuit_risk(net, {axis, 26});
    EXPECT_EQ(r[static_cast<std::size_t>(axis)].axis, axis);
    EXPECT_EQ(r[static_cast<std::size_t>(axis)].percolates, one.percolates);
    EXPECT_EQ(r[static_cast<std::size_t>(axis)].bottleneck_diameter_um, one.bottleneck_diameter_um);
    EXPECT_EQ(r[static_cast<std::size_t>(axis)].percolating_voxels, one.percolating_voxels);
  }
}

TEST(CrackAccuracy, PoresAreNotCracks) {
  // Round pores (thick, compact) and a thin needle in an SE block: none is a crack; the
  // planted disc is.
  phantom::PlanarCrackSpec s;
  s.dims = {64, 64, 64};
  s.host = "se";
  s.cracks = {{{32, 32, 48}, {0, 0, 1}, 2.0, 12}};
  phantom::Phantom ph = phantom::planar_cracks(s);
  auto& L = ph.labels;
  for (index_t z = 0; z < 64; ++z)
    for (index_t y = 0; y < 64; ++y)
      for (index_t x = 0; x < 64; ++x) {
        const double r1 = std::hypot(std::hypot(x - 16.0, y - 16.0), z - 20.0);
        const double r2 = std::hypot(std::hypot(x - 46.0, y - 40.0), z - 18.0);
        if (r1 < 6 || r2 < 2.5) L(x, y, z) = kPore;
      }
  for (index_t x = 10; x < 54; ++x) L(x, 50, 30) = L(x, 51, 30) = kPore;  // needle
  const CrackDetection det = detect_cracks(L, nullptr, options_for(kElectrolyte));
  EXPECT_EQ(det.count, 1u);
  const CrackMeasurements m = measure_cracks(L, det.ids, measure_options_for(kElectrolyte));
  ASSERT_EQ(m.cracks.size(), 1u);
  EXPECT_NEAR(m.cracks[0].area_um2, M_PI * 144, 0.1 * M_PI * 144);
  // Pores join the crack's network only when they touch it: here three void networks exist
  // but only one holds a crack.
  EXPECT_EQ(m.network_count, 1);
}

// Crack-free composite with a noisy CT image: with the grey branch on, the false crack
// volume stays under 0.05 % of the host.
TEST(CrackAccuracy, NoFalseCracksOnNoisyCrackFreeComposite) {
  phantom::CompositeSpec spec;
  spec.dims = {64, 64, 64};
  spec.cracks_enabled = false;
  spec.seed = 3;
  for (double pressure : {370.0}) {
    const phantom::Phantom ph = phantom::generate_composite(spec, pressure);
    phantom::ImagingSpec imaging;
    imaging.snr = 8;
    const Volume<std::uint16_t> ct = phantom::ct_image(ph.labels, imaging);
    Volume<float> grey = ph.labels.like<float>(ph.labels.dims());
    for (index_t i = 0; i < grey.size(); ++i) grey[i] = ct[i];
    for (int host : {int(kElectrolyte), int(kActive)}) {
      const CrackDetection det = detect_cracks(ph.labels, &grey, options_for(host));
      const CrackMeasurements m = measure_cracks(ph.labels, det.ids, measure_options_for(host));
      EXPECT_LT(m.crack_volume_fraction, 0.0005) << "host " << host << " at " << pressure << " MPa: " << det.count
                                                 << " false cracks, " << m.crack_voxels << " voxels";
    }
  }
}

// A one-voxel crack that the labels miss (labelled SE) is found in the grey image.
TEST(CrackAccuracy, ThinCrackFoundOnlyInGreyImage) {
  phantom::PlanarCrackSpec s;
  s.dims = {64, 64, 64};
  s.host = "se";
  const Vec3 n = unit({0.25, 0, 1});
  s.cracks = {{{32, 32, 32}, n, 1.0, 18}};
  phantom::Phantom ph = phantom::planar_cracks(s);
  // A few round pores give the grey contrast between SE and void.
  for (index_t z = 0; z < 64; ++z)
    for (index_t y = 0; y < 64; ++y)
      for (index_t x = 0; x < 64; ++x)
        if (std::hypot(std::hypot(x - 10.0, y - 10.0), z - 10.0) < 4) ph.labels(x, y, z) = kPore;
  phantom::ImagingSpec imaging;
  imaging.snr = 8;
  imaging.attenuation = {{"pore", 0.05}, {"se", 0.45}, {"am", 1.0}};
  const Volume<std::uint16_t> ct = phantom::ct_image(ph.labels, imaging);
  Volume<float> grey = ph.labels.like<float>(ph.labels.dims());
  for (index_t i = 0; i < grey.size(); ++i) grey[i] = ct[i];
  // The segmentation missed the crack.
  LabelVolume missed = ph.labels;
  for (index_t i = 0; i < missed.size(); ++i)
    if (ph.cracks[i]) missed[i] = kElectrolyte;
  EXPECT_EQ(detect_cracks(missed, nullptr, options_for(kElectrolyte)).count, 0u);
  const CrackDetection det = detect_cracks(missed, &grey, options_for(kElectrolyte));
  ASSERT_EQ(det.count, 1u);
  EXPECT_GT(det.sheet_voxels, 0);
  const CrackMeasurements m = measure_cracks(missed, det.ids, measure_options_for(kElectrolyte));
  EXPECT_LT(angle_deg(m.cracks[0].normal, n), 10.0);
  EXPECT_NEAR(m.cracks[0].area_um2, ph.truth.cracks[0].area_um2, 0.10 * ph.truth.cracks[0].area_um2);
}

TEST(CrackDetection, RejectsBadInput) {
  Volume<std::uint8_t> labels({8, 8, 8});
  CrackDetectionOptions o;
  o.void_labels = {0};
  EXPECT_THROW(detect_cracks(labels, nullptr, o), InputError);
  o.host_labels = {0};
  EXPECT_THROW(detect_cracks(labels, nullptr, o), InputError);  // both host and void
  o.host_labels = {1};
  Volume<float> grey({8, 8, 4});
  EXPECT_THROW(detect_cracks(labels, &grey, o), InputError);
  Volume<std::uint32_t> ids({8, 8, 4});
  EXPECT_THROW(measure_cracks(labels, ids, {}), InputError);
}

}  // namespace
}  // namespace vp
