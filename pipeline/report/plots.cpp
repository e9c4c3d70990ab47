#include "pipeline/report/plots.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "core/atomic_file.h"
#include "core/json_util.h"

extern char** environ;

namespace vp::report {

namespace fs = std::filesystem;

namespace {

constexpr int kCurvePoints = 120;

// A gnuplot double-quoted string.
std::string gp_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// Numbers in legends and labels: 4 significant digits are what a reader takes in.
std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string gp_number(double v) { return std::isfinite(v) ? format_number(v) : "NaN"; }

std::string safe_id(const std::string& label) {
  std::string s;
  for (unsigned char c : label) {
    const bool keep = std::isalnum(c) || c == '-' || c == '.';
    if (keep) s += static_cast<char>(c);
    else if (!s.empty() && s.back() != '_') s += '_';
  }
  while (!s.empty() && s.back() == '_') s.pop_back();
  return s.empty() ? "plot" : s;
}

// One line of a plot: points (with error bars or not) or a fitted curve.
struct Line {
  std::string title;
  std::vector<double> x, y, err;  // err empty: no error bars
  bool curve = false;
  bool points_only = false;       // measured points of a fit plot: the fitted line is the line
  int colour = 1;                 // gnuplot linecolor index, one per series
};

struct PlotSpec {
  Plot plot;
  std::string xlabel, ylabel;
  bool log_xy = false;
  std::vector<Line> lines;
  struct Marker {
    double x;
    std::string kind;                 // "knee", "onset"
    std::vector<std::string> series;  // series sharing this marker
  };
  std::vector<Marker> vertical_markers;

