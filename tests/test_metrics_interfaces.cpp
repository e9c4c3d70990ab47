// Interface areas (Crofton and face count), contact-area fraction, triple-phase boundary:
// analytic spheres, exact boxes, the three-phase identity, capped spheres.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "metrics/interfaces.h"

using namespace vp;

namespace {

// Voxel centres within radius r of c (µm) get `inside`, others keep their label.
void paint_ball(Volume<std::uint8_t>& v, Vec3 c, double r, std::uint8_t inside) {
  const Vec3 h = v.spacing_um;
  for (index_t z = 0; z < v.dims().z; ++z)
    for (index_t y = 0; y < v.dims().y; ++y)
      for (index_t x = 0; x < v.dims().x; ++x) {
        double dx = x * h[0] - c[0], dy = y * h[1] - c[1], dz = z * h[2] - c[2];
        if (dx * dx + dy * dy + dz * dz <= r * r) v(x, y, z) = inside;
      }
}

PhaseTable pore_se_am() {
  return PhaseTable({{"pore", 0, Role::pore}, {"se", 1, Role::electrolyte}, {"am", 2, Role::active}});
}

}  // namespace

TEST(CroftonDirections, WeightsSumToOneAndAreSymmetric) {
  auto c = crofton_directions({1, 1, 1});
  double sum = 0;
  for (double w : c.weight) sum += w;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // Isotropic grid: the three axes alike, the six face diagonals alike, the four body diagonals alike.
  for (int k : {1, 2}) EXPECT_NEAR(c.weight[k], c.weight[0], 2e-4);
  for (int k = 4; k < 9; ++k) EXPECT_NEAR(c.weight[k], c.weight[3], 2e-4);
  for (int k = 10; k < 13; ++k) EXPECT_NEAR(c.weight[k], c.weight[9], 2e-4);
}

TEST(InterfaceAreas, SpheresWithinTwoPercentFromRadiusTen) {
  // Centres off the grid so that each radius samples a generic digitisation.
  for (double r : {5.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0}) {
    index_t n = static_cast<index_t>(2 * r + 6);
    Volume<std::uint8_t> v({n, n, n});
    paint_ball(v, {n / 2.0 + 0.31, n / 2.0 - 0.17, n / 2.0 + 0.07}, r, 1);
    auto a = interface_areas(v);
    double truth = 4 * M_PI * r * r;
    double err = a.area(0, 1) / truth - 1;
    if (r >= 10) EXPECT_LT(std::abs(err), 0.02) << "r=" << r;
    else EXPECT_LT(std::abs(err), 0.05) << "r=" << r;
    // Face counting: about +50 %.
    EXPECT_NEAR(a.facecount(0, 1) / truth, 1.5, 0.1) << "r=" << r;
    std::printf("r=%5.1f crofton %+.4f facecount %+.4f\n", r, err, a.facecount(0, 1) / truth - 1);
  }
}

TEST(InterfaceAreas, AnisotropicSpacingSphere) {
  // A sphere of radius 12 µm sampled with spacing (1, 1, 1.5) µm.
  Volume<std::uint8_t> v({32, 32, 22}, {1.0, 1.0, 1.5});
  paint_ball(v, {15.8, 16.1, 15.9}, 12, 1);
  auto a = interface_areas(v);
  EXPECT_NEAR(a.area(0, 1) / (4 * M_PI * 144), 1.0, 0.02);
}

TEST(InterfaceAreas, FloatingCubeFaceCountIsExact) {
  Volume<std::uint8_t> v({20, 20, 20});
  for (index_t z = 5; z < 15; ++z)
    for (index_t y = 5; y < 15; ++y)
      for (index_t x = 5; x < 15; ++x) v(x, y, z) = 1;
  auto a = interface_areas(v);
  EXPECT_DOUBLE_EQ(a.facecount(0, 1) / a.volume_um3, 0.075);
  EXPECT_DOUBLE_EQ(a.surface_facecount(1), 600.0);
  // Crofton sees the voxel centres: between the centres' hull (side 9: 486) and the cubes (600);
  // measured 524.6 (0.0656 per voxel; marching cubes gives 0.0705).
  EXPECT_GT(a.area(0, 1), 486.0);
  EXPECT_LT(a.area(0, 1), 600.0);
  EXPECT_NEAR(a.area(0, 1) / a.volume_um3, 0.0656, 0.0005);
  // Spacing scales faces by their own two spacings.
  v.spacing_um = {2, 3, 5};
  auto b = interface_areas(v);
  EXPECT_DOUBLE_EQ(b.facecount(0, 1), 200.0 * (3 * 5 + 2 * 5 + 2 * 3));
}

