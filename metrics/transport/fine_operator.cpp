#include "metrics/transport/fine_operator.h"

#include <cmath>
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

// Fast row kernels: f(i, S, D, inlet) for each cell of the row and colour, with
// S = Σ G_ij x_j, D = Σ G_ij + electrode couplings (0 for cells carrying no current) and
// inlet = the cell's coupling to the inlet (its right-hand side for inlet potential 1).
// Missing neighbour rows read a row of zero codes / conductances, so the inner loop has
// no branches for them.
template <class T, class Acc, class F>
inline void fine_row(const FineLevel& L, index_t y, index_t z, int colour, const T* X, F&& f) {
  const Grid& g = L.grid;
  const Row r = row_of(g, y, z);
  const index_t n0 = g.n[0];
  const int nc = L.codes;
  const std::uint8_t* zero = L.no_code.data();
  const std::uint8_t* c = L.code + r.base;
  const std::uint8_t* cym = r.ym < 0 ? zero : L.code + r.ym;
  const std::uint8_t* cyp = r.yp < 0 ? zero : L.code + r.yp;
  const std::uint8_t* czm = r.zm < 0 ? zero : L.code + r.zm;
  const std::uint8_t* czp = r.zp < 0 ? zero : L.code + r.zp;
  const T* x0 = X + r.base;
  const T* xym = r.ym < 0 ? x0 : X + r.ym;
  const T* xyp = r.yp < 0 ? x0 : X + r.yp;
  const T* xzm = r.zm < 0 ? x0 : X + r.zm;
  const T* xzp = r.zp < 0 ? x0 : X + r.zp;
  const FineViewT<Acc> tables{L};
  const Acc* fx = tables.faces(0);
  const Acc* fy = tables.faces(1);
  const Acc* fz = tables.faces(2);
  const RowElectrodes e = row_electrodes(g, y, z);
  for_colour(g, y, z, colour, [&](index_t x) {
    const int ci = c[x];
    if (!ci) {
      f(r.base + x, Acc(0), Acc(0), Acc(0));
      return;
    }
    const int k = ci * nc;
    Acc S = 0, D = 0, G;
    const index_t xm = x > 0 ? x - 1 : g.wrap[0] ? n0 - 1 : -1;
    const index_t xp = x < n0 - 1 ? x + 1 : g.wrap[0] ? 0 : -1;
    if (xm >= 0) G = fx[k + c[xm]], S += G * static_cast<Acc>(x0[xm]), D += G;
    if (xp >= 0) G = fx[k + c[xp]], S += G * static_cast<Acc>(x0[xp]), D += G;
    G = fy[k + cym[x]], S += G * static_cast<Acc>(xym[x]), D += G;
    G = fy[k + cyp[x]], S += G * static_cast<Acc>(xyp[x]), D += G;
    G = fz[k + czm[x]], S += G * static_cast<Acc>(xzm[x]), D += G;
    G = fz[k + czp[x]], S += G * static_cast<Acc>(xzp[x]), D += G;
    const bool low = g.axis == 0 ? x == 0 : e.low;
    const bool high = g.axis == 0 ? x == n0 - 1 : e.high;
    const Acc dir = tables.dirichlet(ci);
    D += (low ? dir : Acc(0)) + (high ? dir : Acc(0));
    f(r.base + x, S, D, low ? dir : Acc(0));
  });
}

template <class T, class Acc, class F>
inline void level_row(const FineView& v, index_t y, index_t z, int colour, const T* X, F&& f) {
  fine_row<T, Acc>(v.L, y, z, colour, X, f);
}

}  // namespace

void smooth_fine(const FineLevel& F, const float* b, float* x, bool forward) {
  const FineView v{F};
  const Grid& g = F.grid;
  for (int step = 0; step < g.colours; ++step) {
    const int colour = forward ? step : g.colours - 1 - step;
    parallel_rows(g, [&](index_t y, index_t z) {
      level_row<float, float>(v, y, z, colour, x, [&](index_t i, float S, float D, float) {
        if (D > 0) x[i] = (b[i] + S) / D;
      });
    });
  }
}

// Restriction (Pᵀ) of the fine residual b − A x to the first coarse level; clears C.x.
void restrict_fine(const FineLevel& F, const float* b, const float* x, CoarseLevel& C) {
  const FineView v{F};
  const Grid& f = F.grid;
  const Grid& g = C.grid;
  parallel_rows(g, [&](index_t Y, index_t Z) {
    clear_coarse_row(C, Y, Z);
    const auto [y0, y1] = child_range(f, 1, Y);
    const auto [z0, z1] = child_range(f, 2, Z);
    for (index_t z = z0; z <= z1; ++z)
      for (index_t y = y0; y <= y1; ++y) {
        const index_t fbase = cell_index(f, 0, y, z);
        level_row<float, float>(v, y, z, -1, x, [&](index_t i, float S, float D, float) {
          if (D > 0) C.b[fine_parent(f, C, i - fbase, y, z)] += b[i] - (D * x[i] - S);
        });
      }
  });
}

void prolong_fine(const FineLevel& F, const CoarseLevel& C, float* x) {
  const Grid& f = F.grid;
  parallel_rows(f, [&](index_t y, index_t z) {
    const index_t base = cell_index(f, 0, y, z);
    for (index_t i = 0; i < f.n[0]; ++i)
      if (F.code[base + i] != 0) x[base + i] += C.x[fine_parent(f, C, i, y, z)];
  });
}

}  // namespace detail

using namespace detail;

