// Local DVC on a regular node grid: at every node a cubic subset of the reference is matched in
// the deformed scan by IC-GN (subset_match.h), started from the registration; nodes that fail are
// restarted once from the median of their valid neighbours. Featureless subsets (grey standard
// deviation below `min_texture` times the scan's noise) are flagged `low_texture` and carry no
// displacement (NaN), never a guessed one.
#pragma once

#include <string>
#include <vector>

#include "core/volume.h"
#include "dvc/affine.h"
#include "dvc/registration.h"

namespace vp::dvc {

enum class NodeQuality { ok, low_texture, outside, not_converged, high_residual };
std::string to_string(NodeQuality q);  // "ok", "low_texture", "outside", "not_converged", "high_residual"

struct DvcOptions {
  index_t node_spacing = 8;         // voxels between nodes
  index_t subset = 16;              // subset edge in voxels: a cube of (subset+1)³ points about the node
  double min_texture = 1.25;        // subset grey std / noise σ below this (pure noise: 1): low_texture
  double presmooth_sigma = 1.0;     // Gaussian σ (voxels) applied to both scans before matching: noise
                                    // gradients otherwise dominate the IC-GN Hessian at SNR ≤ 8
  double max_residual_ratio = 4.0;  // ZNSSD above this × the median of converged nodes: high_residual
  int max_iterations = 40;
  double tolerance = 1e-3;  // voxels: |Δt| + extent·|ΔF| of the last update
};

struct Node {
  std::array<index_t, 3> position{};  // voxels of the reference
  Vec3 displacement{0, 0, 0};         // voxels; NaN unless quality ok
  Mat3 gradient{};                    // local ∇u of the subset's shape function (NaN unless ok)
  double residual = 0;                // ZNSSD (NaN when not matched)
  double texture = 0;                 // raw subset grey std / noise σ
  int iterations = 0;
  NodeQuality quality = NodeQuality::ok;
  bool valid() const { return quality == NodeQuality::ok; }
};

struct NodeGrid {
  Dims dims;                       // nodes per axis
  std::array<index_t, 3> first{};  // position of node (0, 0, 0)
  index_t spacing = 8;
  double noise_sigma = 0;   // the reference's noise σ estimate (grey units)
  std::vector<Node> nodes;  // x fastest
  const Node& at(index_t i, index_t j, index_t k) const {
    return nodes[static_cast<std::size_t>(i + dims.x * (j + dims.y * k))];
  }
  index_t valid_count() const;
};

// Robust noise σ of a scan: median absolute second difference along x, scaled for white noise
// (√6 · 0.6745); interfaces are few, so the median sees noise only.
double estimate_noise_sigma(const Volume<float>& v);

// Throws InputError when the scans differ in dims, or when the subset does not fit the volume.
NodeGrid correlate_nodes(const Volume<float>& ref, const Volume<float>& def, const AffineWarp& start,
                         const DvcOptions& options);

}  // namespace vp::dvc
