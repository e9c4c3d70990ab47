#include "filters/preprocess/edge_preserving.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"

namespace vp {

namespace {

// e^x for x ≤ 0 (relative error < 2e-7; e^-87 and below give ~1e-38). Plain float arithmetic
// the compiler vectorises, unlike std::exp: round x·log2(e) to n, 2^f by its Taylor series on
// |f| ≤ ½, 2^n put into the exponent bits.
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;  // a select, not std::max's branch: the loops stay vectorised
  const float t = x * 1.44269504f;
  const int n = static_cast<int>(t - 0.5f);  // truncation toward 0 of t − ½: round(t) for t ≤ 0
  const float f = (t - static_cast<float>(n)) * 0.693147181f;
  float p = 1.0f / 720;
  p = p * f + 1.0f / 120;
  p = p * f + 1.0f / 24;
  p = p * f + 1.0f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  return p * std::bit_cast<float>(static_cast<std::int32_t>((n + 127) << 23));
}

// A fixed grid of tiles over the volume; tile i's core is [lo, lo + size) per axis.
struct Tiles {
  Dims dims;
  index_t edge[3];
  index_t count[3];
  Tiles(const Dims& d, index_t ex, index_t ey, index_t ez) : dims(d), edge{ex, ey, ez} {
    for (int a = 0; a < 3; ++a) count[a] = (d[a] + edge[a] - 1) / edge[a];
  }
  index_t total() const { return count[0] * count[1] * count[2]; }
  void core(index_t i, index_t lo[3], index_t size[3]) const {
    const index_t c[3] = {i % count[0], (i / count[0]) % count[1], i / (count[0] * count[1])};
    for (int a = 0; a < 3; ++a) {
      lo[a] = c[a] * edge[a];
      size[a] = std::min(edge[a], dims[a] - lo[a]);
    }
  }
};

// Copies the box [lo − halo, lo + size + halo) of v into buf (x fastest), coordinates clamped
// to the volume (edge replication).
void copy_clamped(const Volume<float>& v, const index_t lo[3], const index_t size[3], const index_t halo[3],
                  std::vector<float>& buf) {
  const Dims d = v.dims();
  const index_t ex = size[0] + 2 * halo[0], ey = size[1] + 2 * halo[1], ez = size[2] + 2 * halo[2];
  buf.resize(static_cast<std::size_t>(ex * ey * ez));
  const float* src = v.data();
  std::vector<index_t> xs(static_cast<std::size_t>(ex));
  for (index_t i = 0; i < ex; ++i) xs[i] = std::clamp<index_t>(lo[0] - halo[0] + i, 0, d.x - 1);
  for (index_t k = 0; k < ez; ++k) {
    const index_t z = std::clamp<index_t>(lo[2] - halo[2] + k, 0, d.z - 1);
    for (index_t j = 0; j < ey; ++j) {
      const index_t y = std::clamp<index_t>(lo[1] - halo[1] + j, 0, d.y - 1);
      const float* row = src + (z * d.y + y) * d.x;
      float* out = buf.data() + (k * ey + j) * ex;
      for (index_t i = 0; i < ex; ++i) out[i] = row[xs[i]];
    }
  }
}

std::vector<float> gaussian_taps(double sigma_vox) {
  if (!(sigma_vox > 0)) return {1.0f};
  const int radius = static_cast<int>(std::ceil(3 * sigma_vox));
  std::vector<double> k(static_cast<std::size_t>(2 * radius + 1));
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) sum += k[i + radius] = std::exp(-0.5 * i * i / (sigma_vox * sigma_vox));
  std::vector<float> taps;
  for (double x : k) taps.push_back(static_cast<float>(x / sum));
  return taps;
}

float volume_min(const Volume<float>& v) {
  const float* p = v.data();
  return tbb::parallel_reduce(
      tbb::blocked_range<index_t>(0, v.size(), 1 << 16), std::numeric_limits<float>::infinity(),
      [&](const tbb::blocked_range<index_t>& r, float m) {
        for (index_t i = r.begin(); i < r.end(); ++i) m = std::min(m, p[i]);
        return m;
      },
      [](float a, float b) { return std::min(a, b); });
}

void check_finite(const Volume<float>& v, const char* filter) {
  const float* p = v.data();
  for (index_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(p[i]))
      throw InputError(std::string(filter) + ": grey value at voxel " + std::to_string(i) + " is not finite");
}

