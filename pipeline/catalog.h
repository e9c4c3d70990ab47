// Every stage and CLI command voxpress knows, registered in one place.
// Each area owns a register_<area>() in its pipeline/stages/<area>_stages.cpp
// (or pipeline/commands/) and adds one line to register_all().
#pragma once

#include "core/stage.h"

namespace vp {

void register_all(Registry& registry);  // idempotent

void register_pipeline(Registry& registry);   // run, validate, info, stages; volume_fraction stage
void register_phantoms(Registry& registry);   // phantom
void register_transport(Registry& registry);  // solve; transport stage
void register_segment(Registry& registry);    // segment, preprocess stages; segment command
void register_metrics(Registry& registry);    // measure; metric stages
void register_cracks(Registry& registry);     // cracks
void register_report(Registry& registry);     // report; series/report batch stages
void register_dvc(Registry& registry);        // dvc command; dvc batch stage

}  // namespace vp
