// Interface areas between phases, the AM–SE contact-area fraction and the triple-phase
// boundary, from a phase-label volume with anisotropic spacing.
//
// Accurate estimator: Crofton / Cauchy. For a surface, the area per unit volume is twice the
// mean number of surface crossings per unit length of test line, averaged over all directions:
//   S_V = 2 · E_u[P_L(u)].
// The test lines are the 13 lattice directions through voxel centres (3 axes, 6 face diagonals,
// 4 body diagonals, in µm with the spacing); a crossing between phases i and j is a step p → p+d
// whose two voxels hold labels i and j. Each direction's weight is the fraction of the unit
// sphere closer to it (±) than to any other, computed for the actual spacing. Since every
// crossing belongs to exactly one pair, the pair areas add up: a_i = Σ_j A_ij, and for three
// phases A_ij = ½(a_i + a_j − a_k) holds exactly.
// Face counting (the `interface_area_facecount` alternative) counts voxel faces between i and j
// times the face area: exact for axis-aligned boxes, about +50 % on spheres.
// Only steps between two voxels of the image count: the image border is not an interface.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/volume.h"
#include "metrics/distribution.h"

namespace vp {

// The 13 Crofton directions (voxel steps) and their weights (sum 1) for this spacing.
struct CroftonDirections {
  std::array<std::array<int, 3>, 13> step;
  std::array<double, 13> weight;
};
CroftonDirections crofton_directions(const Vec3& spacing_um);

struct PairArea {
  int label_a = 0, label_b = 0;  // label_a < label_b
  double area_um2 = 0;           // Crofton estimate
  double facecount_um2 = 0;      // voxel faces × face area
};

struct InterfaceAreas {
  double volume_um3 = 0;        // whole image
  std::vector<PairArea> pairs;  // every label pair that touches, sorted by (label_a, label_b)
  // Area between labels a and b (either order), 0 when they do not touch.
  double area(int a, int b) const;
  double facecount(int a, int b) const;
  // Surface of label a against every other label (Σ over pairs).
  double surface(int a) const;
  double surface_facecount(int a) const;
};

InterfaceAreas interface_areas(const Volume<std::uint8_t>& labels);

// The integer part of the estimate: crossings per Crofton direction and label pair, counted for
// the steps that start in planes [z_begin, z_end) of `labels` and end inside it. Counts of
// disjoint plane ranges add up exactly, so z-slabs of one volume, each held with the plane of
// its neighbours on either side, give the whole volume's counts (metrics/mpi/slab_metrics.h).
struct CroftonCrossings {
  std::vector<int> labels;           // the labels counted, ascending (slot i is labels[i])
  std::vector<std::int64_t> counts;  // [k·n² + a·n + b], slots a < b
};
CroftonCrossings crofton_crossings(const Volume<std::uint8_t>& labels, const std::vector<int>& label_set,
                                   index_t z_begin, index_t z_end);
// The areas of a whole volume of dimensions `whole` from its crossings.
InterfaceAreas interface_areas(const CroftonCrossings& crossings, const Dims& whole, const Vec3& spacing_um);

// AM–SE contact-area fraction := A(active|electrolyte) / A(active|any other phase), from the
// Crofton areas; the roles come from the phase table (all active labels together, all
// electrolyte labels together). NaN when there is no AM surface.
struct ContactArea {
  double am_surface_um2 = 0;
  double am_se_um2 = 0;
  double fraction = 0;
};
ContactArea contact_area(const LabelVolume& labels);
// The same from interface areas already computed for this table's labels.
ContactArea contact_area(const InterfaceAreas& areas, const PhaseTable& table);

// Per AM particle: the same fraction over the surface of that particle (its voxels that hold an
// active label, against voxels of non-active labels; AM–AM contacts between particles are not
// AM surface, as at the phase level). Particles touching the image border are flagged.
struct ParticleContact {
  std::uint32_t id = 0;
  double surface_um2 = 0;
  double se_contact_um2 = 0;
  double fraction = 0;  // NaN when surface is 0
  bool touches_border = false;
};
std::vector<ParticleContact> particle_contact_areas(const LabelVolume& labels, const Volume<std::uint32_t>& particles);

// Triple-phase boundary: voxel-grid edges (where four voxels meet, all four inside the image)
// whose four voxels hold all three of the given labels; length = Σ edge lengths (µm).
struct TriplePhaseBoundary {
  double length_um = 0;
  double density_um_per_um3 = 0;  // length / image volume (µm⁻²)
  std::int64_t edges = 0;         // triple edges
  std::int64_t interior_edges = 0;
  double edge_fraction = 0;  // edges / interior_edges (TauFactor's normalisation)
};
TriplePhaseBoundary triple_phase_boundary(const Volume<std::uint8_t>& labels, int label_a, int label_b, int label_c);
// Triple edges along x, y, z whose base voxel (lowest corner) lies in planes [z_begin, z_end) and
// whose four voxels lie inside `labels` (additive over z ranges, as crofton_crossings), and the
// boundary of a whole volume of dimensions `whole` from them.
std::array<std::int64_t, 3> triple_phase_edges(const Volume<std::uint8_t>& labels, int label_a, int label_b,
                                               int label_c, index_t z_begin, index_t z_end);
TriplePhaseBoundary triple_phase_boundary(const std::array<std::int64_t, 3>& edges, const Dims& whole,
                                          const Vec3& spacing_um);

}  // namespace vp