  // One marker per (x, kind): series at the same place share a label instead of overprinting.
  void mark(double x, const std::string& kind, const std::string& series) {
    for (auto& m : vertical_markers)
      if (m.x == x && m.kind == kind) {
        m.series.push_back(series);
        return;
      }
    vertical_markers.push_back({x, kind, {series}});
  }
  std::vector<std::pair<double, std::string>> horizontal_markers;
};

std::vector<double> linspace(double a, double b, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(n == 1 ? a : a + (b - a) * i / (n - 1));
  return v;
}

bool any_finite(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

std::string series_title(const std::string& name) { return name.empty() ? "(no series)" : name; }

// Points of a column, with error bars when the column carries an uncertainty.
Line points_line(const SeriesTable& t, const SeriesColumn& c, int colour) {
  Line l;
  l.title = series_title(t.name);
  l.colour = colour;
  for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
    l.x.push_back(t.pressures_MPa[i]);
    l.y.push_back(c.n[i] ? c.value[i] : NAN);
    if (c.has_uncertainty) l.err.push_back(c.uncertainty[i]);
  }
  return l;
}

template <class F>
Line curve_line(const std::string& title, double x0, double x1, int colour, F f) {
  Line l;
  l.title = title;
  l.curve = true;
  l.colour = colour;
  l.x = linspace(x0, x1, kCurvePoints);
  for (double x : l.x) l.y.push_back(f(x));
  return l;
}

// Adds (x, y) to a curve at its sorted place (a sampled curve would round off a corner).
void insert_point(Line& l, double x, double y) {
  if (!std::isfinite(x)) return;
  const auto at = std::lower_bound(l.x.begin(), l.x.end(), x) - l.x.begin();
  l.x.insert(l.x.begin() + at, x);
  l.y.insert(l.y.begin() + at, y);
}

std::pair<double, double> pressure_range(const SeriesTable& t) {
  return {t.pressures_MPa.front(), t.pressures_MPa.back()};
}

std::vector<PlotSpec> plan_plots(const std::vector<SeriesTable>& tables, const std::vector<SeriesFits>& fits) {
  std::vector<PlotSpec> specs;
  std::set<std::string> used_ids;
  auto unique_id = [&](std::string id) {
    std::string u = id;
    for (int k = 2; used_ids.count(u); ++k) u = id + "_" + std::to_string(k);
    used_ids.insert(u);
    return u;
  };
  // Every metric column, across series, in order of first appearance.
  std::vector<std::pair<MetricKey, std::string>> keys;
  for (const auto& t : tables)
    for (const auto& c : t.columns)
      if (std::none_of(keys.begin(), keys.end(), [&](const auto& k) { return k.first == c.key; }))
        keys.emplace_back(c.key, c.unit);

  for (const auto& [key, unit] : keys) {
    PlotSpec s;
    s.plot.title = key.label();
    s.plot.id = unique_id(safe_id(key.label()));
    s.xlabel = "pressure (MPa)";
    s.ylabel = key.label() + " [" + unit + "]";
    std::string caption = key.label() + " against pressure";
    bool with_errors = false;
    for (std::size_t si = 0; si < tables.size(); ++si) {
      const auto& t = tables[si];
      const auto* c = t.find(key);
      if (!c || t.pressures_MPa.empty()) continue;
      const int colour = static_cast<int>(si) + 1;
      auto pts = points_line(t, *c, colour);
      if (!any_finite(pts.y)) continue;
      with_errors = with_errors || !pts.err.empty();
      s.lines.push_back(std::move(pts));
      const auto [p0, p1] = pressure_range(t);
      const auto& f = fits[si];
      for (const auto& h : f.heckel)
        if (h.porosity == key && std::isfinite(h.fit.k_per_MPa))
          s.lines.push_back(curve_line(series_title(t.name) + ": Heckel fit", p0, p1, colour,
                                       [&](double P) { return h.fit.porosity_at(P); }));
      for (const auto& k : f.knee)
        if (k.column == key && std::isfinite(k.fit.knee_at)) {
          auto curve = curve_line(series_title(t.name) + ": knee fit", p0, p1, colour,
                                  [&](double P) { return k.fit.value_at(P); });
          insert_point(curve, k.fit.knee_at, k.fit.value_at(k.fit.knee_at));  // draw the corner exactly
          s.lines.push_back(std::move(curve));
          if (k.fit.status == "ok")
            s.mark(k.fit.knee_pressure_MPa, "knee", series_title(t.name));
        }
      for (const auto& o : f.crack_onset)
        if (o.column == key) {
          if (std::isfinite(o.onset.onset_pressure_MPa))
            s.mark(o.onset.onset_pressure_MPa, "onset", series_title(t.name));
          if (s.horizontal_markers.empty()) s.horizontal_markers.emplace_back(o.onset.threshold, "threshold");
        }
    }
    if (s.lines.empty()) continue;  // nothing finite to draw
    if (with_errors) caption += "; error bars: one standard uncertainty";
    if (std::any_of(s.lines.begin(), s.lines.end(), [](const Line& l) { return l.curve; }))
      caption += "; dashed: fitted model";
    s.plot.caption = caption;
    specs.push_back(std::move(s));
  }

  // Heckel plots: ln(1/(1−D)) against P with the fitted line.
  for (std::size_t si = 0; si < tables.size(); ++si)
    for (const auto& h : fits[si].heckel) {
      const auto& t = tables[si];
      const auto* c = t.find(h.porosity);
      if (!c || h.fit.n_points < 2) continue;
      const std::string id = "heckel_" + safe_id(h.porosity.label());
      auto it = std::find_if(specs.begin(), specs.end(), [&](const PlotSpec& p) { return p.plot.title == "Heckel: " + h.porosity.label(); });
      if (it == specs.end()) {
        PlotSpec s;
        s.plot.title = "Heckel: " + h.porosity.label();
        s.plot.id = unique_id(id);
        s.plot.caption = "Heckel compaction plot: ln(1/(1-D)) = ln(1/porosity) against pressure; dashed: k*P + A";
        s.xlabel = "pressure (MPa)";
        s.ylabel = "ln(1/(1-D)) [1]";
        specs.push_back(std::move(s));
        it = specs.end() - 1;
      }
      const int colour = static_cast<int>(si) + 1;
      Line pts;
      pts.title = series_title(t.name);
      pts.colour = colour;
      pts.points_only = true;
      for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
        pts.x.push_back(t.pressures_MPa[i]);
        const double e = c->value[i];
        pts.y.push_back(c->n[i] && e > 0 && e <= 1 ? std::log(1.0 / e) : NAN);
      }
      it->lines.push_back(std::move(pts));
      if (std::isfinite(h.fit.k_per_MPa)) {
        const auto [p0, p1] = pressure_range(t);
        it->lines.push_back(curve_line(series_title(t.name) + ": k = " + short_number(h.fit.k_per_MPa) + " MPa⁻¹", p0, p1,
                                       colour, [&](double P) { return h.fit.k_per_MPa * P + h.fit.A; }));
      }
    }

