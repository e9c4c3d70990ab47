// Phantoms: determinism, exact ground truth, compaction trends, imaging SNR.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "phantoms/cell_grid.h"
#include "phantoms/geometry.h"
#include "phantoms/phantom.h"

using namespace vp;
using namespace vp::phantom;

namespace {

CompositeSpec small_spec(index_t n = 48) {
  CompositeSpec s;
  s.dims = {n, n, n};
  s.spacing_um = {0.5, 0.5, 0.5};
  s.seed = 7;
  s.am_radius_vox = 6;
  s.am_radius_min_vox = 4;
  s.am_radius_max_vox = 9;
  s.se_radius_vox = 2.5;
  s.cracks.se_radius_um = 6;
  s.cracks.se_aperture_um = 1.0;
  s.contact_samples_per_voxel_face = 4;
  return s;
}

// Voxel-face estimate of a pair's interface area (µm²), honouring anisotropic spacing.
double face_area(const LabelVolume& v, int a, int b) {
  const Dims d = v.dims();
  const double area[3] = {v.spacing_um[1] * v.spacing_um[2], v.spacing_um[0] * v.spacing_um[2],
                          v.spacing_um[0] * v.spacing_um[1]};
  double sum = 0;
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const int l = v(x, y, z);
        if (x + 1 < d.x) {
          const int m = v(x + 1, y, z);
          if ((l == a && m == b) || (l == b && m == a)) sum += area[0];
        }
        if (y + 1 < d.y) {
          const int m = v(x, y + 1, z);
          if ((l == a && m == b) || (l == b && m == a)) sum += area[1];
        }
        if (z + 1 < d.z) {
          const int m = v(x, y, z + 1);
          if ((l == a && m == b) || (l == b && m == a)) sum += area[2];
        }
      }
  return sum;
}

double face_contact_fraction(const LabelVolume& v) {
  const double se = face_area(v, kActive, kElectrolyte);
  const double all = se + face_area(v, kActive, kPore) + face_area(v, kActive, kBinder);
  return se / all;
}

}  // namespace

// PackedCellGrid codes each cell's ids as 16-bit gaps, with an escape for a gap above 65535:
// every cell lists the same bodies in the same order as the growing CellGrid, including cells
// where consecutive ids lie more than 65535 apart (bodies 0 and 70000 share the first cell).
TEST(PhantomCellGrid, PackedListsMatchTheGrowingGridAcrossLargeIdGaps) {
  const Vec3 lo{0, 0, 0}, hi{8, 8, 4};
  std::vector<Vec3> bb_lo, bb_hi;
  for (int i = 0; i < 140000; ++i) {
    const bool corner = i == 0 || i == 70000 || i == 139999;  // large gaps in cell (0, 0, 0)
    const double x = corner ? 0.2 : 1 + (i % 7), y = corner ? 0.2 : 1 + (i / 7) % 7, z = (i / 49) % 4;
    bb_lo.push_back({x, y, corner ? 0.2 : z});
    bb_hi.push_back({x + (i % 3 == 0 ? 1.5 : 0.1), y + 0.1, (corner ? 0.2 : z) + 0.1});
  }
  vp::phantom::CellGrid growing(lo, hi, 1.0);
  for (int i = 0; i < static_cast<int>(bb_lo.size()); ++i) growing.insert(i, bb_lo[i], bb_hi[i]);
  const vp::phantom::PackedCellGrid packed(lo, hi, 1.0, bb_lo, bb_hi);
  int cells = 0;
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 8; ++j)
      for (int i = 0; i < 8; ++i, ++cells) {
        const Vec3 p{i + 0.5, j + 0.5, k + 0.5};
        std::vector<int> listed;
        for (int id : packed.at(p)) listed.push_back(id);
        const auto expected = growing.at(p);
        ASSERT_EQ(listed, std::vector<int>(expected.begin(), expected.end())) << "cell " << i << "," << j << "," << k;
      }
  std::vector<int> corner;
  for (int id : packed.at({0.5, 0.5, 0.5})) corner.push_back(id);
  EXPECT_EQ(corner, (std::vector<int>{0, 70000, 139999}));
  EXPECT_EQ(cells, 256);
}

