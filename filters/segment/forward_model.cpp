#include "filters/segment/forward_model.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include <tbb/parallel_for.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/axis.h"
#include "core/error.h"
#include "core/gaussian.h"

namespace vp {

namespace {

// gaussian_blur (filters/preprocess/psf.h) cuts its kernel at 4σ; the model uses the same operator.
constexpr double kTruncate = 4.0;
constexpr int kMaxClasses = 8;  // labels are bits of an unsigned mask, per-candidate arrays are this long

// B v in place: the callers' volumes are their own scratch, and a copy would be the relabelling's
// peak (4 B/voxel more than c, which is all the sweep keeps).
void blur_in_place(Volume<float>& v, const std::array<double, 3>& sigma) {
  for (int a = 0; a < 3; ++a)
    if (v.dims()[a] > 1) gaussian_blur_axis(v, a, sigma[a], kTruncate);
}

// One axis of B as a matrix: M[i][j] = Σ of the taps t with clamp(i + t) = j (edges clamped, as
// gaussian_blur_axis). Stored as its column norms ‖M e_j‖² and the band of MᵀM (half-width 2R),
// which make the data term's change exact also within 4σ of a face, where M is not symmetric.
struct AxisOperator {
  std::vector<double> taps;
  int radius = 0;                   // R
  std::vector<double> column_norm;  // ‖M e_j‖², per j
  std::vector<double> gram;         // (MᵀM)[j][j + t], t in [−2R, 2R]: gram[j * (4R + 1) + t + 2R]
  std::vector<float> gram_float;    // the same band in float: c's local update after a flip, 4 or 8 lanes wide
};

AxisOperator make_axis(double sigma, index_t n) {
  AxisOperator op;
  op.taps = gaussian_taps(sigma, kTruncate);
  const int r = static_cast<int>(op.taps.size() / 2);
  op.radius = r;
  // Dense per row i (the taps folded at the faces), then MᵀM's band.
  const int w = 4 * r + 1;
  op.column_norm.assign(static_cast<std::size_t>(n), 0.0);
  op.gram.assign(static_cast<std::size_t>(n) * w, 0.0);
  std::vector<std::pair<index_t, double>> row;
  for (index_t i = 0; i < n; ++i) {
    row.clear();
    for (int t = -r; t <= r; ++t) {
      const index_t j = std::clamp<index_t>(i + t, 0, n - 1);
      if (!row.empty() && row.back().first == j) row.back().second += op.taps[t + r];
      else row.emplace_back(j, op.taps[t + r]);
    }
    for (const auto& [j, mij] : row) {
      op.column_norm[j] += mij * mij;
      for (const auto& [l, mil] : row) op.gram[static_cast<std::size_t>(j) * w + (l - j) + 2 * r] += mij * mil;
    }
  }
  op.gram_float.assign(op.gram.begin(), op.gram.end());
  return op;
}

// Mᵀ on `width` neighbouring lines (consecutive x, `w` ≤ width of them inside the volume) starting
// at voxel `base`: away from the two end voxels Mᵀ is the convolution with the (symmetric) taps, the
// line padded with zeros; the end voxels also collect the folded taps, (Mᵀ v)[0] = Σ_i v_i Σ_{t ≤ −i}
// k_t and likewise at n − 1.
template <index_t width>
void adjoint_lines(Volume<float>& v, index_t base, index_t w, index_t n, index_t stride, const AxisOperator& op) {
  const int r = op.radius;
  const double* k = op.taps.data();
  std::vector<double> in(static_cast<std::size_t>((n + 2 * r) * width), 0.0);
  for (index_t i = 0; i < n; ++i)
    for (index_t u = 0; u < w; ++u) in[(i + r) * width + u] = v[base + i * stride + u];
  const double* p = in.data() + r * width;
  for (index_t j = 1; j + 1 < n; ++j) {
    double acc[width] = {};
    for (int t = -r; t <= r; ++t)
      for (index_t u = 0; u < width; ++u) acc[u] += k[t + r] * p[(j - t) * width + u];
    for (index_t u = 0; u < w; ++u) v[base + j * stride + u] = static_cast<float>(acc[u]);
  }
  double first[width] = {}, last[width] = {};
  for (int i = 0; i <= r && i < n; ++i) {
    double fold = 0;  // Σ_{t = −r}^{−i} k_t = Σ_{t = i}^{r} k_t (the taps are symmetric)
    for (int t = -r; t <= -i; ++t) fold += k[t + r];
    for (index_t u = 0; u < width; ++u)
      first[u] += fold * p[i * width + u], last[u] += fold * p[(n - 1 - i) * width + u];
  }
  for (index_t u = 0; u < w; ++u) {
    v[base + u] = static_cast<float>(first[u]);
    v[base + (n - 1) * stride + u] = static_cast<float>(last[u]);
  }
}

// Mᵀ along one axis, in place (the adjoint of gaussian_blur_axis's clamped convolution). Along y
// and z 16 neighbouring lines go together, as in gaussian_blur_axis: the same sums per voxel.
void adjoint_axis(Volume<float>& v, int axis, const AxisOperator& op) {
  const Dims d = v.dims();
  if (op.radius == 0 || d[axis] == 1) return;
  for_each_line_group(d, axis, [&](auto width, index_t base, index_t w, index_t n, index_t stride) {
    adjoint_lines<decltype(width)::value>(v, base, w, n, stride, op);
  });
}

struct Model {
  int classes = 0;
  std::array<AxisOperator, 3> axis;
  std::vector<double> beta;  // [a * classes + b]
  // c's update after a flip at v, Δμ BᵀB e_v, reaches 2R along each axis, but most of that box is
  // below float's resolution: with a(t) the taps' autocorrelation per axis, the terms where
  // a_x(t_x) a_y(t_y) a_z(t_z) < 2⁻²⁴ a_x(0) a_y(0) a_z(0) are skipped (an ellipsoid, 45 % of the
  // box at σ 1). reach_x[(t_z + 2R_z) (4R_y + 1) + t_y + 2R_y] is the x half-width kept on the row
  // (t_y, t_z), −1 for none.
  std::vector<int> reach_x;
};

// −ln(a(t) / a(0)) for t in [0, 2R], a the taps' autocorrelation (∞ where a(t) = 0).
std::vector<double> autocorrelation_decay(const std::vector<double>& taps) {
  const int n = static_cast<int>(taps.size());
  std::vector<double> a(static_cast<std::size_t>(n));
  for (int t = 0; t < n; ++t)
    for (int u = 0; u + t < n; ++u) a[t] += taps[u] * taps[u + t];
  std::vector<double> q(static_cast<std::size_t>(n));
  for (int t = 0; t < n; ++t) q[t] = a[t] > 0 ? std::log(a[0] / a[t]) : INFINITY;
  return q;
}

std::vector<int> update_reach(const std::array<AxisOperator, 3>& axis) {
  const double budget = 24 * std::log(2.0);
  std::array<std::vector<double>, 3> q;
  for (int a = 0; a < 3; ++a) q[a] = autocorrelation_decay(axis[a].taps);
  const int ry = 2 * axis[1].radius, rz = 2 * axis[2].radius;
  std::vector<int> reach;
  for (int tz = -rz; tz <= rz; ++tz)
    for (int ty = -ry; ty <= ry; ++ty) {
      const double left = budget - q[2][std::abs(tz)] - q[1][std::abs(ty)];
      int h = -1;
      while (h < 2 * axis[0].radius && q[0][h + 1] <= left) ++h;
      reach.push_back(h);
    }
  return reach;
}

// The rows (y, z) of c that a sweep still reads: row y + n_y z ≥ from and z ≤ to, or z < below. In
// the last sweep a row already visited is never read again (c is not needed after it), so a flip
// need not update it: in slab order that is the slab's rows before the flip's and, for the second
// parity, the first parity's slabs beside it. Every row is read in any other sweep.
struct LiveRows {
  index_t from = 0, to = 0, below = 0;
};

// c −= Δμ BᵀB e_v after the flip of v = (x, y, z), over the band that update_reach keeps, on the
// rows still read. Cloned for AVX2 where the CPU has it (no FMA: a product then a difference, so the
// same floats as the SSE2 clone): ≈ 40 % of the relabelling's CPU at 256³ is here (1.26 M flips,
// ≈ 2 250 floats each).
__attribute__((target_clones("avx2", "default"))) void subtract_flip(Volume<float>& c, const Model& m, index_t x,
                                                                     index_t y, index_t z, double dmu,
                                                                     const LiveRows& live) {
  const Dims d = c.dims();
  const int r2[3] = {2 * m.axis[0].radius, 2 * m.axis[1].radius, 2 * m.axis[2].radius};
  const index_t z0 = std::max<index_t>(z - r2[2], 0), z1 = std::min<index_t>(z + r2[2], d.z - 1);
  const index_t y0 = std::max<index_t>(y - r2[1], 0), y1 = std::min<index_t>(y + r2[1], d.y - 1);
  const index_t x0 = std::max<index_t>(x - r2[0], 0), x1 = std::min<index_t>(x + r2[0], d.x - 1);
  const float* gx = &m.axis[0].gram_float[static_cast<std::size_t>(x) * (2 * r2[0] + 1) + r2[0]];
  const double* gy = &m.axis[1].gram[static_cast<std::size_t>(y) * (2 * r2[1] + 1) + r2[1]];
  const double* gz = &m.axis[2].gram[static_cast<std::size_t>(z) * (2 * r2[2] + 1) + r2[2]];
  for (index_t zz = z0; zz <= z1; ++zz) {
    const double wz = dmu * gz[zz - z];
    const int* reach = &m.reach_x[static_cast<std::size_t>(zz - z + r2[2]) * (2 * r2[1] + 1) + r2[1]];
    const bool live_z = zz < live.below;
    const bool read_z = zz <= live.to;
    for (index_t yy = y0; yy <= y1; ++yy) {
      const int h = reach[yy - y];
      if (h < 0 || !(live_z || (read_z && yy + d.y * zz >= live.from))) continue;
      const auto wyz = static_cast<float>(wz * gy[yy - y]);
      float* row = &c[d.x * (yy + d.y * zz)];
      const index_t xa = std::max(x0, x - h), xb = std::min(x1, x + h);
      for (index_t xx = xa; xx <= xb; ++xx) row[xx] -= wyz * gx[xx - x];
    }
  }
}

Model make_model(const Volume<std::uint8_t>& labels, const std::vector<double>& mu, const ForwardModelOptions& o) {
  const Dims d = labels.dims();
  if (!(o.noise_sigma > 0)) throw InputError("forward-model relabelling: noise σ must be > 0");
  for (int a = 0; a < 3; ++a)
    if (!(o.psf_sigma_vox[a] >= 0) || !std::isfinite(o.psf_sigma_vox[a]))
      throw InputError("forward-model relabelling: PSF σ along " + axis_name(a) + " must be a finite number ≥ 0");
  Model m;
  m.classes = static_cast<int>(mu.size());
  if (m.classes < 2 || m.classes > kMaxClasses)
    throw InputError("forward-model relabelling needs 2.." + std::to_string(kMaxClasses) + " end members, got " +
                     std::to_string(m.classes));
  for (auto v : labels.storage())
    if (v >= m.classes)
      throw InputError("forward-model relabelling: label " + std::to_string(v) + " has no end member (" +
                       std::to_string(m.classes) + " given)");
  double kk = 1;  // ‖k‖² away from the faces: what sets β
  for (int a = 0; a < 3; ++a) {
    m.axis[a] = make_axis(d[a] > 1 ? o.psf_sigma_vox[a] : 0.0, d[a]);
    double q = 0;
    for (double x : m.axis[a].taps) q += x * x;
    kk *= q;
  }
  m.reach_x = update_reach(m.axis);
  const int k = m.classes;
  m.beta.assign(static_cast<std::size_t>(k * k), 0.0);
  for (int a = 0; a < k; ++a)
    for (int b = 0; b < k; ++b) {
      if (a == b) continue;
      const double s = std::fabs(mu[b] - mu[a]) * std::sqrt(kk) / o.noise_sigma;
      m.beta[a * k + b] = std::max(0.0, s * (o.flat_interface_z - 0.5 * s) / 4);
    }
  if (o.neutral_beside_brightest) {
    double top = 0;
    for (int c = 0; c + 1 < k; ++c) top = std::max(top, m.beta[(k - 1) * k + c]);
    for (int c = 0; c + 1 < k; ++c) m.beta[(k - 1) * k + c] = m.beta[c * k + k - 1] = top;
  }
  if (o.single_beta) {
    const double top = *std::max_element(m.beta.begin(), m.beta.end());
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b) m.beta[a * k + b] = a == b ? 0.0 : top;
  }
  return m;
}

// Each class's end-member offset δ_c (ForwardModelOptions::local_means_sigma) on a grid 2× coarser
// per axis (0.5 B/voxel a class, k B/voxel with their weights while they are made from r plane by
// plane; beside c, k/2 B/voxel), read trilinearly at the voxel centres; no classes: none.
struct LocalOffsets {
  std::vector<Volume<float>> offset;  // per class, on the coarse grid (none: the global end member)
  // Per axis and fine index j: the two coarse cells around j's centre and the second one's weight.
  std::array<std::vector<index_t>, 3> lo, hi;
  std::array<std::vector<float>, 3> w;
  bool empty() const { return offset.empty(); }
  float at(int c, index_t x, index_t y, index_t z) const {
    const Volume<float>& v = offset[c];
    if (v.size() == 0) return 0.f;
    const Dims d = v.dims();
    auto row = [&](index_t yy, index_t zz) {
      const float* p = v.data() + d.x * (yy + d.y * zz);
      return p[lo[0][x]] + w[0][x] * (p[hi[0][x]] - p[lo[0][x]]);
    };
    auto plane = [&](index_t zz) { return row(lo[1][y], zz) + w[1][y] * (row(hi[1][y], zz) - row(lo[1][y], zz)); };
    return plane(lo[2][z]) + w[2][z] * (plane(hi[2][z]) - plane(lo[2][z]));
  }
};

// r = g − B(μ[L] + δ_L) one z plane at a time, ascending, handed to f(z, r of plane z): each model
// plane gets its x and y passes once, and the z pass reads a ring of the 2R_z + 1 planes around it,
// so no full-size model is held (local_offsets sums r straight onto its coarse grid). The same sums
// in the same order as blur_in_place on the whole volume, hence the same floats.
template <class F>
void for_each_residual_plane(const Volume<float>& grey, const Volume<std::uint8_t>& labels,
                             const std::vector<double>& mu, const std::array<double, 3>& sigma,
                             const LocalOffsets& offsets, F&& f) {
  const Dims d = grey.dims();
  const index_t plane = d.x * d.y;
  const bool blur_z = d.z > 1 && sigma[2] > 0;
  const std::vector<double> kz = gaussian_taps(blur_z ? sigma[2] : 0.0, kTruncate);
  const auto rz = static_cast<index_t>(kz.size() / 2);
  const index_t ring = 2 * rz + 1;
  std::vector<Volume<float>> xy;
  for (index_t s = 0; s < std::min(ring, d.z); ++s) xy.push_back(grey.like<float>(Dims{d.x, d.y, 1}));
  Volume<float> r = grey.like<float>(Dims{d.x, d.y, 1});
  std::vector<const float*> src(static_cast<std::size_t>(2 * rz + 1));
  index_t made = 0;  // planes [0, made) have had their x and y passes
  for (index_t z = 0; z < d.z; ++z) {
    for (; made < std::min(z + rz + 1, d.z); ++made) {
      Volume<float>& p = xy[made % ring];
      tbb::parallel_for(index_t{0}, d.y, [&](index_t y) {
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = x + d.x * (y + d.y * made);
          p[x + d.x * y] =
              static_cast<float>(mu[labels[i]]) + (offsets.empty() ? 0.f : offsets.at(labels[i], x, y, made));
        }
      });
      for (int a = 0; a < 2; ++a)
        if (d[a] > 1) gaussian_blur_axis(p, a, sigma[a], kTruncate);
    }
    // The planes z + t, t = −R_z..R_z, clamped to the volume: gaussian_blur_axis's convolution along z.
    for (index_t t = -rz; t <= rz; ++t) src[t + rz] = xy[std::clamp<index_t>(z + t, 0, d.z - 1) % ring].data();
    tbb::parallel_for(index_t{0}, d.y, [&](index_t y) {
      for (index_t x = 0; x < d.x; ++x) {
        const index_t j = x + d.x * y;
        float model = src[rz][j];
        if (blur_z) {
          double acc = 0;
          for (index_t t = 0; t <= 2 * rz; ++t) acc += kz[t] * src[t][j];
          model = static_cast<float>(acc);
        }
        r[j] = grey[j + plane * z] - model;
      }
    });
    f(z, static_cast<const Volume<float>&>(r));
  }
}

