// The phantom generator's YAML spec (`voxpress phantom --spec FILE`): a composite spec plus the
// imaging model, validated with the house's Params so errors point at file:line:col.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/params.h"
#include "phantoms/phantom.h"

namespace vp::phantom {

struct PhantomJob {
  CompositeSpec composite;
  ImagingSpec imaging;
  bool fib_sem = false;  // modality: fib-sem (curtains; FIB-SEM spacing unless given)
  std::string series = "composite";
};

// Keys of each section, with types, units and defaults (validation and docs).
std::vector<ParamSpec> spec_top_level_params();
std::vector<ParamSpec> spec_fraction_params();
std::vector<ParamSpec> spec_am_particle_params();
std::vector<ParamSpec> spec_compaction_params();
std::vector<ParamSpec> spec_crack_params();
std::vector<ParamSpec> spec_imaging_params();

// Reads every key (absent keys keep the defaults of PhantomJob); throws InputError listing all
// problems as "file:line:col: key.path: message".
PhantomJob phantom_job_from_yaml(const YAML::Node& root, const std::string& file);
PhantomJob load_phantom_spec(const std::string& path);  // InputError when unreadable / not YAML

// "gaussian" | "poisson" | "none" (InputError otherwise, naming `where`).
NoiseModel parse_noise_model(const std::string& name, const std::string& where);

}  // namespace vp::phantom