TEST(InterfaceAreas, ThreePhaseIdentityHolds) {
  // 2x2x2 with spacing (2, 3, 5) and a random 24^3 volume.
  Volume<std::uint8_t> t({2, 2, 2}, {2, 3, 5});
  const std::uint8_t lab[8] = {0, 1, 2, 0, 1, 2, 2, 1};
  for (int i = 0; i < 8; ++i) t[i] = lab[i];
  Volume<std::uint8_t> r({24, 24, 24}, {0.5, 0.7, 1.1});
  std::mt19937 rng(3);
  for (index_t i = 0; i < r.size(); ++i) r[i] = static_cast<std::uint8_t>(rng() % 3);
  for (const auto* v : {&t, &r}) {
    auto a = interface_areas(*v);
    for (int i = 0; i < 3; ++i) {
      int j = (i + 1) % 3, k = (i + 2) % 3;
      EXPECT_NEAR(a.area(i, j), 0.5 * (a.surface(i) + a.surface(j) - a.surface(k)), 1e-9 * a.surface(i));
      EXPECT_NEAR(a.facecount(i, j), 0.5 * (a.surface_facecount(i) + a.surface_facecount(j) - a.surface_facecount(k)),
                  1e-9 * a.surface_facecount(i));
    }
  }
  // The toy's face count by hand: faces between differing neighbours along x (area 15), y (10), z (6).
  auto a = interface_areas(t);
  // x-pairs: (0,1) (0,1) (2,0)... labels by index x + 2y + 4z.
  double by_hand = 0;
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 2; ++y) by_hand += (lab[0 + 2 * y + 4 * z] != lab[1 + 2 * y + 4 * z]) * 15.0;
  for (int z = 0; z < 2; ++z)
    for (int x = 0; x < 2; ++x) by_hand += (lab[x + 4 * z] != lab[x + 2 + 4 * z]) * 10.0;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x) by_hand += (lab[x + 2 * y] != lab[x + 2 * y + 4]) * 6.0;
  EXPECT_DOUBLE_EQ(a.surface_facecount(0) + a.surface_facecount(1) + a.surface_facecount(2), 2 * by_hand);
}

namespace {

// AM sphere of radius r centred between voxel centres (no voxel on the equator), an SE shell of
// thickness `shell` above the equator (z > centre), `below` beneath it.
LabelVolume capped_sphere(double r, double shell, std::uint8_t below, Vec3 spacing = {1, 1, 1}) {
  index_t n = static_cast<index_t>(2 * (r + shell) + 6);
  Volume<std::uint8_t> v({n, n, n}, spacing);
  Vec3 c{(n / 2.0 - 0.5) * spacing[0] + 0.13, (n / 2.0 - 0.5) * spacing[1] - 0.21, (n / 2.0 - 0.5) * spacing[2]};
  const Vec3 h = spacing;
  for (index_t z = 0; z < n; ++z)
    for (index_t y = 0; y < n; ++y)
      for (index_t x = 0; x < n; ++x) {
        double dx = x * h[0] - c[0], dy = y * h[1] - c[1], dz = z * h[2] - c[2];
        double rr = std::sqrt(dx * dx + dy * dy + dz * dz);
        if (rr <= r) v(x, y, z) = 2;
        else if (rr <= r + shell) v(x, y, z) = dz > 0 ? 1 : below;
      }
  return LabelVolume(std::move(v), pore_se_am());
}

}  // namespace

TEST(ContactArea, HalfCappedSphereIsHalf) {
  for (double r : {10.0, 14.0}) {
    auto c = contact_area(capped_sphere(r, 4, 0));
    EXPECT_NEAR(c.fraction, 0.5, 0.02) << "r=" << r;
    EXPECT_NEAR(c.am_surface_um2 / (4 * M_PI * r * r), 1.0, 0.02);
  }
}

TEST(ContactArea, AllSeIsOneNoSeIsZero) {
  // SE all around (below = se); pore all around (no SE voxels at all).
  auto all = contact_area(capped_sphere(10, 3, 1));
  EXPECT_DOUBLE_EQ(all.fraction, 1.0);
  auto lv = capped_sphere(10, 3, 0);
  for (auto& x : lv.storage())
    if (x == 1) x = 0;
  EXPECT_DOUBLE_EQ(contact_area(lv).fraction, 0.0);
  // Pore beneath, SE above, and AM–AM contact with a second particle does not count as surface.
  auto mixed = capped_sphere(10, 3, 0);
  EXPECT_NEAR(contact_area(mixed).fraction, 0.5, 0.02);
}

TEST(ContactArea, NeedsActiveAndElectrolyteRoles) {
  LabelVolume lv(Volume<std::uint8_t>({4, 4, 4}), PhaseTable({{"pore", 0, Role::pore}, {"x", 1, Role::other}}));
  EXPECT_THROW(contact_area(lv), InputError);
}

