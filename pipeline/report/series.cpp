#include "pipeline/report/series.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"

namespace vp::report {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string value_status(double v, int n) {
  if (n == 0) return "missing";
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return "ok";
}

std::string header_of(const MetricKey& key, const std::string& unit) { return key.label() + " [" + unit + "]"; }

MetricKey uncertainty_key(const MetricKey& k) { return {k.metric + kUncertaintySuffix, k.phase, k.axis}; }

// Per (series, pressure, metric key): the values (and own uncertainties) of each sample.
struct Cell {
  std::vector<double> values;
  std::vector<double> uncertainties;  // NaN where the sample gave none
};

}  // namespace

const SeriesColumn* SeriesTable::find(const MetricKey& key) const {
  for (const auto& c : columns)
    if (c.key == key) return &c;
  return nullptr;
}

std::vector<const SeriesColumn*> SeriesTable::with_metric(const std::string& metric) const {
  std::vector<const SeriesColumn*> out;
  for (const auto& c : columns)
    if (c.key.metric == metric) out.push_back(&c);
  return out;
}

const SeriesColumn* SeriesTable::companion(const MetricKey& key, const std::string& suffix) const {
  if (const auto* c = find({key.metric + suffix, key.phase, key.axis})) return c;
  if (with_metric(key.metric).size() == 1)
    if (const auto* c = find({key.metric + suffix, "", ""})) return c;
  return nullptr;
}

std::string SeriesTable::file_stem() const {
  if (name.empty()) return "default";
  std::string s;
  for (unsigned char c : name) s += (std::isalnum(c) || c == '-' || c == '_' || c == '.') ? static_cast<char>(c) : '_';
  if (s == "." || s == ".." || s == "all_series") s = "series_" + s;
  return s;
}

