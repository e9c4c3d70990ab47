#include "pipeline/report/fits.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include "core/json_util.h"

namespace vp::report {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Finite (x, y) pairs sorted by x (stable, so equal x keep input order).
std::vector<std::pair<double, double>> finite_sorted(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<std::pair<double, double>> p;
  for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) p.emplace_back(x[i], y[i]);
  std::stable_sort(p.begin(), p.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return p;
}

bool all_x_equal(const std::vector<std::pair<double, double>>& p) {
  return std::all_of(p.begin(), p.end(), [&](const auto& q) { return q.first == p.front().first; });
}

double mean_y(const std::vector<std::pair<double, double>>& p, std::size_t begin, std::size_t end) {
  double s = 0;
  for (std::size_t i = begin; i < end; ++i) s += p[i].second;
  return s / static_cast<double>(end - begin);
}

double total_sum_squares(const std::vector<std::pair<double, double>>& p) {
  const double m = mean_y(p, 0, p.size());
  double s = 0;
  for (const auto& q : p) s += (q.second - m) * (q.second - m);
  return s;
}

double r_squared(double sse, double sst) {
  if (sst > 0) return 1.0 - sse / sst;
  return sse <= 1e-300 ? 1.0 : 0.0;
}

// Least squares y = a + b·g(x) for a fixed basis value g per point; returns SSE.
struct TwoParam {
  double a = 0, b = 0, sse = std::numeric_limits<double>::infinity();
};
TwoParam fit_with_basis(const std::vector<std::pair<double, double>>& p, const std::vector<double>& g) {
  const double n = static_cast<double>(p.size());
  double sg = 0, sy = 0;
  for (std::size_t i = 0; i < p.size(); ++i) sg += g[i], sy += p[i].second;
  const double mg = sg / n, my = sy / n;
  double sgg = 0, sgy = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    sgg += (g[i] - mg) * (g[i] - mg);
    sgy += (g[i] - mg) * (p[i].second - my);
  }
  TwoParam t;
  t.b = sgg > 0 ? sgy / sgg : 0.0;  // all basis values equal: the model is a constant
  t.a = my - t.b * mg;
  t.sse = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double r = p[i].second - (t.a + t.b * g[i]);
    t.sse += r * r;
  }
  return t;
}

}  // namespace

LineFit least_squares_line(const std::vector<double>& x, const std::vector<double>& y) {
  LineFit f;
  const auto p = finite_sorted(x, y);
  if (p.size() < 2 || all_x_equal(p)) return f;
  std::vector<double> g;
  for (const auto& q : p) g.push_back(q.first);
  const auto t = fit_with_basis(p, g);
  f.slope = t.b;
  f.intercept = t.a;
  f.r2 = r_squared(t.sse, total_sum_squares(p));
  f.ok = true;
  return f;
}

// ---- Heckel ----

double HeckelFit::porosity_at(double P) const { return std::exp(-(k_per_MPa * P + A)); }

