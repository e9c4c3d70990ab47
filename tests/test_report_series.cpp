// Series tables from metrics.csv: grouping, uncertainty, replicates, CSV/JSON forms, input errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "pipeline/report/run_folder.h"
#include "pipeline/report/series.h"

using namespace vp::report;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("vp_test_report_series_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

RunRow row(std::string sample, std::string series, double P, std::string metric, std::string phase, std::string axis,
           double value, std::string unit = "1", std::string stage = "metrics") {
  RunRow r;
  r.sample = sample, r.series = series, r.pressure_MPa = P, r.stage = stage, r.metric = metric;
  r.phase = phase, r.axis = axis, r.value = value, r.unit = unit;
  return r;
}

}  // namespace

TEST(MetricsCsv, ParsesQuotedFieldsAndNonFiniteValues) {
  const auto dir = temp_dir("parse");
  write(dir / "metrics.csv",
        "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\n"
        "p050,\"NMC, dry\",50,transport,tau,se,z,inf,1\n"
        "p050,\"NMC, dry\",50,metrics,interface_area,am|se,,1.25e3,µm²\n"
        "p100,\"NMC, dry\",100,transport,tau,se,z,2.5,1\n");
  const auto rows = read_metrics_csv(dir / "metrics.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].series, "NMC, dry");
  EXPECT_TRUE(std::isinf(rows[0].value));
  EXPECT_EQ(rows[1].phase, "am|se");
  EXPECT_EQ(rows[1].value, 1250.0);
  EXPECT_EQ(rows[1].unit, "µm²");
  EXPECT_EQ(rows[2].line, 4);
  fs::remove_all(dir);
}

TEST(MetricsCsv, BadInputNamesFileLineAndColumn) {
  const auto dir = temp_dir("bad");
  write(dir / "metrics.csv",
        "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\np1,s,10,m,porosity,,,0.3x,1\n");
  try {
    read_metrics_csv(dir / "metrics.csv");
    FAIL() << "no error";
  } catch (const vp::InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("metrics.csv:2"), std::string::npos) << m;
    EXPECT_NE(m.find("column value"), std::string::npos) << m;
    EXPECT_NE(m.find("0.3x"), std::string::npos) << m;
  }
  write(dir / "metrics.csv", "sample,pressure,value\n");
  EXPECT_THROW(read_metrics_csv(dir / "metrics.csv"), vp::InputError);
  write(dir / "metrics.csv",
        "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\np1,s,10,m,porosity,,0.3,1\n");
  try {
    read_metrics_csv(dir / "metrics.csv");
    FAIL() << "no error";
  } catch (const vp::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("expected 9 fields"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_run_folder(dir / "missing"), vp::InputError);
  fs::remove_all(dir);
}

TEST(Series, GroupsBySeriesAndPressureWithUncertaintyColumns) {
  const std::vector<RunRow> rows = {
      row("b100", "B", 100, "porosity", "", "", 0.20),
      row("a100", "A", 100, "porosity", "", "", 0.30),
      row("a100", "A", 100, "porosity_uncertainty", "", "", 0.01),
      row("a0", "A", 0, "porosity", "", "", 0.40),
      row("a0", "A", 0, "porosity_uncertainty", "", "", 0.02),
      row("a0", "A", 0, "tau", "se", "z", 2.0, "1", "transport"),
  };
  const auto tables = build_series(rows);
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0].name, "B");
  const auto& a = tables[1];
  EXPECT_EQ(a.pressures_MPa, (std::vector<double>{0, 100}));
  ASSERT_EQ(a.columns.size(), 2u);  // porosity (with its uncertainty) and tau; no separate uncertainty column
  const auto* por = a.find({"porosity", "", ""});
  ASSERT_NE(por, nullptr);
  EXPECT_EQ(por->value, (std::vector<double>{0.40, 0.30}));
  ASSERT_TRUE(por->has_uncertainty);
  EXPECT_EQ(por->uncertainty, (std::vector<double>{0.02, 0.01}));
  const auto* tau = a.find({"tau", "se", "z"});
  ASSERT_NE(tau, nullptr);
  EXPECT_EQ(tau->n, (std::vector<int>{1, 0}));  // not measured at 100 MPa
  EXPECT_EQ(series_csv(a),
            "pressure_MPa,n_samples,samples,porosity|| [1],porosity_uncertainty|| [1],tau|se|z [1]\n"
            "0,1,a0,0.4,0.02,2\n"
            "100,1,a100,0.3,0.01,\n");
  const auto j = series_json(a);
  EXPECT_EQ(j["columns"][1]["status"][1], "missing");
  EXPECT_TRUE(j["columns"][1]["values"][1].is_null());
  EXPECT_EQ(j["columns"][0]["uncertainty"][0], 0.02);
  const auto all = all_series_csv(tables);
  EXPECT_EQ(all,
            "series,pressure_MPa,n_samples,samples,porosity|| [1],porosity_uncertainty|| [1],tau|se|z [1]\n"
            "B,100,1,b100,0.2,,\n"
            "A,0,1,a0,0.4,0.02,2\n"
            "A,100,1,a100,0.3,0.01,\n");
}

