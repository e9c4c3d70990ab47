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
#include "pipeline/report/chart.h"
#include "pipeline/report/truth.h"

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

// HTML text and attribute values need exactly the XML escapes.
std::string html_escape(const std::string& text) { return xml_escape(text); }

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
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2329;background:#fafbfc;line-height:1.4}
header{background:#1f3b57;color:#fff;padding:10px 24px}header h1{margin:0;font-size:1.3em;font-weight:600}header p{margin:2px 0 0;opacity:.8;font-size:.82em}
nav{background:#e8eef4;padding:5px 24px;position:sticky;top:0;z-index:5;border-bottom:1px solid #cfd8e0;font-size:.9em}nav a{margin-right:14px;color:#1f3b57;text-decoration:none;font-weight:600}
main{padding:4px 24px 40px}section{margin-top:18px}h2{border-bottom:2px solid #1f3b57;padding-bottom:3px;margin:8px 0 8px;font-size:1.25em}
h3{margin:14px 0 6px;font-size:1.05em}h4{margin:0 0 4px;font-size:.92em;color:#1f3b57}
p.lead{margin:4px 0 6px;max-width:1200px}ul.caveats{margin:2px 0 8px;padding-left:20px;color:#7a4a00;font-size:.92em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.88em;background:#fff}th,td{border:1px solid #cfd8e0;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" ⇅";color:#9aa5b1;font-size:.8em}
.scroll{overflow-x:auto;max-width:100%}.note{color:#8a5a00;background:#fff6e0;border:1px solid #f0d9a0;padding:6px 10px;display:inline-block;border-radius:4px}
.error{color:#8b1a1a;background:#fdecec;border:1px solid #f3b9b9;padding:6px 10px;border-radius:4px}
.headline{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:6px;max-width:1240px}
figure.fig{margin:0;background:#fff;border:1px solid #dde3e9;border-radius:4px;padding:2px;position:relative}
figure.fig svg{display:block;width:100%;height:auto}
.dl{position:absolute;right:6px;top:4px;font-size:11px;opacity:.35}.panels .dl{opacity:0;top:auto;bottom:2px}figure.fig:hover .dl{opacity:1}
.dl button{font:inherit;border:1px solid #b8c3ce;background:#f4f7fa;border-radius:3px;padding:0 5px;margin-left:2px;cursor:pointer;color:#1f3b57}
.families{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.family{background:#fff;border:1px solid #dde3e9;border-radius:4px;padding:5px}
.panels{display:grid;gap:4px}.panels figure.fig{border:none;padding:0;width:232px}
.legend-row{display:flex;flex-wrap:wrap;gap:14px;font-size:.88em;margin:4px 0 8px;align-items:center}
.swatch{display:inline-block;width:14px;height:14px;border-radius:2px;vertical-align:-2px;margin-right:4px;border:1px solid #0003}
.slice{position:relative;display:inline-block;line-height:0}
.slice img{width:170px;height:auto;image-rendering:pixelated;display:block}
.bar{position:absolute;left:8px;bottom:8px;height:4px;background:#fff;box-shadow:0 0 0 1px #000}
.bar-label{position:absolute;left:8px;bottom:14px;color:#fff;font-size:11px;line-height:1;text-shadow:0 0 2px #000,0 0 2px #000}
pre{background:#fff;border:1px solid #cfd8e0;padding:10px;overflow:auto;max-height:420px;font-size:.85em}
.model{background:#fff;border-left:4px solid #1f3b57;padding:6px 12px;margin:8px 0}code{background:#eef2f6;padding:0 3px}
input.filter{font:inherit;padding:3px 6px;margin:4px 0;width:280px}
)CSS";

// Marks images that did not load (visible note) and records on <body> what automated checks read:
// images loaded/broken, titles or axis labels containing '|', the smallest pressure-axis minimum,
// where the headline section ends, and resources fetched from anywhere but data:/blob: URLs.
const char* kPageChecks = R"JS(
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
  var b = document.body, pipes = 0, xmin = Infinity;
  document.querySelectorAll('.chart-title, .axis-label').forEach(function (t) { if (t.textContent.indexOf('|') >= 0) pipes++; });
  document.querySelectorAll('svg.chart').forEach(function (s) { xmin = Math.min(xmin, parseFloat(s.getAttribute('data-x-min'))); });
  var head = document.getElementById('headline'), first = document.querySelector('#headline svg.chart');
  var remote = performance.getEntriesByType('resource').filter(function (e) { return !/^(data|blob):/.test(e.name); });
  b.setAttribute('data-images-loaded', String(ok));
  b.setAttribute('data-images-broken', String(bad));
  b.setAttribute('data-pipe-labels', String(pipes));
  b.setAttribute('data-charts', String(document.querySelectorAll('svg.chart').length));
  b.setAttribute('data-min-pressure-axis', String(xmin));
  if (head) b.setAttribute('data-headline-bottom', String(Math.round(head.getBoundingClientRect().bottom + window.scrollY)));
  if (first) b.setAttribute('data-first-chart-top', String(Math.round(first.getBoundingClientRect().top + window.scrollY)));
  b.setAttribute('data-remote-resources', String(remote.length));
});
)JS";

// Downloads (SVG, PNG drawn from the SVG on a canvas, the CSV behind a figure) and the sortable,
// filterable metric table: a few lines instead of a library, so the file stays offline.
const char* kInteractions = R"JS(
function vpSave(name, blob) {
  var a = document.createElement('a');
  a.href = URL.createObjectURL(blob); a.download = name;
  document.body.appendChild(a); a.click();
  setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
function vpDownload(id, kind) {
  var svg = document.getElementById(id);
  if (kind === 'csv') { vpSave(id + '.csv', new Blob([document.getElementById('csv-' + id).textContent], {type: 'text/csv'})); return; }
  var text = new XMLSerializer().serializeToString(svg);
  if (kind === 'svg') { vpSave(id + '.svg', new Blob([text], {type: 'image/svg+xml'})); return; }
  var img = new Image(), scale = 300 / 96;
  img.onload = function () {
    var c = document.createElement('canvas');
    c.width = Math.round(svg.viewBox.baseVal.width * scale); c.height = Math.round(svg.viewBox.baseVal.height * scale);
    var g = c.getContext('2d'); g.fillStyle = '#fff'; g.fillRect(0, 0, c.width, c.height);
    g.drawImage(img, 0, 0, c.width, c.height);
    c.toBlob(function (b) { vpSave(id + '.png', b); }, 'image/png');
  };
  img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(text);
}
document.addEventListener('click', function (e) {
  var t = e.target;
  if (t.hasAttribute && t.hasAttribute('data-dl')) { vpDownload(t.getAttribute('data-fig'), t.getAttribute('data-dl')); return; }
  if (t.tagName === 'TH' && t.closest('table.sortable')) {
    var table = t.closest('table'), col = t.cellIndex, body = table.tBodies[0];
    var dir = t.getAttribute('data-dir') === 'asc' ? -1 : 1;
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
    t.setAttribute('data-dir', dir > 0 ? 'asc' : 'desc');
    var key = function (r) { var c = r.cells[col]; var v = c.getAttribute('data-v'); return v !== null ? parseFloat(v) : c.textContent; };
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (typeof x === 'number' && typeof y === 'number') {
        if (isNaN(x)) return 1; if (isNaN(y)) return -1; return dir * (x - y);
      }
      return dir * String(x).localeCompare(String(y));
    }).forEach(function (r) { body.appendChild(r); });
  }
});
document.addEventListener('input', function (e) {
  if (!e.target.classList.contains('filter')) return;
  var q = e.target.value.toLowerCase(), table = document.getElementById(e.target.getAttribute('data-table'));
  Array.prototype.forEach.call(table.tBodies[0].rows, function (r) { r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none'; });
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
        if (name.empty() && e.is_object() && e.contains("report_stage"))
          name = "report stage " + json_text(e["report_stage"]);
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

void section_samples(std::ostringstream& h, const SeriesOutputs& s) {
  std::set<std::string> samples;
  for (const auto& r : s.run.rows) samples.insert(r.sample);
  const auto failed = failures(s.run.metrics_json);
  h << "<section id=\"summary\"><h2>Samples and failures</h2>\n<table>"
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
  if (!s.warnings.empty()) {
    h << "<h3>Warnings</h3><ul>\n";
    for (const auto& w : s.warnings) h << "<li>" << esc(w) << "</li>\n";
    h << "</ul>\n";
  }
  h << "</section>\n";
}

// A figure: the inline SVG, its data for download, and the download buttons.
void figure(std::ostringstream& h, const Chart& c, const ChartStyle& style) {
  std::string csv = c.csv;
  for (std::size_t pos = 0; (pos = csv.find("</", pos)) != std::string::npos; pos += 3) csv.replace(pos, 2, "<\\/");
  h << "<figure class=\"fig\">" << render_svg(c, style) << "<div class=\"dl\">";
  for (const char* kind : {"svg", "png", "csv"})
    h << "<button type=\"button\" data-dl=\"" << kind << "\" data-fig=\"" << esc(c.id)
      << "\" title=\"download this figure as " << kind << "\">" << kind << "</button>";
  h << "</div><script type=\"text/csv\" id=\"csv-" << esc(c.id) << "\">" << csv << "</script></figure>\n";
}

void section_headline(std::ostringstream& h, const HeadlinePanel& panel, const ReportOptions& o) {
  h << "<section id=\"headline\"><h2>Headline results</h2>\n<p class=\"lead\">";
  for (std::size_t i = 0; i < panel.summary.size(); ++i) h << (i ? " " : "") << esc(panel.summary[i]);
  if (panel.summary.empty()) h << "No headline metric has enough data for a trend.";
  h << "</p>\n";
  if (!panel.caveats.empty()) {
    h << "<ul class=\"caveats\">";
    for (const auto& c : panel.caveats) h << "<li>" << esc(c) << "</li>";
    h << "</ul>\n";
  }
  if (!o.plots) {
    h << "<p class=\"note\">Plots were switched off (plots: false).</p>\n";
  } else {
    h << "<div class=\"headline\">\n";
    for (const auto& c : panel.charts) figure(h, c, headline_style());
    h << "</div>\n";
  }
  h << "</section>\n";
}

void phase_legend(std::ostringstream& h, const Names& names, bool with_truth) {
  if (names.phases().empty()) return;
  h << "<div class=\"legend-row\"><span>Phase colours (plots and slices):</span>";
  for (const auto& p : names.phases().phases())
    h << "<span><span class=\"swatch\" style=\"background:" << names.phase_colour(p.name).hex() << "\"></span>"
      << esc(names.phase(p.name)) << " <small>(label " << p.label << ", " << esc(to_string(p.role))
      << ")</small></span>";
  if (with_truth) h << "<span>black dashed line with open squares: ground truth</span>";
  h << "</div>\n";
}

std::size_t section_multiples(std::ostringstream& h, const std::vector<MetricFamily>& families, const Names& names,
                              const ReportOptions& o, bool multi_series, bool has_truth) {
  h << "<section id=\"plots\"><h2>All other metrics</h2>\n";
  if (!o.plots) {
    h << "<p class=\"note\">Plots were switched off (plots: false).</p></section>\n";
    return 0;
  }
  h << "<p class=\"lead\">Every other metric against pressure, one grid per metric sharing its axes"
    << (multi_series ? ", the series as lines" : ", the phases as lines in their phase colours")
    << ". Hover a point for its value; the table below has every number.</p>\n";
  if (!multi_series) phase_legend(h, names, has_truth);
  std::size_t n = 0;
  std::string topic;
  for (const auto& f : families) {
    if (f.topic != topic) {
      if (!topic.empty()) h << "</div>\n";
      topic = f.topic;
      h << "<h3>" << esc(topic) << "</h3><div class=\"families\">\n";
    }
    const int columns = static_cast<int>(std::min<std::size_t>(f.panels.size(), 3));
    h << "<div class=\"family\">";
    if (f.panels.size() > 1) h << "<h4>" << esc(f.title) << "</h4>";
    h << "<div class=\"panels\" style=\"grid-template-columns:repeat(" << columns << ",232px)\">";
    for (const auto& c : f.panels) figure(h, c, panel_style()), ++n;
    h << "</div></div>\n";
  }
  if (!topic.empty()) h << "</div>\n";
  if (families.empty()) h << "<p>No other metric in metrics.csv.</p>\n";
  h << "</section>\n";
  return n;
}

std::string num_td(double v) { return "<td class=\"num\">" + show(v) + "</td>"; }

// "120 – 190", "≥ 120" when the upper end is unbounded (k − half-width ≤ 0), "—" without an interval.
std::string yield_interval(const HeckelFit& f) {
  if (!std::isfinite(f.yield_pressure_ci95_low_MPa)) return "—";
  if (!std::isfinite(f.yield_pressure_ci95_high_MPa)) return "≥ " + show(f.yield_pressure_ci95_low_MPa);
  return show(f.yield_pressure_ci95_low_MPa) + " – " + show(f.yield_pressure_ci95_high_MPa);
}

void section_fits(std::ostringstream& h, const SeriesOutputs& s, const ReportOptions& o, const Names& names) {
  auto column = [&](const MetricKey& k) {
    return esc(names.title(k)) + " <small><code>" + esc(k.label()) + "</code></small>";
  };
  h << "<section id=\"fits\"><h2>Trend fits</h2>\n"
       "<p>Fits use the series tables (one value per pressure). A fit needs at least 3 valid points (the knee model "
       "4); otherwise its status is <code>insufficient_points</code> and no number is given. All results are also in "
    << relative_link("fits.json", "fits.json") << ".</p>\n";

  h << "<h3>Heckel compaction</h3><div class=\"model\">ln(1/(1−D)) = k·P + A with relative density D = 1 − porosity; "
       "least squares over the pressures with 0 &lt; porosity ≤ 1. Yield pressure P<sub>y</sub> = 1/k. The 95 % "
       "half-width of k combines the scatter about the line (Student t, n − 2 degrees of freedom) with the porosities' "
       "own uncertainties (the partial-volume porosity's 95 % interval, a REV or replicate spread) propagated through "
       "the fit; the yield pressure's interval is 1/k over k ± that half-width.</div>\n"
       "<table><tr><th>series</th><th>porosity column</th><th>status</th><th>n</th><th>k (MPa⁻¹)</th>"
       "<th>± 95 % (MPa⁻¹)</th><th>A</th><th>yield pressure (MPa)</th><th>95 % interval (MPa)</th><th>R²</th></tr>\n";
  bool any = false;
  for (const auto& f : s.fits)
    for (const auto& r : f.heckel) {
      any = true;
      h << "<tr><td>" << esc(series_name(f.series)) << "</td><td>" << column(r.porosity) << "</td><td>"
        << esc(r.fit.status) << "</td><td class=\"num\">" << r.fit.n_points << "</td>" << num_td(r.fit.k_per_MPa)
        << num_td(r.fit.k_ci95) << num_td(r.fit.A) << num_td(r.fit.yield_pressure_MPa) << "<td class=\"num\">"
        << yield_interval(r.fit) << "</td>" << num_td(r.fit.r2) << "</tr>\n";
    }
  h << "</table>\n";
  if (!any)
    h << "<p class=\"note\">No <code>porosity</code> (or pore <code>volume_fraction</code>) column in "
         "metrics.csv.</p>\n";

  h << "<h3>Contact-area fraction: knee / plateau</h3><div class=\"model\">f(P) = plateau + slope·min(P − "
       "P<sub>knee</sub>, 0): "
       "linear rise, then a plateau; continuous least squares over the knee position (exact global optimum). The 95 % "
       "interval of the knee is the profile-likelihood interval: knees whose best fit has SSE ≤ SSE<sub>min</sub>·(1 + "
       "t²<sub>0.975, n−3</sub>/(n − 3)). Status <code>no_plateau</code>: still rising at the highest pressure; "
       "<code>no_rise</code>: flat throughout.</div>\n"
       "<table><tr><th>series</th><th>column</th><th>status</th><th>n</th><th>knee pressure (MPa)</th>"
       "<th>95 % interval (MPa)</th><th>plateau</th><th>slope below knee (MPa⁻¹)</th><th>R²</th></tr>\n";
  any = false;
  for (const auto& f : s.fits)
    for (const auto& r : f.knee) {
      any = true;
      h << "<tr><td>" << esc(series_name(f.series)) << "</td><td>" << column(r.column) << "</td><td>"
        << esc(r.fit.status) << "</td><td class=\"num\">" << r.fit.n_points << "</td>"
        << num_td(r.fit.knee_pressure_MPa) << "<td class=\"num\">"
        << (std::isfinite(r.fit.knee_ci95_low_MPa)
                ? show(r.fit.knee_ci95_low_MPa) + " – " + show(r.fit.knee_ci95_high_MPa)
                : "—")
        << "</td>" << num_td(r.fit.plateau) << num_td(r.fit.slope_per_MPa) << num_td(r.fit.r2) << "</tr>\n";
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
      h << "<tr><td>" << esc(series_name(f.series)) << "</td><td>" << column(r.tau) << "</td><td>" << column(r.eps)
        << "</td><td>" << esc(r.fit.status) << "</td><td class=\"num\">" << r.fit.n_points << "</td>"
        << num_td(r.fit.alpha) << num_td(r.fit.r2) << num_td(r.fit.alpha_free) << num_td(r.fit.prefactor_free)
        << num_td(r.fit.r2_free) << "</tr>\n";
    }
  h << "</table>\n";
  if (!any)
    h << "<p class=\"note\">No <code>tau</code> column with a matching <code>volume_fraction</code> in "
         "metrics.csv.</p>\n";

  h << "<h3>Crack onset</h3><div class=\"model\">The lowest sampled pressure whose crack volume fraction exceeds the "
       "threshold ("
    << show(o.crack_threshold)
    << "), and the linear interpolation of the crossing between the "
       "pressure before it and that one.</div>\n<table><tr><th>series</th><th>column</th><th>status</th><th>n</th>"
       "<th>threshold</th><th>onset pressure (MPa)</th><th>interpolated crossing (MPa)</th></tr>\n";
  any = false;
  for (const auto& f : s.fits)
    for (const auto& r : f.crack_onset) {
      any = true;
      h << "<tr><td>" << esc(series_name(f.series)) << "</td><td>" << column(r.column) << "</td><td>"
        << esc(r.onset.status) << "</td><td class=\"num\">" << r.onset.n_points << "</td>" << num_td(r.onset.threshold)
        << num_td(r.onset.onset_pressure_MPa) << num_td(r.onset.interpolated_onset_MPa) << "</tr>\n";
    }
  h << "</table>\n";
  if (!any) h << "<p class=\"note\">No <code>crack_volume_fraction</code> column in metrics.csv.</p>\n";
  h << "</section>\n";
}

// Width and height of a PNG from its IHDR chunk; {0, 0} when not a PNG.
std::pair<int, int> png_size(const std::string& bytes) {
  if (!is_png(bytes) || bytes.size() < 24) return {0, 0};
  auto be32 = [&](std::size_t at) {
    return (static_cast<unsigned char>(bytes[at]) << 24) | (static_cast<unsigned char>(bytes[at + 1]) << 16) |
           (static_cast<unsigned char>(bytes[at + 2]) << 8) | static_cast<unsigned char>(bytes[at + 3]);
  };
  return {static_cast<int>(be32(16)), static_cast<int>(be32(20))};
}

// Field of view of a sample's slice in µm (width, height) from metrics.json's dims and spacing;
// {0, 0} when unknown. Plane from the file name: xy (x by y), xz (x by z), yz (y by z).
std::pair<double, double> slice_extent_um(const json* entry, const fs::path& png) {
  if (!entry) return {0, 0};
  const json* dims = field(*entry, {"dims"});
  const json* spacing = field(*entry, {"spacing_um"});
  if (!dims || !spacing || !dims->is_array() || !spacing->is_array() || dims->size() != 3 || spacing->size() != 3)
    return {0, 0};
  const std::string name = png.stem().string();
  const std::string plane = name.size() >= 2 ? name.substr(name.size() - 2) : "";
  const int a = plane == "yz" ? 1 : 0, b = plane == "xy" ? 1 : 2;
  try {
    return {(*dims)[a].get<double>() * (*spacing)[a].get<double>(),
            (*dims)[b].get<double>() * (*spacing)[b].get<double>()};
  } catch (const json::exception&) {
    return {0, 0};
  }
}

// A scale bar length: 1, 2 or 5 × 10^k µm, at most a third of the field of view.
double scale_bar_um(double width_um) {
  const double target = width_um / 3;
  const double p10 = std::pow(10.0, std::floor(std::log10(target)));
  double best = p10;
  for (double m : {1.0, 2.0, 5.0})
    if (m * p10 <= target) best = m * p10;
  return best;
}

constexpr int kSliceWidthPx = 170;

void slice_cell(std::ostringstream& h, const fs::path& png, const std::string& alt, const json* entry) {
  const auto bytes = read_bytes(png);
  if (!is_png(bytes)) {
    h << "<span class=\"note\">" << esc(png.filename().string()) << " is not a readable PNG</span>";
    return;
  }
  h << "<div class=\"slice\"><img alt=\"" << esc(alt) << "\" title=\"" << esc(png.filename().string())
    << "\" src=\"data:image/png;base64," << base64(bytes) << "\">";
  const double w_um = slice_extent_um(entry, png).first;
  if (w_um > 0 && png_size(bytes).first > 0) {
    const double bar = scale_bar_um(w_um);
    char width[32];
    std::snprintf(width, sizeof width, "%.1f", kSliceWidthPx * bar / w_um);
    h << "<span class=\"bar\" style=\"width:" << width << "px\"></span><span class=\"bar-label\">" << show(bar)
      << " µm</span>";
  }
  h << "</div>";
}

void section_gallery(std::ostringstream& h, const SeriesOutputs& s, const Names& names) {
  static const std::vector<std::pair<std::string, std::string>> kinds = {
      {"grey", "grey"}, {"labels", "labels"}, {"cracks", "cracks"}, {"current", "current density"}};
  std::map<std::string, const json*> entries;
  const auto all = sample_entries(s.run.metrics_json);
  for (const auto& e : all)
    if (e.contains("name") && e["name"].is_string()) entries[e["name"].get<std::string>()] = &e;
  h << "<section id=\"gallery\"><h2>Slice gallery</h2>\n<p>The same slice of every sample, in order of pressure: the "
       "mid-height xy plane (middle z slice of each volume; else the mid xz or yz plane), with grey, phase labels, "
       "cracks and current density side by side. Scale bars in µm from the voxel size. Labels in the phase colours of "
       "the "
       "plots; cracks one colour per crack; current density in viridis from the slice's minimum (dark) to maximum "
       "(yellow). — marks a slice the run did not write.</p>\n";
  phase_legend(h, names, false);
  for (const auto& t : s.tables) {
    h << "<h3>" << esc(series_name(t.name))
      << "</h3><div class=\"scroll\"><table><tr><th>pressure (MPa)</th><th>sample</th>";
    for (const auto& k : kinds) h << "<th>" << esc(k.second) << "</th>";
    h << "</tr>\n";
    for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i)
      for (const auto& sample : t.samples[i]) {
        const auto it = entries.find(sample);
        const json* entry = it == entries.end() ? nullptr : it->second;
        std::string where;
        if (entry)
          if (const json* dims = field(*entry, {"dims"}); dims && dims->is_array() && dims->size() == 3)
            if (const json* sp = field(*entry, {"spacing_um"});
                sp && sp->is_array() && sp->size() == 3 && (*sp)[2].is_number())
              where = "z = " + show(std::floor((*dims)[2].get<double>() / 2) * (*sp)[2].get<double>()) + " µm";
        h << "<tr><td class=\"num\">" << show(t.pressures_MPa[i]) << "</td><td>" << esc(sample)
          << (where.empty() ? "" : "<br><small>" + esc(where) + "</small>") << "</td>";
        for (const auto& k : kinds) {
          const auto png = find_slice_png(s.run.dir, sample, k.first);
          h << "<td>";
          if (png.empty()) h << "—";
          else slice_cell(h, png, sample + " " + k.second, entry);
          h << "</td>";
        }
        h << "</tr>\n";
      }
    h << "</table></div>\n";
  }
  h << "</section>\n";
}

void section_tables(std::ostringstream& h, const SeriesOutputs& s, const Names& names) {
  const auto stems = file_stems(s.tables);
  h << "<section id=\"tables\"><h2>Every metric against pressure</h2>\n<p>Value ± one standard uncertainty where one "
       "exists, with units. Click a column heading to sort, type to filter. The same numbers at full precision: "
    << relative_link("series/all_series.csv", "series/all_series.csv") << " and the per-series files.</p>\n";
  for (std::size_t ti = 0; ti < s.tables.size(); ++ti) {
    const auto& t = s.tables[ti];
    const std::string id = "table-" + std::to_string(ti);
    h << "<h3>" << esc(series_name(t.name)) << "</h3><p>"
      << relative_link("series/" + stems[ti] + ".csv", stems[ti] + ".csv") << " · "
      << relative_link("series/" + stems[ti] + ".json", stems[ti] + ".json")
      << " · <input class=\"filter\" type=\"search\" placeholder=\"filter rows\" data-table=\"" << id << "\"></p>\n"
      << "<div class=\"scroll\"><table class=\"sortable\" id=\"" << id
      << "\"><thead><tr><th>metric</th><th>phase</th><th>axis</th><th>unit</th><th>column</th>";
    for (std::size_t i = 0; i < t.pressures_MPa.size(); ++i) {
      std::string joined;
      for (std::size_t k = 0; k < t.samples[i].size(); ++k) joined += (k ? ", " : "") + t.samples[i][k];
      h << "<th title=\"" << esc(joined) << "\">" << show(t.pressures_MPa[i]) << " MPa</th>";
    }
    h << "</tr></thead><tbody>\n";
    for (const auto& c : t.columns) {
      const std::string unit = Names::unit(c.unit);
      h << "<tr><td>" << esc(names.quantity(c.key.metric)) << "</td><td>" << esc(names.phase(c.key.phase))
        << "</td><td>" << esc(c.key.axis) << "</td><td>" << esc(unit.empty() ? "1" : unit) << "</td><td><code>"
        << esc(c.key.label()) << "</code></td>";
      for (std::size_t i = 0; i < c.value.size(); ++i) {
        std::string cell = c.n[i] ? show(c.value[i]) : "";
        if (c.n[i] && c.has_uncertainty && std::isfinite(c.uncertainty[i])) cell += " ± " + show(c.uncertainty[i]);
        h << "<td class=\"num\" data-v=\""
          << (c.n[i] && std::isfinite(c.value[i]) ? format_number(c.value[i])
              : c.n[i] && std::isinf(c.value[i])  ? (c.value[i] > 0 ? "Infinity" : "-Infinity")
                                                  : "NaN")
          << "\">" << esc(cell) << "</td>";
      }
      h << "</tr>\n";
    }
    h << "</tbody></table></div>\n";
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
  for (const char* key :
       {"voxpress_version", "version", "threads", "jobs", "memory_budget_bytes", "started", "finished", "seconds"})
    if (const json* v = field(mj, {key}))
      h << "<tr><th>" << esc(key) << "</th><td>" << esc(json_text(*v)) << "</td></tr>";
  h << "<tr><th>report generated</th><td>" << esc(utc_time("%Y-%m-%d %H:%M:%S UTC")) << "</td></tr></table>\n";
  const auto entries = sample_entries(mj);
  if (!entries.empty()) {
    h << "<div class=\"scroll\"><table><tr><th>sample</th><th>series</th><th>pressure "
         "(MPa)</th><th>input</th><th>sha256</th>"
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
      h << "<tr><td>" << esc(json_text(e["name"])) << "</td><td>" << esc(series ? json_text(*series) : "")
        << "</td><td>" << esc(pressure ? json_text(*pressure) : "") << "</td><td>" << esc(input) << "</td><td><code>"
        << esc(sha) << "</code></td><td>" << esc(spacing ? json_text(*spacing) : "") << "</td><td>"
        << esc(dims ? json_text(*dims) : "") << "</td><td>" << esc(times) << "</td></tr>\n";
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

void section_files(std::ostringstream& h, const SeriesOutputs& s) {
  h << "<section id=\"files\"><h2>Files</h2>\n<p>Relative to this report's folder. Every figure above downloads as "
       "SVG, "
       "PNG or CSV from its own buttons; <code>voxpress report RUN --figures DIR</code> writes the headline panel as "
       "SVG, PDF and 300-dpi PNG for a paper.</p><ul>\n"
    << "<li>" << relative_link("metrics.csv", "metrics.csv") << " — every number, tidy long form</li>\n";
  if (s.run.has_metrics_json)
    h << "<li>" << relative_link("metrics.json", "metrics.json") << " — numbers with provenance</li>\n";
  for (const auto& f : s.files) h << "<li>" << relative_link(f, f.generic_string()) << "</li>\n";
  h << "</ul></section>\n";
}

}  // namespace

RunFigures run_figures(const SeriesOutputs& s) {
  RunFigures f{Names(read_phase_table(s.run.dir)), read_truths(s.run), {}, "z"};
  for (const auto& fl : failures(s.run.metrics_json))
    f.failures.push_back(fl.sample.empty() ? fl.message : fl.sample + ": " + fl.message);
  for (const auto& e : sample_entries(s.run.metrics_json))
    if (const json* a = field(e, {"pressing_axis"}); a && a->is_string()) {
      f.pressing_axis = a->get<std::string>();
      break;
    }
  return f;
}

std::string render_report_html(const SeriesOutputs& s, const ReportOptions& o) {
  const RunFigures rf = run_figures(s);
  const FigureInputs in = rf.inputs(s, o);
  const HeadlinePanel panel = headline_panel(in);
  const auto families = metric_families(in, panel.columns);
  std::set<std::string> samples;
  for (const auto& r : s.run.rows) samples.insert(r.sample);

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       // The page may load nothing from anywhere: any attempt is blocked and logged as a console error.
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data: blob:; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n<title>"
    << esc(o.title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n<header><h1>" << esc(o.title)
    << "</h1><p>" << samples.size() << " samples in " << s.tables.size() << " series"
    << (rf.failures.empty() ? "" : ", " + std::to_string(rf.failures.size()) + " failed") << " · run folder "
    << esc(fs::absolute(s.run.dir).lexically_normal().string()) << " · generated "
    << esc(utc_time("%Y-%m-%d %H:%M:%S UTC"))
    << "</p></header>\n<nav><a href=\"#headline\">Headline</a><a href=\"#plots\">All metrics</a><a "
       "href=\"#gallery\">Gallery</a>"
       "<a href=\"#tables\">Table</a><a href=\"#fits\">Fits</a><a href=\"#summary\">Samples</a><a "
       "href=\"#settings\">Settings</a>"
       "<a href=\"#provenance\">Provenance</a><a href=\"#files\">Files</a></nav>\n<main>\n";
  section_headline(h, panel, o);
  section_multiples(h, families, rf.names, o, s.tables.size() > 1, !rf.truths.empty());
  section_gallery(h, s, rf.names);
  section_tables(h, s, rf.names);
  section_fits(h, s, o, rf.names);
  section_samples(h, s);
  section_settings(h, s, o);
  section_provenance(h, s);
  section_files(h, s);
  h << "</main>\n<script>" << kPageChecks << kInteractions << "</script>\n</body></html>\n";
  return h.str();
}

ReportOutputs write_report(const fs::path& run_dir, const ReportOptions& options) {
  ReportOutputs out;
  const auto series = write_series_outputs(run_dir, options);
  out.html = run_dir / "report.html";
  const std::string html = render_report_html(series, options);
  write_text_atomically(out.html, html);
  for (std::size_t pos = html.find("<svg class=\"chart\""); pos != std::string::npos;
       pos = html.find("<svg class=\"chart\"", pos + 1))
    ++out.figures;
  out.files = series.files;
  out.files.push_back("report.html");
  out.warnings = series.warnings;
  return out;
}

FigureFiles write_report_figures(const fs::path& run_dir, const fs::path& dir, const ReportOptions& options) {
  const auto series = write_series_outputs(run_dir, options);
  const RunFigures rf = run_figures(series);
  return write_figures(dir, headline_panel(rf.inputs(series, options)));
}

}  // namespace vp::report
