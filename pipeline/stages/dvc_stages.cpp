// DVC between scans: `dvc_pair` (what `voxpress dvc` and the Python module compute), its output
// files, and the `dvc` batch stage, which pairs each pressure step of a series with the previous
// step and with the first, and writes RUN/dvc_metrics.csv (read by the report with metrics.csv).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include <opencv2/imgproc.hpp>

#include "core/atomic_file.h"
#include "core/axis.h"
#include "core/csv.h"
#include "core/error.h"
#include "core/json_util.h"
#include "dvc/dvc.h"
#include "dvc/particles.h"
#include "dvc/registration.h"
#include "dvc/strain.h"
#include "filters/io/slice_png.h"
#include "filters/io/volume_io.h"
#include "filters/segment/particles.h"
#include "pipeline/catalog.h"
#include "pipeline/commands/command_api.h"
#include "pipeline/report/run_folder.h"

namespace vp {

// Defined in pipeline/commands/dvc_command.cpp.
Command make_dvc_command();

namespace fs = std::filesystem;
using namespace vp::dvc;

namespace {

nlohmann::json mat_json(const Mat3& m) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& row : m) j.push_back({row[0], row[1], row[2]});
  return j;
}

nlohmann::json vec_json(const Vec3& v) { return {json_number(v[0]), json_number(v[1]), json_number(v[2])}; }

// MetaImage with `channels` float components per node (x fastest, channels interleaved).
void write_node_mha(const fs::path& path, const NodeGrid& g, const Vec3& spacing, const Vec3& origin, int channels,
                    const std::vector<float>& values) {
  std::ostringstream h;
  h << "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n";
  h << "DimSize = " << g.dims.x << ' ' << g.dims.y << ' ' << g.dims.z << "\n";
  h.precision(12);
  h << "ElementSpacing = " << g.spacing * spacing[0] << ' ' << g.spacing * spacing[1] << ' ' << g.spacing * spacing[2]
    << "\n";
  h << "Offset = " << origin[0] + g.first[0] * spacing[0] << ' ' << origin[1] + g.first[1] * spacing[1] << ' '
    << origin[2] + g.first[2] * spacing[2] << "\n";
  h << "ElementNumberOfChannels = " << channels << "\nElementType = MET_FLOAT\nElementDataFile = LOCAL\n";
  std::string bytes = h.str();
  const std::size_t head = bytes.size();
  bytes.resize(head + values.size() * sizeof(float));
  std::memcpy(bytes.data() + head, values.data(), values.size() * sizeof(float));
  write_text_atomically(path, bytes);
}

cv::Vec3b diverging(double v, double limit) {
  // Blue (negative, compression) – white – red (positive); NaN grey.
  if (!std::isfinite(v)) return {128, 128, 128};
  const double t = std::clamp(v / limit, -1.0, 1.0);
  const int fade = static_cast<int>(255 * (1 - std::abs(t)));
  return t < 0 ? cv::Vec3b(255, static_cast<uchar>(fade), static_cast<uchar>(fade))
               : cv::Vec3b(static_cast<uchar>(fade), static_cast<uchar>(fade), 255);
}

