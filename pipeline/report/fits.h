// Trend fits of metrics against applied pressure: pure functions on plain vectors.
//
// Every fit drops non-finite points first, counts what is left, and answers with a
// status instead of numbers when the data cannot support the model:
//   "ok", "insufficient_points" (fewer than the model's minimum), "degenerate"
//   (all x equal), plus model-specific statuses documented below.
// Numbers that are not defined for the status are NaN (JSON writes null).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vp::report {

// Ordinary least squares y = slope·x + intercept; r2 = 1 − SSE/SST (1 when SST = 0 and SSE = 0).
struct LineFit {
  double slope = 0, intercept = 0, r2 = 0;
  bool ok = false;  // false when fewer than 2 points or all x equal
};
LineFit least_squares_line(const std::vector<double>& x, const std::vector<double>& y);

// Heckel compaction: ln(1/(1−D)) = k·P + A with relative density D = 1 − porosity,
// i.e. ln(1/porosity) = k·P + A. Yield pressure P_y = 1/k (MPa).
// Points with porosity outside (0, 1] are dropped (ln undefined or infinite).
// Minimum 3 points. Status "no_densification" when k ≤ 0 (then P_y is NaN).
//
// How sure k is (a grey scan's porosity is an estimate): a 95 % half-width combining
//  * the scatter about the line: t(0.975, n − 2)·se(k), se² = SSE/(n − 2)/Σ(P − P̄)²;
//  * the porosities' own uncertainties when given (one standard uncertainty u_i each, e.g.
//    porosity_pv_ci95 / 1.96): propagated to ln(1/φ) by the delta method (u_i/φ_i) and through
//    the slope's least-squares weights c_i = (P_i − P̄)/Σ(P − P̄)², u_k² = Σ c_i² (u_i/φ_i)²,
//    the points taken as independent; its 95 % half-width is 1.96·u_k. That is conservative for
//    errors common to the series: an end-member error that scales every porosity alike moves
//    ln(1/φ) by a constant and leaves k unchanged.
// The two add in quadrature (GUM: type A and type B). With both zero (noiseless data, no
// uncertainties given) the interval is the point. The yield pressure's interval is 1/k's over
// [k − h, k + h]; its upper end is unbounded (NaN) when k − h ≤ 0.
struct HeckelFit {
  std::string status = "insufficient_points";
  std::size_t n_points = 0;
  double k_per_MPa = NAN, A = NAN, yield_pressure_MPa = NAN, r2 = NAN;
  double k_ci95_scatter = NAN;      // t·se(k), MPa⁻¹ (0 with 2 dof and a perfect fit)
  double k_ci95_measurement = NAN;  // 1.96·u_k, MPa⁻¹ (0 when no uncertainties were given)
  double k_ci95 = NAN;              // the two in quadrature: k ± k_ci95
  double yield_pressure_ci95_low_MPa = NAN, yield_pressure_ci95_high_MPa = NAN;
  double porosity_at(double pressure_MPa) const;  // exp(−(kP + A))
};
// porosity_uncertainty: one standard uncertainty per point (same order as porosity), or empty;
// NaN or negative entries count as zero.
HeckelFit fit_heckel(const std::vector<double>& pressure_MPa, const std::vector<double>& porosity,
                     const std::vector<double>& porosity_uncertainty = {});

// Rise-then-plateau ("knee") model for contact-area fraction against pressure:
//   f(P) = plateau + slope·min(P − P_knee, 0)
// continuous, linear below the knee, constant above it. Least squares over the knee
// position: every data pressure as a fixed knee, plus, for each split of the sorted
// points, the unconstrained line/constant intersection when it falls inside that
// interval. The global optimum of this 3-parameter model is among these candidates,
// so noiseless data is recovered exactly. Minimum 4 points (3 parameters + 1).
// Status "no_plateau" when the best knee is the highest pressure (still rising),
// "no_rise" when it is the lowest (flat throughout); P_knee is NaN then.
// Uncertainty of the knee (status "ok"): the 95 % profile-likelihood interval, i.e. every knee
// position K in [P_min, P_max] whose best fit with K fixed has SSE(K) ≤ SSE_min·(1 + F/(n − 3)),
// F = t²(0.975, n − 3) (Bates & Watts, nonlinear regression). Few points make it wide, as it
// should be; noiseless data collapse it onto the knee. It is cut at the sampled pressures
// (no knee outside the data can be resolved).
struct KneeFit {
  std::string status = "insufficient_points";
  std::size_t n_points = 0;
  double knee_pressure_MPa = NAN, plateau = NAN, slope_per_MPa = NAN, r2 = NAN;
  double knee_ci95_low_MPa = NAN, knee_ci95_high_MPa = NAN;  // profile interval (status "ok")
  double knee_at = NAN;  // the fitted knee position even when status is not "ok" (for plotting)
  double value_at(double pressure_MPa) const;
};
KneeFit fit_knee(const std::vector<double>& pressure_MPa, const std::vector<double>& value);

// Two-sided 97.5 % quantile of Student's t with `dof` degrees of freedom (table to 30, then
// the Cornish–Fisher expansion, within 1e-3).
double student_t_975(std::size_t dof);

// Bruggeman-type tortuosity: τ = ε^(−α). α by least squares of ln τ = −α·ln ε through
// the origin (the model has no prefactor), r2 of that fit on ln τ. For comparison the free
// fit ln τ = ln c − α_free·ln ε is reported as well. Points need 0 < ε < 1 and finite τ > 0
// (non-percolating samples, τ = ∞, are dropped). Minimum 3 points.
struct BruggemanFit {
  std::string status = "insufficient_points";
  std::size_t n_points = 0;
  double alpha = NAN, r2 = NAN;
  double alpha_free = NAN, prefactor_free = NAN, r2_free = NAN;
  double tau_at(double eps) const;  // ε^(−α)
};
BruggemanFit fit_bruggeman(const std::vector<double>& eps, const std::vector<double>& tau);

// Crack onset: the lowest sampled pressure whose crack volume fraction exceeds the
// threshold (strictly), and the linear interpolation of the crossing between the last
// pressure at or below the threshold and that one. Statuses: "ok", "not_reached" (never
// exceeds), "above_at_lowest_pressure" (onset ≤ the lowest pressure; onset_pressure_MPa is
// that pressure, the interpolated crossing NaN). Minimum 3 points.
struct CrackOnset {
  std::string status = "insufficient_points";
  std::size_t n_points = 0;
  double threshold = NAN;
  double onset_pressure_MPa = NAN, interpolated_onset_MPa = NAN;
};
CrackOnset find_crack_onset(const std::vector<double>& pressure_MPa, const std::vector<double>& crack_fraction,
                            double threshold);

// JSON forms (non-finite numbers as null) with the model written out.
nlohmann::json to_json(const HeckelFit& f);
nlohmann::json to_json(const KneeFit& f);
nlohmann::json to_json(const BruggemanFit& f);
nlohmann::json to_json(const CrackOnset& f);

}  // namespace vp::report