TEST(Series, UncertaintyWithoutPhasePairsWithTheOnlyColumnOfItsMetric) {
  const std::vector<RunRow> rows = {
      row("a", "S", 0, "porosity", "pore", "", 0.3),    row("a", "S", 0, "porosity_uncertainty", "", "", 0.01),
      row("a", "S", 0, "tau", "se", "x", 2.0),          row("a", "S", 0, "tau", "se", "z", 3.0),
      row("a", "S", 0, "tau_uncertainty", "", "", 0.5),  // two tau columns: ambiguous, kept apart
  };
  const auto t = build_series(rows).at(0);
  const auto* por = t.find({"porosity", "pore", ""});
  ASSERT_NE(por, nullptr);
  ASSERT_TRUE(por->has_uncertainty);
  EXPECT_EQ(por->uncertainty[0], 0.01);
  EXPECT_EQ(t.find({"porosity_uncertainty", "", ""}), nullptr);
  EXPECT_NE(t.find({"tau_uncertainty", "", ""}), nullptr);
  EXPECT_FALSE(t.find({"tau", "se", "z"})->has_uncertainty);
}

TEST(Series, ReplicatesAreAveragedWithTheirSpreadAsUncertainty) {
  const std::vector<RunRow> rows = {
      row("r1", "S", 50, "porosity", "", "", 0.30),
      row("r2", "S", 50, "porosity", "", "", 0.34),
      row("r3", "S", 50, "porosity", "", "", 0.32),
  };
  const auto t = build_series(rows).at(0);
  ASSERT_EQ(t.pressures_MPa.size(), 1u);
  EXPECT_EQ(t.samples[0], (std::vector<std::string>{"r1", "r2", "r3"}));
  const auto& c = t.columns.at(0);
  EXPECT_NEAR(c.value[0], 0.32, 1e-15);
  EXPECT_NEAR(c.uncertainty[0], 0.02, 1e-15);  // sample standard deviation of 0.30, 0.34, 0.32
  EXPECT_EQ(c.n[0], 3);
}

TEST(Series, DuplicateMetricKeepsFirstAndWarnsUnitClashThrows) {
  std::vector<RunRow> rows = {row("p", "S", 0, "volume_fraction", "pore", "", 0.3, "1", "volume_fraction"),
                              row("p", "S", 0, "volume_fraction", "pore", "", 0.31, "1", "metrics")};
  std::vector<std::string> warnings;
  const auto t = build_series(rows, &warnings).at(0);
  EXPECT_EQ(t.columns.at(0).value[0], 0.3);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("metrics"), std::string::npos);
  rows.push_back(row("q", "S", 10, "volume_fraction", "pore", "", 30, "%"));
  rows.back().line = 7;
  try {
    build_series(rows);
    FAIL() << "no error";
  } catch (const vp::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.csv:7"), std::string::npos) << e.what();
  }
}

