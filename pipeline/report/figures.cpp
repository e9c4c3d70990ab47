#include "pipeline/report/figures.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <sstream>

#include "core/atomic_file.h"
#include "core/csv.h"
#include "core/error.h"
#include "core/json_util.h"
#include "pipeline/report/truth.h"

extern char** environ;

namespace vp::report {

namespace fs = std::filesystem;

namespace {

constexpr int kCurvePoints = 160;
const Colour kTruthColour{30, 30, 30};
const Colour kFitMarkerColour{120, 40, 140};
const Colour kThresholdColour{200, 40, 40};
const Colour kPvColour{0, 150, 120};

// Series colours when a run has several series (Okabe–Ito, colour-blind safe).
Colour series_colour(std::size_t i) {
  static const Colour palette[] = {{0, 114, 178}, {213, 94, 0},   {0, 158, 115}, {204, 121, 167},
                                   {230, 159, 0}, {86, 180, 233}, {90, 90, 90},  {240, 228, 66}};
  return palette[i % 8];
}

std::string series_label(const std::string& name) { return name.empty() ? "(no series)" : name; }

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", 100 * fraction);
  return buf;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return human_number(v);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string mpa(double v) { return human_number(v, 3) + " MPa"; }

// "k = 0.0067 ± 0.0004 MPa⁻¹" (the 95 % half-width of fits.h; omitted when not finite).
std::string heckel_k_text(const HeckelFit& h) {
  std::string s = "k = " + human_number(h.k_per_MPa, 4);
  if (std::isfinite(h.k_ci95)) s += " ± " + human_number(h.k_ci95, 2);
  return s + " MPa⁻¹";
}

// "149 MPa (95 % 120–190 MPa)", "(95 % ≥ 120 MPa)" when the interval's upper end is unbounded.
std::string yield_pressure_text(const HeckelFit& h) {
  std::string s = mpa(h.yield_pressure_MPa);
  if (!std::isfinite(h.yield_pressure_ci95_low_MPa)) return s;
  if (std::isfinite(h.yield_pressure_ci95_high_MPa))
    return s + " (95 % " + human_number(h.yield_pressure_ci95_low_MPa, 3) + "–" + mpa(h.yield_pressure_ci95_high_MPa) +
           ")";
  return s + " (95 % ≥ " + mpa(h.yield_pressure_ci95_low_MPa) + ")";
}

std::vector<double> linspace(double a, double b, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(n == 1 ? a : a + (b - a) * i / (n - 1));
  return v;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

bool is_companion(const std::string& metric) {
  return metric.ends_with(kUncertaintySuffix) || metric.ends_with(kCi95Suffix);
}

// Every column key across the tables, in order of first appearance, with its unit.
std::vector<std::pair<MetricKey, std::string>> all_keys(const std::vector<SeriesTable>& tables) {
  std::vector<std::pair<MetricKey, std::string>> keys;
  for (const auto& t : tables)
    for (const auto& c : t.columns)
      if (std::none_of(keys.begin(), keys.end(), [&](const auto& k) { return k.first == c.key; }))
        keys.emplace_back(c.key, c.unit);
  return keys;
}

std::optional<std::pair<MetricKey, std::string>> first_key(const std::vector<SeriesTable>& tables,
                                                           const std::function<bool(const MetricKey&)>& accept) {
  for (const auto& k : all_keys(tables))
    if (accept(k.first)) return k;
  return std::nullopt;
}

double max_pressure(const std::vector<SeriesTable>& tables) {
  double m = 0;
  for (const auto& t : tables)
    if (!t.pressures_MPa.empty()) m = std::max(m, t.pressures_MPa.back());
  return m;
}

std::string hover_text(const std::string& what, double P, double v, double err, const std::string& unit,
                       const std::vector<std::string>& samples) {
  std::string s = what + " at " + human_number(P, 4) + " MPa: " + human_number(v, 5);
  if (std::isfinite(err) && err > 0) s += " ± " + human_number(err, 3);
  if (!unit.empty()) s += " " + unit;
  if (std::isinf(v)) s += " (off the scale)";
  if (!samples.empty()) s += " (" + join(samples, ", ") + ")";
  return s;
}

// Measured points of one column; error bars from the column's uncertainty.
Trace measured(const SeriesTable& t, const SeriesColumn& c, const std::string& name, Colour colour,
               const std::string& unit) {
  Trace tr;
  tr.kind = Trace::Kind::measured;
  tr.name = name;
  tr.colour = colour;
  for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
    const double v = c.n[i] ? c.value[i] : NAN;
    const double e = c.has_uncertainty ? c.uncertainty[i] : NAN;
    tr.x.push_back(t.pressures_MPa[i]);
    tr.y.push_back(v);
    tr.err.push_back(e);
    tr.hover.push_back(hover_text(name, t.pressures_MPa[i], v, e, unit, t.samples[i]));
  }
  return tr;
}

bool any_finite(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

std::optional<Trace> truth_trace(const FigureInputs& in, const SeriesTable& t, const MetricKey& key,
                                 const std::string& unit, const std::string& name) {
  if (in.truths.empty()) return std::nullopt;
  Trace tr;
  tr.kind = Trace::Kind::truth;
  tr.name = name;
  tr.colour = kTruthColour;
  tr.x = t.pressures_MPa;
  tr.y = truth_series(t, key, in.truths, in.names);
  if (!any_finite(tr.y)) return std::nullopt;
  for (std::size_t i = 0; i < tr.x.size(); ++i)
    tr.hover.push_back(hover_text(name, tr.x[i], tr.y[i], NAN, unit, t.samples[i]));
  return tr;
}

template <class F>
Trace fit_curve(const std::string& name, Colour colour, double p0, double p1, F f) {
  Trace tr;
  tr.kind = Trace::Kind::fit;
  tr.name = name;
  tr.colour = colour;
  tr.x = linspace(p0, p1, kCurvePoints);
  for (double x : tr.x) tr.y.push_back(f(x));
  return tr;
}

// Largest deviation |measured − truth| over the pressures where both exist; NaN when none.
double max_truth_deviation(const Trace& meas, const Trace& truth) {
  double worst = NAN;
  for (std::size_t i = 0; i < meas.y.size() && i < truth.y.size(); ++i)
    if (std::isfinite(meas.y[i]) && std::isfinite(truth.y[i]))
      worst = std::isnan(worst) ? std::abs(meas.y[i] - truth.y[i]) : std::max(worst, std::abs(meas.y[i] - truth.y[i]));
  return worst;
}

struct Endpoints {
  double p_first = NAN, v_first = NAN, p_last = NAN, v_last = NAN;
  bool ok() const { return std::isfinite(p_first) && std::isfinite(p_last) && p_first != p_last; }
};
Endpoints endpoints(const SeriesTable& t, const SeriesColumn& c) {
  Endpoints e;
  for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i)
    if (c.n[i] && std::isfinite(c.value[i])) {
      if (std::isnan(e.p_first)) e.p_first = t.pressures_MPa[i], e.v_first = c.value[i];
      e.p_last = t.pressures_MPa[i], e.v_last = c.value[i];
    }
  return e;
}

std::string change_word(double from, double to, const char* up, const char* down) {
  return to > from ? up : to < from ? down : "stayed at";
}

// Chart skeleton for a metric column against pressure.
Chart metric_chart(const FigureInputs& in, const std::string& id, const MetricKey& key, const std::string& unit) {
  Chart c;
  c.id = id;
  c.title = in.names.title(key);
  c.xlabel = "Pressure (MPa)";
  c.ylabel = in.names.axis_label(key, unit);
  c.y_fraction = is_fraction_metric(key.metric, unit);
  c.y_from_zero = c.y_fraction;
  c.x_range = std::pair{0.0, nice_axis(0, max_pressure(in.tables), 7).hi};
  return c;
}

// The fit made for column `key` among one model's results (null when none was made):
// fit_for(fits.heckel, &HeckelResult::porosity, &HeckelResult::fit, key).
template <class Result, class Fit>
const Fit* fit_for(const std::vector<Result>& results, MetricKey Result::*column, Fit Result::*fit,
                   const MetricKey& key) {
  for (const Result& r : results)
    if (r.*column == key) return &(r.*fit);
  return nullptr;
}

struct Builder {
  const FigureInputs& in;
  HeadlinePanel& out;
  bool multi = in.tables.size() > 1;

