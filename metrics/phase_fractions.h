// Voxel counts per label, the volume fraction of every phase of a label volume, porosity, and
// the mask of a set of phases.
// The base of every other metric: exact integer counts, fractions = count / total voxels.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/volume.h"

namespace vp {

// Number of voxels holding each label value 0..255 (deterministic for any thread count).
std::array<index_t, 256> count_labels(const Volume<std::uint8_t>& labels);

struct PhaseFraction {
  std::string phase;  // name from the phase table
  int label = 0;
  Role role = Role::other;
  index_t voxels = 0;   // voxels holding this label
  double fraction = 0;  // voxels / all voxels of the volume (0 for an empty volume)
};

struct PhaseFractions {
  index_t total = 0;                  // all voxels of the volume
  std::vector<PhaseFraction> phases;  // one per phase of the table, in the table's order
  // Fraction of the voxels whose phase has this role (summed over such phases; 0 when none).
  double role_fraction(Role role) const;
};

// Throws InputError naming the label value, its voxel count, the first voxel (x, y, z) and the
// file when the volume holds a label that the phase table does not name: such voxels are never
// silently dropped.
PhaseFractions phase_fractions(const LabelVolume& labels);
// The same from voxel counts per label (count_labels) of a volume of `total` voxels, e.g. summed
// over z-slabs. Throws InputError for a counted label the table does not name.
PhaseFractions phase_fractions(const std::array<index_t, 256>& counts, index_t total, const PhaseTable& table);

// Void = phases of role pore or crack. porosity = void voxels / all voxels; relative density
// = 1 − porosity.
double porosity(const PhaseFractions& fractions);
double porosity(const LabelVolume& labels);

// Mask (1/0) of the voxels whose label is in `labels`; spacing, origin, provenance kept.
Volume<std::uint8_t> phase_mask(const Volume<std::uint8_t>& label_volume, const std::vector<int>& labels);

}  // namespace vp
