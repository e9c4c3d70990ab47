#include "filters/segment/distance.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>

#include "core/error.h"

namespace vp {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// 1-D lower envelope of parabolas: out[q] = min_p f[p] + (s (q - p))^2.
void distance_1d(const double* f, double* out, index_t n, double s, std::vector<index_t>& v, std::vector<double>& z) {
  v.resize(static_cast<std::size_t>(n));
  z.resize(static_cast<std::size_t>(n + 1));
  index_t k = -1;
  for (index_t q = 0; q < n; ++q) {
    if (f[q] == kInf) continue;
    const double pq = q * s;
    while (k >= 0) {
      const double pv = v[k] * s;
      const double cross = ((f[q] + pq * pq) - (f[v[k]] + pv * pv)) / (2 * (pq - pv));
      if (cross <= z[k]) {
        --k;
        continue;
      }
      ++k;
      v[k] = q;
      z[k] = cross;
      z[k + 1] = kInf;
      break;
    }
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -kInf;
      z[1] = kInf;
    }
  }
  if (k < 0) {
    for (index_t q = 0; q < n; ++q) out[q] = kInf;
    return;
  }
  index_t j = 0;
  for (index_t q = 0; q < n; ++q) {
    const double pq = q * s;
    while (z[j + 1] < pq) ++j;
    const double dd = pq - v[j] * s;
    out[q] = f[v[j]] + dd * dd;
  }
}

// One pass along `axis` over every line of the volume (lines in parallel).
void pass(std::vector<double>& g, const Dims& d, int axis, double spacing) {
  const index_t n = d[axis];
  const index_t stride = axis == 0 ? 1 : axis == 1 ? d.x : d.x * d.y;
  const index_t a = axis == 0 ? d.y : d.x;  // the two other axes
  const index_t b = axis == 2 ? d.y : d.z;
  tbb::parallel_for(tbb::blocked_range2d<index_t>(0, b, 0, a), [&](const tbb::blocked_range2d<index_t>& r) {
    std::vector<double> f(n), out(n), z;
    std::vector<index_t> v;
    for (index_t j = r.rows().begin(); j != r.rows().end(); ++j)
      for (index_t i = r.cols().begin(); i != r.cols().end(); ++i) {
        index_t base;
        if (axis == 0) base = d.x * (i + d.y * j);
        else if (axis == 1) base = i + d.x * d.y * j;
        else base = i + d.x * j;
        for (index_t q = 0; q < n; ++q) f[q] = g[base + q * stride];
        distance_1d(f.data(), out.data(), n, spacing, v, z);
        for (index_t q = 0; q < n; ++q) g[base + q * stride] = out[q];
      }
  });
}

}  // namespace

Volume<float> squared_distance_to_sites(const Volume<std::uint8_t>& sites) {
  const Dims d = sites.dims();
  std::vector<double> g(static_cast<std::size_t>(sites.size()));
  for (index_t i = 0; i < sites.size(); ++i) g[i] = sites[i] ? 0.0 : kInf;
  for (int axis = 0; axis < 3; ++axis) pass(g, d, axis, sites.spacing_um[axis]);
  Volume<float> out = sites.like<float>(d);
  for (index_t i = 0; i < sites.size(); ++i) out[i] = static_cast<float>(g[i]);
  return out;
}

Volume<float> distance_to_background(const Volume<std::uint8_t>& mask) {
  Volume<std::uint8_t> background = mask.like<std::uint8_t>(mask.dims());
  for (index_t i = 0; i < mask.size(); ++i) background[i] = mask[i] ? 0 : 1;
  Volume<float> d = squared_distance_to_sites(background);
  for (auto& v : d.storage()) v = std::sqrt(v);
  return d;
}

const std::vector<Offset>& neighbour_offsets(int connectivity) {
  static const std::vector<Offset> six = {{-1, 0, 0}, {1, 0, 0}, {0, -1, 0}, {0, 1, 0}, {0, 0, -1}, {0, 0, 1}};
  static const std::vector<Offset> all = [] {
    std::vector<Offset> o;
    for (int dz = -1; dz <= 1; ++dz)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          if (dx || dy || dz) o.push_back({dx, dy, dz});
    return o;
  }();
  if (connectivity == 6) return six;
  if (connectivity == 26) return all;
  throw InputError("connectivity must be 6 or 26, got " + std::to_string(connectivity));
}

Components connected_components(const Volume<std::uint8_t>& mask, int connectivity) {
  const auto& offs = neighbour_offsets(connectivity);
  const Dims d = mask.dims();
  Components c;
  c.ids = mask.like<std::uint32_t>(d);
  std::vector<index_t> stack;
  for (index_t start = 0; start < mask.size(); ++start) {
    if (!mask[start] || c.ids[start]) continue;
    const std::uint32_t id = ++c.count;
    c.ids[start] = id;
    stack.push_back(start);
    while (!stack.empty()) {
      const index_t i = stack.back();
      stack.pop_back();
      const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      for (const Offset& o : offs) {
        const index_t nx = x + o.dx, ny = y + o.dy, nz = z + o.dz;
        if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
        const index_t j = mask.index(nx, ny, nz);
        if (mask[j] && !c.ids[j]) {
          c.ids[j] = id;
          stack.push_back(j);
        }
      }
    }
  }
  return c;
}

}  // namespace vp
