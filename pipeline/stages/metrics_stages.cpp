// Measurement stages over phase labels (one per metric family) and the `measure` command's
// registration. The functions live in metrics/; these wrappers read parameters, add rows with
// the contract's metric names and put structured results in ctx.details.
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include <tbb/parallel_for.h>

#include "core/atomic_file.h"
#include "core/axis.h"
#include "core/error.h"
#include "core/json_util.h"
#include "filters/io/slice_png.h"
#include "metrics/connectivity.h"
#include "metrics/face_connectivity.h"
#include "metrics/fraction_profiles.h"
#include "metrics/geometric_tortuosity.h"
#include "metrics/interfaces.h"
#include "metrics/local_thickness.h"
#include "metrics/particle_sizes.h"
#include "metrics/phase_fractions.h"
#include "metrics/rev.h"
#include "pipeline/catalog.h"
#if VP_MPI
#include "pipeline/mpi/slab_measure.h"
#endif

namespace vp {

Command make_measure_command();  // pipeline/commands/measure_command.cpp

namespace {

namespace fs = std::filesystem;

ParamSpec phases_param(const std::string& help) {
  return param("phases", ParamType::string_list, help + " (names or labels; [] = every phase of the table)", "", "[]");
}
ParamSpec axes_param() {
  return choices(param("axes", ParamType::string_list, "axes to measure along", "", "[x, y, z]"), axis_choices());
}
ParamSpec connectivity_param(const std::string& def) {
  return integer_choices(param("connectivity", ParamType::integer,
                               "voxel neighbourhood: 6 (faces), 18 (+ edges), 26 (+ corners)", "", def),
                         {6, 18, 26});
}

void check_phases(const Params& p, const PreflightContext& pf, Diagnostics& d) {
  if (pf.phases.empty()) return;
  for (const auto& name : p.strings("phases")) {
    try {
      pf.phases.resolve(name);
    } catch (const InputError& e) {
      d.error(p.node("phases"), p.key_path("phases"), e.what());
    }
  }
}

void check_roles(const PreflightContext& pf, Diagnostics& d, const std::string& stage,
                 std::initializer_list<Role> roles) {
  if (pf.phases.empty()) return;
  for (Role r : roles)
    if (pf.phases.by_role(r).empty())
      d.error("phases",
              stage + " needs a phase with role '" + to_string(r) +
                  "' in the phase table (config: `role:` of a phase; command line: --roles NAME=" + to_string(r) + ")");
}

std::vector<const Phase*> selected_phases(const Params& p, const PhaseTable& table) {
  std::vector<const Phase*> out;
  const auto names = p.strings("phases");
  if (names.empty()) {
    for (const Phase& ph : table.phases()) out.push_back(&ph);
    return out;
  }
  for (const auto& n : names) {
    try {
      out.push_back(&table.resolve(n));
    } catch (const InputError& e) {
      p.fail("phases", e.what());
    }
  }
  return out;
}

std::string pair_name(const PhaseTable& table, int label_a, int label_b) {
  // Names in the phase table's order.
  const auto& ph = table.phases();
  std::size_t ia = ph.size(), ib = ph.size();
  for (std::size_t i = 0; i < ph.size(); ++i) {
    if (ph[i].label == label_a) ia = i;
    if (ph[i].label == label_b) ib = i;
  }
  auto name = [&](std::size_t i, int label) { return i < ph.size() ? ph[i].name : "phase" + std::to_string(label); };
  return ia <= ib ? name(ia, label_a) + "|" + name(ib, label_b) : name(ib, label_b) + "|" + name(ia, label_a);
}

// A stage on one MPI rank's z-slab (ctx.slab) measures the whole volume through the exact
// slab merges of pipeline/mpi/slab_measure.h; without MPI no context holds a slab.
#if !VP_MPI
[[noreturn]] void no_slab_build(const std::string& stage) {
  throw ComputeError(stage + ": this voxpress was built without MPI, it cannot measure a z-slab");
}
#endif

InterfaceAreas whole_interface_areas(const SampleContext& ctx) {
  if (!ctx.slab) return interface_areas(*ctx.labels);
#if VP_MPI
  return slab_interface_areas(*ctx.labels, *ctx.slab);
#else
  no_slab_build("interfaces");
#endif
}

nlohmann::json to_json(const Distribution& d) {
  return {{"count", d.count},
          {"mean", json_number(d.mean)},
          {"std", json_number(d.std)},
          {"min", json_number(d.min)},
          {"p10", json_number(d.p10)},
          {"p25", json_number(d.p25)},
          {"median", json_number(d.median)},
          {"p75", json_number(d.p75)},
          {"p90", json_number(d.p90)},
          {"max", json_number(d.max)}};
}

// Mid-z slice of a scalar map for the report gallery: <what>_xy.png (viridis).
void write_map_png(SampleContext& ctx, const std::string& what, const Volume<float>& map) {
  if (const auto path = ctx.artifact(what + "_xy.png")) write_field_png(map, Plane::xy, -1, path->string());
}

// ---------------------------------------------------------------- fractions

// The first metric of every batch: exact voxel counts over the whole (ROI-cropped) volume.
class VolumeFractionStage : public Stage {
 public:
  std::string name() const override { return "volume_fraction"; }
  std::string summary() const override {
    return "volume fraction of every phase in the phase table, and porosity of the pore-role phases";
  }
  std::vector<ParamSpec> params() const override { return {}; }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"volume_fraction", "1", "phase"},
        {"porosity", "1", "phase"},
    };
  }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 0.0; }  // counts in place

  void run(const Params&, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    PhaseFractions f;
    if (!ctx.slab) {
      f = phase_fractions(labels);
    } else {
#if VP_MPI
      // This rank's z-slab: the whole volume's counts, summed over the ranks.
      f = slab_phase_fractions(labels, *ctx.slab);
#else
      no_slab_build("volume_fraction");
#endif
    }
    nlohmann::json voxels = nlohmann::json::object();
    for (const auto& p : f.phases) {
      ctx.add("volume_fraction", p.phase, "", p.fraction, "1");
      voxels[p.phase] = p.voxels;
    }
    for (const auto& p : f.phases)
      if (p.role == Role::pore) ctx.add("porosity", p.phase, "", p.fraction, "1");
    const Vec3& s = labels.spacing_um;
    ctx.details = {{"total_voxels", f.total},
                   {"voxels", voxels},
                   {"volume_um3", static_cast<double>(f.total) * s[0] * s[1] * s[2]}};
  }
};