// A grid built for a z slab (the voxel sampling builds one per slab of planes) lists the whole
// grid's bodies, in the same order, in the layers the slab's points fall in, and none elsewhere.
TEST(PhantomCellGrid, SlabGridListsTheWholeGridsBodiesInItsLayersOnly) {
  const Vec3 lo{0, 0, 0}, hi{4, 4, 6};
  std::vector<Vec3> bb_lo, bb_hi;
  for (int i = 0; i < 300; ++i) {
    const Vec3 c{(i * 37 % 40) / 10.0, (i * 53 % 40) / 10.0, (i * 71 % 60) / 10.0};
    const double r = 0.2 + (i % 5) * 0.4;
    bb_lo.push_back({c[0] - r, c[1] - r, c[2] - r});
    bb_hi.push_back({c[0] + r, c[1] + r, c[2] + r});
  }
  const vp::phantom::PackedCellGrid whole(lo, hi, 1.0, bb_lo, bb_hi);
  const vp::phantom::PackedCellGrid slab(lo, hi, 1.0, bb_lo, bb_hi, std::array{2.3, 3.6});
  auto listed = [](const vp::phantom::PackedCellGrid& g, const Vec3& p) {
    std::vector<int> ids;
    for (int id : g.at(p)) ids.push_back(id);
    return ids;
  };
  int cells_in_slab = 0;
  for (int k = 0; k < 6; ++k)
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 4; ++i) {
        const Vec3 p{i + 0.5, j + 0.5, k + 0.5};
        ASSERT_FALSE(listed(whole, p).empty()) << "cell " << i << "," << j << "," << k;
        const bool in_slab = k == 2 || k == 3;
        cells_in_slab += in_slab;
        EXPECT_EQ(listed(slab, p), in_slab ? listed(whole, p) : std::vector<int>{})
            << "cell " << i << "," << j << "," << k;
      }
  EXPECT_EQ(cells_in_slab, 32);
}

TEST(PhantomGeometry, EllipsoidSurfaceAreaMatchesClosedForms) {
  EXPECT_NEAR(ellipsoid_surface_area({3, 3, 3}), 4 * kPi * 9, 1e-9);
  // Prolate spheroid a = b = 2, c = 5: S = 2πa² (1 + c/(a e) asin e), e² = 1 − a²/c².
  const double a = 2, c = 5, e = std::sqrt(1 - a * a / (c * c));
  EXPECT_NEAR(ellipsoid_surface_area({a, a, c}) / (2 * kPi * a * a * (1 + c / (a * e) * std::asin(e))), 1.0, 1e-9);
  double w = 0;
  for (const auto& p : ellipsoid_surface_points({0, 0, 0}, {a, a, c}, 20000)) w += p.weight;
  EXPECT_NEAR(w / ellipsoid_surface_area({a, a, c}), 1.0, 1e-4);
}

TEST(PhantomComposite, SameSeedSameBytesOtherSeedOtherBytes) {
  const CompositeSpec s = small_spec(40);
  const Phantom a = generate_composite(s, 250);
  const Phantom b = generate_composite(s, 250);
  EXPECT_EQ(a.labels.storage(), b.labels.storage());
  EXPECT_EQ(a.particles.storage(), b.particles.storage());
  EXPECT_EQ(a.cracks.storage(), b.cracks.storage());
  EXPECT_EQ(a.truth.to_json().dump(), b.truth.to_json().dump());
  CompositeSpec s2 = s;
  s2.seed = 8;
  EXPECT_NE(a.labels.storage(), generate_composite(s2, 250).labels.storage());
}

TEST(PhantomComposite, FractionsAreTheLabelCountsAndPorosityIsHeckels) {
  const CompositeSpec s = small_spec();
  for (double p : {10.0, 125.0, 370.0}) {
    const Phantom ph = generate_composite(s, p);
    std::int64_t counts[4] = {0, 0, 0, 0};
    for (auto l : ph.labels.storage()) ++counts[l];
    const double n = static_cast<double>(ph.labels.size());
    EXPECT_EQ(ph.truth.voxel_count.at("pore"), counts[kPore]);
    EXPECT_EQ(ph.truth.voxel_count.at("se"), counts[kElectrolyte]);
    EXPECT_EQ(ph.truth.voxel_count.at("am"), counts[kActive]);
    EXPECT_DOUBLE_EQ(ph.truth.volume_fraction.at("pore"), counts[kPore] / n);
    EXPECT_DOUBLE_EQ(ph.truth.volume_fraction.at("am"), counts[kActive] / n);
    // Heckel porosity, cracks included, to one voxel.
    EXPECT_LE(std::fabs(counts[kPore] - heckel_porosity(s.compaction, p) * n), 1.0) << p << " MPa";
    EXPECT_EQ(ph.truth.pressure_MPa, p);
  }
}

