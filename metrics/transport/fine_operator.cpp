#include "metrics/transport/fine_operator.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

namespace vp::transport {

namespace detail {
namespace {

// Electrode couplings of a row when the transport axis is y or z: how many of the row's
// voxels' faces lie on the inlet (low) and on the outlet (high).
struct RowElectrodes {
  bool low = false, high = false;
};
inline RowElectrodes row_electrodes(const Grid& g, index_t y, index_t z) {
  RowElectrodes e;
  if (g.axis == 1) e.low = y == 0, e.high = y == g.n[1] - 1;
  if (g.axis == 2) e.low = z == 0, e.high = z == g.n[2] - 1;
  return e;
}

// Byte j of kExpandBits[v] is bit j of v.
constexpr auto kExpandBits = [] {
  std::array<std::array<std::uint8_t, 8>, 256> t{};
  for (int v = 0; v < 256; ++v)
    for (int j = 0; j < 8; ++j) t[v][j] = static_cast<std::uint8_t>(v >> j & 1);
  return t;
}();

// Byte j of kBitsBefore[v] is the number of bits of v below bit j: eight counts in one word, so
// that a word's running count is added to eight of them at once (no byte carries: counts < 64 + 8).
constexpr auto kBitsBefore = [] {
  std::array<std::uint64_t, 256> t{};
  for (int v = 0; v < 256; ++v)
    for (int j = 1, count = 0; j < 8; ++j) count += v >> (j - 1) & 1, t[v] |= std::uint64_t(count) << (8 * j);
  return t;
}();

// The 64 bits of a volume of bits from voxel p on (those from `end` on cleared; p < end).
inline std::uint64_t bits_from(const std::uint64_t* bits, index_t p, index_t end) {
  const index_t w = p >> 6, b = p & 63;
  std::uint64_t v = bits[w] >> b;
  if (b && end - p > 64 - b) v |= bits[w + 1] << (64 - b);  // the word after holds some of them
  return end - p < 64 ? v & ((std::uint64_t{1} << (end - p)) - 1) : v;
}

// Bit j of the result set where byte j of v (8 code bytes, x ascending) is non-zero: each byte's
// high bit raised where it is non-zero, then the eight high bits gathered by one multiply (each
// lands on its own bit of the top byte; no two partial products share a bit, so nothing carries).
inline std::uint64_t nonzero_bytes(std::uint64_t v) {
  constexpr std::uint64_t kLow7 = 0x7F7F7F7F7F7F7F7Full;
  const std::uint64_t high = (((v & kLow7) + kLow7) | v) & ~kLow7;
  return ((high >> 7) * 0x0102040810204080ull) >> 56;
}

// Identifies one pass of the row kernels over the grid (one colour of a sweep, a restriction, a
// product, a residual): a thread's code rows are reused within one pass only, so a later
// solve's code volume at the same address never reads a row prepared from an earlier one.
std::uint64_t new_row_pass() {
  static std::atomic<std::uint64_t> passes{0};
  return ++passes;
}

// One row of the code volume as the row kernels read it: its code bytes, its carrying voxels as
// bits (bit x % 64 of word x / 64), and the number of carrying voxels before x in the row as
// word_before[x / 64] + before[x] (before the word, and before x inside it: a byte), so the
// index of voxel x among the carrying voxels is the row's row_start plus index(x). A kernel then
// visits only the carrying voxels of its colour, found a word of bits at a time, instead of
// testing every voxel and stepping a running index per neighbour row over each.
struct CodeRow {
  const std::uint8_t* code;
  const std::uint8_t* before;
  const std::uint32_t* word_before;
  const std::uint64_t* carrying;
  index_t index(index_t x) const { return word_before[x >> 6] + before[x]; }
};

// A thread's prepared rows (a one-conductivity volume's bits unpacked to bytes, and the counts
// before each x), kept for the rest of a pass. Every row is a neighbour of four others (y ± 1,
// z ± 1), so preparing the five rows of each row kernel call prepared every row five times per
// pass. Here a row goes to the slot of its y mod m and z mod 4 (m = n_y where 4 planes fit in
// kBytes), which remembers the row it holds: a thread walking rows in memory order prepares
// each once per pass, and the four fine rows of a coarse row (restrict_fine) find the planes
// z − 1 … z + 2 they read. A row reached through a periodic side's wrap could fall in the slot
// of another row of the same call: those have four slots of their own, prepared at every call.
class PreparedRows {
 public:
  void start(const Grid& g, std::uint64_t pass) {
    if (pass == pass_) return;
    pass_ = pass, n0_ = g.n[0];
    m_ = std::min(g.n[1], std::max<index_t>(kBytes / (kPlanes * n0_ * kBytesPerVoxel), 3));
    words_ = (n0_ + 63) / 64, stride_ = 64 * words_;
    held_.assign(static_cast<std::size_t>(kPlanes * m_), -1);
    const auto slots = static_cast<std::size_t>(kPlanes * m_ + 5);
    const auto size = slots * static_cast<std::size_t>(stride_);
    if (bytes_.size() < size) bytes_.resize(size), before_.resize(size);
    if (carrying_.size() < slots * words_) carrying_.resize(slots * words_), word_before_.resize(slots * words_);
    // The last slot stands in for a missing row: no carrying voxels.
    const index_t none = kPlanes * m_ + 4;
    std::fill_n(before_.data() + none * stride_, stride_, std::uint8_t{0});
    std::fill_n(word_before_.data() + none * words_, words_, 0u);
    std::fill_n(carrying_.data() + none * words_, words_, std::uint64_t{0});
    std::fill_n(carrying_.data() + (kPlanes * m_ + 4) * words_, words_, std::uint64_t{0});
  }
  // Row (y, z), whose first voxel is base.
  CodeRow row(const CodeVolume& code, index_t base, index_t y, index_t z) {
    const index_t slot = (z % kPlanes) * m_ + y % m_;
    if (held_[static_cast<std::size_t>(slot)] != base) {
      prepare(code, base, slot);
      held_[static_cast<std::size_t>(slot)] = base;
    }
    return at(code, base, slot);
  }
  // The row reached through a wrap, in direction k of Cell::nb (2: −y, 3: +y, 4: −z, 5: +z).
  CodeRow wrapped(const CodeVolume& code, index_t base, int k) {
    const index_t slot = kPlanes * m_ + k - 2;
    prepare(code, base, slot);
    return at(code, base, slot);
  }
  // A missing row (a non-periodic side): codes 0 (none: n_x zero bytes).
  CodeRow missing(const std::uint8_t* none) const {
    const index_t slot = kPlanes * m_ + 4;
    return {none, before_.data() + slot * stride_, word_before_.data() + slot * words_,
            carrying_.data() + slot * words_};
  }

