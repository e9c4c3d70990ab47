#include "filters/segment/particles.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <queue>
#include <sstream>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/progress.h"
#include "metrics/connectivity.h"
#include "metrics/distance_transform.h"

namespace vp {

namespace {

constexpr float kLowest = -std::numeric_limits<float>::infinity();

// A voxel's in-volume neighbours as linear index steps, in neighbour_offsets' order (the
// watershed breaks ties in that order). Interior voxels take every step without bounds checks.
struct Neighbours {
  Dims d;
  std::vector<Offset> offs;
  std::vector<index_t> step;

  Neighbours(const Dims& dims, const std::vector<Offset>& offsets) : d(dims), offs(offsets) {
    for (const Offset& o : offs) step.push_back(o.dx + d.x * (o.dy + d.y * o.dz));
  }
  // Calls f(j) for each in-volume neighbour j of voxel i = (x, y, z).
  template <class F>
  void each(index_t i, index_t x, index_t y, index_t z, F&& f) const {
    if (x > 0 && y > 0 && z > 0 && x + 1 < d.x && y + 1 < d.y && z + 1 < d.z) {
      for (const index_t s : step) f(i + s);
      return;
    }
    for (std::size_t k = 0; k < offs.size(); ++k) {
      const Offset& o = offs[k];
      const index_t nx = x + o.dx, ny = y + o.dy, nz = z + o.dz;
      if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
      f(i + step[k]);
    }
  }
  template <class F>
  void each(index_t i, F&& f) const {
    const index_t r = i / d.x;
    each(i, i - r * d.x, r % d.y, r / d.y, f);
  }
  // The same over the neighbours in planes z0 <= z < z1 only (a slab of the volume).
  template <class F>
  void each_within(index_t i, index_t x, index_t y, index_t z, index_t z0, index_t z1, F&& f) const {
    if (x > 0 && y > 0 && z > z0 && x + 1 < d.x && y + 1 < d.y && z + 1 < z1) {
      for (const index_t s : step) f(i + s);
      return;
    }
    for (std::size_t k = 0; k < offs.size(); ++k) {
      const Offset& o = offs[k];
      const index_t nx = x + o.dx, ny = y + o.dy, nz = z + o.dz;
      if (nx < 0 || ny < 0 || nz < z0 || nx >= d.x || ny >= d.y || nz >= z1) continue;
      f(i + step[k]);
    }
  }
  template <class F>
  void each_within(index_t i, index_t z0, index_t z1, F&& f) const {
    const index_t r = i / d.x;
    each_within(i, i - r * d.x, r % d.y, r / d.y, z0, z1, f);
  }
  // The in-volume neighbours outside planes z0 <= z < z1 of voxel i (which lies inside them).
  template <class F>
  void each_outside(index_t i, index_t z0, index_t z1, F&& f) const {
    const index_t r = i / d.x, x = i - r * d.x, y = r % d.y, z = r / d.y;
    for (std::size_t k = 0; k < offs.size(); ++k) {
      const Offset& o = offs[k];
      const index_t nx = x + o.dx, ny = y + o.dy, nz = z + o.dz;
      if (nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z || (nz >= z0 && nz < z1)) continue;
      f(i + step[k]);
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

// Reconstruction by dilation of marker(i) under mask(i) (Vincent's hybrid algorithm: a raster
// and an anti-raster sweep, then FIFO propagation). Voxels where mask is -inf take no part.
// The result is unique (the least J >= min(marker, mask) with J(q) >= min(J(p), mask(q)) for
// every pair of neighbours), so it depends neither on the order of the sweeps nor on how the
// volume is cut: each slab of kSlab z-planes runs the hybrid algorithm on its own, in parallel,
// as if the planes beyond it were absent; then one FIFO propagation, seeded with the slabs' edge
// voxels that can raise a neighbour across the cut, finishes the whole volume.
// A volume over a buffer of its own that is not zero-filled, as Volume's vector is: for scratch
// volumes whose every voxel is written in parallel before it is read, so that their pages are
// first touched by every thread rather than by one memset.
template <class T>
struct Scratch {
  std::unique_ptr<T[]> voxels;
  Volume<T> volume;
  Scratch(const Dims& d, const Vec3& spacing, const Vec3& origin)
      : voxels(new T[static_cast<std::size_t>(d.count())]), volume(Volume<T>::borrowing(voxels.get(), d, spacing)) {
    volume.origin_um = origin;
  }
  void release() {
    volume = Volume<T>();
    voxels.reset();
  }
};

// J = the reconstruction; J's dims are the volume's, its voxels need no initial value.
template <class Marker, class Mask>
void reconstruct(Volume<float>& J, Marker&& marker, Mask&& mask, int connectivity) {
  constexpr index_t kSlab = 16;
  const Dims d = J.dims();
  const auto& offs = neighbour_offsets(connectivity);
  const Neighbours all(d, offs), before(d, earlier(offs)), after(d, later(offs));
  // Can p raise neighbour q? (J(q) below both J(p) and its own mask.)
  auto raises = [&](float v, index_t q) { return J[q] < v && J[q] < mask(q); };
  auto propagate = [&](std::deque<index_t>& fifo, index_t z0, index_t z1) {
    while (!fifo.empty()) {
      const index_t p = fifo.front();
      fifo.pop_front();
      const float v = J[p];
      all.each_within(p, z0, z1, [&](index_t q) {
        const float limit = mask(q);
        if (J[q] < v && limit != J[q]) {
          J[q] = std::min(v, limit);
          fifo.push_back(q);
        }
      });
    }
  };
  const index_t plane = d.x * d.y, slabs = (d.z + kSlab - 1) / kSlab;
  tbb::parallel_for(index_t{0}, slabs, [&](index_t s) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    const index_t z0 = s * kSlab, z1 = std::min(d.z, z0 + kSlab);
    for (index_t i = z0 * plane; i < z1 * plane; ++i) J[i] = std::min(marker(i), mask(i));
    index_t i = z0 * plane;
    for (index_t z = z0; z < z1; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x, ++i) {
          const float limit = mask(i);
          if (limit == kLowest) continue;
          float m = J[i];
          before.each_within(i, x, y, z, z0, z1, [&](index_t j) { m = std::max(m, J[j]); });
          J[i] = std::min(m, limit);
        }
    std::deque<index_t> fifo;
    i = z1 * plane - 1;
    for (index_t z = z1 - 1; z >= z0; --z)
      for (index_t y = d.y - 1; y >= 0; --y)
        for (index_t x = d.x - 1; x >= 0; --x, --i) {
          const float limit = mask(i);
          if (limit == kLowest) continue;
          float m = J[i];
          after.each_within(i, x, y, z, z0, z1, [&](index_t j) { m = std::max(m, J[j]); });
          const float v = J[i] = std::min(m, limit);
          bool push = false;
          after.each_within(i, x, y, z, z0, z1, [&](index_t j) { push = push || raises(v, j); });
          if (push) fifo.push_back(i);
        }
    propagate(fifo, z0, z1);
  });
  // Across the cuts: the voxels of each slab's first and last plane that can raise a neighbour
  // in the next or previous slab.
  std::deque<index_t> fifo;
  for (index_t s = 0; s < slabs; ++s) {
    const index_t z0 = s * kSlab, z1 = std::min(d.z, z0 + kSlab);
    for (index_t z = z0; z < z1; z += std::max<index_t>(1, z1 - 1 - z0))  // z0, then z1 - 1
      for (index_t i = z * plane; i < (z + 1) * plane; ++i) {
        if (mask(i) == kLowest) continue;
        const float v = J[i];
        bool push = false;
        all.each_outside(i, z0, z1, [&](index_t q) { push = push || raises(v, q); });
        if (push) fifo.push_back(i);
      }
  }
  propagate(fifo, 0, d.z);
}

// ids: 0 unvisited, kVisited a plateau that is not a maximum (cleared by the caller), else its id;
// kHigher a voxel with a higher neighbour (no plateau holding it is a maximum; cleared too).
constexpr std::uint32_t kVisited = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint32_t kHigher = kVisited - 1;

// Marks kHigher every voxel (where f > 0) with a neighbour of higher R, plane by plane in
// parallel: only the rest can belong to a regional maximum, so only they are flooded below.
void mark_higher(const Volume<float>& f, const Volume<float>& R, const Neighbours& nb, Volume<std::uint32_t>& ids) {
  const Dims d = f.dims();
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    index_t i = z * d.x * d.y;
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x, ++i) {
        if (!(f[i] > 0)) continue;
        const float level = R[i];
        bool higher = false;
        nb.each(i, x, y, z, [&](index_t j) { higher = higher || (f[j] > 0 && R[j] > level); });
        if (higher) ids[i] = kHigher;
      }
  });
}

// Labels the plateaus of equal R (where f > 0) that no neighbour exceeds with ids 1..n in raster
// order of their first voxel; returns n. mark_higher has marked every voxel with a higher
// neighbour, so a plateau is a maximum exactly when none of its voxels is marked, and the scan
// starts floods only from unmarked voxels (a maximum's first voxel is one, so the ids are those
// of a scan over every voxel). A flood runs over the unmarked voxels of the plateau and fails
// on reaching a marked one: another unmarked part of the same plateau, cut off by marked voxels,
// touches a marked voxel too and fails on its own. Each maximum is flooded once more to write its
// id (no list of its voxels: a plateau can hold a tenth of the image). The stack holds voxel
// indices of type I (32-bit when they fit).
template <class I>
std::uint32_t label_regional_maxima(const Volume<float>& f, const Volume<float>& R, const Neighbours& nb,
                                    Volume<std::uint32_t>& ids) {
  std::uint32_t n = 0;
  std::vector<I> stack;
  for (index_t start = 0; start < f.size(); ++start) {
    if (!(f[start] > 0) || ids[start]) continue;
    stack.assign(1, static_cast<I>(start));
    ids[start] = kVisited;
    bool maximum = true;
    const float level = R[start];
    while (!stack.empty()) {
      const index_t i = static_cast<index_t>(stack.back());
      stack.pop_back();
      nb.each(i, [&](index_t j) {
        if (!(f[j] > 0) || R[j] != level) return;
        if (ids[j] == kHigher) maximum = false;
        else if (!ids[j]) {
          ids[j] = kVisited;
          stack.push_back(static_cast<I>(j));
        }
      });
    }
    if (!maximum) continue;
    ++n;
    stack.assign(1, static_cast<I>(start));
    ids[start] = n;
    while (!stack.empty()) {
      const index_t i = static_cast<index_t>(stack.back());
      stack.pop_back();
      nb.each(i, [&](index_t j) {
        if (f[j] > 0 && R[j] == level && ids[j] == kVisited) {
          ids[j] = n;
          stack.push_back(static_cast<I>(j));
        }
      });
    }
  }
  return n;
}

// Marks whose watershed queue holds voxel indices of type I (32-bit when they fit: 4 B/voxel).
// Flooding order: highest level first, then first come first served. Every voxel is queued
// once, labelled by the neighbour that queues it first; that is exactly the label it would get
// from a queue that holds every (level, arrival, voxel, label) offer and skips labelled voxels,
// because all offers of a voxel share its level, so its earliest offer is served first.
// The distinct levels of the foreground (f > 0), ascending (distance maps have few: sums of squares).
std::vector<float> foreground_levels(const Volume<float>& f) {
  std::vector<std::vector<float>> per_plane(static_cast<std::size_t>(f.dims().z));
  const index_t plane = f.dims().x * f.dims().y;
  tbb::parallel_for(index_t{0}, f.dims().z, [&](index_t z) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    auto& v = per_plane[static_cast<std::size_t>(z)];
    // A small table of the last value seen per hash slot keeps most repeats out of the sort.
    std::array<std::uint32_t, 1024> seen{};  // float bits; 0 (the level 0.0f) is never a foreground level
    for (index_t i = z * plane; i < (z + 1) * plane; ++i) {
      if (!(f[i] > 0)) continue;
      const auto bits = std::bit_cast<std::uint32_t>(f[i]);
      std::uint32_t& slot = seen[(bits * 2654435761u) >> 22];
      if (slot == bits) continue;
      slot = bits;
      v.push_back(f[i]);
    }
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  });
  std::vector<float> levels;
  for (auto& v : per_plane) {
    levels.insert(levels.end(), v.begin(), v.end());
    std::vector<float>().swap(v);
    std::sort(levels.begin(), levels.end());
    levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
  }
  return levels;
}

