#include "metrics/local_thickness.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "core/progress.h"
#include "metrics/distance_transform.h"

namespace vp {
namespace {

// A kept ball as the plane scan finds it: centre (x, y) in its plane and squared radius in µm²,
// exactly as the transform stored it.
struct Ball {
  std::uint16_t x, y;
  float r2;
};

// A plane's balls of one squared radius: [begin, end) of the plane's centres, the radius, and its
// index in BallShapes (set once every plane is scanned).
struct Run {
  std::uint32_t begin, end;
  float r2;
  std::uint32_t shape;
};

// The kept balls centred in one plane, largest radius first: centres as x + 65536·y (4 bytes a
// ball; there can be nearly as many balls as phase voxels), in runs of equal radius.
struct PlaneBalls {
  std::vector<std::uint32_t> centre;
  std::vector<Run> runs;
};

// Largest k >= 0 with (k·h)² < limit2 (limit2 > 0).
index_t half_extent(double limit2, double h) {
  auto k = static_cast<index_t>(std::floor(std::sqrt(limit2) / h));
  while (k > 0 && (k * h) * (k * h) >= limit2) --k;
  while (((k + 1) * h) * ((k + 1) * h) < limit2) ++k;
  return k;
}

// The voxels a ball of squared radius r2 paints, seen from a neighbour's centre: for each of the 7
// neighbour offsets o up to sign ((|dx|, |dy|, |dz|) as the index |dx| + 2|dy| + 4|dz|), the
// largest squared distance from o to a painted voxel. The painted voxels are exactly those the
// painting loop below visits (the same half_extent row by row), and the largest distance is at a
// row's end, in the quadrant opposite o.
using FarthestPainted = std::array<double, 8>;
FarthestPainted farthest_painted(double r2, const Vec3& h) {
  FarthestPainted m{};
  for (index_t c = 0; (c * h[2]) * (c * h[2]) < r2; ++c) {
    const double rem_z = r2 - (c * h[2]) * (c * h[2]);
    for (index_t b = 0; (b * h[1]) * (b * h[1]) < rem_z; ++b) {
      const double rem_y = rem_z - (b * h[1]) * (b * h[1]);
      if (rem_y <= 0) continue;
      const index_t a = half_extent(rem_y, h[0]);
      for (int t = 1; t < 8; ++t) {
        const double ex = static_cast<double>(a + (t & 1)) * h[0], ey = static_cast<double>(b + (t >> 1 & 1)) * h[1],
                     ez = static_cast<double>(c + (t >> 2)) * h[2];
        m[t] = std::max(m[t], ex * ex + ey * ey + ez * ez);
      }
    }
  }
  return m;
}

// Smallest float x >= 0 with pred(x), for a predicate that is false below some float and true from
// it on, starting the walk at the float nearest `guess`.
template <class Pred>
float smallest_float_where(double guess, Pred pred) {
  const float inf = std::numeric_limits<float>::infinity();
  float x = static_cast<float>(std::max(guess, 0.0));
  while (!pred(x)) x = std::nextafter(x, inf);
  while (x > 0 && pred(std::nextafter(x, 0.0f))) x = std::nextafter(x, 0.0f);
  return x;
}

// When a 26-neighbour's ball paints every voxel the ball at a centre paints. A neighbour n at
// offset o covers the ball at c when r2(n) exceeds the farthest painted voxel from o (with a
// margin far above rounding), or when its ball contains c's ball up to float rounding (r(n) >=
// r(c) + |o|); a neighbour no larger never covers unless the ball is too large for that rounding
// to be judged. Every clause only grows with r2(n), so for a centre's r2 and each offset type
// (|dx| + 2|dy| + 4|dz|) the test is one float comparison, r2(n) >= least[type], with least the
// smallest float r2 that passes it: computed once per distinct r2 from the very same double
// arithmetic, so the comparison decides exactly as the clauses would.
struct CoverThresholds {
  std::array<float, 8> least{};
};

CoverThresholds cover_thresholds(float rc2, const Vec3& h) {
  const FarthestPainted far = farthest_painted(rc2, h);
  const double rc = std::sqrt(static_cast<double>(rc2));
  CoverThresholds t;
  for (int type = 1; type < 8; ++type) {
    const int dx = type & 1, dy = type >> 1 & 1, dz = type >> 2;
    const double step = std::sqrt(dx * dx * h[0] * h[0] + dy * dy * h[1] * h[1] + dz * dz * h[2] * h[2]);
    const double far_limit = far[type] * (1 + 1e-12);
    const double contain = rc + step - 1e-6 * (rc + step);
    const float beyond_far =
        smallest_float_where(far_limit, [&](float x) { return static_cast<double>(x) > far_limit; });
    const float contains =
        smallest_float_where(contain * contain, [&](float x) { return std::sqrt(static_cast<double>(x)) >= contain; });
    const float larger = rc < 1e5 * step ? std::nextafter(rc2, std::numeric_limits<float>::infinity()) : 0.0f;
    t.least[static_cast<std::size_t>(type)] = std::max(larger, std::min(beyond_far, contains));
  }
  return t;
}

// A table from float values to V, by the value's bits (+0 and -0 are one value, as they compare
// equal; NaN is not a key): open addressing with Fibonacci hashing, the top bits of bits·2³²/φ
// (squared radii on a regular grid end in many zero bits, which the low bits of a product keep).
template <class V>
class FloatTable {
 public:
  FloatTable() { reset(256); }
  V& operator[](float v) {
    if (v == 0) v = 0.0f;
    std::uint32_t key;
    std::memcpy(&key, &v, sizeof key);
    std::size_t i = slot(key);
    while (keys_[i] != key && keys_[i] != kEmpty) i = (i + 1) & (keys_.size() - 1);
    if (keys_[i] == kEmpty) {
      if (2 * (used_ + 1) > keys_.size()) {
        grow();
        return (*this)[v];
      }
      keys_[i] = key;
      values_[i] = V{};
      ++used_;
    }
    return values_[i];
  }
  std::size_t size() const { return used_; }
  // f(value, V&) for every entry, in no particular order.
  template <class F>
  void for_each(F f) {
    for (std::size_t i = 0; i < keys_.size(); ++i) {
      if (keys_[i] == kEmpty) continue;
      float v;
      std::memcpy(&v, &keys_[i], sizeof v);
      f(v, values_[i]);
    }
  }
  void clear() {
    std::fill(keys_.begin(), keys_.end(), kEmpty);
    used_ = 0;
  }