 private:
  static constexpr index_t kPlanes = 4;
  static constexpr index_t kBytesPerVoxel = 2;
  static constexpr index_t kBytes = index_t{2} << 22;  // per thread: 4 planes of 1024²
  CodeRow at(const CodeVolume& code, index_t base, index_t slot) const {
    const std::uint8_t* c = code.bits ? bytes_.data() + slot * stride_ : code.bytes + base;
    return {c, before_.data() + slot * stride_, word_before_.data() + slot * words_, carrying_.data() + slot * words_};
  }
  // The row's carrying voxels as bits, then (a byte of them at a time) its codes where the volume
  // is bits, and the count before each x.
  void prepare(const CodeVolume& code, index_t base, index_t slot) {
    std::uint64_t* carrying = carrying_.data() + slot * words_;
    if (code.bits) {
      for (index_t w = 0; w < words_; ++w) carrying[w] = bits_from(code.bits, base + 64 * w, base + n0_);
    } else {
      // Eight code bytes at a time (a bit per voxel read-modify-written cost ≈ 10 % of a 256³
      // three-phase solve, more than the visits it saves where most voxels carry).
      const std::uint8_t* row = code.bytes + base;
      for (index_t w = 0; w < words_; ++w) {
        std::uint64_t word = 0;
        for (index_t b = 0, x = 64 * w; b < 8 && x < n0_; ++b, x += 8) {
          std::uint64_t v = 0;
          if (n0_ - x >= 8) std::memcpy(&v, row + x, 8);
          else std::memcpy(&v, row + x, static_cast<std::size_t>(n0_ - x));
          word |= nonzero_bytes(v) << (8 * b);
        }
        carrying[w] = word;
      }
    }
    std::uint8_t* bytes = bytes_.data() + slot * stride_;
    std::uint8_t* before = before_.data() + slot * stride_;
    std::uint32_t* word_before = word_before_.data() + slot * words_;
    std::uint32_t count = 0;
    for (index_t w = 0; w < words_; ++w) {  // the stride is whole words: the last word's tail is room
      word_before[w] = count;
      std::uint64_t in_word = 0;  // carrying voxels of the word before byte b, in every byte
      for (index_t b = 0; b < 8; ++b) {
        const auto v = static_cast<std::uint8_t>(carrying[w] >> (8 * b));
        const index_t x = 64 * w + 8 * b;
        if (code.bits) std::memcpy(bytes + x, kExpandBits[v].data(), 8);
        const std::uint64_t counts = in_word + kBitsBefore[v];
        std::memcpy(before + x, &counts, 8);
        in_word += (std::uint64_t(kBitsBefore[v] >> 56) + (v >> 7)) * 0x0101010101010101ull;
      }
      count += static_cast<std::uint32_t>(in_word & 0xFF);
    }
  }
  std::uint64_t pass_ = 0;
  index_t n0_ = 0, m_ = 0, words_ = 0, stride_ = 0;  // stride_: n0_ rounded up to whole words
  std::vector<index_t> held_;                        // first voxel of the row in each slot, −1: none
  std::vector<std::uint8_t> bytes_;
  std::vector<std::uint8_t> before_;
  std::vector<std::uint32_t> word_before_;
  std::vector<std::uint64_t> carrying_;
};

// Row (y, z) and its four neighbouring rows (a missing row reads zero codes), as CodeRows.
struct CodeRows {
  CodeRow c, ym, yp, zm, zp;
};
inline CodeRows code_rows(const FineLevel& L, const Row& r, index_t y, index_t z, std::uint64_t pass) {
  thread_local PreparedRows rows;
  const Grid& g = L.grid;
  rows.start(g, pass);
  const CodeVolume& code = L.code;
  const CodeRow none = rows.missing(L.no_code.data());
  const bool first_y = y == 0, last_y = y == g.n[1] - 1, first_z = z == 0, last_z = z == g.n[2] - 1;
  CodeRows out;
  out.c = rows.row(code, r.base, y, z);
  out.ym = r.ym < 0 ? none : first_y ? rows.wrapped(code, r.ym, 2) : rows.row(code, r.ym, y - 1, z);
  out.yp = r.yp < 0 ? none : last_y ? rows.wrapped(code, r.yp, 3) : rows.row(code, r.yp, y + 1, z);
  out.zm = r.zm < 0 ? none : first_z ? rows.wrapped(code, r.zm, 4) : rows.row(code, r.zm, y, z - 1);
  out.zp = r.zp < 0 ? none : last_z ? rows.wrapped(code, r.zp, 5) : rows.row(code, r.zp, y, z + 1);
  return out;
}

// Fast row kernels: f(k, x, S, D, inlet) for each carrying voxel of the row and colour, with
// k its index among the carrying voxels (the index into the solver's vectors), x its position
// in the row, S = Σ G_ij x_j, D = Σ G_ij + electrode couplings and inlet = the voxel's coupling
// to the inlet (its right-hand side for inlet potential 1). A neighbour's index is its row's
// start plus the carrying voxels before it in that row (CodeRow::before), so the voxels that
// carry nothing or have the other colour cost only the test of their code. A neighbour that
// carries nothing has conductance 0 and reads the voxel's own value (G·x = ±0, so S and D are
// those of the whole-grid vectors, bit for bit); missing neighbour rows read a row of zero
// codes, so the inner loop has no branches for them.
template <class T, class Acc, class F>
inline void fine_row(const FineLevel& L, index_t y, index_t z, int colour, std::uint64_t pass, const T* X, F&& f) {
  const Grid& g = L.grid;
  const Row r = row_of(g, y, z);
  const index_t n0 = g.n[0];
  const int nc = L.codes;
  auto start = [&](index_t base) { return base < 0 ? index_t(0) : L.row_start[static_cast<std::size_t>(base / n0)]; };
  const index_t first = start(r.base), last = L.row_start[static_cast<std::size_t>(r.base / n0 + 1)] - 1;
  if (first > last) return;  // no carrying voxel in this row
  const CodeRows rows = code_rows(L, r, y, z, pass);
  const std::uint8_t *c = rows.c.code, *cym = rows.ym.code, *cyp = rows.yp.code, *czm = rows.zm.code,
                     *czp = rows.zp.code;
  const index_t kym = start(r.ym), kyp = start(r.yp), kzm = start(r.zm), kzp = start(r.zp);
  const FineViewT<Acc> tables{L};
  const Acc* fx = tables.faces(0);
  const Acc* fy = tables.faces(1);
  const Acc* fz = tables.faces(2);
  const RowElectrodes e = row_electrodes(g, y, z);
  // Visits the voxel at x, which carries current.
  auto visit = [&](index_t x, int ci) __attribute__((always_inline)) {
    const index_t k = first + rows.c.index(x);
    const int kk = ci * nc;
    Acc S = 0, D = 0, G;
    const index_t xm = x > 0 ? x - 1 : g.wrap[0] ? n0 - 1 : -1;
    const index_t xp = x < n0 - 1 ? x + 1 : g.wrap[0] ? 0 : -1;
    if (xm >= 0) {
      const index_t j = !c[xm] ? k : x > 0 ? k - 1 : last;
      G = fx[kk + c[xm]], S += G * static_cast<Acc>(X[j]), D += G;
    }
    if (xp >= 0) {
      const index_t j = !c[xp] ? k : x < n0 - 1 ? k + 1 : first;
      G = fx[kk + c[xp]], S += G * static_cast<Acc>(X[j]), D += G;
    }
    G = fy[kk + cym[x]], S += G * static_cast<Acc>(X[cym[x] ? kym + rows.ym.index(x) : k]), D += G;
    G = fy[kk + cyp[x]], S += G * static_cast<Acc>(X[cyp[x] ? kyp + rows.yp.index(x) : k]), D += G;
    G = fz[kk + czm[x]], S += G * static_cast<Acc>(X[czm[x] ? kzm + rows.zm.index(x) : k]), D += G;
    G = fz[kk + czp[x]], S += G * static_cast<Acc>(X[czp[x] ? kzp + rows.zp.index(x) : k]), D += G;
    const bool low = g.axis == 0 ? x == 0 : e.low;
    const bool high = g.axis == 0 ? x == n0 - 1 : e.high;
    const Acc dir = tables.dirichlet(ci);
    D += (low ? dir : Acc(0)) + (high ? dir : Acc(0));
    f(k, x, S, D, low ? dir : Acc(0));
  };
  // The carrying voxels of the colour, a word at a time: with two colours every other x, from
  // the first of this colour (64 is even, so the same bits of every word).
  const int yz = colour < 0 ? 0 : g.colour_term[1][y] + g.colour_term[2][z];
  const std::uint64_t colour_bits = colour < 0 || g.colours != 2 ? ~std::uint64_t{0}
                                    : ((colour - yz) & 1)        ? 0xAAAAAAAAAAAAAAAAull
                                                                 : 0x5555555555555555ull;
  const std::uint64_t* carrying = rows.c.carrying;
  for (index_t w = 0, words = (n0 + 63) / 64; w < words; ++w)
    for (std::uint64_t bits = carrying[w] & colour_bits; bits; bits &= bits - 1) {
      const index_t x = 64 * w + std::countr_zero(bits);
      if (colour < 0 || g.colours == 2 || (g.colour_term[0][x] + yz) % g.colours == colour) visit(x, c[x]);
    }
}

template <class T, class Acc, class F>
inline void level_row(const FineView& v, index_t y, index_t z, int colour, std::uint64_t pass, const T* X, F&& f) {
  fine_row<T, Acc>(v.L, y, z, colour, pass, X, f);
}

// Indices among the carrying voxels of row (y, z) of the fine grid: idx[x], -1 where none.
void row_indices(const FineLevel& L, index_t y, index_t z, index_t* idx) {
  const index_t n0 = L.grid.n[0], row = y + L.grid.n[1] * z;
  index_t k = L.row_start[static_cast<std::size_t>(row)];
  std::fill(idx, idx + n0, index_t(-1));
  L.code.for_each_carrying(row * n0, n0, [&](index_t x) { idx[x] = k++; });
}

}  // namespace

void smooth_fine(const FineLevel& F, const float* b, float* x, bool forward) {
  const FineView v{F};
  const Grid& g = F.grid;
  for (int step = 0; step < g.colours; ++step) {
    const int colour = forward ? step : g.colours - 1 - step;
    const std::uint64_t pass = new_row_pass();
    parallel_rows(g, [&](index_t y, index_t z) {
      level_row<float, float>(v, y, z, colour, pass, x, [&](index_t k, index_t, float S, float D, float) {
        if (D > 0) x[k] = (b[k] + S) / D;
      });
    });
  }
}

// Restriction (Pᵀ) of the fine residual b − A x to the first coarse level; clears C.x.
void restrict_fine(const FineLevel& F, const float* b, const float* x, CoarseLevel& C) {
  const FineView v{F};
  const Grid& f = F.grid;
  const Grid& g = C.grid;
  const std::uint64_t pass = new_row_pass();
  parallel_rows(g, [&](index_t Y, index_t Z) {
    clear_coarse_row(C, Y, Z);
    const auto [y0, y1] = child_range(f, 1, Y);
    const auto [z0, z1] = child_range(f, 2, Z);
    for (index_t z = z0; z <= z1; ++z)
      for (index_t y = y0; y <= y1; ++y)
        level_row<float, float>(v, y, z, -1, pass, x, [&](index_t k, index_t xi, float S, float D, float) {
          if (D > 0) C.b[fine_parent(f, C, xi, y, z)] += b[k] - (D * x[k] - S);
        });
  });
}

void prolong_fine(const FineLevel& F, const CoarseLevel& C, float* x) {
  const Grid& f = F.grid;
  parallel_rows(f, [&](index_t y, index_t z) {
    const index_t base = cell_index(f, 0, y, z);
    index_t k = F.row_start[static_cast<std::size_t>(y + f.n[1] * z)];
    F.code.for_each_carrying(base, f.n[0], [&](index_t i) { x[k++] += C.x[fine_parent(f, C, i, y, z)]; });
  });
}

}  // namespace detail

using namespace detail;

void Multigrid::apply(const float* x, float* y) const {
  const FineView v{fine_};
  const Grid& g = fine_.grid;
  const std::uint64_t pass = new_row_pass();
  parallel_rows(g, [&](index_t yy, index_t zz) {
    level_row<float, float>(v, yy, zz, -1, pass, x,
                            [&](index_t k, index_t, float S, float D, float) { y[k] = D * x[k] - S; });
  });
}

void number_carrying_voxels(FineLevel& fine) {
  const Grid& g = fine.grid;
  const index_t n0 = g.n[0];
  fine.row_start.assign(static_cast<std::size_t>(g.rows()) + 1, 0);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, g.rows(), 256), [&](const tbb::blocked_range<index_t>& rows) {
    for (index_t row = rows.begin(); row < rows.end(); ++row) {
      fine.row_start[static_cast<std::size_t>(row) + 1] = fine.code.count_carrying(row * n0, n0);
    }
  });
  for (std::size_t row = 1; row < fine.row_start.size(); ++row) fine.row_start[row] += fine.row_start[row - 1];
}

