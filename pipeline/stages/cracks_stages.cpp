// The `cracks` stage: detect cracks in a host phase, measure them, write the crack table and
// slice PNGs; and the registration of the `cracks` command. The work is in metrics/cracks/.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/axis.h"
#include "core/error.h"
#include "core/json_util.h"
#include "filters/io/slice_png.h"
#include "metrics/cracks/detection.h"
#include "metrics/cracks/measure.h"
#include "pipeline/catalog.h"

namespace vp {

Command make_cracks_command();  // pipeline/commands/cracks_command.cpp

namespace {

namespace fs = std::filesystem;

// A phase list item is a role name ("electrolyte", "active", "pore") meaning every phase of
// that role, or a phase name / label.
std::vector<const Phase*> resolve_phases(const std::vector<std::string>& items, const PhaseTable& table) {
  return table.resolve_list(items);
}

std::vector<int> labels_of(const std::vector<const Phase*>& phases) {
  std::vector<int> out;
  for (const Phase* p : phases) out.push_back(p->label);
  return out;
}

std::string names_of(const std::vector<const Phase*>& phases) {
  std::string s;
  for (const Phase* p : phases) s += (s.empty() ? "" : "+") + p->name;
  return s;
}

int pressing_axis_of(const Params& p, const SampleContext& ctx) {
  const int a = axis_index(p.string("pressing_axis"));
  return a >= 0 ? a : std::clamp(ctx.sample.pressing_axis, 0, 2);
}

nlohmann::json crack_json(const CrackProperties& c, const std::string& host) {
  return {{"id", c.id},
          {"area_um2", json_number(c.area_um2)},
          {"aperture_mean_um", json_number(c.aperture_mean_um)},
          {"aperture_max_um", json_number(c.aperture_max_um)},
          {"aperture_local_thickness_mean_um", json_number(c.aperture_local_thickness_mean_um)},
          {"aperture_local_thickness_max_um", json_number(c.aperture_local_thickness_max_um)},
          {"normal", to_json(c.normal)},
          {"angle_to_pressing_axis_deg", json_number(c.angle_to_pressing_axis_deg)},
          {"volume_um3", json_number(c.volume_um3)},
          {"voxels", c.voxels},
          {"centroid_um", to_json(c.centroid_um)},
          {"aspect", json_number(c.aspect)},
          {"length_um", json_number(c.length_um)},
          {"network", c.network},
          {"host", host}};
}

std::string crack_table_csv(const CrackMeasurements& m, const std::string& host) {
  std::ostringstream csv;
  csv << "id,area_um2,aperture_mean_um,aperture_max_um,nx,ny,nz,angle_to_pressing_axis_deg,volume_um3,host,"
         "centroid_x_um,centroid_y_um,centroid_z_um,length_um,network\n";
  for (const auto& c : m.cracks)
    csv << c.id << ',' << format_number(c.area_um2) << ',' << format_number(c.aperture_mean_um) << ','
        << format_number(c.aperture_max_um) << ',' << format_number(c.normal[0]) << ',' << format_number(c.normal[1])
        << ',' << format_number(c.normal[2]) << ',' << format_number(c.angle_to_pressing_axis_deg) << ','
        << format_number(c.volume_um3) << ',' << host << ',' << format_number(c.centroid_um[0]) << ','
        << format_number(c.centroid_um[1]) << ',' << format_number(c.centroid_um[2]) << ','
        << format_number(c.length_um) << ',' << c.network << '\n';
  return csv.str();
}

class CracksStage : public Stage {
 public:
  std::string name() const override { return "cracks"; }
  std::string summary() const override {
    return "crack networks in a host phase: detection (labels + grey sheetness), area, aperture, orientation, "
           "skeleton, short-circuit risk";
  }
  std::vector<ParamSpec> params() const override {
    return {
        param("host", ParamType::string_list, "host phase(s): role names (electrolyte, active) or phase names/labels",
              "", "[electrolyte]"),
        param("void", ParamType::string_list, "void phase(s) cracks consist of: role names or phase names/labels", "",
              "[pore]"),
        bounded(param("max_aperture", ParamType::number, "widest opening still a crack (0 = 4 voxels)", "µm",
                      number_default(CrackDetectionOptions{}.max_aperture_um)),
                0.0),
        bounded(param("closing_radius", ParamType::number,
                      "radius of the host closing that defines 'inside the host' (0 = max_aperture/2 + 1 voxel)", "µm",
                      number_default(CrackDetectionOptions{}.closing_radius_um)),
                0.0),
        bounded(param("min_aspect", ParamType::number, "least sheet aspect (middle / smallest principal extent)", "",
                      number_default(CrackDetectionOptions{}.min_aspect)),
                1.0),
        bounded(param("min_voxels", ParamType::integer, "smallest crack in voxels", "",
                      std::to_string(CrackDetectionOptions{}.min_voxels)),
                1.0),
        param("use_grey", ParamType::boolean, "add the Hessian dark-sheet response of the grey image when present", "",
              "true"),
        bounded(param("sheet_threshold", ParamType::number,
                      "sheet response for a crack seed (hysteresis: half of it to grow)", "",
                      number_default(CrackDetectionOptions{}.sheet_threshold)),
                0.0, 1.0),
        bounded(param("sheet_scales", ParamType::number_list, "Hessian scales σ in voxels of the finest spacing",
                      "voxel", number_list_default(SheetnessOptions{}.scales_vox)),
                0.1),
        bounded(param("sheet_contrast", ParamType::number, "host minus void grey level (0 = medians from the labels)",
                      "grey", number_default(SheetnessOptions{}.contrast)),
                0.0),
        integer_choices(
            bounded(param("connectivity", ParamType::integer, "void networks and short-circuit paths: 6 or 26", "",
                          std::to_string(CrackMeasureOptions{}.connectivity)),
                    6, 26),
            {6, 26}),
        choices(
            param("pressing_axis", ParamType::string, "x, y, z, or sample (the sample's pressing axis)", "", "sample"),
            {"x", "y", "z", "sample"}),
        param("skeleton", ParamType::boolean, "skeletonise the cracks for their length and graph", "",
              bool_default(CrackMeasureOptions{}.skeleton)),
        param("slices", ParamType::boolean, "write cracks_xy/xz/yz.png", "", "true"),
    };
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"crack_count", "1", "phase"},
        {"crack_volume_fraction", "1", "phase"},
        {"crack_surface_density", "µm^-1", "phase"},
        {"crack_area", "µm²", "phase"},
        {"crack_volume", "µm³", "phase"},
        {"crack_total_length", "µm", "phase"},
        {"aperture_mean", "µm", "phase"},
        {"aperture_max", "µm", "phase"},
        {"crack_orientation_mean", "deg", "phase, axis"},
        {"crack_network_count", "1", "phase"},
        {"largest_network_fraction", "1", "phase"},
        {"cracked_particle_fraction", "1", "phase"},
        {"cracks_per_particle", "1", "phase"},
        {"percolates", "1", "axis"},
        {"bottleneck_diameter", "µm", "axis"},
    };
  }
  unsigned needs() const override { return kLabels; }
  unsigned provides() const override { return kCracks; }
  // Float grey 4 B + the smoothed grey of the sheet response 4 + its levels, or the components'
  // ids 4 + masks, or the local thickness of the void; then measure_cracks beside the crack ids.
  // Measured 11.1 B/voxel at 256³ (docs/cracks.md, "Performance").
  double bytes_per_voxel() const override { return 12.0; }