// ε_zz on the xz plane through the middle node row (one square per node), and displacement
// arrows (x, z) over the reference's grey slice at that y.
void write_pngs(const fs::path& dir, const Volume<float>& ref, const NodeGrid& g, const std::vector<StrainTensor>& e) {
  const index_t j = g.dims.y / 2, y = g.first[1] + j * g.spacing;
  const Dims& d = ref.dims();
  const int scale = std::max(1, static_cast<int>(512 / std::max(d.x, d.z)));
  double limit = 0;
  for (const auto& t : e)
    if (std::isfinite(t.zz)) limit = std::max(limit, std::abs(t.zz));
  if (limit == 0) limit = 1e-3;
  cv::Mat strain(static_cast<int>(d.z * scale), static_cast<int>(d.x * scale), CV_8UC3, cv::Scalar(128, 128, 128));
  for (index_t k = 0; k < g.dims.z; ++k)
    for (index_t i = 0; i < g.dims.x; ++i) {
      const auto& t = e[static_cast<std::size_t>(i + g.dims.x * (j + g.dims.y * k))];
      const int x0 = static_cast<int>((g.first[0] + i * g.spacing - g.spacing / 2) * scale),
                z0 = static_cast<int>((g.first[2] + k * g.spacing - g.spacing / 2) * scale);
      cv::rectangle(strain, cv::Rect(x0, z0, static_cast<int>(g.spacing * scale), static_cast<int>(g.spacing * scale)),
                    cv::Scalar(diverging(t.zz, limit)), cv::FILLED);
    }
  cv::Mat flipped;
  cv::flip(strain, flipped, 0);  // z up
  write_png((dir / "strain_zz_xz.png").string(), flipped.ptr(), flipped.cols, flipped.rows, flipped.step,
            PngPixels::bgr);

  double lo = 1e300, hi = -1e300;
  for (index_t z = 0; z < d.z; ++z)
    for (index_t x = 0; x < d.x; ++x) lo = std::min<double>(lo, ref(x, y, z)), hi = std::max<double>(hi, ref(x, y, z));
  cv::Mat grey(static_cast<int>(d.z), static_cast<int>(d.x), CV_8UC1);
  for (index_t z = 0; z < d.z; ++z)
    for (index_t x = 0; x < d.x; ++x)
      grey.at<uchar>(static_cast<int>(z), static_cast<int>(x)) =
          static_cast<uchar>(hi > lo ? 255 * (ref(x, y, z) - lo) / (hi - lo) : 0);
  cv::Mat big, quiver;
  cv::resize(grey, big, cv::Size(), scale, scale, cv::INTER_NEAREST);
  cv::cvtColor(big, quiver, cv::COLOR_GRAY2BGR);
  double umax = 0;
  for (const Node& n : g.nodes)
    if (n.valid()) umax = std::max(umax, std::hypot(n.displacement[0], n.displacement[2]));
  const double arrow = umax > 0 ? 0.9 * g.spacing / umax : 0;  // the longest arrow spans 0.9 node spacing
  for (index_t k = 0; k < g.dims.z; ++k)
    for (index_t i = 0; i < g.dims.x; ++i) {
      const Node& n = g.at(i, j, k);
      const cv::Point p(static_cast<int>(n.position[0] * scale), static_cast<int>(n.position[2] * scale));
      if (!n.valid()) {
        cv::circle(quiver, p, 2, cv::Scalar(0, 0, 255), cv::FILLED);
        continue;
      }
      const cv::Point q(static_cast<int>((n.position[0] + arrow * n.displacement[0]) * scale),
                        static_cast<int>((n.position[2] + arrow * n.displacement[2]) * scale));
      cv::arrowedLine(quiver, p, q, cv::Scalar(0, 220, 255), 1, cv::LINE_AA, 0, 0.3);
    }
  cv::flip(quiver, flipped, 0);
  write_png((dir / "displacement_xz.png").string(), flipped.ptr(), flipped.cols, flipped.rows, flipped.step,
            PngPixels::bgr);
}