std::vector<SeriesTable> build_series(const std::vector<RunRow>& rows, std::vector<std::string>* warnings,
                                      const std::string& csv_name) {
  // Keys that are the uncertainty of another key present in the rows.
  std::set<MetricKey> present;
  for (const auto& r : rows) present.insert({r.metric, r.phase, r.axis});
  auto base_of = [&](const MetricKey& k) -> std::optional<MetricKey> {
    if (!ends_with(k.metric, kUncertaintySuffix)) return std::nullopt;
    MetricKey base{k.metric.substr(0, k.metric.size() - std::string(kUncertaintySuffix).size()), k.phase, k.axis};
    if (present.count(base)) return base;
    // An uncertainty without phase and axis belongs to the metric's only column, if it has one.
    if (!k.phase.empty() || !k.axis.empty()) return std::nullopt;
    std::optional<MetricKey> only;
    for (const auto& p : present)
      if (p.metric == base.metric) {
        if (only) return std::nullopt;  // several columns: ambiguous, keep it as its own column
        only = p;
      }
    return only;
  };

  std::vector<std::string> series_order;
  std::map<std::string, std::vector<MetricKey>> key_order;  // per series, first appearance
  std::map<MetricKey, std::pair<std::string, int>> units;   // unit and the line that set it
  // (series, pressure) -> samples in order; (series, pressure, key) -> per-sample cell.
  std::map<std::pair<std::string, double>, std::vector<std::string>> samples_at;
  std::map<std::tuple<std::string, std::string, MetricKey>, std::pair<double, std::string>> sample_value;  // first only
  std::map<std::tuple<std::string, std::string, MetricKey>, double> sample_uncertainty;
  std::map<std::string, std::pair<std::string, double>> sample_where;  // sample -> (series, pressure)

  for (const auto& r : rows) {
    if (std::find(series_order.begin(), series_order.end(), r.series) == series_order.end())
      series_order.push_back(r.series);
    auto [sw, inserted] = sample_where.try_emplace(r.sample, r.series, r.pressure_MPa);
    if (!inserted && (sw->second.first != r.series || sw->second.second != r.pressure_MPa))
      throw InputError(csv_name + ":" + std::to_string(r.line) + ": sample '" + r.sample + "' appears with series '" +
                       r.series + "' at " + format_number(r.pressure_MPa) + " MPa but earlier with series '" +
                       sw->second.first + "' at " + format_number(sw->second.second) +
                       " MPa; expected one series and pressure per sample");
    auto& at = samples_at[{r.series, r.pressure_MPa}];
    if (std::find(at.begin(), at.end(), r.sample) == at.end()) at.push_back(r.sample);

    const MetricKey key{r.metric, r.phase, r.axis};
    auto [u, fresh] = units.try_emplace(key, r.unit, r.line);
    if (!fresh && u->second.first != r.unit)
      throw InputError(csv_name + ":" + std::to_string(r.line) + ": metric " + key.label() + " has unit '" + r.unit +
                       "' but '" + u->second.first + "' on line " + std::to_string(u->second.second) +
                       "; expected one unit per metric|phase|axis");
    const auto base = base_of(key);
    if (base) {
      sample_uncertainty.try_emplace({r.series, r.sample, *base}, r.value);
      continue;
    }
    auto& order = key_order[r.series];
    if (std::find(order.begin(), order.end(), key) == order.end()) order.push_back(key);
    auto [sv, first] = sample_value.try_emplace({r.series, r.sample, key}, r.value, r.stage);
    if (!first && warnings)
      warnings->push_back(key.label() + ": sample " + r.sample + " has values from stages '" + sv->second.second +
                          "' and '" + r.stage + "'; the first (stage '" + sv->second.second + "') is used");
  }

  std::vector<SeriesTable> tables;
  for (const auto& sname : series_order) {
    SeriesTable t;
    t.name = sname;
    for (const auto& [k, samples] : samples_at)
      if (k.first == sname) {
        t.pressures_MPa.push_back(k.second);
        t.samples.push_back(samples);
      }
    for (const auto& key : key_order[sname]) {
      SeriesColumn c;
      c.key = key;
      c.unit = units.at(key).first;
      for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
        Cell cell;
        for (const auto& s : t.samples[i]) {
          auto v = sample_value.find({sname, s, key});
          if (v == sample_value.end()) continue;
          cell.values.push_back(v->second.first);
          auto u = sample_uncertainty.find({sname, s, key});
          cell.uncertainties.push_back(u == sample_uncertainty.end() ? kNaN : u->second);
        }
        const int n = static_cast<int>(cell.values.size());
        double mean = kNaN, unc = kNaN;
        if (n > 0) {
          mean = 0;
          for (double v : cell.values) mean += v;
          mean /= n;
          double own = 0;
          int n_own = 0;
          for (double u : cell.uncertainties)
            if (!std::isnan(u)) own += u, ++n_own;
          const double u_own = n_own ? own / n_own : 0.0;
          double var = 0;
          if (n > 1) {
            for (double v : cell.values) var += (v - mean) * (v - mean);
            var /= (n - 1);
          }
          if (n > 1 || n_own > 0) unc = std::sqrt(var + u_own * u_own);
        }
        c.value.push_back(mean);
        c.uncertainty.push_back(unc);
        c.n.push_back(n);
        if (!std::isnan(unc)) c.has_uncertainty = true;
      }
      t.columns.push_back(std::move(c));
    }
    tables.push_back(std::move(t));
  }
  return tables;
}

namespace {

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string cell_text(double v, int n) { return n == 0 ? "" : format_number(v); }

// Column headers and the cells of one pressure row, for a given column layout.
std::vector<std::string> row_cells(const SeriesTable& t, std::size_t i,
                                   const std::vector<std::pair<MetricKey, bool>>& layout) {
  std::vector<std::string> cells;
  for (const auto& [key, with_unc] : layout) {
    const auto* c = t.find(key);
    cells.push_back(c ? cell_text(c->value[i], c->n[i]) : "");
    if (with_unc)
      cells.push_back(c && c->has_uncertainty && !std::isnan(c->uncertainty[i]) ? format_number(c->uncertainty[i])
                                                                                : "");
  }
  return cells;
}

std::string layout_header(const std::vector<std::pair<MetricKey, bool>>& layout,
                          const std::map<MetricKey, std::string>& unit) {
  std::string h;
  for (const auto& [key, with_unc] : layout) {
    h += "," + csv_field(header_of(key, unit.at(key)));
    if (with_unc) h += "," + csv_field(header_of(uncertainty_key(key), unit.at(key)));
  }
  return h;
}

}  // namespace

