// Discrete (particle) tracking: each particle of a reference id volume is matched as one subset
// — its voxels plus a shell of `margin` voxels, for the texture of its boundary — by IC-GN with
// the affine shape function, started from the registration. Translation is the displacement of
// the particle's centroid, rotation the polar-decomposition rotation of the subset's F. A particle
// whose ZNSSD jumps above `jump_ratio` × the median of the tracked particles is flagged
// (`residual_jump`: a candidate fracture, or a particle that changed shape).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/volume.h"
#include "dvc/affine.h"

namespace vp::dvc {

struct ParticleOptions {
  index_t min_voxels = 64;  // smaller particles are not tracked (too little texture)
  index_t margin = 3;       // shell around the particle, voxels
  double jump_ratio = 3.0;
  int max_iterations = 60;
  double presmooth_sigma = 1.0;  // as DvcOptions::presmooth_sigma
};

struct ParticleMotion {
  std::uint32_t id = 0;
  index_t voxels = 0;
  Vec3 centroid_vox{0, 0, 0};      // in the reference
  Vec3 displacement_vox{0, 0, 0};  // of the centroid
  Vec3 rotation_deg{0, 0, 0};      // rotation vector (axis × angle)
  double rotation_angle_deg = 0;   // its length
  double residual = 0;             // ZNSSD
  bool residual_jump = false;
  std::string status = "ok";  // ok | outside | not_converged | too_small
  bool tracked() const { return status == "ok"; }
};

// Throws InputError when `ids` and the scans differ in dims.
std::vector<ParticleMotion> track_particles(const Volume<float>& ref, const Volume<float>& def,
                                            const Volume<std::uint32_t>& ids, const AffineWarp& start,
                                            const ParticleOptions& options);

}  // namespace vp::dvc
