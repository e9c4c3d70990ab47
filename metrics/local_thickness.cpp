#include "metrics/local_thickness.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "metrics/distance_transform.h"

namespace vp {
namespace {

// A candidate ball: centre (x, y, z) as 16-bit indices and squared radius in µm², exactly as the
// transform stored it (12 bytes; there can be nearly as many balls as phase voxels).
struct Ball {
  std::uint16_t x, y, z;
  float r2;
};

// Centres whose ball is not inside a 26-neighbour's ball, in (z, y, x) order.
std::vector<Ball> maximal_balls(const Volume<float>& r2, const Volume<std::uint8_t>& fg) {
  const Dims d = r2.dims();
  const Vec3 h = r2.spacing_um;
  std::vector<std::vector<Ball>> per_plane(static_cast<std::size_t>(d.z));
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& range) {
    for (index_t z = range.begin(); z != range.end(); ++z) {
      auto& out = per_plane[static_cast<std::size_t>(z)];
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          if (!fg(x, y, z)) continue;
          double rc = std::sqrt(static_cast<double>(r2(x, y, z)));
          bool redundant = false;
          for (index_t dz = -1; dz <= 1 && !redundant; ++dz)
            for (index_t dy = -1; dy <= 1 && !redundant; ++dy)
              for (index_t dx = -1; dx <= 1 && !redundant; ++dx) {
                index_t nx = x + dx, ny = y + dy, nz = z + dz;
                if ((dx | dy | dz) == 0 || nx < 0 || ny < 0 || nz < 0 || nx >= d.x || ny >= d.y || nz >= d.z) continue;
                if (!fg(nx, ny, nz)) continue;
                double step = std::sqrt(dx * dx * h[0] * h[0] + dy * dy * h[1] * h[1] + dz * dz * h[2] * h[2]);
                double rn = std::sqrt(static_cast<double>(r2(nx, ny, nz)));
                // Contained (up to float rounding of the stored squares): the neighbour covers it.
                if (rn >= rc + step - 1e-6 * (rc + step)) redundant = true;
              }
          if (!redundant)
            out.push_back({static_cast<std::uint16_t>(x), static_cast<std::uint16_t>(y), static_cast<std::uint16_t>(z),
                           r2(x, y, z)});
        }
    }
  });
  std::size_t total = 0;
  for (const auto& p : per_plane) total += p.size();
  std::vector<Ball> balls;
  balls.reserve(total);
  for (auto& p : per_plane) {
    balls.insert(balls.end(), p.begin(), p.end());
    std::vector<Ball>().swap(p);
  }
  return balls;
}

// Largest k >= 0 with (k·h)² < limit2 (limit2 > 0).
index_t half_extent(double limit2, double h) {
  auto k = static_cast<index_t>(std::floor(std::sqrt(limit2) / h));
  while (k > 0 && (k * h) * (k * h) >= limit2) --k;
  while (((k + 1) * h) * ((k + 1) * h) < limit2) ++k;
  return k;
}

}  // namespace

Volume<float> local_thickness(const Volume<std::uint8_t>& fg, const LocalThicknessOptions& options) {
  const Dims d = fg.dims();
  const Vec3 h = fg.spacing_um;
  if (d.x > 65535 || d.y > 65535 || d.z > 65535)
    throw InputError("local_thickness: volume " + to_string(d) + " has more than 65535 voxels along an axis");
  Volume<float> lt = fg.like<float>(d, 0.0f);
  if (fg.empty()) return lt;
  Volume<float> r2 = squared_distance_to_boundary(fg, {options.outside_is_background});
  // No background anywhere: the phase has no finite thickness.
  bool unbounded = false;
  for (index_t i = 0; i < fg.size() && !unbounded; ++i)
    if (fg[i] && std::isinf(r2[i])) unbounded = true;
  if (unbounded) {
    for (index_t i = 0; i < fg.size(); ++i)
      if (fg[i]) lt[i] = std::numeric_limits<float>::infinity();
    return lt;
  }
  const std::vector<Ball> balls = maximal_balls(r2, fg);
  r2 = Volume<float>();  // free before painting
  if (balls.empty()) return lt;

  // first_in_plane[z]: index of the first ball with centre plane >= z (balls are sorted by z).
  std::vector<std::size_t> first_in_plane(static_cast<std::size_t>(d.z + 1));
  double r_max = 0;
  {
    std::size_t i = 0;
    for (index_t z = 0; z <= d.z; ++z) {
      while (i < balls.size() && balls[i].z < z) ++i;
      first_in_plane[static_cast<std::size_t>(z)] = i;
    }
    for (const Ball& b : balls) r_max = std::max(r_max, std::sqrt(static_cast<double>(b.r2)));
  }
  const index_t reach_z = static_cast<index_t>(std::ceil(r_max / h[2]));

  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& range) {
    for (index_t z = range.begin(); z != range.end(); ++z) {
      index_t z0 = std::max<index_t>(0, z - reach_z), z1 = std::min<index_t>(d.z, z + reach_z + 1);
      for (std::size_t i = first_in_plane[static_cast<std::size_t>(z0)]; i < first_in_plane[static_cast<std::size_t>(z1)];
           ++i) {
        const Ball& b = balls[i];
        const double rr = b.r2;
        const double r = std::sqrt(rr);
        const double dz = static_cast<double>(z - b.z) * h[2];
        const double rem_z = rr - dz * dz;
        if (rem_z <= 0) continue;
        const float diameter = static_cast<float>(2.0 * r);
        const index_t ky = half_extent(rem_z, h[1]);
        for (index_t y = std::max<index_t>(0, b.y - ky); y <= std::min<index_t>(d.y - 1, b.y + ky); ++y) {
          const double dy = static_cast<double>(y - b.y) * h[1];
          const double rem_y = rem_z - dy * dy;
          if (rem_y <= 0) continue;
          const index_t kx = half_extent(rem_y, h[0]);
          float* row = &lt(0, y, z);
          for (index_t x = std::max<index_t>(0, b.x - kx); x <= std::min<index_t>(d.x - 1, b.x + kx); ++x)
            row[x] = std::max(row[x], diameter);
        }
      }
    }
  });
  return lt;
}

Distribution thickness_distribution(const Volume<float>& thickness, const Volume<std::uint8_t>& fg) {
  std::vector<double> values;
  for (index_t i = 0; i < fg.size(); ++i)
    if (fg[i]) values.push_back(thickness[i]);
  return summarize(std::move(values));
}

}  // namespace vp