 private:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;  // a NaN's bits
  std::size_t slot(std::uint32_t key) const { return static_cast<std::size_t>((key * 0x9E3779B9u) >> shift_); }
  void reset(std::size_t capacity) {
    keys_.assign(capacity, kEmpty);
    values_.assign(capacity, V{});
    shift_ = 32;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    used_ = 0;
  }
  void grow() {
    std::vector<std::uint32_t> keys;
    std::vector<V> values;
    keys.swap(keys_);
    values.swap(values_);
    reset(keys.size() * 2);
    for (std::size_t j = 0; j < keys.size(); ++j) {
      if (keys[j] == kEmpty) continue;
      std::size_t i = slot(keys[j]);
      while (keys_[i] != kEmpty) i = (i + 1) & (keys_.size() - 1);
      keys_[i] = keys[j];
      values_[i] = values[j];
      ++used_;
    }
  }
  std::vector<std::uint32_t> keys_;
  std::vector<V> values_;
  int shift_ = 32;
  std::size_t used_ = 0;
};

// Cover thresholds per distinct squared radius (there are few), computed on first use.
class ThresholdCache {
 public:
  explicit ThresholdCache(const Vec3& h) : h_(h) {}
  const CoverThresholds& get(float r2) {
    auto& [t, known] = table_[r2];
    if (!known) {
      t = cover_thresholds(r2, h_);
      known = true;
    }
    return t;
  }

