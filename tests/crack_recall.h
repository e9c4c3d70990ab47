// Crack recall and false crack volume of a detection against a phantom's planted cracks, and
// the realistic inputs they are measured on (a CT image at a given SNR and labels thresholded
// at the midpoints between the phases' noiseless grey levels). Shared by
// test_cracks_recall.cpp and bench_cracks_recall.cpp; the definitions are in docs/cracks.md.
//
// A planted crack is found when one detected crack lies within one voxel (its 26-neighbourhood)
// of ≥ 50 % of the planted crack's voxels; each detected crack is credited with at most one
// planted crack (the one it covers most), so two touching cracks merged into one count once.
// A detected crack voxel is false when no planted crack voxel lies within one voxel of it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/volume.h"
#include "phantoms/phantom.h"

namespace vp::crack_recall {

struct Score {
  int planted = 0;              // planted cracks of the host
  int found = 0;                // of those, found
  index_t detected_voxels = 0;  // crack voxels detected in this host
  index_t false_voxels = 0;     // of those, farther than one voxel from any planted crack
  index_t host_voxels = 0;      // host region: host voxels ∪ planted cracks of the host (truth)
  std::uint32_t detected_cracks = 0;
  std::vector<std::uint32_t> found_ids;  // the planted ids found, ascending
  double recall() const { return planted ? double(found) / planted : 1.0; }
  double false_fraction() const { return host_voxels ? double(false_voxels) / host_voxels : 0.0; }
  double precision() const { return detected_voxels ? 1.0 - double(false_voxels) / detected_voxels : 1.0; }
};

// truth: the phantom (labels, crack ids, crack table); host: "se" or "am"; detected: crack ids
// of a detection run with that host.
inline Score score(const phantom::Phantom& truth, const std::string& host, const Volume<std::uint32_t>& detected,
                   std::uint32_t detected_count) {
  Score s;
  s.detected_cracks = detected_count;
  const Dims d = detected.dims();
  const bool has_cracks = truth.cracks.size() == detected.size();
  // Crack ids need not be dense (cracks open one by one with pressure).
  std::uint32_t max_id = 0;
  for (const auto& c : truth.truth.cracks) max_id = std::max(max_id, c.id);
  if (has_cracks)
    for (std::uint32_t t : truth.cracks.storage()) max_id = std::max(max_id, t);
  std::vector<std::uint8_t> of_host(max_id + 1, 0);
  for (const auto& c : truth.truth.cracks)
    if (c.host == host) of_host[c.id] = 1;
  const int host_label = truth.labels.phases.by_name(host)->label;
  // Per planted crack: its voxel count and, per detected id, the voxels that id covers.
  std::vector<index_t> size(of_host.size(), 0);
  std::vector<std::map<std::uint32_t, index_t>> cover(of_host.size());
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = detected.index(x, y, z);
        const std::uint32_t t = has_cracks ? truth.cracks[i] : 0;
        const bool planted_here = t && of_host[t];
        s.host_voxels += planted_here || truth.labels[i] == host_label;
        // Neighbourhood ids: detected ids near a planted voxel, planted ids near a detected one.
        std::vector<std::uint32_t> near_detected;
        bool near_planted = false;
        for (index_t dz = -1; dz <= 1; ++dz)
          for (index_t dy = -1; dy <= 1; ++dy)
            for (index_t dx = -1; dx <= 1; ++dx) {
              const index_t u = x + dx, v = y + dy, w = z + dz;
              if (u < 0 || v < 0 || w < 0 || u >= d.x || v >= d.y || w >= d.z) continue;
              const index_t j = detected.index(u, v, w);
              if (planted_here && detected[j]) near_detected.push_back(detected[j]);
              if (detected[i] && has_cracks && truth.cracks[j] && of_host[truth.cracks[j]]) near_planted = true;
            }
        if (detected[i]) {
          ++s.detected_voxels;
          s.false_voxels += !near_planted;
        }
        if (planted_here) {
          ++size[t];
          std::sort(near_detected.begin(), near_detected.end());
          near_detected.erase(std::unique(near_detected.begin(), near_detected.end()), near_detected.end());
          for (std::uint32_t id : near_detected) ++cover[t][id];
        }
      }
  // Credit each detected crack with the planted crack it covers most (ties: the lower id).
  std::map<std::uint32_t, std::pair<index_t, std::uint32_t>> best;  // detected id → (cover, planted id)
  for (std::uint32_t t = 1; t < of_host.size(); ++t) {
    if (!of_host[t]) continue;
    ++s.planted;
    for (const auto& [id, n] : cover[t])
      if (2 * n >= size[t] && n > best[id].first) best[id] = {n, t};
  }
  std::vector<std::uint8_t> found(of_host.size(), 0);
  for (const auto& [id, b] : best)
    if (b.second) found[b.second] = 1;
  for (std::uint32_t t = 1; t < of_host.size(); ++t)
    if (found[t]) s.found_ids.push_back(t);
  s.found = static_cast<int>(s.found_ids.size());
  return s;
}

// CT image of the phantom (the phantoms' forward model) as float.
inline Volume<float> ct_grey(const phantom::Phantom& ph, const phantom::ImagingSpec& imaging) {
  const Volume<std::uint16_t> ct = phantom::ct_image(ph.labels, imaging);
  Volume<float> grey = ph.labels.like<float>(ph.labels.dims());
  for (index_t i = 0; i < grey.size(); ++i) grey[i] = ct[i];
  return grey;
}

// Labels a user would get: thresholds at the midpoints between the noiseless grey levels of
// pore, se and am (labels 0, 1, 2), no clean-up.
inline Volume<std::uint8_t> midpoint_labels(const Volume<float>& grey, double pore, double se, double am) {
  const double t1 = (pore + se) / 2, t2 = (se + am) / 2;
  Volume<std::uint8_t> labels = grey.like<std::uint8_t>(grey.dims());
  for (index_t i = 0; i < grey.size(); ++i) labels[i] = grey[i] < t1 ? 0 : grey[i] < t2 ? 1 : 2;
  return labels;
}

}  // namespace vp::crack_recall
