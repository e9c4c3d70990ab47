#include "dvc/affine.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace vp::dvc {

Mat3 identity3() { return Mat3{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}; }

Mat3 multiply(const Mat3& a, const Mat3& b) {
  Mat3 c{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) c[i][j] += a[i][k] * b[k][j];
  return c;
}

Vec3 multiply(const Mat3& a, const Vec3& v) {
  return {a[0][0] * v[0] + a[0][1] * v[1] + a[0][2] * v[2], a[1][0] * v[0] + a[1][1] * v[1] + a[1][2] * v[2],
          a[2][0] * v[0] + a[2][1] * v[1] + a[2][2] * v[2]};
}

Mat3 transpose(const Mat3& a) {
  Mat3 t{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) t[i][j] = a[j][i];
  return t;
}

double determinant(const Mat3& a) {
  return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
         a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
}

Mat3 inverse(const Mat3& a) {
  const double d = determinant(a);
  Mat3 r{};
  r[0][0] = (a[1][1] * a[2][2] - a[1][2] * a[2][1]) / d;
  r[0][1] = (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / d;
  r[0][2] = (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / d;
  r[1][0] = (a[1][2] * a[2][0] - a[1][0] * a[2][2]) / d;
  r[1][1] = (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / d;
  r[1][2] = (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / d;
  r[2][0] = (a[1][0] * a[2][1] - a[1][1] * a[2][0]) / d;
  r[2][1] = (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / d;
  r[2][2] = (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / d;
  return r;
}

Mat3 polar_rotation(const Mat3& f) {
  // Newton iteration R ← (R + R⁻ᵀ)/2 converges quadratically for det F > 0.
  Mat3 r = f;
  for (int it = 0; it < 30; ++it) {
    const Mat3 rit = transpose(inverse(r));
    double change = 0;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        const double v = 0.5 * (r[i][j] + rit[i][j]);
        change += std::abs(v - r[i][j]);
        r[i][j] = v;
      }
    if (change < 1e-14) break;
  }
  return r;
}

Vec3 rotation_vector_deg(const Mat3& r) {
  const double c = std::clamp((r[0][0] + r[1][1] + r[2][2] - 1) / 2, -1.0, 1.0);
  const double angle = std::acos(c);
  const Vec3 w{r[2][1] - r[1][2], r[0][2] - r[2][0], r[1][0] - r[0][1]};
  const double s = std::sin(angle);
  const double k = s > 1e-12 ? angle / (2 * s) : 0.5;  // small angles: w/2 is the rotation vector
  const double deg = 180 / std::numbers::pi;
  return {w[0] * k * deg, w[1] * k * deg, w[2] * k * deg};
}

Mat3 rotation_matrix_deg(const Vec3& v) {
  const double rad = std::numbers::pi / 180;
  const Vec3 w{v[0] * rad, v[1] * rad, v[2] * rad};
  const double th = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  if (th == 0) return identity3();
  const Vec3 k{w[0] / th, w[1] / th, w[2] / th};
  const double c = std::cos(th), s = std::sin(th), C = 1 - c;
  return Mat3{{{c + k[0] * k[0] * C, k[0] * k[1] * C - k[2] * s, k[0] * k[2] * C + k[1] * s},
               {k[1] * k[0] * C + k[2] * s, c + k[1] * k[1] * C, k[1] * k[2] * C - k[0] * s},
               {k[2] * k[0] * C - k[1] * s, k[2] * k[1] * C + k[0] * s, c + k[2] * k[2] * C}}};
}

Vec3 AffineWarp::apply(const Vec3& X) const {
  const Vec3 d{X[0] - centre[0], X[1] - centre[1], X[2] - centre[2]};
  const Vec3 m = multiply(f, d);
  return {centre[0] + m[0] + t[0], centre[1] + m[1] + t[1], centre[2] + m[2] + t[2]};
}

Vec3 AffineWarp::displacement(const Vec3& X) const {
  const Vec3 x = apply(X);
  return {x[0] - X[0], x[1] - X[1], x[2] - X[2]};
}

AffineWarp AffineWarp::recentred(const Vec3& c) const {
  AffineWarp w = *this;
  w.centre = c;
  w.t = displacement(c);
  return w;
}

}  // namespace vp::dvc
