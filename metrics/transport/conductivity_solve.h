// Steady-state conduction (Laplace) on the voxel grid: effective conductivity, tortuosity
// factor and MacMullin number of a phase (or several phases with their own conductivities)
// along one axis.
//
// Conventions (DEVELOPERS.md): cell-centred finite volumes; face conductance k_f·A/h with
// the harmonic mean k_f = 2 k₁k₂/(k₁+k₂) (0 if either is 0); potential 1 on the inlet face
// (index 0) and 0 on the outlet face (index N−1) of the axis, both on the sample faces, so
// L = N·h; zero flux through the other faces unless periodic; anisotropic spacing honoured.
//
//   σ_eff = I·L / (A·ΔV)         I: current through the sample, A: cross-section, ΔV = 1
//   τ     = Σ_i ε_i σ_i / σ_eff   ε_i: volume fraction of phase i in the whole image
//                                (one conducting phase: τ = ε·σ₀/σ_eff)
//   N_M   = σ_ref / σ_eff        σ_ref: the largest conductivity among the phases present
//                                (one conducting phase: N_M = σ₀/σ_eff)
//
// Voxels that conduct (σ > 0) but are not face-connected to both electrodes carry no current
// and are removed before solving. Nothing percolating: σ_eff = 0, τ = N_M = ∞, status
// "not_percolating", no solve.
//
// Solver: conjugate gradients preconditioned by a geometric multigrid V-cycle
// (metrics/transport/multigrid.h), matrix-free and oneTBB-parallel. Potentials are kept in
// double; CG vectors in float; the residual is recomputed in double at every restart
// (iterative refinement), so single-precision storage does not limit the accuracy. Dot
// products and current sums are fixed-order reductions: identical results for a given input
// whatever the thread count. Stops when both the relative residual ‖b − Ax‖/‖b‖ ≤ tolerance
// and |I_in − I_out|/|I_in| ≤ flux_balance hold.
#pragma once

#include <array>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/axis.h"
#include "core/volume.h"

namespace vp {

// Conductivity of each label value (index = label, 0..255), in the caller's unit; 0 = insulating.
using ConductivityTable = std::array<double, 256>;

struct TransportOptions {
  int axis = 2;                // 0 = x, 1 = y, 2 = z
  bool periodic = false;       // the four side faces wrap (inlet/outlet never do)
  double tolerance = 1e-6;     // relative residual ‖b − Ax‖₂/‖b‖₂
  double flux_balance = 1e-4;  // |I_in − I_out| / |I_in|
  long max_iterations = 1000;  // CG iterations in all
  bool keep_fields = false;    // return potential and current-density volumes
  bool keep_profile = true;    // return the through-plane profile
};

// One slice perpendicular to the transport axis.
struct ProfileSlice {
  double position_um = 0;           // slice centre along the axis
  double current_in = 0;            // current through the slice's inlet-side face
  double potential_mean = 0;        // mean potential over its percolating voxels (NaN if none)
  double percolating_fraction = 0;  // percolating voxels / voxels of the slice
};

struct TransportResult {
  int axis = 2;
  std::string status;    // "ok", "not_percolating", "not_converged"
  double sigma_eff = 0;  // unit of the conductivities
  double tau = 0;        // Σ ε_i σ_i / σ_eff (∞ when not percolating)
  double macmullin = 0;  // σ_ref / σ_eff
  double sigma_ref = 0;  // largest conductivity of the phases present
  // The conducting phases' volume fractions (JSON keys "porosity" / "porosity_percolating":
  // the conducting phase is the pore in a binary solve, not in a multi-phase one).
  double conducting_fraction = 0;    // fraction of voxels with σ > 0 (whole image)
  double percolating_fraction = 0;   // fraction of voxels with σ > 0 connected to both faces
  long iterations = 0;               // CG iterations
  double residual = 0;               // final relative residual ‖b − Ax‖/‖b‖
  double flux_in = 0, flux_out = 0;  // currents through the inlet / outlet (unit·µm·V)
  double flux_balance = 0;           // |I_in − I_out| / |I_in|
  double seconds = 0;                // wall time of this axis (connectivity + solve)
  int multigrid_levels = 0;
  double length_um = 0, area_um2 = 0;            // L and A used in σ_eff
  std::optional<Volume<float>> potential;        // V (inlet 1, outlet 0); 0 where no current flows
  std::optional<Volume<float>> current_density;  // |j| at voxel centres, unit·V/µm
  std::vector<ProfileSlice> profile;
};

// A phase that does not connect the two faces: σ_eff = 0 and τ = N_M = ∞ with that status, never a
// made-up number (both engines report it the same way).
inline void set_not_percolating(TransportResult& r) {
  r.status = "not_percolating";
  r.sigma_eff = 0;
  r.tau = std::numeric_limits<double>::infinity();
  r.macmullin = std::numeric_limits<double>::infinity();
  r.flux_balance = 0;
}

// L (along `axis`) and A (across it) of a sample of `dims` voxels of `spacing_um`, as σ_eff uses
// them (face-centred boundaries: L = N·h). One definition for every engine.
void set_sample_geometry(TransportResult& out, const Dims& dims, const Vec3& spacing_um, int axis);

// Throws InputError when the axis is not 0..2, a conductivity is negative or not finite, the
// volume is empty, or a tolerance is not positive.
TransportResult solve_transport(const Volume<std::uint8_t>& labels, const ConductivityTable& conductivity,
                                const TransportOptions& options = {});

// The same for a caller that needs the labels no more: their buffer becomes the solve's code
// volume, so the solve holds one byte per voxel less at its peak. Same results, bit for bit.
TransportResult solve_transport(Volume<std::uint8_t>&& labels, const ConductivityTable& conductivity,
                                const TransportOptions& options = {});

}  // namespace vp