class FractionProfileStage : public Stage {
 public:
  std::string name() const override { return "volume_fractions_profile"; }
  std::string summary() const override {
    return "volume-fraction profiles along x, y, z (pressing axis first in importance), relative density";
  }
  std::vector<ParamSpec> params() const override { return {}; }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"relative_density", "1", "sample"},
        {"volume_fraction_profile_min", "1", "phase, axis"},
        {"volume_fraction_profile_max", "1", "phase, axis"},
        {"volume_fraction_profile_std", "1", "phase, axis"},
    };
  }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 0.0; }

  void run(const Params&, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    const double phi = porosity(labels);
    ctx.add("relative_density", "", "", 1.0 - phi, "1");
    nlohmann::json profiles = nlohmann::json::array();
    std::ostringstream csv;
    csv << "phase,axis,index,position_um,fraction\n";
    for (const FractionProfile& f : fraction_profiles(labels)) {
      const std::string axis = kAxisNames[f.axis];
      ctx.add("volume_fraction_profile_min", f.phase, axis, f.min, "1");
      ctx.add("volume_fraction_profile_max", f.phase, axis, f.max, "1");
      ctx.add("volume_fraction_profile_std", f.phase, axis, f.std, "1");
      profiles.push_back(
          {{"phase", f.phase}, {"axis", axis}, {"position_um", f.position_um}, {"fraction", f.fraction}});
      for (std::size_t i = 0; i < f.fraction.size(); ++i)
        csv << f.phase << ',' << axis << ',' << i << ',' << format_number(f.position_um[i]) << ','
            << format_number(f.fraction[i]) << '\n';
    }
    ctx.details = {{"pressing_axis", kAxisNames[std::clamp(ctx.sample.pressing_axis, 0, 2)]},
                   {"porosity", phi},
                   {"profiles", profiles},
                   {"table", "fraction_profiles.csv"}};
    ctx.write_artifact("fraction_profiles.csv", csv.str());
  }
};

