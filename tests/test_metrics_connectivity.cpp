// Cluster labelling, Euler characteristic, topology and percolation fractions on constructed
// cases with exact answers, and labelling against a breadth-first search.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <queue>
#include <random>

#include "core/error.h"
#include "metrics/connectivity.h"

using namespace vp;

namespace {

// Cluster ids by breadth-first search from each unlabelled voxel in raster order: 1..count in
// raster order of each cluster's first voxel, as label_clusters numbers them.
std::vector<std::uint32_t> bfs_ids(const Volume<std::uint8_t>& m, int conn) {
  const Dims d = m.dims();
  std::vector<std::uint32_t> seen(static_cast<std::size_t>(m.size()), 0);
  std::uint32_t count = 0;
  for (index_t s = 0; s < m.size(); ++s) {
    if (!m[s] || seen[s]) continue;
    ++count;
    std::queue<index_t> q;
    q.push(s);
    seen[s] = count;
    while (!q.empty()) {
      index_t i = q.front();
      q.pop();
      index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      for (int dz = -1; dz <= 1; ++dz)
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            int l1 = std::abs(dx) + std::abs(dy) + std::abs(dz);
            if (l1 == 0 || (conn == 6 && l1 > 1) || (conn == 18 && l1 > 2)) continue;
            index_t nx = x + dx, ny = y + dy, nz = z + dz;
            if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
            index_t j = m.index(nx, ny, nz);
            if (m[j] && !seen[j]) seen[j] = count, q.push(j);
          }
    }
  }
  return seen;
}

Volume<std::uint8_t> ball(index_t n, double r_out, double r_in = -1) {
  Volume<std::uint8_t> m({n, n, n});
  double c = (n - 1) / 2.0;
  for (index_t z = 0; z < n; ++z)
    for (index_t y = 0; y < n; ++y)
      for (index_t x = 0; x < n; ++x) {
        double rr = std::sqrt((x - c) * (x - c) + (y - c) * (y - c) + (z - c) * (z - c));
        m(x, y, z) = rr <= r_out && rr > r_in;
      }
  return m;
}

Volume<std::uint8_t> torus(index_t n, double R, double r) {
  Volume<std::uint8_t> m({n, n, n});
  double c = (n - 1) / 2.0;
  for (index_t z = 0; z < n; ++z)
    for (index_t y = 0; y < n; ++y)
      for (index_t x = 0; x < n; ++x) {
        double q = std::sqrt((x - c) * (x - c) + (y - c) * (y - c)) - R;
        m(x, y, z) = q * q + (z - c) * (z - c) <= r * r;
      }
  return m;
}

}  // namespace

TEST(Clusters, TouchingByFaceEdgeCorner) {
  Volume<std::uint8_t> m({6, 6, 6});
  m(1, 1, 1) = 1;
  m(2, 2, 1) = 1;  // edge neighbour of (1,1,1)
  m(3, 3, 2) = 1;  // corner neighbour of (2,2,1)
  m(5, 5, 5) = 1;  // alone
  EXPECT_EQ(label_clusters(m, 6).count, 4u);
  EXPECT_EQ(label_clusters(m, 18).count, 3u);
  EXPECT_EQ(label_clusters(m, 26).count, 2u);
  auto c = label_clusters(m, 26);
  EXPECT_EQ(c.ids(1, 1, 1), 1u);  // raster order of first voxels
  EXPECT_EQ(c.ids(3, 3, 2), 1u);
  EXPECT_EQ(c.ids(5, 5, 5), 2u);
  EXPECT_EQ(c.voxels[1], 3);
  EXPECT_EQ(c.ids(0, 0, 0), 0u);
  EXPECT_THROW(label_clusters(m, 8), InputError);
}

TEST(Clusters, NeighbourOffsetsOfEachConnectivity) {
  for (auto [conn, max_l1] : {std::pair{6, 1}, {18, 2}, {26, 3}}) {
    const auto& offs = neighbour_offsets(conn);
    EXPECT_EQ(offs.size(), static_cast<std::size_t>(conn));
    for (const Offset& o : offs) {
      const int l1 = std::abs(o.dx) + std::abs(o.dy) + std::abs(o.dz);
      EXPECT_GE(l1, 1);
      EXPECT_LE(l1, max_l1);
    }
  }
  EXPECT_THROW(neighbour_offsets(8), InputError);
}