  Colour colour(std::size_t si, const std::string& phase) const {
    return multi ? series_colour(si) : in.names.phase_colour(phase);
  }
  std::string prefix(std::size_t si) const { return multi ? series_label(in.tables[si].name) + ": " : ""; }

  void porosity() {
    const std::string pore = in.names.phase_with_role(Role::pore);
    auto key = first_key(in.tables, [&](const MetricKey& k) { return k.metric == kPorosityMetric && k.axis.empty(); });
    if (!key)
      key = first_key(in.tables, [&](const MetricKey& k) {
        return k.metric == kVolumeFractionMetric && k.axis.empty() && k.phase == (pore.empty() ? "pore" : pore);
      });
    if (!key) return;
    const MetricKey pv_alt{kVolumeFractionPvMetric, key->first.phase.empty() ? pore : key->first.phase, ""};
    Chart c = metric_chart(in, "headline-porosity", key->first, key->second);
    c.title = "Porosity";
    c.ylabel = "Porosity φ";
    const std::string unit = Names::unit(key->second);
    for (std::size_t si = 0; si < in.tables.size(); ++si) {
      const auto& t = in.tables[si];
      const auto* col = t.find(key->first);
      if (!col || t.pressures_MPa.empty()) continue;
      const Colour colr = colour(si, key->first.phase.empty() ? pore : key->first.phase);
      // Partial-volume porosity with its 95 % interval, when the segment stage wrote one.
      std::string pv_summary;  // its Heckel fit, said after the segmented porosity's
      const SeriesColumn* pv = nullptr;
      for (const auto* cand : t.with_metric(kPorosityPvMetric))
        if (!pv || cand->key.phase == key->first.phase) pv = cand;
      if (!pv) pv = t.find(pv_alt);
      if (pv) {
        const auto* ci = t.companion(pv->key, kCi95Suffix);
        const Colour pvc = multi ? colr : kPvColour;
        if (ci) {
          Trace band;
          band.kind = Trace::Kind::band;
          band.name = prefix(si) + "partial volume, 95 % CI";
          band.colour = pvc;
          band.x = t.pressures_MPa;
          for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
            const double v = pv->n[i] ? pv->value[i] : NAN, h = ci->n[i] ? ci->value[i] : NAN;
            band.lo.push_back(v - h);
            band.hi.push_back(v + h);
          }
          c.traces.push_back(std::move(band));
        }
        auto tr = measured(t, *pv, prefix(si) + "partial volume", pvc, unit);
        if (ci)
          for (std::size_t i = 0; i < tr.hover.size(); ++i)
            if (ci->n[i]) tr.hover[i] += " (95 % CI ± " + human_number(ci->value[i], 3) + ")";
        c.traces.push_back(std::move(tr));
        out.columns.insert(pv->key);
        if (ci) out.columns.insert(ci->key);
        if (const auto* h = fit_for(in.fits[si].heckel, &HeckelResult::porosity, &HeckelResult::fit, pv->key);
            h && h->status == "ok") {
          c.traces.push_back(fit_curve(prefix(si) + "Heckel fit, partial volume", pvc, 0, c.x_range->second,
                                       [&](double P) { return h->porosity_at(P); }));
          c.notes.push_back(prefix(si) + "Heckel, partial volume: " + heckel_k_text(*h));
          c.notes.push_back("yield pressure " + yield_pressure_text(*h));
          pv_summary = prefix(si) + "From the grey values (partial-volume porosity) the Heckel slope is " +
                       heckel_k_text(*h) + " (95 %), yield pressure " + yield_pressure_text(*h) + ".";
        }
      }
      // Error bars: without replicates they are the porosity_uncertainty rows, which the rev stage
      // writes (the REV spread); with replicates, their spread combined with those (series.h).
      const bool replicates = std::any_of(col->n.begin(), col->n.end(), [](int n) { return n > 1; });
      const std::string bars = !col->has_uncertainty ? ""
                               : replicates          ? " ± replicate and REV spread"
                                                     : " ± REV spread";
      auto seg = measured(t, *col, prefix(si) + (pv ? "segmented" : "measured") + bars, colr, unit);
      const Endpoints e = endpoints(t, *col);
      if (const auto* h = fit_for(in.fits[si].heckel, &HeckelResult::porosity, &HeckelResult::fit, key->first);
          h && std::isfinite(h->k_per_MPa)) {
        c.traces.push_back(fit_curve(prefix(si) + "Heckel fit", colr, 0, c.x_range->second,
                                     [&](double P) { return h->porosity_at(P); }));
        c.notes.push_back(prefix(si) + "Heckel ln(1/φ) = kP + A:");
        c.notes.push_back(heckel_k_text(*h) + ", A = " + human_number(h->A, 4));
        c.notes.push_back("yield pressure 1/k = " + yield_pressure_text(*h));
        c.notes.push_back("R² = " + fixed(h->r2, 4) + " (n = " + std::to_string(h->n_points) + ")");
        if (h->status == "ok") {
          std::string s = "Porosity " + std::string(change_word(e.v_first, e.v_last, "rose", "fell")) + " from " +
                          percent(e.v_first) + " to " + percent(e.v_last) + " between " + human_number(e.p_first, 4) +
                          " and " + human_number(e.p_last, 4) + " MPa (relative density " + percent(1 - e.v_first) +
                          " → " + percent(1 - e.v_last) + "; Heckel yield pressure " + yield_pressure_text(*h) +
                          ", R² " + fixed(h->r2, 3) + ")";
          out.summary.push_back(prefix(si) + s + ".");
          if (h->r2 < 0.95)
            out.caveats.push_back(
                prefix(si) + "The Heckel fit is poor (R² " + fixed(h->r2, 2) +
                "): porosity does not follow ln(1/φ) = kP + A over this range, so the yield pressure is "
                "indicative only.");
        } else {
          out.caveats.push_back(prefix(si) + "Heckel fit: " + h->status + ".");
        }
      } else if (e.ok()) {
        out.summary.push_back(prefix(si) + "Porosity " + change_word(e.v_first, e.v_last, "rose", "fell") + " from " +
                              percent(e.v_first) + " to " + percent(e.v_last) + " between " +
                              human_number(e.p_first, 4) + " and " + human_number(e.p_last, 4) + " MPa.");
        if (const auto* h = fit_for(in.fits[si].heckel, &HeckelResult::porosity, &HeckelResult::fit, key->first))
          out.caveats.push_back(prefix(si) + "No Heckel fit (" + h->status + ").");
      }
      if (!pv_summary.empty()) out.summary.push_back(pv_summary);
      if (e.ok())
        c.notes.push_back("relative density D = 1 − φ: " + percent(1 - e.v_first) + " → " + percent(1 - e.v_last));
      if (auto truth = truth_trace(in, t, key->first, unit, prefix(si) + "truth")) {
        const double dev = max_truth_deviation(seg, *truth);
        if (std::isfinite(dev)) {
          c.notes.push_back("max |measured − truth| = " + fixed(100 * dev, 2) + " points");
          out.summary.push_back(prefix(si) + "Against the phantom truth the segmented porosity is within " +
                                fixed(100 * dev, 2) + " percentage points.");
        }
        c.traces.push_back(std::move(*truth));
      }
      c.traces.push_back(std::move(seg));
      out.columns.insert(key->first);
      if (const auto* u = t.companion(key->first, kUncertaintySuffix)) out.columns.insert(u->key);
    }
    c.y_fraction = true, c.y_from_zero = true;
    c.csv = chart_csv(c);
    out.charts.push_back(std::move(c));
  }

