#include "metrics/face_connectivity.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <string>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"
#include "metrics/connectivity.h"
#include "metrics/phase_fractions.h"

namespace vp {
namespace {

using u32 = std::uint32_t;

// Offsets to voxels visited earlier in raster order (x fastest), so one pass sees every pair once.
bool is_backward(const Offset& o) { return o[2] < 0 || (o[2] == 0 && (o[1] < 0 || (o[1] == 0 && o[0] < 0))); }

// Union-find with path halving; the smaller index becomes the root.
u32 find_root(std::vector<u32>& parent, u32 i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

void unite(std::vector<u32>& parent, u32 a, u32 b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a == b) return;
  if (a < b) parent[b] = a;
  else parent[a] = b;
}

// Read-only root lookup, safe to run concurrently once no thread writes.
u32 peek_root(const std::vector<u32>& parent, u32 i) {
  while (parent[i] != i) i = parent[i];
  return i;
}

void check_options(const Volume<std::uint8_t>& mask, const FaceConnectivityOptions& o) {
  if (o.axis < 0 || o.axis > 2)
    throw InputError("face connectivity: axis " + std::to_string(o.axis) + " is not 0 (x), 1 (y) or 2 (z)");
  if (o.connectivity != 6 && o.connectivity != 18 && o.connectivity != 26)
    throw InputError("face connectivity: connectivity " + std::to_string(o.connectivity) + " is not 6, 18 or 26");
  if (mask.dims().empty()) throw InputError("face connectivity: empty volume " + to_string(mask.dims()));
  if (static_cast<std::uint64_t>(mask.size()) >= std::numeric_limits<u32>::max())
    throw InputError("face connectivity: volume " + to_string(mask.dims()) +
                     " has 2^32 voxels or more; crop or bin it first");
}

}  // namespace

FaceReach face_reachability(const Volume<std::uint8_t>& mask, const FaceConnectivityOptions& options) {
  check_options(mask, options);
  const Dims d = mask.dims();
  const index_t n[3] = {d.x, d.y, d.z};
  const index_t sy = d.x, sz = d.x * d.y;
  const std::vector<Offset>& all = neighbour_offsets(options.connectivity);
  std::vector<Offset> backward;
  for (const auto& o : all)
    if (is_backward(o)) backward.push_back(o);
  std::array<bool, 3> wraps = options.periodic;
  wraps[options.axis] = false;

  std::vector<u32> parent(static_cast<std::size_t>(d.count()));
  const std::uint8_t* m = mask.data();

  // 1. Label each z-slab on its own: unions stay inside the slab, so slabs run in parallel.
  const index_t slab_count = std::min<index_t>(d.z, 64);
  auto slab_begin = [&](index_t s) { return d.z * s / slab_count; };
  tbb::parallel_for(index_t(0), slab_count, [&](index_t s) {
    const index_t z0 = slab_begin(s), z1 = slab_begin(s + 1);
    for (index_t z = z0; z < z1; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = x + y * sy + z * sz;
          if (!m[i]) continue;
          parent[i] = static_cast<u32>(i);
          for (const auto& o : backward) {
            const index_t X = x + o[0], Y = y + o[1], Z = z + o[2];
            if (X < 0 || X >= d.x || Y < 0 || Y >= d.y || Z < z0) continue;
            const index_t j = X + Y * sy + Z * sz;
            if (m[j]) unite(parent, static_cast<u32>(i), static_cast<u32>(j));
          }
        }
  });

  // 2. Join the slabs across their boundary planes (the later voxel looks back one plane).
  for (index_t s = 1; s < slab_count; ++s) {
    const index_t z = slab_begin(s);
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + y * sy + z * sz;
        if (!m[i]) continue;
        for (const auto& o : backward) {
          if (o[2] != -1) continue;
          const index_t X = x + o[0], Y = y + o[1];
          if (X < 0 || X >= d.x || Y < 0 || Y >= d.y) continue;
          const index_t j = X + Y * sy + (z - 1) * sz;
          if (m[j]) unite(parent, static_cast<u32>(i), static_cast<u32>(j));
        }
      }
  }