std::string series_csv(const SeriesTable& t) {
  std::vector<std::pair<MetricKey, bool>> layout;
  std::map<MetricKey, std::string> unit;
  for (const auto& c : t.columns) layout.emplace_back(c.key, c.has_uncertainty), unit[c.key] = c.unit;
  std::string out = "pressure_MPa,n_samples,samples" + layout_header(layout, unit) + "\n";
  for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
    out += format_number(t.pressures_MPa[i]) + "," + std::to_string(t.samples[i].size()) + "," +
           csv_field(join(t.samples[i], ";"));
    for (const auto& cell : row_cells(t, i, layout)) out += "," + csv_field(cell);
    out += "\n";
  }
  return out;
}

std::string all_series_csv(const std::vector<SeriesTable>& tables) {
  std::vector<std::pair<MetricKey, bool>> layout;
  std::map<MetricKey, std::string> unit;
  for (const auto& t : tables)
    for (const auto& c : t.columns) {
      auto it = std::find_if(layout.begin(), layout.end(), [&](const auto& l) { return l.first == c.key; });
      if (it == layout.end()) {
        layout.emplace_back(c.key, c.has_uncertainty);
        unit[c.key] = c.unit;
      } else {
        it->second = it->second || c.has_uncertainty;
      }
    }
  std::string out = "series,pressure_MPa,n_samples,samples" + layout_header(layout, unit) + "\n";
  for (const auto& t : tables)
    for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
      out += csv_field(t.name) + "," + format_number(t.pressures_MPa[i]) + "," + std::to_string(t.samples[i].size()) +
             "," + csv_field(join(t.samples[i], ";"));
      for (const auto& cell : row_cells(t, i, layout)) out += "," + csv_field(cell);
      out += "\n";
    }
  return out;
}

nlohmann::json series_json(const SeriesTable& t) {
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : t.columns) {
    nlohmann::json values = nlohmann::json::array(), status = nlohmann::json::array();
    bool any_status = false;
    for (std::size_t i = 0; i < c.value.size(); ++i) {
      values.push_back(c.n[i] ? json_number(c.value[i]) : nlohmann::json(nullptr));
      const auto s = value_status(c.value[i], c.n[i]);
      any_status = any_status || s != "ok";
      status.push_back(s);
    }
    nlohmann::json j = {{"metric", c.key.metric}, {"phase", c.key.phase}, {"axis", c.key.axis},
                        {"unit", c.unit},         {"values", values},     {"n", c.n}};
    if (any_status) j["status"] = status;
    if (c.has_uncertainty) {
      nlohmann::json u = nlohmann::json::array();
      for (double x : c.uncertainty) u.push_back(json_number(x));
      j["uncertainty"] = u;
    }
    cols.push_back(std::move(j));
  }
  return {{"series", t.name}, {"pressures_MPa", t.pressures_MPa}, {"samples", t.samples}, {"columns", cols}};
}

// ---- fits ----

