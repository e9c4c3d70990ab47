// Internal to the transport solve: the fine level's operator. Everything that knows how a
// voxel couples to its neighbours and to the electrodes (the boundary conditions) is here and
// in fine_operator.cpp: the conductance look-ups, the smoother, the transfer to and from the
// first coarse level, the product A x, the true residual and the currents.
#pragma once

#include <type_traits>

#include "metrics/transport/multigrid_grid.h"

namespace vp::transport::detail {

// Fine level through the generic Cell interface; Real = double reads the exact tables.
template <class Real = float>
struct FineViewT {
  const FineLevel& L;
  const Grid& grid() const { return L.grid; }
  bool active(const Cell& c) const { return L.code[c.i] != 0; }
  bool active_at(index_t i) const { return L.code[i] != 0; }
  const Real* faces(int a) const {
    if constexpr (std::is_same_v<Real, double>) return L.face_exact[a].data();
    else return L.face[a].data();
  }
  Real dirichlet(int code) const {
    if constexpr (std::is_same_v<Real, double>) return L.dirichlet_exact[code];
    else return L.dirichlet[code];
  }
  Real coupling(const Cell& c, int k) const {
    const index_t j = c.nb[k];
    return j < 0 ? Real(0) : faces(k >> 1)[L.code[c.i] * L.codes + L.code[j]];
  }
  Real electrode_low(const Cell& c) const { return c.at[L.grid.axis] == 0 ? dirichlet(L.code[c.i]) : Real(0); }
  Real electrode_high(const Cell& c) const {
    return c.at[L.grid.axis] == L.grid.n[L.grid.axis] - 1 ? dirichlet(L.code[c.i]) : Real(0);
  }
};
using FineView = FineViewT<float>;
using ExactView = FineViewT<double>;

// Gauss-Seidel on the fine level, colour by colour (forward or reverse order of colours).
void smooth_fine(const FineLevel& F, const float* b, float* x, bool forward);

// Restriction (Pᵀ) of the fine residual b − A x to the first coarse level; clears C.x.
void restrict_fine(const FineLevel& F, const float* b, const float* x, CoarseLevel& C);

// x += P C.x: the first coarse level's correction, piecewise constant over its pieces.
void prolong_fine(const FineLevel& F, const CoarseLevel& C, float* x);

}  // namespace vp::transport::detail
