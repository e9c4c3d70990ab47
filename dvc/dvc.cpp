#include "dvc/dvc.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <tbb/parallel_for.h>

#include "core/error.h"
#include "dvc/bspline.h"
#include "dvc/subset_match.h"
#include "filters/preprocess/psf.h"

namespace vp::dvc {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

void clear_motion(Node& n) {
  n.displacement = {kNaN, kNaN, kNaN};
  for (auto& row : n.gradient) row = {kNaN, kNaN, kNaN};
}

void match_node(Node& node, const SubsetTemplate& tpl, const BSplineVolume& def, const AffineWarp& start,
                const DvcOptions& o) {
  MatchOptions mo;
  mo.max_iterations = o.max_iterations;
  mo.tolerance = o.tolerance;
  const MatchResult m = match_subset(tpl, def, start, mo);
  node.iterations = m.iterations;
  node.residual = m.status == MatchStatus::outside ? kNaN : m.residual;
  if (m.status == MatchStatus::converged) {
    node.quality = NodeQuality::ok;
    node.displacement = m.warp.t;
    node.gradient = m.warp.f;
    for (int a = 0; a < 3; ++a) node.gradient[a][a] -= 1;
    return;
  }
  node.quality = m.status == MatchStatus::outside ? NodeQuality::outside : NodeQuality::not_converged;
  clear_motion(node);
}

// Grey standard deviation of the raw cube of half-width h about a node.
double raw_std(const Volume<float>& v, const std::array<index_t, 3>& p, index_t h) {
  double s = 0, ss = 0;
  index_t n = 0;
  for (index_t k = p[2] - h; k <= p[2] + h; ++k)
    for (index_t j = p[1] - h; j <= p[1] + h; ++j)
      for (index_t i = p[0] - h; i <= p[0] + h; ++i) {
        const double x = v(i, j, k);
        s += x;
        ss += x * x;
        ++n;
      }
  const double m = s / static_cast<double>(n);
  return std::sqrt(std::max(0.0, ss / static_cast<double>(n) - m * m));
}

}  // namespace

std::string to_string(NodeQuality q) {
  switch (q) {
    case NodeQuality::ok: return "ok";
    case NodeQuality::low_texture: return "low_texture";
    case NodeQuality::outside: return "outside";
    case NodeQuality::not_converged: return "not_converged";
    case NodeQuality::high_residual: return "high_residual";
  }
  return "?";
}

index_t NodeGrid::valid_count() const {
  return std::count_if(nodes.begin(), nodes.end(), [](const Node& n) { return n.valid(); });
}

double estimate_noise_sigma(const Volume<float>& v) {
  const Dims& d = v.dims();
  std::vector<double> second;
  const index_t step = std::max<index_t>(1, static_cast<index_t>(std::cbrt(static_cast<double>(d.count()) / 2e6)));
  for (index_t z = 0; z < d.z; z += step)
    for (index_t y = 0; y < d.y; y += step)
      for (index_t x = 1; x + 1 < d.x; x += step)
        second.push_back(std::abs(v(x - 1, y, z) - 2.0 * v(x, y, z) + v(x + 1, y, z)));
  return median(second) / (0.6745 * std::sqrt(6.0));
}

