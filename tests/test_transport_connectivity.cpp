// face_reachability on constructed cases, and against a plain breadth-first search on
// random masks for every connectivity, axis and periodic setting.
#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "core/error.h"
#include "metrics/face_connectivity.h"
#include "metrics/phase_fractions.h"

namespace vp {
namespace {

Volume<std::uint8_t> empty_mask(index_t nx, index_t ny, index_t nz) { return Volume<std::uint8_t>({nx, ny, nz}); }

FaceConnectivityOptions along(int axis, int connectivity = 6) {
  FaceConnectivityOptions o;
  o.axis = axis;
  o.connectivity = connectivity;
  return o;
}

TEST(FaceConnectivity, StraightColumnPercolates) {
  auto m = empty_mask(5, 5, 10);
  for (index_t z = 0; z < 10; ++z) m(2, 3, z) = 1;
  FaceReach r = face_reachability(m, along(2));
  EXPECT_EQ(r.phase_voxels, 10);
  EXPECT_EQ(r.percolating, 10);
  EXPECT_EQ(r.dead_end, 0);
  EXPECT_EQ(r.isolated, 0);
  EXPECT_EQ(r.flags(2, 3, 4), kInPhase | kFromLow | kFromHigh);
  EXPECT_EQ(r.flags(0, 0, 0), 0);
  // Across the column there is no path between the x faces.
  FaceReach rx = face_reachability(m, along(0));
  EXPECT_EQ(rx.percolating, 0);
  EXPECT_EQ(rx.isolated, 10);
}

TEST(FaceConnectivity, DeadEndAndIsolatedCounts) {
  // Validation case "dead end": shape (10, 50, 50), img[:8, 25, 25] = 1, along z.
  auto m = empty_mask(50, 50, 10);
  for (index_t z = 0; z < 8; ++z) m(25, 25, z) = 1;
  m(3, 3, 5) = 1;                                     // a floating voxel
  for (index_t z = 6; z < 10; ++z) m(10, 10, z) = 1;  // dead end from the high face
  FaceReach r = face_reachability(m, along(2));
  EXPECT_EQ(r.phase_voxels, 13);
  EXPECT_EQ(r.from_low, 8);
  EXPECT_EQ(r.from_high, 4);
  EXPECT_EQ(r.percolating, 0);
  EXPECT_EQ(r.dead_end, 12);
  EXPECT_EQ(r.isolated, 1);
  EXPECT_FALSE(r.percolates());
  EXPECT_EQ(r.flags(25, 25, 0), kInPhase | kFromLow);
  EXPECT_EQ(r.flags(10, 10, 6), kInPhase | kFromHigh);
  EXPECT_EQ(r.flags(3, 3, 5), kInPhase);
}

TEST(FaceConnectivity, DiagonalNeedsCornerConnectivity) {
  auto m = empty_mask(8, 8, 8);
  for (index_t i = 0; i < 8; ++i) m(i, i, i) = 1;  // corner-to-corner chain
  EXPECT_EQ(face_reachability(m, along(2, 6)).percolating, 0);
  EXPECT_EQ(face_reachability(m, along(2, 18)).percolating, 0);
  EXPECT_EQ(face_reachability(m, along(2, 26)).percolating, 8);
  auto e = empty_mask(8, 3, 8);
  for (index_t i = 0; i < 8; ++i) e(i, 1, i) = 1;  // edge-to-edge chain in the xz plane
  EXPECT_EQ(face_reachability(e, along(2, 6)).percolating, 0);
  EXPECT_EQ(face_reachability(e, along(2, 18)).percolating, 8);
  EXPECT_EQ(face_reachability(e, along(0, 26)).percolating, 8);
}

TEST(FaceConnectivity, PeriodicSidesJoinButTransportFacesDoNot) {
  // Two columns along z at x = 0 (z 0..4) and x = 5 (z 4..9): joined only through the x wrap.
  auto m = empty_mask(6, 2, 10);
  for (index_t z = 0; z <= 4; ++z) m(0, 0, z) = 1;
  for (index_t z = 4; z < 10; ++z) m(5, 0, z) = 1;
  FaceConnectivityOptions o = along(2);
  EXPECT_EQ(face_reachability(m, o).percolating, 0);
  o.periodic = {true, false, false};
  FaceReach r = face_reachability(m, o);
  EXPECT_EQ(r.percolating, 11);
  EXPECT_EQ(r.dead_end, 0);
  // Periodic flag on the transport axis is ignored: the z faces are inlet and outlet.
  auto c = empty_mask(2, 2, 10);
  for (index_t z = 0; z < 3; ++z) c(0, 0, z) = 1;
  for (index_t z = 7; z < 10; ++z) c(0, 0, z) = 1;
  FaceConnectivityOptions oz = along(2);
  oz.periodic = {false, false, true};
  EXPECT_EQ(face_reachability(c, oz).percolating, 0);
  EXPECT_EQ(face_reachability(c, oz).dead_end, 6);
}

TEST(FaceConnectivity, LabelOverloadSelectsPhases) {
  Volume<std::uint8_t> labels({4, 4, 6});
  for (index_t z = 0; z < 6; ++z) labels(1, 1, z) = z < 3 ? 2 : 5;  // two phases in series
  EXPECT_EQ(face_reachability(labels, std::vector<int>{2}, along(2)).percolating, 0);
  EXPECT_EQ(face_reachability(labels, std::vector<int>{2, 5}, along(2)).percolating, 6);
  Volume<std::uint8_t> m = phase_mask(labels, {5});
  EXPECT_EQ(m(1, 1, 4), 1);
  EXPECT_EQ(m(1, 1, 1), 0);
}

TEST(FaceConnectivity, RejectsBadOptions) {
  auto m = empty_mask(3, 3, 3);
  EXPECT_THROW(face_reachability(m, along(3)), InputError);
  EXPECT_THROW(face_reachability(m, along(2, 8)), InputError);
  EXPECT_THROW(face_reachability(Volume<std::uint8_t>(), along(2)), InputError);
  EXPECT_THROW(phase_mask(m, {300}), InputError);
}

// Reference: breadth-first search from each face.
std::vector<std::uint8_t> bfs_flags(const Volume<std::uint8_t>& m, const FaceConnectivityOptions& o) {
  const Dims d = m.dims();
  const index_t n[3] = {d.x, d.y, d.z};
  std::vector<std::uint8_t> out(static_cast<std::size_t>(d.count()), 0);
  for (index_t i = 0; i < d.count(); ++i)
    if (m[i]) out[i] = kInPhase;
  for (int side = 0; side < 2; ++side) {
    const std::uint8_t bit = side == 0 ? kFromLow : kFromHigh;
    std::deque<std::array<index_t, 3>> queue;
    for (index_t z = 0; z < d.z; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          std::array<index_t, 3> p{x, y, z};
          if (p[o.axis] != (side == 0 ? 0 : n[o.axis] - 1) || !m(x, y, z)) continue;
          out[m.index(x, y, z)] |= bit;
          queue.push_back(p);
        }
    while (!queue.empty()) {
      auto p = queue.front();
      queue.pop_front();
      for (int dz = -1; dz <= 1; ++dz)
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            int l1 = std::abs(dx) + std::abs(dy) + std::abs(dz);
            if (l1 == 0 || (o.connectivity == 6 && l1 > 1) || (o.connectivity == 18 && l1 > 2)) continue;
            std::array<index_t, 3> q{p[0] + dx, p[1] + dy, p[2] + dz};
            bool ok = true;
            for (int k = 0; k < 3; ++k)
              if (q[k] < 0 || q[k] >= n[k]) {
                if (o.periodic[k] && k != o.axis) q[k] = (q[k] + n[k]) % n[k];
                else ok = false;
              }
            if (!ok || !m(q[0], q[1], q[2])) continue;
            auto& f = out[m.index(q[0], q[1], q[2])];
            if (f & bit) continue;
            f |= bit;
            queue.push_back(q);
          }
    }
  }
  return out;
}

TEST(FaceConnectivity, MatchesBreadthFirstSearchOnRandomMasks) {
  std::mt19937 rng(12345);
  int cases = 0;
  for (int connectivity : {6, 18, 26})
    for (int axis = 0; axis < 3; ++axis)
      for (int periodic = 0; periodic < 2; ++periodic)
        for (double fill : {0.25, 0.35, 0.5}) {
          Volume<std::uint8_t> m({13, 11, 70});  // 70 z-planes: more than one slab
          std::bernoulli_distribution coin(connectivity == 6 ? fill + 0.05 : fill - 0.12);
          for (index_t i = 0; i < m.size(); ++i) m[i] = coin(rng);
          FaceConnectivityOptions o = along(axis, connectivity);
          if (periodic) o.periodic = {true, true, true};
          FaceReach r = face_reachability(m, o);
          std::vector<std::uint8_t> ref = bfs_flags(m, o);
          index_t mismatches = 0, both = 0;
          for (index_t i = 0; i < m.size(); ++i) {
            mismatches += r.flags[i] != ref[i];
            both += FaceReach::is_percolating(ref[i]);
          }
          EXPECT_EQ(mismatches, 0) << "conn " << connectivity << " axis " << axis << " periodic " << periodic;
          EXPECT_EQ(r.percolating, both);
          ++cases;
        }
  EXPECT_EQ(cases, 54);
}

}  // namespace
}  // namespace vp
