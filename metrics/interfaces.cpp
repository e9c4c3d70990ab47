#include "metrics/interfaces.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>

#include <tbb/blocked_range.h>
#include <tbb/combinable.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "core/neighbourhood.h"
#include "metrics/phase_fractions.h"

namespace vp {
namespace {

double step_length(const std::array<int, 3>& s, const Vec3& h) {
  return std::sqrt(std::pow(s[0] * h[0], 2) + std::pow(s[1] * h[1], 2) + std::pow(s[2] * h[2], 2));
}

// Voxel pairs (p, p + s) with both ends inside the image.
index_t step_pairs(const Dims& d, const std::array<int, 3>& s) {
  return (d.x - std::abs(s[0])) * (d.y - std::abs(s[1])) * (d.z - std::abs(s[2]));
}

// Sum of the Crofton weights of the directions the image can hold (a direction with no voxel
// pair inside a single plane is dropped, and the rest renormalised by this sum).
double usable_weight_sum(const CroftonDirections& dirs, const Dims& d) {
  double sum = 0;
  for (int k = 0; k < 13; ++k)
    if (step_pairs(d, dirs.step[k]) > 0) sum += dirs.weight[k];
  return sum;
}

// Calls visit(i, j) for every pair of voxel indices (i, j = i + s) inside the image, in parallel
// over z planes; visit gets a per-thread accumulator.
template <class Acc, class Visit>
void for_each_step(const Dims& d, const std::array<int, 3>& s, tbb::combinable<Acc>& acc, Visit visit) {
  const index_t x0 = std::max(0, -s[0]), x1 = d.x - std::max(0, s[0]);
  const index_t y0 = std::max(0, -s[1]), y1 = d.y - std::max(0, s[1]);
  const index_t z0 = std::max(0, -s[2]), z1 = d.z - std::max(0, s[2]);
  if (x0 >= x1 || y0 >= y1 || z0 >= z1) return;
  const index_t offset = s[0] + d.x * (s[1] + d.y * s[2]);
  tbb::parallel_for(tbb::blocked_range<index_t>(z0, z1), [&](const tbb::blocked_range<index_t>& r) {
    Acc& a = acc.local();
    for (index_t z = r.begin(); z != r.end(); ++z)
      for (index_t y = y0; y < y1; ++y) {
        const index_t row = d.x * (y + d.y * z);
        for (index_t x = x0; x < x1; ++x) visit(a, row + x, row + x + offset);
      }
  });
}

}  // namespace

namespace {

CroftonDirections compute_crofton_directions(const Vec3& h) {
  CroftonDirections c;
  c.step = kHalfNeighbourhood26;
  std::array<Vec3, 13> unit;
  for (int k = 0; k < 13; ++k) {
    double len = step_length(kHalfNeighbourhood26[k], h);
    for (int a = 0; a < 3; ++a) unit[k][a] = kHalfNeighbourhood26[k][a] * h[a] / len;
  }
  // Voronoi cell areas of the ± directions on the unit sphere, by a Fibonacci point set
  // (deterministic; 200 000 points give the weights to about 1e-5).
  constexpr int kPoints = 200000;
  std::array<long long, 13> hits{};
  const double golden = M_PI * (3.0 - std::sqrt(5.0));
  for (int i = 0; i < kPoints; ++i) {
    double z = 1.0 - 2.0 * (i + 0.5) / kPoints;
    double r = std::sqrt(1.0 - z * z);
    double phi = golden * i;
    Vec3 p{r * std::cos(phi), r * std::sin(phi), z};
    int best = 0;
    double best_dot = -1;
    for (int k = 0; k < 13; ++k) {
      double dot = std::abs(p[0] * unit[k][0] + p[1] * unit[k][1] + p[2] * unit[k][2]);
      if (dot > best_dot) best_dot = dot, best = k;
    }
    ++hits[best];
  }
  for (int k = 0; k < 13; ++k) c.weight[k] = static_cast<double>(hits[k]) / kPoints;
  return c;
}

}  // namespace

CroftonDirections crofton_directions(const Vec3& h) {
  // The weights cost ~3 M dot products: computed once per spacing (REV tiles reuse them).
  static std::mutex mutex;
  static std::map<Vec3, CroftonDirections> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(h);
  if (it == cache.end()) it = cache.emplace(h, compute_crofton_directions(h)).first;
  return it->second;
}

double InterfaceAreas::area(int a, int b) const {
  if (a > b) std::swap(a, b);
  for (const auto& p : pairs)
    if (p.label_a == a && p.label_b == b) return p.area_um2;
  return 0;
}

double InterfaceAreas::facecount(int a, int b) const {
  if (a > b) std::swap(a, b);
  for (const auto& p : pairs)
    if (p.label_a == a && p.label_b == b) return p.facecount_um2;
  return 0;
}

double InterfaceAreas::surface(int a) const {
  double s = 0;
  for (const auto& p : pairs)
    if (p.label_a == a || p.label_b == a) s += p.area_um2;
  return s;
}

double InterfaceAreas::surface_facecount(int a) const {
  double s = 0;
  for (const auto& p : pairs)
    if (p.label_a == a || p.label_b == a) s += p.facecount_um2;
  return s;
}

CroftonCrossings crofton_crossings(const Volume<std::uint8_t>& labels, const std::vector<int>& label_set,
                                   index_t z_begin, index_t z_end) {
  const Dims d = labels.dims();
  CroftonCrossings out;
  out.labels = label_set;
  std::sort(out.labels.begin(), out.labels.end());
  out.labels.erase(std::unique(out.labels.begin(), out.labels.end()), out.labels.end());
  // Labels numbered 0..n-1, so the per-thread pair counters stay small.
  std::array<std::uint16_t, 256> slot{};
  for (std::size_t i = 0; i < out.labels.size(); ++i) {
    if (out.labels[i] < 0 || out.labels[i] > 255)
      throw InputError("crofton crossings: label " + std::to_string(out.labels[i]) + " is not 0..255");
    slot[static_cast<std::size_t>(out.labels[i])] = static_cast<std::uint16_t>(i);
  }
  const std::size_t n = out.labels.size();
  const std::size_t nn = n * n;
  out.counts.assign(13 * nn, 0);
  z_begin = std::max<index_t>(z_begin, 0);
  z_end = std::min(z_end, d.z);
  if (labels.empty() || z_begin >= z_end || n == 0) return out;
  const std::uint8_t* l = labels.data();
  // One sweep counts the crossings of all 13 directions: every step p -> p + s stays within the
  // planes z - 1 .. z + 1, so the image is read once. counts[k * n² + pair] per thread.
  using Counts = std::vector<std::int64_t>;
  tbb::combinable<Counts> counts([nn] { return Counts(13 * nn, 0); });
  std::array<index_t, 13> offset;
  for (int k = 0; k < 13; ++k)
    offset[k] = kHalfNeighbourhood26[k][0] + d.x * (kHalfNeighbourhood26[k][1] + d.y * kHalfNeighbourhood26[k][2]);
  tbb::parallel_for(tbb::blocked_range<index_t>(z_begin, z_end), [&](const tbb::blocked_range<index_t>& r) {
    Counts& c = counts.local();
    auto cross = [&](int k, std::uint8_t a, std::uint8_t b) {
      const std::size_t sa = slot[a], sb = slot[b];
      ++c[static_cast<std::size_t>(k) * nn + (sa < sb ? sa * n + sb : sb * n + sa)];
    };
    for (index_t z = r.begin(); z != r.end(); ++z)
      for (index_t y = 0; y < d.y; ++y) {
        const bool inner_yz = y >= 1 && y + 1 < d.y && z >= 1 && z + 1 < d.z;
        const index_t row = d.x * (y + d.y * z);
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = row + x;
          const std::uint8_t a = l[i];
          if (inner_yz && x >= 1 && x + 1 < d.x) {
            for (int k = 0; k < 13; ++k)
              if (l[i + offset[k]] != a) cross(k, a, l[i + offset[k]]);
            continue;
          }
          for (int k = 0; k < 13; ++k) {
            const auto& st = kHalfNeighbourhood26[k];
            const index_t nx = x + st[0], ny = y + st[1], nz = z + st[2];
            if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
            if (l[i + offset[k]] != a) cross(k, a, l[i + offset[k]]);
          }
        }
      }
  });
  counts.combine_each([&](const Counts& c) {
    for (std::size_t i = 0; i < c.size(); ++i) out.counts[i] += c[i];
  });
  return out;
}

