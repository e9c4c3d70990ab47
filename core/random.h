// Counter-based random numbers: a value is a pure function of (seed, stream, index), so
// results never depend on the thread count or on the order of evaluation, and our own
// distributions replace std:: ones (whose algorithms are implementation-defined). The phantoms
// draw their geometry and imaging noise from it, and filters/segment the noise of the scans it
// simulates (end_members.h), so both draw the same way.
#pragma once

#include <cmath>
#include <cstdint>

namespace vp {

// SplitMix64's finaliser: a bijective 64-bit mixer with full avalanche.
inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline std::uint64_t hash3(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return mix64(mix64(mix64(seed) ^ (stream * 0xD1B54A32D192ED03ull)) ^ (index * 0x8CB92BA72F3D8DD7ull));
}

// [0, 1) with 53 random bits.
inline double unit_double(std::uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// Standard normal variate number `index` of a stream (Box–Muller on draws 2·index and
// 2·index + 1).
inline double normal_at(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  const double u1 = 1.0 - unit_double(hash3(seed, stream, 2 * index));  // (0, 1]
  const double u2 = unit_double(hash3(seed, stream, 2 * index + 1));
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// A sequential stream: the n-th draw is hash3(seed, stream, n).
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}
  std::uint64_t next() { return hash3(seed_, stream_, counter_++); }
  double uniform() { return unit_double(next()); }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  // Standard normal by Box–Muller (two draws, no cached second value).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Integer in [0, n).
  std::uint64_t below(std::uint64_t n) { return static_cast<std::uint64_t>(uniform() * static_cast<double>(n)); }

 private:
  std::uint64_t seed_, stream_, counter_ = 0;
};

}  // namespace vp
