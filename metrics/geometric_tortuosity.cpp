#include "metrics/geometric_tortuosity.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <vector>

#include <tbb/parallel_invoke.h>

#include "core/error.h"

namespace vp {
namespace {

struct Step {
  index_t dx, dy, dz;
  float length;
};

std::vector<Step> neighbour_steps(int connectivity, const Vec3& h) {
  std::vector<Step> steps;
  const int max_l1 = connectivity == 6 ? 1 : connectivity == 18 ? 2 : 3;
  for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        int l1 = std::abs(dx) + std::abs(dy) + std::abs(dz);
        if (l1 == 0 || l1 > max_l1) continue;
        double len = std::sqrt(dx * dx * h[0] * h[0] + dy * dy * h[1] * h[1] + dz * dz * h[2] * h[2]);
        steps.push_back({dx, dy, dz, static_cast<float>(len)});
      }
  return steps;
}

void check(int axis, int connectivity) {
  if (axis < 0 || axis > 2) throw InputError("axis " + std::to_string(axis) + ": expected 0 (x), 1 (y) or 2 (z)");
  if (connectivity != 6 && connectivity != 18 && connectivity != 26)
    throw InputError("connectivity " + std::to_string(connectivity) + ": expected 6, 18 or 26");
}

// Dijkstra's queue entries, (distance, voxel) ordered as pairs. Below 2³² voxels both fit one
// 64-bit word, the distance's bits above the index: for non-negative floats the bit pattern
// orders as the value, so the word orders as the pair does (same pops, half the heap's memory).
struct PackedEntry {
  using type = std::uint64_t;
  static type make(float d, index_t i) {
    return static_cast<type>(std::bit_cast<std::uint32_t>(d)) << 32 | static_cast<std::uint32_t>(i);
  }
  static float distance(type e) { return std::bit_cast<float>(static_cast<std::uint32_t>(e >> 32)); }
  static index_t voxel(type e) { return static_cast<index_t>(e & 0xFFFFFFFFu); }
};
struct PairEntry {
  using type = std::pair<float, index_t>;
  static type make(float d, index_t i) { return {d, i}; }
  static float distance(const type& e) { return e.first; }
  static index_t voxel(const type& e) { return e.second; }
};

// The distances of the phase voxels only, addressed by a voxel's rank among them: a bit per
// voxel plus one count per 64 voxels, so a distance costs 4 B per phase voxel instead of per
// voxel (the stage runs its axes side by side, each holding one distance store).
class PhaseDistances {
 public:
  explicit PhaseDistances(const Volume<std::uint8_t>& mask)
      : bits_(static_cast<std::size_t>((mask.size() + 63) / 64), 0), before_(bits_.size(), 0) {
    for (index_t i = 0; i < mask.size(); ++i)
      if (mask[i]) bits_[static_cast<std::size_t>(i >> 6)] |= std::uint64_t{1} << (i & 63);
    index_t count = 0;
    for (std::size_t w = 0; w < bits_.size(); ++w) {
      before_[w] = count;
      count += std::popcount(bits_[w]);
    }
    distance_.assign(static_cast<std::size_t>(count), std::numeric_limits<float>::infinity());
  }
  // The distance of voxel i; nullptr when i is not in the phase.
  float* find(index_t i) {
    const auto w = static_cast<std::size_t>(i >> 6);
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (!(bits_[w] & bit)) return nullptr;
    return &distance_[static_cast<std::size_t>(before_[w] + std::popcount(bits_[w] & (bit - 1)))];
  }

 private:
  std::vector<std::uint64_t> bits_;
  std::vector<index_t> before_;  // phase voxels in the words before
  std::vector<float> distance_;
};

// The same interface over a whole-volume distance map.
struct VolumeDistances {
  const Volume<std::uint8_t>& mask;
  Volume<float>& distance;
  float* find(index_t i) { return mask[i] ? &distance[i] : nullptr; }
};

// dist: VolumeDistances or PhaseDistances, +inf on entry.
template <class Entry, class Distances>
[[gnu::always_inline]] inline void dijkstra_from_plane(const Volume<std::uint8_t>& mask, int axis, index_t index,
                                                       int connectivity, Distances& dist) {
  const Dims d = mask.dims();
  const auto steps = neighbour_steps(connectivity, mask.spacing_um);
  std::priority_queue<typename Entry::type, std::vector<typename Entry::type>, std::greater<>> heap;
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t p[3] = {x, y, z};
        if (p[axis] != index || !mask(x, y, z)) continue;
        *dist.find(mask.index(x, y, z)) = 0;
        heap.push(Entry::make(0.0f, mask.index(x, y, z)));
      }
  while (!heap.empty()) {
    const float du = Entry::distance(heap.top());
    const index_t u = Entry::voxel(heap.top());
    heap.pop();
    if (du > *dist.find(u)) continue;  // stale entry
    const index_t x = u % d.x, y = (u / d.x) % d.y, z = u / (d.x * d.y);
    for (const Step& s : steps) {
      index_t nx = x + s.dx, ny = y + s.dy, nz = z + s.dz;
      if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
      const index_t v = mask.index(nx, ny, nz);
      float* dist_v = dist.find(v);
      if (!dist_v) continue;
      const float dv = du + s.length;
      if (dv < *dist_v) {
        *dist_v = dv;
        heap.push(Entry::make(dv, v));
      }
    }
  }
}