  void heckel_plot() {
    Chart c;
    c.id = "headline-heckel";
    c.title = "Heckel plot";
    c.xlabel = "Pressure (MPa)";
    c.ylabel = "ln(1/φ) = ln(1/(1 − D))";
    c.x_range = std::pair{0.0, nice_axis(0, max_pressure(in.tables), 7).hi};
    c.y_from_zero = true;
    for (std::size_t si = 0; si < in.tables.size(); ++si) {
      const auto& t = in.tables[si];
      // Each porosity column with a fit: the segmented one, and the partial-volume one from the grey.
      bool pv_done = false, segmented_done = false;
      for (const auto& h : in.fits[si].heckel) {
        if (!std::isfinite(h.fit.k_per_MPa)) continue;
        const auto* col = t.find(h.porosity);
        if (!col) continue;
        const bool pv = h.porosity.metric == kPorosityPvMetric;
        if (pv ? pv_done : segmented_done) continue;  // one column of each kind per series
        (pv ? pv_done : segmented_done) = true;
        const Colour colr = pv && !multi ? kPvColour
                                         : colour(si, h.porosity.phase.empty() ? in.names.phase_with_role(Role::pore)
                                                                               : h.porosity.phase);
        const std::string what = pv ? "partial volume " : "";
        Trace pts;
        pts.kind = Trace::Kind::measured;
        pts.name = prefix(si) + (pv ? "ln(1/φ), partial volume" : "ln(1/φ)");
        pts.colour = colr;
        for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
          const double v = col->n[i] && col->value[i] > 0 ? std::log(1 / col->value[i]) : NAN;
          pts.x.push_back(t.pressures_MPa[i]);
          pts.y.push_back(v);
          pts.hover.push_back(hover_text("ln(1/φ)", t.pressures_MPa[i], v, NAN, "", t.samples[i]));
        }
        c.traces.push_back(fit_curve(prefix(si) + what + "kP + A", colr, 0, c.x_range->second,
                                     [&](double P) { return h.fit.k_per_MPa * P + h.fit.A; }));
        c.traces.push_back(std::move(pts));
        c.notes.push_back(prefix(si) + what + "slope " + heckel_k_text(h.fit));
        c.notes.push_back("intercept A = " + human_number(h.fit.A, 4));
        c.notes.push_back("P_y = 1/k = " + yield_pressure_text(h.fit) + ", R² = " + fixed(h.fit.r2, 4));
      }
    }
    if (c.traces.empty()) return;
    c.csv = chart_csv(c);
    out.charts.push_back(std::move(c));
  }