std::string nodes_csv(const NodeGrid& g, const std::vector<StrainTensor>& e) {
  std::ostringstream s;
  s.precision(9);
  s << "i,j,k,x_vox,y_vox,z_vox,ux_vox,uy_vox,uz_vox,residual,texture,iterations,quality,exx,eyy,ezz,exy,exz,eyz\n";
  for (index_t k = 0; k < g.dims.z; ++k)
    for (index_t j = 0; j < g.dims.y; ++j)
      for (index_t i = 0; i < g.dims.x; ++i) {
        const std::size_t idx = static_cast<std::size_t>(i + g.dims.x * (j + g.dims.y * k));
        const Node& n = g.nodes[idx];
        const StrainTensor& t = e[idx];
        s << i << ',' << j << ',' << k << ',' << n.position[0] << ',' << n.position[1] << ',' << n.position[2] << ','
          << format_number(n.displacement[0]) << ',' << format_number(n.displacement[1]) << ','
          << format_number(n.displacement[2]) << ',' << format_number(n.residual) << ',' << format_number(n.texture)
          << ',' << n.iterations << ',' << to_string(n.quality) << ',' << format_number(t.xx) << ','
          << format_number(t.yy) << ',' << format_number(t.zz) << ',' << format_number(t.xy) << ','
          << format_number(t.xz) << ',' << format_number(t.yz) << '\n';
      }
  return s.str();
}

std::string particles_csv(const std::vector<ParticleMotion>& ps) {
  std::ostringstream s;
  s.precision(9);
  s << "id,voxels,x_vox,y_vox,z_vox,dx_vox,dy_vox,dz_vox,rotation_x_deg,rotation_y_deg,rotation_z_deg,rotation_deg,"
       "residual,residual_jump,status\n";
  for (const auto& p : ps) {
    const bool ok = p.tracked();
    auto num = [&](double v) { return ok ? format_number(v) : std::string("nan"); };
    s << p.id << ',' << p.voxels << ',' << p.centroid_vox[0] << ',' << p.centroid_vox[1] << ',' << p.centroid_vox[2]
      << ',' << num(p.displacement_vox[0]) << ',' << num(p.displacement_vox[1]) << ',' << num(p.displacement_vox[2])
      << ',' << num(p.rotation_deg[0]) << ',' << num(p.rotation_deg[1]) << ',' << num(p.rotation_deg[2]) << ','
      << num(p.rotation_angle_deg) << ',' << format_number(p.residual) << ',' << (p.residual_jump ? 1 : 0) << ','
      << p.status << '\n';
  }
  return s.str();
}

}  // namespace