TEST(SeriesFits, SelectsColumnsByMetricNameAndWritesFiles) {
  std::vector<RunRow> rows;
  const double k = 0.005, A = 0.5;
  const std::vector<double> P = {0, 50, 100, 150, 200};
  for (double p : P) {
    const std::string s = std::string("p").append(std::to_string(static_cast<int>(p)));
    const double eps = std::exp(-(k * p + A));
    rows.push_back(row(s, "dry", p, "porosity", "", "", eps));
    rows.push_back(row(s, "dry", p, "volume_fraction", "pore", "", eps));
    rows.push_back(row(s, "dry", p, "tau", "pore", "z", std::pow(eps, -1.3)));
    rows.push_back(row(s, "dry", p, "contact_area_fraction", "am|se", "", 0.3 + 0.002 * std::min(p - 120, 0.0)));
    rows.push_back(row(s, "dry", p, "crack_volume_fraction", "", "", p >= 150 ? 0.01 : 0.0));
  }
  const auto tables = build_series(rows);
  const auto fits = fit_series(tables.at(0), 0.001);
  ASSERT_EQ(fits.heckel.size(), 1u);
  EXPECT_NEAR(fits.heckel[0].fit.k_per_MPa, k, 1e-12);
  ASSERT_EQ(fits.knee.size(), 1u);
  EXPECT_NEAR(fits.knee[0].fit.knee_pressure_MPa, 120, 1e-9);
  ASSERT_EQ(fits.bruggeman.size(), 1u);
  EXPECT_EQ(fits.bruggeman[0].eps.label(), "volume_fraction|pore|");
  EXPECT_NEAR(fits.bruggeman[0].fit.alpha, 1.3, 1e-12);
  ASSERT_EQ(fits.crack_onset.size(), 1u);
  EXPECT_EQ(fits.crack_onset[0].onset.onset_pressure_MPa, 150.0);

  const auto dir = temp_dir("files");
  const auto files = write_series_files(dir, tables, {fits});
  EXPECT_TRUE(fs::exists(dir / "series" / "dry.csv"));
  EXPECT_TRUE(fs::exists(dir / "series" / "dry.json"));
  EXPECT_TRUE(fs::exists(dir / "series" / "all_series.csv"));
  std::ifstream in(dir / "fits.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["series"][0]["series"], "dry");
  EXPECT_EQ(j["series"][0]["fits"].size(), 4u);
  EXPECT_EQ(j["series"][0]["fits"][0]["model"], "heckel");
  EXPECT_NEAR(j["series"][0]["fits"][0]["yield_pressure_MPa"].get<double>(), 200.0, 1e-9);
  EXPECT_EQ(files.files.size(), 4u);
  fs::remove_all(dir);
}

TEST(SeriesFits, PartialVolumePorosityGetsItsOwnHeckelFitWithItsInterval) {
  // porosity_pv with its 95 % half-width beside the segmented porosity: two Heckel fits, the
  // second propagating porosity_pv_ci95 / 1.96 as each point's standard uncertainty.
  std::vector<RunRow> rows;
  const double k = 0.0064, A = 1.14;
  const std::vector<double> P = {10, 50, 125, 250, 370}, ci95 = {0.07, 0.07, 0.06, 0.04, 0.02};
  for (std::size_t i = 0; i < P.size(); ++i) {
    const std::string s = "p" + std::to_string(static_cast<int>(P[i]));
    const double eps = std::exp(-(k * P[i] + A));
    rows.push_back(row(s, "grey", P[i], "porosity", "pore", "", 0.9 * eps));
    rows.push_back(row(s, "grey", P[i], "porosity_pv", "pore", "", eps));
    rows.push_back(row(s, "grey", P[i], "porosity_pv_ci95", "pore", "", ci95[i]));
  }
  const auto fits = fit_series(build_series(rows).at(0), 0.001);
  ASSERT_EQ(fits.heckel.size(), 2u);
  EXPECT_EQ(fits.heckel[0].porosity.label(), "porosity|pore|");
  EXPECT_EQ(fits.heckel[0].fit.k_ci95_measurement, 0.0);
  EXPECT_EQ(fits.heckel[1].porosity.label(), "porosity_pv|pore|");
  const auto& pv = fits.heckel[1].fit;
  EXPECT_NEAR(pv.k_per_MPa, k, 1e-12);
  std::vector<double> eps, u;
  for (std::size_t i = 0; i < P.size(); ++i) eps.push_back(std::exp(-(k * P[i] + A))), u.push_back(ci95[i] / 1.959964);
  EXPECT_NEAR(pv.k_ci95_measurement, fit_heckel(P, eps, u).k_ci95_measurement, 1e-15);
  EXPECT_GT(pv.k_ci95_measurement, 0.1 * k);  // these intervals are wide: k is not pinned to 10 %
}

TEST(SeriesFits, PartialVolumeFractionOfAPhaseNamedPoreIsFittedWhenNoPhaseHasThePoreRole) {
  // A config without a pore role writes volume_fraction / volume_fraction_pv per phase and no
  // porosity columns; the phase named "pore" then gets both Heckel fits, as its segmented
  // fraction already did.
  std::vector<RunRow> rows;
  const double k = 0.0064, A = 1.14;
  const std::vector<double> P = {10, 50, 125, 250, 370};
  for (std::size_t i = 0; i < P.size(); ++i) {
    const std::string s = "p" + std::to_string(static_cast<int>(P[i]));
    const double eps = std::exp(-(k * P[i] + A));
    rows.push_back(row(s, "grey", P[i], "volume_fraction", "pore", "", 0.9 * eps));
    rows.push_back(row(s, "grey", P[i], "volume_fraction_pv", "pore", "", eps));
    rows.push_back(row(s, "grey", P[i], "volume_fraction_pv_ci95", "pore", "", 0.02));
  }
  const auto fits = fit_series(build_series(rows).at(0), 0.001);
  ASSERT_EQ(fits.heckel.size(), 2u);
  EXPECT_EQ(fits.heckel[0].porosity.label(), "volume_fraction|pore|");
  EXPECT_EQ(fits.heckel[1].porosity.label(), "volume_fraction_pv|pore|");
  EXPECT_NEAR(fits.heckel[1].fit.k_per_MPa, k, 1e-12);
  EXPECT_GT(fits.heckel[1].fit.k_ci95_measurement, 0.0);  // the _ci95 companion was used
}

TEST(Series, FileStemsAreSafeAndUnique) {
  SeriesTable a, b, c;
  a.name = "NMC/LPSCl 70:30";
  b.name = "NMC_LPSCl 70_30";
  const auto stems = file_stems({a, b, c});
  EXPECT_EQ(stems[0], "NMC_LPSCl_70_30");
  EXPECT_EQ(stems[1], "NMC_LPSCl_70_30_2");
  EXPECT_EQ(stems[2], "default");
}