index_t carrying_before(const FineLevel& fine, index_t i) {
  const index_t n0 = fine.grid.n[0], row = i / n0;
  if (row >= fine.grid.rows()) return fine.carrying();
  return fine.row_start[static_cast<std::size_t>(row)] + fine.code.count_carrying(row * n0, i - row * n0);
}

index_t carrying_index(const FineLevel& fine, index_t x, index_t y, index_t z) {
  const index_t n0 = fine.grid.n[0], row = y + fine.grid.n[1] * z;
  if (!fine.code[row * n0 + x]) return -1;
  if (x == n0 - 1) return fine.row_start[static_cast<std::size_t>(row) + 1] - 1;
  return carrying_before(fine, row * n0 + x);
}

std::vector<index_t> plane_indices(const FineLevel& fine, int a, index_t t) {
  const Grid& g = fine.grid;
  const int b = (a + 1) % 3;
  const index_t nb = g.n[b];
  std::vector<index_t> out(static_cast<std::size_t>(g.n[b] * g.n[(a + 2) % 3]));
  if (a == 0) {  // u = y, w = z: one voxel per row
    for (index_t z = 0; z < g.n[2]; ++z)
      for (index_t y = 0; y < g.n[1]; ++y) out[static_cast<std::size_t>(z * nb + y)] = carrying_index(fine, t, y, z);
    return out;
  }
  std::vector<index_t> idx(static_cast<std::size_t>(g.n[0]));
  const index_t rows = a == 1 ? g.n[2] : g.n[1];
  for (index_t q = 0; q < rows; ++q) {
    // a = 1: row (t, z = q), u = z, w = x; a = 2: row (y = q, t), u = x, w = y.
    if (a == 1) row_indices(fine, t, q, idx.data());
    else row_indices(fine, q, t, idx.data());
    for (index_t x = 0; x < g.n[0]; ++x)
      out[static_cast<std::size_t>(a == 1 ? x * nb + q : q * nb + x)] = idx[static_cast<std::size_t>(x)];
  }
  return out;
}