Volume<float> residual(const Volume<float>& grey, const Volume<std::uint8_t>& labels, const std::vector<double>& mu,
                       const std::array<double, 3>& sigma, const LocalOffsets& offsets = {}) {
  Volume<float> out = grey.like<float>(grey.dims());
  const index_t plane = grey.dims().x * grey.dims().y;
  for_each_residual_plane(grey, labels, mu, sigma, offsets, [&](index_t z, const Volume<float>& r) {
    std::copy(r.data(), r.data() + plane, out.data() + plane * z);
  });
  return out;
}

// E of the labels whose residual is r = g − B(μ[L]).
double energy_of_residual(const Volume<float>& r, const Volume<std::uint8_t>& labels, const ForwardModelOptions& o,
                          const Model& m) {
  double data = 0;
  for (float x : r.storage()) data += static_cast<double>(x) * x;
  double prior = 0;
  const Dims d = labels.dims();
  const index_t step[3] = {1, d.x, d.x * d.y};
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + d.x * (y + d.y * z), pos[3] = {x, y, z};
        for (int a = 0; a < 3; ++a)
          if (pos[a] + 1 < d[a]) prior += m.beta[labels[i] * m.classes + labels[i + step[a]]];
      }
  return data / (2 * o.noise_sigma * o.noise_sigma) + prior;
}