nlohmann::json dvc_pair(const Volume<float>& ref, const Volume<float>& def, const Volume<std::uint32_t>* ids,
                        const DvcRequest& request) {
  if (!(ref.dims() == def.dims()))
    throw InputError("dvc: the reference (" + to_string(ref.dims()) + ") and the deformed scan (" +
                     to_string(def.dims()) + ") differ in size; crop them to the same region first");
  for (int a = 0; a < 3; ++a)
    if (std::abs(ref.spacing_um[a] - def.spacing_um[a]) > 1e-9 * std::max(1.0, ref.spacing_um[a]))
      throw InputError("dvc: the scans differ in voxel size along " + axis_name(a) + " (" +
                       format_number(ref.spacing_um[a]) + " and " + format_number(def.spacing_um[a]) +
                       " µm); resample one or give --spacing");
  if (ids && !(ids->dims() == ref.dims()))
    throw InputError("dvc: --ref-labels (" + to_string(ids->dims()) + ") and the reference (" + to_string(ref.dims()) +
                     ") differ in size");

  RegistrationOptions ro;
  ro.affine = request.affine;
  const Registration reg = register_scans(ref, def, ro);
  DvcOptions o;
  o.node_spacing = request.node_spacing;
  o.subset = request.subset;
  const NodeGrid grid = correlate_nodes(ref, def, reg.warp, o);
  const GlobalStrain global = fit_affine_strain(grid, ref.spacing_um);
  const std::vector<StrainTensor> field = node_strains(grid, ref.spacing_um);
  const StrainHeterogeneity het = strain_heterogeneity(field);

  nlohmann::json out;
  out["registration"] = {{"translation_vox", vec_json(reg.warp.t)},
                         {"rotation_deg", vec_json(rotation_vector_deg(polar_rotation(reg.warp.f)))},
                         {"affine", mat_json(reg.warp.f)},
                         {"centre_vox", vec_json(reg.warp.centre)},
                         {"mode", request.affine ? "affine" : "rigid"},
                         {"phase_correlation_vox", vec_json(reg.phase_correlation_vox)},
                         {"residual", json_number(reg.residual)},
                         {"converged", reg.converged}};
  const StrainTensor& e = global.strain;
  out["strain"] = {{"xx", e.xx},
                   {"yy", e.yy},
                   {"zz", e.zz},
                   {"xy", e.xy},
                   {"xz", e.xz},
                   {"yz", e.yz},
                   {"volumetric", e.volumetric()},
                   {"nodes", global.nodes}};
  out["heterogeneity"] = {
      {"strain_zz_std", json_number(het.zz_std)}, {"strain_zz_p90", json_number(het.zz_abs_p90)}, {"nodes", het.nodes}};
  Vec3 mean{0, 0, 0}, sd{0, 0, 0};
  double residual = 0;
  const index_t valid = grid.valid_count();
  std::map<std::string, index_t> quality;
  for (const Node& n : grid.nodes) {
    ++quality[to_string(n.quality)];
    if (!n.valid()) continue;
    residual += n.residual / static_cast<double>(valid);
    for (int a = 0; a < 3; ++a) mean[a] += n.displacement[a] / static_cast<double>(valid);
  }
  for (const Node& n : grid.nodes)
    if (n.valid())
      for (int a = 0; a < 3; ++a) sd[a] += std::pow(n.displacement[a] - mean[a], 2) / std::max<double>(1, valid - 1);
  for (double& v : sd) v = std::sqrt(v);
  out["nodes"] = {{"count", grid.nodes.size()},
                  {"valid", valid},
                  {"displacement_mean_vox", vec_json(mean)},
                  {"displacement_std_vox", vec_json(sd)},
                  {"residual_mean", json_number(valid ? residual : NAN)},
                  {"quality", quality},
                  {"grid", to_json(grid.dims)},
                  {"node_spacing_vox", request.node_spacing},
                  {"subset_vox", request.subset},
                  {"noise_sigma", grid.noise_sigma}};

  std::vector<ParticleMotion> particles;
  if (ids) {
    particles = track_particles(ref, def, *ids, reg.warp, dvc::ParticleOptions{});
    nlohmann::json list = nlohmann::json::array();
    double dsum = 0, rsum = 0;
    index_t tracked = 0, jumps = 0;
    for (const auto& p : particles) {
      if (!p.tracked()) continue;
      list.push_back({{"id", p.id},
                      {"displacement_vox", vec_json(p.displacement_vox)},
                      {"rotation_deg", vec_json(p.rotation_deg)},
                      {"rotation_angle_deg", p.rotation_angle_deg},
                      {"residual", p.residual},
                      {"residual_jump", p.residual_jump}});
      ++tracked;
      jumps += p.residual_jump;
      dsum += std::hypot(p.displacement_vox[0], p.displacement_vox[1], p.displacement_vox[2]);
      rsum += p.rotation_angle_deg;
    }
    out["particles"] = list;
    out["particles_summary"] = {{"count", particles.size()},
                                {"tracked", tracked},
                                {"displacement_mean_vox", json_number(tracked ? dsum / tracked : NAN)},
                                {"rotation_mean_deg", json_number(tracked ? rsum / tracked : NAN)},
                                {"residual_jumps", jumps}};
  }

  nlohmann::json outputs = nlohmann::json::array();
  if (!request.out_dir.empty()) {
    const fs::path dir(request.out_dir);
    fs::create_directories(dir);
    std::vector<float> u, t;
    for (const Node& n : grid.nodes)
      for (int a = 0; a < 3; ++a) u.push_back(static_cast<float>(n.displacement[a]));
    // ITK's symmetric-tensor order: xx, xy, xz, yy, yz, zz.
    for (const auto& s : field)
      for (double v : {s.xx, s.xy, s.xz, s.yy, s.yz, s.zz}) t.push_back(static_cast<float>(v));
    write_node_mha(dir / "displacement.mha", grid, ref.spacing_um, ref.origin_um, 3, u);
    write_node_mha(dir / "strain.mha", grid, ref.spacing_um, ref.origin_um, 6, t);
    write_text_atomically(dir / "nodes.csv", nodes_csv(grid, field));
    outputs.push_back((dir / "displacement.mha").string());
    outputs.push_back((dir / "strain.mha").string());
    outputs.push_back((dir / "nodes.csv").string());
    if (ids) {
      write_text_atomically(dir / "particles.csv", particles_csv(particles));
      outputs.push_back((dir / "particles.csv").string());
    }
    write_pngs(dir, ref, grid, field);
    outputs.push_back((dir / "strain_zz_xz.png").string());
    outputs.push_back((dir / "displacement_xz.png").string());
  }
  out["outputs"] = outputs;
  return out;
}

