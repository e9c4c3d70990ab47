#include "dvc/registration.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <functional>
#include <numbers>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"
#include "dvc/bspline.h"
#include "dvc/subset_match.h"

namespace vp::dvc {

namespace {

using cd = std::complex<double>;

index_t next_pow2(index_t n) {
  index_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// In-place radix-2 FFT of n (a power of two) values spaced by `stride`.
void fft_line(cd* a, index_t n, index_t stride, bool inverse) {
  for (index_t i = 1, j = 0; i < n; ++i) {
    index_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i * stride], a[j * stride]);
  }
  for (index_t len = 2; len <= n; len <<= 1) {
    const double ang = 2 * std::numbers::pi / static_cast<double>(len) * (inverse ? 1 : -1);
    const cd wl(std::cos(ang), std::sin(ang));
    for (index_t i = 0; i < n; i += len) {
      cd w(1);
      for (index_t k = 0; k < len / 2; ++k) {
        const cd u = a[(i + k) * stride], v = a[(i + k + len / 2) * stride] * w;
        a[(i + k) * stride] = u + v;
        a[(i + k + len / 2) * stride] = u - v;
        w *= wl;
      }
    }
  }
}

void fft3(std::vector<cd>& a, index_t nx, index_t ny, index_t nz, bool inverse) {
  for (index_t z = 0; z < nz; ++z)
    for (index_t y = 0; y < ny; ++y) fft_line(&a[nx * (y + ny * z)], nx, 1, inverse);
  for (index_t z = 0; z < nz; ++z)
    for (index_t x = 0; x < nx; ++x) fft_line(&a[x + nx * ny * z], ny, nx, inverse);
  for (index_t y = 0; y < ny; ++y)
    for (index_t x = 0; x < nx; ++x) fft_line(&a[x + nx * y], nz, nx * ny, inverse);
}

std::vector<cd> windowed_spectrum(const Volume<float>& v, index_t px, index_t py, index_t pz) {
  const Dims& d = v.dims();
  double mean = 0;
  for (index_t i = 0; i < v.size(); ++i) mean += v[i];
  mean /= static_cast<double>(v.size());
  auto hann = [](index_t i, index_t n) { return 0.5 - 0.5 * std::cos(2 * std::numbers::pi * (i + 0.5) / n); };
  std::vector<cd> a(static_cast<std::size_t>(px * py * pz));
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x)
        a[x + px * (y + py * z)] = (v(x, y, z) - mean) * hann(x, d.x) * hann(y, d.y) * hann(z, d.z);
  fft3(a, px, py, pz, false);
  return a;
}

}  // namespace

Vec3 phase_correlation(const Volume<float>& ref, const Volume<float>& def) {
  const Dims& d = ref.dims();
  const index_t px = next_pow2(d.x), py = next_pow2(d.y), pz = next_pow2(d.z);
  std::vector<cd> f = windowed_spectrum(ref, px, py, pz), g = windowed_spectrum(def, px, py, pz);
  for (std::size_t i = 0; i < f.size(); ++i) {
    const cd c = std::conj(f[i]) * g[i];
    const double m = std::abs(c);
    f[i] = m > 1e-30 ? c / m : cd(0);
  }
  fft3(f, px, py, pz, true);
  std::size_t best = 0;
  for (std::size_t i = 1; i < f.size(); ++i)
    if (f[i].real() > f[best].real()) best = i;
  const index_t bx = static_cast<index_t>(best) % px, by = (static_cast<index_t>(best) / px) % py,
                bz = static_cast<index_t>(best) / (px * py);
  auto at = [&](index_t x, index_t y, index_t z) {
    return f[((x + px) % px) + px * (((y + py) % py) + py * ((z + pz) % pz))].real();
  };
  auto parabola = [](double m, double c, double p) {
    const double den = m - 2 * c + p;
    return den < 0 ? std::clamp(0.5 * (m - p) / den, -0.5, 0.5) : 0.0;
  };
  const double c0 = at(bx, by, bz);
  Vec3 t{bx + parabola(at(bx - 1, by, bz), c0, at(bx + 1, by, bz)),
         by + parabola(at(bx, by - 1, bz), c0, at(bx, by + 1, bz)),
         bz + parabola(at(bx, by, bz - 1), c0, at(bx, by, bz + 1))};
  const index_t p[3] = {px, py, pz};
  for (int a = 0; a < 3; ++a)
    if (t[a] > p[a] / 2.0) t[a] -= static_cast<double>(p[a]);
  return t;
}

Volume<float> bin_volume(const Volume<float>& v, int b) {
  const Dims& d = v.dims();
  const Dims o{d.x / b, d.y / b, d.z / b};
  Volume<float> out(o, {v.spacing_um[0] * b, v.spacing_um[1] * b, v.spacing_um[2] * b});
  const double inv = 1.0 / (b * b * b);
  for (index_t z = 0; z < o.z; ++z)
    for (index_t y = 0; y < o.y; ++y)
      for (index_t x = 0; x < o.x; ++x) {
        double s = 0;
        for (int k = 0; k < b; ++k)
          for (int j = 0; j < b; ++j)
            for (int i = 0; i < b; ++i) s += v(x * b + i, y * b + j, z * b + k);
        out(x, y, z) = static_cast<float>(s * inv);
      }
  return out;
}