InterfaceAreas interface_areas(const CroftonCrossings& crossings, const Dims& d, const Vec3& h) {
  InterfaceAreas out;
  out.volume_um3 = static_cast<double>(d.count()) * h[0] * h[1] * h[2];
  if (d.count() == 0) return out;
  const std::size_t n = crossings.labels.size(), nn = n * n;
  if (crossings.counts.size() != 13 * nn) throw InputError("interface areas: crossing counts do not match the labels");
  const CroftonDirections dirs = crofton_directions(h);
  const double voxel_volume = h[0] * h[1] * h[2];
  const double weight_sum = usable_weight_sum(dirs, d);
  std::vector<double> crofton(nn, 0.0), faces(nn, 0.0);
  for (int k = 0; k < 13; ++k) {
    const auto& s = dirs.step[k];
    if (step_pairs(d, s) <= 0) continue;
    const std::int64_t* total = &crossings.counts[static_cast<std::size_t>(k) * nn];
    // Each crossing stands for the area V_voxel / |s| of the plane across the lines (Cauchy:
    // surface = 2 × mean over directions of crossings × that area).
    const double factor = 2.0 * dirs.weight[k] / weight_sum * voxel_volume / step_length(s, h);
    const bool axis = std::abs(s[0]) + std::abs(s[1]) + std::abs(s[2]) == 1;
    const double face_area = axis ? (s[0] ? h[1] * h[2] : s[1] ? h[0] * h[2] : h[0] * h[1]) : 0.0;
    for (std::size_t i = 0; i < nn; ++i) {
      if (!total[i]) continue;
      crofton[i] += factor * static_cast<double>(total[i]);
      if (axis) faces[i] += face_area * static_cast<double>(total[i]);
    }
  }
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = a + 1; b < n; ++b)
      if (crofton[a * n + b] > 0 || faces[a * n + b] > 0)
        out.pairs.push_back({crossings.labels[a], crossings.labels[b], crofton[a * n + b], faces[a * n + b]});
  return out;
}