  void contact() {
    const auto key =
        first_key(in.tables, [](const MetricKey& k) { return k.metric == kContactAreaMetric && k.axis.empty(); });
    if (!key) return;
    Chart c = metric_chart(in, "headline-contact", key->first, key->second);
    const std::string unit = Names::unit(key->second);
    const std::string pair = in.names.phase(key->first.phase);
    for (std::size_t si = 0; si < in.tables.size(); ++si) {
      const auto& t = in.tables[si];
      const auto* col = t.find(key->first);
      if (!col || t.pressures_MPa.empty()) continue;
      const Colour colr = colour(si, key->first.phase);
      auto meas = measured(t, *col, prefix(si) + "measured", colr, unit);
      const Endpoints e = endpoints(t, *col);
      std::string sentence;
      if (e.ok())
        sentence = "The " + pair + " contact-area fraction " + change_word(e.v_first, e.v_last, "rose", "fell") +
                   " from " + fixed(e.v_first, 2) + " to " + fixed(e.v_last, 2);
      if (const auto* k = fit_for(in.fits[si].knee, &KneeResult::column, &KneeResult::fit, key->first);
          k && std::isfinite(k->knee_at)) {
        c.traces.push_back(
            fit_curve(prefix(si) + "knee fit", colr, 0, c.x_range->second, [&](double P) { return k->value_at(P); }));
        auto& curve = c.traces.back();  // draw the corner exactly
        const auto at = std::lower_bound(curve.x.begin(), curve.x.end(), k->knee_at) - curve.x.begin();
        curve.x.insert(curve.x.begin() + at, k->knee_at);
        curve.y.insert(curve.y.begin() + at, k->value_at(k->knee_at));
        if (k->status == "ok") {
          const std::string interval =
              std::isfinite(k->knee_ci95_low_MPa)
                  ? human_number(k->knee_ci95_low_MPa, 3) + "–" + human_number(k->knee_ci95_high_MPa, 3) + " MPa"
                  : "—";
          const double plus = k->knee_ci95_high_MPa - k->knee_pressure_MPa,
                       minus = k->knee_pressure_MPa - k->knee_ci95_low_MPa;
          const std::string pm = "+" + human_number(plus, 3) + " / −" + human_number(minus, 3) + " MPa";
          VerticalMarker m;
          m.x = k->knee_pressure_MPa;
          m.span_lo = k->knee_ci95_low_MPa, m.span_hi = k->knee_ci95_high_MPa;
          m.label = prefix(si) + "knee " + mpa(k->knee_pressure_MPa);
          m.hover = "knee " + mpa(k->knee_pressure_MPa) + ", 95 % interval " + interval;
          m.colour = multi ? colr : kFitMarkerColour;
          c.vmarkers.push_back(m);
          c.notes.push_back(prefix(si) + "knee P = " + mpa(k->knee_pressure_MPa) + " (" + pm + ")");
          c.notes.push_back("95 % interval " + interval);
          c.notes.push_back("plateau " + fixed(k->plateau, 3) + ", slope " + human_number(k->slope_per_MPa, 3) +
                            " MPa⁻¹");
          c.notes.push_back("R² = " + fixed(k->r2, 4) + " (n = " + std::to_string(k->n_points) + ")");
          if (!sentence.empty())
            sentence += ", levelling off at " + fixed(k->plateau, 2) + " above a knee at " + mpa(k->knee_pressure_MPa) +
                        " (95 % interval " + interval + ")";
          if (std::isfinite(k->knee_ci95_low_MPa) &&
              (k->knee_ci95_low_MPa <= e.p_first + 1e-9 || k->knee_ci95_high_MPa >= e.p_last - 1e-9))
            out.caveats.push_back(prefix(si) +
                                  "The contact knee is poorly constrained: its 95 % interval reaches the edge "
                                  "of the sampled pressures; more pressures near the knee would pin it down.");
        } else {
          c.notes.push_back(prefix(si) + "knee fit: " + k->status);
          out.caveats.push_back(prefix(si) + "Contact-area knee: " +
                                (k->status == "no_plateau"
                                     ? std::string("still rising at the highest pressure, no knee in the sampled range")
                                 : k->status == "no_rise" ? std::string("flat throughout, no rise to a knee")
                                                          : k->status) +
                                ".");
        }
      }
      if (!sentence.empty()) out.summary.push_back(prefix(si) + sentence + ".");
      if (auto truth = truth_trace(in, t, key->first, unit, prefix(si) + "truth")) {
        const double dev = max_truth_deviation(meas, *truth);
        if (std::isfinite(dev)) c.notes.push_back("max |measured − truth| = " + fixed(dev, 3));
        c.traces.push_back(std::move(*truth));
      }
      c.traces.push_back(std::move(meas));
      out.columns.insert(key->first);
    }
    c.csv = chart_csv(c);
    out.charts.push_back(std::move(c));
  }