HeckelFit fit_heckel(const std::vector<double>& pressure_MPa, const std::vector<double>& porosity,
                     const std::vector<double>& porosity_uncertainty) {
  HeckelFit f;
  std::vector<double> P, y, u_ln;
  for (std::size_t i = 0; i < std::min(pressure_MPa.size(), porosity.size()); ++i) {
    const double e = porosity[i];
    if (!std::isfinite(pressure_MPa[i]) || !(e > 0 && e <= 1)) continue;
    P.push_back(pressure_MPa[i]);
    y.push_back(std::log(1.0 / e));  // ln(1/(1−D)) with D = 1 − porosity
    const double u = i < porosity_uncertainty.size() ? porosity_uncertainty[i] : 0.0;
    u_ln.push_back(u > 0 && std::isfinite(u) ? u / e : 0.0);  // d ln(1/φ) = −dφ/φ
  }
  f.n_points = P.size();
  if (P.size() < 3) return f;
  const auto line = least_squares_line(P, y);
  if (!line.ok) {
    f.status = "degenerate";
    return f;
  }
  f.k_per_MPa = line.slope;
  f.A = line.intercept;
  f.r2 = line.r2;

  const double n = static_cast<double>(P.size());
  const double p_mean = std::accumulate(P.begin(), P.end(), 0.0) / n;
  double sxx = 0, sse = 0;
  for (double p : P) sxx += (p - p_mean) * (p - p_mean);
  double var_measurement = 0;
  for (std::size_t i = 0; i < P.size(); ++i) {
    const double r = y[i] - (line.intercept + line.slope * P[i]);
    sse += r * r;
    const double c = (P[i] - p_mean) / sxx;
    var_measurement += c * c * u_ln[i] * u_ln[i];
  }
  f.k_ci95_scatter = student_t_975(P.size() - 2) * std::sqrt(sse / (n - 2) / sxx);
  f.k_ci95_measurement = 1.959964 * std::sqrt(var_measurement);
  f.k_ci95 = std::hypot(f.k_ci95_scatter, f.k_ci95_measurement);
  if (line.slope > 0) {
    f.status = "ok";
    f.yield_pressure_MPa = 1.0 / line.slope;
    f.yield_pressure_ci95_low_MPa = 1.0 / (line.slope + f.k_ci95);
    if (line.slope - f.k_ci95 > 0) f.yield_pressure_ci95_high_MPa = 1.0 / (line.slope - f.k_ci95);
  } else {
    f.status = "no_densification";
  }
  return f;
}

// ---- knee / plateau ----

double KneeFit::value_at(double P) const { return plateau + slope_per_MPa * std::min(P - knee_at, 0.0); }

double student_t_975(std::size_t dof) {
  static const double table[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                   2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                   2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof == 0) return kNaN;
  if (dof <= 30) return table[dof - 1];
  const double z = 1.959964, v = static_cast<double>(dof);
  return z + (z * z * z + z) / (4 * v) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * v * v);
}

namespace {

// SSE of the knee model with the knee fixed at K (linear in plateau and slope).
double knee_sse_at(const std::vector<std::pair<double, double>>& p, double K) {
  std::vector<double> g(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) g[i] = std::min(p[i].first - K, 0.0);
  return fit_with_basis(p, g).sse;
}

// The 95 % profile-likelihood interval of the knee (see fits.h): scan K over the sampled range,
// then bisect each edge of the accepted set to 1e-6 of the range.
std::pair<double, double> knee_profile_interval(const std::vector<std::pair<double, double>>& p, double knee,
                                                double sse_min) {
  const double dof = static_cast<double>(p.size()) - 3;
  const double t = student_t_975(p.size() - 3);
  const double limit = sse_min * (1 + t * t / dof) + 1e-14 * total_sum_squares(p);
  const double a = p.front().first, b = p.back().first;
  auto inside = [&](double K) { return knee_sse_at(p, K) <= limit; };
  auto edge = [&](double in, double out) {  // inside(in), !inside(out)
    for (int it = 0; it < 60 && std::abs(out - in) > 1e-6 * (b - a); ++it) {
      const double mid = 0.5 * (in + out);
      (inside(mid) ? in : out) = mid;
    }
    return in;
  };
  constexpr int kSteps = 400;
  double lo = knee, hi = knee;
  // Walk outwards from the best knee until the first rejected position, then refine that edge.
  for (int i = 1; i <= kSteps; ++i) {
    const double K = knee - (knee - a) * i / kSteps;
    if (!inside(K)) {
      lo = edge(knee - (knee - a) * (i - 1) / kSteps, K);
      break;
    }
    lo = K;
  }
  for (int i = 1; i <= kSteps; ++i) {
    const double K = knee + (b - knee) * i / kSteps;
    if (!inside(K)) {
      hi = edge(knee + (b - knee) * (i - 1) / kSteps, K);
      break;
    }
    hi = K;
  }
  return {lo, hi};
}

}  // namespace