  void preflight(const Params& p, const PreflightContext& pf, Diagnostics& d) const override {
    if (pf.phases.empty()) return;
    for (const char* key : {"host", "void"}) {
      try {
        resolve_phases(p.strings(key), pf.phases);
      } catch (const InputError& e) {
        d.error(p.key_path(key), e.what());
      }
    }
  }

  void run(const Params& p, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    std::vector<const Phase*> host, voids;
    try {
      host = resolve_phases(p.strings("host"), labels.phases);
    } catch (const InputError& e) {
      p.fail("host", e.what());
    }
    try {
      voids = resolve_phases(p.strings("void"), labels.phases);
    } catch (const InputError& e) {
      p.fail("void", e.what());
    }
    const std::string host_name = names_of(host);

    CrackDetectionOptions det_o;
    det_o.host_labels = labels_of(host);
    det_o.void_labels = labels_of(voids);
    det_o.max_aperture_um = p.number("max_aperture");
    det_o.closing_radius_um = p.number("closing_radius");
    det_o.min_aspect = p.number("min_aspect");
    det_o.min_voxels = p.integer("min_voxels");
    det_o.sheet_threshold = p.number("sheet_threshold");
    det_o.sheetness.scales_vox = p.numbers("sheet_scales");
    det_o.sheetness.contrast = p.number("sheet_contrast");
    std::optional<Volume<float>> grey;
    if (p.boolean("use_grey") && ctx.grey) {
      if (!(dims_of(*ctx.grey) == labels.dims()))
        throw InputError("cracks: grey image " + to_string(dims_of(*ctx.grey)) + " and labels " +
                         to_string(labels.dims()) + " differ in size; expected the same dims (or use_grey: false)");
      grey = to_float(*ctx.grey);
      grey->spacing_um = labels.spacing_um;
    }
    ctx.report(grey ? "detecting cracks (labels + grey sheetness)" : "detecting cracks (labels)");
    CrackDetection det = detect_cracks(labels, grey ? &*grey : nullptr, det_o);
    // The float copy is needed by detection only: the slices below draw the scan's own grey, so it
    // is not held beside the measurement's volumes.
    const AnyVolume* backdrop = grey ? &*ctx.grey : nullptr;
    grey.reset();
    ctx.report_fraction(0.5);

    CrackMeasureOptions mo;
    mo.host_labels = det_o.host_labels;
    mo.void_labels = det_o.void_labels;
    mo.pressing_axis = pressing_axis_of(p, ctx);
    mo.connectivity = static_cast<int>(p.integer("connectivity"));
    mo.particles = ctx.particles ? &*ctx.particles : nullptr;
    mo.skeleton = p.boolean("skeleton");
    const CrackMeasurements m = measure_cracks(labels, det.ids, mo);

    add_rows(ctx, m, host_name, mo.pressing_axis);
    ctx.details = details(m, det, host_name, mo.pressing_axis);
    write_outputs(p, ctx, m, det, host_name, backdrop);
    ctx.cracks = std::move(det.ids);
  }

