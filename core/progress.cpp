#include "core/progress.h"

#include <cstdio>
#include <iostream>
#include <limits>

namespace vp {

Progress::Progress(bool quiet) : quiet_(quiet), start_(std::chrono::steady_clock::now()), last_fraction_(start_) {}

void Progress::set_log(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  log_.open(path, std::ios::app);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::message(const std::string& sample, const std::string& stage, const std::string& text) {
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "[%8.1f s] ", elapsed_seconds());
  std::string who = sample.empty() ? stage : stage.empty() ? sample : sample + " / " + stage;
  emit(std::string(stamp) + who + (who.empty() ? "" : ": ") + text);
}

void Progress::fraction(const std::string& sample, const std::string& stage, double done) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (now - last_fraction_ < std::chrono::seconds(2)) return;
    last_fraction_ = now;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%5.1f %%", 100.0 * done);
  message(sample, stage, text);
}

void Progress::emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!quiet_) std::cerr << line << '\n';
  if (log_.is_open()) log_ << line << '\n' << std::flush;
}

namespace {
thread_local ProgressHook* current_hook = nullptr;
thread_local double range_low = 0.0, range_high = 1.0;  // where this thread's fractions land
}  // namespace

ScopedProgressHook::ScopedProgressHook(ProgressHook hook) : previous_(current_hook), hook_(std::move(hook)) {
  current_hook = &hook_;
}

ScopedProgressHook::~ScopedProgressHook() { current_hook = previous_; }

void progress_point(double done) {
  if (current_hook && *current_hook) (*current_hook)(range_low + done * (range_high - range_low));  // NaN stays NaN
}

void cancellation_point() { progress_point(std::numeric_limits<double>::quiet_NaN()); }

ScopedProgressRange::ScopedProgressRange(double low, double high)
    : previous_low_(range_low), previous_high_(range_high) {
  const double span = previous_high_ - previous_low_;
  range_low = previous_low_ + low * span;
  range_high = previous_low_ + high * span;
}

ScopedProgressRange::~ScopedProgressRange() {
  range_low = previous_low_;
  range_high = previous_high_;
}

}  // namespace vp
