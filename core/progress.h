// Progress on stderr (and into the run log) with elapsed time; thread-safe.
#pragma once

#include <chrono>
#include <fstream>
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

}  // namespace vp