  // Bruggeman plots: τ against ε on log-log axes with τ = ε^(−α).
  for (std::size_t si = 0; si < tables.size(); ++si)
    for (const auto& b : fits[si].bruggeman) {
      const auto& t = tables[si];
      const auto* tau = t.find(b.tau);
      const auto* eps = t.find(b.eps);
      if (!tau || !eps) continue;
      const std::string title = "Bruggeman: " + b.tau.label() + " vs " + b.eps.label();
      auto it = std::find_if(specs.begin(), specs.end(), [&](const PlotSpec& p) { return p.plot.title == title; });
      if (it == specs.end()) {
        PlotSpec s;
        s.plot.title = title;
        s.plot.id = unique_id("bruggeman_" + safe_id(b.tau.label()));
        s.plot.caption = "tortuosity factor against phase fraction (log-log); dashed: tau = eps^(-alpha)";
        s.xlabel = b.eps.label() + " [1]";
        s.ylabel = b.tau.label() + " [1]";
        s.log_xy = true;
        specs.push_back(std::move(s));
        it = specs.end() - 1;
      }
      const int colour = static_cast<int>(si) + 1;
      Line pts;
      pts.title = series_title(t.name);
      pts.colour = colour;
      pts.points_only = true;
      double lo = INFINITY, hi = -INFINITY;
      for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
        const double e = eps->n[i] ? eps->value[i] : NAN, y = tau->n[i] ? tau->value[i] : NAN;
        const bool ok = e > 0 && std::isfinite(y) && y > 0;
        pts.x.push_back(ok ? e : NAN);
        pts.y.push_back(ok ? y : NAN);
        if (ok) lo = std::min(lo, e), hi = std::max(hi, e);
      }
      if (!std::isfinite(lo)) continue;
      it->lines.push_back(std::move(pts));
      if (std::isfinite(b.fit.alpha))
        it->lines.push_back(curve_line(series_title(t.name) + ": alpha = " + short_number(b.fit.alpha), lo, hi, colour,
                                       [&](double e) { return b.fit.tau_at(e); }));
    }
  specs.erase(std::remove_if(specs.begin(), specs.end(), [](const PlotSpec& s) { return s.lines.empty(); }), specs.end());
  return specs;
}

// Data file: one gnuplot index block per line (blocks separated by two blank lines).
std::string data_text(const PlotSpec& s) {
  std::ostringstream out;
  for (std::size_t li = 0; li < s.lines.size(); ++li) {
    const auto& l = s.lines[li];
    if (li) out << "\n\n";
    out << "# " << l.title << "\n";
    for (std::size_t i = 0; i < l.x.size(); ++i) {
      out << gp_number(l.x[i]) << " " << gp_number(l.y[i]);
      if (!l.err.empty()) out << " " << gp_number(std::isfinite(l.err[i]) ? l.err[i] : 0.0);
      out << "\n";
    }
  }
  return out.str();
}

std::string script_text(const PlotSpec& s, const fs::path& data, const fs::path& png) {
  std::ostringstream g;
  // One gnuplot process runs every script: reset so arrows, log scales and ranges do not leak.
  g << "reset\nset encoding utf8\n"
    << "set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,11'\n"
    << "set output " << gp_string(png.string()) << "\n"
    << "set title " << gp_string(s.plot.title) << "\n"
    << "set xlabel " << gp_string(s.xlabel) << "\n"
    << "set ylabel " << gp_string(s.ylabel) << "\n"
    << "set grid\nset key outside right top box\n";
  // Margins around the data; on log axes gnuplot's own autoscale is used (offsets are linear there).
  if (s.log_xy) g << "set logscale xy\n";
  else g << "set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05\n";
  int arrow = 1;
  int text = 1;
  for (const auto& m : s.vertical_markers)
    if (const double x = m.x; std::isfinite(x)) {
      std::string label;
      for (const auto& name : m.series) label += (label.empty() ? "" : ", ") + name;
      label += " " + m.kind;
      g << "set arrow " << arrow++ << " from " << gp_number(x) << ", graph 0 to " << gp_number(x)
        << ", graph 1 nohead dt 3 lc rgb 'gray40'\n";
      g << "set label " << text++ << " " << gp_string(label + " " + short_number(x) + " MPa") << " at " << gp_number(x)
        << ", graph 0.97 rotate by 90 right offset -0.8, 0 font ',9' tc rgb 'gray30'\n";
    }
  for (const auto& [y, label] : s.horizontal_markers)
    if (std::isfinite(y))
      g << "set arrow " << arrow++ << " from graph 0, first " << gp_number(y) << " to graph 1, first " << gp_number(y)
        << " nohead dt 4 lc rgb 'red'\n";
  g << "plot ";
  for (std::size_t li = 0; li < s.lines.size(); ++li) {
    const auto& l = s.lines[li];
    if (li) g << ", \\\n     ";
    g << gp_string(data.string()) << " index " << li;
    if (l.curve) g << " using 1:2 with lines dt 2 lw 2";
    else if (l.points_only) g << " using 1:2 with points pt 7 ps 1.4";
    else if (!l.err.empty()) g << " using 1:2:3 with yerrorlines pt 7 ps 1.2 lw 2";
    else g << " using 1:2 with linespoints pt 7 ps 1.2 lw 2";
    g << " lc " << l.colour << " title " << gp_string(l.title);
  }
  g << "\nunset output\n";
  return g.str();
}