Registration register_scans(const Volume<float>& ref, const Volume<float>& def, const RegistrationOptions& options) {
  if (!(ref.dims() == def.dims()))
    throw InputError("registration: the scans differ in size (" + to_string(ref.dims()) + " and " +
                     to_string(def.dims()) + ")");
  // Pyramid: level 0 is the full resolution, each level halves it.
  std::vector<Volume<float>> refs{ref}, defs{def};
  while (std::min({refs.back().dims().x, refs.back().dims().y, refs.back().dims().z}) > 2 * options.coarsest_size) {
    refs.push_back(bin_volume(refs.back(), 2));
    defs.push_back(bin_volume(defs.back(), 2));
  }
  Registration out;
  out.levels = static_cast<int>(refs.size());
  // Phase correlation on the coarsest level (≤ 2× coarsest_size per axis: a small FFT).
  const Volume<float>& top = refs.back();
  const Vec3 pc = phase_correlation(top, defs.back());
  const double scale_top = std::pow(2.0, static_cast<double>(refs.size() - 1));
  out.phase_correlation_vox = {pc[0] * scale_top, pc[1] * scale_top, pc[2] * scale_top};

  AffineWarp warp;
  for (int a = 0; a < 3; ++a) warp.centre[a] = (top.dims()[a] - 1) / 2.0;
  warp.t = {std::round(pc[0]), std::round(pc[1]), std::round(pc[2])};
  for (int level = static_cast<int>(refs.size()) - 1; level >= 0; --level) {
    const Volume<float>& r = refs[static_cast<std::size_t>(level)];
    const BSplineVolume rs(r), ds(defs[static_cast<std::size_t>(level)]);
    const Dims& d = r.dims();
    // Lattice sub-sampling keeps each level's cost bounded; the margin keeps gradients in the volume.
    index_t stride = 1;
    while ((d.x / stride) * (d.y / stride) * (d.z / stride) > options.max_points) ++stride;
    std::vector<std::array<index_t, 3>> points;
    for (index_t z = 2; z < d.z - 2; z += stride)
      for (index_t y = 2; y < d.y - 2; y += stride)
        for (index_t x = 2; x < d.x - 2; x += stride) points.push_back({x, y, z});
    Vec3 centre;
    for (int a = 0; a < 3; ++a) centre[a] = (d[a] - 1) / 2.0;
    const SubsetTemplate tpl = make_template(r, rs, centre, points);
    MatchOptions mo;
    mo.allow_partial = true;
    mo.rigid = !options.affine;
    mo.max_iterations = 60;
    mo.tolerance = level == 0 ? 1e-4 : 1e-2;
    warp.centre = centre;
    const MatchResult m = match_subset(tpl, ds, warp, mo);
    if (m.status == MatchStatus::outside || m.status == MatchStatus::singular)
      throw ComputeError("registration failed at pyramid level " + std::to_string(level) +
                         ": the scans do not overlap enough or have no texture");
    warp = m.warp;
    out.residual = m.residual;
    out.converged = m.status == MatchStatus::converged;
    if (level > 0) {
      // To the next finer level: x_fine = 2·x_coarse + 0.5; F unchanged.
      const Dims& fd = refs[static_cast<std::size_t>(level - 1)].dims();
      Vec3 fine_centre, coarse_point;
      for (int a = 0; a < 3; ++a) {
        fine_centre[a] = (fd[a] - 1) / 2.0;
        coarse_point[a] = (fine_centre[a] - 0.5) / 2;
      }
      const Vec3 u = warp.displacement(coarse_point);
      warp.centre = fine_centre;
      for (int a = 0; a < 3; ++a) warp.t[a] = 2 * u[a];
    }
  }
  out.warp = warp;
  return out;
}

Volume<float> resample_to_reference(const Volume<float>& scan, const AffineWarp& warp, double* outside_fraction) {
  const Dims d = scan.dims();
  if (d.x < 4 || d.y < 4 || d.z < 4)
    throw InputError("resample: the scan is " + to_string(d) + "; a cubic B-spline needs at least 4 voxels per axis");
  const BSplineVolume spline(scan);
  Volume<float> out = scan.like(d);
  const double hi[3] = {double(d.x) - 2.000001, double(d.y) - 2.000001, double(d.z) - 2.000001};
  const double last[3] = {double(d.x - 1), double(d.y - 1), double(d.z - 1)};
  // Whole z-planes per task and an integer count: the same result for any thread count.
  const index_t outside = tbb::parallel_reduce(
      tbb::blocked_range<index_t>(0, d.z, 1), index_t{0},
      [&](const tbb::blocked_range<index_t>& r, index_t count) {
        for (index_t z = r.begin(); z != r.end(); ++z)
          for (index_t y = 0; y < d.y; ++y)
            for (index_t x = 0; x < d.x; ++x) {
              Vec3 p = warp.apply({double(x), double(y), double(z)});
              bool out_of_scan = false;
              for (int a = 0; a < 3; ++a) {
                out_of_scan = out_of_scan || p[a] < 0 || p[a] > last[a];
                p[a] = std::clamp(p[a], 1.0, hi[a]);
              }
              count += out_of_scan ? 1 : 0;
              out(x, y, z) = spline.value(p[0], p[1], p[2]);
            }
        return count;
      },
      std::plus<>());
  if (outside_fraction) *outside_fraction = static_cast<double>(outside) / static_cast<double>(d.count());
  return out;
}

}  // namespace vp::dvc
