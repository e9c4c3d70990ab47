#include "filters/segment/cleanup.h"

#include <algorithm>
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

// The squared length in µm² of a voxel offset as squared_distance_transform accumulates it: the
// x term rounded to float, then the y and the z term each added in double and rounded to float
// (its three passes). Rounding is monotone, so the transform's value at a voxel is the least of
// these over the background voxels, and a voxel lies within a dilation's radius iff a mask voxel
// sits at an offset whose cost is within it.
float offset_cost(const Vec3& h, index_t dx, index_t dy, index_t dz) {
  float c = static_cast<float>(h[0] * h[0] * static_cast<double>(dx * dx));
  c = static_cast<float>(static_cast<double>(c) + h[1] * h[1] * static_cast<double>(dy * dy));
  return static_cast<float>(static_cast<double>(c) + h[2] * h[2] * static_cast<double>(dz * dz));
}

// A small ball as rows: for each (dy, dz) it reaches, the largest |dx| within it.
struct BallRow {
  index_t dy, dz, half_width;
};

// The ball's rows, or none when it is too big for the row-wise dilation to pay (then the distance
// transform does it).
std::vector<BallRow> small_ball_rows(const Vec3& h, double r2) {
  constexpr std::size_t kMaxRows = 128;
  constexpr index_t kMaxHalfWidth = 254;  // the row distances are kept in a byte, 255 = farther
  std::vector<BallRow> rows;
  auto within = [&](index_t dx, index_t dy, index_t dz) { return offset_cost(h, dx, dy, dz) <= r2; };
  index_t ry = 0, rz = 0;
  while (within(0, ry + 1, 0) && ry < kMaxHalfWidth) ++ry;
  while (within(0, 0, rz + 1) && rz < kMaxHalfWidth) ++rz;
  for (index_t dz = -rz; dz <= rz; ++dz)
    for (index_t dy = -ry; dy <= ry; ++dy) {
      if (!within(0, dy, dz)) continue;
      index_t w = 0;
      while (w <= kMaxHalfWidth && within(w + 1, dy, dz)) ++w;
      if (w > kMaxHalfWidth || rows.size() == kMaxRows) return {};
      rows.push_back({dy, dz, w});
    }
  return rows;
}

// Dilation of the voxels whose mask value is `set` (nonzero or zero) by a small ball, row by row:
// each voxel's distance along x to the nearest set voxel of its row (in a byte), then per output
// row the OR over the ball's rows of "that distance ≤ the row's half width". The same voxels as
// thresholding the exact distance transform (offset_cost), without its float volume.
Volume<std::uint8_t> dilate_by_rows(const Volume<std::uint8_t>& mask, bool set, const std::vector<BallRow>& ball) {
  const Dims d = mask.dims();
  Volume<std::uint8_t> near = mask.like<std::uint8_t>(d);  // x distance to the nearest set voxel, 255 = farther
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.y * d.z), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t line = r.begin(); line != r.end(); ++line) {
      const std::uint8_t* m = mask.data() + line * d.x;
      std::uint8_t* out = near.data() + line * d.x;
      index_t dist = 255;
      for (index_t x = 0; x < d.x; ++x) {
        dist = (m[x] != 0) == set ? 0 : std::min<index_t>(dist + 1, 255);
        out[x] = static_cast<std::uint8_t>(dist);
      }
      dist = 255;
      for (index_t x = d.x - 1; x >= 0; --x) {
        dist = (m[x] != 0) == set ? 0 : std::min<index_t>(dist + 1, 255);
        out[x] = static_cast<std::uint8_t>(std::min<index_t>(out[x], dist));
      }
    }
  });
  Volume<std::uint8_t> out = mask.like<std::uint8_t>(d);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.y * d.z), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t line = r.begin(); line != r.end(); ++line) {
      const index_t y = line % d.y, z = line / d.y;
      std::uint8_t* o = out.data() + line * d.x;
      for (const BallRow& b : ball) {
        const index_t sy = y + b.dy, sz = z + b.dz;
        if (sy < 0 || sz < 0 || sy >= d.y || sz >= d.z) continue;
        const std::uint8_t* src = near.data() + (sz * d.y + sy) * d.x;
        const auto w = static_cast<std::uint8_t>(b.half_width);
        for (index_t x = 0; x < d.x; ++x) o[x] |= src[x] <= w;
      }
    }
  });
  return out;
}

}  // namespace

index_t voxels_for_volume(double volume_um3, const Vec3& s) {
  if (!(volume_um3 >= 0)) throw InputError("minimum island volume must be >= 0 µm³");
  if (volume_um3 == 0) return 0;
  return std::max<index_t>(1, static_cast<index_t>(std::ceil(volume_um3 / (s[0] * s[1] * s[2]) - 1e-9)));
}

Volume<std::uint8_t> dilate(const Volume<std::uint8_t>& mask, double radius_um) {
  check_radius(radius_um);
  // A small relative slack so that centres exactly on the sphere are inside despite rounding.
  const double r2 = radius_um * radius_um * (1 + 1e-9);
  if (const auto ball = small_ball_rows(mask.spacing_um, r2); !ball.empty()) return dilate_by_rows(mask, true, ball);
  // Squared distance to the nearest voxel of the mask: the mask is the distance transform's
  // background (+inf everywhere when the mask is empty; outside the volume is not in the mask).
  Volume<std::uint8_t> others = mask.like<std::uint8_t>(mask.dims());
  for (index_t i = 0; i < mask.size(); ++i) others[i] = mask[i] ? 0 : 1;
  const Volume<float> d2 = squared_distance_transform(others);
  Volume<std::uint8_t> out = mask.like<std::uint8_t>(mask.dims());
  tbb::parallel_for(tbb::blocked_range<index_t>(0, mask.size(), 1 << 14), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) out[i] = d2[i] <= r2;
  });
  return out;
}

Volume<std::uint8_t> erode(const Volume<std::uint8_t>& mask, double radius_um) {
  check_radius(radius_um);
  const double r2 = radius_um * radius_um * (1 + 1e-9);  // as dilate's
  if (const auto ball = small_ball_rows(mask.spacing_um, r2); !ball.empty()) {
    Volume<std::uint8_t> grown = dilate_by_rows(mask, false, ball);  // of the complement, not built
    for (index_t i = 0; i < mask.size(); ++i) grown[i] = grown[i] ? 0 : 1;
    return grown;
  }
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
