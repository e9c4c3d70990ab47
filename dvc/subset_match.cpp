#include "dvc/subset_match.h"

#include <cmath>

namespace vp::dvc {

namespace {

// Solves H·x = b (n×n, symmetric positive definite) by Cholesky; false when not positive definite.
bool solve_spd(std::array<double, 144> h, std::array<double, 12> b, int n, std::array<double, 12>& x) {
  for (int j = 0; j < n; ++j) {
    double d = h[j * 12 + j];
    for (int k = 0; k < j; ++k) d -= h[j * 12 + k] * h[j * 12 + k];
    if (!(d > 1e-12 * std::abs(h[j * 12 + j]) + 1e-300)) return false;
    d = std::sqrt(d);
    h[j * 12 + j] = d;
    for (int i = j + 1; i < n; ++i) {
      double s = h[i * 12 + j];
      for (int k = 0; k < j; ++k) s -= h[i * 12 + k] * h[j * 12 + k];
      h[i * 12 + j] = s / d;
    }
  }
  for (int i = 0; i < n; ++i) {
    double s = b[i];
    for (int k = 0; k < i; ++k) s -= h[i * 12 + k] * b[k];
    b[i] = s / h[i * 12 + i];
  }
  for (int i = n - 1; i >= 0; --i) {
    double s = b[i];
    for (int k = i + 1; k < n; ++k) s -= h[k * 12 + i] * b[k];
    b[i] = s / h[i * 12 + i];
  }
  x = b;
  return true;
}

void accumulate_hessian(const std::array<float, 12>& s, std::array<double, 144>& h) {
  for (int a = 0; a < 12; ++a)
    for (int b = 0; b <= a; ++b) h[a * 12 + b] += static_cast<double>(s[a]) * s[b];
}

void symmetrise(std::array<double, 144>& h) {
  for (int a = 0; a < 12; ++a)
    for (int b = a + 1; b < 12; ++b) h[a * 12 + b] = h[b * 12 + a];
}

}  // namespace

SubsetTemplate make_template(const Volume<float>& ref, const BSplineVolume& ref_spline, const Vec3& centre,
                             const std::vector<std::array<index_t, 3>>& points) {
  SubsetTemplate t;
  t.centre = centre;
  t.offsets.reserve(points.size());
  t.f.reserve(points.size());
  t.sd.reserve(points.size());
  double sum = 0, extent = 1;
  for (const auto& p : points) {
    const std::array<float, 3> o{static_cast<float>(p[0] - centre[0]), static_cast<float>(p[1] - centre[1]),
                                 static_cast<float>(p[2] - centre[2])};
    float g[3];
    ref_spline.gradient_at(p[0], p[1], p[2], g);
    t.offsets.push_back(o);
    const float v = ref(p[0], p[1], p[2]);
    t.f.push_back(v);
    sum += v;
    t.sd.push_back({g[0], g[1], g[2], g[0] * o[0], g[0] * o[1], g[0] * o[2], g[1] * o[0], g[1] * o[1], g[1] * o[2],
                    g[2] * o[0], g[2] * o[1], g[2] * o[2]});
    for (float c : o) extent = std::max(extent, std::abs(static_cast<double>(c)));
  }
  if (points.empty()) return t;
  t.extent = extent;
  t.f_mean = sum / static_cast<double>(points.size());
  double ss = 0;
  for (float v : t.f) ss += (v - t.f_mean) * (v - t.f_mean);
  t.f_norm = std::sqrt(ss);
  t.f_std = std::sqrt(ss / static_cast<double>(points.size()));
  for (const auto& s : t.sd) accumulate_hessian(s, t.hessian);
  symmetrise(t.hessian);
  return t;
}

SubsetTemplate cube_template(const Volume<float>& ref, const BSplineVolume& ref_spline,
                             const std::array<index_t, 3>& node, index_t h) {
  const Dims& d = ref.dims();
  for (int a = 0; a < 3; ++a)
    if (node[a] - h < 1 || node[a] + h > d[a] - 2) return {};
  std::vector<std::array<index_t, 3>> points;
  points.reserve(static_cast<std::size_t>((2 * h + 1) * (2 * h + 1) * (2 * h + 1)));
  for (index_t k = -h; k <= h; ++k)
    for (index_t j = -h; j <= h; ++j)
      for (index_t i = -h; i <= h; ++i) points.push_back({node[0] + i, node[1] + j, node[2] + k});
  return make_template(ref, ref_spline,
                       {static_cast<double>(node[0]), static_cast<double>(node[1]), static_cast<double>(node[2])},
                       points);
}

MatchResult match_subset(const SubsetTemplate& tpl, const BSplineVolume& def, const AffineWarp& start,
                         const MatchOptions& options) {
  MatchResult r;
  r.warp = start.recentred(tpl.centre);
  const std::size_t n = tpl.f.size();
  if (n < 16 || tpl.f_norm <= 0) {
    r.status = MatchStatus::singular;
    return r;
  }
  const int np = options.translation_only ? 3 : 12;
  std::vector<float> g(n);
  std::vector<std::uint8_t> valid(n, 1);
  for (int it = 1; it <= options.max_iterations; ++it) {
    r.iterations = it;
    const Mat3& F = r.warp.f;
    const Vec3& c = tpl.centre;
    const Vec3& t = r.warp.t;
    // Deformed grey at the warped points.
    std::size_t used = 0;
    double gsum = 0, fsum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& o = tpl.offsets[i];
      const double x = c[0] + t[0] + F[0][0] * o[0] + F[0][1] * o[1] + F[0][2] * o[2];
      const double y = c[1] + t[1] + F[1][0] * o[0] + F[1][1] * o[1] + F[1][2] * o[2];
      const double z = c[2] + t[2] + F[2][0] * o[0] + F[2][1] * o[1] + F[2][2] * o[2];
      if (!def.inside(x, y, z)) {
        if (!options.allow_partial) {
          r.status = MatchStatus::outside;
          return r;
        }
        valid[i] = 0;
        continue;
      }
      valid[i] = 1;
      g[i] = def.value(x, y, z);
      gsum += g[i];
      fsum += tpl.f[i];
      ++used;
    }
    if (used < 16 || used * 4 < n) {
      r.status = MatchStatus::outside;
      return r;
    }
    const bool all = used == n;
    const double gmean = gsum / static_cast<double>(used);
    const double fmean = all ? tpl.f_mean : fsum / static_cast<double>(used);
    double gss = 0, fss = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (valid[i]) {
        gss += (g[i] - gmean) * (g[i] - gmean);
        fss += (tpl.f[i] - fmean) * (tpl.f[i] - fmean);
      }
    const double gnorm = std::sqrt(gss), fnorm = all ? tpl.f_norm : std::sqrt(fss);
    if (gnorm <= 0 || fnorm <= 0) {
      r.status = MatchStatus::singular;
      return r;
    }
    // Gradient of the criterion and the residual.
    std::array<double, 12> b{};
    std::array<double, 144> h{};
    double residual = 0;
    const double ratio = fnorm / gnorm;
    for (std::size_t i = 0; i < n; ++i) {
      if (!valid[i]) continue;
      const double e = (tpl.f[i] - fmean) - ratio * (g[i] - gmean);
      residual += e * e;
      const auto& s = tpl.sd[i];
      for (int a = 0; a < np; ++a) b[a] += s[a] * e;
      if (!all) accumulate_hessian(s, h);
    }
    r.residual = residual / (fnorm * fnorm);
    if (all) h = tpl.hessian;
    else symmetrise(h);
    std::array<double, 12> dp{};
    if (options.rigid && np == 12) {
      // Rigid increments: Δt and a small rotation ω, ΔF = [ω]×; the 12-parameter system is
      // projected on those 6 directions (p12 = P·p6), so every step stays on the rigid manifold.
      static const auto P = [] {
        std::array<std::array<double, 6>, 12> m{};
        for (int i = 0; i < 3; ++i) m[i][i] = 1;
        // ΔF = [[0, −ωz, ωy], [ωz, 0, −ωx], [−ωy, ωx, 0]], ΔF_ij at index 3 + 3i + j.
        m[3 + 1][5] = -1, m[3 + 2][4] = 1, m[3 + 3][5] = 1, m[3 + 5][3] = -1, m[3 + 6][4] = -1, m[3 + 7][3] = 1;
        return m;
      }();
      std::array<double, 144> h6{};
      std::array<double, 12> b6{}, x6{};
      for (int a = 0; a < 6; ++a) {
        for (int k = 0; k < 12; ++k) b6[a] += P[k][a] * b[k];
        for (int c = 0; c < 6; ++c) {
          double v = 0;
          for (int k = 0; k < 12; ++k)
            if (P[k][a] != 0)
              for (int l = 0; l < 12; ++l) v += P[k][a] * h[k * 12 + l] * P[l][c];
          h6[a * 12 + c] = v;
        }
      }
      if (!solve_spd(h6, b6, 6, x6)) {
        r.status = MatchStatus::singular;
        return r;
      }
      for (int k = 0; k < 12; ++k)
        for (int a = 0; a < 6; ++a) dp[k] += P[k][a] * x6[a];
    } else if (!solve_spd(h, b, np, dp)) {
      r.status = MatchStatus::singular;
      return r;
    }
    for (double& v : dp) v = -v;
    // W ← W ∘ W(Δp)⁻¹: x = c + t + F·(A⁻¹(o − d)) with A = I + ΔF, d = Δt.
    Mat3 a = identity3();
    if (np == 12)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) a[i][j] += dp[3 + 3 * i + j];
    if (options.rigid) a = polar_rotation(a);  // I + [ω]× → the rotation it starts
    const Mat3 ainv = inverse(a);
    const Vec3 d{dp[0], dp[1], dp[2]};
    Mat3 fnew = multiply(F, ainv);
    const Vec3 shift = multiply(fnew, d);
    Vec3 tnew{t[0] - shift[0], t[1] - shift[1], t[2] - shift[2]};
    if (options.rigid) fnew = polar_rotation(fnew);
    r.warp.f = fnew;
    r.warp.t = tnew;
    double step = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    double dg = 0;
    for (int k = 3; k < np; ++k) dg += dp[k] * dp[k];
    step += tpl.extent * std::sqrt(dg);
    if (step < options.tolerance) {
      r.status = MatchStatus::converged;
      return r;
    }
  }
  r.status = MatchStatus::not_converged;
  return r;
}

}  // namespace vp::dvc