template <class I>
void flood(const Volume<float>& f, Volume<std::uint32_t>& out, const Neighbours& nb) {
  const std::vector<float> levels = foreground_levels(f);
  if (levels.empty()) return;
  std::vector<std::vector<I>> bucket(levels.size());
  std::vector<std::size_t> head(levels.size(), 0);
  std::ptrdiff_t top = -1;
  // While the markers seed the queue, queued voxels carry kQueued so they do not seed too
  // (marker ids stay far below 2^31: there are fewer markers than voxels).
  constexpr std::uint32_t kQueued = 0x80000000u;
  auto offer = [&](index_t j, std::uint32_t label) {
    if (out[j] || !(f[j] > 0)) return;
    out[j] = label;
    const auto b = std::lower_bound(levels.begin(), levels.end(), f[j]) - levels.begin();
    bucket[static_cast<std::size_t>(b)].push_back(static_cast<I>(j));
    top = std::max(top, b);
  };
  // The markers are labelled already; they queue their neighbours in raster order.
  for (index_t i = 0; i < f.size(); ++i)
    if (out[i] && !(out[i] & kQueued)) {
      const std::uint32_t label = out[i] | kQueued;
      nb.each(i, [&](index_t j) { offer(j, label); });
    }
  for (const auto& q : bucket)
    for (const I j : q) out[static_cast<index_t>(j)] &= ~kQueued;
  constexpr std::size_t kAhead = 8;
  const index_t dx = f.dims().x, dxy = dx * f.dims().y;
  const index_t row_steps[9] = {-dxy - dx, -dxy, -dxy + dx, -dx, 0, dx, dxy - dx, dxy, dxy + dx};
  while (top >= 0) {
    auto& q = bucket[static_cast<std::size_t>(top)];
    std::size_t& h = head[static_cast<std::size_t>(top)];
    if (h == q.size()) {
      std::vector<I>().swap(q);
      h = 0;
      --top;
      continue;
    }
    // The queue jumps about the volume and each step reads its neighbours' f and label: fetch
    // the rows of a voxel a few places ahead while this one is served (the flood is bound by
    // memory latency, not arithmetic).
    if (h + kAhead < q.size()) {
      const index_t a = static_cast<index_t>(q[h + kAhead]);
      for (const index_t r : row_steps) {
        const index_t k = std::clamp<index_t>(a + r, 0, f.size() - 1);
        __builtin_prefetch(&f[k]);
        __builtin_prefetch(&out[k]);
      }
    }
    const index_t p = static_cast<index_t>(q[h++]);
    const std::uint32_t label = out[p];
    nb.each(p, [&](index_t j) { offer(j, label); });
  }
}