// Blurs src (dims nx·ny·nz) with taps along one axis, keeping only the outputs [r, n − r) along
// that axis (r = taps radius): dst has that axis shortened by 2r. Vectorised along x.
void blur_axis(const float* src, index_t nx, index_t ny, index_t nz, int axis, const std::vector<float>& taps,
               float* dst) {
  const int r = static_cast<int>(taps.size() / 2);
  const int nt = static_cast<int>(taps.size());
  if (axis == 0) {
    const index_t ox = nx - 2 * r;
    for (index_t l = 0; l < ny * nz; ++l) {
      const float* in = src + l * nx;
      float* out = dst + l * ox;
      for (index_t x = 0; x < ox; ++x) out[x] = 0;
      for (int t = 0; t < nt; ++t) {
        const float w = taps[t];
        for (index_t x = 0; x < ox; ++x) out[x] += w * in[x + t];
      }
    }
  } else if (axis == 1) {
    const index_t oy = ny - 2 * r;
    for (index_t z = 0; z < nz; ++z)
      for (index_t y = 0; y < oy; ++y) {
        float* out = dst + (z * oy + y) * nx;
        for (index_t x = 0; x < nx; ++x) out[x] = 0;
        for (int t = 0; t < nt; ++t) {
          const float w = taps[t];
          const float* in = src + (z * ny + y + t) * nx;
          for (index_t x = 0; x < nx; ++x) out[x] += w * in[x];
        }
      }
  } else {
    const index_t oz = nz - 2 * r;
    for (index_t z = 0; z < oz; ++z) {
      float* out = dst + z * ny * nx;
      for (index_t i = 0; i < ny * nx; ++i) out[i] = 0;
      for (int t = 0; t < nt; ++t) {
        const float w = taps[t];
        const float* in = src + (z + t) * ny * nx;
        for (index_t i = 0; i < ny * nx; ++i) out[i] += w * in[i];
      }
    }
  }
}

struct BilateralScratch {
  std::vector<float> ext, w, wi, xw, xwi, yw, ywi, zw, zwi, acc;
};

}  // namespace