double true_residual(const FineLevel& fine, const double* x, float* r, double* b_norm2) {
  const FineView v{fine};
  const Grid& g = fine.grid;
  std::vector<double> b2(static_cast<std::size_t>(g.rows()), 0.0);
  const std::uint64_t pass = new_row_pass();
  const double r2 = deterministic_row_sum(g, [&](index_t y, index_t z) {
    double acc = 0, bacc = 0;
    level_row<double, double>(v, y, z, -1, pass, x, [&](index_t k, index_t, double S, double D, double inlet) {
      if (!(D > 0)) {
        r[k] = 0;
        return;
      }
      const double b = inlet;  // inlet at potential 1, outlet at 0
      const double res = b - (D * x[k] - S);
      r[k] = static_cast<float>(res);
      acc += res * res;
      bacc += b * b;
    });
    b2[static_cast<std::size_t>(y + g.n[1] * z)] = bacc;
    return acc;
  });
  if (b_norm2) {
    double s = 0;
    for (double v2 : b2) s += v2;
    *b_norm2 = s;
  }
  return r2;
}

FaceCurrents electrode_currents(const FineLevel& fine, const double* x) {
  const ExactView v{fine};
  const Grid& g = fine.grid;
  const int a = g.axis, b = (a + 1) % 3, d = (a + 2) % 3;
  FaceCurrents out;
  for (index_t t : {index_t(0), g.n[a] - 1}) {
    double in = 0, outflow = 0;
    const std::vector<index_t> plane = plane_indices(fine, a, t);
    for (index_t v2 = 0; v2 < g.n[d]; ++v2)
      for (index_t u = 0; u < g.n[b]; ++u) {
        const index_t k = plane[static_cast<std::size_t>(v2 * g.n[b] + u)];
        if (k < 0) continue;
        std::array<index_t, 3> p;
        p[a] = t, p[b] = u, p[d] = v2;
        const Cell c = cell_at(g, p[0], p[1], p[2]);
        if (t == 0) in += static_cast<double>(v.electrode_low(c)) * (1.0 - x[k]);
        if (t == g.n[a] - 1) outflow += static_cast<double>(v.electrode_high(c)) * x[k];
      }
    if (t == 0) out.in = in;
    if (t == g.n[a] - 1) out.out = outflow;
  }
  return out;
}