InterfaceAreas interface_areas(const Volume<std::uint8_t>& labels) {
  const auto present = count_labels(labels);
  std::vector<int> label_set;
  for (int l = 0; l < 256; ++l)
    if (present[static_cast<std::size_t>(l)] > 0) label_set.push_back(l);
  return interface_areas(crofton_crossings(labels, label_set, 0, labels.dims().z), labels.dims(), labels.spacing_um);
}

namespace {

std::array<bool, 256> role_lookup(const PhaseTable& table, Role role) {
  std::array<bool, 256> is{};
  for (const Phase* p : table.by_role(role)) is[static_cast<std::size_t>(p->label)] = true;
  return is;
}

void require_role(const PhaseTable& table, Role role, const std::string& what) {
  if (table.by_role(role).empty())
    throw InputError(what + ": the phase table has no phase with role '" + to_string(role) +
                     "' (give one with --roles NAME=" + to_string(role) + " or `role:` in the config)");
}

}  // namespace

ContactArea contact_area(const LabelVolume& labels) {
  require_role(labels.phases, Role::active, "contact_area_fraction");
  require_role(labels.phases, Role::electrolyte, "contact_area_fraction");
  return contact_area(interface_areas(labels), labels.phases);
}

ContactArea contact_area(const InterfaceAreas& areas, const PhaseTable& table) {
  require_role(table, Role::active, "contact_area_fraction");
  require_role(table, Role::electrolyte, "contact_area_fraction");
  const auto active = role_lookup(table, Role::active);
  const auto electrolyte = role_lookup(table, Role::electrolyte);
  ContactArea c;
  for (const auto& p : areas.pairs) {
    bool a_act = active[p.label_a], b_act = active[p.label_b];
    if (a_act == b_act) continue;  // AM–AM or neither: not AM surface
    c.am_surface_um2 += p.area_um2;
    if (electrolyte[a_act ? p.label_b : p.label_a]) c.am_se_um2 += p.area_um2;
  }
  c.fraction = c.am_surface_um2 > 0 ? c.am_se_um2 / c.am_surface_um2 : std::numeric_limits<double>::quiet_NaN();
  return c;
}

