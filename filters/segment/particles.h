// Particle separation: distance map, h-maxima markers, marker-controlled watershed, and the
// per-particle table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/volume.h"

namespace vp {

struct ParticleOptions {
  // Marker height in µm: maxima of the distance map less than this above their saddle to a
  // higher maximum merge (h-maxima). Larger h = fewer, larger particles.
  double h_um = 1.0;
  // Particles smaller than this (µm³) are dropped (ids renumbered); 0 keeps all.
  double min_volume_um3 = 0;
  int connectivity = 26;  // for plateaus, markers and flooding: 6 or 26
};

// Reconstruction by dilation of marker under mask (marker <= mask voxel-wise), connectivity 6/26.
Volume<float> reconstruct_by_dilation(const Volume<float>& marker, const Volume<float>& mask, int connectivity);

// The h-maxima markers of f restricted to where f > 0: the regional maxima of the
// reconstruction of f - h under f, as connected components with ids 1..n (raster order).
Volume<std::uint32_t> h_maxima_markers(const Volume<float>& f, double h, int connectivity, std::uint32_t* count);

// Marker-controlled watershed of -f (flooding from the highest f down) restricted to f > 0.
// Voxels are processed by decreasing f, then by arrival order: deterministic.
Volume<std::uint32_t> watershed_from_markers(const Volume<float>& f, const Volume<std::uint32_t>& markers,
                                             int connectivity);

// The whole separation of phase `label`: Euclidean distance to the other phases (µm), h-maxima
// markers, watershed. Ids 1..n, 0 outside the phase.
Volume<std::uint32_t> separate_particles(const Volume<std::uint8_t>& labels, std::uint8_t label,
                                         const ParticleOptions& options = {});

struct Particle {
  std::uint32_t id = 0;
  index_t voxels = 0;
  double volume_um3 = 0;
  double equivalent_diameter_um = 0;                            // diameter of the ball of equal volume
  Vec3 centroid_um{0, 0, 0};                                    // origin + mean voxel index * spacing
  std::array<index_t, 3> bbox_min{0, 0, 0}, bbox_max{0, 0, 0};  // voxel indices, inclusive
  double surface_area_um2 = 0;  // 2/3 of the exposed voxel-face area (see particle_table)
  double sphericity = 0;        // π^(1/3) (6V)^(2/3) / A
  bool touches_border = false;
};

// One row per id 1..max. Surface area: exposed voxel faces (to other ids, background or the
// volume border) times 2/3, the Cauchy factor that makes face counting unbiased for isotropic
// surfaces (plain face counting overestimates a sphere by about 50 %).
std::vector<Particle> particle_table(const Volume<std::uint32_t>& ids);

// CSV with header: id,voxels,volume_um3,equivalent_diameter_um,centroid_x_um,...,touches_border
std::string particle_table_csv(const std::vector<Particle>& table);

}  // namespace vp