void flood_any(const Volume<float>& f, Volume<std::uint32_t>& out, const Neighbours& nb) {
  if (f.size() <= static_cast<index_t>(std::numeric_limits<std::uint32_t>::max())) flood<std::uint32_t>(f, out, nb);
  else flood<index_t>(f, out, nb);
}

// flood() on one word per voxel, when the level ranks and the labels fit in 31 bits beside each
// other: word = (rank of f among the levels + 1) << label_bits | label, 0 outside the phase (the
// top bit marks the voxels the markers queue, as kQueued does in flood()). The same queue in the
// same order, so the same labels bit for bit, but one read per neighbour where flood() takes two,
// and no search for a voxel's level. `words` holds the markers on entry, the labels on return.
template <class I>
void flood_packed(Volume<std::uint32_t>& words, const Neighbours& nb, int label_bits, std::size_t level_count) {
  const std::uint32_t label_mask = (std::uint32_t{1} << label_bits) - 1;
  std::uint32_t* w = words.data();
  // Every unlabelled voxel is queued once at most, in its level's bucket: the buckets lie side by
  // side in one array, each sized by its count (no growth, no copies, no zero fill).
  tbb::enumerable_thread_specific<std::vector<std::size_t>> counts(std::vector<std::size_t>(level_count, 0));
  tbb::parallel_for(tbb::blocked_range<index_t>(0, words.size(), 1 << 16), [&](const tbb::blocked_range<index_t>& r) {
    auto& c = counts.local();
    for (index_t i = r.begin(); i != r.end(); ++i)
      if (w[i] && !(w[i] & label_mask)) ++c[(w[i] >> label_bits) - 1];
  });
  std::vector<std::size_t> head(level_count + 1, 0), tail(level_count, 0);
  for (const auto& c : counts)
    for (std::size_t b = 0; b < level_count; ++b) head[b + 1] += c[b];
  for (std::size_t b = 0; b < level_count; ++b) tail[b] = head[b + 1] += head[b];
  for (std::size_t b = level_count; b > 0; --b) tail[b - 1] = head[b - 1];
  const std::unique_ptr<I[]> slot(new I[head[level_count]]);
  std::ptrdiff_t top = -1;
  constexpr std::uint32_t kQueued = 0x80000000u;
  auto offer = [&](index_t j, std::uint32_t label) {
    const std::uint32_t v = w[j];
    if (!v || (v & label_mask)) return;  // background, or labelled already
    w[j] = v | label;
    const auto b = static_cast<std::ptrdiff_t>(v >> label_bits) - 1;
    slot[tail[static_cast<std::size_t>(b)]++] = static_cast<I>(j);
    top = std::max(top, b);
  };
  for (index_t i = 0; i < words.size(); ++i)
    if ((w[i] & label_mask) && !(w[i] & kQueued)) {
      const std::uint32_t label = (w[i] & label_mask) | kQueued;
      nb.each(i, [&](index_t j) { offer(j, label); });
    }
  for (std::size_t b = 0; b < level_count; ++b)
    for (std::size_t k = head[b]; k < tail[b]; ++k) w[static_cast<index_t>(slot[k])] &= ~kQueued;
  constexpr std::size_t kAhead = 8;
  const index_t dx = words.dims().x, dxy = dx * words.dims().y;
  const index_t row_steps[9] = {-dxy - dx, -dxy, -dxy + dx, -dx, 0, dx, dxy - dx, dxy, dxy + dx};
  while (top >= 0) {
    std::size_t& h = head[static_cast<std::size_t>(top)];
    const std::size_t t = tail[static_cast<std::size_t>(top)];
    if (h == t) {
      --top;
      continue;
    }
    if (h + kAhead < t) {  // as in flood(): the queue is bound by memory latency
      const index_t a = static_cast<index_t>(slot[h + kAhead]);
      for (const index_t r : row_steps) __builtin_prefetch(&w[std::clamp<index_t>(a + r, 0, words.size() - 1)]);
    }
    const index_t p = static_cast<index_t>(slot[h++]);
    const std::uint32_t label = w[p] & label_mask;
    nb.each(p, [&](index_t j) { offer(j, label); });
  }
  tbb::parallel_for(tbb::blocked_range<index_t>(0, words.size()), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) w[i] &= label_mask;
  });
}