TEST(PhantomComposite, PorosityFallsAndContactRisesWithPressure) {
  CompositeSpec s = small_spec(64);
  const auto series = generate_series(s);
  ASSERT_EQ(series.size(), 5u);
  for (std::size_t i = 0; i < series.size(); ++i) {
    const auto& t = series[i].truth;
    std::printf("P %6.1f  porosity %.4f  am %.4f  contact truth %.4f  faces %.4f  cracks %zu\n", t.pressure_MPa,
                t.volume_fraction.at("pore"), t.volume_fraction.at("am"), t.contact_area_fraction,
                face_contact_fraction(series[i].labels), t.cracks.size());
    if (i == 0) continue;
    const auto& prev = series[i - 1].truth;
    EXPECT_LT(t.volume_fraction.at("pore"), prev.volume_fraction.at("pore"));
    EXPECT_GE(t.contact_area_fraction, prev.contact_area_fraction);
  }
  // The knee: most of the contact gain happens by 50 MPa.
  const double c10 = series[0].truth.contact_area_fraction, c50 = series[1].truth.contact_area_fraction;
  const double c370 = series[4].truth.contact_area_fraction;
  EXPECT_GT((c50 - c10) / (c370 - c10), 0.6);
  // Supersampled truth and the voxel-face estimate of the same label image agree roughly.
  for (const auto& ph : series) EXPECT_NEAR(ph.truth.contact_area_fraction, face_contact_fraction(ph.labels), 0.06);
}

TEST(PhantomComposite, CracksAppearAboveOnsetInTheirHosts) {
  const CompositeSpec s = small_spec(48);
  const Phantom below = generate_composite(s, 125);
  EXPECT_TRUE(below.truth.cracks.empty());
  for (auto c : below.cracks.storage()) {
    ASSERT_EQ(c, 0u);
  }
  const Phantom onset = generate_composite(s, 250);
  const Phantom full = generate_composite(s, 370);
  ASSERT_GE(onset.truth.cracks.size(), 1u);
  ASSERT_GT(full.truth.cracks.size(), onset.truth.cracks.size());
  std::set<std::string> hosts;
  for (const auto& c : full.truth.cracks) {
    hosts.insert(c.host);
    EXPECT_GT(c.area_um2, 0) << c.id;
    EXPECT_GT(c.voxels, 0) << c.id;
    EXPECT_NEAR(norm(c.normal), 1.0, 1e-12);
    EXPECT_EQ(c.aperture_um, c.host == "se" ? s.cracks.se_aperture_um : s.cracks.am_aperture_um);
    // Voxel volume ≈ area × aperture (slab of that width), within discretisation error.
    const double h3 = s.spacing_um[0] * s.spacing_um[1] * s.spacing_um[2];
    EXPECT_NEAR(c.voxels * h3 / (c.area_um2 * c.aperture_um), 1.0, 0.35) << c.id;
  }
  EXPECT_EQ(hosts, (std::set<std::string>{"se", "am"}));
  for (index_t i = 0; i < full.cracks.size(); ++i)
    if (full.cracks[i]) {
      ASSERT_EQ(full.labels[i], kPore);
    }
}

TEST(Phantoms, SeparatedSpheresHaveAnalyticAreasAndVolumes) {
  SpheresSpec s;
  s.dims = {96, 80, 40};
  s.spacing_um = {0.5, 0.5, 1.0};  // anisotropic
  s.count = 5;
  s.radius_min_um = 4;
  s.radius_max_um = 6;
  s.matrix = Role::electrolyte;
  const Phantom ph = separated_spheres(s);
  ASSERT_EQ(ph.truth.particles.size(), 5u);
  double area = 0;
  for (const auto& p : ph.truth.particles) {
    const double r = p.semi_axes_um[0];
    area += 4 * kPi * r * r;
    EXPECT_NEAR(p.voxels * 0.25 / (4.0 / 3.0 * kPi * r * r * r), 1.0, 0.05);
  }
  EXPECT_DOUBLE_EQ(ph.truth.interface_area_um2.at("se|am"), area);
  EXPECT_EQ(ph.truth.contact_area_fraction, 1.0);
  // No two particles share a voxel face.
  const Dims d = ph.particles.dims();
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x + 1 < d.x; ++x) {
        const auto a = ph.particles(x, y, z), b = ph.particles(x + 1, y, z);
        ASSERT_TRUE(a == 0 || b == 0 || a == b);
      }
}

