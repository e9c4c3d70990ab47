#include "metrics/local_thickness.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "core/progress.h"
#include "metrics/distance_transform.h"

namespace vp {
namespace {

// A candidate ball: centre (x, y, z) as 16-bit indices and squared radius in µm², exactly as the
// transform stored it (12 bytes; there can be nearly as many balls as phase voxels).
struct Ball {
  std::uint16_t x, y, z;
  float r2;
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

// The 26 neighbours (index (dx+1) + 3(dy+1) + 9(dz+1)), faces first: the likeliest to cover.
constexpr int kFacesFirst[26] = {4,  10, 12, 14, 16, 22, 1, 3, 5, 7,  9,  11, 15,
                                 17, 19, 21, 23, 25, 0,  2, 6, 8, 18, 20, 24, 26};

// Centres whose ball paints something no 26-neighbour's ball paints, per centre plane z, largest
// first. A neighbour n at offset o covers the ball at c when r2(n) exceeds the farthest painted
// voxel from o (with a margin far above rounding), or, as before, when its ball contains c's ball
// up to float rounding (r(n) >= r(c) + |o|). Either way n is at least as large, paints every voxel
// c paints, and c can go: the maximum is unchanged. Background voxels have r2 = 0 and foreground
// voxels r2 >= (h/2)² > 0, so a background neighbour never covers and needs no mask test.
std::vector<std::vector<Ball>> maximal_balls(const Volume<float>& r2, const Volume<std::uint8_t>& fg) {
  const Dims d = r2.dims();
  const Vec3 h = r2.spacing_um;
  double step[27], near_limit[27];
  index_t offset[27];
  int type[27];
  for (int k = 0; k < 27; ++k) {
    const int dx = k % 3 - 1, dy = k / 3 % 3 - 1, dz = k / 9 - 1;
    step[k] = std::sqrt(dx * dx * h[0] * h[0] + dy * dy * h[1] * h[1] + dz * dz * h[2] * h[2]);
    near_limit[k] = 1e5 * step[k];
    offset[k] = dx + d.x * (dy + d.y * dz);
    type[k] = std::abs(dx) + 2 * std::abs(dy) + 4 * std::abs(dz);
  }
  // Below this squared radius rc < near_limit[k] for every neighbour k, so covered_by() is false
  // whenever rn2 <= rc2 (a tenth of the smallest near_limit, far from any rounding).
  const float small_r2 = static_cast<float>(std::pow(1e4 * std::min({h[0], h[1], h[2]}), 2));
  index_t faces_first_offset[26];
  for (int j = 0; j < 26; ++j) faces_first_offset[j] = offset[kFacesFirst[j]];
  // Does neighbour k (squared radius rn2) paint every voxel the ball at the centre paints?
  auto covered_by = [&](float rc2, double rc, const FarthestPainted& far, float rn2, int k) {
    // A ball no larger cannot contain this one.
    if (rn2 <= rc2 && rc < near_limit[k]) return false;
    if (static_cast<double>(rn2) > far[type[k]] * (1 + 1e-12)) return true;
    // Contained (up to float rounding of the stored squares): the neighbour covers it. Clearly
    // short of the bound in squares (a margin far above rounding), the square root is not needed.
    const double need = rc + step[k] - 1e-6 * (rc + step[k]);
    if (static_cast<double>(rn2) < need * need * (1 - 1e-9)) return false;
    return std::sqrt(static_cast<double>(rn2)) >= need;
  };
  std::vector<std::vector<Ball>> per_plane(static_cast<std::size_t>(d.z));
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& range) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    // The farthest painted voxels per distinct squared radius (there are few), cached.
    std::unordered_map<float, FarthestPainted> cache;
    constexpr int kSlotBits = 10;
    struct Slot {
      float r2 = -1;
      const FarthestPainted* far = nullptr;
    };
    std::vector<Slot> slots(std::size_t{1} << kSlotBits);
    float last_r2 = -1;
    const FarthestPainted* far = nullptr;
    auto farthest = [&](float rc2) -> const FarthestPainted& {
      if (rc2 != last_r2) {
        // A direct-mapped slot per hash of the float's bits in front of the map (std::hash of a
        // float hashes its bytes, slow for one lookup per voxel); map nodes never move.
        std::uint32_t bits;
        std::memcpy(&bits, &rc2, sizeof bits);
        Slot& slot = slots[(bits * 2654435761u) >> (32 - kSlotBits)];
        if (slot.r2 != rc2) {
          auto it = cache.find(rc2);
          if (it == cache.end()) it = cache.emplace(rc2, farthest_painted(rc2, h)).first;
          slot = {rc2, &it->second};
        }
        far = slot.far;
        last_r2 = rc2;
      }
      return *far;
    };
    for (index_t z = range.begin(); z != range.end(); ++z) {
      auto& out = per_plane[static_cast<std::size_t>(z)];
      const bool z_inside = z > 0 && z + 1 < d.z;
      for (index_t y = 0; y < d.y; ++y) {
        const bool yz_inside = z_inside && y > 0 && y + 1 < d.y;
        const std::uint8_t* mrow = &fg(0, y, z);
        const float* rrow = &r2(0, y, z);
        for (index_t x = 0; x < d.x; ++x) {
          if (!mrow[x]) continue;
          const float rc2 = rrow[x];
          const bool interior = yz_inside && x > 0 && x + 1 < d.x;
          bool redundant = false;
          if (interior && rc2 < small_r2) {
            // Only a strictly larger neighbour can cover (rc is far below every near_limit), so
            // the radius and the farthest painted voxels are looked up only when one exists.
            const float* c = rrow + x;
            double rc = -1;
            for (int j = 0; j < 26; ++j) {
              const float rn2 = c[faces_first_offset[j]];
              if (rn2 <= rc2) continue;
              if (rc < 0) rc = std::sqrt(static_cast<double>(rc2));
              if (covered_by(rc2, rc, farthest(rc2), rn2, kFacesFirst[j])) {
                redundant = true;
                break;
              }
            }
          } else {
            const double rc = std::sqrt(static_cast<double>(rc2));
            const FarthestPainted& f = farthest(rc2);
            if (interior) {
              const float* c = rrow + x;
              for (int j = 0; j < 26 && !redundant; ++j) {
                const int k = kFacesFirst[j];
                redundant = covered_by(rc2, rc, f, c[offset[k]], k);
              }
            } else {
              for (int k = 0; k < 27 && !redundant; ++k) {
                const index_t nx = x + k % 3 - 1, ny = y + k / 3 % 3 - 1, nz = z + k / 9 - 1;
                if (k == 13 || nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
                redundant = covered_by(rc2, rc, f, r2(nx, ny, nz), k);
              }
            }
          }
          if (!redundant)
            out.push_back(
                {static_cast<std::uint16_t>(x), static_cast<std::uint16_t>(y), static_cast<std::uint16_t>(z), rc2});
        }
      }
      // Largest first, so that a plane's balls reaching a distance are a prefix.
      std::stable_sort(out.begin(), out.end(), [](const Ball& a, const Ball& b) { return a.r2 > b.r2; });
      out.shrink_to_fit();
    }
  });
  return per_plane;
}

// Per image row, the next voxel not painted yet at or after x (union-find with path halving
// over x; index d.x is the end sentinel), so that painting the balls largest first writes each
// voxel once: the first ball to reach a voxel is the largest that contains it.
class Unpainted {
 public:
  explicit Unpainted(index_t width) : w_(width + 1) {}
  void reset(index_t rows) {
    next_.resize(static_cast<std::size_t>(w_ * rows));
    for (index_t r = 0; r < rows; ++r)
      for (index_t x = 0; x < w_; ++x) next_[static_cast<std::size_t>(r * w_ + x)] = static_cast<std::int32_t>(x);
  }
  index_t find(index_t row, index_t x) {
    std::int32_t* n = next_.data() + row * w_;
    while (n[x] != x) {
      n[x] = n[n[x]];
      x = n[x];
    }
    return x;
  }
  void paint(index_t row, index_t x) {
    next_[static_cast<std::size_t>(row * w_ + x)] = static_cast<std::int32_t>(x + 1);
  }

