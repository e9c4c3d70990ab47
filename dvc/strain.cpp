#include "dvc/strain.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace vp::dvc {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

double StrainTensor::component(int i, int j) const {
  if (i > j) std::swap(i, j);
  if (i == j) return i == 0 ? xx : i == 1 ? yy : zz;
  if (i == 0) return j == 1 ? xy : xz;
  return yz;
}

StrainTensor small_strain(const Mat3& g) {
  StrainTensor e;
  e.xx = g[0][0];
  e.yy = g[1][1];
  e.zz = g[2][2];
  e.xy = 0.5 * (g[0][1] + g[1][0]);
  e.xz = 0.5 * (g[0][2] + g[2][0]);
  e.yz = 0.5 * (g[1][2] + g[2][1]);
  return e;
}

GlobalStrain fit_affine_strain(const NodeGrid& grid, const Vec3& s) {
  GlobalStrain out;
  Vec3 mean_x{0, 0, 0}, mean_u{0, 0, 0};
  for (const Node& n : grid.nodes)
    if (n.valid()) {
      ++out.nodes;
      for (int a = 0; a < 3; ++a) {
        mean_x[a] += n.position[a] * s[a];
        mean_u[a] += n.displacement[a] * s[a];
      }
    }
  if (out.nodes < 4)
    throw ComputeError("dvc: only " + std::to_string(out.nodes) + " valid nodes; the affine strain fit needs 4");
  for (int a = 0; a < 3; ++a) {
    mean_x[a] /= static_cast<double>(out.nodes);
    mean_u[a] /= static_cast<double>(out.nodes);
  }
  Mat3 cxx{}, cux{};
  for (const Node& n : grid.nodes)
    if (n.valid()) {
      Vec3 dx, du;
      for (int a = 0; a < 3; ++a) {
        dx[a] = n.position[a] * s[a] - mean_x[a];
        du[a] = n.displacement[a] * s[a] - mean_u[a];
      }
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          cxx[i][j] += dx[i] * dx[j];
          cux[i][j] += du[i] * dx[j];
        }
    }
  const double det = determinant(cxx);
  double scale = 0;
  for (int i = 0; i < 3; ++i) scale = std::max(scale, cxx[i][i]);
  if (!(std::abs(det) > 1e-9 * scale * scale * scale))
    throw ComputeError("dvc: the valid nodes lie in a plane or a line; the affine strain fit is undetermined");
  out.gradient = multiply(cux, inverse(cxx));
  out.strain = small_strain(out.gradient);
  return out;
}

std::vector<StrainTensor> node_strains(const NodeGrid& grid, const Vec3& s) {
  const Dims& d = grid.dims;
  std::vector<StrainTensor> out(grid.nodes.size());
  const double h = static_cast<double>(grid.spacing);
  for (index_t k = 0; k < d.z; ++k)
    for (index_t j = 0; j < d.y; ++j)
      for (index_t i = 0; i < d.x; ++i) {
        const std::size_t idx = static_cast<std::size_t>(i + d.x * (j + d.y * k));
        StrainTensor& e = out[idx];
        Mat3 g{};
        bool ok = grid.nodes[idx].valid();
        const index_t p[3] = {i, j, k};
        for (int b = 0; b < 3 && ok; ++b) {  // derivative along axis b
          auto neighbour = [&](index_t step) -> const Node* {
            index_t q[3] = {p[0], p[1], p[2]};
            q[b] += step;
            if (q[b] < 0 || q[b] >= d[b]) return nullptr;
            const Node& n = grid.at(q[0], q[1], q[2]);
            return n.valid() ? &n : nullptr;
          };
          const Node* lo = neighbour(-1);
          const Node* hi = neighbour(+1);
          const Node& c = grid.nodes[idx];
          const Node* a = lo ? lo : &c;
          const Node* z = hi ? hi : &c;
          if (a == z) {
            ok = false;
            break;
          }
          const double dist = h * ((z == &c ? 0 : 1) + (a == &c ? 0 : 1)) * s[b];
          for (int q = 0; q < 3; ++q) g[q][b] = (z->displacement[q] - a->displacement[q]) * s[q] / dist;
        }
        if (ok) e = small_strain(g);
        else e = {kNaN, kNaN, kNaN, kNaN, kNaN, kNaN};
      }
  return out;
}

StrainHeterogeneity strain_heterogeneity(const std::vector<StrainTensor>& field, int axis) {
  std::vector<double> v;
  for (const auto& e : field) {
    const double c = e.component(axis, axis);
    if (std::isfinite(c)) v.push_back(c);
  }
  StrainHeterogeneity h;
  h.nodes = static_cast<index_t>(v.size());
  if (v.empty()) return {kNaN, kNaN, 0};
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  h.zz_std = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0;
  for (double& x : v) x = std::abs(x);
  std::sort(v.begin(), v.end());
  // Linear interpolation between order statistics (the "type 7" percentile).
  const double pos = 0.9 * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  h.zz_abs_p90 = v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
  return h;
}

}  // namespace vp::dvc
