#include "core/stage.h"

#include <algorithm>
#include <stdexcept>

#include "core/atomic_file.h"

namespace vp {

std::string describe_data(unsigned flags) {
  std::string s;
  auto add = [&](unsigned bit, const char* name) {
    if (flags & bit) s += (s.empty() ? "" : ", ") + std::string(name);
  };
  add(kGrey, "grey");
  add(kLabels, "labels");
  add(kParticles, "particles");
  add(kCracks, "cracks");
  return s.empty() ? "nothing" : s;
}

void SampleContext::add(std::string metric, std::string phase, std::string axis, double value, std::string unit) {
  if (declared_metrics && std::none_of(declared_metrics->begin(), declared_metrics->end(),
                                       [&](const MetricSpec& m) { return m.name == metric; }))
    throw std::logic_error("stage '" + current_stage + "' emits metric '" + metric +
                           "', which its metrics() does not declare");
  rows.push_back({std::move(metric), std::move(phase), std::move(axis), value, std::move(unit), current_stage});
}

std::optional<std::filesystem::path> SampleContext::artifact(const std::string& file_name) {
  if (out_dir.empty()) return std::nullopt;
  artifacts.push_back(out_dir / file_name);
  return artifacts.back();
}

void SampleContext::write_artifact(const std::string& file_name, const std::string& bytes) {
  if (const auto path = artifact(file_name)) write_text_atomically(*path, bytes);
}

void run_stage(const Stage& stage, const Params& params, SampleContext& ctx) {
  ctx.current_stage = stage.name();
  ctx.details = nlohmann::json::object();
  ctx.declared_metrics = stage.metrics();
  try {
    stage.run(params, ctx);
  } catch (...) {
    ctx.declared_metrics.reset();
    throw;
  }
  ctx.declared_metrics.reset();
}

Registry& Registry::global() {
  static Registry registry;
  return registry;
}

void Registry::add(std::unique_ptr<Stage> stage) {
  if (this->stage(stage->name()) || batch_stage(stage->name()))
    throw std::logic_error("stage registered twice: " + stage->name());
  stages_.push_back(std::move(stage));
}
void Registry::add(std::unique_ptr<BatchStage> stage) {
  if (this->stage(stage->name()) || batch_stage(stage->name()))
    throw std::logic_error("stage registered twice: " + stage->name());
  batch_stages_.push_back(std::move(stage));
}
void Registry::add(Command command) {
  if (this->command(command.name)) throw std::logic_error("command registered twice: " + command.name);
  commands_.push_back(std::move(command));
}

const Stage* Registry::stage(const std::string& name) const {
  for (const auto& s : stages_)
    if (s->name() == name) return s.get();
  return nullptr;
}
const BatchStage* Registry::batch_stage(const std::string& name) const {
  for (const auto& s : batch_stages_)
    if (s->name() == name) return s.get();
  return nullptr;
}
const Command* Registry::command(const std::string& name) const {
  for (const auto& c : commands_)
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace vp
