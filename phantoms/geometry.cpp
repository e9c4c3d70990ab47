#include "phantoms/geometry.h"

namespace vp::phantom {

void plane_basis(const Vec3& n, Vec3& e1, Vec3& e2) {
  // Start from the axis least aligned with n so the cross product is well conditioned.
  const Vec3 pick = std::fabs(n[0]) < 0.6 ? Vec3{1, 0, 0} : (std::fabs(n[1]) < 0.6 ? Vec3{0, 1, 0} : Vec3{0, 0, 1});
  e1 = normalized(cross(n, pick));
  e2 = cross(n, e1);
}

namespace {

// Gauss–Legendre nodes and weights on [-1, 1] (Newton on P_n).
void gauss_legendre(int n, std::vector<double>& x, std::vector<double>& w) {
  x.assign(n, 0);
  w.assign(n, 0);
  for (int i = 0; i < n; ++i) {
    double t = std::cos(kPi * (i + 0.75) / (n + 0.5));
    double dp = 0;
    for (int it = 0; it < 100; ++it) {
      double p0 = 1, p1 = t;
      for (int k = 2; k <= n; ++k) {
        const double p2 = ((2 * k - 1) * t * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      dp = n * (t * p1 - p0) / (t * t - 1);
      const double dt = p1 / dp;
      t -= dt;
      if (std::fabs(dt) < 1e-15) break;
    }
    x[i] = t;
    w[i] = 2 / ((1 - t * t) * dp * dp);
  }
}

// Area element of the ellipsoid per unit solid angle at the unit direction u.
double area_density(const Vec3& a, const Vec3& u) {
  const Vec3 g{u[0] / a[0], u[1] / a[1], u[2] / a[2]};
  return a[0] * a[1] * a[2] * norm(g);
}

}  // namespace

double ellipsoid_surface_area(const Vec3& a) {
  std::vector<double> t, w;
  gauss_legendre(64, t, w);
  const int nphi = 128;
  double sum = 0;
  for (int i = 0; i < 64; ++i) {
    const double s = std::sqrt(1 - t[i] * t[i]);
    double ring = 0;
    for (int j = 0; j < nphi; ++j) {
      const double phi = 2 * kPi * (j + 0.5) / nphi;
      ring += area_density(a, {s * std::cos(phi), s * std::sin(phi), t[i]});
    }
    sum += w[i] * ring * (2 * kPi / nphi);
  }
  return sum;
}

std::vector<SurfacePoint> ellipsoid_surface_points(const Vec3& c, const Vec3& a, int m) {
  std::vector<SurfacePoint> pts;
  pts.reserve(m);
  const double golden = kPi * (3 - std::sqrt(5.0));
  const double d_omega = 4 * kPi / m;
  for (int i = 0; i < m; ++i) {
    const double t = 1 - (2.0 * i + 1) / m;
    const double s = std::sqrt(std::max(0.0, 1 - t * t));
    const Vec3 u{s * std::cos(golden * i), s * std::sin(golden * i), t};
    const Vec3 p{c[0] + a[0] * u[0], c[1] + a[1] * u[1], c[2] + a[2] * u[2]};
    const Vec3 n = normalized({u[0] / a[0], u[1] / a[1], u[2] / a[2]});
    pts.push_back({p, n, area_density(a, u) * d_omega});
  }
  return pts;
}

PlaneArea plane_area(const Vec3& c, const Vec3& n, double extent, double step,
                     const std::function<bool(const Vec3&)>& inside) {
  Vec3 e1, e2;
  plane_basis(normalized(n), e1, e2);
  const int k = static_cast<int>(std::ceil(extent / step));
  PlaneArea out;
  double count = 0;
  Vec3 sum{0, 0, 0};
  for (int i = -k; i < k; ++i)
    for (int j = -k; j < k; ++j) {
      const Vec3 q = add(c, add(scale(e1, (i + 0.5) * step), scale(e2, (j + 0.5) * step)));
      if (!inside(q)) continue;
      count += 1;
      sum = add(sum, q);
    }
  out.area = count * step * step;
  if (count > 0) out.centroid = scale(sum, 1.0 / count);
  return out;
}

}  // namespace vp::phantom