 private:
  Vec3 h_;
  FloatTable<std::pair<CoverThresholds, bool>> table_;
};

// Centres whose ball paints something no 26-neighbour's ball paints (see CoverThresholds), per
// centre plane z, largest first. A covering neighbour is at least as large and paints every voxel
// c paints, so c can go: the maximum is unchanged. Background voxels have r2 = 0, below every
// threshold, so a background neighbour never covers and needs no mask test.
std::vector<PlaneBalls> maximal_balls(const Volume<float>& r2, const Volume<std::uint8_t>& fg) {
  const Dims d = r2.dims();
  const Vec3 h = r2.spacing_um;
  const index_t sy = d.x, sz = d.x * d.y;
  int type[27];
  for (int k = 0; k < 27; ++k) type[k] = std::abs(k % 3 - 1) + 2 * std::abs(k / 3 % 3 - 1) + 4 * std::abs(k / 9 - 1);
  std::vector<PlaneBalls> per_plane(static_cast<std::size_t>(d.z));
  tbb::enumerable_thread_specific<ThresholdCache> caches(h);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& range) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    ThresholdCache& cache = caches.local();
    float last_r2 = -1;
    const CoverThresholds* t = nullptr;
    std::vector<Ball> found;  // this plane's, in scan order
    FloatTable<std::uint32_t> slots;
    std::vector<float> radii;
    for (index_t z = range.begin(); z != range.end(); ++z) {
      found.clear();
      const bool z_inside = z > 0 && z + 1 < d.z;
      for (index_t y = 0; y < d.y; ++y) {
        const bool yz_inside = z_inside && y > 0 && y + 1 < d.y;
        const std::uint8_t* mrow = &fg(0, y, z);
        const float* rrow = &r2(0, y, z);
        for (index_t x = 0; x < d.x; ++x) {
          if (!mrow[x]) continue;
          const float rc2 = rrow[x];
          if (rc2 != last_r2) {
            t = &cache.get(rc2);
            last_r2 = rc2;
          }
          const float* least = t->least.data();
          bool redundant = false;
          if (yz_inside && x > 0 && x + 1 < d.x) {
            // Faces, then edges, then corners (the likeliest to cover first), each group tested
            // without branches.
            const float* c = rrow + x;
            const float l1 = least[1], l2 = least[2], l4 = least[4];
            redundant = (c[-1] >= l1) | (c[1] >= l1) | (c[-sy] >= l2) | (c[sy] >= l2) | (c[-sz] >= l4) | (c[sz] >= l4);
            if (!redundant) {
              const float l3 = least[3], l5 = least[5], l6 = least[6];
              const float* a = c - sy;
              const float* b = c + sy;
              redundant = (a[-1] >= l3) | (a[1] >= l3) | (b[-1] >= l3) | (b[1] >= l3) | (c[-sz - 1] >= l5) |
                          (c[-sz + 1] >= l5) | (c[sz - 1] >= l5) | (c[sz + 1] >= l5) | (c[-sz - sy] >= l6) |
                          (c[-sz + sy] >= l6) | (c[sz - sy] >= l6) | (c[sz + sy] >= l6);
            }
            if (!redundant) {
              const float l7 = least[7];
              const float* a = c - sz;
              const float* b = c + sz;
              redundant = (a[-sy - 1] >= l7) | (a[-sy + 1] >= l7) | (a[sy - 1] >= l7) | (a[sy + 1] >= l7) |
                          (b[-sy - 1] >= l7) | (b[-sy + 1] >= l7) | (b[sy - 1] >= l7) | (b[sy + 1] >= l7);
            }
          } else {
            for (int k = 0; k < 27 && !redundant; ++k) {
              const index_t nx = x + k % 3 - 1, ny = y + k / 3 % 3 - 1, nz = z + k / 9 - 1;
              if (k == 13 || nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
              redundant = r2(nx, ny, nz) >= least[type[k]];
            }
          }
          if (!redundant) found.push_back({static_cast<std::uint16_t>(x), static_cast<std::uint16_t>(y), rc2});
        }
      }
      // Largest first (in scan order among equal radii), so that a plane's balls reaching a
      // distance are a prefix: a counting sort over the plane's few distinct radii.
      slots.clear();
      for (const Ball& b : found) ++slots[b.r2];
      radii.clear();
      slots.for_each([&](float v, std::uint32_t) { radii.push_back(v); });
      std::sort(radii.begin(), radii.end(), std::greater<>());
      auto& out = per_plane[static_cast<std::size_t>(z)];
      out.runs.reserve(radii.size());
      std::uint32_t start = 0;
      for (float v : radii) {
        std::uint32_t& slot = slots[v];  // the count, becoming the radius's first slot
        out.runs.push_back({start, start + slot, v, 0});
        slot = start;
        start = out.runs.back().end;
      }
      out.centre.resize(found.size());
      for (const Ball& b : found) out.centre[slots[b.r2]++] = b.x | static_cast<std::uint32_t>(b.y) << 16;
    }
  });
  return per_plane;
}

