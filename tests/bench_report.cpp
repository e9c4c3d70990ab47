// Benchmark: aggregation, fits and report rendering on synthetic runs of growing size.
// Prints a table (timings go into docs/report.md, never into tests).
#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/json_util.h"
#include "pipeline/report/report.h"

namespace fs = std::filesystem;
using namespace vp::report;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// series × pressures samples, each with `metrics` metric columns (plus the fitted ones).
fs::path make_run(int series, int pressures, int metrics) {
  const fs::path run = fs::temp_directory_path() / ("vp_bench_report_" + std::to_string(::getpid()));
  fs::remove_all(run);
  fs::create_directories(run / "samples");
  std::string csv = "sample,series,pressure_MPa,stage,metric,phase,axis,value,unit\n";
  for (int s = 0; s < series; ++s)
    for (int p = 0; p < pressures; ++p) {
      const double P = 25.0 * p;
      char buf[96];
      std::snprintf(buf, sizeof buf, "s%dp%d,series%d,%s,bench,", s, p, s, vp::format_number(P).c_str());
      const std::string prefix = buf;
      const double eps = std::exp(-(0.004 * P + 0.5));
      csv += prefix + "porosity,pore,," + vp::format_number(eps) + ",1\n";
      csv += prefix + "volume_fraction,pore,," + vp::format_number(eps) + ",1\n";
      csv += prefix + "tau,pore,z," + vp::format_number(std::pow(eps, -1.5)) + ",1\n";
      csv +=
          prefix + "contact_area_fraction,am|se,," + vp::format_number(0.5 + 0.002 * std::min(P - 150, 0.0)) + ",1\n";
      csv += prefix + "crack_volume_fraction,,," + vp::format_number(P > 200 ? 0.01 : 0.0) + ",1\n";
      for (int m = 0; m < metrics; ++m)
        csv += prefix + "metric" + vp::format_number(m) + ",am,z," + vp::format_number(m + 0.01 * P) + ",µm\n";
    }
  std::ofstream(run / "metrics.csv") << csv;
  return run;
}

}  // namespace

int main() {
  std::printf(
      "| series × pressures | metric columns | rows | tables + fits + files (s) | report.html, no figures (s) | "
      "report.html + SVG figures (s) | figures | report.html (MB) |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (auto [series, pressures, metrics] : {std::tuple{2, 8, 10}, std::tuple{4, 16, 50}, std::tuple{8, 32, 100}}) {
    const auto run = make_run(series, pressures, metrics);
    ReportOptions o;
    auto t0 = std::chrono::steady_clock::now();
    const auto s = write_series_outputs(run, o);
    const double t_series = seconds_since(t0);
    o.plots = false;
    t0 = std::chrono::steady_clock::now();
    write_report(run, o);
    const double t_html = seconds_since(t0);
    o.plots = true;
    t0 = std::chrono::steady_clock::now();
    const auto out = write_report(run, o);
    const double t_plots = seconds_since(t0);
    std::printf("| %d × %d | %d | %zu | %.3f | %.3f | %.3f | %zu | %.1f |\n", series, pressures, metrics + 5,
                s.run.rows.size(), t_series, t_html, t_plots, out.figures,
                static_cast<double>(fs::file_size(out.html)) / 1e6);
    fs::remove_all(run);
  }
  return 0;
}