namespace {

struct SeriesStep {
  std::string name, series, grey, labels;
  double pressure = 0;
};

// The phase label whose role is `active` in RUN/config.yaml's phase list, or −1.
int active_label(const fs::path& run_dir) {
  try {
    const YAML::Node root = YAML::LoadFile((run_dir / "config.yaml").string());
    for (const auto& ph : root["phases"])
      if (ph["role"] && ph["role"].as<std::string>() == "active") return ph["label"].as<int>();
  } catch (const std::exception&) {
  }
  return -1;
}

Volume<float> read_grey(const std::string& path) {
  ReadOptions ro;
  ro.path = path;
  ro.hash = false;
  return to_float(read_volume(ro).volume);
}

// Registers every scan of a series to the series' reference (its lowest-pressure scan) and
// resamples it there, before segmentation, so that the later stages' positions, profiles and ROI
// mean the same material at every step (the rig moves the sample between scans). Rigid only: an
// affine map would also undo the compaction that the metrics measure.
class AlignStage : public Stage {
 public:
  std::string name() const override { return "align"; }
  std::string summary() const override {
    return "grey -> grey: rigid registration to the series' lowest-pressure scan, resampled onto its grid";
  }
  std::vector<ParamSpec> params() const override {
    return {choices(param("mode", ParamType::string, "rigid (rotation + translation) or translation only", "", "rigid"),
                    {"rigid", "translation"}),
            bounded(param("max_outside", ParamType::number,
                          "largest fraction of the aligned volume that may lie outside the scan (filled from its "
                          "border); more is an error",
                          "", "0.05"),
                    0, 1)};
  }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"align_shift", "µm", "axis"}, {"align_rotation", "deg", "axis"}, {"align_outside_fraction", "1", "sample"}};
  }
  unsigned needs() const override { return kGrey; }
  unsigned provides() const override { return kGrey; }
  // The reference and this scan in float, the spline's coefficients, the output.
  double bytes_per_voxel() const override { return 16.0; }
  bool reads_series_reference() const override { return true; }

  void preflight(const Params& p, const PreflightContext& c, Diagnostics& d) const override {
    if (c.available & kLabels)
      d.error(p.key_path("stage"),
              "align: the sample already has labels, which alignment would leave behind; run align before segment, "
              "on samples without a labels companion");
  }

  void run(const Params& p, SampleContext& ctx) const override {
    Vec3 shift_vox{0, 0, 0}, rotation_deg{0, 0, 0};
    double outside = 0;
    if (ctx.series_reference.empty() || !ctx.load_series_reference) {
      ctx.details = {{"reference", nullptr}, {"note", "this scan is its series' reference: left as it is"}};
    } else {
      ctx.report("registering to " + ctx.series_reference);
      const AnyVolume ref_any = ctx.load_series_reference();
      const Volume<float> ref = to_float(ref_any), scan = to_float(*ctx.grey);
      if (!(ref.dims() == scan.dims()))
        throw InputError("align: " + ctx.sample.name + " is " + to_string(scan.dims()) + " but its series' reference " +
                         ctx.series_reference + " is " + to_string(ref.dims()) +
                         "; expected the same size (give both the same roi)");
      for (int a = 0; a < 3; ++a)
        if (std::abs(ref.spacing_um[a] - scan.spacing_um[a]) > 1e-9 * std::max(1.0, ref.spacing_um[a]))
          throw InputError("align: " + ctx.sample.name + " and its series' reference " + ctx.series_reference +
                           " differ in voxel size along " + axis_name(a) + " (" + format_number(scan.spacing_um[a]) +
                           " and " + format_number(ref.spacing_um[a]) + " µm)");
      RegistrationOptions ro;
      ro.affine = false;
      const Registration reg = register_scans(ref, scan, ro);
      AffineWarp warp = reg.warp;
      if (p.string("mode") == "translation") warp.f = identity3();
      Volume<float> aligned = resample_to_reference(scan, warp, &outside);
      shift_vox = warp.t;
      rotation_deg = rotation_vector_deg(polar_rotation(warp.f));
      ctx.details = {{"reference", ctx.series_reference},
                     {"reference_sha256", provenance_of(ref_any).sha256},
                     {"mode", p.string("mode")},
                     {"translation_vox", vec_json(warp.t)},
                     {"rotation_deg", vec_json(rotation_deg)},
                     {"centre_vox", vec_json(warp.centre)},
                     {"residual", json_number(reg.residual)},
                     {"converged", reg.converged},
                     {"outside_fraction", outside}};
      if (outside > p.number("max_outside"))
        throw ComputeError("align: " + format_number(std::round(1000 * outside) / 10) + " % of " + ctx.sample.name +
                           " aligned onto " + ctx.series_reference + " lies outside the scan (max_outside " +
                           format_number(p.number("max_outside")) +
                           "); the scans overlap too little to align them: check the series, or raise max_outside");
      ctx.grey = AnyVolume(std::move(aligned));
      if (const auto path = ctx.artifact("grey_xy.png")) write_slice_png(*ctx.grey, Plane::xy, -1, path->string());
    }
    for (int a = 0; a < 3; ++a) {
      ctx.add("align_shift", "", axis_name(a), shift_vox[a] * ctx.sample.spacing_um[a], "µm");
      ctx.add("align_rotation", "", axis_name(a), rotation_deg[a], "deg");
    }
    ctx.add("align_outside_fraction", "", "", outside, "1");
  }
};

