// Synthetic composite cathodes with exact ground truth, and imaging forward models.
//
// Every phantom is a pure function of its spec (seed included): the phase at a point is an
// analytic function of continuous position, the label image samples it at voxel centres, and
// the ground truth is computed from the same geometry (exact voxel counts; analytic or
// supersampled areas). No ITK here; plain C++.
//
// Phase labels of every phantom (see phase_table()):
//   0 pore (role pore) · 1 se (role electrolyte) · 2 am (role active) · 3 binder (role binder,
//   only when the phantom has binder). Cracks are void: their voxels carry label 0 (pore) and,
//   in the crack-id volume, the crack's id (1-based; 0 = no crack).
// Particle-id volume: AM particles carry ids 1..n_am, SE particles n_am+1..n_am+n_se (every SE
// voxel carries the id of the SE particle that owns it), binder blobs after those; 0 elsewhere.
// Units: µm, µm², µm³, MPa. Index order (x, y, z), x fastest; pressing axis z.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/phase_table.h"
#include "core/volume.h"

namespace vp::phantom {

inline constexpr std::uint8_t kPore = 0;
inline constexpr std::uint8_t kElectrolyte = 1;
inline constexpr std::uint8_t kActive = 2;
inline constexpr std::uint8_t kBinder = 3;

// pore 0 / se 1 / am 2 (/ binder 3).
PhaseTable phase_table(bool with_binder = false);

// ---------------------------------------------------------------- ground truth

struct ParticleTruth {
  std::uint32_t id = 0;         // as in the particle-id volume
  std::string phase;            // "am" | "se" | "binder"
  Vec3 centre_um{0, 0, 0};      // in the image frame (pressed state)
  Vec3 semi_axes_um{0, 0, 0};   // along x, y, z (axis-aligned ellipsoids; spheres: all equal)
  double volume_um3 = 0;        // analytic, whole body (also the part outside the image)
  double surface_area_um2 = 0;  // analytic (spheres) or quadrature to 1e-6 (ellipsoids)
  std::int64_t voxels = 0;      // voxels carrying this id in the particle-id volume
  bool inside = false;          // true when the whole body lies inside the image
  int grains = 0;               // grains of a polycrystalline agglomerate (0 = single crystal)
};

struct CrackTruth {
  std::uint32_t id = 0;           // as in the crack-id volume
  std::string host;               // "se" | "am"
  std::string kind;               // "planar" (disc or through-going slab) | "intergranular"
  Vec3 centre_um{0, 0, 0};        // centroid of the crack's mid-plane area within host and image
  Vec3 normal{0, 0, 1};           // unit normal of the crack plane
  double aperture_um = 0;         // full opening (slab thickness along the normal)
  double area_um2 = 0;            // one face: mid-plane area within the host phase and the image
  double radius_um = 0;           // disc radius (planar), 0 for intergranular facets
  std::uint32_t particle_id = 0;  // host AM particle (intergranular), 0 otherwise
  std::int64_t voxels = 0;        // voxels carrying this id in the crack-id volume
};

struct GroundTruth {
  std::string generator;  // "composite" | "spheres" | "planar_cracks" | "capped_sphere"
  double pressure_MPa = 0;
  std::uint64_t seed = 0;
  Dims dims;
  Vec3 spacing_um{1, 1, 1};
  PhaseTable phases;

  // Exact counts of the label image and their fractions of all voxels, by phase name.
  std::map<std::string, std::int64_t> voxel_count;
  std::map<std::string, double> volume_fraction;

  // Compaction state (composite): Heckel porosity target, relative density, z scale of the box.
  double target_porosity = -1;  // < 0: not applicable
  double relative_density = -1;
  double z_scale = 1;  // pressed height / loose height (≤ 1)

  // True interface areas in µm² keyed "a|b" (phase-table order), where known: analytic for the
  // building blocks, surface quadrature of the exact geometry for the composite's AM surfaces.
  std::map<std::string, double> interface_area_um2;
  std::string interface_area_method;  // "analytic" | "surface quadrature" | ""

  // AM–SE contact-area fraction: (AM surface touching SE) / (AM surface), AM surface within the
  // image only, computed by quadrature over the exact AM surfaces (`contact_samples_per_voxel_face`
  // points per voxel-face area), each point classified just outside the surface.
  double am_surface_area_um2 = 0;
  double am_se_contact_area_um2 = 0;
  double contact_area_fraction = -1;  // < 0: no AM in the phantom
  int contact_samples_per_voxel_face = 0;

  // Particles listed one by one (composite: AM only), and summaries of phases whose particles
  // are too many to list (composite: se, binder): {"se": {"count", "equivalent_radius_mean_um"...}}.
  std::vector<ParticleTruth> particles;
  nlohmann::json particle_summary = nlohmann::json::object();
  std::vector<CrackTruth> cracks;

  nlohmann::json parameters = nlohmann::json::object();  // the generator's inputs, for the record

