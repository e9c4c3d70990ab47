#include "pipeline/report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/json_util.h"
#include "core/utc_time.h"

namespace vp::report {

namespace fs = std::filesystem;

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += table[(v >> 18) & 63], out += table[(v >> 12) & 63], out += table[(v >> 6) & 63], out += table[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += table[(v >> 18) & 63], out += table[(v >> 12) & 63], out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += table[(v >> 18) & 63], out += table[(v >> 12) & 63], out += table[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

SeriesOutputs write_series_outputs(const fs::path& run_dir, const ReportOptions& options) {
  SeriesOutputs s;
  s.run = read_run_folder(run_dir);
  s.tables = build_series(s.run.rows, &s.warnings, (run_dir / "metrics.csv").string());
  for (const auto& t : s.tables) s.fits.push_back(fit_series(t, options.crack_threshold));
  s.files = write_series_files(run_dir, s.tables, s.fits).files;
  return s;
}

namespace {

using nlohmann::json;

std::string esc(const std::string& s) { return html_escape(s); }

// Numbers for people: 6 significant digits; non-finite spelled out.
std::string show(double v) {
  if (std::isnan(v)) return "—";
  if (std::isinf(v)) return v > 0 ? "∞" : "−∞";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool is_png(const std::string& bytes) { return bytes.size() > 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) == 0; }

// <img> with the PNG embedded, or a plain note when the file is not a readable PNG.
std::string embedded_png(const fs::path& file, const std::string& alt, const std::string& css_class) {
  const auto bytes = read_bytes(file);
  if (!is_png(bytes)) return "<span class=\"note\">" + esc(file.filename().string()) + " is not a readable PNG</span>";
  return "<img class=\"" + css_class + "\" alt=\"" + esc(alt) + "\" src=\"data:image/png;base64," + base64(bytes) + "\">";
}

std::string relative_link(const fs::path& rel, const std::string& text) {
  return "<a href=\"" + esc(rel.generic_string()) + "\">" + esc(text) + "</a>";
}

std::string json_text(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "—";
  if (j.is_number_float()) return show(j.get<double>());
  return j.dump();
}

// First of the keys present in an object.
const json* field(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object()) return nullptr;
  for (const char* k : keys)
    if (obj.contains(k) && !obj[k].is_null()) return &obj[k];
  return nullptr;
}

std::string series_name(const std::string& s) { return s.empty() ? "(no series)" : s; }

const char* kStyle = R"CSS(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2329;background:#fafbfc}
header{background:#1f3b57;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:1.6em}header p{margin:0;opacity:.85}
nav{background:#e8eef4;padding:8px 28px;position:sticky;top:0;border-bottom:1px solid #cfd8e0}nav a{margin-right:16px;color:#1f3b57;text-decoration:none;font-weight:600}
main{padding:8px 28px 40px}section{margin-top:26px}h2{border-bottom:2px solid #1f3b57;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em;background:#fff}th,td{border:1px solid #cfd8e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto;max-width:100%}.note{color:#8a5a00;background:#fff6e0;border:1px solid #f0d9a0;padding:6px 10px;display:inline-block;border-radius:4px}
.error{color:#8b1a1a;background:#fdecec;border:1px solid #f3b9b9;padding:6px 10px;border-radius:4px}
.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;background:#fff;border:1px solid #cfd8e0;padding:8px;border-radius:4px}
figure img.plot{width:560px;max-width:100%;height:auto;display:block}figcaption{font-size:.85em;color:#4a5560;max-width:560px}
img.slice{width:200px;height:auto;image-rendering:pixelated;display:block}
pre{background:#fff;border:1px solid #cfd8e0;padding:10px;overflow:auto;max-height:420px;font-size:.85em}
.model{background:#fff;border-left:4px solid #1f3b57;padding:6px 12px;margin:8px 0}code{background:#eef2f6;padding:0 3px}
)CSS";

// Marks images that did not load (visible note) and records the counts on <body>, so a
// reader and an automated check both see a broken embed.
const char* kImageCheck = R"JS(
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0, bad = 0;
  for (var i = 0; i < imgs.length; ++i) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; continue; }
    bad++;
    var note = document.createElement('span');
    note.className = 'error';
    note.textContent = 'image failed to load: ' + imgs[i].alt;
    imgs[i].parentNode.insertBefore(note, imgs[i]);
  }
  document.body.setAttribute('data-images-loaded', String(ok));
  document.body.setAttribute('data-images-broken', String(bad));
});
)JS";

struct Failure {
  std::string sample, message;
};

std::vector<Failure> failures(const json& mj) {
  std::vector<Failure> out;
  std::set<std::string> seen;
  for (const auto& s : sample_entries(mj)) {
    const json* e = field(s, {"error", "errors"});
    const json* st = field(s, {"status"});
    const bool failed = (e && !(e->is_string() && e->get<std::string>().empty()) && !(e->is_array() && e->empty())) ||
                        (st && st->is_string() && st->get<std::string>() == "failed");
    if (!failed) continue;
    const std::string name = json_text(s["name"]);
    out.push_back({name, e ? json_text(*e) : "failed"});
    seen.insert(name);
  }
  if (const json* errs = field(mj, {"errors", "failures", "failed"})) {
    if (errs->is_array()) {
      for (const auto& e : *errs) {
        std::string name = e.is_object() && e.contains("sample") ? json_text(e["sample"]) : "";
        if (name.empty() && e.is_object() && e.contains("report_stage")) name = "report stage " + json_text(e["report_stage"]);
        if (!name.empty() && seen.count(name)) continue;
        const json* m = field(e, {"message", "error", "what"});
        out.push_back({name, m ? json_text(*m) : json_text(e)});
      }
    } else if (errs->is_object()) {
      for (const auto& [name, m] : errs->items())
        if (!seen.count(name)) out.push_back({name, json_text(m)});
    }
  }
  return out;
}

void section_summary(std::ostringstream& h, const SeriesOutputs& s, const PlotSet& plots) {
  std::set<std::string> samples;
  for (const auto& r : s.run.rows) samples.insert(r.sample);
  const auto failed = failures(s.run.metrics_json);
  h << "<section id=\"summary\"><h2>Summary</h2>\n<table>"
    << "<tr><th>samples with results</th><td class=\"num\">" << samples.size() << "</td></tr>"
    << "<tr><th>failures (samples, report stages)</th><td class=\"num\">" << failed.size() << "</td></tr>"
    << "<tr><th>series</th><td class=\"num\">" << s.tables.size() << "</td></tr>"
    << "<tr><th>measured numbers</th><td class=\"num\">" << s.run.rows.size() << "</td></tr></table>\n";
  h << "<table><tr><th>series</th><th>pressures (MPa)</th><th>samples</th><th>metric columns</th></tr>\n";
  for (const auto& t : s.tables) {
    std::string pressures, names;
    std::size_t n = 0;
    for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
      pressures += (i ? ", " : "") + show(t.pressures_MPa[i]);
      for (const auto& sm : t.samples[i]) names += (n++ ? ", " : "") + sm;
    }
    h << "<tr><td>" << esc(series_name(t.name)) << "</td><td>" << esc(pressures) << "</td><td>" << esc(names)
      << "</td><td class=\"num\">" << t.columns.size() << "</td></tr>\n";
  }
  h << "</table>\n";
  if (!failed.empty()) {
    h << "<h3>Failures</h3><table><tr><th>sample</th><th>error</th></tr>\n";
    for (const auto& f : failed)
      h << "<tr><td>" << esc(f.sample) << "</td><td class=\"error\">" << esc(f.message) << "</td></tr>\n";
    h << "</table>\n";
  } else {
    h << "<p>No sample failed.</p>\n";
  }
  if (!s.run.has_metrics_json)
    h << "<p class=\"note\">metrics.json is missing from the run folder: settings and provenance are unknown.</p>\n";
  if (!plots.message.empty()) h << "<p class=\"note\">Plots: " << esc(plots.message) << "</p>\n";
  if (!s.warnings.empty()) {
    h << "<h3>Warnings</h3><ul>\n";
    for (const auto& w : s.warnings) h << "<li>" << esc(w) << "</li>\n";
    h << "</ul>\n";
  }
  h << "</section>\n";
}

void section_plots(std::ostringstream& h, const fs::path& run_dir, const PlotSet& plots, const ReportOptions& o) {
  h << "<section id=\"plots\"><h2>Plots</h2>\n";
  if (!o.plots) {
    h << "<p class=\"note\">Plots were switched off (plots: false).</p>\n";
  } else if (!plots.drawn) {
    h << "<p class=\"note\">" << esc(plots.message) << "</p>\n";
  } else {
    if (!plots.message.empty()) h << "<p class=\"note\">" << esc(plots.message) << "</p>\n";
    h << "<p>Each metric against applied pressure; series as separate lines. Every plot is also a PNG file in "
         "<code>plots/</code> (drawn by gnuplot, pngcairo).</p>\n<div class=\"plots\">\n";
    // The quantities a pressure study is read for come first; the rest keep the stages' order.
    static const std::vector<std::string> headline = {
        "porosity", "relative_density", "contact_area_fraction", "tau", "sigma_eff", "macmullin",
        "heckel", "bruggeman", "crack_volume_fraction", "crack_count", "percolating_fraction"};
    auto rank = [&](const Plot& p) {
      const std::string key = p.title.substr(0, p.title.find('|'));
      for (std::size_t i = 0; i < headline.size(); ++i)
        if (key == headline[i] || p.id.rfind(headline[i] + "_", 0) == 0) return i;
      return headline.size();
    };
    std::vector<const Plot*> ordered;
    for (const auto& p : plots.plots) ordered.push_back(&p);
    std::stable_sort(ordered.begin(), ordered.end(), [&](const Plot* a, const Plot* b) { return rank(*a) < rank(*b); });
    for (const Plot* p : ordered)
      h << "<figure>" << embedded_png(run_dir / p->png, p->title, "plot") << "<figcaption>" << esc(p->caption) << " — "
        << relative_link(p->png, p->png.generic_string()) << "</figcaption></figure>\n";
    h << "</div>\n";
  }
  h << "</section>\n";
}

std::string num_td(double v) { return "<td class=\"num\">" + show(v) + "</td>"; }

void section_fits(std::ostringstream& h, const SeriesOutputs& s, const ReportOptions& o) {
  h << "<section id=\"fits\"><h2>Trend fits</h2>\n"
       "<p>Fits use the series tables (one value per pressure). A fit needs at least 3 valid points (the knee model "
       "4); otherwise its status is <code>insufficient_points</code> and no number is given. All results are also in "
       << relative_link("fits.json", "fits.json") << ".</p>\n";

  h << "<h3>Heckel compaction</h3><div class=\"model\">ln(1/(1−D)) = k·P + A with relative density D = 1 − porosity; "
       "least squares over the pressures with 0 &lt; porosity ≤ 1. Yield pressure P<sub>y</sub> = 1/k.</div>\n"
       "<table><tr><th>series</th><th>porosity column</th><th>status</th><th>n</th><th>k (MPa⁻¹)</th><th>A</th>"
       "<th>yield pressure (MPa)</th><th>R²</th></tr>\n";
  bool any = false;
  for (const auto& f : s.fits)
    for (const auto& r : f.heckel) {
      any = true;
      h << "<tr><td>" << esc(series_name(f.series)) << "</td><td>" << esc(r.porosity.label()) << "</td><td>"
        << esc(r.fit.status) << "</td><td class=\"num\">" << r.fit.n_points << "</td>" << num_td(r.fit.k_per_MPa)
        << num_td(r.fit.A) << num_td(r.fit.yield_pressure_MPa) << num_td(r.fit.r2) << "</tr>\n";
    }
  h << "</table>\n";
  if (!any) h << "<p class=\"note\">No <code>porosity</code> (or <code>volume_fraction|pore|</code>) column in metrics.csv.</p>\n";

  h << "<h3>Contact-area fraction: knee / plateau</h3><div class=\"model\">f(P) = plateau + slope·min(P − P<sub>knee</sub>, 0): "
       "linear rise, then a plateau; continuous least squares over the knee position (exact global optimum). Status "
       "<code>no_plateau</code>: still rising at the highest pressure; <code>no_rise</code>: flat throughout.</div>\n"
       "<table><tr><th>series</th><th>column</th><th>status</th><th>n</th><th>knee pressure (MPa)</th><th>plateau</th>"
       "<th>slope below knee (MPa⁻¹)</th><th>R²</th></tr>\n";
  any = false;
  for (const auto& f : s.fits)
    for (const auto& r : f.knee) {
      any = true;
      h << "<tr><td>" << esc(series_name(f.series)) << "</td><td>" << esc(r.column.label()) << "</td><td>"
        << esc(r.fit.status) << "</td><td class=\"num\">" << r.fit.n_points << "</td>" << num_td(r.fit.knee_pressure_MPa)
        << num_td(r.fit.plateau) << num_td(r.fit.slope_per_MPa) << num_td(r.fit.r2) << "</tr>\n";
    }
  h << "</table>\n";
  if (!any) h << "<p class=\"note\">No <code>contact_area_fraction</code> column in metrics.csv.</p>\n";

  h << "<h3>Tortuosity against phase fraction (Bruggeman-type)</h3><div class=\"model\">τ = ε<sup>−α</sup>: least "
       "squares of ln τ = −α ln ε through the origin over points with 0 &lt; ε &lt; 1 and finite τ (non-percolating "
       "samples are left out). ε is the volume fraction of τ's phase. The free fit τ = c·ε<sup>−α</sup> is shown for "
       "comparison.</div>\n<table><tr><th>series</th><th>τ column</th><th>ε column</th><th>status</th><th>n</th>"
       "<th>α</th><th>R²</th><th>α (free)</th><th>c (free)</th><th>R² (free)</th></tr>\n";
  any = false;
  for (const auto& f : s.fits)
    for (const auto& r : f.bruggeman) {
      any = true;
      h << "<tr><td>" << esc(series_name(f.series)) << "</td><td>" << esc(r.tau.label()) << "</td><td>" << esc(r.eps.label())
        << "</td><td>" << esc(r.fit.status) << "</td><td class=\"num\">" << r.fit.n_points << "</td>" << num_td(r.fit.alpha)
        << num_td(r.fit.r2) << num_td(r.fit.alpha_free) << num_td(r.fit.prefactor_free) << num_td(r.fit.r2_free) << "</tr>\n";
    }
  h << "</table>\n";
  if (!any) h << "<p class=\"note\">No <code>tau</code> column with a matching <code>volume_fraction</code> in metrics.csv.</p>\n";

  h << "<h3>Crack onset</h3><div class=\"model\">The lowest sampled pressure whose crack volume fraction exceeds the "
       "threshold (" << show(o.crack_threshold) << "), and the linear interpolation of the crossing between the "
       "pressure before it and that one.</div>\n<table><tr><th>series</th><th>column</th><th>status</th><th>n</th>"
       "<th>threshold</th><th>onset pressure (MPa)</th><th>interpolated crossing (MPa)</th></tr>\n";
  any = false;
  for (const auto& f : s.fits)
    for (const auto& r : f.crack_onset) {
      any = true;
      h << "<tr><td>" << esc(series_name(f.series)) << "</td><td>" << esc(r.column.label()) << "</td><td>"
        << esc(r.onset.status) << "</td><td class=\"num\">" << r.onset.n_points << "</td>" << num_td(r.onset.threshold)
        << num_td(r.onset.onset_pressure_MPa) << num_td(r.onset.interpolated_onset_MPa) << "</tr>\n";
    }
  h << "</table>\n";
  if (!any) h << "<p class=\"note\">No <code>crack_volume_fraction</code> column in metrics.csv.</p>\n";
  h << "</section>\n";
}

void section_gallery(std::ostringstream& h, const SeriesOutputs& s) {
  static const std::vector<std::pair<std::string, std::string>> kinds = {
      {"grey", "grey"}, {"labels", "labels"}, {"cracks", "cracks"}, {"current", "current density"}};
  h << "<section id=\"gallery\"><h2>Slice gallery</h2>\n<p>Mid-plane slices of each sample (xy at mid-z where "
       "present, else xz or yz), in order of pressure. — marks a slice the run did not write.</p>\n";
  for (const auto& t : s.tables) {
    h << "<h3>" << esc(series_name(t.name)) << "</h3><div class=\"scroll\"><table><tr><th>pressure (MPa)</th><th>sample</th>";
    for (const auto& k : kinds) h << "<th>" << esc(k.second) << "</th>";
    h << "</tr>\n";
    for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i)
      for (const auto& sample : t.samples[i]) {
        h << "<tr><td class=\"num\">" << show(t.pressures_MPa[i]) << "</td><td>" << esc(sample) << "</td>";
        for (const auto& k : kinds) {
          const auto png = find_slice_png(s.run.dir, sample, k.first);
          h << "<td>";
          if (png.empty()) h << "—";
          else h << embedded_png(png, sample + " " + k.second, "slice") << "<small>" << esc(png.filename().string()) << "</small>";
          h << "</td>";
        }
        h << "</tr>\n";
      }
    h << "</table></div>\n";
  }
  h << "</section>\n";
}

void section_tables(std::ostringstream& h, const SeriesOutputs& s) {
  const auto stems = file_stems(s.tables);
  h << "<section id=\"tables\"><h2>Series tables</h2>\n<p>Every metric against pressure (value ± one standard "
       "uncertainty where one exists). The same numbers, full precision, in the CSV/JSON files linked per series; "
       "all series side by side in " << relative_link("series/all_series.csv", "series/all_series.csv") << ".</p>\n";
  for (std::size_t ti = 0; ti < s.tables.size(); ++ti) {
    const auto& t = s.tables[ti];
    h << "<h3>" << esc(series_name(t.name)) << "</h3><p>" << relative_link("series/" + stems[ti] + ".csv", stems[ti] + ".csv")
      << " · " << relative_link("series/" + stems[ti] + ".json", stems[ti] + ".json") << "</p>\n"
      << "<div class=\"scroll\"><table><tr><th>metric|phase|axis</th><th>unit</th>";
    for (double p : t.pressures_MPa) h << "<th>" << show(p) << " MPa</th>";
    h << "</tr>\n<tr><th>samples</th><td></td>";
    for (const auto& names : t.samples) {
      std::string joined;
      for (std::size_t k = 0; k < names.size(); ++k) joined += (k ? ", " : "") + names[k];
      h << "<td>" << esc(joined) << "</td>";
    }
    h << "</tr>\n";
    for (const auto& c : t.columns) {
      h << "<tr><td>" << esc(c.key.label()) << "</td><td>" << esc(c.unit) << "</td>";
      for (std::size_t i = 0; i < c.value.size(); ++i) {
        std::string cell = c.n[i] ? show(c.value[i]) : "";
        if (c.n[i] && c.has_uncertainty && std::isfinite(c.uncertainty[i])) cell += " ± " + show(c.uncertainty[i]);
        h << "<td class=\"num\">" << esc(cell) << "</td>";
      }
      h << "</tr>\n";
    }
    h << "</table></div>\n";
  }
  h << "</section>\n";
}

void section_settings(std::ostringstream& h, const SeriesOutputs& s, const ReportOptions& o) {
  const json& mj = s.run.metrics_json;
  h << "<section id=\"settings\"><h2>Settings</h2>\n<h3>Report</h3><table>"
    << "<tr><th>title</th><td>" << esc(o.title) << "</td></tr>"
    << "<tr><th>crack_threshold</th><td>" << show(o.crack_threshold) << " (crack volume fraction, 1)</td></tr>"
    << "<tr><th>plots</th><td>" << (o.plots ? "true" : "false") << "</td></tr></table>\n<h3>Batch configuration</h3>\n";
  const json* cfg = field(mj, {"config"});
  std::string path, sha, text;
  if (cfg && cfg->is_string()) path = cfg->get<std::string>();
  if (cfg && cfg->is_object()) {
    if (const json* p = field(*cfg, {"path", "file"})) path = json_text(*p);
    if (const json* h2 = field(*cfg, {"sha256", "hash"})) sha = json_text(*h2);
    if (const json* t = field(*cfg, {"text", "yaml", "content"})) text = json_text(*t);
  }
  if (const json* h2 = field(mj, {"config_sha256"})) sha = json_text(*h2);
  h << "<table><tr><th>config file</th><td>" << esc(path.empty() ? "unknown" : path) << "</td></tr>"
    << "<tr><th>sha256</th><td><code>" << esc(sha.empty() ? "unknown" : sha) << "</code></td></tr></table>\n";
  std::string origin;
  if (!text.empty()) {
    origin = "as recorded in metrics.json";
  } else {
    // A copy in the run folder first, then the original file if it is unchanged.
    for (const char* name : {"config.yaml", "config.yml"}) {
      std::error_code ec;
      if (fs::is_regular_file(s.run.dir / name, ec)) {
        text = read_bytes(s.run.dir / name);
        origin = std::string("copy in the run folder (") + name + ")";
        break;
      }
    }
    std::error_code ec;
    if (text.empty() && !path.empty() && fs::is_regular_file(path, ec)) {
      const std::string now = sha256_file(path);
      text = read_bytes(path);
      origin = sha.empty() || now == sha ? "the config file (unchanged since the run)"
                                         : "the config file, which CHANGED since the run (sha256 now " + now + ")";
    }
  }
  if (text.empty()) h << "<p class=\"note\">The configuration text is not available.</p>\n";
  else h << "<p>Source: " << esc(origin) << "</p><pre>" << esc(text) << "</pre>\n";
  h << "</section>\n";
}

void section_provenance(std::ostringstream& h, const SeriesOutputs& s) {
  const json& mj = s.run.metrics_json;
  h << "<section id=\"provenance\"><h2>Provenance</h2>\n<table>";
  for (const char* key : {"voxpress_version", "version", "threads", "jobs", "memory_budget_bytes", "started", "finished",
                          "seconds"})
    if (const json* v = field(mj, {key})) h << "<tr><th>" << esc(key) << "</th><td>" << esc(json_text(*v)) << "</td></tr>";
  h << "<tr><th>report generated</th><td>" << esc(utc_time("%Y-%m-%d %H:%M:%S UTC")) << "</td></tr></table>\n";
  const auto entries = sample_entries(mj);
  if (!entries.empty()) {
    h << "<div class=\"scroll\"><table><tr><th>sample</th><th>series</th><th>pressure (MPa)</th><th>input</th><th>sha256</th>"
         "<th>spacing (µm)</th><th>dims</th><th>stage times (s)</th></tr>\n";
    for (const auto& e : entries) {
      std::string input, sha;
      if (const json* in = field(e, {"input", "inputs"})) {
        if (in->is_object()) {
          if (const json* p = field(*in, {"path"})) input = json_text(*p);
          if (const json* q = field(*in, {"sha256"})) sha = json_text(*q);
        } else {
          input = json_text(*in);
        }
      }
      if (const json* p = field(e, {"input_path", "path"})) input = json_text(*p);
      if (const json* l = field(e, {"labels_input"}); l && l->is_object()) {
        if (const json* p = field(*l, {"path"})) input += " + labels " + json_text(*p);
        if (const json* q = field(*l, {"sha256"})) sha += " + " + json_text(*q);
      }
      if (const json* q = field(e, {"input_sha256", "sha256"})) sha = json_text(*q);
      std::string times;
      if (const json* st = field(e, {"stages", "timings", "stage_seconds"})) {
        if (st->is_array()) {
          for (const auto& x : *st) {
            const json* n = field(x, {"stage", "name"});
            const json* sec = field(x, {"seconds", "time_s", "elapsed_s", "wall_s"});
            if (n) times += json_text(*n) + ": " + (sec ? json_text(*sec) : "?") + "; ";
          }
        } else if (st->is_object()) {
          for (const auto& [k, v] : st->items()) {
            const json* sec = v.is_number() ? &v : field(v, {"seconds", "time_s", "elapsed_s", "wall_s"});
            times += k + ": " + (sec ? json_text(*sec) : "?") + "; ";
          }
        }
      }
      const json* series = field(e, {"series"});
      const json* pressure = field(e, {"pressure_MPa"});
      const json* spacing = field(e, {"spacing_um", "spacing"});
      const json* dims = field(e, {"dims", "dimensions"});
      h << "<tr><td>" << esc(json_text(e["name"])) << "</td><td>" << esc(series ? json_text(*series) : "") << "</td><td>"
        << esc(pressure ? json_text(*pressure) : "") << "</td><td>" << esc(input) << "</td><td><code>" << esc(sha)
        << "</code></td><td>" << esc(spacing ? json_text(*spacing) : "") << "</td><td>" << esc(dims ? json_text(*dims) : "")
        << "</td><td>" << esc(times) << "</td></tr>\n";
    }
    h << "</table></div>\n";
  }
  if (s.run.has_metrics_json) {
    std::string dump = mj.dump(2);
    constexpr std::size_t kMax = 200000;
    if (dump.size() > kMax) dump = dump.substr(0, kMax) + "\n… (truncated; see metrics.json)";
    h << "<details><summary>metrics.json in full</summary><pre>" << esc(dump) << "</pre></details>\n";
  }
  h << "</section>\n";
}

void section_files(std::ostringstream& h, const SeriesOutputs& s, const PlotSet& plots) {
  h << "<section id=\"files\"><h2>Files</h2>\n<p>Relative to this report's folder.</p><ul>\n"
    << "<li>" << relative_link("metrics.csv", "metrics.csv") << " — every number, tidy long form</li>\n";
  if (s.run.has_metrics_json) h << "<li>" << relative_link("metrics.json", "metrics.json") << " — numbers with provenance</li>\n";
  for (const auto& f : s.files) h << "<li>" << relative_link(f, f.generic_string()) << "</li>\n";
  for (const auto& p : plots.plots) h << "<li>" << relative_link(p.png, p.png.generic_string()) << "</li>\n";
  h << "</ul></section>\n";
}

}  // namespace

std::string render_report_html(const SeriesOutputs& s, const PlotSet& plots, const ReportOptions& o) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"
    << esc(o.title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n<header><h1>" << esc(o.title)
    << "</h1><p>Run folder " << esc(fs::absolute(s.run.dir).lexically_normal().string()) << " · generated " << esc(utc_time("%Y-%m-%d %H:%M:%S UTC"))
    << "</p></header>\n<nav><a href=\"#summary\">Summary</a><a href=\"#plots\">Plots</a><a href=\"#fits\">Fits</a>"
       "<a href=\"#gallery\">Gallery</a><a href=\"#tables\">Tables</a><a href=\"#settings\">Settings</a>"
       "<a href=\"#provenance\">Provenance</a><a href=\"#files\">Files</a></nav>\n<main>\n";
  section_summary(h, s, plots);
  section_plots(h, s.run.dir, plots, o);
  section_fits(h, s, o);
  section_gallery(h, s);
  section_tables(h, s);
  section_settings(h, s, o);
  section_provenance(h, s);
  section_files(h, s, plots);
  h << "</main>\n<script>" << kImageCheck << "</script>\n</body></html>\n";
  return h.str();
}

ReportOutputs write_report(const fs::path& run_dir, const ReportOptions& options) {
  ReportOutputs out;
  const auto series = write_series_outputs(run_dir, options);
  if (options.plots) {
    const std::string exe = options.gnuplot.empty() ? find_gnuplot() : options.gnuplot;
    out.plots = draw_plots(run_dir, series.tables, series.fits, exe);
  }
  out.html = run_dir / "report.html";
  write_text_atomically(out.html, render_report_html(series, out.plots, options));
  out.files = series.files;
  for (const auto& p : out.plots.plots) out.files.push_back(p.png);
  out.files.push_back("report.html");
  out.warnings = series.warnings;
  if (!out.plots.message.empty()) out.warnings.push_back("plots: " + out.plots.message);
  return out;
}

}  // namespace vp::report