TEST(Phantoms, ThroughCrackNormalToZIsExact) {
  PlanarCrackSpec s;
  s.dims = {32, 24, 40};
  s.cracks = {{{10, 10, 20}, {0, 0, 1}, 2.0, 0}};
  const Phantom ph = planar_cracks(s);
  ASSERT_EQ(ph.truth.cracks.size(), 1u);
  EXPECT_DOUBLE_EQ(ph.truth.cracks[0].area_um2, 32.0 * 24.0);
  EXPECT_EQ(ph.truth.cracks[0].voxels, 2 * 32 * 24);
  EXPECT_EQ(ph.truth.voxel_count.at("pore"), 2 * 32 * 24);
  EXPECT_DOUBLE_EQ(ph.truth.interface_area_um2.at("pore|se"), 2 * 32.0 * 24.0);
}

TEST(Phantoms, TiltedDiscCracksInSeAndAm) {
  PlanarCrackSpec s;
  s.dims = {48, 48, 48};
  s.spacing_um = {0.5, 0.5, 0.5};
  s.cracks = {{{12, 12, 12}, {1, 1, 2}, 1.0, 7}};
  const Phantom se = planar_cracks(s);
  EXPECT_DOUBLE_EQ(se.truth.cracks[0].area_um2, kPi * 49);
  EXPECT_NEAR(se.truth.cracks[0].voxels * 0.125 / (kPi * 49 * 1.0), 1.0, 0.1);
  EXPECT_NEAR(norm(se.truth.cracks[0].normal), 1.0, 1e-15);
  s.host = "am";
  s.am_radius_um = 10;
  s.cracks = {{{12, 12, 13}, {0, 1, 0}, 1.0, 0}};  // through the sphere, 1 µm off its centre in z
  const Phantom am = planar_cracks(s);
  EXPECT_DOUBLE_EQ(am.truth.cracks[0].area_um2, kPi * 100);  // plane passes through the centre (y = 12)
  EXPECT_EQ(am.truth.cracks[0].host, "am");
  EXPECT_NEAR(am.truth.cracks[0].voxels * 0.125 / (kPi * 100 * 1.0), 1.0, 0.1);
}

TEST(Phantoms, HalfCappedSphereHasContactFractionOneHalf) {
  CappedSphereSpec s;
  const Phantom ph = capped_sphere(s);
  EXPECT_DOUBLE_EQ(ph.truth.contact_area_fraction, 0.5);
  EXPECT_DOUBLE_EQ(ph.truth.interface_area_um2.at("se|am"), 2 * kPi * 14 * 14);
  EXPECT_NEAR(face_contact_fraction(ph.labels), 0.5, 0.03);
  s.cap_angle_deg = 60;
  EXPECT_DOUBLE_EQ(capped_sphere(s).truth.contact_area_fraction, 0.25);
}

namespace {

// SNR as defined: |mean_a − mean_b| / pooled noise σ, measured in the two halves' interiors.
double measured_snr(const Volume<std::uint16_t>& g) {
  const Dims d = g.dims();
  double s[2] = {0, 0}, s2[2] = {0, 0}, n[2] = {0, 0};
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        if (std::abs(2 * x + 1 - d.x) < 12) continue;  // away from the interface
        const int h = x < d.x / 2 ? 0 : 1;
        s[h] += g(x, y, z), s2[h] += double(g(x, y, z)) * g(x, y, z), ++n[h];
      }
  double m[2], var[2];
  for (int h = 0; h < 2; ++h) m[h] = s[h] / n[h], var[h] = s2[h] / n[h] - m[h] * m[h];
  return std::fabs(m[0] - m[1]) / std::sqrt(0.5 * (var[0] + var[1]));
}

LabelVolume two_halves() {
  LabelVolume v(Volume<std::uint8_t>({64, 32, 32}, {1, 1, 1}, kElectrolyte), phase_table());
  for (index_t z = 0; z < 32; ++z)
    for (index_t y = 0; y < 32; ++y)
      for (index_t x = 0; x < 32; ++x) v(x, y, z) = kActive;
  return v;
}

}  // namespace

TEST(PhantomImaging, GaussianAndPoissonNoiseDeliverTheRequestedSnr) {
  const LabelVolume v = two_halves();
  for (NoiseModel model : {NoiseModel::gaussian, NoiseModel::poisson})
    for (double gain : {40000.0, 16.0})  // 16: a narrow grey range where rounding matters
      for (double snr : {2.0, 5.0, 12.0}) {
        ImagingSpec im;
        im.noise = model;
        im.snr = snr;
        im.gain = gain;
        im.blur_sigma_vox = {1.2, 1.2, 1.2};
        const double got = measured_snr(ct_image(v, im));
        EXPECT_NEAR(got / snr, 1.0, 0.10)
            << (model == NoiseModel::gaussian ? "gaussian" : "poisson") << " gain " << gain << " snr " << snr;
      }
}