 private:
  index_t w_;
  std::vector<std::int32_t> next_;
};

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
  // The thickness map is painted into the distance map's buffer (no second volume to map and
  // fault in). It needs no clearing: background voxels hold 0 already, and every foreground voxel
  // is painted (its own ball, r² >= (h/2)² > 0, contains it, or a ball covering that one does).
  squared_distance_to_boundary(fg, lt, {options.outside_is_background});
  // No background anywhere: the phase has no finite thickness. One background voxel (or the
  // outside) makes every distance finite, so the first foreground voxel tells.
  const index_t first = static_cast<index_t>(
      std::find_if(fg.data(), fg.data() + fg.size(), [](std::uint8_t v) { return v != 0; }) - fg.data());
  if (first < fg.size() && std::isinf(lt[first])) {
    for (index_t i = 0; i < fg.size(); ++i) lt[i] = fg[i] ? std::numeric_limits<float>::infinity() : 0.0f;
    return;
  }
  const std::vector<std::vector<Ball>> balls = maximal_balls(lt, fg);
  float r2_max = 0;
  for (const auto& plane : balls)
    for (const Ball& b : plane) r2_max = std::max(r2_max, b.r2);
  if (r2_max == 0) return;
  const index_t reach_z = static_cast<index_t>(std::ceil(std::sqrt(static_cast<double>(r2_max)) / h[2]));

  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& range) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    Unpainted unpainted(d.x);
    // The balls reaching the plane, largest first, by merging the nearby planes' lists (each
    // sorted largest first, so the balls of plane c reaching plane z are a prefix of its list):
    // a heap of one cursor per plane. Balls of equal r² paint the same value, so the order among
    // them does not change the result.
    struct Cursor {
      float r2;
      std::uint32_t c, i;
      bool operator<(const Cursor& o) const { return r2 < o.r2 || (r2 == o.r2 && (c > o.c || (c == o.c && i > o.i))); }
    };
    std::vector<Cursor> heap;
    float profile_r2 = -1, diameter = 0;
    index_t profile_dz = -1;
    std::vector<index_t> row_half_width;
    for (index_t z = range.begin(); z != range.end(); ++z) {
      auto reaches = [&](index_t c, std::size_t i) {
        const auto& plane = balls[static_cast<std::size_t>(c)];
        if (i >= plane.size()) return false;
        const double dz = static_cast<double>(z - c) * h[2];
        return static_cast<double>(plane[i].r2) - dz * dz > 0;
      };
      heap.clear();
      for (index_t c = std::max<index_t>(0, z - reach_z); c < std::min<index_t>(d.z, z + reach_z + 1); ++c)
        if (reaches(c, 0)) heap.push_back({balls[static_cast<std::size_t>(c)][0].r2, static_cast<std::uint32_t>(c), 0});
      std::make_heap(heap.begin(), heap.end());
      unpainted.reset(d.y);
      while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end());
        Cursor& cur = heap.back();
        const Ball& b = balls[cur.c][cur.i];
        if (reaches(cur.c, ++cur.i)) {
          cur.r2 = balls[cur.c][cur.i].r2;
          std::push_heap(heap.begin(), heap.end());
        } else {
          heap.pop_back();
        }
        // Balls come largest first, so runs of balls share r² and plane offset: their rows' half
        // widths are computed once per run.
        const index_t dzi = std::abs(z - static_cast<index_t>(b.z));
        if (b.r2 != profile_r2 || dzi != profile_dz) {
          profile_r2 = b.r2;
          profile_dz = dzi;
          const double rr = b.r2;
          const double dz = static_cast<double>(dzi) * h[2];
          const double rem_z = rr - dz * dz;
          diameter = static_cast<float>(2.0 * std::sqrt(rr));
          const index_t ky = half_extent(rem_z, h[1]);
          // Rows outward from the centre row: a row's half width is the previous one's or less.
          row_half_width.clear();
          index_t kx = half_extent(rem_z, h[0]);
          for (index_t j = 0; j <= ky; ++j) {
            const double dy = static_cast<double>(j) * h[1];
            const double rem_y = rem_z - dy * dy;
            if (rem_y <= 0) break;                                      // and every row beyond
            while (kx > 0 && (kx * h[0]) * (kx * h[0]) >= rem_y) --kx;  // = half_extent(rem_y, h[0])
            row_half_width.push_back(kx);
          }
        }
        auto paint_row = [&](index_t y, index_t kx) {
          if (y < 0 || y >= d.y) return;
          const index_t x1 = std::min<index_t>(d.x - 1, b.x + kx);
          float* row = &lt(0, y, z);
          for (index_t x = unpainted.find(y, std::max<index_t>(0, b.x - kx)); x <= x1; x = unpainted.find(y, x + 1)) {
            row[x] = diameter;
            unpainted.paint(y, x);
          }
        };
        for (index_t j = 0; j < static_cast<index_t>(row_half_width.size()); ++j) {
          const index_t kx = row_half_width[static_cast<std::size_t>(j)];
          paint_row(b.y + j, kx);
          if (j > 0) paint_row(b.y - j, kx);
        }
      }
    }
  });
}