KneeFit fit_knee(const std::vector<double>& pressure_MPa, const std::vector<double>& value) {
  KneeFit f;
  const auto p = finite_sorted(pressure_MPa, value);
  f.n_points = p.size();
  if (p.size() < 4) return f;
  if (all_x_equal(p)) {
    f.status = "degenerate";
    return f;
  }
  const std::size_t n = p.size();
  double best_sse = std::numeric_limits<double>::infinity();
  double best_knee = kNaN, best_plateau = kNaN, best_slope = kNaN;
  auto consider = [&](double sse, double knee, double plateau, double slope) {
    // Ties go to the lower knee so results do not depend on candidate order.
    const double tol = 1e-15 * (1 + (std::isfinite(best_sse) ? best_sse : 0.0));
    if (!std::isfinite(best_sse) || sse < best_sse - tol || (sse <= best_sse + tol && knee < best_knee)) {
      best_sse = sse, best_knee = knee, best_plateau = plateau, best_slope = slope;
    }
  };
  // (1) the knee at a data pressure: linear in (plateau, slope).
  std::vector<double> g(n);
  for (std::size_t k = 0; k < n; ++k) {
    if (k > 0 && p[k].first == p[k - 1].first) continue;
    for (std::size_t i = 0; i < n; ++i) g[i] = std::min(p[i].first - p[k].first, 0.0);
    const auto t = fit_with_basis(p, g);
    consider(t.sse, p[k].first, t.a, t.b);
  }
  // (2) the knee strictly inside (P_i, P_i+1): points ≤ P_i on a line, the rest on a constant;
  // optimal for this split when the two meet inside the interval.
  for (std::size_t split = 2; split < n; ++split) {  // left = [0, split), right = [split, n)
    if (p[split].first == p[split - 1].first) continue;
    std::vector<double> lx, ly;
    for (std::size_t i = 0; i < split; ++i) lx.push_back(p[i].first), ly.push_back(p[i].second);
    const auto line = least_squares_line(lx, ly);
    if (!line.ok || line.slope == 0) continue;
    const double plateau = mean_y(p, split, n);
    const double knee = (plateau - line.intercept) / line.slope;
    if (!(knee > p[split - 1].first && knee < p[split].first)) continue;
    double sse = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double model = i < split ? line.intercept + line.slope * p[i].first : plateau;
      sse += (p[i].second - model) * (p[i].second - model);
    }
    consider(sse, knee, plateau, line.slope);
  }
  f.knee_at = best_knee;
  f.plateau = best_plateau;
  if (best_knee > p.front().first && best_knee < p.back().first) {
    const auto [lo, hi] = knee_profile_interval(p, best_knee, best_sse);
    f.knee_ci95_low_MPa = lo, f.knee_ci95_high_MPa = hi;
  }
  f.slope_per_MPa = best_slope;
  f.r2 = r_squared(best_sse, total_sum_squares(p));
  if (best_knee >= p.back().first) {
    f.status = "no_plateau";
  } else if (best_knee <= p.front().first) {
    f.status = "no_rise";
  } else {
    f.status = "ok";
    f.knee_pressure_MPa = best_knee;
  }
  return f;
}

// ---- Bruggeman ----

double BruggemanFit::tau_at(double eps) const { return std::pow(eps, -alpha); }

BruggemanFit fit_bruggeman(const std::vector<double>& eps, const std::vector<double>& tau) {
  BruggemanFit f;
  std::vector<double> lx, ly;
  for (std::size_t i = 0; i < std::min(eps.size(), tau.size()); ++i) {
    if (!(eps[i] > 0 && eps[i] < 1) || !std::isfinite(tau[i]) || !(tau[i] > 0)) continue;
    lx.push_back(std::log(eps[i]));
    ly.push_back(std::log(tau[i]));
  }
  f.n_points = lx.size();
  if (lx.size() < 3) return f;
  double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < lx.size(); ++i) sxx += lx[i] * lx[i], sxy += lx[i] * ly[i];
  const auto free = least_squares_line(lx, ly);
  if (!free.ok || sxx <= 0) {
    f.status = "degenerate";
    return f;
  }
  f.alpha = -sxy / sxx;
  const double my = std::accumulate(ly.begin(), ly.end(), 0.0) / static_cast<double>(ly.size());
  double sse = 0, sst = 0;
  for (std::size_t i = 0; i < lx.size(); ++i) {
    const double r = ly[i] + f.alpha * lx[i];
    sse += r * r;
    sst += (ly[i] - my) * (ly[i] - my);
  }
  f.r2 = r_squared(sse, sst);
  f.alpha_free = -free.slope;
  f.prefactor_free = std::exp(free.intercept);
  f.r2_free = free.r2;
  f.status = "ok";
  return f;
}

