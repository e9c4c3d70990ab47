// Multi-scale dark-sheet response: per scale one separable Gaussian smoothing (three 1-D
// passes) and the Hessian by central differences of the smoothed image, evaluated voxel by
// voxel, so no tensor volume is ever stored.
#include "metrics/cracks/sheetness.h"

#include <algorithm>
#include <cmath>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "core/progress.h"
#include "filters/segment/features.h"

namespace vp {

namespace {

// Separable Gaussian with σ_um / spacing voxels per axis (taps of features.h's
// gaussian_kernel: radius ⌈3σ⌉, replicated border). Float sums in a fixed tap order, so the
// result does not depend on the thread count. x and y go plane by plane through one plane of
// scratch, z in place row by row through one x–z slab of scratch: no second volume.
void smooth(const Volume<float>& in, double sigma_um, Volume<float>& out) {
  const Dims d = in.dims();
  std::array<std::vector<float>, 3> taps;
  for (int a = 0; a < 3; ++a) {
    const double s = sigma_um / in.spacing_um[a];
    std::vector<double> k = s < 0.1 ? std::vector<double>{1.0} : gaussian_kernel(s);
    taps[a].assign(k.begin(), k.end());
  }
  const index_t plane = d.x * d.y;
  // One 1-D pass along an axis of `lines` positions, each a row of d.x values (src_step and
  // dst_step apart): whole rows at a time (contiguous in x, so the inner loop vectorises).
  auto pass = [&](const float* src, index_t src_step, float* dst, index_t dst_step, index_t lines, int axis) {
    const int rr = static_cast<int>(taps[axis].size() / 2);
    const float* k = taps[axis].data() + rr;
    for (index_t p = 0; p < lines; ++p) {
      const float* c = src + p * src_step;
      float* out_row = dst + p * dst_step;
      for (index_t x = 0; x < d.x; ++x) out_row[x] = k[0] * c[x];
      for (int j = 1; j <= rr; ++j) {
        const float* lo = src + std::clamp<index_t>(p - j, 0, lines - 1) * src_step;
        const float* hi = src + std::clamp<index_t>(p + j, 0, lines - 1) * src_step;
        for (index_t x = 0; x < d.x; ++x) out_row[x] += k[j] * (lo[x] + hi[x]);
      }
    }
  };
  const int rx = static_cast<int>(taps[0].size() / 2);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& r) {
    std::vector<float> row(static_cast<std::size_t>(d.x + 2 * rx)), xs(static_cast<std::size_t>(plane));
    const float* k = taps[0].data() + rx;
    for (index_t z = r.begin(); z < r.end(); ++z) {
      // x: row by row through a padded copy of the row.
      for (index_t y = 0; y < d.y; ++y) {
        const float* src = in.data() + z * plane + y * d.x;
        for (index_t x = -rx; x < d.x + rx; ++x) row[x + rx] = src[std::clamp<index_t>(x, 0, d.x - 1)];
        float* dst = xs.data() + y * d.x;
        const float* c = row.data() + rx;
        for (index_t x = 0; x < d.x; ++x) {
          float acc = k[0] * c[x];
          for (int j = 1; j <= rx; ++j) acc += k[j] * (c[x - j] + c[x + j]);
          dst[x] = acc;
        }
      }
      pass(xs.data(), d.x, out.data() + z * plane, d.x, d.y, 1);
    }
  });
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.y), [&](const tbb::blocked_range<index_t>& r) {
    std::vector<float> slab(static_cast<std::size_t>(d.z * d.x));
    for (index_t y = r.begin(); y < r.end(); ++y) {
      float* rows = out.data() + y * d.x;
      for (index_t z = 0; z < d.z; ++z) std::copy_n(rows + z * plane, d.x, slab.data() + z * d.x);
      pass(slab.data(), d.x, rows, plane, d.z, 2);
    }
  });
}

// Eigenvalues of a symmetric 3×3 matrix in closed form (Smith 1961), unsorted.
void eigenvalues(double a00, double a01, double a02, double a11, double a12, double a22, double out[3]) {
  const double p1 = a01 * a01 + a02 * a02 + a12 * a12;
  const double q = (a00 + a11 + a22) / 3;
  const double p2 = (a00 - q) * (a00 - q) + (a11 - q) * (a11 - q) + (a22 - q) * (a22 - q) + 2 * p1;
  if (p2 == 0) {
    out[0] = out[1] = out[2] = q;
    return;
  }
  const double p = std::sqrt(p2 / 6);
  const double b00 = (a00 - q) / p, b11 = (a11 - q) / p, b22 = (a22 - q) / p, b01 = a01 / p, b02 = a02 / p,
               b12 = a12 / p;
  const double r = std::clamp(
      (b00 * (b11 * b22 - b12 * b12) - b01 * (b01 * b22 - b12 * b02) + b02 * (b01 * b12 - b11 * b02)) / 2, -1.0, 1.0);
  const double phi = std::acos(r) / 3;
  out[0] = q + 2 * p * std::cos(phi);
  out[2] = q + 2 * p * std::cos(phi + 2 * M_PI / 3);
  out[1] = 3 * q - out[0] - out[2];
}