  std::optional<std::pair<MetricKey, std::string>> transport_key(const std::string& metric, const std::string& phase) {
    auto key = first_key(in.tables, [&](const MetricKey& k) {
      return k.metric == metric && k.axis == in.pressing_axis && (phase.empty() || k.phase == phase);
    });
    if (!key)
      key = first_key(in.tables,
                      [&](const MetricKey& k) { return k.metric == metric && (phase.empty() || k.phase == phase); });
    if (!key && !phase.empty()) return transport_key(metric, "");
    return key;
  }

  // τ or σ_eff along the pressing axis.
  void transport(const std::string& metric, const std::string& phase_hint, std::string* chosen_phase) {
    const auto key = transport_key(metric, phase_hint);
    if (!key) return;
    if (chosen_phase) *chosen_phase = key->first.phase;
    Chart c = metric_chart(in, "headline-" + metric, key->first, key->second);
    c.y_from_zero = metric == "sigma_eff";
    const std::string unit = Names::unit(key->second);
    for (std::size_t si = 0; si < in.tables.size(); ++si) {
      const auto& t = in.tables[si];
      const auto* col = t.find(key->first);
      if (!col || t.pressures_MPa.empty()) continue;
      auto meas = measured(t, *col, prefix(si) + "measured", colour(si, key->first.phase), unit);
      const Endpoints e = endpoints(t, *col);
      if (e.ok()) {
        c.notes.push_back(prefix(si) + human_number(e.v_first, 3) + " at " + mpa(e.p_first) + " → " +
                          human_number(e.v_last, 3) + " at " + mpa(e.p_last));
        out.summary.push_back(prefix(si) + in.names.title(key->first) + " " +
                              change_word(e.v_first, e.v_last, "rose", "fell") + " from " + human_number(e.v_first, 3) +
                              " to " + human_number(e.v_last, 3) + ".");
      }
      std::vector<std::string> off_scale;
      for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i)
        if (col->n[i] && std::isinf(col->value[i])) off_scale.push_back(mpa(t.pressures_MPa[i]));
      if (!off_scale.empty()) {
        c.notes.push_back("∞ (not percolating) at " + join(off_scale, ", ") + ": ▲ at the top");
        out.caveats.push_back(prefix(si) + in.names.title(key->first) + " is ∞ at " + join(off_scale, ", ") +
                              ": the conducting phase does not connect the two faces there.");
      }
      if (metric == "tau")
        if (const auto* b = fit_for(in.fits[si].bruggeman, &BruggemanResult::tau, &BruggemanResult::fit, key->first);
            b && b->status == "ok")
          c.notes.push_back("Bruggeman τ = ε^−α: α = " + fixed(b->alpha, 2) + " (R² " + fixed(b->r2, 2) +
                            "); free fit α = " + fixed(b->alpha_free, 2) + ", c = " + fixed(b->prefactor_free, 2));
      c.traces.push_back(std::move(meas));
      out.columns.insert(key->first);
    }
    c.csv = chart_csv(c);
    out.charts.push_back(std::move(c));
  }

  void cracks() {
    const auto key =
        first_key(in.tables, [](const MetricKey& k) { return k.metric == kCrackFractionMetric && k.axis.empty(); });
    if (!key) return;
    Chart c = metric_chart(in, "headline-cracks", key->first, key->second);
    c.y_fraction = false;  // zoomed on purpose: crack fractions are small; the axis still starts at 0
    c.y_from_zero = true;
    const std::string unit = Names::unit(key->second);
    if (in.crack_threshold > 0)
      c.hmarkers.push_back({in.crack_threshold, "threshold " + human_number(in.crack_threshold, 3), kThresholdColour});
    for (std::size_t si = 0; si < in.tables.size(); ++si) {
      const auto& t = in.tables[si];
      const auto* col = t.find(key->first);
      if (!col || t.pressures_MPa.empty()) continue;
      const Colour colr = colour(si, key->first.phase);
      auto meas = measured(t, *col, prefix(si) + "measured", colr, unit);
      if (const auto* o = fit_for(in.fits[si].crack_onset, &OnsetResult::column, &OnsetResult::onset, key->first)) {
        const std::string rule =
            in.crack_threshold > 0 ? "above " + human_number(in.crack_threshold, 3) : "any crack detected";
        if (o->status == "ok" || o->status == "above_at_lowest_pressure") {
          double before = NAN;  // the last sampled pressure below the onset with a value
          for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i)
            if (t.pressures_MPa[i] < o->onset_pressure_MPa && col->n[i] && std::isfinite(col->value[i]))
              before = t.pressures_MPa[i];
          VerticalMarker m;
          m.x = std::isfinite(o->interpolated_onset_MPa) ? o->interpolated_onset_MPa : o->onset_pressure_MPa;
          if (std::isfinite(before)) m.span_lo = before, m.span_hi = o->onset_pressure_MPa;
          m.label = prefix(si) + "onset " + (std::isfinite(before) ? human_number(before, 4) + "–" : "≤ ") +
                    mpa(o->onset_pressure_MPa);
          m.hover = "crack onset (" + rule + ") between " +
                    (std::isfinite(before) ? mpa(before) : std::string("0 MPa")) + " and " + mpa(o->onset_pressure_MPa);
          m.colour = multi ? colr : kThresholdColour;
          c.vmarkers.push_back(m);
          c.notes.push_back(prefix(si) + "onset bracket " + (std::isfinite(before) ? human_number(before, 4) : "0") +
                            "–" + mpa(o->onset_pressure_MPa));
          if (std::isfinite(o->interpolated_onset_MPa))
            c.notes.push_back("interpolated crossing " + mpa(o->interpolated_onset_MPa));
          c.notes.push_back("criterion: " + rule);
          out.summary.push_back(prefix(si) + "Cracks (" + rule + ") first appear at " + mpa(o->onset_pressure_MPa) +
                                (std::isfinite(before)
                                     ? " (onset between " + mpa(before) + " and " + mpa(o->onset_pressure_MPa) + ")"
                                     : " (already at the lowest pressure)") +
                                ".");
        } else if (o->status == "not_reached") {
          c.notes.push_back(prefix(si) + "no crack onset (" + rule + ") up to " + mpa(t.pressures_MPa.back()));
          out.summary.push_back(prefix(si) + "No cracks (" + rule + ") up to " + mpa(t.pressures_MPa.back()) + ".");
        } else {
          c.notes.push_back(prefix(si) + "crack onset: " + o->status);
        }
      }
      if (auto truth = truth_trace(in, t, key->first, unit, prefix(si) + "truth"))
        c.traces.push_back(std::move(*truth));
      c.traces.push_back(std::move(meas));
      out.columns.insert(key->first);
    }
    c.csv = chart_csv(c);
    out.charts.push_back(std::move(c));
  }
};

