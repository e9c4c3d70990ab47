#include "pipeline/catalog.h"

namespace vp {

void register_all([[maybe_unused]] Registry& registry) {
  static bool done = false;
  if (done) return;
  done = true;
  // Order is the order of `voxpress --help`. One line per area.
  register_pipeline(registry);
  register_segment(registry);
  register_metrics(registry);
  register_transport(registry);
  register_cracks(registry);
  register_report(registry);
  register_dvc(registry);
  register_phantoms(registry);
}

}  // namespace vp
