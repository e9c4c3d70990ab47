#include "dvc/bspline.h"

#include <cmath>

#include <tbb/parallel_for.h>

namespace vp::dvc {

namespace {

// In-place prefilter of one line (stride s, n samples) with the cubic pole, mirror boundaries.
void prefilter_line(float* c, index_t n, index_t s) {
  if (n < 2) return;
  const double z = std::sqrt(3.0) - 2.0;
  const double lambda = (1 - z) * (1 - 1 / z);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (index_t k = 0; k < n; ++k) v[k] = c[k * s] * lambda;
  // Causal initialisation: truncated sum until z^k is negligible.
  const index_t horizon = std::min<index_t>(n, static_cast<index_t>(std::ceil(std::log(1e-9) / std::log(std::abs(z)))));
  double sum = v[0], zk = z;
  for (index_t k = 1; k < horizon; ++k, zk *= z) sum += zk * v[k];
  v[0] = sum;
  for (index_t k = 1; k < n; ++k) v[k] += z * v[k - 1];
  v[n - 1] = (z / (z * z - 1)) * (v[n - 1] + z * v[n - 2]);
  for (index_t k = n - 2; k >= 0; --k) v[k] = z * (v[k + 1] - v[k]);
  for (index_t k = 0; k < n; ++k) c[k * s] = static_cast<float>(v[k]);
}

inline void weights(double t, float w[4]) {
  const double t2 = t * t, t3 = t2 * t, u = 1 - t;
  w[0] = static_cast<float>(u * u * u / 6);
  w[1] = static_cast<float>((4 - 6 * t2 + 3 * t3) / 6);
  w[2] = static_cast<float>((1 + 3 * t + 3 * t2 - 3 * t3) / 6);
  w[3] = static_cast<float>(t3 / 6);
}

}  // namespace

BSplineVolume::BSplineVolume(const Volume<float>& image)
    : dims_(image.dims()), coef_(image.data(), image.data() + image.size()) {
  const index_t nx = dims_.x, ny = dims_.y, nz = dims_.z;
  float* c = coef_.data();
  tbb::parallel_for(index_t{0}, nz, [&](index_t z) {
    for (index_t y = 0; y < ny; ++y) prefilter_line(c + nx * (y + ny * z), nx, 1);
    for (index_t x = 0; x < nx; ++x) prefilter_line(c + x + nx * ny * z, ny, nx);
  });
  tbb::parallel_for(index_t{0}, ny, [&](index_t y) {
    for (index_t x = 0; x < nx; ++x) prefilter_line(c + x + nx * y, nz, nx * ny);
  });
}

float BSplineVolume::value(double x, double y, double z) const {
  const double fx = std::floor(x), fy = std::floor(y), fz = std::floor(z);
  float wx[4], wy[4], wz[4];
  weights(x - fx, wx);
  weights(y - fy, wy);
  weights(z - fz, wz);
  const index_t nx = dims_.x, nxy = dims_.x * dims_.y;
  const float* base = coef_.data() + (static_cast<index_t>(fx) - 1) + nx * (static_cast<index_t>(fy) - 1) +
                      nxy * (static_cast<index_t>(fz) - 1);
  float sum = 0;
  for (int c = 0; c < 4; ++c) {
    float plane = 0;
    for (int b = 0; b < 4; ++b) {
      const float* p = base + c * nxy + b * nx;
      plane += wy[b] * (wx[0] * p[0] + wx[1] * p[1] + wx[2] * p[2] + wx[3] * p[3]);
    }
    sum += wz[c] * plane;
  }
  return sum;
}

void BSplineVolume::gradient_at(index_t i, index_t j, index_t k, float g[3]) const {
  // At a knot the cubic B-spline weights are (1, 4, 1)/6 and the derivative weights (−1, 0, 1)/2.
  static constexpr float w[3] = {1.0f / 6, 4.0f / 6, 1.0f / 6};
  static constexpr float d[3] = {-0.5f, 0.0f, 0.5f};
  const index_t nx = dims_.x, nxy = dims_.x * dims_.y;
  const float* base = coef_.data() + (i - 1) + nx * (j - 1) + nxy * (k - 1);
  float gx = 0, gy = 0, gz = 0;
  for (int c = 0; c < 3; ++c)
    for (int b = 0; b < 3; ++b)
      for (int a = 0; a < 3; ++a) {
        const float v = base[a + nx * b + nxy * c];
        gx += d[a] * w[b] * w[c] * v;
        gy += w[a] * d[b] * w[c] * v;
        gz += w[a] * w[b] * d[c] * v;
      }
  g[0] = gx;
  g[1] = gy;
  g[2] = gz;
}

}  // namespace vp::dvc
