#include "core/stage.h"

#include <stdexcept>

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