int bit_width(std::size_t v) {
  int bits = 0;
  for (; v; v >>= 1) ++bits;
  return bits;
}

void flood_packed_any(Volume<std::uint32_t>& words, const Neighbours& nb, int label_bits, std::size_t level_count) {
  if (words.size() <= static_cast<index_t>(std::numeric_limits<std::uint32_t>::max()))
    flood_packed<std::uint32_t>(words, nb, label_bits, level_count);
  else flood_packed<index_t>(words, nb, label_bits, level_count);
}

// How flood_packed's words hold a level rank beside a label.
struct Packing {
  int label_bits = 1;
  std::size_t level_count = 0;
};

// Packs each voxel's level rank beside its marker (ids 1..n, 0 elsewhere) for flood_packed; nothing,
// and `ids` untouched, when the two do not fit in 31 bits (flood() then).
std::optional<Packing> pack_levels(const Volume<float>& f, Volume<std::uint32_t>& ids, std::uint32_t n) {
  const std::vector<float> levels = foreground_levels(f);
  const Packing packing{std::max(1, bit_width(n)), levels.size()};
  if (packing.label_bits + bit_width(levels.size()) > 31) return std::nullopt;
  tbb::parallel_for(tbb::blocked_range<index_t>(0, f.size()), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) {
      if (!(f[i] > 0)) continue;
      const auto rank = std::lower_bound(levels.begin(), levels.end(), f[i]) - levels.begin();
      ids[i] |= static_cast<std::uint32_t>(rank + 1) << packing.label_bits;
    }
  });
  return packing;
}

}  // namespace