  static void add_rows(SampleContext& ctx, const CrackMeasurements& m, const std::string& host, int axis) {
    ctx.add("crack_count", host, "", static_cast<double>(m.cracks.size()), "1");
    ctx.add("crack_volume_fraction", host, "", m.crack_volume_fraction, "1");
    ctx.add("crack_surface_density", host, "", m.crack_surface_density, "µm^-1");
    ctx.add("crack_area", host, "", m.crack_area_um2, "µm²");
    ctx.add("crack_volume", host, "", m.crack_volume_um3, "µm³");
    ctx.add("crack_total_length", host, "", m.total_length_um, "µm");
    ctx.add("aperture_mean", host, "", m.aperture_mean_um, "µm");
    ctx.add("aperture_max", host, "", m.aperture_max_um, "µm");
    ctx.add("crack_orientation_mean", host, kAxisNames[axis], m.orientation_mean_deg, "deg");
    ctx.add("crack_network_count", host, "", m.network_count, "1");
    ctx.add("largest_network_fraction", host, "", m.largest_network_fraction, "1");
    if (m.has_particles) {
      ctx.add("cracked_particle_fraction", host, "", m.cracked_particle_fraction, "1");
      ctx.add("cracks_per_particle", host, "", m.cracks_per_particle, "1");
    }
    for (int a = 0; a < 3; ++a) {
      const ShortCircuitRisk& r = m.short_circuit[static_cast<std::size_t>(a)];
      ctx.add("percolates", "", kAxisNames[a], r.percolates ? 1.0 : 0.0, "1");
      ctx.add("bottleneck_diameter", "", kAxisNames[a], r.bottleneck_diameter_um, "µm");
    }
  }

