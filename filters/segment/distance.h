// Distance transforms and connected components in the forms clean-up and particle separation
// use. The kernels are metrics' (metrics/distance_transform.h, metrics/connectivity.h: one
// implementation each); these are thin adapters with segmentation's names.
#pragma once

#include <cstdint>

#include "core/volume.h"

namespace vp {

// Squared distance (µm²) from each voxel centre to the nearest voxel centre with sites != 0,
// exact (metrics' separable transform); +inf everywhere when there is no site.
// Nothing outside the volume counts as a site.
Volume<float> squared_distance_to_sites(const Volume<std::uint8_t>& sites);

// For voxels with mask != 0: distance (µm) from its centre to the nearest voxel centre with
// mask == 0 (the scipy distance_transform_edt convention); 0 on background voxels. The outside
// of the volume is not background, so a phase touching the border is not eroded from there.
Volume<float> distance_to_background(const Volume<std::uint8_t>& mask);

// Connected components of mask != 0 (6- or 26-connectivity), ids 1..count in raster order of
// their first voxel; 0 = background.
struct Components {
  Volume<std::uint32_t> ids;
  std::uint32_t count = 0;
};
Components connected_components(const Volume<std::uint8_t>& mask, int connectivity = 26);

// Neighbour offsets for 6- or 26-connectivity; throws InputError for anything else.
struct Offset {
  int dx, dy, dz;
};
const std::vector<Offset>& neighbour_offsets(int connectivity);

}  // namespace vp