// The voxels of a plane painted so far, one bit each (a row is ceil(width/64) words; 256² voxels
// take 8 KiB), so that painting the balls largest first writes each voxel once: the first ball to
// reach a voxel is the largest that contains it. A ball's row [x0, x1] costs a word or two,
// however much of it is painted already.
class PaintedBits {
 public:
  explicit PaintedBits(index_t width) : words_((width + 63) / 64) {}
  void reset(index_t rows) { bits_.assign(static_cast<std::size_t>(words_ * rows), 0); }
  // f(x) for every voxel of [x0, x1] in the row not painted yet, which becomes painted.
  template <class F>
  void paint(index_t row, index_t x0, index_t x1, F f) {
    std::uint64_t* r = bits_.data() + row * words_;
    for (index_t w = x0 >> 6, last = x1 >> 6; w <= last; ++w) {
      std::uint64_t span = ~std::uint64_t{0};
      if (w == x0 >> 6) span &= ~std::uint64_t{0} << (x0 & 63);
      if (w == last) span &= ~std::uint64_t{0} >> (63 - (x1 & 63));
      std::uint64_t todo = span & ~r[w];
      r[w] |= todo;
      for (; todo; todo &= todo - 1) f(w * 64 + std::countr_zero(todo));
    }
  }

 private:
  index_t words_;
  std::vector<std::uint64_t> bits_;
};

// The distinct squared radii of the kept balls, largest first, with what painting needs of each:
// the diameter it paints and its reach in planes (largest s with (s·h_z)² < r², the planes
// |z - c| <= reach being those its ball meets).
struct BallShapes {
  std::vector<float> r2, diameter;
  std::vector<index_t> reach;
  BallShapes(const std::vector<PlaneBalls>& balls, const Vec3& h) {
    for (const auto& plane : balls)
      for (const Run& run : plane.runs) r2.push_back(run.r2);
    std::sort(r2.begin(), r2.end(), std::greater<>());
    r2.erase(std::unique(r2.begin(), r2.end()), r2.end());
    for (float v : r2) {
      diameter.push_back(static_cast<float>(2.0 * std::sqrt(static_cast<double>(v))));
      reach.push_back(half_extent(v, h[2]));
    }
  }
  std::uint32_t index_of(float v) const {
    return static_cast<std::uint32_t>(std::lower_bound(r2.begin(), r2.end(), v, std::greater<>()) - r2.begin());
  }
};

// Every run's index in BallShapes.
void index_runs(std::vector<PlaneBalls>& balls, const BallShapes& shapes) {
  tbb::parallel_for(std::size_t{0}, balls.size(), [&](std::size_t c) {
    for (Run& run : balls[c].runs) run.shape = shapes.index_of(run.r2);
  });
}

}  // namespace

Volume<float> local_thickness(const Volume<std::uint8_t>& fg, const LocalThicknessOptions& options) {
  Volume<float> lt;
  local_thickness(fg, lt, options);
  return lt;
}