std::vector<ParticleContact> particle_contact_areas(const LabelVolume& labels, const Volume<std::uint32_t>& particles) {
  if (!(particles.dims() == labels.dims()))
    throw InputError("particle labels are " + to_string(particles.dims()) + " but phase labels are " +
                     to_string(labels.dims()) + ": expected the same dimensions");
  require_role(labels.phases, Role::active, "per-particle contact_area_fraction");
  const auto active = role_lookup(labels.phases, Role::active);
  const auto electrolyte = role_lookup(labels.phases, Role::electrolyte);
  const Dims d = labels.dims();
  const Vec3 h = labels.spacing_um;
  const std::uint8_t* l = labels.data();
  const std::uint32_t* pid = particles.data();

  // Particle ids that own at least one AM voxel.
  std::uint32_t max_id = 0;
  for (index_t i = 0; i < labels.size(); ++i)
    if (active[l[i]]) max_id = std::max(max_id, pid[i]);
  const std::size_t n_ids = static_cast<std::size_t>(max_id) + 1;
  std::vector<char> is_am(n_ids, 0), border(n_ids, 0);
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        index_t i = labels.index(x, y, z);
        if (!active[l[i]] || pid[i] == 0) continue;
        is_am[pid[i]] = 1;
        if (x == 0 || y == 0 || z == 0 || x == d.x - 1 || y == d.y - 1 || z == d.z - 1) border[pid[i]] = 1;
      }

  const CroftonDirections dirs = crofton_directions(h);
  const double voxel_volume = h[0] * h[1] * h[2];
  const double weight_sum = usable_weight_sum(dirs, d);
  std::vector<double> surface(n_ids, 0.0), contact(n_ids, 0.0);
  struct Counts {
    std::vector<std::int64_t> surface, contact;
  };
  for (int k = 0; k < 13; ++k) {
    const auto& s = dirs.step[k];
    const index_t n_pairs = step_pairs(d, s);
    if (n_pairs <= 0) continue;
    tbb::combinable<Counts> counts([n_ids] {
      return Counts{std::vector<std::int64_t>(n_ids, 0), std::vector<std::int64_t>(n_ids, 0)};
    });
    auto one_side = [&](Counts& c, index_t from, index_t to) {
      if (!active[l[from]] || active[l[to]] || pid[from] == 0) return;
      ++c.surface[pid[from]];
      if (electrolyte[l[to]]) ++c.contact[pid[from]];
    };
    for_each_step(d, s, counts, [&](Counts& c, index_t i, index_t j) {
      one_side(c, i, j);
      one_side(c, j, i);
    });
    std::vector<std::int64_t> ts(n_ids, 0), tc(n_ids, 0);
    counts.combine_each([&](const Counts& c) {
      for (std::size_t i = 0; i < n_ids; ++i) ts[i] += c.surface[i], tc[i] += c.contact[i];
    });
    const double factor = 2.0 * dirs.weight[k] / weight_sum * voxel_volume / step_length(s, h);
    for (std::size_t i = 0; i < n_ids; ++i) {
      surface[i] += factor * static_cast<double>(ts[i]);
      contact[i] += factor * static_cast<double>(tc[i]);
    }
  }
  std::vector<ParticleContact> out;
  for (std::size_t i = 1; i < n_ids; ++i) {
    if (!is_am[i]) continue;
    double f = surface[i] > 0 ? contact[i] / surface[i] : std::numeric_limits<double>::quiet_NaN();
    out.push_back({static_cast<std::uint32_t>(i), surface[i], contact[i], f, border[i] != 0});
  }
  return out;
}