Volume<float> bilateral_filter(const Volume<float>& grey, double domain_sigma_um, double range_sigma) {
  if (!(domain_sigma_um > 0) || !std::isfinite(domain_sigma_um))
    throw InputError("bilateral: domain σ must be a finite number > 0 µm");
  if (!(range_sigma > 0) || !std::isfinite(range_sigma)) throw InputError("bilateral: range σ must be > 0 grey");
  Volume<float> out = grey;
  if (grey.size() == 0) return out;
  check_finite(grey, "bilateral");
  std::vector<float> taps[3];
  index_t halo[3];
  for (int a = 0; a < 3; ++a) {
    taps[a] = gaussian_taps(domain_sigma_um / grey.spacing_um[a]);
    halo[a] = static_cast<index_t>(taps[a].size() / 2);
  }
  const float base = volume_min(grey);
  const float step = static_cast<float>(range_sigma);
  const float inv_two_var = static_cast<float>(0.5 / (range_sigma * range_sigma));
  const Tiles tiles(grey.dims(), 64, 32, 32);
  const Dims d = grey.dims();
  tbb::enumerable_thread_specific<BilateralScratch> scratch;
  tbb::parallel_for(index_t{0}, tiles.total(), [&](index_t ti) {
    BilateralScratch& s = scratch.local();
    index_t lo[3], size[3];
    tiles.core(ti, lo, size);
    copy_clamped(grey, lo, size, halo, s.ext);
    const index_t ex = size[0] + 2 * halo[0], ey = size[1] + 2 * halo[1], ez = size[2] + 2 * halo[2];
    const index_t n_ext = ex * ey * ez, n_core = size[0] * size[1] * size[2];
    // The core's own grey values in a dense array, and the levels that bracket them.
    std::vector<float> core(static_cast<std::size_t>(n_core));
    for (index_t k = 0; k < size[2]; ++k)
      for (index_t j = 0; j < size[1]; ++j)
        for (index_t i = 0; i < size[0]; ++i)
          core[(k * size[1] + j) * size[0] + i] = s.ext[((k + halo[2]) * ey + j + halo[1]) * ex + i + halo[0]];
    // Only the levels some core voxel interpolates from: a lone outlier (a zinger) adds two
    // levels, not every level up to it. Skipped levels would have added exactly 0.
    std::vector<index_t> levels;
    levels.reserve(core.size() * 2);
    for (float v : core) {
      const auto k = static_cast<index_t>(std::floor((v - base) / step));
      levels.push_back(k);
      levels.push_back(k + 1);
    }
    std::sort(levels.begin(), levels.end());
    levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
    s.w.resize(n_ext);
    s.wi.resize(n_ext);
    s.xw.resize(size[0] * ey * ez);
    s.xwi.resize(size[0] * ey * ez);
    s.yw.resize(size[0] * size[1] * ez);
    s.ywi.resize(size[0] * size[1] * ez);
    s.zw.resize(n_core);
    s.zwi.resize(n_core);
    s.acc.assign(n_core, 0.0f);
    for (index_t k : levels) {
      const float level = base + static_cast<float>(k) * step;
      // Relative to the level, so that a constant image comes back exactly.
      for (index_t i = 0; i < n_ext; ++i) {
        const float dv = s.ext[i] - level;
        const float w = exp_nonpositive(-dv * dv * inv_two_var);
        s.w[i] = w;
        s.wi[i] = w * dv;
      }
      blur_axis(s.w.data(), ex, ey, ez, 0, taps[0], s.xw.data());
      blur_axis(s.wi.data(), ex, ey, ez, 0, taps[0], s.xwi.data());
      blur_axis(s.xw.data(), size[0], ey, ez, 1, taps[1], s.yw.data());
      blur_axis(s.xwi.data(), size[0], ey, ez, 1, taps[1], s.ywi.data());
      blur_axis(s.yw.data(), size[0], size[1], ez, 2, taps[2], s.zw.data());
      blur_axis(s.ywi.data(), size[0], size[1], ez, 2, taps[2], s.zwi.data());
      for (index_t i = 0; i < n_core; ++i) {
        const float t = std::abs(core[i] - level) / step;
        // zw > 0 wherever t < 1 (the voxel's own weight there is at least e^-½ times its tap);
        // elsewhere the hat weight is 0 and the guard only keeps the quotient finite.
        const float hat = t < 1 ? 1 - t : 0.0f;
        const float zw = s.zw[i] > 1e-30f ? s.zw[i] : 1e-30f;
        s.acc[i] += hat * (level + s.zwi[i] / zw);
      }
    }
    float* o = out.data();
    for (index_t k = 0; k < size[2]; ++k)
      for (index_t j = 0; j < size[1]; ++j) {
        float* row = o + ((lo[2] + k) * d.y + lo[1] + j) * d.x + lo[0];
        const float* a = s.acc.data() + (k * size[1] + j) * size[0];
        for (index_t i = 0; i < size[0]; ++i) row[i] = a[i];
      }
  });
  return out;
}

Volume<float> bilateral_filter_direct(const Volume<float>& grey, double domain_sigma_um, double range_sigma) {
  if (!(domain_sigma_um > 0) || !(range_sigma > 0)) throw InputError("bilateral: σ must be > 0");
  Volume<float> out = grey;
  const Dims d = grey.dims();
  std::vector<float> taps[3];
  int r[3];
  for (int a = 0; a < 3; ++a) {
    taps[a] = gaussian_taps(domain_sigma_um / grey.spacing_um[a]);
    r[a] = static_cast<int>(taps[a].size() / 2);
  }
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const double c = grey(x, y, z);
        double num = 0, den = 0;
        for (int k = -r[2]; k <= r[2]; ++k)
          for (int j = -r[1]; j <= r[1]; ++j)
            for (int i = -r[0]; i <= r[0]; ++i) {
              const double v = grey(std::clamp<index_t>(x + i, 0, d.x - 1), std::clamp<index_t>(y + j, 0, d.y - 1),
                                    std::clamp<index_t>(z + k, 0, d.z - 1));
              const double w = double(taps[0][i + r[0]]) * taps[1][j + r[1]] * taps[2][k + r[2]] *
                               std::exp(-0.5 * (v - c) * (v - c) / (range_sigma * range_sigma));
              num += w * v;
              den += w;
            }
        out(x, y, z) = static_cast<float>(num / den);
      }
  });
  return out;
}

