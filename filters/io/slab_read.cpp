#include "filters/io/slab_read.h"

namespace vp {

SlabRead read_z_slab(ReadOptions options, int ranks, int rank) {
  if (options.roi) throw InputError(options.path + ": a z-slab read takes no region of interest");
  const VolumeInfo info = probe_volume(options);
  SlabRead out;
  try {
    out.layout = even_z_slabs(info.dims, ranks, rank);
  } catch (const InputError& e) {
    throw InputError(options.path + ": " + e.what());
  }
  options.roi = Box{{0, 0, out.layout.z0()}, {info.dims.x, info.dims.y, out.layout.slices()}};
  options.hash = false;
  try {
    out.read = read_volume(options);
  } catch (const InputError& e) {
    throw InputError(options.path + ": z-slices [" + std::to_string(out.layout.z0()) + ", " +
                     std::to_string(out.layout.z1()) + ") of rank " + std::to_string(rank) + ": " + e.what());
  }
  return out;
}

}  // namespace vp