template <class Distances>
[[gnu::always_inline]] inline void geodesic_distances(const Volume<std::uint8_t>& mask, int axis, index_t index,
                                                      int connectivity, Distances& dist) {
  if (mask.size() <= static_cast<index_t>(std::numeric_limits<std::uint32_t>::max()) + 1)
    dijkstra_from_plane<PackedEntry>(mask, axis, index, connectivity, dist);
  else dijkstra_from_plane<PairEntry>(mask, axis, index, connectivity, dist);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
// PhaseDistances counts bits 27 times per voxel popped. The baseline x86-64 target has no popcnt
// instruction (std::popcount is then a call into libgcc: +33 % instructions over the whole-volume
// distances), so the same code is also compiled for CPUs that have it, chosen at run time.
[[gnu::target("popcnt")]] void geodesic_distances_popcnt(const Volume<std::uint8_t>& mask, int axis, index_t index,
                                                         int connectivity, PhaseDistances& dist) {
  geodesic_distances(mask, axis, index, connectivity, dist);
}
#endif

void geodesic_phase_distances(const Volume<std::uint8_t>& mask, int axis, index_t index, int connectivity,
                              PhaseDistances& dist) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  if (__builtin_cpu_supports("popcnt")) return geodesic_distances_popcnt(mask, axis, index, connectivity, dist);
#endif
  geodesic_distances(mask, axis, index, connectivity, dist);
}

// Ratios d_in / L at the reached phase voxels of the outlet plane, in voxel order.
template <class Distances>
void outlet_ratios(const Volume<std::uint8_t>& mask, Distances& d_in, GeometricTortuosity& t) {
  const Dims d = mask.dims();
  const index_t n = d[t.axis];
  std::vector<double> ratios;
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t p[3] = {x, y, z};
        if (p[t.axis] != n - 1 || !mask(x, y, z)) continue;
        ++t.outlet_voxels;
        const float di = *d_in.find(mask.index(x, y, z));
        if (std::isinf(di)) continue;
        ++t.outlet_reached;
        ratios.push_back(t.straight_length_um > 0 ? di / t.straight_length_um
                                                  : std::numeric_limits<double>::quiet_NaN());
      }
  t.ratios = summarize(ratios);
  t.mean = t.ratios.count > 0 ? t.ratios.mean : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

Volume<float> geodesic_distance_from_plane(const Volume<std::uint8_t>& mask, int axis, index_t index,
                                           int connectivity) {
  check(axis, connectivity);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  Volume<float> dist = mask.like<float>(mask.dims(), kInf);
  VolumeDistances distances{mask, dist};
  if (!mask.empty()) geodesic_distances(mask, axis, index, connectivity, distances);
  return dist;
}

GeometricTortuosity geometric_tortuosity(const Volume<std::uint8_t>& mask, const GeometricTortuosityOptions& o) {
  check(o.axis, o.connectivity);
  const Dims d = mask.dims();
  const index_t n = d[o.axis];
  GeometricTortuosity t;
  t.axis = o.axis;
  t.straight_length_um = static_cast<double>(n - 1) * mask.spacing_um[o.axis];
  if (!o.map) {
    PhaseDistances d_in(mask);
    if (!mask.empty()) geodesic_phase_distances(mask, o.axis, 0, o.connectivity, d_in);
    outlet_ratios(mask, d_in, t);
    return t;
  }
  Volume<float> d_in, d_out;
  tbb::parallel_invoke([&] { d_in = geodesic_distance_from_plane(mask, o.axis, 0, o.connectivity); },
                       [&] { d_out = geodesic_distance_from_plane(mask, o.axis, n - 1, o.connectivity); });
  VolumeDistances in{mask, d_in};
  outlet_ratios(mask, in, t);
  Volume<float> m = mask.like<float>(d, 0.0f);
  for (index_t i = 0; i < m.size(); ++i)
    if (std::isfinite(d_in[i]) && std::isfinite(d_out[i]) && t.straight_length_um > 0)
      m[i] = static_cast<float>((d_in[i] + d_out[i]) / t.straight_length_um);
  t.map = std::move(m);
  return t;
}

}  // namespace vp
