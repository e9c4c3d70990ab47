// Exactness of the voxel conductivity solve on cases with analytic or reference answers
// (shared/notes/validation-cases.md), bounds on random structures, and determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <tbb/task_arena.h>

#include "core/error.h"
#include "metrics/transport/conductivity_solve.h"
#include "test_transport_blobs.h"

namespace vp {
namespace {

ConductivityTable only(int label, double k = 1.0) {
  ConductivityTable t{};
  t[label] = k;
  return t;
}

// Exactness cases solve to a tight tolerance; the default (1e-6) is tested on random structures.
TransportOptions along(int axis, double tolerance = 1e-10) {
  TransportOptions o;
  o.axis = axis;
  o.tolerance = tolerance;
  return o;
}

TEST(TransportSolve, UniformBlockIsExactOnEveryAxis) {
  Volume<std::uint8_t> v({10, 12, 14}, {1, 1, 1}, 1);
  for (int axis = 0; axis < 3; ++axis) {
    TransportResult r = solve_transport(v, only(1), along(axis));
    EXPECT_EQ(r.status, "ok");
    EXPECT_NEAR(r.tau, 1.0, 1e-8) << axis_name(axis);
    EXPECT_NEAR(r.sigma_eff, 1.0, 1e-8);
    EXPECT_NEAR(r.macmullin, 1.0, 1e-8);
    EXPECT_DOUBLE_EQ(r.conducting_fraction, 1.0);
    EXPECT_DOUBLE_EQ(r.percolating_fraction, 1.0);
    EXPECT_LE(r.flux_balance, 1e-4);
    // The potential profile of a uniform medium is linear: V = 1 − (t + ½)/N.
    ASSERT_EQ(r.profile.size(), static_cast<std::size_t>(v.dims()[axis]));
    const double N = static_cast<double>(v.dims()[axis]);
    for (std::size_t t = 0; t < r.profile.size(); ++t) {
      EXPECT_NEAR(r.profile[t].potential_mean, 1.0 - (static_cast<double>(t) + 0.5) / N, 1e-9);
      EXPECT_NEAR(r.profile[t].current_in, r.flux_in, 1e-9 * r.flux_in);
    }
  }
}

TEST(TransportSolve, ConductivityScalesLinearly) {
  Volume<std::uint8_t> v({8, 8, 8}, {1, 1, 1}, 3);
  TransportResult r = solve_transport(v, only(3, 2.5), along(2));
  EXPECT_NEAR(r.sigma_eff, 2.5, 1e-8);
  EXPECT_NEAR(r.tau, 1.0, 1e-8);
  EXPECT_NEAR(r.macmullin, 1.0, 1e-8);
}

// k = 10 on labels 1, 1 on labels 2.
ConductivityTable ten_and_one() {
  ConductivityTable t{};
  t[1] = 10;
  t[2] = 1;
  return t;
}

TEST(TransportSolve, SeriesHalves) {
  Volume<std::uint8_t> v({6, 7, 20});
  for (index_t z = 0; z < 20; ++z)
    for (index_t y = 0; y < 7; ++y)
      for (index_t x = 0; x < 6; ++x) v(x, y, z) = z < 10 ? 1 : 2;
  TransportResult r = solve_transport(v, ten_and_one(), along(2));
  EXPECT_EQ(r.status, "ok");
  EXPECT_NEAR(r.sigma_eff, 1.0 / (0.5 / 10 + 0.5 / 1), 1e-6 * 1.8181818);
  EXPECT_NEAR(r.sigma_eff, 1.8181818181818181, 2e-6);
}

TEST(TransportSolve, ParallelHalves) {
  Volume<std::uint8_t> v({20, 7, 12});
  for (index_t z = 0; z < 12; ++z)
    for (index_t y = 0; y < 7; ++y)
      for (index_t x = 0; x < 20; ++x) v(x, y, z) = x < 10 ? 1 : 2;
  TransportResult r = solve_transport(v, ten_and_one(), along(2));
  EXPECT_EQ(r.status, "ok");
  EXPECT_NEAR(r.sigma_eff, 5.5, 5.5e-8);
  // Multi-phase τ = Σ ε_i σ_i / σ_eff = (0.5·10 + 0.5·1)/5.5 = 1; N_M = σ_max/σ_eff.
  EXPECT_NEAR(r.tau, 1.0, 1e-8);
  EXPECT_NEAR(r.macmullin, 10.0 / 5.5, 1e-7);
}

TEST(TransportSolve, TenSeriesLayers) {
  Volume<std::uint8_t> v({5, 5, 30});
  ConductivityTable k{};
  for (int l = 1; l <= 10; ++l) k[l] = l;
  for (index_t z = 0; z < 30; ++z)
    for (index_t y = 0; y < 5; ++y)
      for (index_t x = 0; x < 5; ++x) v(x, y, z) = static_cast<std::uint8_t>(z / 3 + 1);
  double inverse_sum = 0;
  for (int l = 1; l <= 10; ++l) inverse_sum += 1.0 / l;
  TransportResult r = solve_transport(v, k, along(2));
  EXPECT_EQ(r.status, "ok");
  EXPECT_NEAR(r.sigma_eff, 10.0 / inverse_sum, 1e-6 * 3.414171);
  EXPECT_NEAR(r.sigma_eff, 3.414171, 1e-6);  // the reference value, rounded to 7 digits
  // Along the layers they act in parallel: the arithmetic mean 5.5.
  EXPECT_NEAR(solve_transport(v, k, along(0)).sigma_eff, 5.5, 5.5e-7);
}

TEST(TransportSolve, MultiPhaseParallelStripsHaveTauOne) {
  // Strips with k = 1, 0.5, 2 parallel to z: τ = Σ ε_i k_i / σ_eff = 1.
  Volume<std::uint8_t> v({9, 4, 10});
  ConductivityTable k{};
  k[1] = 1, k[2] = 0.5, k[3] = 2;
  for (index_t z = 0; z < 10; ++z)
    for (index_t y = 0; y < 4; ++y)
      for (index_t x = 0; x < 9; ++x) v(x, y, z) = static_cast<std::uint8_t>(1 + x / 3);
  TransportResult r = solve_transport(v, k, along(2));
  EXPECT_NEAR(r.sigma_eff, (1 + 0.5 + 2) / 3.0, 1e-8);
  EXPECT_NEAR(r.tau, 1.0, 1e-8);
}

TEST(TransportSolve, SlantedStrip) {
  // numpy (z, y, x) = (20, 21, 21); img[i, i:i+2, i:i+2] = 1; transport along z.
  Volume<std::uint8_t> v({21, 21, 20});
  for (index_t i = 0; i < 20; ++i)
    for (index_t y = i; y < i + 2; ++y)
      for (index_t x = i; x < i + 2; ++x) v(x, y, i) = 1;
  TransportResult r = solve_transport(v, only(1), along(2));
  EXPECT_EQ(r.status, "ok");
  EXPECT_NEAR(r.conducting_fraction, 80.0 / (21 * 21 * 20), 1e-15);
  EXPECT_NEAR(r.tau, 7.51667, 5e-5);
}

TEST(TransportSolve, StraightChannelsHaveTauOne) {
  // A 10×10 column of ones along z in a 20³ block: τ = 1, ε = 0.25.
  Volume<std::uint8_t> v({20, 20, 20});
  for (index_t z = 0; z < 20; ++z)
    for (index_t y = 5; y < 15; ++y)
      for (index_t x = 5; x < 15; ++x) v(x, y, z) = 1;
  TransportResult r = solve_transport(v, only(1), along(2));
  EXPECT_NEAR(r.conducting_fraction, 0.25, 1e-15);
  EXPECT_NEAR(r.tau, 1.0, 1e-8);
  EXPECT_NEAR(r.sigma_eff, 0.25, 1e-8);
  // Several thin channels, one of them only one voxel wide.
  Volume<std::uint8_t> c({9, 9, 16});
  for (index_t z = 0; z < 16; ++z) c(0, 0, z) = c(4, 4, z) = c(5, 4, z) = c(8, 2, z) = 1;
  TransportResult rc = solve_transport(c, only(1), along(2));
  EXPECT_NEAR(rc.tau, 1.0, 1e-8);
  EXPECT_NEAR(rc.sigma_eff, 4.0 / 81.0, 1e-9);
  // Across the channels nothing percolates.
  EXPECT_EQ(solve_transport(c, only(1), along(0)).status, "not_percolating");
}

TEST(TransportSolve, DeadEndAndNonPercolatingGiveZero) {
  // numpy (10, 50, 50); img[:8, 25, 25] = 1; along z.
  Volume<std::uint8_t> dead({50, 50, 10});
  for (index_t z = 0; z < 8; ++z) dead(25, 25, z) = 1;
  TransportResult r = solve_transport(dead, only(1), along(2));
  EXPECT_EQ(r.status, "not_percolating");
  EXPECT_EQ(r.sigma_eff, 0.0);
  EXPECT_TRUE(std::isinf(r.tau));
  EXPECT_TRUE(std::isinf(r.macmullin));
  EXPECT_NEAR(r.conducting_fraction, 8.0 / 25000.0, 1e-15);
  EXPECT_EQ(r.percolating_fraction, 0.0);
  EXPECT_EQ(r.iterations, 0);
  // Only the first two z-layers conducting.
  Volume<std::uint8_t> layers({8, 8, 10});
  for (index_t z = 0; z < 2; ++z)
    for (index_t y = 0; y < 8; ++y)
      for (index_t x = 0; x < 8; ++x) layers(x, y, z) = 1;
  TransportResult rl = solve_transport(layers, only(1), along(2));
  EXPECT_EQ(rl.status, "not_percolating");
  EXPECT_EQ(rl.sigma_eff, 0.0);
  EXPECT_TRUE(std::isinf(rl.tau));
  // ... while along x and y they percolate: σ_eff = ε = 0.2, τ = 1.
  EXPECT_NEAR(solve_transport(layers, only(1), along(0)).sigma_eff, 0.2, 1e-9);
  // No conducting voxel at all.
  EXPECT_EQ(solve_transport(layers, only(7), along(2)).status, "not_percolating");
}

TEST(TransportSolve, DeadEndsAttachedToAPathCarryNoCurrent) {
  // A straight path plus a side branch ending blind: σ_eff as for the path alone.
  Volume<std::uint8_t> v({6, 6, 12});
  for (index_t z = 0; z < 12; ++z) v(1, 1, z) = 1;
  for (index_t x = 2; x < 6; ++x) v(x, 1, 6) = 1;  // branch
  for (index_t z = 0; z < 5; ++z) v(4, 4, z) = 1;  // dead end from the inlet
  TransportResult r = solve_transport(v, only(1), along(2));
  EXPECT_NEAR(r.sigma_eff, 1.0 / 36.0, 1e-9);
  EXPECT_NEAR(r.conducting_fraction, 21.0 / 432.0, 1e-15);
  EXPECT_NEAR(r.percolating_fraction, 16.0 / 432.0, 1e-15);
}

// Current through a three-voxel circuit with anisotropic spacing, solved by hand.
// dims (2, 1, 2) along z: voxels a = (0,0,0), b = (1,0,0), c = (1,0,1) conduct.
TEST(TransportSolve, AnisotropicSpacingMatchesHandSolvedCircuit) {
  const Vec3 h{0.7, 1.9, 2.6};
  Volume<std::uint8_t> v({2, 1, 2}, h);
  v(0, 0, 0) = v(1, 0, 0) = v(1, 0, 1) = 1;
  const double k = 3.0;
  const double Gx = k * h[1] * h[2] / h[0];  // a–b
  const double Gz = k * h[0] * h[1] / h[2];  // b–c
  const double Gb = 2 * Gz;                  // voxel centre to electrode
  // Nodes a, b, c: Gb(1−Va) = Gx(Va−Vb); Gb(1−Vb) + Gx(Va−Vb) = Gz(Vb−Vc); Gz(Vb−Vc) = Gb·Vc.
  // From the first: Va = (Gb + Gx·Vb)/(Gb + Gx); from the last: Vc = Gz·Vb/(Gz + Gb).
  const double ca = Gx / (Gb + Gx), da = Gb / (Gb + Gx);  // Va = da + ca·Vb
  const double cc = Gz / (Gz + Gb);                       // Vc = cc·Vb
  const double Vb = (Gb + Gx * da) / (Gb + Gx - Gx * ca + Gz - Gz * cc);
  const double I = Gb * cc * Vb;
  const double L = 2 * h[2], A = 2 * h[0] * h[1];
  TransportResult r = solve_transport(v, only(1, k), along(2));
  EXPECT_EQ(r.status, "ok");
  EXPECT_NEAR(r.sigma_eff, I * L / A, 1e-7 * I * L / A);
  EXPECT_NEAR(r.length_um, L, 1e-12);
  EXPECT_NEAR(r.area_um2, A, 1e-12);
}

TEST(TransportSolve, AnisotropicSpacingLeavesIntrinsicAnswersUnchanged) {
  const Vec3 h{1.0, 2.0, 3.5};
  Volume<std::uint8_t> block({7, 6, 5}, h, 1);
  for (int axis = 0; axis < 3; ++axis) EXPECT_NEAR(solve_transport(block, only(1), along(axis)).tau, 1.0, 1e-8);
  Volume<std::uint8_t> series({4, 5, 20}, h);
  for (index_t z = 0; z < 20; ++z)
    for (index_t y = 0; y < 5; ++y)
      for (index_t x = 0; x < 4; ++x) series(x, y, z) = z < 10 ? 1 : 2;
  EXPECT_NEAR(solve_transport(series, ten_and_one(), along(2)).sigma_eff, 1.0 / (0.5 / 10 + 0.5), 2e-6);
  // Scaling every spacing by one factor changes nothing.
  Volume<std::uint8_t> blobs = test::random_blobs({24, 20, 16}, 0.45, 3);
  blobs.spacing_um = {0.5, 0.5, 0.5};
  const double s1 = solve_transport(blobs, only(1), along(2)).sigma_eff;
  blobs.spacing_um = {3, 3, 3};
  const double s2 = solve_transport(blobs, only(1), along(2)).sigma_eff;
  EXPECT_NEAR(s1, s2, 1e-6 * s1);
}

TEST(TransportSolve, PeriodicSidesConnectAcrossTheWrap) {
  // Column at x = 0 for z ≤ 4 and at x = 5 for z ≥ 4: joined only through the periodic x wrap.
  Volume<std::uint8_t> v({6, 3, 10});
  for (index_t z = 0; z <= 4; ++z) v(0, 1, z) = 1;
  for (index_t z = 4; z < 10; ++z) v(5, 1, z) = 1;
  EXPECT_EQ(solve_transport(v, only(1), along(2)).status, "not_percolating");
  TransportOptions o = along(2);
  o.periodic = true;
  TransportResult r = solve_transport(v, only(1), o);
  EXPECT_EQ(r.status, "ok");
  // Series path: inlet ½ + 4 faces + the wrap face + 5 faces + outlet ½ voxel (k = 1, h = 1):
  // resistance 11, so I = 1/11 and σ_eff = I·L/A = (1/11)·10/18.
  EXPECT_NEAR(r.sigma_eff, 10.0 / (11.0 * 18.0), 1e-9);
  // A periodic uniform block of odd width (three-colour smoothing) is still exact.
  Volume<std::uint8_t> block({7, 5, 9}, {1, 1, 1}, 1);
  EXPECT_NEAR(solve_transport(block, only(1), o).tau, 1.0, 1e-8);
}

TEST(TransportSolve, OneConductivityMatchesTwoEqualPhasesAcrossPeriodicWraps) {
  // One conductivity stores the code as bits, which the row kernels unpack and keep per thread
  // for a pass, a slot per y and z mod 4; two labels of the same conductivity store bytes. With
  // 5 or 6 slices along a periodic z, the row across the wrap falls in the slot of a row of the
  // same kernel call (z = 0's z − 1 is z = 4 or 5): it must not take it.
  for (const index_t nz : {5, 6}) {
    const Volume<std::uint8_t> one = test::random_blobs({40, 9, nz}, 0.75, 28, 1);
    Volume<std::uint8_t> two = one;
    for (index_t i = 0; i < two.size(); ++i)
      if (two[i] == 1 && i % 3 == 0) two[i] = 2;
    TransportOptions o = along(0);
    o.periodic = true;
    ConductivityTable k = only(1);
    k[2] = 1.0;
    const TransportResult a = solve_transport(one, only(1), o), b = solve_transport(two, k, o);
    ASSERT_EQ(a.status, "ok");
    EXPECT_NEAR(a.sigma_eff, b.sigma_eff, 1e-12 * b.sigma_eff) << nz << " slices";
  }
}

TEST(TransportSolve, RandomStructuresRespectHashinShtrikmanAndWiener) {
  int checked = 0;
  for (double phi : {0.3, 0.4, 0.5, 0.6})
    for (std::uint64_t seed : {1u, 2u}) {
      Volume<std::uint8_t> v = test::random_blobs({32, 32, 32}, phi, seed);
      for (int axis = 0; axis < 3; ++axis) {
        TransportResult r = solve_transport(v, only(1), along(axis, 1e-6));
        const double eps = r.conducting_fraction;
        ASSERT_EQ(r.status, "ok");
        EXPECT_LE(r.sigma_eff, 2 * eps / (3 - eps)) << "phi " << phi << " seed " << seed << " axis " << axis;
        EXPECT_LE(r.sigma_eff, eps);
        EXPECT_GT(r.sigma_eff, 0.0);
        EXPECT_GE(r.tau, 1.0);
        EXPECT_LE(r.flux_balance, 1e-4);
        EXPECT_LE(r.residual, 1e-6);
        ++checked;
      }
    }
  EXPECT_EQ(checked, 24);
}

TEST(TransportSolve, DeterministicForAGivenThreadCount) {
  Volume<std::uint8_t> v = test::random_blobs({48, 40, 36}, 0.4, 11);
  auto solve_with = [&](int threads) {
    tbb::task_arena arena(threads);
    TransportResult r;
    arena.execute([&] { r = solve_transport(v, only(1), along(2)); });
    return r;
  };
  const TransportResult a = solve_with(2), b = solve_with(2);
  EXPECT_EQ(a.sigma_eff, b.sigma_eff);  // bit-identical
  EXPECT_EQ(a.iterations, b.iterations);
  EXPECT_EQ(a.residual, b.residual);
  // Reductions use fixed blocks, so even another thread count gives the same bits.
  EXPECT_EQ(solve_with(1).sigma_eff, a.sigma_eff);
}

// Contrast 1e4 (SE 1 / AM 1e-4) near the SE percolation threshold: a good conductor joined
// to another only through the poor one. Aggregates that followed every coupling shorted them
// on the coarse levels (a 128³ phantom segmentation took 91–114 iterations); aggregates that
// follow strong couplings only keep it at binary-solve counts.
TEST(TransportSolve, HighContrastNearPercolationConvergesFast) {
  for (double phi : {0.25, 0.3}) {
    Volume<std::uint8_t> v = test::random_blobs({48, 48, 48}, phi, 7);
    for (index_t i = 0; i < v.size(); ++i) v[i] = v[i] ? 1 : 2;  // 1 = SE, 2 = AM
    ConductivityTable k{};
    k[1] = 1.0, k[2] = 1e-4;
    for (int axis = 0; axis < 3; ++axis) {
      TransportResult r = solve_transport(v, k, along(axis, 1e-6));
      ASSERT_EQ(r.status, "ok");
      EXPECT_LE(r.iterations, 15) << "phi " << phi << " axis " << axis;
      EXPECT_LE(r.residual, 1e-6);
      EXPECT_LE(r.flux_balance, 1e-4);
    }
  }
}

// A tortuous binary medium 4× longer along z, solved to 1e-10: the regime in which TauFactor's
// 500³ volume ends along z (the flux balance sends it past the 1e-6 residual). One Gauss-Seidel
// sweep each way on the fine level reduced the residual ≈ 4× per CG iteration (19 / 24 / 19
// iterations here); two sweeps (kFineSweeps, multigrid.cpp) ≈ 10× (13 / 14 / 14).
TEST(TransportSolve, TortuousBlobsConvergeFastToTightTolerance) {
  const Volume<std::uint8_t> v = test::random_blobs({32, 32, 128}, 0.3, 7);
  for (int axis = 0; axis < 3; ++axis) {
    TransportResult r = solve_transport(v, only(1), along(axis, 1e-10));
    ASSERT_EQ(r.status, "ok");
    EXPECT_LE(r.iterations, 15) << "axis " << axis;
  }
}

// Anisotropic voxels (FIB-SEM: slices 2–4× thicker than the pixels) make the couplings along
// the long axis 4–16× weaker; 2×2×2 coarsening then took 22 iterations on the bundled FIB-SEM
// sample and 41 on blobs at 0.5×0.5×2. Semi-coarsening (Grid::halves) keeps the binary count.
TEST(TransportSolve, AnisotropicVoxelsConvergeFast) {
  Volume<std::uint8_t> v = test::random_blobs({48, 48, 24}, 0.3, 11);
  for (index_t i = 0; i < v.size(); ++i) v[i] = v[i] ? 1 : 2;  // 1 = SE, 2 = AM
  ConductivityTable k{};
  k[1] = 1.0, k[2] = 1e-4;
  for (const Vec3 h : {Vec3{0.01, 0.01, 0.02}, Vec3{0.5, 0.5, 2.0}}) {
    v.spacing_um = h;
    for (int axis = 0; axis < 3; ++axis) {
      TransportResult r = solve_transport(v, k, along(axis, 1e-6));
      ASSERT_EQ(r.status, "ok");
      EXPECT_LE(r.iterations, 15) << "spacing " << h[2] << " axis " << axis;
    }
  }
  // Series layers along the long axis at 0.5×0.5×2: σ_eff is the harmonic mean, exactly.
  Volume<std::uint8_t> layers({12, 10, 16}, {0.5, 0.5, 2.0}, 0);
  for (index_t z = 0; z < 16; ++z)
    for (index_t y = 0; y < 10; ++y)
      for (index_t x = 0; x < 12; ++x) layers(x, y, z) = static_cast<std::uint8_t>(1 + z % 3);
  ConductivityTable three{};
  three[1] = 1.0, three[2] = 0.1, three[3] = 3.0;
  double resistance = 0;
  for (index_t z = 0; z < 16; ++z) resistance += 1.0 / three[static_cast<std::size_t>(1 + z % 3)];
  const TransportResult series = solve_transport(layers, three, along(2));
  EXPECT_NEAR(series.sigma_eff, 16.0 / resistance, 1e-8 * 16.0 / resistance);
}

TEST(TransportSolve, IterationCapGivesNotConverged) {
  Volume<std::uint8_t> v = test::random_blobs({32, 32, 32}, 0.35, 5);
  TransportOptions o = along(2, 1e-6);
  o.max_iterations = 1;
  TransportResult r = solve_transport(v, only(1), o);
  EXPECT_EQ(r.status, "not_converged");
  EXPECT_EQ(r.iterations, 1);
  EXPECT_GT(r.residual, o.tolerance);
}

TEST(TransportSolve, FieldsConserveCurrent) {
  Volume<std::uint8_t> v = test::random_blobs({24, 24, 24}, 0.5, 9);
  TransportOptions o = along(1);
  o.keep_fields = true;
  TransportResult r = solve_transport(v, only(1), o);
  ASSERT_TRUE(r.potential && r.current_density);
  EXPECT_EQ(r.potential->dims(), v.dims());
  for (const ProfileSlice& s : r.profile) EXPECT_NEAR(s.current_in, r.flux_in, 2e-4 * r.flux_in);
  float vmin = 1, vmax = 0;
  for (index_t i = 0; i < v.size(); ++i)
    if ((*r.current_density)[i] > 0) vmin = std::min(vmin, (*r.potential)[i]), vmax = std::max(vmax, (*r.potential)[i]);
  EXPECT_GT(vmin, 0.0f);  // maximum principle: potentials strictly between the electrodes
  EXPECT_LT(vmax, 1.0f);
}

// A caller that needs its labels no more hands them over: their buffer becomes the code volume
// (consumed), and every result is the same, bit for bit, with the fields on the labels' spacing.
TEST(TransportSolve, ConsumedLabelsGiveTheSameBits) {
  Volume<std::uint8_t> v = test::random_blobs({26, 22, 20}, 0.45, 13);
  for (index_t i = 0; i < v.size(); i += 7)
    if (v[i]) v[i] = 2;  // a second phase, 1e4 times poorer
  v.spacing_um = {0.5, 0.7, 0.6};
  ConductivityTable k = only(1);
  k[2] = 1e-4;
  TransportOptions o = along(0, 1e-6);
  o.keep_fields = true;
  const TransportResult a = solve_transport(v, k, o);
  Volume<std::uint8_t> copy = v;
  const TransportResult b = solve_transport(std::move(copy), k, o);
  EXPECT_TRUE(copy.empty());  // consumed: no second byte per voxel beside the codes
  EXPECT_EQ(a.status, "ok");
  EXPECT_EQ(a.sigma_eff, b.sigma_eff);
  EXPECT_EQ(a.residual, b.residual);
  EXPECT_EQ(a.flux_in, b.flux_in);
  EXPECT_EQ(a.flux_out, b.flux_out);
  EXPECT_EQ(a.iterations, b.iterations);
  ASSERT_EQ(a.profile.size(), b.profile.size());
  for (std::size_t t = 0; t < a.profile.size(); ++t) {
    EXPECT_EQ(a.profile[t].current_in, b.profile[t].current_in);
    EXPECT_EQ(a.profile[t].potential_mean, b.profile[t].potential_mean);
  }
  ASSERT_TRUE(b.potential && b.current_density);
  EXPECT_EQ(b.potential->spacing_um, v.spacing_um);
  for (index_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ((*a.potential)[i], (*b.potential)[i]);
    ASSERT_EQ((*a.current_density)[i], (*b.current_density)[i]);
  }
}

TEST(TransportSolve, RejectsBadInput) {
  Volume<std::uint8_t> v({4, 4, 4}, {1, 1, 1}, 1);
  EXPECT_THROW(solve_transport(v, only(1), along(3)), InputError);
  EXPECT_THROW(solve_transport(v, only(1, -1.0), along(2)), InputError);
  EXPECT_THROW(solve_transport(v, only(1, std::numeric_limits<double>::quiet_NaN()), along(2)), InputError);
  TransportOptions o;
  o.tolerance = 0;
  EXPECT_THROW(solve_transport(v, only(1), o), InputError);
  EXPECT_THROW(solve_transport(Volume<std::uint8_t>(), only(1), along(2)), InputError);
}

}  // namespace
}  // namespace vp