// ---------------------------------------------------------------- interfaces

class InterfacesStage : public Stage {
 public:
  std::string name() const override { return "interfaces"; }
  std::string summary() const override {
    return "interface area per phase pair (Crofton, 13 directions; face count as alternative), "
           "specific areas, triple-phase boundary density";
  }
  std::vector<ParamSpec> params() const override {
    return {param("facecount", ParamType::boolean, "also report the face-count areas (interface_area_facecount)", "",
                  "true")};
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"interface_area", "µm²", "pair"},           {"specific_interface_area", "µm^-1", "pair"},
        {"interface_area_facecount", "µm²", "pair"}, {"specific_interface_area_facecount", "µm^-1", "pair"},
        {"specific_surface_area", "µm^-1", "phase"}, {"specific_surface_area_facecount", "µm^-1", "phase"},
        {"tpb_density", "µm^-2", "triple"},          {"tpb_length", "µm", "triple"},
        {"tpb_edge_fraction", "1", "triple"},
    };
  }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 0.0; }

  void run(const Params& p, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    const InterfaceAreas a = whole_interface_areas(ctx);
    nlohmann::json pairs = nlohmann::json::array();
    for (const PairArea& pa : a.pairs) {
      const std::string pair = pair_name(labels.phases, pa.label_a, pa.label_b);
      ctx.add("interface_area", pair, "", pa.area_um2, "µm²");
      ctx.add("specific_interface_area", pair, "", pa.area_um2 / a.volume_um3, "µm^-1");
      if (p.boolean("facecount")) {
        ctx.add("interface_area_facecount", pair, "", pa.facecount_um2, "µm²");
        ctx.add("specific_interface_area_facecount", pair, "", pa.facecount_um2 / a.volume_um3, "µm^-1");
      }
      pairs.push_back({{"pair", pair}, {"area_um2", pa.area_um2}, {"facecount_um2", pa.facecount_um2}});
    }
    for (const Phase& ph : labels.phases.phases()) {
      ctx.add("specific_surface_area", ph.name, "", a.surface(ph.label) / a.volume_um3, "µm^-1");
      if (p.boolean("facecount"))
        ctx.add("specific_surface_area_facecount", ph.name, "", a.surface_facecount(ph.label) / a.volume_um3, "µm^-1");
    }
    ctx.details = {{"estimator", "crofton-13"}, {"volume_um3", a.volume_um3}, {"pairs", pairs}};
    // Triple-phase boundary where AM, SE and pore meet (when the table has all three roles).
    const auto am = labels.phases.by_role(Role::active), se = labels.phases.by_role(Role::electrolyte),
               pore = labels.phases.by_role(Role::pore);
    if (am.size() == 1 && se.size() == 1 && pore.size() == 1) {
      TriplePhaseBoundary t;
      if (!ctx.slab) {
        t = triple_phase_boundary(labels, am[0]->label, se[0]->label, pore[0]->label);
      } else {
#if VP_MPI
        t = slab_triple_phase_boundary(labels, am[0]->label, se[0]->label, pore[0]->label, *ctx.slab);
#else
        no_slab_build("interfaces");
#endif
      }
      const std::string triple = am[0]->name + "|" + se[0]->name + "|" + pore[0]->name;
      ctx.add("tpb_density", triple, "", t.density_um_per_um3, "µm^-2");
      ctx.add("tpb_length", triple, "", t.length_um, "µm");
      ctx.add("tpb_edge_fraction", triple, "", t.edge_fraction, "1");
      ctx.details["tpb"] = {{"phases", triple}, {"edges", t.edges}, {"interior_edges", t.interior_edges}};
    }
  }
};

// ---------------------------------------------------------------- contact area

