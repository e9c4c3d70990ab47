#include "filters/segment/particles.h"

#include <cmath>
#include <deque>
#include <limits>
#include <queue>
#include <sstream>

#include "core/error.h"
#include "core/json_util.h"
#include "metrics/connectivity.h"
#include "metrics/distance_transform.h"

namespace vp {

namespace {

constexpr float kLowest = -std::numeric_limits<float>::infinity();

struct Grid {
  Dims d;
  index_t x(index_t i) const { return i % d.x; }
  index_t y(index_t i) const { return (i / d.x) % d.y; }
  index_t z(index_t i) const { return i / (d.x * d.y); }
  // Calls f(j) for each in-volume neighbour j of voxel i.
  template <class F>
  void each_neighbour(index_t i, const std::vector<Offset>& offs, F&& f) const {
    const index_t xi = x(i), yi = y(i), zi = z(i);
    for (const Offset& o : offs) {
      const index_t nx = xi + o.dx, ny = yi + o.dy, nz = zi + o.dz;
      if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
      f(nx + d.x * (ny + d.y * nz));
    }
  }
};

// Raster-order "earlier" neighbours: those with a smaller linear index.
std::vector<Offset> earlier(const std::vector<Offset>& offs) {
  std::vector<Offset> out;
  for (const Offset& o : offs)
    if (o.dz < 0 || (o.dz == 0 && (o.dy < 0 || (o.dy == 0 && o.dx < 0)))) out.push_back(o);
  return out;
}

std::vector<Offset> later(const std::vector<Offset>& offs) {
  std::vector<Offset> out;
  for (const Offset& o : offs)
    if (o.dz > 0 || (o.dz == 0 && (o.dy > 0 || (o.dy == 0 && o.dx > 0)))) out.push_back(o);
  return out;
}

}  // namespace

Volume<float> reconstruct_by_dilation(const Volume<float>& marker, const Volume<float>& mask, int connectivity) {
  if (!(marker.dims() == mask.dims())) throw InputError("reconstruction: marker and mask dims differ");
  const auto& offs = neighbour_offsets(connectivity);
  const auto before = earlier(offs), after = later(offs);
  const Grid g{mask.dims()};
  Volume<float> J = marker;
  for (index_t i = 0; i < J.size(); ++i) J[i] = std::min(J[i], mask[i]);
  // Vincent's hybrid algorithm: a raster and an anti-raster sweep, then FIFO propagation.
  for (index_t i = 0; i < J.size(); ++i) {
    float m = J[i];
    g.each_neighbour(i, before, [&](index_t j) { m = std::max(m, J[j]); });
    J[i] = std::min(m, mask[i]);
  }
  std::deque<index_t> fifo;
  for (index_t i = J.size() - 1; i >= 0; --i) {
    float m = J[i];
    g.each_neighbour(i, after, [&](index_t j) { m = std::max(m, J[j]); });
    J[i] = std::min(m, mask[i]);
    bool push = false;
    g.each_neighbour(i, after, [&](index_t j) { push = push || (J[j] < J[i] && J[j] < mask[j]); });
    if (push) fifo.push_back(i);
  }
  while (!fifo.empty()) {
    const index_t p = fifo.front();
    fifo.pop_front();
    g.each_neighbour(p, offs, [&](index_t q) {
      if (J[q] < J[p] && mask[q] != J[q]) {
        J[q] = std::min(J[p], mask[q]);
        fifo.push_back(q);
      }
    });
  }
  return J;
}

Volume<std::uint32_t> h_maxima_markers(const Volume<float>& f, double h, int connectivity, std::uint32_t* count) {
  if (!(h > 0)) throw InputError("h-maxima: h must be > 0");
  const auto& offs = neighbour_offsets(connectivity);
  Volume<float> marker = f, mask = f;
  for (index_t i = 0; i < f.size(); ++i) {
    // The background takes no part: nothing propagates through it between particles.
    if (f[i] > 0) marker[i] = static_cast<float>(f[i] - h);
    else marker[i] = mask[i] = kLowest;
  }
  const Volume<float> R = reconstruct_by_dilation(marker, mask, connectivity);
  const Grid g{f.dims()};
  Volume<std::uint32_t> ids = f.like<std::uint32_t>(f.dims());
  Volume<std::uint8_t> seen = f.like<std::uint8_t>(f.dims());
  std::uint32_t n = 0;
  std::vector<index_t> plateau, stack;
  for (index_t start = 0; start < f.size(); ++start) {
    if (!(f[start] > 0) || seen[start]) continue;
    // Flood the plateau of equal R; it is a regional maximum when no neighbour is higher.
    plateau.clear();
    stack.assign(1, start);
    seen[start] = 1;
    bool maximum = true;
    const float level = R[start];
    while (!stack.empty()) {
      const index_t i = stack.back();
      stack.pop_back();
      plateau.push_back(i);
      g.each_neighbour(i, offs, [&](index_t j) {
        if (!(f[j] > 0)) return;
        if (R[j] > level) maximum = false;
        else if (R[j] == level && !seen[j]) {
          seen[j] = 1;
          stack.push_back(j);
        }
      });
    }
    if (!maximum) continue;
    ++n;
    for (index_t i : plateau) ids[i] = n;
  }
  if (count) *count = n;
  return ids;
}

Volume<std::uint32_t> watershed_from_markers(const Volume<float>& f, const Volume<std::uint32_t>& markers,
                                             int connectivity) {
  if (!(f.dims() == markers.dims())) throw InputError("watershed: distance map and markers dims differ");
  const auto& offs = neighbour_offsets(connectivity);
  const Grid g{f.dims()};
  Volume<std::uint32_t> out = markers;
  struct Item {
    float level;
    std::uint64_t order;
    index_t voxel;
    std::uint32_t label;
    bool operator<(const Item& o) const {  // priority_queue pops the largest: highest level, then earliest
      if (level != o.level) return level < o.level;
      return order > o.order;
    }
  };
  std::priority_queue<Item> queue;
  std::uint64_t order = 0;
  for (index_t i = 0; i < f.size(); ++i)
    if (out[i])
      g.each_neighbour(i, offs, [&](index_t j) {
        if (!out[j] && f[j] > 0) queue.push({f[j], order++, j, out[i]});
      });
  while (!queue.empty()) {
    const Item it = queue.top();
    queue.pop();
    if (out[it.voxel]) continue;
    out[it.voxel] = it.label;
    g.each_neighbour(it.voxel, offs, [&](index_t j) {
      if (!out[j] && f[j] > 0) queue.push({f[j], order++, j, it.label});
    });
  }
  return out;
}

Volume<std::uint32_t> separate_particles(const Volume<std::uint8_t>& labels, std::uint8_t label,
                                         const ParticleOptions& o) {
  Volume<std::uint8_t> mask = labels.like<std::uint8_t>(labels.dims());
  for (index_t i = 0; i < labels.size(); ++i) mask[i] = labels[i] == label;
  const Volume<float> dist = distance_transform(mask);
  std::uint32_t n = 0;
  const Volume<std::uint32_t> markers = h_maxima_markers(dist, o.h_um, o.connectivity, &n);
  Volume<std::uint32_t> ids = watershed_from_markers(dist, markers, o.connectivity);
  if (o.min_volume_um3 > 0) {
    const double voxel = labels.spacing_um[0] * labels.spacing_um[1] * labels.spacing_um[2];
    std::vector<index_t> size(n + 1, 0);
    for (index_t i = 0; i < ids.size(); ++i) ++size[ids[i]];
    std::vector<std::uint32_t> renumber(n + 1, 0);
    std::uint32_t next = 0;
    for (std::uint32_t id = 1; id <= n; ++id)
      if (static_cast<double>(size[id]) * voxel >= o.min_volume_um3) renumber[id] = ++next;
    for (auto& v : ids.storage()) v = renumber[v];
  }
  return ids;
}

std::vector<Particle> particle_table(const Volume<std::uint32_t>& ids) {
  const Dims d = ids.dims();
  const Vec3 s = ids.spacing_um;
  std::uint32_t n = 0;
  for (auto v : ids.storage()) n = std::max(n, v);
  std::vector<Particle> t(n);
  std::vector<std::array<double, 3>> sum(n, {0, 0, 0});
  for (std::uint32_t k = 0; k < n; ++k) {
    t[k].id = k + 1;
    t[k].bbox_min = {d.x, d.y, d.z};
    t[k].bbox_max = {-1, -1, -1};
  }
  const double face[3] = {s[1] * s[2], s[0] * s[2], s[0] * s[1]};
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const std::uint32_t id = ids(x, y, z);
        if (!id) continue;
        Particle& p = t[id - 1];
        ++p.voxels;
        const index_t c[3] = {x, y, z};
        for (int a = 0; a < 3; ++a) {
          sum[id - 1][a] += static_cast<double>(c[a]);
          p.bbox_min[a] = std::min(p.bbox_min[a], c[a]);
          p.bbox_max[a] = std::max(p.bbox_max[a], c[a]);
          if (c[a] == 0 || c[a] == d[a] - 1) p.touches_border = true;
          for (int step : {-1, 1}) {
            index_t q[3] = {x, y, z};
            q[a] += step;
            const bool outside = q[a] < 0 || q[a] >= d[a];
            if (outside || ids(q[0], q[1], q[2]) != id) p.surface_area_um2 += face[a];
          }
        }
      }
  for (std::uint32_t k = 0; k < n; ++k) {
    Particle& p = t[k];
    p.volume_um3 = static_cast<double>(p.voxels) * s[0] * s[1] * s[2];
    p.equivalent_diameter_um = std::cbrt(6 * p.volume_um3 / M_PI);
    p.surface_area_um2 *= 2.0 / 3.0;
    if (p.voxels > 0) {
      for (int a = 0; a < 3; ++a)
        p.centroid_um[a] = ids.origin_um[a] + sum[k][a] / static_cast<double>(p.voxels) * s[a];
      p.sphericity = std::cbrt(M_PI) * std::pow(6 * p.volume_um3, 2.0 / 3.0) / p.surface_area_um2;
    } else {
      p.bbox_min = p.bbox_max = {0, 0, 0};
    }
  }
  return t;
}

std::string particle_table_csv(const std::vector<Particle>& table) {
  std::ostringstream o;
  o << "id,voxels,volume_um3,equivalent_diameter_um,centroid_x_um,centroid_y_um,centroid_z_um,"
       "bbox_min_x,bbox_min_y,bbox_min_z,bbox_max_x,bbox_max_y,bbox_max_z,surface_area_um2,sphericity,"
       "touches_border\n";
  for (const Particle& p : table) {
    o << p.id << ',' << p.voxels << ',' << format_number(p.volume_um3) << ','
      << format_number(p.equivalent_diameter_um);
    for (double c : p.centroid_um) o << ',' << format_number(c);
    for (index_t v : p.bbox_min) o << ',' << v;
    for (index_t v : p.bbox_max) o << ',' << v;
    o << ',' << format_number(p.surface_area_um2) << ',' << format_number(p.sphericity) << ','
      << (p.touches_border ? 1 : 0) << '\n';
  }
  return o.str();
}

}  // namespace vp