Volume<float> reconstruct_by_dilation(const Volume<float>& marker, const Volume<float>& mask, int connectivity) {
  if (!(marker.dims() == mask.dims())) throw InputError("reconstruction: marker and mask dims differ");
  Volume<float> J = mask.like<float>(mask.dims());
  reconstruct(
      J, [&](index_t i) { return marker[i]; }, [&](index_t i) { return mask[i]; }, connectivity);
  return J;
}

Volume<std::uint32_t> h_maxima_markers(const Volume<float>& f, double h, int connectivity, std::uint32_t* count) {
  if (!(h > 0)) throw InputError("h-maxima: h must be > 0");
  // The background takes no part: nothing propagates through it between particles.
  Scratch<float> reconstruction(f.dims(), f.spacing_um, f.origin_um);
  const Volume<float>& R = reconstruction.volume;
  reconstruct(
      reconstruction.volume, [&](index_t i) { return f[i] > 0 ? static_cast<float>(f[i] - h) : kLowest; },
      [&](index_t i) { return f[i] > 0 ? f[i] : kLowest; }, connectivity);
  const Neighbours nb(f.dims(), neighbour_offsets(connectivity));
  Volume<std::uint32_t> ids = f.like<std::uint32_t>(f.dims());
  mark_higher(f, R, nb, ids);
  const std::uint32_t n = f.size() <= static_cast<index_t>(std::numeric_limits<std::uint32_t>::max())
                              ? label_regional_maxima<std::uint32_t>(f, R, nb, ids)
                              : label_regional_maxima<index_t>(f, R, nb, ids);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, ids.size()), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i)
      if (ids[i] >= kHigher) ids[i] = 0;
  });
  if (count) *count = n;
  return ids;
}

