#include "filters/segment/cleanup.h"

#include <array>
#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "metrics/connectivity.h"
#include "metrics/distance_transform.h"

namespace vp {

namespace {

void check_radius(double r) {
  if (!(r >= 0) || !std::isfinite(r)) throw InputError("morphology radius must be a finite number >= 0 µm");
}

Volume<std::uint8_t> mask_of(const Volume<std::uint8_t>& labels, std::uint8_t label) {
  Volume<std::uint8_t> m = labels.like<std::uint8_t>(labels.dims());
  for (index_t i = 0; i < labels.size(); ++i) m[i] = labels[i] == label;
  return m;
}

// Voxels with orphan != 0 take the most frequent label among their 6 neighbours that is not
// `lost` and not itself an orphan, peeling from the outside in; ties go to the lower label.
// Orphans with no such neighbour anywhere (the phase filled the whole volume) keep `lost`.
void give_to_neighbours(Volume<std::uint8_t>& labels, Volume<std::uint8_t>& orphan, std::uint8_t lost) {
  const Dims d = labels.dims();
  const auto& offs = neighbour_offsets(6);
  std::vector<index_t> pending;
  for (index_t i = 0; i < labels.size(); ++i)
    if (orphan[i]) pending.push_back(i);
  while (!pending.empty()) {
    std::vector<std::pair<index_t, std::uint8_t>> decided;
    std::vector<index_t> still;
    for (index_t i : pending) {
      std::array<int, 256> votes{};
      const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      int best = -1;
      for (const Offset& o : offs) {
        const index_t nx = x + o.dx, ny = y + o.dy, nz = z + o.dz;
        if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
        const index_t j = labels.index(nx, ny, nz);
        if (orphan[j] || labels[j] == lost) continue;
        const int l = labels[j];
        ++votes[l];
        if (best < 0 || votes[l] > votes[best] || (votes[l] == votes[best] && l < best)) best = l;
      }
      if (best >= 0) decided.emplace_back(i, static_cast<std::uint8_t>(best));
      else still.push_back(i);
    }
    if (decided.empty()) break;  // nothing else to give them to
    for (auto [i, l] : decided) {
      labels[i] = l;
      orphan[i] = 0;
    }
    pending.swap(still);
  }
}

}  // namespace

index_t voxels_for_volume(double volume_um3, const Vec3& s) {
  if (!(volume_um3 >= 0)) throw InputError("minimum island volume must be >= 0 µm³");
  if (volume_um3 == 0) return 0;
  return std::max<index_t>(1, static_cast<index_t>(std::ceil(volume_um3 / (s[0] * s[1] * s[2]) - 1e-9)));
}

Volume<std::uint8_t> dilate(const Volume<std::uint8_t>& mask, double radius_um) {
  check_radius(radius_um);
  // Squared distance to the nearest voxel of the mask: the mask is the distance transform's
  // background (+inf everywhere when the mask is empty; outside the volume is not in the mask).
  Volume<std::uint8_t> others = mask.like<std::uint8_t>(mask.dims());
  for (index_t i = 0; i < mask.size(); ++i) others[i] = mask[i] ? 0 : 1;
  const Volume<float> d2 = squared_distance_transform(others);
  Volume<std::uint8_t> out = mask.like<std::uint8_t>(mask.dims());
  // A small relative slack so that centres exactly on the sphere are inside despite rounding.
  const double r2 = radius_um * radius_um * (1 + 1e-9);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, mask.size(), 1 << 14), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) out[i] = d2[i] <= r2;
  });
  return out;
}

Volume<std::uint8_t> erode(const Volume<std::uint8_t>& mask, double radius_um) {
  Volume<std::uint8_t> complement = mask.like<std::uint8_t>(mask.dims());
  for (index_t i = 0; i < mask.size(); ++i) complement[i] = mask[i] ? 0 : 1;
  Volume<std::uint8_t> grown = dilate(complement, radius_um);
  for (index_t i = 0; i < mask.size(); ++i) grown[i] = grown[i] ? 0 : 1;
  return grown;
}

std::size_t remove_small_islands(Volume<std::uint8_t>& labels, std::uint8_t label, index_t min_voxels,
                                 int connectivity) {
  if (min_voxels <= 1) return 0;
  const Clusters c = label_clusters(mask_of(labels, label), connectivity);
  std::vector<index_t> size(c.count + 1, 0);
  for (index_t i = 0; i < labels.size(); ++i) ++size[c.ids[i]];
  Volume<std::uint8_t> orphan = labels.like<std::uint8_t>(labels.dims());
  std::size_t removed = 0;
  for (std::uint32_t id = 1; id <= c.count; ++id) removed += size[id] < min_voxels;
  for (index_t i = 0; i < labels.size(); ++i) {
    const std::uint32_t id = c.ids[i];
    if (id && size[id] < min_voxels) orphan[i] = 1;
  }
  give_to_neighbours(labels, orphan, label);
  return removed;
}

index_t fill_holes(Volume<std::uint8_t>& labels, std::uint8_t label) {
  Volume<std::uint8_t> other = labels.like<std::uint8_t>(labels.dims());
  for (index_t i = 0; i < labels.size(); ++i) other[i] = labels[i] != label;
  const Clusters c = label_clusters(other, 6);
  std::vector<std::uint8_t> touches(c.count + 1, 0);
  const Dims d = labels.dims();
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x)
        if (x == 0 || y == 0 || z == 0 || x == d.x - 1 || y == d.y - 1 || z == d.z - 1) touches[c.ids(x, y, z)] = 1;
  index_t filled = 0;
  for (index_t i = 0; i < labels.size(); ++i) {
    const std::uint32_t id = c.ids[i];
    if (id && !touches[id]) {
      labels[i] = label;
      ++filled;
    }
  }
  return filled;
}

index_t open_phase(Volume<std::uint8_t>& labels, std::uint8_t label, double radius_um) {
  const Volume<std::uint8_t> m = mask_of(labels, label);
  const Volume<std::uint8_t> opened = dilate(erode(m, radius_um), radius_um);
  Volume<std::uint8_t> orphan = labels.like<std::uint8_t>(labels.dims());
  index_t changed = 0;
  for (index_t i = 0; i < labels.size(); ++i)
    if (m[i] && !opened[i]) {
      orphan[i] = 1;
      ++changed;
    }
  give_to_neighbours(labels, orphan, label);
  return changed;
}

index_t close_phase(Volume<std::uint8_t>& labels, std::uint8_t label, double radius_um) {
  const Volume<std::uint8_t> m = mask_of(labels, label);
  const Volume<std::uint8_t> closed = erode(dilate(m, radius_um), radius_um);
  index_t changed = 0;
  for (index_t i = 0; i < labels.size(); ++i)
    if (closed[i] && !m[i]) {
      labels[i] = label;
      ++changed;
    }
  return changed;
}

CleanupReport cleanup_labels(Volume<std::uint8_t>& labels, const CleanupOptions& o) {
  CleanupReport rep;
  for (auto [l, r] : o.open_um) rep.voxels_opened += open_phase(labels, l, r);
  for (auto [l, r] : o.close_um) rep.voxels_closed += close_phase(labels, l, r);
  for (auto [l, v] : o.min_island_um3)
    rep.islands_removed += remove_small_islands(labels, l, voxels_for_volume(v, labels.spacing_um), o.connectivity);
  for (auto l : o.fill_holes) rep.voxels_filled += fill_holes(labels, l);
  return rep;
}

}  // namespace vp
