// The trend fits recover known parameters from synthetic pressure series.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "pipeline/report/fits.h"

using namespace vp::report;

namespace {

const std::vector<double> kPressures = {0, 25, 50, 75, 100, 150, 200, 300};

std::vector<double> heckel_porosity(const std::vector<double>& P, double k, double A) {
  std::vector<double> eps;
  for (double p : P) eps.push_back(std::exp(-(k * p + A)));
  return eps;
}

}  // namespace

TEST(LeastSquaresLine, ExactLineAndR2) {
  const auto f = least_squares_line({1, 2, 3, 4}, {3, 5, 7, 9});
  ASSERT_TRUE(f.ok);
  EXPECT_NEAR(f.slope, 2.0, 1e-14);
  EXPECT_NEAR(f.intercept, 1.0, 1e-14);
  EXPECT_NEAR(f.r2, 1.0, 1e-14);
  EXPECT_FALSE(least_squares_line({2, 2, 2}, {1, 2, 3}).ok);
}

TEST(Heckel, ExactOnNoiselessData) {
  const double k = 0.004, A = 0.45;  // A: ln(1/porosity) at zero pressure, porosity 0.638
  const auto f = fit_heckel(kPressures, heckel_porosity(kPressures, k, A));
  ASSERT_EQ(f.status, "ok");
  EXPECT_EQ(f.n_points, kPressures.size());
  EXPECT_NEAR(f.k_per_MPa, k, 1e-13);
  EXPECT_NEAR(f.A, A, 1e-12);
  EXPECT_NEAR(f.yield_pressure_MPa, 250.0, 1e-9);
  EXPECT_NEAR(f.r2, 1.0, 1e-12);
  EXPECT_NEAR(f.porosity_at(100), std::exp(-(0.4 + 0.45)), 1e-12);
}

TEST(Heckel, WithinToleranceWithNoise) {
  const double k = 0.004, A = 0.45;
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 0.002);  // 0.2 % absolute porosity noise
  std::vector<double> P, eps;
  for (int rep = 0; rep < 4; ++rep)
    for (double p : kPressures) {
      P.push_back(p);
      eps.push_back(std::exp(-(k * p + A)) + noise(rng));
    }
  const auto f = fit_heckel(P, eps);
  ASSERT_EQ(f.status, "ok");
  EXPECT_NEAR(f.k_per_MPa, k, 0.05 * k);
  EXPECT_NEAR(f.A, A, 0.01);
  EXPECT_GT(f.r2, 0.98);
}

TEST(Heckel, DropsInvalidPorosityAndNeedsThreePoints) {
  // porosity 0 (ln infinite), NaN and > 1 are dropped; two valid points left.
  const auto f = fit_heckel({0, 10, 20, 30, 40}, {0.4, 0.0, NAN, 1.2, 0.3});
  EXPECT_EQ(f.status, "insufficient_points");
  EXPECT_EQ(f.n_points, 2u);
  EXPECT_TRUE(std::isnan(f.k_per_MPa));
  EXPECT_TRUE(std::isnan(f.yield_pressure_MPa));
}

TEST(Heckel, NoDensificationWhenPorosityRises) {
  const auto f = fit_heckel({0, 50, 100}, {0.3, 0.31, 0.33});
  EXPECT_EQ(f.status, "no_densification");
  EXPECT_LT(f.k_per_MPa, 0);
  EXPECT_TRUE(std::isnan(f.yield_pressure_MPa));
}

TEST(Heckel, ScatterIntervalIsStudentTTimesTheSlopesStandardError) {
  // ln(1/φ) = P + residuals (e, −e, −e, e): orthogonal to 1 and P, so k = 1 exactly, SSE = 4e²,
  // Σ(P − P̄)² = 5, se(k) = √(4e²/2/5); with 2 degrees of freedom t = 4.303.
  const double e = 0.01;
  const std::vector<double> P = {0, 1, 2, 3}, r = {e, -e, -e, e};
  std::vector<double> eps;
  for (std::size_t i = 0; i < P.size(); ++i) eps.push_back(std::exp(-(P[i] + r[i])));
  const auto f = fit_heckel(P, eps);
  ASSERT_EQ(f.status, "ok");
  EXPECT_NEAR(f.k_per_MPa, 1.0, 1e-12);
  EXPECT_NEAR(f.k_ci95_scatter, 4.303 * std::sqrt(4 * e * e / 2 / 5), 1e-12);
  EXPECT_EQ(f.k_ci95_measurement, 0.0);  // no uncertainties given
  EXPECT_NEAR(f.k_ci95, f.k_ci95_scatter, 1e-15);
  EXPECT_NEAR(f.yield_pressure_ci95_low_MPa, 1 / (1 + f.k_ci95), 1e-12);
  EXPECT_NEAR(f.yield_pressure_ci95_high_MPa, 1 / (1 - f.k_ci95), 1e-12);
}