Volume<std::uint32_t> watershed_from_markers(const Volume<float>& f, const Volume<std::uint32_t>& markers,
                                             int connectivity) {
  if (!(f.dims() == markers.dims())) throw InputError("watershed: distance map and markers dims differ");
  const Neighbours nb(f.dims(), neighbour_offsets(connectivity));
  Volume<std::uint32_t> out = markers;
  flood_any(f, out, nb);
  return out;
}

Volume<std::uint32_t> separate_particles(const Volume<std::uint8_t>& labels, std::uint8_t label,
                                         const ParticleOptions& o) {
  const Dims d = labels.dims();
  Scratch<float> dist(d, labels.spacing_um, labels.origin_um);
  {
    Scratch<std::uint8_t> mask(d, labels.spacing_um, labels.origin_um);
    tbb::parallel_for(tbb::blocked_range<index_t>(0, labels.size()), [&](const tbb::blocked_range<index_t>& r) {
      for (index_t i = r.begin(); i != r.end(); ++i) mask.volume[i] = labels[i] == label;
    });
    squared_distance_transform(mask.volume, dist.volume);  // distance_transform() into dist's buffer
  }
  tbb::parallel_for(tbb::blocked_range<index_t>(0, dist.volume.size()), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) dist.volume[i] = std::sqrt(dist.volume[i]);
  });
  std::uint32_t n = 0;
  // The markers become the particle ids in place (no second id volume: 12 B/voxel at most).
  Volume<std::uint32_t> ids = h_maxima_markers(dist.volume, o.h_um, o.connectivity, &n);
  const Neighbours nb(d, neighbour_offsets(o.connectivity));
  if (const std::optional<Packing> packing = pack_levels(dist.volume, ids, n)) {
    dist.release();  // done with: freed before the queue fills
    flood_packed_any(ids, nb, packing->label_bits, packing->level_count);
  } else {
    flood_any(dist.volume, ids, nb);
  }
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