void Multigrid::apply(const float* x, float* y) const {
  const FineView v{fine_};
  const Grid& g = fine_.grid;
  parallel_rows(g, [&](index_t yy, index_t zz) {
    level_row<float, float>(v, yy, zz, -1, x, [&](index_t i, float S, float D, float) { y[i] = D * x[i] - S; });
  });
}

double true_residual(const FineLevel& fine, const double* x, float* r, double* b_norm2) {
  const FineView v{fine};
  const Grid& g = fine.grid;
  std::vector<double> b2(static_cast<std::size_t>(g.rows()), 0.0);
  const double r2 = deterministic_row_sum(g, [&](index_t y, index_t z) {
    double acc = 0, bacc = 0;
    level_row<double, double>(v, y, z, -1, x, [&](index_t i, double S, double D, double inlet) {
      if (!(D > 0)) {
        r[i] = 0;
        return;
      }
      const double b = inlet;  // inlet at potential 1, outlet at 0
      const double res = b - (D * x[i] - S);
      r[i] = static_cast<float>(res);
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
    for (index_t v2 = 0; v2 < g.n[d]; ++v2)
      for (index_t u = 0; u < g.n[b]; ++u) {
        std::array<index_t, 3> p;
        p[a] = t, p[b] = u, p[d] = v2;
        const Cell c = cell_at(g, p[0], p[1], p[2]);
        if (!v.active(c)) continue;
        if (t == 0) in += static_cast<double>(v.electrode_low(c)) * (1.0 - x[c.i]);
        if (t == g.n[a] - 1) outflow += static_cast<double>(v.electrode_high(c)) * x[c.i];
      }
    if (t == 0) out.in = in;
    if (t == g.n[a] - 1) out.out = outflow;
  }
  return out;
}

std::vector<double> plane_currents(const FineLevel& fine, const double* x) {
  const ExactView v{fine};
  const Grid& g = fine.grid;
  const int a = g.axis, b = (a + 1) % 3, d = (a + 2) % 3;
  const index_t N = g.n[a];
  std::vector<double> out(static_cast<std::size_t>(N + 1), 0.0);
  if (a == 0) {
    // Along x a plane is strided by n_x: walk the rows in memory order instead, one block of
    // planes per task. Each plane still sums z outer, y inner: the same order, the same bits.
    const std::uint8_t* code = fine.code;
    const int nc = fine.codes;
    const double* fx = fine.face_exact[0].data();
    const double* dir = fine.dirichlet_exact.data();
    tbb::parallel_for(tbb::blocked_range<index_t>(0, N + 1, 32), [&](const tbb::blocked_range<index_t>& planes) {
      for (index_t z = 0; z < g.n[2]; ++z)
        for (index_t y = 0; y < g.n[1]; ++y) {
          const index_t base = (z * g.n[1] + y) * N;
          for (index_t t = planes.begin(); t < planes.end(); ++t) {
            const index_t i = base + (t < N ? t : N - 1);
            const int ci = code[i];
            if (!ci) continue;
            double& sum = out[static_cast<std::size_t>(t)];
            if (t == 0) sum += dir[ci] * (1.0 - x[i]);
            else if (t == N) sum += dir[ci] * x[i];
            else sum += fx[ci * nc + code[i - 1]] * (x[i - 1] - x[i]);
          }
        }
    });
    return out;
  }
  tbb::parallel_for(index_t(0), N + 1, [&](index_t t) {
    double sum = 0;  // one plane summed serially: fixed order
    for (index_t w = 0; w < g.n[d]; ++w)
      for (index_t u = 0; u < g.n[b]; ++u) {
        std::array<index_t, 3> p;
        p[a] = t < N ? t : N - 1, p[b] = u, p[d] = w;
        const Cell c = cell_at(g, p[0], p[1], p[2]);
        if (!v.active(c)) continue;
        if (t == 0) sum += static_cast<double>(v.electrode_low(c)) * (1.0 - x[c.i]);
        else if (t == N) sum += static_cast<double>(v.electrode_high(c)) * x[c.i];
        else sum += static_cast<double>(v.coupling(c, 2 * a)) * (x[c.nb[2 * a]] - x[c.i]);
      }
    out[static_cast<std::size_t>(t)] = sum;
  });
  return out;
}

void current_density(const FineLevel& fine, const double* x, const std::array<double, 3>& h, float* out) {
  const ExactView v{fine};
  const Grid& g = fine.grid;
  const double area[3] = {h[1] * h[2], h[0] * h[2], h[0] * h[1]};
  parallel_rows(g, [&](index_t y, index_t z) {
    for_row(g, y, z, -1, [&](const Cell& c) {
      if (!v.active(c)) {
        out[c.i] = 0;
        return;
      }
      double j2 = 0;
      for (int a = 0; a < 3; ++a) {
        // Currents in the + direction through the − face and the + face of the voxel.
        double minus = c.nb[2 * a] < 0 ? 0.0 : v.coupling(c, 2 * a) * (x[c.nb[2 * a]] - x[c.i]);
        double plus = c.nb[2 * a + 1] < 0 ? 0.0 : v.coupling(c, 2 * a + 1) * (x[c.i] - x[c.nb[2 * a + 1]]);
        if (a == g.axis) {
          if (c.at[a] == 0) minus = v.electrode_low(c) * (1.0 - x[c.i]);
          if (c.at[a] == g.n[a] - 1) plus = v.electrode_high(c) * x[c.i];
        }
        const double j = 0.5 * (minus + plus) / area[a];
        j2 += j * j;
      }
      out[c.i] = static_cast<float>(std::sqrt(j2));
    });
  });
}

}  // namespace vp::transport