// ---- crack onset ----

CrackOnset find_crack_onset(const std::vector<double>& pressure_MPa, const std::vector<double>& crack_fraction,
                            double threshold) {
  CrackOnset c;
  c.threshold = threshold;
  const auto p = finite_sorted(pressure_MPa, crack_fraction);
  c.n_points = p.size();
  if (p.size() < 3) return c;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!(p[i].second > threshold)) continue;
    c.onset_pressure_MPa = p[i].first;
    if (i == 0) {
      c.status = "above_at_lowest_pressure";
      return c;
    }
    const auto& lo = p[i - 1];
    const auto& hi = p[i];
    // lo is at or below the threshold, hi above: the crossing lies in [lo.P, hi.P].
    c.interpolated_onset_MPa = lo.first + (threshold - lo.second) / (hi.second - lo.second) * (hi.first - lo.first);
    c.status = "ok";
    return c;
  }
  c.status = "not_reached";
  return c;
}

// ---- JSON ----

nlohmann::json to_json(const HeckelFit& f) {
  return {{"model", "heckel"},
          {"equation", "ln(1/(1-D)) = k*P + A, D = 1 - porosity; yield pressure = 1/k"},
          {"status", f.status},
          {"n_points", f.n_points},
          {"k_per_MPa", json_number(f.k_per_MPa)},
          {"A", json_number(f.A)},
          {"k_ci95_per_MPa", json_number(f.k_ci95)},
          {"k_ci95_scatter_per_MPa", json_number(f.k_ci95_scatter)},
          {"k_ci95_measurement_per_MPa", json_number(f.k_ci95_measurement)},
          {"yield_pressure_MPa", json_number(f.yield_pressure_MPa)},
          {"yield_pressure_ci95_low_MPa", json_number(f.yield_pressure_ci95_low_MPa)},
          {"yield_pressure_ci95_high_MPa", json_number(f.yield_pressure_ci95_high_MPa)},
          {"r2", json_number(f.r2)}};
}

nlohmann::json to_json(const KneeFit& f) {
  return {{"model", "knee"},
          {"equation", "f(P) = plateau + slope*min(P - P_knee, 0)"},
          {"status", f.status},
          {"n_points", f.n_points},
          {"knee_pressure_MPa", json_number(f.knee_pressure_MPa)},
          {"knee_ci95_low_MPa", json_number(f.knee_ci95_low_MPa)},
          {"knee_ci95_high_MPa", json_number(f.knee_ci95_high_MPa)},
          {"plateau", json_number(f.plateau)},
          {"slope_per_MPa", json_number(f.slope_per_MPa)},
          {"r2", json_number(f.r2)}};
}

nlohmann::json to_json(const BruggemanFit& f) {
  return {{"model", "bruggeman"},
          {"equation", "tau = eps^(-alpha)"},
          {"status", f.status},
          {"n_points", f.n_points},
          {"alpha", json_number(f.alpha)},
          {"r2", json_number(f.r2)},
          {"free_fit",
           {{"equation", "tau = c*eps^(-alpha)"},
            {"alpha", json_number(f.alpha_free)},
            {"c", json_number(f.prefactor_free)},
            {"r2", json_number(f.r2_free)}}}};
}

nlohmann::json to_json(const CrackOnset& f) {
  return {{"model", "crack_onset"},
          {"equation", "lowest P with crack_volume_fraction > threshold"},
          {"status", f.status},
          {"n_points", f.n_points},
          {"threshold", json_number(f.threshold)},
          {"onset_pressure_MPa", json_number(f.onset_pressure_MPa)},
          {"interpolated_onset_MPa", json_number(f.interpolated_onset_MPa)}};
}

}  // namespace vp::report