  static nlohmann::json details(const CrackMeasurements& m, const CrackDetection& det, const std::string& host,
                                int axis) {
    nlohmann::json j;
    j["host"] = host;
    j["pressing_axis"] = kAxisNames[axis];
    j["crack_count"] = m.cracks.size();
    j["crack_volume_fraction"] = json_number(m.crack_volume_fraction);
    j["crack_surface_density"] = json_number(m.crack_surface_density);
    j["crack_area"] = json_number(m.crack_area_um2);
    j["crack_volume"] = json_number(m.crack_volume_um3);
    j["host_volume"] = json_number(m.host_volume_um3);
    j["aperture_mean"] = json_number(m.aperture_mean_um);
    j["aperture_max"] = json_number(m.aperture_max_um);
    j["aperture_local_thickness_mean"] = json_number(m.aperture_local_thickness_mean_um);
    j["aperture_local_thickness_max"] = json_number(m.aperture_local_thickness_max_um);
    j["total_length"] = json_number(m.total_length_um);
    j["skeleton"] = {{"junctions", m.skeleton_junctions}, {"ends", m.skeleton_ends}, {"cycles", m.skeleton_cycles}};
    j["network_count"] = m.network_count;
    j["largest_network_fraction"] = json_number(m.largest_network_fraction);
    j["orientation_mean_deg"] = json_number(m.orientation_mean_deg);
    nlohmann::json hist = nlohmann::json::array();
    for (std::size_t b = 0; b < m.orientation_histogram.size(); ++b)
      hist.push_back({{"from_deg", 10 * b}, {"to_deg", 10 * (b + 1)}, {"area_fraction", m.orientation_histogram[b]}});
    j["orientation_histogram"] = hist;
    if (m.has_particles)
      j["particles"] = {{"host_particles", m.host_particles},
                        {"cracked_particles", m.cracked_particles},
                        {"cracked_particle_fraction", json_number(m.cracked_particle_fraction)},
                        {"cracks_per_particle", json_number(m.cracks_per_particle)}};
    nlohmann::json perc = nlohmann::json::object(), bottleneck = nlohmann::json::object();
    for (int a = 0; a < 3; ++a) {
      const ShortCircuitRisk& r = m.short_circuit[static_cast<std::size_t>(a)];
      perc[kAxisNames[a]] = r.percolates;
      bottleneck[kAxisNames[a]] = r.percolates ? json_number(r.bottleneck_diameter_um) : nlohmann::json(nullptr);
    }
    j["percolates"] = perc;
    j["bottleneck_diameter"] = bottleneck;
    j["units"] = {{"crack_area", "µm²"},         {"crack_volume", "µm³"},        {"crack_surface_density", "µm^-1"},
                  {"aperture_mean", "µm"},       {"aperture_max", "µm"},         {"total_length", "µm"},
                  {"bottleneck_diameter", "µm"}, {"orientation_mean_deg", "deg"}};
    j["detection"] = {{"max_aperture_um", det.max_aperture_um}, {"closing_radius_um", det.closing_radius_um},
                      {"grey_contrast", det.contrast},          {"void_voxels", det.void_voxels},
                      {"sheet_voxels", det.sheet_voxels},       {"enclosed_voxels", det.enclosed_voxels},
                      {"thin_voxels", det.thin_voxels},         {"rejected_small", det.rejected_small},
                      {"rejected_shape", det.rejected_shape},   {"cut_cracks", det.cut_cracks},
                      {"facet_voxels", det.facet_voxels},       {"facet_cracks", det.facet_cracks}};
    nlohmann::json cracks = nlohmann::json::array();
    for (const auto& c : m.cracks) cracks.push_back(crack_json(c, host));
    j["cracks"] = cracks;
    return j;
  }

  static void write_outputs(const Params& p, SampleContext& ctx, const CrackMeasurements& m, const CrackDetection& det,
                            const std::string& host, const AnyVolume* grey) {
    ctx.write_artifact("cracks.csv", crack_table_csv(m, host));
    if (!p.boolean("slices")) return;
    for (Plane plane : {Plane::xy, Plane::xz, Plane::yz}) {
      const auto png = ctx.artifact("cracks_" + to_string(plane) + ".png");
      if (!png) return;  // the cracks command without --out writes nothing
      // Without grey, the phase labels (as grey levels) show where the cracks sit.
      if (grey) write_label_overlay_png(grey, det.ids, plane, -1, png->string());
      else
        write_label_overlay_png(static_cast<const Volume<std::uint8_t>*>(&*ctx.labels), det.ids, plane, -1,
                                png->string());
    }
  }
};

}  // namespace

void register_cracks(Registry& registry) {
  registry.add(make_cracks_command());
  registry.add(std::make_unique<CracksStage>());
}

}  // namespace vp