// Unit eigenvector of the symmetric matrix A for its simple eigenvalue l: the largest cross
// product of two rows of A − l·I (each row is orthogonal to the eigenvector).
Vec3 eigenvector(const double A[3][3], double l) {
  const double r0[3] = {A[0][0] - l, A[0][1], A[0][2]}, r1[3] = {A[1][0], A[1][1] - l, A[1][2]},
               r2[3] = {A[2][0], A[2][1], A[2][2] - l};
  auto cross = [](const double* u, const double* v) {
    return Vec3{u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
  };
  const Vec3 c[3] = {cross(r0, r1), cross(r0, r2), cross(r1, r2)};
  int best = 0;
  double best_n = -1;
  for (int k = 0; k < 3; ++k) {
    const double n = c[k][0] * c[k][0] + c[k][1] * c[k][1] + c[k][2] * c[k][2];
    if (n > best_n) best_n = n, best = k;
  }
  if (!(best_n > 0)) return {0, 0, 1};
  const double s = 1 / std::sqrt(best_n);
  return {c[best][0] * s, c[best][1] * s, c[best][2] * s};
}

// The response M at the voxels where `where` != 0, or at every voxel when `where` is null, handed
// to `result`: result.raises(i, M) says whether M could change what voxel i holds (the maximum
// over the scales, or its level), result.take(i, M) records it. M ≤ its Frobenius factor, so a
// voxel whose factor raises nothing is skipped.
template <class Result>
void sheet_response(const Volume<float>& grey, const SheetnessOptions& o, const std::uint8_t* where, Result& result) {
  if (!(o.contrast > 0))
    throw InputError("sheetness: contrast " + std::to_string(o.contrast) +
                     " (host minus void grey level) must be positive");
  for (double s_vox : o.scales_vox)
    if (!(s_vox > 0)) throw InputError("sheetness: scale " + std::to_string(s_vox) + " voxels must be positive");
  const Vec3 h = grey.spacing_um;
  const double h_min = std::min({h[0], h[1], h[2]});
  const Dims d = grey.dims();
  const double c = o.contrast_fraction * o.contrast;
  const double valley = o.valley_fraction * o.contrast;
  const double below_host =
      std::isfinite(o.host_level) ? o.host_level - valley : std::numeric_limits<double>::infinity();
  const double floor_m = 0.05;  // negligible responses skip the valley test
  Volume<float> g = grey.like<float>(d);

  for (double s_vox : o.scales_vox) {
    const double sigma = s_vox * h_min;
    smooth(grey, sigma, g);
    const float* G = g.data();
    // Scale-normalised second differences: σ²·∂²/∂a∂b.
    const double sxx = sigma * sigma / (h[0] * h[0]), syy = sigma * sigma / (h[1] * h[1]),
                 szz = sigma * sigma / (h[2] * h[2]), sxy = sigma * sigma / (4 * h[0] * h[1]),
                 sxz = sigma * sigma / (4 * h[0] * h[2]), syz = sigma * sigma / (4 * h[1] * h[2]);

    tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& r) {
      cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
      for (index_t z = r.begin(); z < r.end(); ++z) {
        const index_t zm = (z > 0 ? z - 1 : z) * d.x * d.y, zp = (z + 1 < d.z ? z + 1 : z) * d.x * d.y,
                      z0 = z * d.x * d.y;
        for (index_t y = 0; y < d.y; ++y) {
          const index_t ym = (y > 0 ? y - 1 : y) * d.x, yp = (y + 1 < d.y ? y + 1 : y) * d.x, y0 = y * d.x;
          for (index_t x = 0; x < d.x; ++x) {
            const index_t i = z0 + y0 + x;
            if (where && !where[i]) continue;
            const double g0 = G[i];
            if (g0 > below_host) continue;  // not below the host level: no crack centre
            const index_t xm = x > 0 ? x - 1 : x, xp = x + 1 < d.x ? x + 1 : x;
            auto at = [&](index_t zz, index_t yy, index_t xx) { return static_cast<double>(G[zz + yy + xx]); };
            const double hxx = sxx * (at(z0, y0, xp) - 2 * g0 + at(z0, y0, xm));
            const double hyy = syy * (at(z0, yp, x) - 2 * g0 + at(z0, ym, x));
            const double hzz = szz * (at(zp, y0, x) - 2 * g0 + at(zm, y0, x));
            const double hxy = sxy * (at(z0, yp, xp) - at(z0, ym, xp) - at(z0, yp, xm) + at(z0, ym, xm));
            const double hxz = sxz * (at(zp, y0, xp) - at(zm, y0, xp) - at(zp, y0, xm) + at(zm, y0, xm));
            const double hyz = syz * (at(zp, yp, x) - at(zm, yp, x) - at(zp, ym, x) + at(zm, ym, x));
            // S² = ‖λ‖² is the Frobenius norm: its factor alone bounds M, so most voxels stop here.
            const double s2 = hxx * hxx + hyy * hyy + hzz * hzz + 2 * (hxy * hxy + hxz * hxz + hyz * hyz);
            const double m_s = 1 - std::exp(-s2 / (2 * c * c));
            if (m_s < floor_m || !result.raises(i, m_s)) continue;
            double l[3];
            eigenvalues(hxx, hxy, hxz, hyy, hyz, hzz, l);
            std::sort(l, l + 3, [](double a, double b) { return std::abs(a) < std::abs(b); });
            if (l[2] <= 0) continue;
            const double rs = std::abs(l[1]) / l[2];
            const double rb = std::abs(2 * l[2] - std::abs(l[1]) - std::abs(l[0])) / l[2];
            const double m =
                std::exp(-rs * rs / (2 * o.alpha * o.alpha)) * (1 - std::exp(-rb * rb / (2 * o.beta * o.beta))) * m_s;
            if (m < floor_m || !result.raises(i, m)) continue;
            // Valley test along the sheet normal (the eigenvector of the largest eigenvalue).
            const double A[3][3] = {{hxx, hxy, hxz}, {hxy, hyy, hyz}, {hxz, hyz, hzz}};
            const Vec3 n = eigenvector(A, l[2]);
            // Smoothed grey at p + t·n, nearest voxel (clamped to the volume).
            auto grey_along = [&](double t) {
              index_t p[3] = {x, y, z};
              for (int k = 0; k < 3; ++k)
                p[k] = std::clamp<index_t>(p[k] + round_half_away(t * n[k] / h[k]), 0, d[k] - 1);
              return G[g.index(p[0], p[1], p[2])];
            };
            bool keep = true;
            for (int side = -1; side <= 1 && keep; side += 2) {
              keep = grey_along(side * 2 * sigma) - g0 >= valley;
              // Ridge only: the valley floor, not its flanks, so that a crack the labels
              // already hold is not widened.
              if (o.ridge_only) {
                const double step = std::abs(n[0]) * h[0] + std::abs(n[1]) * h[1] + std::abs(n[2]) * h[2];
                keep = keep && grey_along(side * step) >= g0;
              }
            }
            if (keep) result.take(i, m);
          }
        }
      }
    });
  }
}