void local_thickness(const Volume<std::uint8_t>& fg, Volume<float>& lt, const LocalThicknessOptions& options) {
  const Dims d = fg.dims();
  const Vec3 h = fg.spacing_um;
  if (d.x > 65535 || d.y > 65535 || d.z > 65535)
    throw InputError("local_thickness: volume " + to_string(d) + " has more than 65535 voxels along an axis");
  if (fg.empty()) {
    lt = fg.like<float>(d, 0.0f);
    return;
  }
  // The map holds the squared distances until the balls are found, then is painted over (no
  // second volume to map and fault in).
  squared_distance_to_boundary(fg, lt, {options.outside_is_background});
  // No background anywhere: the phase has no finite thickness. The distance is then +inf on
  // every voxel, and finite on every voxel as soon as one voxel is background, so the first
  // voxel tells.
  if (fg[0] && std::isinf(lt[0])) {
    for (index_t i = 0; i < fg.size(); ++i) lt[i] = fg[i] ? std::numeric_limits<float>::infinity() : 0.0f;
    return;
  }
  std::vector<PlaneBalls> balls = maximal_balls(lt, fg);
  const BallShapes shapes(balls, h);
  if (shapes.r2.empty()) return;  // no foreground: the distances are 0 everywhere
  index_runs(balls, shapes);
  const index_t reach_max = shapes.reach.front();

  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& range) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    PaintedBits painted(d.x);
    // The runs reaching the plane, largest radius first, by merging the nearby planes' run lists
    // (each sorted largest first, so the runs of plane c reaching plane z are a prefix of its
    // list): a heap of one cursor per plane. Balls of equal r² paint the same value, so the order
    // among them does not change the result.
    struct Cursor {
      std::uint32_t shape, c, i;
      bool operator<(const Cursor& o) const {
        return shape > o.shape || (shape == o.shape && (c > o.c || (c == o.c && i > o.i)));
      }
    };
    std::vector<Cursor> heap;
    std::vector<index_t> half_width;  // per row offset j of the run's cross-section in this plane
    for (index_t z = range.begin(); z != range.end(); ++z) {
      auto reaches = [&](index_t c, std::size_t i) {
        const auto& plane = balls[static_cast<std::size_t>(c)].runs;
        return i < plane.size() && std::abs(z - c) <= shapes.reach[plane[i].shape];
      };
      heap.clear();
      for (index_t c = std::max<index_t>(0, z - reach_max); c < std::min<index_t>(d.z, z + reach_max + 1); ++c)
        if (reaches(c, 0))
          heap.push_back({balls[static_cast<std::size_t>(c)].runs[0].shape, static_cast<std::uint32_t>(c), 0});
      std::make_heap(heap.begin(), heap.end());
      painted.reset(d.y);
      while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end());
        Cursor& cur = heap.back();
        const Run run = balls[cur.c].runs[cur.i];
        const index_t c = cur.c;
        if (reaches(c, ++cur.i)) {
          cur.shape = balls[cur.c].runs[cur.i].shape;
          std::push_heap(heap.begin(), heap.end());
        } else {
          heap.pop_back();
        }
        // The cross-section of every ball of the run in this plane: rows j = 0..ky with their
        // half widths, row by row outward (a row's half width is the previous one's or less).
        const double rr = shapes.r2[run.shape];
        const double dz = static_cast<double>(z - c) * h[2];
        const double rem_z = rr - dz * dz;
        const float diameter = shapes.diameter[run.shape];
        const index_t ky = half_extent(rem_z, h[1]);
        half_width.resize(static_cast<std::size_t>(ky + 1));
        index_t kx = half_extent(rem_z, h[0]);
        for (index_t j = 0; j <= ky; ++j) {
          const double dy = static_cast<double>(j) * h[1];
          const double rem_y = rem_z - dy * dy;                       // > 0: j <= ky
          while (kx > 0 && (kx * h[0]) * (kx * h[0]) >= rem_y) --kx;  // = half_extent(rem_y, h[0])
          half_width[static_cast<std::size_t>(j)] = kx;
        }
        const auto& centre = balls[static_cast<std::size_t>(c)].centre;
        for (std::uint32_t b = run.begin; b != run.end; ++b) {
          const index_t bx = centre[b] & 0xFFFF, by = centre[b] >> 16;
          auto paint_row = [&](index_t y, index_t half) {
            if (y < 0 || y >= d.y) return;
            float* row = &lt(0, y, z);
            painted.paint(y, std::max<index_t>(0, bx - half), std::min<index_t>(d.x - 1, bx + half),
                          [&](index_t x) { row[x] = diameter; });
          };
          paint_row(by, half_width[0]);
          for (index_t j = 1; j <= ky; ++j) {
            paint_row(by + j, half_width[static_cast<std::size_t>(j)]);
            paint_row(by - j, half_width[static_cast<std::size_t>(j)]);
          }
        }
      }
    }
  });
}

Distribution thickness_distribution(const Volume<float>& thickness, const Volume<std::uint8_t>& fg) {
  // Distinct values with their counts, plane by plane in parallel (a table keyed by the value's
  // bits: a phase has few distinct thicknesses, so no sort of every value), then merged in plane
  // order.
  const Dims d = fg.dims();
  std::vector<std::vector<ValueCount>> per_plane(static_cast<std::size_t>(d.z));
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    FloatTable<std::int64_t> counts;
    for (index_t y = 0; y < d.y; ++y) {
      const std::uint8_t* mrow = &fg(0, y, z);
      const float* trow = &thickness(0, y, z);
      for (index_t x = 0; x < d.x;) {
        if (!mrow[x]) {
          ++x;
          continue;
        }
        // A run of equal values counts once.
        const float v = trow[x];
        index_t end = x + 1;
        while (end < d.x && mrow[end] && trow[end] == v) ++end;
        counts[v] += end - x;
        x = end;
      }
    }
    auto& out = per_plane[static_cast<std::size_t>(z)];
    out.reserve(counts.size());
    counts.for_each([&](float v, std::int64_t n) { out.push_back({v, n}); });
  });
  std::map<double, std::int64_t> counts;
  for (auto& plane : per_plane) {
    for (const ValueCount& r : plane) counts[r.value] += r.count;
    std::vector<ValueCount>().swap(plane);
  }
  std::vector<ValueCount> ascending;
  for (const auto& [value, count] : counts) ascending.push_back({value, count});
  return summarize_counts(ascending);
}

}  // namespace vp