TEST(Heckel, NoiselessPointsWithoutUncertaintiesGiveAPointInterval) {
  const auto f = fit_heckel(kPressures, heckel_porosity(kPressures, 0.004, 0.45));
  ASSERT_EQ(f.status, "ok");
  EXPECT_LT(f.k_ci95, 1e-10);
  EXPECT_NEAR(f.yield_pressure_ci95_low_MPa, 250, 1e-4);
  EXPECT_NEAR(f.yield_pressure_ci95_high_MPa, 250, 1e-4);
}

TEST(Heckel, MeasurementIntervalMatchesTheSpreadOfRepeatedNoisyFits) {
  // Porosities with independent Gaussian errors of known standard deviation u_i (larger at low
  // porosity, as a grey scan's partial-volume interval is): the propagated half-width / 1.96 must
  // equal the standard deviation of k over many repeated noisy series, and k ± k_ci95 must cover
  // the true k at least 95 % of the time (scatter and measurement terms both count the noise).
  const double k = 0.0064, A = 1.14;
  const std::vector<double> P = {10, 50, 125, 250, 370};
  const auto truth = heckel_porosity(P, k, A);
  const std::vector<double> u = {0.012, 0.010, 0.008, 0.005, 0.003};
  const double u_k = fit_heckel(P, truth, u).k_ci95_measurement / 1.959964;
  std::mt19937 rng(11);
  std::normal_distribution<double> gauss(0.0, 1.0);
  const int trials = 4000;
  double sum = 0, sum2 = 0;
  int covered = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> eps(P.size());
    for (std::size_t i = 0; i < P.size(); ++i) eps[i] = truth[i] + u[i] * gauss(rng);
    const auto f = fit_heckel(P, eps, u);
    ASSERT_EQ(f.status, "ok");
    sum += f.k_per_MPa, sum2 += f.k_per_MPa * f.k_per_MPa;
    covered += std::abs(f.k_per_MPa - k) <= f.k_ci95;
  }
  const double mean = sum / trials, sd = std::sqrt(sum2 / trials - mean * mean);
  EXPECT_NEAR(sd, u_k, 0.05 * u_k);  // first-order propagation of ln φ: within 5 %
  EXPECT_GE(covered, static_cast<int>(0.95 * trials));
}

TEST(Heckel, YieldPressureIntervalIsUnboundedWhenKCouldBeZero) {
  // One standard uncertainty of 0.05 on porosities that fall by less than that: k ± h reaches 0.
  const std::vector<double> P = {0, 100, 200}, eps = {0.30, 0.29, 0.28};
  const auto f = fit_heckel(P, eps, {0.05, 0.05, 0.05});
  ASSERT_EQ(f.status, "ok");
  EXPECT_GT(f.k_ci95, f.k_per_MPa);
  EXPECT_NEAR(f.yield_pressure_ci95_low_MPa, 1 / (f.k_per_MPa + f.k_ci95), 1e-9);
  EXPECT_TRUE(std::isnan(f.yield_pressure_ci95_high_MPa));
  const auto j = to_json(f);
  EXPECT_TRUE(j["yield_pressure_ci95_high_MPa"].is_null());
  EXPECT_NEAR(j["k_ci95_per_MPa"].get<double>(), f.k_ci95, 1e-15);
}

TEST(Knee, ExactKneeBetweenSamplesOnNoiselessData) {
  // Rises at 0.002 /MPa from 0.2, plateau 0.5 reached at 150 MPa... but knee placed at 137.5.
  const double knee = 137.5, plateau = 0.5, slope = 0.002;
  std::vector<double> caf;
  for (double p : kPressures) caf.push_back(plateau + slope * std::min(p - knee, 0.0));
  const auto f = fit_knee(kPressures, caf);
  ASSERT_EQ(f.status, "ok");
  EXPECT_NEAR(f.knee_pressure_MPa, knee, 1e-9);
  EXPECT_NEAR(f.plateau, plateau, 1e-12);
  EXPECT_NEAR(f.slope_per_MPa, slope, 1e-12);
  EXPECT_NEAR(f.r2, 1.0, 1e-12);
  EXPECT_NEAR(f.value_at(50), plateau + slope * (50 - knee), 1e-12);
}