// Topic order of the small multiples.
std::pair<int, std::string> topic_of(const std::string& metric) {
  auto starts = [&](const char* p) { return metric.rfind(p, 0) == 0; };
  if (starts("porosity_percolating") || starts("percolating") || starts("dead_end") || starts("isolated") ||
      starts("cluster") || starts("euler") || starts("connectivity") || starts("geometric_tortuosity"))
    return {2, "Connectivity"};
  if (starts("volume_fraction") || starts("porosity") || starts("relative_density")) return {0, "Phase fractions"};
  if (starts("interface") || starts("specific_") || starts("contact") || starts("am_") || starts("tpb"))
    return {1, "Interfaces and contact"};
  if (starts("tau") || starts("sigma") || starts("macmullin")) return {3, "Transport"};
  if (starts("strain") || starts("particle_displacement") || starts("particle_rotation"))
    return {6, "Deformation (DVC)"};
  if (starts("local_thickness") || starts("particle")) return {4, "Sizes and particles"};
  if (starts("crack") || starts("aperture") || starts("bottleneck") || starts("percolates") ||
      starts("largest_network"))
    return {5, "Cracks"};
  return {7, "Other"};
}

}  // namespace

ChartStyle headline_style() {
  ChartStyle s;
  s.width = 610, s.height = 290, s.notes_width = 210, s.font_px = 12.5;
  return s;
}

ChartStyle panel_style() {
  ChartStyle s;
  s.width = 232, s.height = 176, s.notes_width = 0, s.font_px = 10.5, s.compact = true;
  return s;
}

HeadlinePanel headline_panel(const FigureInputs& in) {
  HeadlinePanel out;
  Builder b{in, out};
  b.porosity();
  b.contact();
  std::string tau_phase;
  b.transport("tau", "", &tau_phase);
  b.transport("sigma_eff", tau_phase, nullptr);
  b.cracks();
  b.heckel_plot();
  if (!in.failures.empty())
    out.caveats.insert(out.caveats.begin(), std::to_string(in.failures.size()) + " sample" +
                                                (in.failures.size() == 1 ? "" : "s") + " failed and " +
                                                (in.failures.size() == 1 ? "is" : "are") +
                                                " missing from these trends: " + join(in.failures, "; ") + ".");
  if (out.charts.empty())
    out.caveats.push_back(
        "None of the headline metrics (porosity, contact-area fraction, τ, σ_eff, crack "
        "volume fraction) is in metrics.csv.");
  return out;
}