  // 3. Periodic sides: every wrapped pair has one voxel at coordinate 0 of the wrapping axis,
  //    which sees the other at offset -1 along it.
  for (int a = 0; a < 3; ++a) {
    if (!wraps[a]) continue;
    const int b = (a + 1) % 3, c = (a + 2) % 3;
    for (index_t v = 0; v < n[c]; ++v)
      for (index_t u = 0; u < n[b]; ++u) {
        index_t p[3];
        p[a] = 0, p[b] = u, p[c] = v;
        const index_t i = p[0] + p[1] * sy + p[2] * sz;
        if (!m[i]) continue;
        for (const auto& o : all) {
          if (o[a] != -1) continue;
          index_t q[3];
          bool inside = true;
          for (int k = 0; k < 3; ++k) {
            q[k] = p[k] + o[k];
            if (q[k] < 0 || q[k] >= n[k]) {
              if (!wraps[k]) inside = false;
              q[k] = (q[k] + n[k]) % n[k];
            }
          }
          if (!inside) continue;
          const index_t j = q[0] + q[1] * sy + q[2] * sz;
          if (m[j]) unite(parent, static_cast<u32>(i), static_cast<u32>(j));
        }
      }
  }

  // 4. Components touching each face of the transport axis.
  const int a = options.axis, b = (a + 1) % 3, c = (a + 2) % 3;
  auto face_roots = [&](index_t coord) {
    std::vector<u32> roots;
    for (index_t v = 0; v < n[c]; ++v)
      for (index_t u = 0; u < n[b]; ++u) {
        index_t p[3];
        p[a] = coord, p[b] = u, p[c] = v;
        const index_t i = p[0] + p[1] * sy + p[2] * sz;
        if (m[i]) roots.push_back(find_root(parent, static_cast<u32>(i)));
      }
    std::sort(roots.begin(), roots.end());
    roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
    return roots;
  };
  const std::vector<u32> low_roots = face_roots(0);
  const std::vector<u32> high_roots = face_roots(n[a] - 1);

  // 5. Per-voxel flags (read-only root lookups, so the pass is parallel) and counts.
  FaceReach out;
  out.flags = mask.like<std::uint8_t>(d);
  std::uint8_t* f = out.flags.data();
  struct Counts {
    index_t phase = 0, low = 0, high = 0, both = 0;
    void add(const Counts& o) { phase += o.phase, low += o.low, high += o.high, both += o.both; }
  };
  const Counts total = tbb::parallel_reduce(
      tbb::blocked_range<index_t>(0, d.count(), 1 << 16), Counts{},
      [&](const tbb::blocked_range<index_t>& r, Counts acc) {
        u32 last_root = std::numeric_limits<u32>::max();
        std::uint8_t last_bits = 0;
        for (index_t i = r.begin(); i < r.end(); ++i) {
          if (!m[i]) {
            f[i] = 0;
            continue;
          }
          const u32 root = peek_root(parent, static_cast<u32>(i));
          if (root != last_root) {
            last_root = root;
            last_bits = kInPhase;
            if (std::binary_search(low_roots.begin(), low_roots.end(), root)) last_bits |= kFromLow;
            if (std::binary_search(high_roots.begin(), high_roots.end(), root)) last_bits |= kFromHigh;
          }
          f[i] = last_bits;
          ++acc.phase;
          if (last_bits & kFromLow) ++acc.low;
          if (last_bits & kFromHigh) ++acc.high;
          if (FaceReach::is_percolating(last_bits)) ++acc.both;
        }
        return acc;
      },
      [](Counts x, const Counts& y) {
        x.add(y);
        return x;
      });
  out.phase_voxels = total.phase;
  out.from_low = total.low;
  out.from_high = total.high;
  out.percolating = total.both;
  out.dead_end = total.low + total.high - 2 * total.both;
  out.isolated = total.phase - (total.low + total.high - total.both);
  return out;
}

FaceReach face_reachability(const Volume<std::uint8_t>& label_volume, const std::vector<int>& labels,
                            const FaceConnectivityOptions& options) {
  return face_reachability(phase_mask(label_volume, labels), options);
}

}  // namespace vp
