// Registration of a deformed scan to its reference: FFT phase correlation for the start (integer
// voxels at a coarse binning), then rigid or affine refinement by IC-GN over a resolution pyramid.
// The FFT is our own radix-2 transform: OpenCV's dft is 2-D only and the phase correlation runs
// on ≤ 64³ binned volumes, where a plain 3-D transform costs milliseconds.
#pragma once

#include "core/volume.h"
#include "dvc/affine.h"

namespace vp::dvc {

// Shift t (voxels) of the content of `def` relative to `ref`, def(x) ≈ ref(x − t), from the peak
// of the normalised cross-power spectrum (Hann-windowed, zero-padded to powers of two), refined
// to sub-voxel by a parabola through the peak and its neighbours.
Vec3 phase_correlation(const Volume<float>& ref, const Volume<float>& def);

// Mean of b×b×b blocks (the last partial block is dropped).
Volume<float> bin_volume(const Volume<float>& v, int b);

struct RegistrationOptions {
  bool affine = false;           // false: rigid (rotation + translation)
  int coarsest_size = 48;        // the pyramid's top level is binned until its smallest dim ≤ 2× this
  index_t max_points = 1 << 20;  // points per level (sub-sampled on a regular lattice)
};

struct Registration {
  AffineWarp warp;  // about the reference's centre, voxels of the reference
  Vec3 phase_correlation_vox{0, 0, 0};
  double residual = 0;  // ZNSSD at the finest level
  int levels = 0;
  bool converged = false;
};

// Throws InputError when the two scans differ in dims (the caller aligns or refuses first).
Registration register_scans(const Volume<float>& ref, const Volume<float>& def, const RegistrationOptions& options);

// `scan` resampled on the reference's voxel grid: voxel X takes scan(warp.apply(X)) by cubic
// B-spline, so a scan registered with register_scans(ref, scan) comes back in the reference's
// frame. Points within a voxel of the scan's border are clamped onto the spline's support;
// `outside_fraction` (optional) receives the fraction of voxels whose point lies outside the
// scan's voxel centres altogether (their values are the nearest border's, not data).
Volume<float> resample_to_reference(const Volume<float>& scan, const AffineWarp& warp,
                                    double* outside_fraction = nullptr);

}  // namespace vp::dvc