TEST(Knee, ExactKneeAtASamplePressure) {
  std::vector<double> caf;
  for (double p : kPressures) caf.push_back(0.6 + 0.001 * std::min(p - 100.0, 0.0));
  const auto f = fit_knee(kPressures, caf);
  ASSERT_EQ(f.status, "ok");
  EXPECT_NEAR(f.knee_pressure_MPa, 100.0, 1e-9);
}

TEST(Knee, WithinToleranceWithNoise) {
  const double knee = 120, plateau = 0.45, slope = 0.0025;
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0.0, 0.005);
  std::vector<double> P, caf;
  for (double p = 0; p <= 300; p += 10) {
    P.push_back(p);
    caf.push_back(plateau + slope * std::min(p - knee, 0.0) + noise(rng));
  }
  const auto f = fit_knee(P, caf);
  ASSERT_EQ(f.status, "ok");
  EXPECT_NEAR(f.knee_pressure_MPa, knee, 10.0);
  EXPECT_NEAR(f.plateau, plateau, 0.005);
  EXPECT_NEAR(f.slope_per_MPa, slope, 0.0003);
}

TEST(Knee, IntervalCollapsesOnNoiselessData) {
  std::vector<double> caf;
  for (double p : kPressures) caf.push_back(0.5 + 0.002 * std::min(p - 137.5, 0.0));
  const auto f = fit_knee(kPressures, caf);
  ASSERT_EQ(f.status, "ok");
  EXPECT_NEAR(f.knee_ci95_low_MPa, 137.5, 1e-3);
  EXPECT_NEAR(f.knee_ci95_high_MPa, 137.5, 1e-3);
}

TEST(Knee, ProfileIntervalCoversTheTrueKneeAtAbout95Percent) {
  // 400 noisy realisations of one rise-then-plateau law: the 95 % profile-likelihood interval
  // must contain the true knee about 95 % of the time (too narrow or too wide both fail).
  const double knee = 120, plateau = 0.45, slope = 0.0025;
  int covered = 0, n = 0;
  double width = 0;
  for (unsigned seed = 1; seed <= 400; ++seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> noise(0.0, 0.01);
    std::vector<double> P, caf;
    for (double p = 0; p <= 300; p += 20) {
      P.push_back(p);
      caf.push_back(plateau + slope * std::min(p - knee, 0.0) + noise(rng));
    }
    const auto f = fit_knee(P, caf);
    if (f.status != "ok") continue;
    ++n;
    ASSERT_LE(f.knee_ci95_low_MPa, f.knee_pressure_MPa);
    ASSERT_GE(f.knee_ci95_high_MPa, f.knee_pressure_MPa);
    width += f.knee_ci95_high_MPa - f.knee_ci95_low_MPa;
    if (f.knee_ci95_low_MPa <= knee && knee <= f.knee_ci95_high_MPa) ++covered;
  }
  ASSERT_GT(n, 390);
  const double coverage = static_cast<double>(covered) / n;
  std::printf("coverage %d of %d, mean width %.1f MPa\n", covered, n, width / n);
  EXPECT_GT(coverage, 0.90) << covered << " of " << n;
  EXPECT_LT(coverage, 0.99) << covered << " of " << n;
  EXPECT_LT(width / n, 60.0);  // informative: much narrower than the 300 MPa range
}

TEST(Knee, StudentQuantiles) {
  EXPECT_DOUBLE_EQ(student_t_975(1), 12.706);
  EXPECT_DOUBLE_EQ(student_t_975(30), 2.042);
  EXPECT_NEAR(student_t_975(60), 2.0003, 1e-3);
  EXPECT_NEAR(student_t_975(1000), 1.9623, 1e-3);
  EXPECT_TRUE(std::isnan(student_t_975(0)));
}