std::vector<double> plane_currents(const FineLevel& fine, const double* x) {
  const Grid& g = fine.grid;
  const int a = g.axis, b = (a + 1) % 3, d = (a + 2) % 3;
  const index_t N = g.n[a];
  std::vector<double> out(static_cast<std::size_t>(N + 1), 0.0);
  if (a == 0) {
    // Along x a plane is strided by n_x: walk the rows in memory order instead, one block of
    // planes per task. Each plane still sums z outer, y inner: the same order, the same bits.
    const CodeVolume& code = fine.code;
    const int nc = fine.codes;
    const double* fx = fine.face_exact[0].data();
    const double* dir = fine.dirichlet_exact.data();
    tbb::parallel_for(tbb::blocked_range<index_t>(0, N + 1, 32), [&](const tbb::blocked_range<index_t>& planes) {
      // The block reads the voxels at x in [lo, hi] of each row: only those need an index.
      const index_t lo = std::max<index_t>(planes.begin() - 1, 0), hi = std::min(planes.end() - 1, N - 1);
      std::vector<index_t> idx(static_cast<std::size_t>(N));
      for (index_t z = 0; z < g.n[2]; ++z)
        for (index_t y = 0; y < g.n[1]; ++y) {
          const index_t row = z * g.n[1] + y, base = row * N;
          index_t k = fine.row_start[static_cast<std::size_t>(row)];
          k += code.count_carrying(base, lo);
          for (index_t xi = lo; xi <= hi; ++xi) idx[static_cast<std::size_t>(xi)] = code[base + xi] ? k++ : -1;
          for (index_t t = planes.begin(); t < planes.end(); ++t) {
            const index_t xt = t < N ? t : N - 1;
            const index_t i = base + xt;
            const int ci = code[i];
            if (!ci) continue;
            const double xi = x[idx[static_cast<std::size_t>(xt)]];
            double& sum = out[static_cast<std::size_t>(t)];
            if (t == 0) sum += dir[ci] * (1.0 - xi);
            else if (t == N) sum += dir[ci] * xi;
            else {
              const index_t km = idx[static_cast<std::size_t>(xt - 1)];
              sum += fx[ci * nc + code[i - 1]] * ((km < 0 ? 0.0 : x[km]) - xi);
            }
          }
        }
    });
    return out;
  }
  // Along y or z the plane's voxels lie in whole rows: walk them in memory order with running
  // indices into the plane and the plane before, keep each voxel's term at its place in the
  // plane (w outer, u inner), then add the terms in that order: the same sum, bit for bit.
  const CodeVolume& code = fine.code;
  const int nc = fine.codes;
  const index_t n0 = g.n[0], nu = g.n[b];
  const double* fa = fine.face_exact[static_cast<std::size_t>(a)].data();
  const double* dir = fine.dirichlet_exact.data();
  tbb::parallel_for(index_t(0), N + 1, [&](index_t t) {
    const index_t ts = t < N ? t : N - 1;
    const bool inner = t > 0 && t < N;  // a plane between two slices: coupled to the one before
    std::vector<double> term(static_cast<std::size_t>(g.n[b] * g.n[d]));
    std::vector<std::uint8_t> carries(term.size(), 0);
    const index_t rows = a == 1 ? g.n[2] : g.n[1];
    for (index_t q = 0; q < rows; ++q) {
      // a = 1: row (y = ts, z = q), u = z, w = x; a = 2: row (y = q, z = ts), u = x, w = y.
      const index_t row = a == 1 ? ts + g.n[1] * q : q + g.n[1] * ts;
      const index_t prev = a == 1 ? row - 1 : row - g.n[1];  // the same row in slice t − 1
      const index_t c = row * n0, cb = prev * n0;            // first voxels of the two rows
      index_t k = fine.row_start[static_cast<std::size_t>(row)];
      index_t kb = inner ? fine.row_start[static_cast<std::size_t>(prev)] : 0;
      for (index_t xi = 0; xi < n0; ++xi) {
        const int ci = code[c + xi], cbi = inner ? code[cb + xi] : 0;
        if (ci) {
          const auto at = static_cast<std::size_t>(a == 1 ? xi * nu + q : q * nu + xi);
          const double xk = x[k++];
          if (t == 0) term[at] = dir[ci] * (1.0 - xk);
          else if (t == N) term[at] = dir[ci] * xk;
          else term[at] = fa[ci * nc + cbi] * ((cbi ? x[kb] : 0.0) - xk);
          carries[at] = 1;
        }
        kb += cbi != 0;
      }
    }
    double sum = 0;  // one plane summed serially: fixed order
    for (std::size_t at = 0; at < term.size(); ++at)
      if (carries[at]) sum += term[at];
    out[static_cast<std::size_t>(t)] = sum;
  });
  return out;
}

