// How a volume is cut into z-slabs, one per MPI rank: rank r holds the slices
// [z_begin[r], z_begin[r+1]). The first nz % ranks ranks hold one slice more. MPI-free, so the
// readers (filters/io/slab_read.h) and the distributed kernels agree on the cut.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "core/volume.h"

namespace vp {

struct ZSlabLayout {
  Dims global;                   // the whole volume
  std::vector<index_t> z_begin;  // ranks + 1 entries, z_begin.back() == global.z
  int rank = 0;

  int ranks() const { return static_cast<int>(z_begin.size()) - 1; }
  index_t z0() const { return z_begin[static_cast<std::size_t>(rank)]; }
  index_t z1() const { return z_begin[static_cast<std::size_t>(rank) + 1]; }
  index_t slices() const { return z1() - z0(); }
  Dims local() const { return {global.x, global.y, slices()}; }
};

// Even cut of `global` into `ranks` slabs. Throws InputError when there are fewer slices than ranks.
inline ZSlabLayout even_z_slabs(const Dims& global, int ranks, int rank) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw InputError("z-slabs: rank " + std::to_string(rank) + " of " + std::to_string(ranks));
  if (global.z < ranks)
    throw InputError("the volume has " + std::to_string(global.z) + " z-slices, fewer than the " +
                     std::to_string(ranks) + " MPI ranks: run with at most " + std::to_string(global.z) + " ranks");
  ZSlabLayout l;
  l.global = global;
  l.rank = rank;
  l.z_begin.resize(static_cast<std::size_t>(ranks) + 1);
  const index_t base = global.z / ranks, extra = global.z % ranks;
  for (int r = 0; r < ranks; ++r)
    l.z_begin[static_cast<std::size_t>(r) + 1] = l.z_begin[static_cast<std::size_t>(r)] + base + (r < extra ? 1 : 0);
  return l;
}

}  // namespace vp
