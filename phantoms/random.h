// The phantoms' named random streams; the generator itself is core/random.h.
#pragma once

#include <cstdint>

#include "core/random.h"

namespace vp::phantom {

using vp::hash3;
using vp::mix64;
using vp::normal_at;
using vp::Rng;
using vp::unit_double;

// Named streams so that adding draws to one part never shifts another part's numbers.
enum Stream : std::uint64_t {
  kStreamAm = 1,
  kStreamSe,
  kStreamBinder,
  kStreamGrains,
  kStreamCracksSe,
  kStreamCracksAm,
  kStreamSpheres,
  kStreamNoise,
  kStreamRings,
  kStreamCurtains,
  kStreamTexture,
};

}  // namespace vp::phantom