class ContactAreaStage : public Stage {
 public:
  std::string name() const override { return "contact_area"; }
  std::string summary() const override {
    return "AM–SE contact-area fraction = A(am|se) / A(am|other phases); per particle when particle ids exist";
  }
  std::vector<ParamSpec> params() const override {
    return {param("exclude_border", ParamType::boolean,
                  "leave particles cut by the image faces out of the per-particle distribution", "", "true")};
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"contact_area_fraction", "1", "pair"},
        {"am_surface_area", "µm²", "pair"},
        {"am_se_contact_area", "µm²", "pair"},
        {"contact_area_fraction_particle_mean", "1", "pair"},
        {"contact_area_fraction_particle_median", "1", "pair"},
        {"contact_area_fraction_particle_p10", "1", "pair"},
        {"contact_area_fraction_particle_p90", "1", "pair"},
        {"contact_area_particles", "1", "pair"},
    };
  }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 0.0; }
  void preflight(const Params&, const PreflightContext& pf, Diagnostics& d) const override {
    check_roles(pf, d, "contact_area", {Role::active, Role::electrolyte});
  }

  void run(const Params& p, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    if (ctx.slab && ctx.particles)
      throw InputError(
          "contact_area: per-particle contact areas (--particles) are not measured on z-slabs yet; run "
          "them in one process");
    const ContactArea c = ctx.slab ? contact_area(whole_interface_areas(ctx), labels.phases) : contact_area(labels);
    std::string pair;
    for (const Phase& ph : labels.phases.phases())
      if (ph.role == Role::active || ph.role == Role::electrolyte) pair += (pair.empty() ? "" : "|") + ph.name;
    ctx.add("contact_area_fraction", pair, "", c.fraction, "1");
    ctx.add("am_surface_area", pair, "", c.am_surface_um2, "µm²");
    ctx.add("am_se_contact_area", pair, "", c.am_se_um2, "µm²");
    ctx.details = {
        {"am_surface_um2", c.am_surface_um2}, {"am_se_um2", c.am_se_um2}, {"fraction", json_number(c.fraction)}};
    if (!ctx.particles) return;
    const auto parts = particle_contact_areas(labels, *ctx.particles);
    std::vector<double> fractions;
    std::int64_t border = 0;
    nlohmann::json list = nlohmann::json::array();
    for (const ParticleContact& q : parts) {
      list.push_back({{"id", q.id},
                      {"surface_um2", q.surface_um2},
                      {"se_contact_um2", q.se_contact_um2},
                      {"fraction", json_number(q.fraction)},
                      {"touches_border", q.touches_border}});
      if (q.touches_border) ++border;
      if (q.touches_border && p.boolean("exclude_border")) continue;
      fractions.push_back(q.fraction);
    }
    const Distribution d = summarize(fractions);
    ctx.add("contact_area_fraction_particle_mean", pair, "", d.mean, "1");
    ctx.add("contact_area_fraction_particle_median", pair, "", d.median, "1");
    ctx.add("contact_area_fraction_particle_p10", pair, "", d.p10, "1");
    ctx.add("contact_area_fraction_particle_p90", pair, "", d.p90, "1");
    ctx.add("contact_area_particles", pair, "", static_cast<double>(d.count), "1");
    ctx.details["per_particle"] = {{"distribution", to_json(d)},
                                   {"border_particles", border},
                                   {"exclude_border", p.boolean("exclude_border")},
                                   {"particles", list}};
  }
};

// ---------------------------------------------------------------- connectivity