Distribution thickness_distribution(const Volume<float>& thickness, const Volume<std::uint8_t>& fg) {
  // Distinct values with their counts, plane by plane in parallel, then merged in plane order.
  const Dims d = fg.dims();
  std::vector<std::vector<ValueCount>> per_plane(static_cast<std::size_t>(d.z));
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
    // Thickness is constant along runs of a row (one ball paints them), so count runs, then
    // sort the (value, count) runs: far fewer than voxels, and the counts are the same.
    std::vector<ValueCount> runs;
    for (index_t y = 0; y < d.y; ++y) {
      const std::uint8_t* mrow = &fg(0, y, z);
      const float* trow = &thickness(0, y, z);
      for (index_t x = 0; x < d.x; ++x) {
        if (!mrow[x]) continue;
        if (!runs.empty() && runs.back().value == static_cast<double>(trow[x])) ++runs.back().count;
        else runs.push_back({static_cast<double>(trow[x]), 1});
      }
    }
    std::sort(runs.begin(), runs.end(), [](const ValueCount& a, const ValueCount& b) { return a.value < b.value; });
    auto& out = per_plane[static_cast<std::size_t>(z)];
    for (const ValueCount& r : runs) {
      if (!out.empty() && out.back().value == r.value) out.back().count += r.count;
      else out.push_back(r);
    }
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