class DvcStage : public BatchStage {
 public:
  std::string name() const override { return "dvc"; }
  std::string summary() const override {
    return "digital volume correlation of each pressure step against the previous and the first of its series "
           "(RUN/dvc/, RUN/dvc_metrics.csv: strain_zz, strain_volumetric, strain_zz_p90, particle motion)";
  }
  std::vector<ParamSpec> params() const override {
    return {bounded(param("node_spacing", ParamType::integer, "voxels between DVC nodes", "voxel", "8"), 2, 256),
            bounded(param("subset", ParamType::integer, "subset edge", "voxel", "16"), 4, 256),
            param("affine", ParamType::boolean, "affine (not rigid) registration before the node grid", "", "true"),
            param("particles", ParamType::boolean,
                  "track the active-phase particles (watershed of the reference's label input) when labels exist", "",
                  "true")};
  }
  void run(const Params& params, const fs::path& run_dir, Progress& progress) const override {
    const nlohmann::json mj = report::read_metrics_json(run_dir / "metrics.json");
    std::map<std::string, std::vector<SeriesStep>> series;
    for (const auto& s : report::sample_entries(mj)) {
      if (!s.contains("input") || !s["input"].is_object() || (s.contains("error") && !s["error"].is_null())) continue;
      SeriesStep st;
      st.name = s.value("name", "");
      st.series = s.value("series", "");
      st.pressure = s.value("pressure_MPa", 0.0);
      st.grey = s["input"].value("path", "");
      if (s.contains("labels_input") && s["labels_input"].is_object()) st.labels = s["labels_input"].value("path", "");
      series[st.series].push_back(st);
    }
    DvcRequest req;
    req.node_spacing = params.integer("node_spacing");
    req.subset = params.integer("subset");
    req.affine = params.boolean("affine");
    const int am = params.boolean("particles") ? active_label(run_dir) : -1;
    std::ostringstream csv;
    csv << kMetricsCsvHeader << "\n";
    nlohmann::json summary = nlohmann::json::array();
    for (auto& [series_name, steps] : series) {
      std::stable_sort(steps.begin(), steps.end(),
                       [](const auto& a, const auto& b) { return a.pressure < b.pressure; });
      if (steps.size() < 2) continue;
      std::vector<Volume<float>> grey;
      for (const auto& s : steps) grey.push_back(read_grey(s.grey));
      std::vector<std::optional<Volume<std::uint32_t>>> ids(steps.size());
      for (std::size_t k = 1; k < steps.size(); ++k)
        for (const std::string kind : {"previous", "first"}) {
          if (kind == "first" && k == 1) continue;  // the same pair as "previous"
          const std::size_t from = kind == "previous" ? k - 1 : 0;
          if (am >= 0 && !steps[from].labels.empty() && !ids[from]) {
            ReadOptions lo;
            lo.path = steps[from].labels;
            lo.hash = false;
            ids[from] = separate_particles(to_labels_u8(read_volume(lo).volume), static_cast<std::uint8_t>(am));
          }
          DvcRequest r = req;
          r.out_dir = (run_dir / "dvc" / (steps[from].name + "_" + steps[k].name)).string();
          progress.message(steps[k].name, name(), "correlating with " + steps[from].name);
          nlohmann::json j = dvc_pair(grey[from], grey[k], ids[from] ? &*ids[from] : nullptr, r);
          const std::string phase = kind == "previous" ? "step" : "cumulative";
          auto row = [&](const std::string& metric, double v, const std::string& unit) {
            csv << csv_field(steps[k].name) << ',' << csv_field(series_name) << ',' << format_number(steps[k].pressure)
                << ",dvc," << metric << ',' << phase << ",z," << format_number(v) << ',' << unit << "\n";
          };
          row("strain_zz", j["strain"]["zz"].get<double>(), "1");
          row("strain_volumetric", j["strain"]["volumetric"].get<double>(), "1");
          const auto& p90 = j["heterogeneity"]["strain_zz_p90"];
          row("strain_zz_p90", p90.is_number() ? p90.get<double>() : NAN, "1");
          if (j.contains("particles_summary")) {
            const auto& ps = j["particles_summary"];
            const double h = grey[from].spacing_um[0];
            row("particle_displacement_mean",
                ps["displacement_mean_vox"].is_number() ? ps["displacement_mean_vox"].get<double>() * h : NAN, "µm");
            row("particle_rotation_mean_deg",
                ps["rotation_mean_deg"].is_number() ? ps["rotation_mean_deg"].get<double>() : NAN, "deg");
          }
          j["reference"] = steps[from].name;
          j["deformed"] = steps[k].name;
          j["pairing"] = kind;
          summary.push_back(std::move(j));
        }
    }
    fs::create_directories(run_dir / "dvc");
    write_text_atomically(run_dir / "dvc_metrics.csv", csv.str());
    write_text_atomically(run_dir / "dvc" / "dvc.json", summary.dump(1) + "\n");
    progress.message("", name(),
                     std::to_string(summary.size()) + " pairs; wrote " + (run_dir / "dvc_metrics.csv").string());
  }
};

}  // namespace

void register_dvc(Registry& registry) {
  registry.add(make_dvc_command());
  registry.add(std::make_unique<AlignStage>());
  registry.add(std::make_unique<DvcStage>());
}

}  // namespace vp