void current_density(const FineLevel& fine, const double* x, const std::array<double, 3>& h, float* out) {
  const ExactView v{fine};
  const Grid& g = fine.grid;
  const double area[3] = {h[1] * h[2], h[0] * h[2], h[0] * h[1]};
  const std::size_t n0 = static_cast<std::size_t>(g.n[0]);
  parallel_rows(g, [&](index_t y, index_t z) {
    // Indices of this row's voxels and of its neighbours across y and z (-1: carries nothing).
    std::vector<index_t> idx(5 * n0, -1);
    const Row r = row_of(g, y, z);
    const index_t rows_at[5] = {r.base, r.ym, r.yp, r.zm, r.zp};
    for (int q = 0; q < 5; ++q)
      if (rows_at[q] >= 0) {
        const index_t row = rows_at[q] / g.n[0];
        row_indices(fine, row % g.n[1], row / g.n[1], idx.data() + q * n0);
      }
    // The potential of voxel j of the whole grid (0 where it carries nothing, as before).
    auto potential = [&](const Cell& c, int k) {
      const index_t j = c.nb[k];
      index_t at;
      if (k < 2) at = idx[static_cast<std::size_t>(j - r.base)];
      else at = idx[static_cast<std::size_t>(k - 1) * n0 + static_cast<std::size_t>(c.at[0])];
      return at < 0 ? 0.0 : x[at];
    };
    for_row(g, y, z, -1, [&](const Cell& c) {
      if (!v.active(c)) {
        out[c.i] = 0;
        return;
      }
      const double xi = x[idx[static_cast<std::size_t>(c.at[0])]];
      double j2 = 0;
      for (int a = 0; a < 3; ++a) {
        // Currents in the + direction through the − face and the + face of the voxel.
        double minus = c.nb[2 * a] < 0 ? 0.0 : v.coupling(c, 2 * a) * (potential(c, 2 * a) - xi);
        double plus = c.nb[2 * a + 1] < 0 ? 0.0 : v.coupling(c, 2 * a + 1) * (xi - potential(c, 2 * a + 1));
        if (a == g.axis) {
          if (c.at[a] == 0) minus = v.electrode_low(c) * (1.0 - xi);
          if (c.at[a] == g.n[a] - 1) plus = v.electrode_high(c) * xi;
        }
        const double j = 0.5 * (minus + plus) / area[a];
        j2 += j * j;
      }
      out[c.i] = static_cast<float>(std::sqrt(j2));
    });
  });
}

}  // namespace vp::transport