std::vector<MetricFamily> metric_families(const FigureInputs& in, const std::set<MetricKey>& skip) {
  const bool multi = in.tables.size() > 1;
  std::vector<std::string> metrics;
  for (const auto& [key, unit] : all_keys(in.tables))
    if (!skip.count(key) && !is_companion(key.metric) &&
        std::find(metrics.begin(), metrics.end(), key.metric) == metrics.end())
      metrics.push_back(key.metric);
  std::stable_sort(metrics.begin(), metrics.end(),
                   [](const auto& a, const auto& b) { return topic_of(a).first < topic_of(b).first; });
  const double pmax = nice_axis(0, max_pressure(in.tables), 4).hi;
  std::vector<MetricFamily> out;
  int serial = 0;
  for (const auto& metric : metrics) {
    MetricFamily fam;
    fam.metric = metric;
    fam.topic = topic_of(metric).second;
    std::vector<std::pair<MetricKey, std::string>> keys;
    for (const auto& k : all_keys(in.tables))
      if (k.first.metric == metric && !skip.count(k.first)) keys.push_back(k);
    fam.title = in.names.title({metric, keys.front().first.phase, ""});
    if (keys.size() > 1) fam.title = in.names.quantity(metric);
    // Panels: single series → one per axis with the phases as lines; several series → one per column.
    std::vector<std::vector<std::pair<MetricKey, std::string>>> panels;
    if (!multi) {
      for (const auto& k : keys) {
        auto it = std::find_if(panels.begin(), panels.end(),
                               [&](const auto& p) { return p.front().first.axis == k.first.axis; });
        if (it == panels.end()) panels.push_back({k});
        else it->push_back(k);
      }
    } else {
      for (const auto& k : keys) panels.push_back({k});
    }
    // Phase colours when every line of every panel is one named phase with its own colour.
    bool phase_colours = !multi;
    for (const auto& p : panels) {
      std::set<std::string> seen;
      for (const auto& k : p)
        if (k.first.phase.find_first_of("|+") != std::string::npos || !in.names.phases().by_name(k.first.phase) ||
            !seen.insert(in.names.phase_colour(k.first.phase).hex()).second)
          phase_colours = false;
    }
    fam.phase_coloured = phase_colours && keys.size() > 1;
    for (const auto& p : panels) {
      const MetricKey& k0 = p.front().first;
      Chart c = metric_chart(in, "m" + std::to_string(++serial), k0, p.front().second);
      c.x_range = std::pair{0.0, pmax};
      if (p.size() > 1) {  // phases as lines: the panel is named by its axis
        c.title = panels.size() > 1 ? "along " + k0.axis
                  : k0.axis.empty() ? fam.title
                                    : fam.title + " (" + k0.axis + ")";
      } else if (keys.size() > 1) {
        c.title = in.names.qualifier(k0);
        if (c.title == k0.axis && !c.title.empty()) c.title = "along " + c.title;
        if (c.title.empty()) c.title = in.names.title(k0);
      }
      // The title names the quantity; a small panel's value axis carries only the unit.
      c.ylabel = Names::unit(p.front().second);
      for (std::size_t li = 0; li < p.size(); ++li) {
        const auto& key = p[li].first;
        const std::string unit = Names::unit(p[li].second);
        for (std::size_t si = 0; si < in.tables.size(); ++si) {
          const auto& t = in.tables[si];
          const auto* col = t.find(key);
          if (!col || t.pressures_MPa.empty()) continue;
          const Colour colr = multi           ? series_colour(si)
                              : phase_colours ? in.names.phase_colour(key.phase)
                                              : series_colour(li);
          const std::string name = multi ? series_label(t.name) : p.size() > 1 ? in.names.phase(key.phase) : "";
          auto tr = measured(t, *col, name, colr, unit);
          for (auto& h : tr.hover)
            h = in.names.title(key) + (multi ? " [" + series_label(t.name) + "]" : "") + h.substr(name.size());
          c.traces.push_back(std::move(tr));
          if (auto truth = truth_trace(in, t, key, unit, multi || p.size() > 1 ? "" : "truth"))
            c.traces.push_back(std::move(*truth));
        }
      }
      if (phase_colours)  // the phase legend is shown once above the grids
        for (auto& tr : c.traces) tr.name.clear();
      c.csv = chart_csv(c);
      fam.panels.push_back(std::move(c));
    }
    // Shared value axis across the family when the units agree.
    const bool same_unit =
        std::all_of(keys.begin(), keys.end(), [&](const auto& k) { return k.second == keys.front().second; });
    if (same_unit && fam.panels.size() > 1) {
      double lo = INFINITY, hi = -INFINITY;
      for (const auto& c : fam.panels) {
        const auto [a, b] = data_y_range(c);
        lo = std::min(lo, a), hi = std::max(hi, b);
      }
      Axis ax = nice_axis(lo, hi, 4);
      if (fam.panels.front().y_fraction) ax.lo = std::max(ax.lo, 0.0), ax.hi = std::min(ax.hi, 1.0);
      for (auto& c : fam.panels) c.y_range = std::pair{ax.lo, ax.hi};
    }
    out.push_back(std::move(fam));
  }
  return out;
}

