// The foundation's commands (run, validate, info, stages) and the first stage of every batch.
#include "pipeline/catalog.h"

namespace vp {

// Defined in pipeline/commands/<name>_command.cpp.
Command make_run_command();
Command make_validate_command();
Command make_info_command();
Command make_stages_command();
std::unique_ptr<Stage> make_volume_fraction_stage();  // pipeline/stages/metrics_stages.cpp

void register_pipeline(Registry& registry) {
  registry.add(make_run_command());
  registry.add(make_validate_command());
  registry.add(make_info_command());
  registry.add(make_stages_command());
  // volume_fraction first: `stages` lists it before the segment stages.
  registry.add(make_volume_fraction_stage());
}

}  // namespace vp