TEST(Clusters, MatchBreadthFirstSearchOnRandomVolumes) {
  // Ids and sizes, not only the count: the links are numbered in parallel over z-slabs, and a
  // cluster winding up and down across the slab boundaries (p = 0.3 and 0.5 percolate) must get
  // its first voxel's id everywhere.
  for (double p : {0.2, 0.3, 0.5})
    for (int conn : {6, 18, 26}) {
      Volume<std::uint8_t> m({23, 17, 40});  // 40 planes: several slabs
      std::mt19937 rng(static_cast<unsigned>(p * 100 + conn));
      std::bernoulli_distribution b(p);
      for (index_t i = 0; i < m.size(); ++i) m[i] = b(rng);
      auto c = label_clusters(m, conn);
      const std::vector<std::uint32_t> expected = bfs_ids(m, conn);
      EXPECT_EQ(c.count, *std::max_element(expected.begin(), expected.end())) << "p=" << p << " conn=" << conn;
      EXPECT_EQ(c.ids.storage(), expected) << "p=" << p << " conn=" << conn;
      std::vector<std::int64_t> sizes(c.count + 1, 0);
      for (std::uint32_t id : expected) sizes[id] += id != 0;
      EXPECT_EQ(c.voxels, sizes) << "p=" << p << " conn=" << conn;
    }
}

TEST(Euler, BallShellTorus) {
  for (int conn : {6, 26}) {
    EXPECT_EQ(euler_characteristic(ball(21, 8), conn), 1) << conn;
    EXPECT_EQ(euler_characteristic(ball(25, 10, 6), conn), 2) << conn;  // hollow shell
    EXPECT_EQ(euler_characteristic(torus(32, 9, 3.5), conn), 0) << conn;
  }
  // Two corner-touching voxels: one cube complex (χ = 1 under 26) or two points (χ = 2 under 6).
  Volume<std::uint8_t> m({3, 3, 3});
  m(0, 0, 0) = m(1, 1, 1) = 1;
  EXPECT_EQ(euler_characteristic(m, 6), 2);
  EXPECT_EQ(euler_characteristic(m, 26), 1);
}

TEST(Topology, BettiNumbersOfConstructedShapes) {
  auto shell = topology(ball(25, 10, 6), 6);
  EXPECT_EQ(shell.components, 1);
  EXPECT_EQ(shell.cavities, 1);
  EXPECT_EQ(shell.tunnels, 0);
  auto t = topology(torus(32, 9, 3.5), 26);
  EXPECT_EQ(t.components, 1);
  EXPECT_EQ(t.cavities, 0);
  EXPECT_EQ(t.tunnels, 1);
  EXPECT_DOUBLE_EQ(t.connectivity_density_per_um3, 1.0 / (32.0 * 32 * 32));
  // 18: clusters 18-connected, topology of the 26 complex. Two corner-touching voxels: two
  // clusters, χ = 1, no tunnel.
  Volume<std::uint8_t> m({3, 3, 3});
  m(0, 0, 0) = m(1, 1, 1) = 1;
  auto c = topology(m, 18);
  EXPECT_EQ(c.components, 2);
  EXPECT_EQ(c.euler, 1);
  EXPECT_EQ(c.tunnels, 0);
}

TEST(Percolation, ChannelsDeadEndsAndIslands) {
  // 20^3, spacing anisotropic (irrelevant for fractions): a straight z channel (20 voxels),
  // a dead-end channel from z = 0 to z = 9 (10 voxels), an island (8 voxels).
  Volume<std::uint8_t> m({20, 20, 20}, {1, 1, 2});
  for (index_t z = 0; z < 20; ++z) m(2, 2, z) = 1;
  for (index_t z = 0; z < 10; ++z) m(10, 10, z) = 1;
  for (index_t z = 14; z < 16; ++z)
    for (index_t y = 14; y < 16; ++y)
      for (index_t x = 14; x < 16; ++x) m(x, y, z) = 1;
  auto p = percolation(m, 2, 6);
  EXPECT_EQ(p.phase_voxels, 38);
  EXPECT_DOUBLE_EQ(p.percolating_fraction, 20.0 / 38);
  EXPECT_DOUBLE_EQ(p.dead_end_fraction, 10.0 / 38);
  EXPECT_DOUBLE_EQ(p.isolated_fraction, 8.0 / 38);
  // Along x nothing percolates; the two z-channels touch neither x face, the island neither.
  auto px = percolation(m, 0, 26);
  EXPECT_DOUBLE_EQ(px.percolating_fraction, 0.0);
  EXPECT_DOUBLE_EQ(px.isolated_fraction, 1.0);
}