double energy(const Volume<float>& grey, const Volume<std::uint8_t>& labels, const std::vector<double>& mu,
              const ForwardModelOptions& o, const Model& m) {
  return energy_of_residual(residual(grey, labels, mu, o.psf_sigma_vox), labels, o, m);
}

// c = Bᵀ (g − B(μ[L])), and E of the labels from the same residual.
Volume<float> correlation(const Volume<float>& grey, const Volume<std::uint8_t>& labels, const std::vector<double>& mu,
                          const ForwardModelOptions& o, const Model& m, double* energy_out,
                          const LocalOffsets& offsets = {}) {
  Volume<float> c = residual(grey, labels, mu, o.psf_sigma_vox, offsets);
  if (energy_out) *energy_out = energy_of_residual(c, labels, o, m);
  for (int a = 0; a < 3; ++a) adjoint_axis(c, a, m.axis[a]);
  return c;
}

// δ_c = G * (r 1[interior c]) / (G * 1[interior c] + kOffsetShrink) on the coarse grid: r = g − B(μ[L])
// with the global end members, and the count, summed over each 2³ block as a share of its 8, G
// the Gaussian of σ `sigma` / 2 coarse cells; interior: the voxel and its 6 face neighbours labelled
// c (faces of the volume count as c). The shrink weighs a class with few interior voxels near (a
// pore film, a thin SE layer) towards its global end member. Only the classes of
// ForwardModelOptions::local_means_classes; clamped to ≤ 0 under local_means_darker_only.
constexpr double kOffsetShrink = 0.1;

