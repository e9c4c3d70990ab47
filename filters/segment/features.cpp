#include "filters/segment/features.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/error.h"

namespace vp {

namespace {

std::string sigma_tag(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

// In-place 1-D convolution of every line along `axis` with a symmetric kernel, replicated border.
// Per voxel the taps are summed in kernel order from 0 (float), whichever the axis.
void convolve_axis(Volume<float>& v, int axis, const std::vector<double>& k) {
  const Dims d = v.dims();
  const index_t n = d[axis];
  const auto r = static_cast<index_t>(k.size() / 2);
  const std::vector<float> kf(k.begin(), k.end());
  if (axis == 0) {
    tbb::parallel_for(tbb::blocked_range<index_t>(0, d.y * d.z, 64), [&](const tbb::blocked_range<index_t>& range) {
      // The line padded with r replicated values each side: the tap loop needs no bounds checks.
      std::vector<float> line(static_cast<std::size_t>(n + 2 * r));
      for (index_t l = range.begin(); l != range.end(); ++l) {
        float* row = v.data() + l * n;
        for (index_t q = -r; q < n + r; ++q) line[q + r] = row[std::clamp<index_t>(q, 0, n - 1)];
        for (index_t q = 0; q < n; ++q) {
          const float* in = &line[q];
          float s = 0;
          for (index_t t = 0; t <= 2 * r; ++t) s += kf[t] * in[t];
          row[q] = s;
        }
      }
    });
    return;
  }
  // Along y and z whole rows of x are convolved at once (a line along the axis read one float
  // per cache line, along z one per page, was most of the time): rows q = 0..n−1 along the axis,
  // `stride` apart, in `sets` independent columns of rows (z planes for y, y rows for z). Rows
  // ahead of q are still the input; the r rows behind are kept, unsmoothed, in a ring.
  const index_t stride = axis == 1 ? d.x : d.x * d.y;
  const index_t sets = axis == 1 ? d.z : d.y, set_stride = axis == 1 ? d.x * d.y : d.x;
  const index_t w = d.x;
  tbb::parallel_for(index_t{0}, sets, [&](index_t s) {
    float* first = v.data() + s * set_stride;
    std::vector<float> ring(static_cast<std::size_t>(std::max<index_t>(r, 1) * w)), acc(static_cast<std::size_t>(w));
    std::vector<const float*> tap(static_cast<std::size_t>(2 * r + 1));
    for (index_t q = 0; q < n; ++q) {
      for (index_t t = 0; t <= 2 * r; ++t) {
        const index_t j = std::clamp<index_t>(q + t - r, 0, n - 1);
        tap[t] = j < q ? ring.data() + (j % r) * w : first + j * stride;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (index_t t = 0; t <= 2 * r; ++t) {
        const float c = kf[t], *in = tap[t];
        for (index_t x = 0; x < w; ++x) acc[x] += c * in[x];
      }
      float* row = first + q * stride;
      if (r > 0) std::copy(row, row + w, ring.data() + (q % r) * w);
      std::copy(acc.begin(), acc.end(), row);
    }
  });
}

}  // namespace

std::vector<double> gaussian_kernel(double sigma_vox) {
  const auto r = static_cast<int>(std::ceil(3 * sigma_vox));
  std::vector<double> k(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-0.5 * i * i / (sigma_vox * sigma_vox));
  for (double& w : k) w /= sum;
  return k;
}

std::vector<std::string> feature_names(const FeatureSettings& s) {
  std::vector<std::string> n{"intensity"};
  for (double sigma : s.sigmas_um)
    for (const char* f : {"gauss", "gradient", "hessian1", "hessian2", "hessian3", "log", "stddev"})
      n.push_back(std::string(f) + "_s" + sigma_tag(sigma));
  return n;
}

Volume<float> gaussian_smooth(const Volume<float>& v, double sigma_um) {
  if (!(sigma_um >= 0)) throw InputError("Gaussian σ must be >= 0 µm");
  Volume<float> out = v;
  if (sigma_um == 0) return out;
  for (int a = 0; a < 3; ++a) {
    const double s = sigma_um / v.spacing_um[a];
    if (s < 0.1 || v.dims()[a] == 1) continue;  // narrower than a tenth of a voxel: identity
    convolve_axis(out, a, gaussian_kernel(s));
  }
  return out;
}

GaussianSlabs::GaussianSlabs(const Volume<float>& v, double sigma_um) : v_(v), sigma_um_(sigma_um) {
  if (!(sigma_um >= 0)) throw InputError("Gaussian σ must be >= 0 µm");
  const double s = sigma_um / v.spacing_um[2];
  radius_ = s < 0.1 || v.dims().z == 1 ? 0 : static_cast<index_t>(gaussian_kernel(s).size() / 2);
}

void GaussianSlabs::smooth(index_t z0, index_t z1) {
  const Dims d = v_.dims();
  if (z0 < 0 || z1 > d.z || z0 >= z1) throw std::out_of_range("GaussianSlabs: bad slab");
  // The z pass reads radius_ slices each side, clamped at the volume's ends; the slab's own
  // clamping is the same there, and inside it never reaches past the context. x and y passes are
  // per slice. So gaussian_smooth on the slab with its context is the whole volume's, in place.
  const index_t h0 = std::max<index_t>(0, z0 - radius_), h1 = std::min(d.z, z1 + radius_);
  const index_t plane = d.x * d.y;
  first_ = h0 * plane;
  // A thicker slab than any before: free the old buffer before the new one is mapped, not after.
  if (static_cast<std::size_t>((h1 - h0) * plane) > buffer_.capacity()) std::vector<float>().swap(buffer_);
  buffer_.assign(v_.data() + first_, v_.data() + h1 * plane);  // keeps its capacity: mapped once
  if (sigma_um_ == 0) return;
  Volume<float> slab = Volume<float>::borrowing(buffer_.data(), Dims{d.x, d.y, h1 - h0}, v_.spacing_um);
  for (int a = 0; a < 3; ++a) {
    const double s = sigma_um_ / v_.spacing_um[a];
    if (s < 0.1 || d[a] == 1) continue;  // as gaussian_smooth: the whole volume's extent decides
    convolve_axis(slab, a, gaussian_kernel(s));
  }
}

std::array<double, 3> symmetric_eigenvalues(double a, double b, double c, double d, double e, double f) {
  // Smith's trigonometric closed form.
  const double p1 = d * d + e * e + f * f;
  std::array<double, 3> ev;
  if (p1 <= 1e-30 * (a * a + b * b + c * c) || p1 == 0) {
    ev = {a, b, c};
  } else {
    const double q = (a + b + c) / 3;
    const double p2 = (a - q) * (a - q) + (b - q) * (b - q) + (c - q) * (c - q) + 2 * p1;
    const double p = std::sqrt(p2 / 6);
    const double B11 = (a - q) / p, B22 = (b - q) / p, B33 = (c - q) / p, B12 = d / p, B13 = e / p, B23 = f / p;
    const double detB = B11 * (B22 * B33 - B23 * B23) - B12 * (B12 * B33 - B23 * B13) + B13 * (B12 * B23 - B22 * B13);
    const double rr = std::clamp(detB / 2, -1.0, 1.0);
    const double phi = std::acos(rr) / 3;
    const double e1 = q + 2 * p * std::cos(phi);
    const double e3 = q + 2 * p * std::cos(phi + 2 * M_PI / 3);
    ev = {e1, 3 * q - e1 - e3, e3};
  }
  std::sort(ev.begin(), ev.end());
  return ev;
}

index_t feature_halo(const Volume<float>& grey, const FeatureSettings& settings) {
  double max_sigma_vox = 0;
  for (double s : settings.sigmas_um) {
    if (!(s > 0)) throw InputError("feature scales must be > 0 µm");
    max_sigma_vox = std::max(max_sigma_vox, s / grey.spacing_um[2]);
  }
  // The 3σ kernel plus one voxel for the finite differences.
  return static_cast<index_t>(std::ceil(3 * max_sigma_vox)) + 1;
}

std::vector<float> voxel_features(const Volume<float>& grey, const FeatureSettings& settings, index_t z0, index_t z1) {
  const Dims d = grey.dims();
  if (z0 < 0 || z1 > d.z || z0 >= z1) throw std::out_of_range("voxel_features: bad slab");
  const index_t halo = feature_halo(grey, settings);
  const index_t h0 = std::max<index_t>(0, z0 - halo), h1 = std::min(d.z, z1 + halo);
  Box box;
  box.min = {0, 0, h0};
  box.size = {d.x, d.y, h1 - h0};
  const Volume<float> slab = grey.crop(box);
  const Dims sd = slab.dims();
  const std::size_t nf = 1 + 7 * settings.sigmas_um.size();
  const index_t plane = d.x * d.y;
  const index_t n = plane * (z1 - z0);
  std::vector<float> out(static_cast<std::size_t>(n) * nf);
  const index_t off = (z0 - h0) * plane;
  for (index_t i = 0; i < n; ++i) out[i * nf] = slab[off + i];

  Volume<float> squared = slab;
  for (auto& v : squared.storage()) v = v * v;
  const Vec3 h = grey.spacing_um;
  for (std::size_t si = 0; si < settings.sigmas_um.size(); ++si) {
    const double sigma = settings.sigmas_um[si];
    const Volume<float> g = gaussian_smooth(slab, sigma);
    const Volume<float> g2 = gaussian_smooth(squared, sigma);
    const std::size_t c0 = 1 + 7 * si;
    tbb::parallel_for(tbb::blocked_range<index_t>(0, n, 4096), [&](const tbb::blocked_range<index_t>& r) {
      for (index_t i = r.begin(); i != r.end(); ++i) {
        const index_t j = off + i;
        const index_t x = j % sd.x, y = (j / sd.x) % sd.y, z = j / plane;
        // Neighbour indices with replicated borders.
        const index_t xm = x > 0 ? x - 1 : x, xp = x + 1 < sd.x ? x + 1 : x;
        const index_t ym = y > 0 ? y - 1 : y, yp = y + 1 < sd.y ? y + 1 : y;
        const index_t zm = z > 0 ? z - 1 : z, zp = z + 1 < sd.z ? z + 1 : z;
        auto G = [&](index_t a, index_t b, index_t c) { return static_cast<double>(g(a, b, c)); };
        const double c = G(x, y, z);
        const double gx = (G(xp, y, z) - G(xm, y, z)) / (2 * h[0]);
        const double gy = (G(x, yp, z) - G(x, ym, z)) / (2 * h[1]);
        const double gz = (G(x, y, zp) - G(x, y, zm)) / (2 * h[2]);
        const double hxx = (G(xp, y, z) - 2 * c + G(xm, y, z)) / (h[0] * h[0]);
        const double hyy = (G(x, yp, z) - 2 * c + G(x, ym, z)) / (h[1] * h[1]);
        const double hzz = (G(x, y, zp) - 2 * c + G(x, y, zm)) / (h[2] * h[2]);
        const double hxy = (G(xp, yp, z) - G(xp, ym, z) - G(xm, yp, z) + G(xm, ym, z)) / (4 * h[0] * h[1]);
        const double hxz = (G(xp, y, zp) - G(xp, y, zm) - G(xm, y, zp) + G(xm, y, zm)) / (4 * h[0] * h[2]);
        const double hyz = (G(x, yp, zp) - G(x, yp, zm) - G(x, ym, zp) + G(x, ym, zm)) / (4 * h[1] * h[2]);
        const auto ev = symmetric_eigenvalues(hxx, hyy, hzz, hxy, hxz, hyz);
        // Scale normalisation (σ for first, σ² for second derivatives) keeps scales comparable.
        const double s2 = sigma * sigma;
        float* row = &out[static_cast<std::size_t>(i) * nf + c0];
        row[0] = static_cast<float>(c);
        row[1] = static_cast<float>(sigma * std::sqrt(gx * gx + gy * gy + gz * gz));
        row[2] = static_cast<float>(s2 * ev[0]);
        row[3] = static_cast<float>(s2 * ev[1]);
        row[4] = static_cast<float>(s2 * ev[2]);
        row[5] = static_cast<float>(s2 * (hxx + hyy + hzz));
        row[6] = static_cast<float>(std::sqrt(std::max(0.0, static_cast<double>(g2[j]) - c * c)));
      }
    });
  }
  return out;
}

}  // namespace vp
