// A skeleton (1-voxel-thin curves, 26-connected) as a graph: nodes are junctions (clusters
// of 26-adjacent voxels with more than two skeleton neighbours) and end points (one
// neighbour); branches are the voxel paths between nodes. A closed loop with no node gets
// one anchor node so that it is a graph with one self-loop branch.
//
// Per connected network: cycles = branches − nodes + 1 (the cyclomatic number E − V + C of
// that network). Branch length = sum of centre-to-centre steps in µm (anisotropic spacing),
// from node voxel to node voxel.
#pragma once

#include <cstdint>
#include <vector>

#include "core/volume.h"

namespace vp {

enum class NodeKind : std::uint8_t { junction, end, isolated, loop_anchor };

struct SkeletonNode {
  NodeKind kind = NodeKind::end;
  std::vector<index_t> voxels;  // linear indices (a junction may span several voxels)
  Vec3 centre_um{0, 0, 0};      // mean voxel centre (origin_um + index·spacing)
  int degree = 0;               // branch ends attached (a self-loop counts twice)
  int network = 0;              // index into SkeletonGraph::networks
};

struct SkeletonBranch {
  int from = 0, to = 0;         // node indices (equal for a self-loop)
  std::vector<index_t> voxels;  // interior voxels, in order from `from` to `to`
  double length_um = 0;
  int network = 0;
};

struct SkeletonNetwork {
  int nodes = 0, branches = 0;
  int junctions = 0, ends = 0;
  int cycles = 0;  // branches − nodes + 1
  index_t voxels = 0;
  double length_um = 0;  // total branch length
};

struct SkeletonGraph {
  std::vector<SkeletonNode> nodes;
  std::vector<SkeletonBranch> branches;
  std::vector<SkeletonNetwork> networks;  // ordered by their lowest voxel index

  int junction_count() const;
  int end_count() const;
  int cycle_count() const;  // Σ over networks
  double total_length_um() const;
};

// skeleton: nonzero = skeleton voxel (e.g. the output of skeletonize()).
SkeletonGraph skeleton_graph(const Volume<std::uint8_t>& skeleton);

}  // namespace vp