SeriesFits fit_series(const SeriesTable& t, double crack_threshold) {
  SeriesFits f;
  f.series = t.name;
  const auto& P = t.pressures_MPa;

  // The segmented porosity with its own standard uncertainty (REV or replicate spread), then the
  // partial-volume porosity from the grey with its 95 % half-width as one standard uncertainty.
  auto porosity_columns = t.with_metric(kPorosityMetric);
  if (porosity_columns.empty())
    if (const auto* c = t.find({kVolumeFractionMetric, "pore", ""})) porosity_columns.push_back(c);
  for (const auto* c : porosity_columns)
    f.heckel.push_back({c->key, fit_heckel(P, c->value, c->has_uncertainty ? c->uncertainty : std::vector<double>{})});
  // Likewise for the grey's partial-volume fraction when no phase has the pore role.
  auto porosity_pv_columns = t.with_metric(kPorosityPvMetric);
  if (porosity_pv_columns.empty())
    if (const auto* c = t.find({kVolumeFractionPvMetric, "pore", ""})) porosity_pv_columns.push_back(c);
  for (const auto* c : porosity_pv_columns) {
    std::vector<double> u;
    if (const auto* ci = t.companion(c->key, kCi95Suffix))
      for (double h : ci->value) u.push_back(h / 1.959964);
    f.heckel.push_back({c->key, fit_heckel(P, c->value, u)});
  }

  for (const auto* c : t.with_metric(kContactAreaMetric)) f.knee.push_back({c->key, fit_knee(P, c->value)});

  for (const auto* tau : t.with_metric(kTauMetric)) {
    const SeriesColumn* eps = t.find({kVolumeFractionMetric, tau->key.phase, ""});
    if (!eps && tau->key.phase == "pore") {
      const auto por = t.with_metric(kPorosityMetric);
      if (!por.empty()) eps = por.front();
    }
    if (!eps) continue;  // no fraction for this phase: nothing to fit against
    f.bruggeman.push_back({tau->key, eps->key, fit_bruggeman(eps->value, tau->value)});
  }

  for (const auto* c : t.with_metric(kCrackFractionMetric))
    f.crack_onset.push_back({c->key, find_crack_onset(P, c->value, crack_threshold)});
  return f;
}

nlohmann::json fits_json(const std::vector<SeriesFits>& all) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : all) {
    nlohmann::json fits = nlohmann::json::array();
    for (const auto& h : s.heckel) {
      auto j = to_json(h.fit);
      j["columns"] = {{"x", "pressure_MPa"}, {"porosity", h.porosity.label()}};
      fits.push_back(j);
    }
    for (const auto& k : s.knee) {
      auto j = to_json(k.fit);
      j["columns"] = {{"x", "pressure_MPa"}, {"y", k.column.label()}};
      fits.push_back(j);
    }
    for (const auto& b : s.bruggeman) {
      auto j = to_json(b.fit);
      j["columns"] = {{"eps", b.eps.label()}, {"tau", b.tau.label()}};
      fits.push_back(j);
    }
    for (const auto& o : s.crack_onset) {
      auto j = to_json(o.onset);
      j["columns"] = {{"x", "pressure_MPa"}, {"y", o.column.label()}};
      fits.push_back(j);
    }
    out.push_back({{"series", s.series}, {"fits", fits}});
  }
  return {{"series", out}};
}

std::vector<std::string> file_stems(const std::vector<SeriesTable>& tables) {
  std::vector<std::string> stems;
  std::set<std::string> used;
  for (const auto& t : tables) {
    std::string stem = t.file_stem();
    for (int k = 2; used.count(stem); ++k) stem = t.file_stem() + "_" + std::to_string(k);
    used.insert(stem);
    stems.push_back(stem);
  }
  return stems;
}

SeriesFiles write_series_files(const fs::path& run_dir, const std::vector<SeriesTable>& tables,
                               const std::vector<SeriesFits>& fits) {
  SeriesFiles files;
  const fs::path dir = run_dir / "series";
  fs::create_directories(dir);
  const auto stems = file_stems(tables);
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const auto& t = tables[i];
    const auto& stem = stems[i];
    write_text_atomically(dir / (stem + ".csv"), series_csv(t));
    write_text_atomically(dir / (stem + ".json"), series_json(t).dump(2) + "\n");
    files.files.push_back(fs::path("series") / (stem + ".csv"));
    files.files.push_back(fs::path("series") / (stem + ".json"));
  }
  write_text_atomically(dir / "all_series.csv", all_series_csv(tables));
  files.files.push_back(fs::path("series") / "all_series.csv");
  write_text_atomically(run_dir / "fits.json", fits_json(fits).dump(2) + "\n");
  files.files.push_back("fits.json");
  return files;
}

}  // namespace vp::report
