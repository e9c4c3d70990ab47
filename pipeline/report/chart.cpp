#include "pipeline/report/chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace vp::report {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const char* kFontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif";

std::string fmt(double v) {  // coordinates: 2 decimals are finer than any screen or printer
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  if (s == "-0.00") s = "0.00";
  return s;
}

std::string unicode_minus(std::string s) {
  if (!s.empty() && s[0] == '-') s = "−" + s.substr(1);
  return s;
}

// Tick labels: as many decimals as the step needs.
std::string tick_label(double v, double step) {
  char buf[32];
  if (std::abs(v) < step * 1e-9) v = 0;
  const double mag = std::abs(step);
  if (mag >= 1e-4 && mag < 1e6) {
    int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(mag) - 1e-9)));
    const double scaled = mag * std::pow(10.0, decimals);
    if (std::abs(scaled - std::round(scaled)) > 1e-6) ++decimals;  // 2.5 steps
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return unicode_minus(buf);
}

void extend(double& lo, double& hi, double v) {
  if (!std::isfinite(v)) return;
  lo = std::min(lo, v);
  hi = std::max(hi, v);
}

// Greedy word wrap for the notes box.
std::vector<std::string> wrap(const std::string& text, std::size_t max_chars) {
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string word, line;
  auto length = [](const std::string& s) {  // UTF-8 code points
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  };
  while (words >> word) {
    if (!line.empty() && length(line) + 1 + length(word) > max_chars) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace

std::string Colour::hex() const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

std::string xml_escape(const std::string& text) {
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

std::string human_number(double v, int digits) {
  if (std::isnan(v)) return "—";
  if (std::isinf(v)) return v > 0 ? "∞" : "−∞";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  std::string s = buf;
  if (const auto e = s.find('e'); e != std::string::npos) {  // 1.2e-05 -> 1.2·10⁻⁵
    static const char* sup[] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
    const int exponent = std::stoi(s.substr(e + 1));
    std::string ex = exponent < 0 ? "⁻" : "";
    for (char d : std::to_string(std::abs(exponent))) ex += sup[d - '0'];
    s = s.substr(0, e) + "·10" + ex;
  }
  return unicode_minus(s);
}

Axis nice_axis(double lo, double hi, int max_ticks) {
  Axis a;
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, max_ticks);
  const double p10 = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * p10;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p10 >= raw * (1 - 1e-9)) {
      step = m * p10;
      break;
    }
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  for (int i = 0;; ++i) {
    const double t = a.lo + i * step;
    if (t > a.hi + step * 1e-9) break;
    a.ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return a;
}

std::pair<double, double> data_x_range(const Chart& c) {
  if (c.x_range) return *c.x_range;
  double lo = kInf, hi = -kInf;
  for (const auto& t : c.traces)
    for (double x : t.x) extend(lo, hi, x);
  for (const auto& m : c.vmarkers) extend(lo, hi, m.x);
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (c.x_from_zero) lo = std::min(lo, 0.0);
  return {lo, hi};
}

std::pair<double, double> data_y_range(const Chart& c) {
  if (c.y_range) return *c.y_range;
  double lo = kInf, hi = -kInf;
  for (const auto& t : c.traces) {
    for (std::size_t i = 0; i < t.y.size(); ++i) {
      const double e = i < t.err.size() && std::isfinite(t.err[i]) ? t.err[i] : 0.0;
      extend(lo, hi, t.y[i] - e);
      extend(lo, hi, t.y[i] + e);
    }
    for (double v : t.lo) extend(lo, hi, v);
    for (double v : t.hi) extend(lo, hi, v);
  }
  for (const auto& m : c.hmarkers) extend(lo, hi, m.y);
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (c.y_from_zero || c.y_fraction) lo = std::min(lo, 0.0);
  if (c.y_fraction) lo = std::max(lo, 0.0), hi = std::min(hi, 1.0);
  return {lo, hi};
}

std::string render_svg(const Chart& c, const ChartStyle& st, bool standalone) {
  const double fs = st.font_px;
  const double W = st.width;
  double H = st.height;
  // Long titles wrap (at most 3 lines) rather than run off a small panel.
  const double title_fs = fs * 1.12, title_x = st.compact ? 6 : fs * 5.2;
  auto title_lines = wrap(c.title, static_cast<std::size_t>(std::max(10.0, (W - title_x - 8) / (title_fs * 0.56))));
  if (title_lines.size() > 3) title_lines.resize(3), title_lines.back() += " …";
  const double left = fs * 5.2, right = 10 + st.notes_width;
  const double top = fs * 0.9 + title_fs * 1.25 * std::max<std::size_t>(1, title_lines.size()), bottom = fs * 3.4;
  std::size_t legend_entries = 0;
  for (const auto& t : c.traces) legend_entries += !t.name.empty();
  const std::size_t note_chars = static_cast<std::size_t>(std::max(8.0, (st.notes_width - 10) / (fs * 0.56)));
  if (st.notes_width > 0) {  // a chart with many series grows rather than cut its notes off
    std::size_t note_lines = 0;
    for (const auto& note : c.notes) note_lines += wrap(note, note_chars).size();
    const double needed =
        top + fs * 0.4 + legend_entries * fs * 1.25 + (legend_entries ? fs * 0.7 : 0) + note_lines * fs * 1.22 + fs;
    H = std::max(H, needed);
  }
  const double x0 = left, x1 = W - right, y0 = top, y1 = H - bottom;  // plot area (y0 top)

  const auto [dxl, dxh] = data_x_range(c);
  const auto [dyl, dyh] = data_y_range(c);
  const int xticks = st.compact ? 4 : 7, yticks = st.compact ? 4 : 6;
  Axis ax = nice_axis(dxl, dxh, xticks);
  Axis ay = nice_axis(dyl, dyh, yticks);
  if (c.x_from_zero && ax.lo < 0 && dxl >= 0) ax.lo = 0;
  if (c.y_fraction) {  // fractions stay within [0, 1]
    ay.lo = std::max(ay.lo, 0.0), ay.hi = std::min(ay.hi, 1.0);
    std::erase_if(ay.ticks, [&](double t) { return t < ay.lo - 1e-12 || t > ay.hi + 1e-12; });
  }
  if (c.x_range) ax.lo = c.x_range->first, ax.hi = c.x_range->second;
  if (c.y_range) ay.lo = c.y_range->first, ay.hi = c.y_range->second;
  std::erase_if(ax.ticks, [&](double t) { return t < ax.lo - 1e-12 || t > ax.hi + 1e-9 * std::abs(ax.hi); });
  std::erase_if(ay.ticks, [&](double t) { return t < ay.lo - 1e-12 || t > ay.hi + 1e-9 * std::abs(ay.hi); });
  const double xstep = ax.ticks.size() > 1 ? ax.ticks[1] - ax.ticks[0] : ax.hi - ax.lo;
  const double ystep = ay.ticks.size() > 1 ? ay.ticks[1] - ay.ticks[0] : ay.hi - ay.lo;
  auto X = [&](double x) { return x0 + (x - ax.lo) / (ax.hi - ax.lo) * (x1 - x0); };
  auto Y = [&](double y) { return y1 - (y - ay.lo) / (ay.hi - ay.lo) * (y1 - y0); };

  const std::string id = xml_escape(c.id);
  std::ostringstream s;
  s << "<svg";
  if (standalone) s << " xmlns=\"http://www.w3.org/2000/svg\"";
  s << " class=\"chart\" id=\"" << id << "\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " "
    << H << "\" font-family=\"" << kFontFamily << "\" font-size=\"" << fs << "\" data-x-min=\"" << ax.lo
    << "\" data-x-max=\"" << ax.hi << "\" data-y-min=\"" << ay.lo << "\" data-y-max=\"" << ay.hi
    << "\" role=\"img\" aria-label=\"" << xml_escape(c.title) << "\">\n";
  s << "<title>" << xml_escape(c.title) << "</title>\n";
  s << "<rect width=\"" << W << "\" height=\"" << H << "\" fill=\"#ffffff\"/>\n";
  s << "<defs><clipPath id=\"" << id << "-clip\"><rect x=\"" << fmt(x0) << "\" y=\"" << fmt(y0) << "\" width=\""
    << fmt(x1 - x0) << "\" height=\"" << fmt(y1 - y0) << "\"/></clipPath></defs>\n";
  // Title, axis labels.
  s << "<text class=\"chart-title\" x=\"" << fmt(title_x) << "\" y=\"" << fmt(title_fs * 1.2)
    << "\" font-weight=\"600\" font-size=\"" << fmt(title_fs) << "\" fill=\"#1d2329\">";
  for (std::size_t i = 0; i < title_lines.size(); ++i)
    s << "<tspan x=\"" << fmt(title_x) << "\" dy=\"" << (i ? fmt(title_fs * 1.2) : "0") << "\">"
      << xml_escape(title_lines[i]) << "</tspan>";
  s << "</text>\n";
  s << "<text class=\"axis-label\" x=\"" << fmt((x0 + x1) / 2) << "\" y=\"" << fmt(H - fs * 0.55)
    << "\" text-anchor=\"middle\" fill=\"#333\">" << xml_escape(c.xlabel) << "</text>\n";
  s << "<text class=\"axis-label\" transform=\"translate(" << fmt(fs * 1.05) << " " << fmt((y0 + y1) / 2)
    << ") rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">" << xml_escape(c.ylabel) << "</text>\n";
  // Grid and ticks.
  s << "<g stroke=\"#e3e7eb\" stroke-width=\"1\">";
  for (double t : ax.ticks)
    s << "<line x1=\"" << fmt(X(t)) << "\" y1=\"" << fmt(y0) << "\" x2=\"" << fmt(X(t)) << "\" y2=\"" << fmt(y1)
      << "\"/>";
  for (double t : ay.ticks)
    s << "<line x1=\"" << fmt(x0) << "\" y1=\"" << fmt(Y(t)) << "\" x2=\"" << fmt(x1) << "\" y2=\"" << fmt(Y(t))
      << "\"/>";
  s << "</g>\n<g fill=\"#444\" font-size=\"" << fmt(fs * 0.9) << "\">";
  for (double t : ax.ticks)
    s << "<text x=\"" << fmt(X(t)) << "\" y=\"" << fmt(y1 + fs * 1.2) << "\" text-anchor=\"middle\">"
      << tick_label(t, xstep) << "</text>";
  for (double t : ay.ticks)
    s << "<text x=\"" << fmt(x0 - 4) << "\" y=\"" << fmt(Y(t) + fs * 0.32) << "\" text-anchor=\"end\">"
      << tick_label(t, ystep) << "</text>";
  s << "</g>\n<rect x=\"" << fmt(x0) << "\" y=\"" << fmt(y0) << "\" width=\"" << fmt(x1 - x0) << "\" height=\""
    << fmt(y1 - y0) << "\" fill=\"none\" stroke=\"#9aa5b1\" stroke-width=\"1\"/>\n";

  s << "<g clip-path=\"url(#" << id << "-clip)\">\n";
  // Shaded spans of vertical markers under everything else.
  for (const auto& m : c.vmarkers)
    if (m.span_hi > m.span_lo)
      s << "<rect class=\"span\" x=\"" << fmt(X(m.span_lo)) << "\" y=\"" << fmt(y0) << "\" width=\""
        << fmt(X(m.span_hi) - X(m.span_lo)) << "\" height=\"" << fmt(y1 - y0) << "\" fill=\"" << m.colour.hex()
        << "\" fill-opacity=\"0.13\"><title>" << xml_escape(m.hover) << "</title></rect>\n";
  for (const auto& t : c.traces) {
    if (t.kind != Trace::Kind::band) continue;
    std::ostringstream upper, lower;
    std::vector<std::pair<double, double>> up, down;
    for (std::size_t i = 0; i < t.x.size(); ++i)
      if (i < t.lo.size() && i < t.hi.size() && std::isfinite(t.lo[i]) && std::isfinite(t.hi[i]) &&
          std::isfinite(t.x[i]))
        up.emplace_back(X(t.x[i]), Y(t.hi[i])), down.emplace_back(X(t.x[i]), Y(t.lo[i]));
    if (up.size() < 2) continue;
    s << "<polygon class=\"band\" fill=\"" << t.colour.hex() << "\" fill-opacity=\"0.2\" stroke=\"none\" points=\"";
    for (const auto& [px, py] : up) s << fmt(px) << "," << fmt(py) << " ";
    for (auto it = down.rbegin(); it != down.rend(); ++it) s << fmt(it->first) << "," << fmt(it->second) << " ";
    s << "\"><title>" << xml_escape(t.name) << "</title></polygon>\n";
  }
  for (const auto& m : c.hmarkers)
    s << "<line x1=\"" << fmt(x0) << "\" y1=\"" << fmt(Y(m.y)) << "\" x2=\"" << fmt(x1) << "\" y2=\"" << fmt(Y(m.y))
      << "\" stroke=\"" << m.colour.hex() << "\" stroke-width=\"1.2\" stroke-dasharray=\"1 3\"><title>"
      << xml_escape(m.label) << "</title></line>\n";
  for (const auto& m : c.vmarkers)
    s << "<line x1=\"" << fmt(X(m.x)) << "\" y1=\"" << fmt(y0) << "\" x2=\"" << fmt(X(m.x)) << "\" y2=\"" << fmt(y1)
      << "\" stroke=\"" << m.colour.hex() << "\" stroke-width=\"1.3\" stroke-dasharray=\"4 3\"><title>"
      << xml_escape(m.hover) << "</title></line>\n";
  // Curves and points.
  const double r = st.compact ? 2.6 : 3.6;
  for (const auto& t : c.traces) {
    if (t.kind == Trace::Kind::band) continue;
    const std::string col = t.colour.hex();
    const char* dash = t.kind == Trace::Kind::fit     ? " stroke-dasharray=\"7 4\""
                       : t.kind == Trace::Kind::truth ? " stroke-dasharray=\"3 3\""
                                                      : "";
    const double width = t.kind == Trace::Kind::measured ? 1.4 : 1.8;
    // Polyline pieces between non-finite values.
    std::string points;
    auto flush = [&] {
      if (std::count(points.begin(), points.end(), ',') >= 2)
        s << "<polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\"" << width << "\"" << dash
          << " stroke-linejoin=\"round\" points=\"" << points << "\"/>\n";
      points.clear();
    };
    for (std::size_t i = 0; i < t.x.size() && i < t.y.size(); ++i) {
      if (std::isfinite(t.x[i]) && std::isfinite(t.y[i])) points += fmt(X(t.x[i])) + "," + fmt(Y(t.y[i])) + " ";
      else flush();
    }
    flush();
    if (t.kind == Trace::Kind::fit) continue;
    s << "<g class=\"points\" fill=\"" << (t.kind == Trace::Kind::truth ? "#ffffff" : col) << "\" stroke=\"" << col
      << "\">";
    for (std::size_t i = 0; i < t.x.size() && i < t.y.size(); ++i) {
      const std::string hover = i < t.hover.size() ? xml_escape(t.hover[i]) : "";
      if (std::isinf(t.y[i]) && std::isfinite(t.x[i])) {  // off the scale (τ = ∞): a triangle at the edge
        const double px = X(t.x[i]), py = t.y[i] > 0 ? y0 + 1 : y1 - 1, d = t.y[i] > 0 ? 1 : -1;
        s << "<polygon class=\"pt\" points=\"" << fmt(px - r * 1.4) << "," << fmt(py + d * r * 2.4) << " "
          << fmt(px + r * 1.4) << "," << fmt(py + d * r * 2.4) << " " << fmt(px) << "," << fmt(py) << "\"><title>"
          << hover << "</title></polygon>";
        continue;
      }
      if (!std::isfinite(t.x[i]) || !std::isfinite(t.y[i])) continue;
      const double px = X(t.x[i]), py = Y(t.y[i]);
      if (i < t.err.size() && std::isfinite(t.err[i]) && t.err[i] > 0) {
        const double a = Y(t.y[i] + t.err[i]), b = Y(t.y[i] - t.err[i]), cap = r * 1.1;
        s << "<path stroke-width=\"1.1\" fill=\"none\" d=\"M" << fmt(px) << " " << fmt(a) << "V" << fmt(b) << "M"
          << fmt(px - cap) << " " << fmt(a) << "h" << fmt(2 * cap) << "M" << fmt(px - cap) << " " << fmt(b) << "h"
          << fmt(2 * cap) << "\"/>";
      }
      if (t.kind == Trace::Kind::truth)
        s << "<rect class=\"pt\" x=\"" << fmt(px - r * 0.8) << "\" y=\"" << fmt(py - r * 0.8) << "\" width=\""
          << fmt(r * 1.6) << "\" height=\"" << fmt(r * 1.6) << "\" stroke-width=\"1.2\"><title>" << hover
          << "</title></rect>";
      else
        s << "<circle class=\"pt\" cx=\"" << fmt(px) << "\" cy=\"" << fmt(py) << "\" r=\"" << r
          << "\" stroke-width=\"1\"><title>" << hover << "</title></circle>";
    }
    s << "</g>\n";
  }
  s << "</g>\n";
  // Marker labels (outside the clip so they stay readable).
  int labelled = 0;  // stacked, so markers of several series at one pressure stay readable
  for (const auto& m : c.vmarkers)
    if (!m.label.empty()) {
      const bool right_side = X(m.x) < (x0 + x1) / 2;
      s << "<text x=\"" << fmt(X(m.x) + (right_side ? 4 : -4)) << "\" y=\"" << fmt(y0 + fs * 1.1 * ++labelled)
        << "\" text-anchor=\"" << (right_side ? "start" : "end") << "\" font-size=\"" << fmt(fs * 0.88) << "\" fill=\""
        << m.colour.hex() << "\" paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"3\">" << xml_escape(m.label)
        << "</text>\n";
    }
  for (const auto& m : c.hmarkers)
    if (!m.label.empty())
      s << "<text x=\"" << fmt(x1 - 4) << "\" y=\"" << fmt(Y(m.y) - 4) << "\" text-anchor=\"end\" font-size=\""
        << fmt(fs * 0.85) << "\" fill=\"" << m.colour.hex()
        << "\" paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"3\">" << xml_escape(m.label) << "</text>\n";

  // Legend and notes: in the box beside the plot when there is one, else a compact legend inside.
  std::vector<const Trace*> legend;
  for (auto kind : {Trace::Kind::measured, Trace::Kind::band, Trace::Kind::fit, Trace::Kind::truth})
    for (const auto& t : c.traces)
      if (!t.name.empty() && t.kind == kind) legend.push_back(&t);
  auto legend_entry = [&](double lx, double ly, const Trace& t) {
    const std::string col = t.colour.hex();
    switch (t.kind) {
      case Trace::Kind::band:
        s << "<rect x=\"" << fmt(lx) << "\" y=\"" << fmt(ly - fs * 0.55) << "\" width=\"18\" height=\"" << fmt(fs * 0.7)
          << "\" fill=\"" << col << "\" fill-opacity=\"0.25\"/>";
        break;
      case Trace::Kind::fit:
      case Trace::Kind::truth:
        s << "<line x1=\"" << fmt(lx) << "\" y1=\"" << fmt(ly - fs * 0.2) << "\" x2=\"" << fmt(lx + 18) << "\" y2=\""
          << fmt(ly - fs * 0.2) << "\" stroke=\"" << col << "\" stroke-width=\"1.8\" stroke-dasharray=\""
          << (t.kind == Trace::Kind::fit ? "5 3" : "3 3") << "\"/>";
        break;
      case Trace::Kind::measured:
        s << "<line x1=\"" << fmt(lx) << "\" y1=\"" << fmt(ly - fs * 0.2) << "\" x2=\"" << fmt(lx + 18) << "\" y2=\""
          << fmt(ly - fs * 0.2) << "\" stroke=\"" << col << "\" stroke-width=\"1.4\"/><circle cx=\"" << fmt(lx + 9)
          << "\" cy=\"" << fmt(ly - fs * 0.2) << "\" r=\"3\" fill=\"" << col << "\"/>";
        break;
    }
    s << "<text x=\"" << fmt(lx + 23) << "\" y=\"" << fmt(ly + fs * 0.1) << "\" fill=\"#333\">" << xml_escape(t.name)
      << "</text>";
  };
  if (st.notes_width > 0) {
    const double bx = W - st.notes_width + 4;
    double by = y0 + fs * 0.4;
    s << "<g class=\"legend\" font-size=\"" << fmt(fs * 0.9) << "\">";
    for (const auto* t : legend) {
      by += fs * 1.25;
      legend_entry(bx, by, *t);
    }
    s << "</g>\n<g class=\"notes\" font-size=\"" << fmt(fs * 0.92) << "\" fill=\"#1d2329\">";
    if (!legend.empty()) by += fs * 0.7;
    for (const auto& note : c.notes)
      for (const auto& line : wrap(note, note_chars)) {
        by += fs * 1.22;
        s << "<text x=\"" << fmt(bx) << "\" y=\"" << fmt(by) << "\">" << xml_escape(line) << "</text>";
      }
    s << "</g>\n";
  } else if (st.legend && legend.size() > 1) {
    double by = y0 + fs * 0.3;
    s << "<g class=\"legend\" font-size=\"" << fmt(fs * 0.85) << "\">";
    for (const auto* t : legend) {
      by += fs * 1.1;
      legend_entry(x0 + 6, by, *t);
    }
    s << "</g>\n";
  }
  s << "</svg>";
  return s.str();
}

}  // namespace vp::report