std::array<std::int64_t, 3> triple_phase_edges(const Volume<std::uint8_t>& labels, int a, int b, int c, index_t z_begin,
                                               index_t z_end) {
  const Dims d = labels.dims();
  std::array<std::int64_t, 3> edges{};
  z_begin = std::max<index_t>(z_begin, 0);
  if (labels.empty()) return edges;
  const std::uint8_t* l = labels.data();
  // Bit of each label of interest; an edge is triple when its four voxels OR to all three bits.
  std::array<std::uint8_t, 256> bit{};
  bit[static_cast<std::size_t>(a)] |= 1;
  bit[static_cast<std::size_t>(b)] |= 2;
  bit[static_cast<std::size_t>(c)] |= 4;
  for (int axis = 0; axis < 3; ++axis) {
    // The edge runs along `axis`; u and v are the two other axes (steps between the four voxels).
    const int u = (axis + 1) % 3, v = (axis + 2) % 3;
    const index_t stride[3] = {1, d.x, d.x * d.y};
    const index_t su = stride[u], sv = stride[v];
    index_t lim[3] = {d.x, d.y, d.z};
    lim[u] -= 1;
    lim[v] -= 1;
    if (lim[u] <= 0 || lim[v] <= 0) continue;
    const index_t z1 = std::min(lim[2], z_end);
    if (z_begin >= z1) continue;
    tbb::combinable<std::int64_t> count(0);
    tbb::parallel_for(tbb::blocked_range<index_t>(z_begin, z1), [&](const tbb::blocked_range<index_t>& r) {
      std::int64_t& n = count.local();
      for (index_t z = r.begin(); z != r.end(); ++z)
        for (index_t y = 0; y < lim[1]; ++y)
          for (index_t x = 0; x < lim[0]; ++x) {
            index_t i = x + d.x * (y + d.y * z);
            if ((bit[l[i]] | bit[l[i + su]] | bit[l[i + sv]] | bit[l[i + su + sv]]) == 7) ++n;
          }
    });
    edges[static_cast<std::size_t>(axis)] = count.combine(std::plus<>());
  }
  return edges;
}

TriplePhaseBoundary triple_phase_boundary(const std::array<std::int64_t, 3>& edges, const Dims& d, const Vec3& h) {
  TriplePhaseBoundary t;
  if (d.count() == 0) return t;
  double length = 0;
  for (int axis = 0; axis < 3; ++axis) {
    const int u = (axis + 1) % 3, v = (axis + 2) % 3;
    index_t lim[3] = {d.x, d.y, d.z};
    lim[u] -= 1;
    lim[v] -= 1;
    if (lim[u] <= 0 || lim[v] <= 0) continue;
    t.interior_edges += lim[0] * lim[1] * lim[2];
    const std::int64_t n = edges[static_cast<std::size_t>(axis)];
    t.edges += n;
    length += static_cast<double>(n) * h[axis];
  }
  t.length_um = length;
  t.density_um_per_um3 = length / (static_cast<double>(d.count()) * h[0] * h[1] * h[2]);
  t.edge_fraction = t.interior_edges > 0 ? static_cast<double>(t.edges) / static_cast<double>(t.interior_edges) : 0;
  return t;
}

TriplePhaseBoundary triple_phase_boundary(const Volume<std::uint8_t>& labels, int a, int b, int c) {
  if (labels.empty()) return {};
  return triple_phase_boundary(triple_phase_edges(labels, a, b, c, 0, labels.dims().z), labels.dims(),
                               labels.spacing_um);
}

}  // namespace vp