NodeGrid correlate_nodes(const Volume<float>& ref, const Volume<float>& def, const AffineWarp& start,
                         const DvcOptions& o) {
  if (!(ref.dims() == def.dims()))
    throw InputError("dvc: the scans differ in size (" + to_string(ref.dims()) + " and " + to_string(def.dims()) + ")");
  if (o.node_spacing < 1)
    throw InputError("dvc: --node-spacing must be ≥ 1 voxel, got " + std::to_string(o.node_spacing));
  if (o.subset < 4) throw InputError("dvc: --subset must be ≥ 4 voxels, got " + std::to_string(o.subset));
  const index_t h = o.subset / 2;
  const Dims& d = ref.dims();
  NodeGrid grid;
  grid.spacing = o.node_spacing;
  index_t n[3];
  for (int a = 0; a < 3; ++a) {
    const index_t span = d[a] - 3 - 2 * h;  // node positions h+1 … d−2−h
    if (span < 0)
      throw InputError("dvc: a subset of " + std::to_string(o.subset) + " voxels does not fit the scan (" +
                       to_string(d) + "); give a smaller --subset");
    n[a] = span / o.node_spacing + 1;
    grid.first[a] = h + 1 + (span % o.node_spacing) / 2;
  }
  grid.dims = {n[0], n[1], n[2]};
  grid.noise_sigma = estimate_noise_sigma(ref);
  grid.nodes.resize(static_cast<std::size_t>(grid.dims.count()));
  const double sigma = std::max(grid.noise_sigma, 1e-12);
  const std::array<double, 3> smooth{o.presmooth_sigma, o.presmooth_sigma, o.presmooth_sigma};
  const Volume<float> rsm = gaussian_blur(ref, smooth), dsm = gaussian_blur(def, smooth);
  const BSplineVolume rs(rsm), ds(dsm);

  auto node_at = [&](std::size_t idx) {
    const index_t i = static_cast<index_t>(idx) % n[0], j = (static_cast<index_t>(idx) / n[0]) % n[1],
                  k = static_cast<index_t>(idx) / (n[0] * n[1]);
    return std::array<index_t, 3>{grid.first[0] + i * o.node_spacing, grid.first[1] + j * o.node_spacing,
                                  grid.first[2] + k * o.node_spacing};
  };
  auto centre_of = [](const std::array<index_t, 3>& p) {
    return Vec3{static_cast<double>(p[0]), static_cast<double>(p[1]), static_cast<double>(p[2])};
  };

  // Pass 1: every node from the registration.
  tbb::parallel_for(std::size_t{0}, grid.nodes.size(), [&](std::size_t idx) {
    Node& node = grid.nodes[idx];
    node.position = node_at(idx);
    node.texture = raw_std(ref, node.position, h) / sigma;
    if (node.texture < o.min_texture) {
      node.quality = NodeQuality::low_texture;
      node.residual = kNaN;
      clear_motion(node);
      return;
    }
    const SubsetTemplate tpl = cube_template(rsm, rs, node.position, h);
    match_node(node, tpl, ds, start.recentred(centre_of(node.position)), o);
  });

  auto flag_high_residuals = [&](double limit) {
    for (Node& node : grid.nodes)
      if (node.valid() && node.residual > limit) {
        node.quality = NodeQuality::high_residual;
        clear_motion(node);
      }
  };
  std::vector<double> residuals;
  for (const Node& node : grid.nodes)
    if (node.valid()) residuals.push_back(node.residual);
  const double limit = residuals.empty() ? kNaN : o.max_residual_ratio * median(residuals);
  flag_high_residuals(limit);

  // Pass 2: failed nodes restart from the median of their valid neighbours (a snapshot of pass 1,
  // so the result does not depend on the order or the thread count).
  const std::vector<Node> first_pass = grid.nodes;
  tbb::parallel_for(std::size_t{0}, grid.nodes.size(), [&](std::size_t idx) {
    Node& node = grid.nodes[idx];
    if (node.quality != NodeQuality::not_converged && node.quality != NodeQuality::high_residual &&
        node.quality != NodeQuality::outside)
      return;
    const index_t i = static_cast<index_t>(idx) % n[0], j = (static_cast<index_t>(idx) / n[0]) % n[1],
                  k = static_cast<index_t>(idx) / (n[0] * n[1]);
    std::vector<double> u[3];
    for (index_t c = std::max<index_t>(0, k - 1); c <= std::min(n[2] - 1, k + 1); ++c)
      for (index_t b = std::max<index_t>(0, j - 1); b <= std::min(n[1] - 1, j + 1); ++b)
        for (index_t a = std::max<index_t>(0, i - 1); a <= std::min(n[0] - 1, i + 1); ++a) {
          const Node& nb = first_pass[static_cast<std::size_t>(a + n[0] * (b + n[1] * c))];
          if (nb.valid())
            for (int q = 0; q < 3; ++q) u[q].push_back(nb.displacement[q]);
        }
    if (u[0].size() < 2) return;
    AffineWarp w = start.recentred(centre_of(node.position));
    for (int q = 0; q < 3; ++q) w.t[q] = median(u[q]);
    const SubsetTemplate tpl = cube_template(rsm, rs, node.position, h);
    Node retry = node;
    match_node(retry, tpl, ds, w, o);
    if (retry.valid() && !(retry.residual > limit)) node = retry;
  });
  return grid;
}

}  // namespace vp::dvc