std::vector<std::array<int, 3>> nonlocal_means_offsets(int search_radius, int samples) {
  if (search_radius < 1) throw InputError("nlmeans: search radius must be >= 1 voxel");
  if (samples < 1) throw InputError("nlmeans: samples must be >= 1");
  // Nearest first: on the phantoms the nearest 50 beat 50 drawn from a Gaussian of σ = R/2 by
  // 2 dB (docs/segmentation.md). Ties at equal distance go by a fixed hash of the offset, so
  // that a shell cut part-way is not biased toward one side; d and −d are taken together.
  struct Keyed {
    int dist2;
    std::uint64_t hash;
    std::array<int, 3> d;
  };
  std::vector<Keyed> half;
  const int R = search_radius;
  for (int z = -R; z <= R; ++z)
    for (int y = -R; y <= R; ++y)
      for (int x = -R; x <= R; ++x) {
        if (std::make_tuple(z, y, x) <= std::make_tuple(0, 0, 0)) continue;
        std::uint64_t h = static_cast<std::uint64_t>(((z + R) * (2 * R + 1) + y + R) * (2 * R + 1) + x + R);
        h += 0x9e3779b97f4a7c15ULL;  // splitmix64
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
        h ^= h >> 31;
        half.push_back({x * x + y * y + z * z, h, {x, y, z}});
      }
  std::sort(half.begin(), half.end(),
            [](const Keyed& a, const Keyed& b) { return std::tie(a.dist2, a.hash) < std::tie(b.dist2, b.hash); });
  const std::size_t pairs = std::min(half.size(), static_cast<std::size_t>((samples + 1) / 2));
  std::vector<std::array<int, 3>> offsets;
  for (std::size_t i = 0; i < pairs; ++i) {
    const auto& d = half[i].d;
    offsets.push_back(d);
    offsets.push_back({-d[0], -d[1], -d[2]});
  }
  return offsets;
}