class ConnectivityStage : public Stage {
 public:
  std::string name() const override { return "connectivity"; }
  std::string summary() const override {
    return "clusters, percolating / dead-end / isolated fractions per axis, Euler characteristic, connectivity density";
  }
  std::vector<ParamSpec> params() const override {
    return {phases_param("phases to analyse"), axes_param(), connectivity_param("6")};
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"cluster_count", "1", "phase"},
        {"euler_characteristic", "1", "phase"},
        {"connectivity_density", "µm^-3", "phase"},
        {"percolating_fraction", "1", "phase, axis"},
        {"dead_end_fraction", "1", "phase, axis"},
        {"isolated_fraction", "1", "phase, axis"},
    };
  }
  unsigned needs() const override { return kLabels; }
  // Measured 5.9 (500³, `measure --metrics connectivity`): the ids hold the union-find links.
  double bytes_per_voxel() const override { return 6.0; }
  void preflight(const Params& p, const PreflightContext& pf, Diagnostics& d) const override { check_phases(p, pf, d); }

  void run(const Params& p, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    const int conn = static_cast<int>(p.integer("connectivity"));
    nlohmann::json out = nlohmann::json::object();
    const std::vector<int> axes_asked = parse_axes(p.strings("axes"), "axes");
    for (const Phase* ph : selected_phases(p, labels.phases)) {
      // One process: the whole mask; on a z-slab: the merged answers, computed up front.
      Volume<std::uint8_t> mask;
      Topology t;
      std::vector<Percolation> slab_perc;
      if (!ctx.slab) {
        mask = phase_mask(labels, {ph->label});
        t = topology(mask, conn);
      } else {
#if VP_MPI
        SlabConnectivity sc = slab_connectivity(labels, ph->label, conn, axes_asked, *ctx.slab);
        t = sc.topology;
        slab_perc = std::move(sc.percolation);
#else
        no_slab_build("connectivity");
#endif
      }
      ctx.add("cluster_count", ph->name, "", static_cast<double>(t.components), "1");
      ctx.add("euler_characteristic", ph->name, "", static_cast<double>(t.euler), "1");
      ctx.add("connectivity_density", ph->name, "", t.connectivity_density_per_um3, "µm^-3");
      nlohmann::json axes = nlohmann::json::object();
      for (std::size_t ai = 0; ai < axes_asked.size(); ++ai) {
        const int axis = axes_asked[ai];
        const Percolation perc = ctx.slab ? slab_perc[ai] : percolation(mask, axis, conn);
        ctx.add("percolating_fraction", ph->name, kAxisNames[axis], perc.percolating_fraction, "1");
        ctx.add("dead_end_fraction", ph->name, kAxisNames[axis], perc.dead_end_fraction, "1");
        ctx.add("isolated_fraction", ph->name, kAxisNames[axis], perc.isolated_fraction, "1");
        axes[kAxisNames[axis]] = {{"percolating", perc.percolating_fraction},
                                  {"dead_end", perc.dead_end_fraction},
                                  {"isolated", perc.isolated_fraction}};
      }
      out[ph->name] = {{"clusters", t.components},
                       {"cavities", t.cavities},
                       {"tunnels", t.tunnels},
                       {"euler", t.euler},
                       {"axes", axes}};
    }
    ctx.details = {
        {"connectivity", conn}, {"euler_complex", conn == 6 ? "voxel centres" : "closed voxel cubes"}, {"phases", out}};
  }
};

// ---------------------------------------------------------------- geometric tortuosity

class GeometricTortuosityStage : public Stage {
 public:
  std::string name() const override { return "geometric_tortuosity"; }
  std::string summary() const override {
    return "geodesic / straight-line length from inlet to outlet face (Dijkstra, exact Euclidean steps)";
  }
  std::vector<ParamSpec> params() const override {
    return {phases_param("phases to analyse"), axes_param(), connectivity_param("26"),
            param("map", ParamType::boolean, "compute the per-voxel (d_in + d_out)/L map (details: its mean)", "",
                  "false")};
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"geometric_tortuosity", "1", "phase, axis"},
        {"geometric_tortuosity_median", "1", "phase, axis"},
        {"geometric_tortuosity_p90", "1", "phase, axis"},
    };
  }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 16.0; }
  void preflight(const Params& p, const PreflightContext& pf, Diagnostics& d) const override { check_phases(p, pf, d); }

  void run(const Params& p, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    const int conn = static_cast<int>(p.integer("connectivity"));
    nlohmann::json out = nlohmann::json::object();
    for (const Phase* ph : selected_phases(p, labels.phases)) {
      const Volume<std::uint8_t> mask = phase_mask(labels, {ph->label});
      nlohmann::json axes = nlohmann::json::object();
      // Each axis is one sequential Dijkstra: run the axes side by side, report in axis order.
      const std::vector<int> axis_list = parse_axes(p.strings("axes"), "axes");
      std::vector<GeometricTortuosity> results(axis_list.size());
      tbb::parallel_for(std::size_t(0), axis_list.size(), [&](std::size_t i) {
        results[i] = geometric_tortuosity(mask, {axis_list[i], conn, p.boolean("map")});
      });
      for (std::size_t i = 0; i < axis_list.size(); ++i) {
        const int axis = axis_list[i];
        const GeometricTortuosity& g = results[i];
        ctx.add("geometric_tortuosity", ph->name, kAxisNames[axis], g.mean, "1");
        ctx.add("geometric_tortuosity_median", ph->name, kAxisNames[axis], g.ratios.median, "1");
        ctx.add("geometric_tortuosity_p90", ph->name, kAxisNames[axis], g.ratios.p90, "1");
        nlohmann::json a = {{"straight_length_um", g.straight_length_um},
                            {"outlet_voxels", g.outlet_voxels},
                            {"outlet_reached", g.outlet_reached},
                            {"ratios", to_json(g.ratios)},
                            {"status", g.outlet_reached > 0 ? "ok" : "no path from inlet to outlet"}};
        if (g.map) {
          write_map_png(ctx, "geodesic_ratio_" + ph->name + "_" + kAxisNames[axis], *g.map);
          double sum = 0;
          std::int64_t n = 0;
          for (index_t i = 0; i < g.map->size(); ++i)
            if ((*g.map)[i] > 0) sum += (*g.map)[i], ++n;
          a["map_mean_on_paths"] = json_number(n ? sum / static_cast<double>(n) : std::nan(""));
          a["map_voxels_on_paths"] = n;
        }
        axes[kAxisNames[axis]] = a;
      }
      out[ph->name] = axes;
    }
    ctx.details = {{"connectivity", conn}, {"phases", out}};
  }
};

