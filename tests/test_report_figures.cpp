// Human names from the phase table and metric definitions, and the SVG chart writer: titles and
// units, axis ranges (pressure from 0, fractions within [0, 1]), hover text, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "pipeline/report/chart.h"
#include "pipeline/report/names.h"

using namespace vp::report;

namespace {

Names demo_names() {
  return Names(
      vp::PhaseTable({{"pore", 0, vp::Role::pore}, {"se", 1, vp::Role::electrolyte}, {"am", 2, vp::Role::active}}));
}

double attribute(const std::string& svg, const std::string& name) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(svg, m, std::regex(name + "=\"([^\"]+)\""))) << name;
  return std::stod(m[1]);
}

}  // namespace

TEST(Names, TitlesFromThePhaseTableAndMetricDefinitions) {
  const Names n = demo_names();
  EXPECT_EQ(n.title({"tau", "se+am", "z"}), "Tortuosity factor τ (z, SE + AM)");
  EXPECT_EQ(n.title({"contact_area_fraction", "se|am", ""}), "AM–SE contact-area fraction");
  EXPECT_EQ(n.title({"contact_area_fraction_particle_p90", "se|am", ""}),
            "AM–SE contact-area fraction per particle, 90th percentile");
  EXPECT_EQ(n.title({"porosity", "pore", ""}), "Porosity");
  EXPECT_EQ(n.title({"volume_fraction", "se", ""}), "Volume fraction (SE)");
  EXPECT_EQ(n.title({"interface_area", "pore|se", ""}), "Interface area (SE–pore)");
  EXPECT_EQ(n.title({"local_thickness_p90", "am", ""}), "Local thickness, 90th percentile (AM)");
  EXPECT_EQ(n.title({"volume_fraction_profile_std", "pore", "x"}), "Slice volume fraction, std. dev. (x, pore)");
  EXPECT_EQ(n.title({"porosity_pv", "pore", ""}), "Porosity (partial volume)");
  EXPECT_EQ(n.title({"brand_new_metric", "", "y"}), "Brand new metric (y)");  // unknown: words, never a '|'
  // Other phase names: the same rules, nothing demo-specific.
  const Names other(
      vp::PhaseTable({{"void", 0, vp::Role::pore}, {"lpscl", 1, vp::Role::electrolyte}, {"nmc", 2, vp::Role::active}}));
  EXPECT_EQ(other.title({"contact_area_fraction", "lpscl|nmc", ""}), "NMC–lpscl contact-area fraction");
  EXPECT_EQ(other.title({"porosity", "void", ""}), "Porosity");
  EXPECT_EQ(other.title({"tau", "lpscl", "x"}), "Tortuosity factor τ (x, lpscl)");
}

TEST(Names, UnitsAxisLabelsAndColours) {
  const Names n = demo_names();
  EXPECT_EQ(Names::unit("µm^-3"), "µm⁻³");
  EXPECT_EQ(Names::unit("µm^-1"), "µm⁻¹");
  EXPECT_EQ(Names::unit("1"), "");
  EXPECT_EQ(Names::unit("deg"), "°");
  EXPECT_EQ(n.axis_label({"crack_area", "se", ""}, "µm²"), "Crack area (µm²)");
  EXPECT_EQ(n.axis_label({"tau", "se", "z"}, "1"), "Tortuosity factor τ");
  EXPECT_EQ(n.phase_colour("se").hex(), "#e69f00");     // label 1 in the label slices
  EXPECT_EQ(n.phase_colour("se|am").hex(), "#56b4e9");  // a pair takes its first phase (AM)
  EXPECT_TRUE(is_fraction_metric("porosity", "1"));
  EXPECT_TRUE(is_fraction_metric("contact_area_fraction_particle_mean", "1"));
  EXPECT_FALSE(is_fraction_metric("tau", "1"));
  EXPECT_FALSE(is_fraction_metric("volume_fraction_profile_std", "1"));
}

TEST(Chart, NiceAxes) {
  const Axis a = nice_axis(0, 370, 7);
  EXPECT_EQ(a.lo, 0);
  EXPECT_EQ(a.hi, 400);
  EXPECT_EQ(a.ticks.size(), 5u);  // 0, 100, ..., 400
  const Axis b = nice_axis(0.0123, 0.287, 6);
  EXPECT_EQ(b.lo, 0);
  EXPECT_NEAR(b.hi, 0.3, 1e-12);
  const Axis c = nice_axis(5, 5, 5);  // degenerate: still a range
  EXPECT_LT(c.lo, 5);
  EXPECT_GT(c.hi, 5);
}

TEST(Chart, PressureFromZeroFractionsWithinOneHoverAndDeterministic) {
  Chart c;
  c.id = "t";
  c.title = "Porosity";
  c.xlabel = "Pressure (MPa)";
  c.ylabel = "Porosity φ";
  c.y_fraction = true;
  Trace t;
  t.name = "measured";
  t.x = {110, 150, 370};
  t.y = {0.9, 0.5, 0.2};
  t.err = {0.2, NAN, 0.01};  // an error bar above 1 must not push the axis past 1
  t.hover = {"a", "b", "c"};
  c.traces.push_back(t);
  Trace inf = t;
  inf.name = "τ";
  inf.y = {2, INFINITY, 1};  // off the scale: a marker at the edge, not a number
  c.traces.push_back(inf);
  const std::string svg = render_svg(c, ChartStyle{});
  EXPECT_EQ(attribute(svg, "data-x-min"), 0.0);
  EXPECT_EQ(attribute(svg, "data-x-max"), 400.0);
  EXPECT_EQ(attribute(svg, "data-y-min"), 0.0);
  EXPECT_EQ(attribute(svg, "data-y-max"), 1.0);
  EXPECT_NE(svg.find("<title>b</title>"), std::string::npos);
  EXPECT_NE(svg.find("<polygon class=\"pt\""), std::string::npos);  // the ∞ point
  EXPECT_EQ(svg.find("xmlns"), std::string::npos);                  // inline form
  EXPECT_NE(render_svg(c, ChartStyle{}, true).find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_EQ(svg, render_svg(c, ChartStyle{}));
  c.x_from_zero = false;  // only on purpose does a pressure axis start elsewhere
  c.traces.resize(1);
  EXPECT_GT(attribute(render_svg(c, ChartStyle{}), "data-x-min"), 0.0);
}

TEST(Chart, HumanNumbers) {
  EXPECT_EQ(human_number(0.00862, 3), "0.00862");
  EXPECT_EQ(human_number(1.2e-5, 2), "1.2·10⁻⁵");
  EXPECT_EQ(human_number(-3.5), "−3.5");
  EXPECT_EQ(human_number(INFINITY), "∞");
  EXPECT_EQ(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
}
