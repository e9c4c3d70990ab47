// Internal to the transport solve: connectivity-aware aggregation, i.e. building each coarse
// level of the multigrid hierarchy from the level above.
#pragma once

#include "metrics/transport/multigrid.h"

namespace vp::transport::detail {

// First coarse level from the voxels: the strongly connected pieces of each 2×2×2 cell.
CoarseLevel coarsen_fine(const FineLevel& F);

// Next coarse level from a coarse level: the nodes of each 2×2×2 group of cells, split into
// the pieces connected inside the group (by strong couplings only when by_strength). Sets S's
// parents (CoarseLevel::parent_piece or parent).
CoarseLevel coarsen_graph(CoarseLevel& S, bool by_strength);

}  // namespace vp::transport::detail