// ---------------------------------------------------------------- local thickness

class LocalThicknessStage : public Stage {
 public:
  std::string name() const override { return "local_thickness"; }
  std::string summary() const override {
    return "local thickness (largest inscribed ball, Hildebrand–Rüegsegger) per phase: mean, median, percentiles";
  }
  std::vector<ParamSpec> params() const override {
    return {phases_param("phases to analyse"),
            param("outside_is_background", ParamType::boolean, "the image faces bound the phase", "", "false")};
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"local_thickness_mean", "µm", "phase"}, {"local_thickness_median", "µm", "phase"},
        {"local_thickness_p10", "µm", "phase"},  {"local_thickness_p90", "µm", "phase"},
        {"local_thickness_max", "µm", "phase"},
    };
  }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 7.0; }  // measured peak 5.2–6.5 (bench_pipeline)
  void preflight(const Params& p, const PreflightContext& pf, Diagnostics& d) const override { check_phases(p, pf, d); }

  void run(const Params& p, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    nlohmann::json out = nlohmann::json::object();
    Volume<float> lt;  // one map for all phases, repainted (no new volume to fault in per phase)
    for (const Phase* ph : selected_phases(p, labels.phases)) {
      const Volume<std::uint8_t> mask = phase_mask(labels, {ph->label});
      local_thickness(mask, lt, {p.boolean("outside_is_background")});
      const Distribution d = thickness_distribution(lt, mask);
      write_map_png(ctx, "thickness_" + ph->name, lt);
      ctx.add("local_thickness_mean", ph->name, "", d.mean, "µm");
      ctx.add("local_thickness_median", ph->name, "", d.median, "µm");
      ctx.add("local_thickness_p10", ph->name, "", d.p10, "µm");
      ctx.add("local_thickness_p90", ph->name, "", d.p90, "µm");
      ctx.add("local_thickness_max", ph->name, "", d.max, "µm");
      out[ph->name] = to_json(d);
    }
    ctx.details = {{"phases", out}};
  }
};

// ---------------------------------------------------------------- particle sizes

