// Particle size distribution from a particle-id volume (0 = no particle).
//
// Each particle's phase is the label holding most of its voxels (ties: the lower label). Size =
// equivalent-sphere diameter d_eq = (6·V/π)^(1/3) with V = voxels × voxel volume (µm³).
// Particles with a voxel on any face of the image are cut by the field of view: they are counted
// separately (border_count) and left out of the distribution, so the sizes are not biased low.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/volume.h"
#include "metrics/distribution.h"

namespace vp {

struct ParticleSize {
  std::uint32_t id = 0;
  std::string phase;  // phase-table name ("phase<N>" when the table lacks the label)
  std::int64_t voxels = 0;
  double volume_um3 = 0;
  double equivalent_diameter_um = 0;
  bool touches_border = false;
};

struct PhaseParticleSizes {
  std::int64_t count = 0;               // particles inside the image
  std::int64_t border_count = 0;        // particles cut by the image faces (excluded below)
  Distribution equivalent_diameter_um;  // over the inside particles
};

struct ParticleSizes {
  std::vector<ParticleSize> particles;  // by id
  std::map<std::string, PhaseParticleSizes> by_phase;
};

// InputError when the two volumes differ in dimensions.
ParticleSizes particle_sizes(const LabelVolume& labels, const Volume<std::uint32_t>& particles);

}  // namespace vp