  int particle_count(const std::string& phase) const;
  nlohmann::json to_json() const;
  static GroundTruth from_json(const nlohmann::json& j);  // throws InputError on missing keys
};

struct Phantom {
  LabelVolume labels;
  Volume<std::uint32_t> particles;  // empty when the generator has no particles
  Volume<std::uint32_t> cracks;     // empty when the generator has no cracks
  GroundTruth truth;
};

// Exact counts and fractions of a label image under a phase table (used to fill GroundTruth).
void count_phases(const LabelVolume& labels, GroundTruth& truth);

// ---------------------------------------------------------------- composite cathode

// Heckel: ln(1/(1−D)) = k·P + A, porosity = 1 − D = exp(−(k·P + A)).
// Defaults give porosity 0.300 at 10 MPa and 0.030 at 370 MPa.
struct CompactionSpec {
  bool enabled = true;       // false: no pressing; porosity = CompositeSpec::pore_fraction
  double heckel_k = 0.0064;  // MPa⁻¹
  double heckel_A = 1.14;    // loose (P = 0) porosity exp(−A) = 0.32
  // AM–SE contact law the SE flow is steered to (measured by the truth's surface quadrature):
  // c(P) = c0 + (c_max − c0)(1 − exp(−P / P_knee)) + slope·P — a knee near 2–3 × P_knee (≈ 50 MPa)
  // and a slowly rising plateau. Clamped to what the geometry can reach.
  bool steer_contact = true;
  double contact_c0 = 0.35;
  double contact_max = 0.88;
  double contact_knee_MPa = 20;
  double contact_slope_per_MPa = 5e-5;
};
double heckel_porosity(const CompactionSpec& c, double pressure_MPa);
double target_contact_fraction(const CompactionSpec& c, double pressure_MPa);

// Cracks above an onset pressure. The crack set is fixed by the seed; the number present grows
// linearly from 1 at the onset to `count` at `full_pressure_MPa`, so cracks persist once opened.
struct CrackSpec {
  double onset_MPa = 250;
  double full_pressure_MPa = 370;
  // Planar cracks in the SE: discs of this radius and aperture; normals = `normal` tilted by
  // up to `tilt_deg` (uniformly random azimuth).
  int se_count = 4;
  double se_aperture_um = 1.0;
  double se_radius_um = 12;
  Vec3 se_normal{0, 0, 1};
  double se_tilt_deg = 20;
  // Intergranular cracks in polycrystalline AM agglomerates: this many grain boundaries open.
  int am_count = 4;
  double am_aperture_um = 0.6;
};

struct CompositeSpec {
  Dims dims{64, 64, 64};
  Vec3 spacing_um{0.5, 0.5, 0.5};
  std::uint64_t seed = 1;
  // Target volume fractions. am, se, binder set the solid composition (normalised to their sum);
  // with compaction on, porosity follows Heckel, otherwise pore_fraction.
  double am_fraction = 0.45;
  double se_fraction = 0.35;
  double binder_fraction = 0.0;  // > 0 adds binder blobs (label 3)
  double pore_fraction = 0.20;
  // AM particles: radii (in voxels of the x spacing) log-normal with this mean and coefficient of
  // variation, clipped to [min, max]; `ellipsoid_fraction` of them are axis-aligned ellipsoids
  // with axis ratios in [1/aspect_max, aspect_max].
  double am_radius_vox = 8;
  double am_radius_cv = 0.25;
  double am_radius_min_vox = 4;
  double am_radius_max_vox = 14;
  double ellipsoid_fraction = 0.3;
  double aspect_max = 1.4;
  // Polycrystalline agglomerates: this fraction of AM particles consist of `grains` Voronoi grains.
  double polycrystal_fraction = 0.5;
  int grains = 6;
  double se_radius_vox = 3;  // SE particle radius (loose state)
  double binder_radius_vox = 1.5;
  std::vector<double> pressures_MPa{10, 50, 125, 250, 370};
  CompactionSpec compaction;
  CrackSpec cracks;
  bool cracks_enabled = true;
  int contact_samples_per_voxel_face = 4;

