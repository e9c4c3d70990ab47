#include "metrics/cracks/shape.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vp {

void symmetric_eigen(const std::array<std::array<double, 3>, 3>& m, std::array<double, 3>& values,
                     std::array<Vec3, 3>& vectors) {
  double a[3][3], v[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) a[i][j] = m[i][j];
  for (int sweep = 0; sweep < 50; ++sweep) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    const double scale = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2];
    if (off <= 1e-30 * scale || off == 0) break;
    for (int p = 0; p < 2; ++p)
      for (int q = p + 1; q < 3; ++q) {
        if (a[p][q] == 0) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < 3; ++k) {  // A ← A·J
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; ++k) {  // A ← Jᵀ·A
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 3; ++k) {
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  }
  std::array<int, 3> order{0, 1, 2};
  std::sort(order.begin(), order.end(), [&](int i, int j) { return a[i][i] > a[j][j]; });
  for (int r = 0; r < 3; ++r) {
    const int c = order[r];
    values[r] = a[c][c];
    Vec3 e{v[0][c], v[1][c], v[2][c]};
    // Sign convention: the largest component positive, so results are reproducible.
    const int big = static_cast<int>(
        std::max_element(e.begin(), e.end(), [](double x, double y) { return std::abs(x) < std::abs(y); }) - e.begin());
    if (e[big] < 0)
      for (double& x : e) x = -x;
    vectors[r] = e;
  }
}

PrincipalAxes principal_axes(const std::vector<index_t>& voxels, const Dims& d, const Vec3& h, const Vec3& origin) {
  PrincipalAxes out;
  if (voxels.empty()) return out;
  const double n = static_cast<double>(voxels.size());
  // Shifted sums about the first voxel keep the variance accurate for far-off sets.
  const index_t ref = voxels.front();
  const double rx = static_cast<double>(ref % d.x), ry = static_cast<double>(ref / d.x % d.y),
               rz = static_cast<double>(ref / (d.x * d.y));
  double s[3] = {0, 0, 0}, ss[3][3] = {};
  for (index_t v : voxels) {
    const double p[3] = {(static_cast<double>(v % d.x) - rx) * h[0], (static_cast<double>(v / d.x % d.y) - ry) * h[1],
                         (static_cast<double>(v / (d.x * d.y)) - rz) * h[2]};
    for (int i = 0; i < 3; ++i) {
      s[i] += p[i];
      for (int j = 0; j < 3; ++j) ss[i][j] += p[i] * p[j];
    }
  }
  std::array<std::array<double, 3>, 3> cov{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) cov[i][j] = ss[i][j] / n - (s[i] / n) * (s[j] / n) + (i == j ? h[i] * h[i] / 12 : 0);
  symmetric_eigen(cov, out.variance, out.axis);
  const double r[3] = {rx, ry, rz};
  for (int i = 0; i < 3; ++i) out.centroid_um[i] = origin[i] + r[i] * h[i] + s[i] / n;
  return out;
}

double sheet_aspect(const PrincipalAxes& a) {
  if (a.variance[2] <= 0) return 0;
  return std::sqrt(a.variance[1] / a.variance[2]);
}

SheetGeometry sheet_geometry(const std::vector<index_t>& voxels, const Dims& d, const Vec3& h, const Vec3& normal) {
  SheetGeometry g;
  if (voxels.empty()) return g;
  const double norm = std::sqrt(normal[0] * normal[0] + normal[1] * normal[1] + normal[2] * normal[2]);
  const Vec3 n{normal[0] / norm, normal[1] / norm, normal[2] / norm};
  int k = 0;
  for (int a = 1; a < 3; ++a)
    if (std::abs(n[a]) > std::abs(n[k])) k = a;
  const int i = (k + 1) % 3, j = (k + 2) % 3;
  const double cos_t = std::abs(n[k]);
  std::vector<index_t> columns;
  columns.reserve(voxels.size());
  for (index_t v : voxels) {
    const index_t c[3] = {v % d.x, v / d.x % d.y, v / (d.x * d.y)};
    columns.push_back(c[i] + d[i] * c[j]);
  }
  std::sort(columns.begin(), columns.end());
  // Distinct columns, the longest run, and the footprint's width across the tilt direction.
  const double sin_t = std::hypot(n[i], n[j]);
  const double pi = sin_t > 1e-9 ? -n[j] / sin_t : 0, pj = sin_t > 1e-9 ? n[i] / sin_t : 0;
  double lo = 1e300, hi = -1e300;
  index_t distinct = 0, longest = 0;
  for (std::size_t a = 0; a < columns.size();) {
    std::size_t b = a;
    while (b < columns.size() && columns[b] == columns[a]) ++b;
    ++distinct;
    longest = std::max<index_t>(longest, static_cast<index_t>(b - a));
    const double across =
        static_cast<double>(columns[a] % d[i]) * h[i] * pi + static_cast<double>(columns[a] / d[i]) * h[j] * pj;
    lo = std::min(lo, across);
    hi = std::max(hi, across);
    a = b;
  }
  const double footprint = static_cast<double>(distinct) * h[i] * h[j] / cos_t;
  const double volume = static_cast<double>(voxels.size()) * h[0] * h[1] * h[2];
  const double width = sin_t > 1e-9 ? hi - lo + std::abs(pi) * h[i] + std::abs(pj) * h[j] : 0;
  const double c = volume * (sin_t / cos_t) * width;
  g.area_um2 = (footprint + std::sqrt(std::max(0.0, footprint * footprint - 4 * c))) / 2;
  g.opening_mean_um = volume / g.area_um2;
  g.opening_max_um = static_cast<double>(longest) * h[k] * cos_t;
  return g;
}

}  // namespace vp
