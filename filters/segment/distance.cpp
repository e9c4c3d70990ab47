#include "filters/segment/distance.h"

#include <string>
#include <vector>

#include "core/error.h"
#include "metrics/connectivity.h"
#include "metrics/distance_transform.h"

namespace vp {

Volume<float> squared_distance_to_sites(const Volume<std::uint8_t>& sites) {
  // metrics measures from the foreground to the background: the sites are the background.
  Volume<std::uint8_t> others = sites.like<std::uint8_t>(sites.dims());
  for (index_t i = 0; i < sites.size(); ++i) others[i] = sites[i] ? 0 : 1;
  return squared_distance_transform(others);
}

Volume<float> distance_to_background(const Volume<std::uint8_t>& mask) { return distance_transform(mask); }

const std::vector<Offset>& neighbour_offsets(int connectivity) {
  static const std::vector<Offset> six = {{-1, 0, 0}, {1, 0, 0}, {0, -1, 0}, {0, 1, 0}, {0, 0, -1}, {0, 0, 1}};
  static const std::vector<Offset> all = [] {
    std::vector<Offset> o;
    for (int dz = -1; dz <= 1; ++dz)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          if (dx || dy || dz) o.push_back({dx, dy, dz});
    return o;
  }();
  if (connectivity == 6) return six;
  if (connectivity == 26) return all;
  throw InputError("connectivity must be 6 or 26, got " + std::to_string(connectivity));
}

Components connected_components(const Volume<std::uint8_t>& mask, int connectivity) {
  neighbour_offsets(connectivity);  // 6 or 26 only, with segmentation's message
  Clusters c = label_clusters(mask, connectivity);
  return {std::move(c.ids), c.count};
}

}  // namespace vp