std::string chart_csv(const Chart& chart) {
  std::string csv = "trace,kind,pressure_MPa,value,uncertainty,low,high\n";
  for (const auto& t : chart.traces) {
    if (t.kind == Trace::Kind::fit) continue;  // curves are the fitted model; its parameters are in the notes
    const char* kind = t.kind == Trace::Kind::measured ? "measured" : t.kind == Trace::Kind::truth ? "truth" : "band";
    const std::string name = t.name.empty() ? chart.title : t.name;
    for (std::size_t i = 0; i < t.x.size(); ++i) {
      auto num = [](const std::vector<double>& v, std::size_t j) {
        return j < v.size() && !std::isnan(v[j]) ? format_number(v[j]) : std::string();
      };
      csv += csv_field(name) + "," + kind + "," + format_number(t.x[i]) + "," + num(t.y, i) + "," + num(t.err, i) +
             "," + num(t.lo, i) + "," + num(t.hi, i) + "\n";
    }
  }
  return csv;
}

std::string compose_svg(const std::vector<Chart>& charts, const ChartStyle& style, int columns) {
  // Charts may have grown to fit their notes: each row is as tall as its tallest chart.
  std::vector<std::string> svgs;
  std::vector<double> heights;
  for (const auto& c : charts) {
    svgs.push_back(render_svg(c, style, false));
    const auto at = svgs.back().find("height=\"") + 8;
    heights.push_back(std::stod(svgs.back().substr(at, svgs.back().find('"', at) - at)));
  }
  std::vector<double> row_top = {0};
  for (std::size_t r = 0; r * columns < charts.size(); ++r) {
    double h = 0;
    for (std::size_t i = r * columns; i < std::min(charts.size(), (r + 1) * columns); ++i) h = std::max(h, heights[i]);
    row_top.push_back(row_top.back() + h);
  }
  const int width = style.width * columns;
  const std::string total = format_number(row_top.back());
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << total << "\" viewBox=\"0 0 "
    << width << " " << total << "\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  for (std::size_t i = 0; i < svgs.size(); ++i) {
    const int x = static_cast<int>(i % columns) * style.width;
    svgs[i].insert(
        4, " x=\"" + std::to_string(x) + "\" y=\"" + format_number(row_top[i / columns]) + "\"");  // after "<svg"
    s << svgs[i] << "\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string find_rsvg_convert() {
  if (const char* env = std::getenv("VP_RSVG_CONVERT")) return *env && ::access(env, X_OK) == 0 ? env : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && ::access((fs::path(dir) / "rsvg-convert").c_str(), X_OK) == 0)
      return (fs::path(dir) / "rsvg-convert").string();
  return "";
}

namespace {

// Runs a program with arguments, stdout/stderr to `log`; the exit status, −1 when it could not run.
int run_program(const std::vector<std::string>& args, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, copy[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool non_empty_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0;
}

}  // namespace

FigureFiles write_figures(const fs::path& dir, const HeadlinePanel& panel) {
  FigureFiles out;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir))
    throw InputError("--figures " + dir.string() + ": cannot create this folder (" + ec.message() + ")");
  const ChartStyle style = headline_style();
  std::vector<std::pair<std::string, std::string>> svgs = {{"headline", compose_svg(panel.charts, style, 2)}};
  for (const auto& c : panel.charts) {
    const std::string stem = c.id.rfind("headline-", 0) == 0 ? c.id.substr(9) : c.id;
    svgs.emplace_back(stem, render_svg(c, style, true) + "\n");
    write_text_atomically(dir / (stem + ".csv"), c.csv);
    out.files.push_back(dir / (stem + ".csv"));
  }
  for (const auto& [stem, text] : svgs) {
    write_text_atomically(dir / (stem + ".svg"), text);
    out.files.push_back(dir / (stem + ".svg"));
  }
  const std::string rsvg = find_rsvg_convert();
  if (rsvg.empty()) {
    out.message =
        "rsvg-convert was not found (Debian package librsvg2-bin), so only SVG was written; convert with any "
        "SVG tool, e.g. rsvg-convert -f pdf.";
    return out;
  }
  const fs::path log = dir / "rsvg-convert.log";
  fs::remove(log, ec);
  std::vector<std::string> failed;
  for (const auto& [stem, text] : svgs) {
    const fs::path svg = dir / (stem + ".svg"), pdf = dir / (stem + ".pdf"), png = dir / (stem + ".png");
    fs::remove(pdf, ec), fs::remove(png, ec);
    // PDF keeps the vectors; PNG at 300 dpi (SVG user units are CSS px, 96 per inch).
    run_program({rsvg, "-f", "pdf", "-o", pdf.string(), svg.string()}, log);
    run_program({rsvg, "-f", "png", "--dpi-x", "300", "--dpi-y", "300", "-z", format_number(300.0 / 96.0), "-o",
                 png.string(), svg.string()},
                log);
    for (const auto& f : {pdf, png}) {
      if (non_empty_file(f)) out.files.push_back(f);
      else failed.push_back(f.filename().string());
    }
  }
  if (failed.empty()) fs::remove(log, ec);
  else out.message = "rsvg-convert could not write " + join(failed, ", ") + " (see " + log.string() + ")";
  return out;
}

}  // namespace vp::report
