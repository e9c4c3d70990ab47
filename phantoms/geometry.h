// Geometry helpers shared by the phantom generators: axis-aligned ellipsoids, surface and plane
// quadratures, and the image box. Internal to phantoms/.
#pragma once

#include <array>
#include <cmath>
#include <functional>
#include <vector>

#include "core/volume.h"

namespace vp::phantom {

inline constexpr double kPi = 3.14159265358979323846;

inline Vec3 add(const Vec3& a, const Vec3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
inline Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
inline Vec3 scale(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 normalized(const Vec3& a) { return scale(a, 1.0 / norm(a)); }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

// Two unit vectors completing n to a right-handed orthonormal basis.
void plane_basis(const Vec3& n, Vec3& e1, Vec3& e2);

// The image's physical extent: [0, dims·spacing) on each axis; voxel centres at (i + ½)·h.
struct ImageBox {
  Dims dims;
  Vec3 h{1, 1, 1};
  Vec3 size() const { return {dims.x * h[0], dims.y * h[1], dims.z * h[2]}; }
  Vec3 centre_of(index_t x, index_t y, index_t z) const {
    return {(x + 0.5) * h[0], (y + 0.5) * h[1], (z + 0.5) * h[2]};
  }
  bool contains(const Vec3& p) const {
    const Vec3 s = size();
    return p[0] >= 0 && p[1] >= 0 && p[2] >= 0 && p[0] < s[0] && p[1] < s[1] && p[2] < s[2];
  }
};

// ‖diag(a)⁻¹ (p − c)‖: < 1 inside the ellipsoid, 1 on its surface.
inline double ellipsoid_norm(const Vec3& p, const Vec3& c, const Vec3& a) {
  const double dx = (p[0] - c[0]) / a[0], dy = (p[1] - c[1]) / a[1], dz = (p[2] - c[2]) / a[2];
  return std::sqrt(dx * dx + dy * dy + dz * dz);
}

inline double ellipsoid_volume(const Vec3& a) { return 4.0 / 3.0 * kPi * a[0] * a[1] * a[2]; }
// Gauss–Legendre in cos θ × uniform in φ: exact for spheres, ~1e-10 relative for ellipsoids.
double ellipsoid_surface_area(const Vec3& a);

// A point on an ellipsoid surface with its outward unit normal and the area it stands for.
struct SurfacePoint {
  Vec3 p, n;
  double weight;
};
// Spherical Fibonacci lattice of m points mapped onto the ellipsoid (c, a); weights sum to the
// surface area within quadrature error.
std::vector<SurfacePoint> ellipsoid_surface_points(const Vec3& c, const Vec3& a, int m);

// Area and centroid of {q on the plane (c, n), within `extent` of c : inside(q)} by a square grid
// of pitch `step` (midpoint rule). extent bounds the search square's half side.
struct PlaneArea {
  double area = 0;
  Vec3 centroid{0, 0, 0};
};
PlaneArea plane_area(const Vec3& c, const Vec3& n, double extent, double step,
                     const std::function<bool(const Vec3&)>& inside);

}  // namespace vp::phantom