TEST(PhantomImaging, NoiselessLevelsAndDeterminism) {
  const LabelVolume v = two_halves();
  ImagingSpec im;
  im.noise = NoiseModel::none;
  im.blur_sigma_vox = {0, 0, 0};
  const auto g = ct_image(v, im);
  EXPECT_EQ(g(0, 0, 0), static_cast<std::uint16_t>(std::lround(im.grey_level("am"))));
  EXPECT_EQ(g(63, 0, 0), static_cast<std::uint16_t>(std::lround(im.grey_level("se"))));
  im.noise = NoiseModel::poisson;
  im.ring_amplitude = 0.02;
  im.cupping = 0.1;
  EXPECT_EQ(ct_image(v, im).storage(), ct_image(v, im).storage());
  ImagingSpec other = im;
  other.seed = 2;
  EXPECT_NE(ct_image(v, im).storage(), ct_image(v, other).storage());
}

TEST(PhantomImaging, FibSemHasAnisotropicVoxelsAndCurtainsAlongY) {
  CompositeSpec s = small_spec(32);
  s.spacing_um = kFibSemSpacingUm;
  s.pressures_MPa = {0};
  s.compaction.enabled = false;
  const Phantom ph = generate_composite(s, 0);
  EXPECT_EQ(ph.labels.spacing_um[2], 2 * ph.labels.spacing_um[0]);
  // Curtains on a uniform block: constant along y, varying along x.
  LabelVolume block(Volume<std::uint8_t>({32, 16, 8}, kFibSemSpacingUm, kElectrolyte), phase_table());
  ImagingSpec im;
  im.noise = NoiseModel::none;
  const auto g = fib_sem_image(block, im);
  EXPECT_EQ(g.spacing_um, kFibSemSpacingUm);
  std::set<int> along_x;
  for (index_t x = 0; x < 32; ++x) {
    along_x.insert(g(x, 0, 4));
    for (index_t y = 1; y < 16; ++y) ASSERT_EQ(g(x, y, 4), g(x, 0, 4));
  }
  EXPECT_GT(along_x.size(), 8u);
}

TEST(PhantomTruth, JsonHasTheContractKeysAndRoundTrips) {
  const Phantom ph = generate_composite(small_spec(40), 370);
  const auto j = ph.truth.to_json();
  for (const char* key : {"generator", "pressure_MPa", "seed", "dims", "spacing_um", "phases", "voxel_count",
                          "volume_fraction", "interface_area_um2", "am_surface_area_um2", "contact_area_fraction",
                          "particle_count", "particles", "cracks", "crack_count", "target_porosity", "parameters"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["phases"][2]["name"], "am");
  EXPECT_EQ(j["phases"][2]["role"], "active");
  const GroundTruth back = GroundTruth::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(back.to_json().dump(), j.dump());
}

TEST(PhantomImaging, CuppingDarkensTheCentreAndRingsFollowTheRadius) {
  LabelVolume block(Volume<std::uint8_t>({64, 64, 4}, {1, 1, 1}, kElectrolyte), phase_table());
  ImagingSpec im;
  im.noise = NoiseModel::none;
  im.blur_sigma_vox = {0, 0, 0};
  im.cupping = 0.2;
  const auto cup = ct_image(block, im);
  const double level = im.grey_level("se");
  // Centre voxel (r = 0.71 voxel of 32): factor 1 − 0.2·(1 − (r/32)²).
  EXPECT_NEAR(cup(32, 32, 0), level * (1 - 0.2 * (1 - 0.5 / 1024)), 0.5);
  EXPECT_NEAR(cup(0, 0, 0), level, 0.5);  // corner: beyond the cupping radius
  im.cupping = 0;
  im.ring_amplitude = 0.02;
  const auto rings = ct_image(block, im);
  std::set<int> values;
  for (index_t x = 32; x < 64; ++x) {
    values.insert(rings(x, 32, 0));
    ASSERT_EQ(rings(x, 32, 0), rings(x, 32, 3));                         // same in every slice
    ASSERT_LE(std::abs(rings(x, 32, 0) - level), 0.02 * im.gain + 0.5);  // bounded amplitude
  }
  EXPECT_GT(values.size(), 10u);
  // Mirror voxels at the same radius get the same ring offset.
  EXPECT_EQ(rings(40, 32, 1), rings(23, 31, 1));
}