TEST(Knee, StatusesWhenNoKneeInRange) {
  EXPECT_EQ(fit_knee({0, 10, 20, 30, 40}, {0.1, 0.2, 0.3, 0.4, 0.5}).status, "no_plateau");
  EXPECT_EQ(fit_knee({0, 10, 20, 30}, {0.4, 0.4, 0.4, 0.4}).status, "no_rise");
  const auto few = fit_knee({0, 10, 20}, {0.1, 0.2, 0.2});
  EXPECT_EQ(few.status, "insufficient_points");
  EXPECT_TRUE(std::isnan(few.knee_pressure_MPa));
}

TEST(Bruggeman, RecoversAlphaExactly) {
  const double alpha = 1.5;  // classical Bruggeman for spheres: tau = eps^-0.5 · ... here alpha = 1.5
  std::vector<double> eps = {0.45, 0.38, 0.31, 0.25, 0.2}, tau;
  for (double e : eps) tau.push_back(std::pow(e, -alpha));
  const auto f = fit_bruggeman(eps, tau);
  ASSERT_EQ(f.status, "ok");
  EXPECT_NEAR(f.alpha, alpha, 1e-12);
  EXPECT_NEAR(f.r2, 1.0, 1e-12);
  EXPECT_NEAR(f.alpha_free, alpha, 1e-10);
  EXPECT_NEAR(f.prefactor_free, 1.0, 1e-10);
  EXPECT_NEAR(f.tau_at(0.3), std::pow(0.3, -alpha), 1e-12);
}

TEST(Bruggeman, DropsNonPercolatingAndNoisyWithinTolerance) {
  const double alpha = 0.8;
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0.0, 0.01);  // 1 % relative noise on tau
  std::vector<double> eps, tau;
  for (double e = 0.1; e < 0.6; e += 0.05) {
    eps.push_back(e);
    tau.push_back(std::pow(e, -alpha) * (1 + noise(rng)));
  }
  eps.push_back(0.05);
  tau.push_back(INFINITY);  // not percolating: dropped
  const auto f = fit_bruggeman(eps, tau);
  ASSERT_EQ(f.status, "ok");
  EXPECT_EQ(f.n_points, eps.size() - 1);
  EXPECT_NEAR(f.alpha, alpha, 0.02);
  EXPECT_EQ(fit_bruggeman({0.3, 0.2}, {2, 3}).status, "insufficient_points");
}

TEST(CrackOnset, FirstPressureAboveThresholdAndInterpolatedCrossing) {
  const std::vector<double> P = {0, 50, 100, 150, 200};
  const std::vector<double> cvf = {0.0, 0.0005, 0.001, 0.004, 0.01};
  const auto c = find_crack_onset(P, cvf, 0.002);
  ASSERT_EQ(c.status, "ok");
  EXPECT_EQ(c.onset_pressure_MPa, 150.0);
  EXPECT_NEAR(c.interpolated_onset_MPa, 100 + (0.002 - 0.001) / 0.003 * 50, 1e-12);
  // Exactly at the threshold does not count as passing it.
  EXPECT_EQ(find_crack_onset(P, cvf, 0.001).onset_pressure_MPa, 150.0);
  EXPECT_EQ(find_crack_onset(P, cvf, 0.05).status, "not_reached");
  const auto early = find_crack_onset(P, {0.01, 0.02, 0.03, 0.04, 0.05}, 0.001);
  EXPECT_EQ(early.status, "above_at_lowest_pressure");
  EXPECT_EQ(early.onset_pressure_MPa, 0.0);
  EXPECT_TRUE(std::isnan(early.interpolated_onset_MPa));
  EXPECT_EQ(find_crack_onset({0, 10}, {0, 1}, 0.5).status, "insufficient_points");
}

TEST(CrackOnset, OrderOfInputDoesNotMatter) {
  const auto c = find_crack_onset({200, 0, 100}, {0.02, 0.0, 0.0}, 0.001);
  ASSERT_EQ(c.status, "ok");
  EXPECT_EQ(c.onset_pressure_MPa, 200.0);
}

TEST(FitJson, NonFiniteBecomesNullAndModelIsNamed) {
  const auto j = to_json(fit_heckel({0, 1}, {0.5, 0.4}));
  EXPECT_EQ(j["status"], "insufficient_points");
  EXPECT_TRUE(j["k_per_MPa"].is_null());
  EXPECT_EQ(j["model"], "heckel");
}
