// Progress on stderr (and into the run log) with elapsed time; thread-safe.
#pragma once

#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>

namespace vp {

class Progress {
 public:
  explicit Progress(bool quiet = false);
  void set_quiet(bool quiet) { quiet_ = quiet; }
  void set_log(const std::string& path);  // also append every message to this file

  // "[   12.3 s] p050 / segment: text"
  void message(const std::string& sample, const std::string& stage, const std::string& text);
  // Fraction done within a long stage; printed at most every 2 s per (sample, stage).
  void fraction(const std::string& sample, const std::string& stage, double done);
  double elapsed_seconds() const;

 private:
  void emit(const std::string& line);
  bool quiet_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_fraction_;
  std::mutex mutex_;
  std::ofstream log_;
};

// Cooperative progress and cancellation inside long computations (the CG solve polls it every
// iteration). A host that runs them for another language (the Python module) installs a hook on
// its own thread for the duration of a call; the computation calls progress_point(done) from the
// thread that started it, at points where stopping is safe. The hook may report `done` (0..1, or
// NaN when unknown) and may throw to stop the computation (Ctrl-C from Python). Without a hook on
// the calling thread, progress_point does nothing, so worker threads and the CLI never pay for it.
using ProgressHook = std::function<void(double done)>;

class ScopedProgressHook {
 public:
  explicit ScopedProgressHook(ProgressHook hook);
  ~ScopedProgressHook();
  ScopedProgressHook(const ScopedProgressHook&) = delete;
  ScopedProgressHook& operator=(const ScopedProgressHook&) = delete;

 private:
  ProgressHook* previous_;
  ProgressHook hook_;
};

// A checkpoint: reports `done` (0..1 of the current range, NaN when unknown) to the calling
// thread's hook, which may throw to stop the computation. Safe to call from inside parallel loops:
// only the thread that installed the hook reports; on every other thread it does nothing.
void progress_point(double done);
// The same without a fraction: a place where stopping is safe (Ctrl-C is honoured here).
void cancellation_point();

// Maps the progress_point fractions of a nested computation into [low, high] of the enclosing
// one (step i of n of a command: [i/n, (i+1)/n]), so a caller sees one 0 -> 1 sweep over a
// whole call. Ranges nest; each restores the enclosing one when it ends.
class ScopedProgressRange {
 public:
  ScopedProgressRange(double low, double high);
  ~ScopedProgressRange();
  ScopedProgressRange(const ScopedProgressRange&) = delete;
  ScopedProgressRange& operator=(const ScopedProgressRange&) = delete;

 private:
  double previous_low_, previous_high_;
};

}  // namespace vp