// The maximum of M over the scales (0 where none passes).
struct MaximumResponse {
  Volume<float> best;
  bool raises(index_t i, double m) const { return m > best[i]; }
  void take(index_t i, double m) { best[i] = static_cast<float>(m); }
};

Volume<float> sheetness_at(const Volume<float>& grey, const SheetnessOptions& o, const std::uint8_t* where) {
  MaximumResponse r{grey.like<float>(grey.dims(), 0.0f)};
  sheet_response(grey, o, where, r);
  return std::move(r.best);
}

// The level the maximum reaches, kept as 1 + level in the mask itself (0 stays outside): the
// level of the float the maximum would be stored as, so that it is that value's threshold.
struct ResponseLevel {
  std::uint8_t* level;
  double low, high;
  std::uint8_t of(double m) const {
    const double stored = static_cast<float>(m);
    return static_cast<std::uint8_t>(1 + (stored >= low) + (stored >= high));
  }
  bool raises(index_t i, double m) const { return of(m) > level[i]; }
  void take(index_t i, double m) { level[i] = std::max(level[i], of(m)); }
};

void check_mask(const Volume<float>& grey, const Volume<std::uint8_t>& mask) {
  if (!(mask.dims() == grey.dims()))
    throw InputError("sheetness: mask " + to_string(mask.dims()) + " and grey image " + to_string(grey.dims()) +
                     " differ in size; expected the same dims");
}

}  // namespace

Volume<float> dark_sheetness(const Volume<float>& grey, const SheetnessOptions& o) {
  return sheetness_at(grey, o, nullptr);
}

Volume<float> dark_sheetness(const Volume<float>& grey, const SheetnessOptions& o, const Volume<std::uint8_t>& where) {
  check_mask(grey, where);
  return sheetness_at(grey, o, where.data());
}

void dark_sheetness_levels(const Volume<float>& grey, const SheetnessOptions& o, Volume<std::uint8_t>& where,
                           double low, double high) {
  check_mask(grey, where);
  ResponseLevel r{where.data(), low, high};
  const std::uint8_t none = r.of(0.0);  // the level of a voxel where no scale passes (its response is 0)
  for (auto& v : where.storage()) v = v ? none : 0;
  sheet_response(grey, o, where.data(), r);
  for (auto& v : where.storage()) v = v ? v - 1 : 0;
}

}  // namespace vp