LocalOffsets local_offsets(const Volume<float>& grey, const Volume<std::uint8_t>& labels, const std::vector<double>& mu,
                           const ForwardModelOptions& o) {
  const int k = static_cast<int>(mu.size());
  const Dims d = labels.dims();
  const Dims cd{(d.x + 1) / 2, (d.y + 1) / 2, (d.z + 1) / 2};
  LocalOffsets out;
  std::vector<Volume<float>> den;
  for (int c = 0; c < k; ++c) {
    const bool local = (o.local_means_classes >> c) & 1u;
    out.offset.push_back(local ? grey.like<float>(cd) : Volume<float>());
    den.push_back(local ? grey.like<float>(cd) : Volume<float>());
  }
  {
    const index_t step[3] = {1, d.x, d.x * d.y};
    // r plane by plane, never the whole of it; one coarse y row per task: each cell is summed in z,
    // y, x order at any thread count.
    for_each_residual_plane(grey, labels, mu, o.psf_sigma_vox, LocalOffsets{}, [&](index_t z, const Volume<float>& r) {
      const index_t cz = z / 2;
      tbb::parallel_for(index_t{0}, cd.y, [&](index_t cy) {
        for (index_t y = 2 * cy; y < std::min(2 * cy + 2, d.y); ++y)
          for (index_t x = 0; x < d.x; ++x) {
            const index_t i = x + d.x * (y + d.y * z), pos[3] = {x, y, z};
            const int c = labels[i];
            if (den[c].size() == 0) continue;
            bool interior = true;
            for (int a = 0; a < 3 && interior; ++a)
              interior = (pos[a] == 0 || labels[i - step[a]] == c) && (pos[a] + 1 == d[a] || labels[i + step[a]] == c);
            if (!interior) continue;
            const index_t j = x / 2 + cd.x * (y / 2 + cd.y * cz);
            out.offset[c][j] += 0.125f * r[x + d.x * y];
            den[c][j] += 0.125f;
          }
      });
    });
  }
  for (int c = 0; c < k; ++c) {
    if (den[c].size() == 0) continue;
    for (int a = 0; a < 3; ++a)
      if (cd[a] > 1) {
        gaussian_blur_axis(out.offset[c], a, 0.5 * o.local_means_sigma, kTruncate);
        gaussian_blur_axis(den[c], a, 0.5 * o.local_means_sigma, kTruncate);
      }
    for (index_t j = 0; j < cd.count(); ++j) {
      const float off = static_cast<float>(out.offset[c][j] / (den[c][j] + kOffsetShrink));
      out.offset[c][j] = o.local_means_darker_only ? std::min(off, 0.f) : off;
    }
  }
  for (int a = 0; a < 3; ++a)
    for (index_t j = 0; j < d[a]; ++j) {
      // Fine voxel j's centre on the coarse grid: j / 2 − 0.25, clamped to the end cells.
      const double u = std::clamp(0.5 * static_cast<double>(j) - 0.25, 0.0, static_cast<double>(cd[a] - 1));
      const auto l = static_cast<index_t>(u);
      out.lo[a].push_back(l);
      out.hi[a].push_back(std::min(l + 1, cd[a] - 1));
      out.w[a].push_back(static_cast<float>(u - static_cast<double>(l)));
    }
  return out;
}

}  // namespace

