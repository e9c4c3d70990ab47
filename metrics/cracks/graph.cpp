#include "metrics/cracks/graph.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <utility>

namespace vp {

int SkeletonGraph::junction_count() const {
  return static_cast<int>(
      std::count_if(nodes.begin(), nodes.end(), [](const SkeletonNode& n) { return n.kind == NodeKind::junction; }));
}
int SkeletonGraph::end_count() const {
  return static_cast<int>(
      std::count_if(nodes.begin(), nodes.end(), [](const SkeletonNode& n) { return n.kind == NodeKind::end; }));
}
int SkeletonGraph::cycle_count() const {
  int c = 0;
  for (const auto& n : networks) c += n.cycles;
  return c;
}
double SkeletonGraph::total_length_um() const {
  double l = 0;
  for (const auto& n : networks) l += n.length_um;
  return l;
}

namespace {

struct Grid {
  Dims d;
  Vec3 h;
  const Volume<std::uint8_t>& s;
  std::array<index_t, 3> coords(index_t i) const { return {i % d.x, i / d.x % d.y, i / (d.x * d.y)}; }
  // The skeleton's 26-neighbours of voxel i.
  int neighbours(index_t i, std::array<index_t, 26>& out) const {
    const auto [x, y, z] = coords(i);
    int n = 0;
    for (index_t dz = -1; dz <= 1; ++dz)
      for (index_t dy = -1; dy <= 1; ++dy)
        for (index_t dx = -1; dx <= 1; ++dx) {
          if (!dx && !dy && !dz) continue;
          const index_t xx = x + dx, yy = y + dy, zz = z + dz;
          if (xx < 0 || yy < 0 || zz < 0 || xx >= d.x || yy >= d.y || zz >= d.z) continue;
          if (s(xx, yy, zz)) out[n++] = s.index(xx, yy, zz);
        }
    return n;
  }
  Vec3 position(index_t i) const {  // relative to the origin
    const auto p = coords(i);
    return {p[0] * h[0], p[1] * h[1], p[2] * h[2]};
  }
  Vec3 centre(const std::vector<index_t>& voxels, const Vec3& origin) const {
    Vec3 c{0, 0, 0};
    for (index_t v : voxels) {
      const Vec3 p = position(v);
      for (int k = 0; k < 3; ++k) c[k] += p[k];
    }
    for (int k = 0; k < 3; ++k) c[k] = origin[k] + c[k] / static_cast<double>(voxels.size());
    return c;
  }
  static double distance(const Vec3& a, const Vec3& b) {
    return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
  }
  double step(index_t a, index_t b) const { return distance(position(a), position(b)); }
};

// Per-voxel state of the skeleton's voxels only (a sparse few of the volume's): the value of
// voxel i sits at i's place in the raster-ordered list of skeleton voxels (binary search), so
// no volume-sized array is filled.
template <class T>
struct PerSkeletonVoxel {
  const std::vector<index_t>& voxels;
  std::vector<T> values;
  PerSkeletonVoxel(const std::vector<index_t>& skeleton_voxels, T initial)
      : voxels(skeleton_voxels), values(skeleton_voxels.size(), initial) {}
  T& operator[](index_t i) {
    return values[static_cast<std::size_t>(std::lower_bound(voxels.begin(), voxels.end(), i) - voxels.begin())];
  }
};

}  // namespace

SkeletonGraph skeleton_graph(const Volume<std::uint8_t>& skeleton) {
  const Grid g{skeleton.dims(), skeleton.spacing_um, skeleton};
  std::vector<index_t> voxels;  // the skeleton's, in raster order
  for (index_t i = 0; i < skeleton.size(); ++i)
    if (skeleton[i]) voxels.push_back(i);
  SkeletonGraph graph;
  std::array<index_t, 26> nb{};

  // 1. Degree of every skeleton voxel; node voxels are those with degree ≠ 2.
  PerSkeletonVoxel<std::int8_t> degree(voxels, -1);
  for (index_t i : voxels) degree[i] = static_cast<std::int8_t>(g.neighbours(i, nb));

  // 2. Nodes: 26-connected clusters of junction voxels; every end point / isolated voxel alone.
  PerSkeletonVoxel<int> node_of(voxels, -1);
  for (index_t i : voxels) {
    if (degree[i] < 0 || degree[i] == 2 || node_of[i] >= 0) continue;
    SkeletonNode node;
    node.kind = degree[i] == 0 ? NodeKind::isolated : degree[i] == 1 ? NodeKind::end : NodeKind::junction;
    const int id = static_cast<int>(graph.nodes.size());
    node_of[i] = id;
    node.voxels.push_back(i);
    if (node.kind == NodeKind::junction) {
      for (std::size_t k = 0; k < node.voxels.size(); ++k) {
        const int m = g.neighbours(node.voxels[k], nb);
        for (int j = 0; j < m; ++j)
          if (degree[nb[j]] > 2 && node_of[nb[j]] < 0) {
            node_of[nb[j]] = id;
            node.voxels.push_back(nb[j]);
          }
      }
    }
    graph.nodes.push_back(std::move(node));
  }
  // A path voxel whose two neighbours both belong to one junction is part of that junction
  // (else it would read as a tiny self-loop).
  for (index_t i : voxels) {
    if (degree[i] != 2) continue;
    g.neighbours(i, nb);
    const int a = node_of[nb[0]], b = node_of[nb[1]];
    if (a >= 0 && a == b && graph.nodes[a].kind == NodeKind::junction) {
      node_of[i] = a;
      graph.nodes[a].voxels.push_back(i);
    }
  }
  for (auto& node : graph.nodes) node.centre_um = g.centre(node.voxels, skeleton.origin_um);

  // 3. Branches: walk from each node voxel along degree-2 voxels to the next node voxel.
  PerSkeletonVoxel<std::uint8_t> on_branch(voxels, 0);
  std::set<std::pair<index_t, index_t>> direct;  // node-voxel pairs joined without interior voxels
  auto trace = [&](int from, index_t start, index_t first) {
    SkeletonBranch b;
    b.from = from;
    index_t prev = start, cur = first;
    while (node_of[cur] < 0) {
      on_branch[cur] = 1;
      b.voxels.push_back(cur);
      const int m = g.neighbours(cur, nb);
      index_t next = -1;
      for (int j = 0; j < m; ++j)
        if (nb[j] != prev && (node_of[nb[j]] >= 0 || !on_branch[nb[j]])) {
          // Prefer the unvisited continuation; a node voxel ends the branch.
          next = nb[j];
          if (node_of[nb[j]] < 0) break;
        }
      if (next < 0) next = start;  // closed on itself (only for an anchored loop)
      prev = cur;
      cur = next;
    }
    b.to = node_of[cur];
    // Measured between the nodes' centres, so that a junction spanning several voxels does
    // not shorten its branches.
    const Vec3 o = skeleton.origin_um;
    auto at = [&](index_t v) {
      const Vec3 p = g.position(v);
      return Vec3{o[0] + p[0], o[1] + p[1], o[2] + p[2]};
    };
    b.length_um = Grid::distance(graph.nodes[b.from].centre_um, at(b.voxels.front()));
    for (std::size_t k = 1; k < b.voxels.size(); ++k) b.length_um += g.step(b.voxels[k - 1], b.voxels[k]);
    b.length_um += Grid::distance(at(b.voxels.back()), graph.nodes[b.to].centre_um);
    graph.branches.push_back(std::move(b));
  };
  auto trace_from_node = [&](int id) {
    // Copy: tracing may append nodes' branches but never nodes.
    const std::vector<index_t> voxels = graph.nodes[id].voxels;
    for (index_t v : voxels) {
      const int m = g.neighbours(v, nb);
      const std::array<index_t, 26> around = nb;
      for (int j = 0; j < m; ++j) {
        const index_t w = around[j];
        if (node_of[w] >= 0) {
          if (node_of[w] != id && direct.insert({std::min(v, w), std::max(v, w)}).second) {
            SkeletonBranch b;
            b.from = id;
            b.to = node_of[w];
            b.length_um = Grid::distance(graph.nodes[id].centre_um, graph.nodes[b.to].centre_um);
            // Count a node–node contact once per pair of nodes.
            const bool seen = std::any_of(graph.branches.begin(), graph.branches.end(), [&](const SkeletonBranch& o) {
              return o.voxels.empty() && ((o.from == b.from && o.to == b.to) || (o.from == b.to && o.to == b.from));
            });
            if (!seen) graph.branches.push_back(std::move(b));
          }
        } else if (!on_branch[w]) {
          trace(id, v, w);
        }
      }
    }
  };
  for (int id = 0; id < static_cast<int>(graph.nodes.size()); ++id) trace_from_node(id);
  // Loops without any node: anchor each at its lowest voxel.
  for (index_t i : voxels) {
    if (degree[i] != 2 || on_branch[i] || node_of[i] >= 0) continue;
    SkeletonNode anchor;
    anchor.kind = NodeKind::loop_anchor;
    anchor.voxels.push_back(i);
    anchor.centre_um = g.centre(anchor.voxels, skeleton.origin_um);
    const int id = static_cast<int>(graph.nodes.size());
    graph.nodes.push_back(std::move(anchor));
    node_of[i] = id;
    g.neighbours(i, nb);
    trace(id, i, nb[0]);
  }

  // 4. Networks: union of nodes joined by branches; ordered by their lowest voxel index.
  std::vector<int> parent(graph.nodes.size());
  for (std::size_t k = 0; k < parent.size(); ++k) parent[k] = static_cast<int>(k);
  auto find = [&](int a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  };
  for (const auto& b : graph.branches) {
    const int a = find(b.from), c = find(b.to);
    if (a != c) parent[std::max(a, c)] = std::min(a, c);
  }
  std::vector<int> network_of_root(graph.nodes.size(), -1);
  std::vector<std::pair<index_t, int>> first_voxel;  // (lowest voxel, root)
  for (std::size_t k = 0; k < graph.nodes.size(); ++k) {
    const int r = find(static_cast<int>(k));
    const index_t lowest = *std::min_element(graph.nodes[k].voxels.begin(), graph.nodes[k].voxels.end());
    auto it = std::find_if(first_voxel.begin(), first_voxel.end(), [&](auto& p) { return p.second == r; });
    if (it == first_voxel.end()) first_voxel.push_back({lowest, r});
    else it->first = std::min(it->first, lowest);
  }
  std::sort(first_voxel.begin(), first_voxel.end());
  for (std::size_t k = 0; k < first_voxel.size(); ++k) network_of_root[first_voxel[k].second] = static_cast<int>(k);
  graph.networks.resize(first_voxel.size());

  for (auto& node : graph.nodes) {
    node.network = network_of_root[find(static_cast<int>(&node - graph.nodes.data()))];
    SkeletonNetwork& net = graph.networks[node.network];
    ++net.nodes;
    net.junctions += node.kind == NodeKind::junction;
    net.ends += node.kind == NodeKind::end;
    net.voxels += static_cast<index_t>(node.voxels.size());
  }
  for (auto& b : graph.branches) {
    b.network = graph.nodes[b.from].network;
    ++graph.nodes[b.from].degree;
    ++graph.nodes[b.to].degree;
    SkeletonNetwork& net = graph.networks[b.network];
    ++net.branches;
    net.voxels += static_cast<index_t>(b.voxels.size());
    net.length_um += b.length_um;
  }
  for (auto& net : graph.networks) net.cycles = net.branches - net.nodes + 1;
  return graph;
}

}  // namespace vp