class ParticleSizesStage : public Stage {
 public:
  std::string name() const override { return "particle_sizes"; }
  std::string summary() const override {
    return "particle size distribution (equivalent-sphere diameter) per phase; border-touching particles counted apart";
  }
  std::vector<ParamSpec> params() const override { return {}; }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"particle_count", "1", "phase"},          {"particle_count_border", "1", "phase"},
        {"particle_diameter_mean", "µm", "phase"}, {"particle_diameter_median", "µm", "phase"},
        {"particle_diameter_p10", "µm", "phase"},  {"particle_diameter_p90", "µm", "phase"},
    };
  }
  unsigned needs() const override { return kLabels | kParticles; }
  double bytes_per_voxel() const override { return 0.0; }

  void run(const Params&, SampleContext& ctx) const override {
    const ParticleSizes s = particle_sizes(*ctx.labels, *ctx.particles);
    nlohmann::json out = nlohmann::json::object();
    std::ostringstream csv;
    csv << "id,phase,voxels,volume_um3,equivalent_diameter_um,touches_border\n";
    for (const ParticleSize& q : s.particles)
      csv << q.id << ',' << q.phase << ',' << q.voxels << ',' << format_number(q.volume_um3) << ','
          << format_number(q.equivalent_diameter_um) << ',' << (q.touches_border ? 1 : 0) << '\n';
    for (const auto& [phase, ps] : s.by_phase) {
      ctx.add("particle_count", phase, "", static_cast<double>(ps.count), "1");
      ctx.add("particle_count_border", phase, "", static_cast<double>(ps.border_count), "1");
      ctx.add("particle_diameter_mean", phase, "", ps.equivalent_diameter_um.mean, "µm");
      ctx.add("particle_diameter_median", phase, "", ps.equivalent_diameter_um.median, "µm");
      ctx.add("particle_diameter_p10", phase, "", ps.equivalent_diameter_um.p10, "µm");
      ctx.add("particle_diameter_p90", phase, "", ps.equivalent_diameter_um.p90, "µm");
      out[phase] = {{"count", ps.count},
                    {"border_count", ps.border_count},
                    {"equivalent_diameter_um", to_json(ps.equivalent_diameter_um)}};
    }
    ctx.details = {{"phases", out}, {"table", "particle_sizes.csv"}};
    ctx.write_artifact("particle_sizes.csv", csv.str());
  }
};

// ---------------------------------------------------------------- REV

class RevStage : public Stage {
 public:
  std::string name() const override { return "rev"; }
  std::string summary() const override {
    return "REV study: fractions, specific interface areas and contact fraction on k³ tiles (k = 2, 3, 4); "
           "<metric>_uncertainty rows";
  }
  std::vector<ParamSpec> params() const override { return {}; }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"volume_fraction_uncertainty", "1", "phase"},
        {"porosity_uncertainty", "1", "sample"},
        {"specific_interface_area_uncertainty", "µm^-1", "pair"},
        {"contact_area_fraction_uncertainty", "1", "sample"},
    };
  }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 1.0; }

  void run(const Params&, SampleContext& ctx) const override {
    nlohmann::json series = nlohmann::json::array();
    for (const RevSeries& s : rev_study(*ctx.labels)) {
      ctx.add(s.metric + "_uncertainty", s.phase, "", s.uncertainty, s.unit);
      nlohmann::json points = nlohmann::json::array();
      for (const RevPoint& pt : s.points)
        points.push_back({{"divisions", pt.divisions},
                          {"edge_um", pt.edge_um},
                          {"tiles", pt.tiles},
                          {"mean", json_number(pt.mean)},
                          {"std", json_number(pt.std)}});
      series.push_back({{"metric", s.metric},
                        {"phase", s.phase},
                        {"unit", s.unit},
                        {"value", json_number(s.value)},
                        {"uncertainty", json_number(s.uncertainty)},
                        {"points", points}});
    }
    ctx.details = {{"uncertainty", "std over the 8 half-size tiles / sqrt(8)"}, {"series", series}};
  }
};

}  // namespace

std::unique_ptr<Stage> make_volume_fraction_stage() { return std::make_unique<VolumeFractionStage>(); }

void register_metrics(Registry& registry) {
  registry.add(make_measure_command());
  registry.add(std::make_unique<FractionProfileStage>());
  registry.add(std::make_unique<InterfacesStage>());
  registry.add(std::make_unique<ContactAreaStage>());
  registry.add(std::make_unique<ConnectivityStage>());
  registry.add(std::make_unique<GeometricTortuosityStage>());
  registry.add(std::make_unique<LocalThicknessStage>());
  registry.add(std::make_unique<ParticleSizesStage>());
  registry.add(std::make_unique<RevStage>());
}

}  // namespace vp
