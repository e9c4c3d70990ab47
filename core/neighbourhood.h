// The 13 grid steps of a 26-neighbourhood, one of each ± pair: 3 face, 6 edge and 4 corner
// directions, in this order (the Crofton weights of metrics/interfaces.cpp follow it).
#pragma once

#include <array>

namespace vp {

inline constexpr std::array<std::array<int, 3>, 13> kHalfNeighbourhood26{{{1, 0, 0},
                                                                          {0, 1, 0},
                                                                          {0, 0, 1},
                                                                          {1, 1, 0},
                                                                          {1, -1, 0},
                                                                          {1, 0, 1},
                                                                          {1, 0, -1},
                                                                          {0, 1, 1},
                                                                          {0, 1, -1},
                                                                          {1, 1, 1},
                                                                          {1, 1, -1},
                                                                          {1, -1, 1},
                                                                          {-1, 1, 1}}};

}  // namespace vp