std::vector<double> refit_means(const Volume<float>& grey, const Volume<std::uint8_t>& labels,
                                const std::vector<double>& mu, const std::array<double, 3>& sigma) {
  const int k = static_cast<int>(mu.size());
  std::vector<Volume<float>> basis;
  for (int c = 0; c < k; ++c) {
    Volume<float> ind = grey.like<float>(grey.dims());
    std::int64_t n = 0;
    for (index_t i = 0; i < ind.size(); ++i) n += (ind[i] = labels[i] == c ? 1.f : 0.f) > 0;
    if (n == 0) return mu;
    blur_in_place(ind, sigma);
    basis.push_back(std::move(ind));
  }
  std::vector<double> a(static_cast<std::size_t>(k * (k + 1)), 0.0);
  for (int c = 0; c < k; ++c) {
    for (int e = c; e < k; ++e) {
      double s = 0;
      for (index_t i = 0; i < grey.size(); ++i) s += static_cast<double>(basis[c][i]) * basis[e][i];
      a[c * (k + 1) + e] = a[e * (k + 1) + c] = s;
    }
    double s = 0;
    for (index_t i = 0; i < grey.size(); ++i) s += static_cast<double>(basis[c][i]) * grey[i];
    a[c * (k + 1) + k] = s;
  }
  // Gaussian elimination with partial pivoting on the k × (k + 1) system.
  for (int col = 0; col < k; ++col) {
    int piv = col;
    for (int r = col + 1; r < k; ++r)
      if (std::fabs(a[r * (k + 1) + col]) > std::fabs(a[piv * (k + 1) + col])) piv = r;
    if (!(std::fabs(a[piv * (k + 1) + col]) > 1e-9)) return mu;
    for (int j = 0; j <= k; ++j) std::swap(a[col * (k + 1) + j], a[piv * (k + 1) + j]);
    for (int r = 0; r < k; ++r) {
      if (r == col) continue;
      const double f = a[r * (k + 1) + col] / a[col * (k + 1) + col];
      for (int j = col; j <= k; ++j) a[r * (k + 1) + j] -= f * a[col * (k + 1) + j];
    }
  }
  std::vector<double> out(static_cast<std::size_t>(k));
  for (int c = 0; c < k; ++c) out[c] = a[c * (k + 1) + k] / a[c * (k + 1) + c];
  for (int c = 0; c + 1 < k; ++c)
    if (!(out[c + 1] > out[c])) return mu;
  return out;
}

