// Intergranular facets: openings about one voxel wide inside a host brighter than another solid
// (AM agglomerates beside the SE). The PSF lifts such an opening to a grey between the two
// solids, so thresholds label it as the darker solid, never as void: the void-based branches of
// detect_cracks have nothing to start from. A facet voxel is a voxel not labelled host, walled
// by host along one of the 13 grid directions within a run of at most two non-host voxels (a
// film of the darker solid between two particles is walled that way too; the wall depth, the
// grey dip and the planarity of the whole facet tell them apart), darker than both walls by a
// noise-aware margin.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/volume.h"

namespace vp {

struct FacetOptions {
  int max_opening_vox = 3;    // longest run of non-host voxels along the sandwich direction
  int wall_depth_vox = 2;     // host voxels each wall must have in a row (a particle, not a rim)
  double min_dip = 0.3;       // grey dip below the walls' mean, × (host − darker solid) contrast
  double min_dip_noise = 2;   // and ≥ this × the host's grey noise σ
  index_t min_voxels = 12;    // smallest facet (components of facet voxels, 26-connected)
  int ray_vox = 6;            // rays along the opening from a candidate, to where it ends
  int wedge_reach_vox = 4;    // an end walled by host on both sides within this is a wedge
  int max_wedge_rays = -1;    // candidates with more rays ending in a wedge are films (< 0: off)
};

struct FacetCandidates {
  Volume<std::uint8_t> mask;  // 0 = none, else 1 + the index of its sandwich direction
  Volume<std::uint32_t> particle;  // with particles: the particle walling each candidate
  double noise_sigma = 0;     // the host's grey noise σ used for the dip margin
  double margin = 0;          // the dip margin used (grey)
};

// The 13 grid directions of a 26-neighbourhood, one of each ± pair.
const std::array<std::array<int, 3>, 13>& facet_directions();

// labels, grey: same dims; host: the host labels; host_level / darker_level: the grey of the
// host and of the darker solid (medians); particles: optional ids of the host's particles (the
// walls of a facet voxel must lie in one).
FacetCandidates facet_candidates(const Volume<std::uint8_t>& labels, const Volume<float>& grey,
                                 const std::array<bool, 256>& host, double host_level, double darker_level,
                                 const FacetOptions& options, const Volume<std::uint32_t>* particles = nullptr);

// Per candidate (mask ≠ 0, as facet_candidates'), how many rays along its opening end in a
// wedge; 255 elsewhere.
Volume<std::uint8_t> facet_wedge_rays(const Volume<std::uint8_t>& mask, const Volume<std::uint8_t>& labels,
                                      const std::array<bool, 256>& host, const FacetOptions& options);

}  // namespace vp