namespace {

struct NlmScratch {
  std::vector<float> ext, sq, bx, by, dist, acc, wsum, wmax;
};

// The weights of one offset along a row: restrict pointers, so that the loop vectorises.
void accumulate_weights(const float* __restrict dist, const float* __restrict moved, const float* __restrict centre,
                        float scale, float* __restrict acc, float* __restrict wsum, float* __restrict wmax, index_t lo,
                        index_t hi) {
  for (index_t i = lo; i < hi; ++i) {
    const float w = exp_nonpositive(-dist[i] * scale);
    acc[i] += w * (moved[i] - centre[i]);
    wsum[i] += w;
    wmax[i] = wmax[i] < w ? w : wmax[i];
  }
}

// One pass of non-local means from src into dst.
void nonlocal_means_pass(const Volume<float>& src, Volume<float>& dst, const NonlocalMeansOptions& o,
                         const std::vector<std::array<int, 3>>& offsets) {
  const Dims d = src.dims();
  const int r = o.patch_radius, R = o.search_radius;
  const index_t pad[3] = {r + R, r + R, r + R};
  const float patch_voxels = static_cast<float>((2 * r + 1) * (2 * r + 1) * (2 * r + 1));
  const float scale = static_cast<float>(1.0 / (2.0 * o.bandwidth * o.bandwidth)) / patch_voxels;
  const Tiles tiles(d, 32, 32, 32);
  tbb::enumerable_thread_specific<NlmScratch> scratch;
  tbb::parallel_for(index_t{0}, tiles.total(), [&](index_t ti) {
    NlmScratch& s = scratch.local();
    index_t lo[3], size[3];
    tiles.core(ti, lo, size);
    copy_clamped(src, lo, size, pad, s.ext);
    const index_t ex = size[0] + 2 * pad[0], ey = size[1] + 2 * pad[1];
    // The patch-difference box: the core grown by r on each side.
    const index_t sx = size[0] + 2 * r, sy = size[1] + 2 * r, sz = size[2] + 2 * r;
    const index_t n_core = size[0] * size[1] * size[2];
    s.sq.resize(sx * sy * sz);
    s.bx.resize(size[0] * sy * sz);
    s.by.resize(size[0] * size[1] * sz);
    s.dist.resize(size[0]);
    s.acc.assign(n_core, 0.0f);
    s.wsum.assign(n_core, 0.0f);
    s.wmax.assign(n_core, 0.0f);
    auto ext_at = [&](index_t i, index_t j, index_t k) { return s.ext.data() + (k * ey + j) * ex + i; };
    for (const auto& off : offsets) {
      // Squared differences between the box and the box moved by the offset.
      for (index_t k = 0; k < sz; ++k)
        for (index_t j = 0; j < sy; ++j) {
          const float* a = ext_at(R, j + R, k + R);
          const float* b = ext_at(R + off[0], j + R + off[1], k + R + off[2]);
          float* q = s.sq.data() + (k * sy + j) * sx;
          for (index_t i = 0; i < sx; ++i) {
            const float dv = a[i] - b[i];
            q[i] = dv * dv;
          }
        }
      // Box sums of the patch along x, y, z (direct sums: the same order for every voxel).
      for (index_t l = 0; l < sy * sz; ++l) {
        const float* in = s.sq.data() + l * sx;
        float* out = s.bx.data() + l * size[0];
        for (index_t i = 0; i < size[0]; ++i) out[i] = in[i];
        for (int t = 1; t <= 2 * r; ++t)
          for (index_t i = 0; i < size[0]; ++i) out[i] += in[i + t];
      }
      for (index_t k = 0; k < sz; ++k)
        for (index_t j = 0; j < size[1]; ++j) {
          float* out = s.by.data() + (k * size[1] + j) * size[0];
          const float* in = s.bx.data() + (k * sy + j) * size[0];
          for (index_t i = 0; i < size[0]; ++i) out[i] = in[i];
          for (int t = 1; t <= 2 * r; ++t) {
            const float* in_t = in + t * size[0];
            for (index_t i = 0; i < size[0]; ++i) out[i] += in_t[i];
          }
        }
      // z sums, weights and accumulation; centres p + d outside the volume are skipped.
      const index_t plane = size[0] * size[1];
      const index_t i_lo = std::max<index_t>(0, -off[0] - lo[0]);
      const index_t i_hi = std::min<index_t>(size[0], d.x - off[0] - lo[0]);
      for (index_t k = 0; k < size[2]; ++k) {
        const index_t zg = lo[2] + k + off[2];
        if (zg < 0 || zg >= d.z) continue;
        for (index_t j = 0; j < size[1]; ++j) {
          const index_t yg = lo[1] + j + off[1];
          if (yg < 0 || yg >= d.y) continue;
          const float* in = s.by.data() + k * plane + j * size[0];
          const float* centre = ext_at(pad[0], j + pad[1], k + pad[2]);
          const float* moved = ext_at(pad[0] + off[0], j + pad[1] + off[1], k + pad[2] + off[2]);
          const index_t row = (k * size[1] + j) * size[0];
          float* acc = s.acc.data() + row;
          float* wsum = s.wsum.data() + row;
          float* wmax = s.wmax.data() + row;
          float* dist = s.dist.data();
          for (index_t i = i_lo; i < i_hi; ++i) dist[i] = in[i];
          for (int t = 1; t <= 2 * r; ++t) {
            const float* in_t = in + t * plane;
            for (index_t i = i_lo; i < i_hi; ++i) dist[i] += in_t[i];
          }
          accumulate_weights(dist, moved, centre, scale, acc, wsum, wmax, i_lo, i_hi);
        }
      }
    }
    float* o_ = dst.data();
    for (index_t k = 0; k < size[2]; ++k)
      for (index_t j = 0; j < size[1]; ++j) {
        float* row = o_ + ((lo[2] + k) * d.y + lo[1] + j) * d.x + lo[0];
        const float* centre = ext_at(pad[0], j + pad[1], k + pad[2]);
        const index_t c = (k * size[1] + j) * size[0];
        for (index_t i = 0; i < size[0]; ++i) {
          const float den = s.wsum[c + i] + s.wmax[c + i];
          // Relative to the centre, so that a constant image comes back exactly.
          row[i] = den > 0 ? centre[i] + s.acc[c + i] / den : centre[i];
        }
      }
  });
}

}  // namespace

Volume<float> nonlocal_means(const Volume<float>& grey, const NonlocalMeansOptions& o) {
  if (o.patch_radius < 1) throw InputError("nlmeans: patch radius must be >= 1 voxel");
  if (o.iterations < 1) throw InputError("nlmeans: iterations must be >= 1");
  if (!(o.bandwidth > 0) || !std::isfinite(o.bandwidth)) throw InputError("nlmeans: bandwidth must be > 0 grey");
  const auto offsets = nonlocal_means_offsets(o.search_radius, o.samples);
  Volume<float> a = grey;
  if (grey.size() == 0) return a;
  check_finite(grey, "nlmeans");
  Volume<float> b = grey;
  for (int it = 0; it < o.iterations; ++it) {
    nonlocal_means_pass(a, b, o, offsets);
    std::swap(a, b);
  }
  return a;
}

}  // namespace vp