  nlohmann::json to_json() const;
};

// One pressed state. Same spec → identical result, independent of the thread count.
Phantom generate_composite(const CompositeSpec& spec, double pressure_MPa);
// One state per spec.pressures_MPa, in that order.
std::vector<Phantom> generate_series(const CompositeSpec& spec);

// ---------------------------------------------------------------- exact building blocks

// Non-overlapping AM spheres (label am) in a matrix (pore or se); spheres never touch the border
// and are at least `min_gap_vox` apart, so interface_area_um2 {"am|<matrix>"} = Σ 4πr² exactly.
struct SpheresSpec {
  Dims dims{48, 48, 48};
  Vec3 spacing_um{1, 1, 1};
  std::uint64_t seed = 1;
  int count = 6;
  double radius_min_um = 3;
  double radius_max_um = 6;
  double min_gap_um = 2;
  Role matrix = Role::pore;  // pore or electrolyte
};
Phantom separated_spheres(const SpheresSpec& spec);  // throws InputError when they do not fit

// Planar cracks (pore) of given aperture and orientation in an SE block, or inside one AM sphere
// centred in the SE block. radius_um ≤ 0: the crack runs through the whole host.
struct PlanarCrack {
  Vec3 centre_um{0, 0, 0};
  Vec3 normal{0, 0, 1};
  double aperture_um = 1;
  double radius_um = 0;
};
struct PlanarCrackSpec {
  Dims dims{48, 48, 48};
  Vec3 spacing_um{1, 1, 1};
  std::string host = "se";   // "se": cracks in an all-SE block; "am": in an AM sphere
  double am_radius_um = 18;  // host "am": sphere radius, centred in the image
  std::vector<PlanarCrack> cracks;
};
Phantom planar_cracks(const PlanarCrackSpec& spec);

// One AM sphere centred in the image, capped by an SE shell of thickness `shell_um` over the
// polar angle [0, cap_angle_deg] from +z; pore elsewhere. Exact contact fraction (1 − cos θ)/2
// (0.5 for the default half cap).
struct CappedSphereSpec {
  Dims dims{48, 48, 48};
  Vec3 spacing_um{1, 1, 1};
  double radius_um = 14;
  double shell_um = 4;
  double cap_angle_deg = 90;
};
Phantom capped_sphere(const CappedSphereSpec& spec);

// ---------------------------------------------------------------- imaging

enum class NoiseModel { none, gaussian, poisson };

// grey = offset + gain · μ(label), blurred by a Gaussian PSF, shaded (cupping, rings, curtains),
// then noise; rounded and clamped to 0..65535.
// SNR := |grey(snr_phase_a) − grey(snr_phase_b)| / σ_noise, the noiseless grey levels of two
// phases over the standard deviation of the noise. Poisson noise: σ_noise is taken at the mean
// of the two levels (counts = grey / c with c chosen so).
struct ImagingSpec {
  std::map<std::string, double> attenuation{{"pore", 0.05}, {"se", 0.45}, {"am", 1.0}, {"binder", 0.25}};
  double offset = 4000;
  double gain = 40000;
  Vec3 blur_sigma_vox{1.0, 1.0, 1.0};  // Gaussian PSF σ per axis, voxels (0 = none)
  NoiseModel noise = NoiseModel::gaussian;
  double snr = 8;
  std::string snr_phase_a = "am";
  std::string snr_phase_b = "se";
  double cupping = 0.0;             // beam hardening: centre darker by this fraction of the level
  double ring_amplitude = 0.0;      // rings around the z axis: ± this fraction of gain, per radius
  double curtain_amplitude = 0.0;   // FIB-SEM curtaining: ± this fraction of gain
  double curtain_period_vox = 6.0;  // typical stripe width along x
  // Grain texture: every grain of a polycrystalline AM agglomerate attenuates by its own factor
  // 1 + grain_contrast·u, u uniform in [−1, 1] (orientation contrast). The grains are a Voronoi
  // partition of the agglomerate's voxels from seeds drawn in 0.8 of its semi-axes (as the
  // generator's grains, not the same seeds). Needs the phantom's particle ids (ct_image(Phantom)).
  double grain_contrast = 0.0;
  std::uint64_t seed = 1;

  double grey_level(const std::string& phase) const;  // offset + gain·μ; InputError if unknown
  double noise_sigma() const;                         // σ_noise implied by snr
  nlohmann::json to_json() const;
};

// CT forward model. Throws InputError naming a label that has no attenuation, and when
// spec.grain_contrast > 0 (that needs the particle ids: use the Phantom overload).
Volume<std::uint16_t> ct_image(const LabelVolume& labels, const ImagingSpec& spec);
// The same from a whole phantom: its particle ids and truth give the AM grain texture.
Volume<std::uint16_t> ct_image(const Phantom& phantom, const ImagingSpec& spec);

// "Realistic" imaging (`voxpress phantom --realistic`, spec key imaging.realistic): harder and
// closer to a lab scan than the defaults — Poisson (photon-counting) noise, a beam-hardening
// cup of 8 % and AM grain texture of ± 4 %, each unless set explicitly.
inline constexpr double kRealisticCupping = 0.08;
inline constexpr double kRealisticGrainContrast = 0.04;

// FIB-SEM flavour: the CT model plus curtaining stripes (vertical in each xy slice, along y,
// varying with x and slowly with z); curtain_amplitude defaults to 0.08 when 0.
Volume<std::uint16_t> fib_sem_image(const LabelVolume& labels, const ImagingSpec& spec);
Volume<std::uint16_t> fib_sem_image(const Phantom& phantom, const ImagingSpec& spec);

// FIB-SEM voxel size: 10 × 10 × 20 nm.
inline constexpr Vec3 kFibSemSpacingUm{0.010, 0.010, 0.020};

}  // namespace vp::phantom