TEST(ContactArea, PerParticleFractions) {
  // Two AM spheres in one image: the left one fully in SE, the right one half capped in pore;
  // a third particle cut by the border.
  Volume<std::uint8_t> v({60, 30, 30});
  Volume<std::uint32_t> ids({60, 30, 30});
  for (index_t z = 0; z < 30; ++z)
    for (index_t y = 0; y < 30; ++y)
      for (index_t x = 0; x < 60; ++x) {
        auto in = [&](double cx, double cy, double cz, double r) {
          return (x - cx) * (x - cx) + (y - cy) * (y - cy) + (z - cz) * (z - cz) <= r * r;
        };
        if (in(14.5, 14.5, 14.5, 12)) v(x, y, z) = 1;              // SE shell, whole
        if (in(44.5, 14.5, 14.5, 12) && z > 14.5) v(x, y, z) = 1;  // SE upper cap
        if (in(14.5, 14.5, 14.5, 9)) v(x, y, z) = 2, ids(x, y, z) = 1;
        if (in(44.5, 14.5, 14.5, 9)) v(x, y, z) = 2, ids(x, y, z) = 2;
        if (in(59, 0, 0, 3)) v(x, y, z) = 2, ids(x, y, z) = 3;
      }
  LabelVolume lv(std::move(v), pore_se_am());
  auto parts = particle_contact_areas(lv, ids);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].id, 1u);
  EXPECT_DOUBLE_EQ(parts[0].fraction, 1.0);
  EXPECT_FALSE(parts[0].touches_border);
  EXPECT_NEAR(parts[1].fraction, 0.5, 0.02);
  EXPECT_NEAR(parts[1].surface_um2 / (4 * M_PI * 81), 1.0, 0.05);
  EXPECT_TRUE(parts[2].touches_border);
  EXPECT_DOUBLE_EQ(parts[2].fraction, 0.0);
}

TEST(TriplePhaseBoundary, HandCountedToyCases) {
  // 2x2x2, 6 interior edges (one along each axis per layer). Labels by index x + 2y + 4z.
  auto tpb = [](std::array<std::uint8_t, 8> lab, Vec3 h = {1, 1, 1}) {
    Volume<std::uint8_t> v({2, 2, 2}, h);
    for (int i = 0; i < 8; ++i) v[i] = lab[i];
    return triple_phase_boundary(v, 0, 1, 2);
  };
  // Each face-plane of four voxels (every x, y and z layer) holds all three phases: 6 of 6.
  auto all = tpb({0, 1, 2, 0, 1, 2, 0, 1});
  EXPECT_EQ(all.interior_edges, 6);
  EXPECT_EQ(all.edges, 6);
  EXPECT_DOUBLE_EQ(all.edge_fraction, 1.0);
  // Only the z = 1 layer mixes the phases: its z-edge, plus the x- and y-edges whose layers
  // contain (0,0,1)=1, (1,0,1)=2 ... hand count: z-edge of layer 1; x=0 layer {0,0,1,0}: no;
  // x=1 layer {0,0,2,0}... see below.
  auto one = tpb({0, 0, 0, 0, 1, 2, 0, 0});  // layer z=1: (0,0)=1 (1,0)=2 (0,1)=0 (1,1)=0
  // z-edges: layer 0 {0,0,0,0} no, layer 1 {1,2,0,0} yes. x-edges (layer x): x=0 {0,0,1,0} no,
  // x=1 {0,0,2,0} no. y-edges (layer y): y=0 {0,0,1,2} no (no 0? has 0) -> {0,0,1,2} yes; y=1 {0,0,0,0} no.
  EXPECT_EQ(one.edges, 2);
  EXPECT_DOUBLE_EQ(one.edge_fraction, 1.0 / 3.0);
  // Lengths follow the edge axis: z-edge 5 µm, y-edge 3 µm, volume 8·30 µm³.
  auto scaled = tpb({0, 0, 0, 0, 1, 2, 0, 0}, {2, 3, 5});
  EXPECT_DOUBLE_EQ(scaled.length_um, 8.0);
  EXPECT_DOUBLE_EQ(scaled.density_um_per_um3, 8.0 / 240.0);
  // 2-D 3x3 (one plane, TauFactor's 2-D case): 4 interior vertices of which one is triple -> 0.25.
  Volume<std::uint8_t> flat({3, 3, 2});
  const std::uint8_t img[9] = {0, 0, 0, 0, 1, 2, 0, 1, 1};
  for (int z = 0; z < 2; ++z)
    for (int i = 0; i < 9; ++i) flat[i + 9 * z] = img[i];
  auto f = triple_phase_boundary(flat, 0, 1, 2);
  // z-edges: 4 per layer... our interior edges run along z between the two layers' plane: the 2x2
  // windows of the 3x3 image, each counted once per z-layer (2 layers): windows {0,0,0,1} {0,0,1,2}
  // {0,1,0,1} {1,2,1,1}: one triple window -> 2 of 8 z-edges; x- and y-edges see two voxels of one
  // row over two layers with identical rows: never three phases... {0,2}x2 no. So 2 triple edges.
  EXPECT_EQ(f.edges, 2);
  long long zedges = 3 * 3 * 2 - 3 * 2 * 2 - 3 * 2 * 2 + 2 * 2 * 2;  // = 2
  (void)zedges;
  EXPECT_DOUBLE_EQ(static_cast<double>(f.edges) / 8.0, 0.25);
}
