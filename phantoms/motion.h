// Phantoms with known motion, for DVC: a reference scan and a deformed scan of the same phantom
// under an exactly known displacement field, each with its own noise; and, for a compaction
// series, the exact displacement of every AM particle between steps.
//
// The deformed scan is the noiseless reference image (the CT forward model of the phantom)
// resampled at X(x), the inverse of x = X + u(X), by Lanczos-6 (windowed sinc) interpolation —
// deliberately not the DVC's cubic B-spline, so that a test cannot pass by sharing the
// interpolator's error. Noise (Gaussian, σ from the imaging spec's SNR) is then added to each
// scan independently. Voxel coordinates; the volume's centre is (n − 1)/2 per axis.
#pragma once

#include <string>
#include <vector>

#include "phantoms/phantom.h"

namespace vp::phantom {

enum class MotionKind { rigid, affine, field };
MotionKind parse_motion_kind(const std::string& name);  // rigid | affine | field; InputError otherwise
std::string to_string(MotionKind k);

struct MotionSpec {
  MotionKind kind = MotionKind::rigid;
  Vec3 shift_vox{0.37, -0.61, 0.83};  // rigid: translation (also added to affine and field)
  Vec3 rotation_deg{0, 0, 0};         // rigid: rotation vector about the centre
  double strain_zz = -0.02;           // affine / field: uniaxial ε_zz about the centre (F = diag(1, 1, 1 + ε_zz))
  double field_amplitude_vox = 1.0;   // field: amplitude of the smooth sinusoidal part (see displacement())
};

// u(X) at a reference point X (voxels) of a volume of dims d:
//   rigid  u = R(X − c) + c + shift − X
//   affine u = ε_zz (X_z − c_z) e_z + shift
//   field  affine + A·( ½ sin(2π X_z / n_z), 0, sin(π X_x / n_x)·sin(π X_y / n_y) )
Vec3 motion_displacement(const MotionSpec& m, const Dims& d, const Vec3& X);

struct MotionPair {
  Volume<float> reference;  // CT image of the phantom + noise (seed imaging.seed)
  Volume<float> deformed;   // the same image moved by motion_displacement + independent noise
  MotionSpec motion;
};

// Noise model must be gaussian or none; the imaging spec's other effects apply to both scans.
MotionPair motion_pair(const Phantom& phantom, const ImagingSpec& imaging, const MotionSpec& motion);

// Exact displacement of each AM particle present (by id) in two steps of a series, in voxels of
// the image (centre_to − centre_from); AM particles translate rigidly in the generator.
struct ParticleStepMotion {
  std::uint32_t id = 0;
  double pressure_from_MPa = 0, pressure_to_MPa = 0;
  Vec3 centre_from_vox{0, 0, 0};
  Vec3 displacement_vox{0, 0, 0};
};
std::vector<ParticleStepMotion> particle_step_motion(const GroundTruth& from, const GroundTruth& to);
// CSV: id,pressure_from_MPa,pressure_to_MPa,x_vox,y_vox,z_vox,dx_vox,dy_vox,dz_vox (one header line).
std::string particle_motion_csv(const std::vector<ParticleStepMotion>& rows, bool header);

}  // namespace vp::phantom
