#include "metrics/cracks/detection.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "filters/segment/cleanup.h"
#include "metrics/connectivity.h"
#include "metrics/cracks/shape.h"
#include "metrics/local_thickness.h"

namespace vp {

namespace {

std::array<bool, 256> label_set(const std::vector<int>& labels) {
  std::array<bool, 256> in{};
  for (int l : labels)
    if (l >= 0 && l < 256) in[static_cast<std::size_t>(l)] = true;
  return in;
}

double median_of(std::vector<float>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Median grey levels of the host and of the void, from the labels (NaN when absent).
struct GreyLevels {
  double host = 0, void_ = 0;
};
GreyLevels grey_levels(const Volume<std::uint8_t>& labels, const Volume<float>& grey, const std::array<bool, 256>& host,
                       const std::array<bool, 256>& pore) {
  std::vector<float> h, v;
  for (index_t i = 0; i < labels.size(); ++i) {
    if (host[labels[i]]) h.push_back(grey[i]);
    else if (pore[labels[i]]) v.push_back(grey[i]);
  }
  return {median_of(h), median_of(v)};
}

// Joins pieces of one sheet: a crack only partly labelled as void (the PSF lifts much of a
// two-voxel opening above the threshold) falls apart into pieces with host gaps between them,
// each too small or too short to pass the sheet test alone. Two components closer than
// gap_vox + 1 voxels are joined when the smaller lies on the larger one's plane (every voxel
// centre within 1.5 voxels of it) and the larger is sheet-like (aspect ≥ 2, so that its normal
// means something); when the smaller has ≥ 20 voxels and is sheet-like too, their normals must
// also agree within 20°. Crossing or stacked cracks are not coplanar, so they stay apart.
// Returns each component's group: the smallest component id in it (its first in raster order).
std::vector<std::uint32_t> coplanar_groups(const Clusters& comps, const std::vector<std::vector<index_t>>& members,
                                           const Vec3& h, int gap_vox) {
  std::vector<std::uint32_t> parent(comps.count + 1);
  for (std::uint32_t c = 0; c <= comps.count; ++c) parent[c] = c;
  if (gap_vox <= 0 || comps.count < 2) return parent;
  const Dims d = comps.ids.dims();
  const double h_max = std::max({h[0], h[1], h[2]});
  // Candidate pairs: components within reach of each other.
  const int r = gap_vox + 1;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> pairs;
  for (std::uint32_t c = 1; c <= comps.count; ++c)
    for (index_t i : members[c]) {
      const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      for (index_t w = std::max<index_t>(0, z - r); w <= std::min<index_t>(d.z - 1, z + r); ++w)
        for (index_t v = std::max<index_t>(0, y - r); v <= std::min<index_t>(d.y - 1, y + r); ++v)
          for (index_t u = std::max<index_t>(0, x - r); u <= std::min<index_t>(d.x - 1, x + r); ++u) {
            const std::uint32_t o = comps.ids(u, v, w);
            if (o > c) pairs.emplace_back(c, o);
          }
    }
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  if (pairs.empty()) return parent;
  std::vector<PrincipalAxes> axes(comps.count + 1);
  std::vector<std::uint8_t> known(comps.count + 1, 0);
  auto axes_of = [&](std::uint32_t c) -> const PrincipalAxes& {
    if (!known[c]) axes[c] = principal_axes(members[c], d, h), known[c] = 1;
    return axes[c];
  };
  auto find = [&](std::uint32_t c) {
    while (parent[c] != c) c = parent[c] = parent[parent[c]];
    return c;
  };
  for (const auto& [a, b] : pairs) {
    const bool a_larger = members[a].size() >= members[b].size();
    const std::uint32_t big = a_larger ? a : b, small = a_larger ? b : a;
    const PrincipalAxes& pb = axes_of(big);
    if (sheet_aspect(pb) < 2) continue;
    const Vec3& n = pb.axis[2];
    bool on_plane = true;
    for (index_t i : members[small]) {
      const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      // principal_axes places voxel centres at index × spacing.
      const double off = (x * h[0] - pb.centroid_um[0]) * n[0] + (y * h[1] - pb.centroid_um[1]) * n[1] +
                         (z * h[2] - pb.centroid_um[2]) * n[2];
      if (std::abs(off) > 1.5 * h_max) {
        on_plane = false;
        break;
      }
    }
    if (!on_plane) continue;
    if (members[small].size() >= 20) {
      const PrincipalAxes& ps = axes_of(small);
      const Vec3& m = ps.axis[2];
      if (sheet_aspect(ps) >= 2 && std::abs(n[0] * m[0] + n[1] * m[1] + n[2] * m[2]) < std::cos(20 * M_PI / 180)) continue;
    }
    const std::uint32_t ra = find(a), rb = find(b);
    if (ra != rb) parent[std::max(ra, rb)] = std::min(ra, rb);
  }
  for (std::uint32_t c = 1; c <= comps.count; ++c) parent[c] = find(c);
  return parent;
}

}  // namespace

CrackDetection detect_cracks(const Volume<std::uint8_t>& labels, const Volume<float>* grey,
                             const CrackDetectionOptions& o) {
  if (o.host_labels.empty()) throw InputError("crack detection: no host phase given");
  if (o.void_labels.empty()) throw InputError("crack detection: no void (pore) phase given");
  if (grey && !(grey->dims() == labels.dims()))
    throw InputError("crack detection: grey image " + to_string(grey->dims()) + " and labels " +
                     to_string(labels.dims()) + " differ in size; expected the same dims");
  if (!(o.min_aspect > 0)) throw InputError("crack detection: min_aspect must be positive");
  const std::array<bool, 256> host = label_set(o.host_labels), pore = label_set(o.void_labels);
  for (int l : o.host_labels)
    if (pore[static_cast<std::size_t>(l)])
      throw InputError("crack detection: label " + std::to_string(l) + " is both host and void");

  const Dims d = labels.dims();
  const Vec3 h = labels.spacing_um;
  const double h_max = std::max({h[0], h[1], h[2]});
  CrackDetection out;
  out.max_aperture_um = o.max_aperture_um > 0 ? o.max_aperture_um : 4 * h_max;
  out.closing_radius_um = o.closing_radius_um > 0 ? o.closing_radius_um : out.max_aperture_um / 2 + h_max;
  out.ids = labels.like<std::uint32_t>(d);

  // 1. Void, plus host voxels with a strong grey sheet response.
  Volume<std::uint8_t> void_mask = labels.like<std::uint8_t>(d);
  for (index_t i = 0; i < labels.size(); ++i) {
    void_mask[i] = pore[labels[i]];
    out.void_voxels += void_mask[i];
  }
  if (grey) {
    SheetnessOptions so = o.sheetness;
    if (!(so.contrast > 0) || !std::isfinite(so.host_level)) {
      const GreyLevels levels = grey_levels(labels, *grey, host, pore);
      if (!(so.contrast > 0)) so.contrast = levels.host - levels.void_;
      if (!(so.contrast > 0))
        throw InputError("crack detection: the grey contrast between host (median " + std::to_string(levels.host) +
                         ") and void (median " + std::to_string(levels.void_) +
                         ") is not positive or not known; give the sheet contrast explicitly");
      if (!std::isfinite(so.host_level)) so.host_level = levels.host;
    }
    out.contrast = so.contrast;
    const Volume<float> sheet = dark_sheetness(*grey, so);
    // Keep clear of non-host voxels: a film of another solid between host grains is dark too,
    // and beside labelled void the response only widens what the labels hold.
    Volume<std::uint8_t> not_host = labels.like<std::uint8_t>(d);
    for (index_t i = 0; i < labels.size(); ++i) not_host[i] = !host[labels[i]];
    const Volume<std::uint8_t> near_other = dilate(not_host, 1.75 * h_max);  // 26-neighbours and beyond
    // Hysteresis: host voxels with a response ≥ sheet_threshold / 2 that are 26-connected to
    // one ≥ sheet_threshold; noise seldom reaches the high level, a crack's rim seldom the low.
    Volume<std::uint8_t> weak = labels.like<std::uint8_t>(d);
    for (index_t i = 0; i < labels.size(); ++i)
      weak[i] = host[labels[i]] && !near_other[i] && sheet[i] >= o.sheet_threshold / 2;
    const Clusters weak_parts = label_clusters(weak, 26);
    std::vector<std::uint8_t> has_strong(weak_parts.count + 1, 0);
    for (index_t i = 0; i < labels.size(); ++i)
      if (weak_parts.ids[i] && sheet[i] >= o.sheet_threshold) has_strong[weak_parts.ids[i]] = 1;
    for (index_t i = 0; i < labels.size(); ++i)
      if (has_strong[weak_parts.ids[i]] && weak_parts.ids[i]) {
        void_mask[i] = 1;
        ++out.sheet_voxels;
      }
  }

  // 2. Inside the closed host (as labelled, sheet voxels included, so that a crack found
  //    only in the grey image does not split its own host).
  Volume<std::uint8_t> labelled_host = labels.like<std::uint8_t>(d);
  for (index_t i = 0; i < labels.size(); ++i) labelled_host[i] = host[labels[i]];
  const Volume<std::uint8_t> closed = erode(dilate(labelled_host, out.closing_radius_um), out.closing_radius_um);

  // 3. Thin, by the local thickness of the whole void.
  const Volume<float> thickness = local_thickness(void_mask);
  Volume<std::uint8_t> thin = labels.like<std::uint8_t>(d);
  for (index_t i = 0; i < labels.size(); ++i) {
    if (!void_mask[i] || !closed[i]) continue;
    ++out.enclosed_voxels;
    // A small tolerance: local thickness is a sum of float distances.
    if (thickness[i] <= out.max_aperture_um * (1 + 1e-6)) {
      thin[i] = 1;
      ++out.thin_voxels;
    }
  }

  // 4. Sheet-like components become cracks; coplanar pieces of one holey sheet are judged as one.
  const Clusters comps = label_clusters(thin, 26);
  std::vector<std::vector<index_t>> members(comps.count + 1);
  for (index_t i = 0; i < labels.size(); ++i)
    if (comps.ids[i]) members[comps.ids[i]].push_back(i);
  const std::vector<std::uint32_t> group = coplanar_groups(comps, members, h, o.join_gap_vox);
  std::vector<std::vector<std::uint32_t>> parts_of(comps.count + 1);
  for (std::uint32_t c = 1; c <= comps.count; ++c) parts_of[group[c]].push_back(c);
  std::vector<std::uint32_t> new_id(comps.count + 1, 0);
  for (std::uint32_t root = 1; root <= comps.count; ++root) {
    if (parts_of[root].empty()) continue;  // not a group's first component
    std::vector<index_t> v;
    for (std::uint32_t c : parts_of[root]) v.insert(v.end(), members[c].begin(), members[c].end());
    // Found mostly in the grey image: noise makes small sheets, so ask for more support.
    index_t from_grey = 0;
    for (index_t i : v) from_grey += !pore[labels[i]];
    const index_t least = 2 * from_grey > static_cast<index_t>(v.size()) ? o.min_grey_voxels : o.min_voxels;
    if (static_cast<index_t>(v.size()) < least) {
      ++out.rejected_small;
      continue;
    }
    if (sheet_aspect(principal_axes(v, d, h)) < o.min_aspect) {
      ++out.rejected_shape;
      continue;
    }
    ++out.count;
    for (std::uint32_t c : parts_of[root]) new_id[c] = out.count;
  }
  for (index_t i = 0; i < labels.size(); ++i) out.ids[i] = new_id[comps.ids[i]];
  return out;
}

}  // namespace vp