// Runs gnuplot on the scripts; output and errors go to log. Returns the exit status (−1: not run).
int run_gnuplot(const std::string& exe, const std::vector<fs::path>& scripts, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> args = {exe};
  for (const auto& s : scripts) args.push_back(s.string());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Splits the scripts over up to 4 gnuplot processes (≥ 8 plots each) run at once; their logs
// are joined into one. Returns −1 when gnuplot could not be started, else the worst exit status.
int run_gnuplot_parallel(const std::string& exe, const std::vector<fs::path>& scripts, const fs::path& dir,
                         const fs::path& log) {
  const std::size_t workers = std::clamp<std::size_t>(
      std::min<std::size_t>(static_cast<std::size_t>(tbb::this_task_arena::max_concurrency()), scripts.size() / 8), 1, 4);
  std::vector<int> status(workers, 0);
  std::vector<fs::path> logs(workers);
  tbb::parallel_for(std::size_t{0}, workers, [&](std::size_t w) {
    const std::size_t begin = scripts.size() * w / workers, end = scripts.size() * (w + 1) / workers;
    logs[w] = dir / ("gnuplot." + std::to_string(w) + ".log");
    const std::vector<fs::path> part(scripts.begin() + static_cast<std::ptrdiff_t>(begin),
                                     scripts.begin() + static_cast<std::ptrdiff_t>(end));
    status[w] = run_gnuplot(exe, part, logs[w]);
  });
  std::ofstream joined(log, std::ios::binary | std::ios::app);
  for (const auto& l : logs) {
    std::ifstream in(l, std::ios::binary);
    if (in) joined << in.rdbuf();
    std::error_code ec;
    fs::remove(l, ec);
  }
  if (std::find(status.begin(), status.end(), -1) != status.end()) return -1;
  return *std::max_element(status.begin(), status.end());
}

bool non_empty_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0;
}

}  // namespace

std::string find_gnuplot() {
  if (const char* env = std::getenv("VP_GNUPLOT")) {
    if (*env && ::access(env, X_OK) == 0) return env;
    return "";
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / "gnuplot";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

PlotSet draw_plots(const fs::path& run_dir, const std::vector<SeriesTable>& tables, const std::vector<SeriesFits>& fits,
                   const std::string& gnuplot) {
  PlotSet set;
  if (gnuplot.empty()) {
    set.message = "gnuplot was not found, so no plots were drawn (install the Debian package gnuplot-nox); "
                  "the tables and fits below are complete.";
    return set;
  }
  const auto specs = plan_plots(tables, fits);
  if (specs.empty()) {
    set.drawn = true;
    set.message = "no metric has a finite value to plot.";
    return set;
  }
  const fs::path plot_dir = fs::absolute(run_dir / "plots");
  fs::create_directories(plot_dir / "data");
  const fs::path log = plot_dir / "gnuplot.log";
  std::error_code ec;
  fs::remove(log, ec);
  std::vector<fs::path> scripts;
  for (const auto& s : specs) {
    const fs::path data = plot_dir / "data" / (s.plot.id + ".dat");
    const fs::path script = plot_dir / "data" / (s.plot.id + ".gp");
    const fs::path png = plot_dir / (s.plot.id + ".png");
    fs::remove(png, ec);  // a stale PNG must not pass for a fresh one
    write_text_atomically(data, data_text(s));
    write_text_atomically(script, script_text(s, data, png));
    scripts.push_back(script);
  }
  const int rc = run_gnuplot_parallel(gnuplot, scripts, plot_dir, log);
  if (rc == -1) {
    set.message = "gnuplot (" + gnuplot + ") could not be started, so no plots were drawn; the tables and fits below are complete.";
    return set;
  }
  // gnuplot stops at the first failing script: retry the missing ones one by one.
  std::vector<std::string> failed;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const fs::path png = plot_dir / (specs[i].plot.id + ".png");
    if (!non_empty_file(png) && rc != 0) run_gnuplot(gnuplot, {scripts[i]}, log);
    if (non_empty_file(png)) {
      Plot p = specs[i].plot;
      p.png = fs::path("plots") / (p.id + ".png");
      set.plots.push_back(std::move(p));
    } else {
      failed.push_back(specs[i].plot.title);
    }
  }
  set.drawn = true;
  if (!failed.empty()) {
    set.message = std::to_string(failed.size()) + " plot(s) failed in gnuplot (see plots/gnuplot.log):";
    for (const auto& f : failed) set.message += " " + f + ";";
  }
  return set;
}

}  // namespace vp::report
