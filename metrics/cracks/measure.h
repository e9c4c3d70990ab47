// Crack metrics from a crack-id volume: per crack and for the sample.
//
// Definitions (µm, µm², µm³; host region = host voxels ∪ crack voxels):
//   crack_volume_fraction  = crack volume / host region volume
//   crack_area (per crack) = mid-surface area of the sheet, projected along its normal
//                            (sheet_geometry in shape.h); one side of the sheet
//   crack_surface_density  = Σ crack_area / host region volume (µm²/µm³ = µm⁻¹)
//   aperture_mean          = crack volume / crack_area: the mean opening along the normal
//                            (sample: Σ volume / Σ area)
//   aperture_max           = the longest run of crack voxels along the grid axis nearest the
//                            normal, times its length along the normal (sheet_geometry)
//   aperture_local_thickness_mean / _max = local thickness of the crack voxels
//                            (metrics/local_thickness.h: diameter of the largest inscribed
//                            ball centred on a voxel centre; one voxel low for even widths)
//   normal                 = smallest principal axis of the crack's voxel centres; angle to the
//                            pressing axis in [0°, 90°] (0°: crack plane ⟂ pressing axis)
//   length                 = total branch length of the crack's curve skeleton (skeleton.h,
//                            graph.h)
//   networks               = 26-connected components of cracks ∪ void that hold crack voxels;
//                            largest_network_fraction = crack volume of the largest / all
//   particles (when particle ids are given): a host particle (an id found on host voxels) is
//                            cracked when a crack voxel is a 6-neighbour of it;
//                            cracks_per_particle = mean number of distinct cracks touching a
//                            host particle
//   short circuit          = short_circuit.h on cracks ∪ void, per axis
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/volume.h"
#include "metrics/cracks/short_circuit.h"

namespace vp {

struct CrackProperties {
  std::uint32_t id = 0;
  index_t voxels = 0;
  double volume_um3 = 0;
  double area_um2 = 0;
  double aperture_mean_um = 0;
  double aperture_max_um = 0;
  double aperture_local_thickness_mean_um = 0;
  double aperture_local_thickness_max_um = 0;
  Vec3 centroid_um{0, 0, 0};
  Vec3 normal{0, 0, 1};
  double angle_to_pressing_axis_deg = 0;
  double aspect = 0;     // sheet_aspect
  double length_um = 0;  // skeleton length
  int network = 0;       // index of its void network (0-based)
};

struct CrackMeasureOptions {
  std::vector<int> host_labels;
  std::vector<int> void_labels;
  int pressing_axis = 2;
  int connectivity = 26;                             // networks and short-circuit paths
  const Volume<std::uint32_t>* particles = nullptr;  // optional particle ids (0 = none)
  bool skeleton = true;                              // false: skip the skeleton lengths (faster)
};

struct CrackMeasurements {
  std::vector<CrackProperties> cracks;
  index_t crack_voxels = 0;
  double host_volume_um3 = 0;  // host region: host ∪ cracks
  double crack_volume_um3 = 0;
  double crack_volume_fraction = 0;
  double crack_area_um2 = 0;                    // Σ per-crack area
  double crack_surface_density = 0;             // µm⁻¹
  double aperture_mean_um = 0;                  // Σ crack volume / Σ crack area (NaN when no cracks)
  double aperture_max_um = 0;                   // max over cracks (NaN when no cracks)
  double aperture_local_thickness_mean_um = 0;  // over all crack voxels
  double aperture_local_thickness_max_um = 0;
  double total_length_um = 0;
  int skeleton_junctions = 0, skeleton_ends = 0, skeleton_cycles = 0;
  int network_count = 0;
  double largest_network_fraction = 0;
  // Area-weighted distribution of the normal's angle to the pressing axis, 9 bins of 10°.
  std::array<double, 9> orientation_histogram{};
  double orientation_mean_deg = 0;  // area-weighted mean angle (NaN when no cracks)
  // Particles (only when particle ids were given).
  bool has_particles = false;
  int host_particles = 0, cracked_particles = 0;
  double cracked_particle_fraction = 0;
  double cracks_per_particle = 0;
  std::array<ShortCircuitRisk, 3> short_circuit{};  // per axis x, y, z
};

// Throws InputError on dims mismatch or a bad pressing axis.
CrackMeasurements measure_cracks(const Volume<std::uint8_t>& labels, const Volume<std::uint32_t>& cracks,
                                 const CrackMeasureOptions& options);

}  // namespace vp