double forward_model_energy(const Volume<float>& grey, const Volume<std::uint8_t>& labels,
                            const std::vector<double>& means, const ForwardModelOptions& options) {
  return energy(grey, labels, means, options, make_model(labels, means, options));
}

ForwardModelRelabelling forward_model_relabel(const Volume<float>& grey, Volume<std::uint8_t>& labels,
                                              const std::vector<double>& means, const ForwardModelOptions& o) {
  const Model m = make_model(labels, means, o);
  std::vector<double> mu = means;
  const int k = m.classes;
  const Dims d = labels.dims();
  ForwardModelRelabelling out;
  out.beta = m.beta;
  // c is kept exact by the local update after each flip, so the two separable passes run once (and
  // again only where the end members change): recomputing them every sweep cost half the CPU.
  const LocalOffsets offsets = o.local_means_sigma > 0 && (o.local_means_classes & ((1u << k) - 1)) != 0
                                   ? local_offsets(grey, labels, mu, o)
                                   : LocalOffsets{};
#if defined(__GLIBC__)
  // The offsets' weights (k/2 B/voxel) were freed inside glibc's heap, whose pages it keeps
  // resident (so are the rules' scratch before them): hand them back before c is the peak
  // (256³ σ 0.7 realistic: 41 MB).
  if (!offsets.empty()) malloc_trim(0);
#endif
  auto end_member = [&](int j, index_t x, index_t y, index_t z) {
    return mu[j] + (offsets.empty() ? 0.f : offsets.at(j, x, y, z));
  };
  Volume<float> c = correlation(grey, labels, mu, o, m, &out.energy_before, offsets);
  const double inv2s2 = 1.0 / (2 * o.noise_sigma * o.noise_sigma);
  const index_t step[3] = {1, d.x, d.x * d.y};
  // Slabs along z, visited in raster order each, the even ones at once and then the odd ones. A flip
  // reads c and the labels within one voxel of its slab and writes c within 2R_z of it: slabs at least
  // 4R_z thick keep two slabs of one parity apart by more than that, so no two concurrent slabs touch
  // the same c or label, and the layout (hence the result) does not depend on the thread count.
  const index_t slab = std::max<index_t>(4 * m.axis[2].radius, 2);
  const index_t slabs = (d.z + slab - 1) / slab;
  std::vector<std::int64_t> slab_boundary(static_cast<std::size_t>(slabs)), slab_flips(static_cast<std::size_t>(slabs));
  std::vector<double> slab_gain(static_cast<std::size_t>(slabs));
  // E after each flip: E before it plus the ΔE it was accepted with (within 1e-8 of E recomputed
  // from the labels at 256³, where that recomputation cost another blur).
  double energy_now = out.energy_before;
  const int total = o.anneal_sweeps + o.max_sweeps;
  for (int sweep = 0; sweep < total; ++sweep) {
    const double temperature =
        sweep < o.anneal_sweeps ? o.anneal_temperature * (1 - static_cast<double>(sweep) / o.anneal_sweeps) : 0.0;
    if (o.refit_means && sweep > 0) {
      mu = refit_means(grey, labels, mu, o.psf_sigma_vox);
      c = correlation(grey, labels, mu, o, m, &energy_now, offsets);
    }
    const double* beta = m.beta.data();
    const bool last = sweep + 1 == total;
    auto visit = [&](index_t s, index_t parity) {
      std::int64_t boundary = 0, flips = 0;
      double gain = 0;
      for (index_t z = s * slab; z < std::min((s + 1) * slab, d.z); ++z)
        for (index_t y = 0; y < d.y; ++y) {
          LiveRows live{0, d.z, 0};
          if (last) {
            live.from = y + d.y * z;
            live.to = parity == 0 ? d.z : std::min((s + 1) * slab, d.z) - 1;
            live.below = parity == 0 ? s * slab : 0;
          }
          // The labels present in the 26-neighbourhood as the OR of three columns (x − 1, x, x + 1),
          // each the OR over the ≤ 9 rows (y ± 1, z ± 1): 9 reads a voxel instead of 27. A flip
          // changes only its own column, which is then read again.
          index_t rows[9];
          int nrows = 0;
          for (index_t zz = std::max<index_t>(z - 1, 0); zz <= std::min(z + 1, d.z - 1); ++zz)
            for (index_t yy = std::max<index_t>(y - 1, 0); yy <= std::min(y + 1, d.y - 1); ++yy)
              rows[nrows++] = d.x * (yy + d.y * zz);
          auto column = [&](index_t xx) {
            unsigned mask = 0;
            for (int j = 0; j < nrows; ++j) mask |= 1u << labels[rows[j] + xx];
            return mask;
          };
          unsigned left = 0, mid = column(0);
          for (index_t x = 0; x < d.x; ++x) {
            const unsigned right = x + 1 < d.x ? column(x + 1) : 0u;
            const index_t i = x + d.x * (y + d.y * z);
            const int a = labels[i];
            const unsigned present = (left | mid | right) & ~(1u << a);
            left = mid, mid = right;
            if (!present) continue;
            ++boundary;
            // Prior per candidate label: Σ over the 6 face neighbours of β(b, L_n) − β(a, L_n). The
            // neighbours and c are read once, into locals (a store to the uint8 labels may alias
            // anything, so the compiler would read them again per candidate).
            int best = a;
            double best_de = 0;
            double de_of[kMaxClasses] = {};
            const index_t pos[3] = {x, y, z};
            int face[6], faces = 0;
            for (int ax = 0; ax < 3; ++ax) {
              if (pos[ax] > 0) face[faces++] = labels[i - step[ax]];
              if (pos[ax] + 1 < d[ax]) face[faces++] = labels[i + step[ax]];
            }
            const double kk = m.axis[0].column_norm[x] * m.axis[1].column_norm[y] * m.axis[2].column_norm[z];
            const double ci = c[i];
            const double* beta_a = &beta[a * k];
            for (int b = 0; b < k; ++b) {
              if (!(present & (1u << b))) continue;
              const double* beta_b = &beta[b * k];
              double prior = 0;
              for (int j = 0; j < faces; ++j) prior += beta_b[face[j]] - beta_a[face[j]];
              const double dmu = end_member(b, x, y, z) - end_member(a, x, y, z);
              const double de = (-2 * dmu * ci + dmu * dmu * kk) * inv2s2 + prior;
              de_of[b] = de;
              if (de < best_de) best_de = de, best = b;
            }
            if (temperature > 0) {
              // Gibbs: a label with probability ∝ exp(−ΔE / T) (ΔE = 0 for keeping a); a
              // counter-based draw, so the result does not depend on anything but the input.
              double w[kMaxClasses], sum = 0;
              for (int b = 0; b < k; ++b) {
                const bool allowed = b == a || (present & (1u << b));
                w[b] = allowed ? std::exp(-(de_of[b] - best_de) / temperature) : 0.0;  // ΔE(a) = 0
                sum += w[b];
              }
              std::uint64_t h = (static_cast<std::uint64_t>(sweep) << 40) ^ static_cast<std::uint64_t>(i);
              h += 0x9e3779b97f4a7c15ull;
              h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
              h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
              h ^= h >> 31;
              double u = static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0) * sum;
              best = k - 1;
              for (int b = 0; b < k; ++b) {
                if (u < w[b]) {
                  best = b;
                  break;
                }
                u -= w[b];
              }
              while (w[best] == 0) --best;
            }
            if (best == a) continue;
            gain += de_of[best];
            // Flip, and c −= Δμ (BᵀB δ_v) over its band.
            const double dmu = end_member(best, x, y, z) - end_member(a, x, y, z);
            labels[i] = static_cast<std::uint8_t>(best);
            left = column(x);
            ++flips;
            subtract_flip(c, m, x, y, z, dmu, live);
          }
        }
      slab_boundary[s] = boundary, slab_flips[s] = flips, slab_gain[s] = gain;
    };
    for (index_t parity = 0; parity < 2; ++parity)
      tbb::parallel_for(index_t{0}, (slabs - parity + 1) / 2, [&](index_t j) { visit(2 * j + parity, parity); });
    std::int64_t boundary = 0, flips = 0;
    for (index_t s = 0; s < slabs; ++s)
      boundary += slab_boundary[s], flips += slab_flips[s], energy_now += slab_gain[s];
    out.sweeps = sweep + 1;
    out.flips += flips;
    if (sweep >= o.anneal_sweeps &&
        (flips == 0 || static_cast<double>(flips) < o.stop_share * static_cast<double>(boundary)))
      break;
  }
  out.energy_after = energy_now;
  out.means = mu;
  return out;
}

}  // namespace vp
