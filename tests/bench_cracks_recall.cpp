// Crack recall and false crack volume at realistic SNR (the table in docs/cracks.md).
// Fresh composite phantoms (seeds × pressures) imaged with the CT model at each SNR (PSF σ =
// 1 voxel), labelled by midpoint thresholds, cracks detected per host (se, am) from labels +
// grey with the stage's defaults, scored by crack_recall.h; crack-free phantoms give the false
// crack volume; then the bundled series' p250 and p370 (regenerated from data_samples'
// spec, bit-identical to the files, so the planted crack ids are known).
// Usage: bench_cracks_recall [N] [seeds, e.g. 1,2,3] [snrs, e.g. 5,8,12] [data_samples dir]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "crack_recall.h"
#include "metrics/cracks/detection.h"
#include "metrics/cracks/shape.h"
#include "phantoms/phantom_spec.h"

namespace {

using namespace vp;

std::vector<double> numbers(const std::string& list) {
  std::vector<double> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::atof(item.c_str()));
  return out;
}

// Planted crack area bins (µm²) for recall by size: AM facets span 4–26 µm², and the small ones
// decide AM recall (docs/cracks.md, "Recall at realistic SNR").
constexpr double kAreaBins[] = {6, 10, 15};
constexpr int kAreaBinCount = 4;

struct Totals {
  int planted = 0, found = 0;
  index_t false_voxels = 0, host_voxels = 0, detected = 0;
  int planted_by_area[kAreaBinCount] = {}, found_by_area[kAreaBinCount] = {};
  void add(const crack_recall::Score& s, const phantom::Phantom& ph, const std::string& host) {
    planted += s.planted, found += s.found, false_voxels += s.false_voxels, host_voxels += s.host_voxels,
        detected += s.detected_voxels;
    for (const auto& c : ph.truth.cracks) {
      if (c.host != host) continue;
      const int bin = static_cast<int>(std::upper_bound(std::begin(kAreaBins), std::end(kAreaBins), c.area_um2) -
                                       std::begin(kAreaBins));
      ++planted_by_area[bin];
      found_by_area[bin] += std::binary_search(s.found_ids.begin(), s.found_ids.end(), c.id);
    }
  }
};

// Why a planted crack is missed (VP_DEBUG): per planted crack of the host, its voxels by
// label, how many lie within one voxel of a detected crack, and the detected crack nearest to
// most of them with its size and sheet aspect (or nothing detected near it).
void explain_planted(const phantom::Phantom& ph, const std::string& host, const Volume<std::uint8_t>& labels,
                     const CrackDetection& det) {
  if (ph.cracks.size() != det.ids.size()) return;
  const Dims d = labels.dims();
  for (const auto& c : ph.truth.cracks) {
    if (c.host != host) continue;
    index_t n = 0, near = 0, by_label[3] = {0, 0, 0};
    std::map<std::uint32_t, index_t> cover;  // detected id → planted voxels it lies within one voxel of
    for (index_t z = 0; z < d.z; ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          if (ph.cracks(x, y, z) != c.id) continue;
          ++n, ++by_label[std::min<int>(labels(x, y, z), 2)];
          std::vector<std::uint32_t> ids;
          for (index_t w = std::max<index_t>(0, z - 1); w <= std::min(d.z - 1, z + 1); ++w)
            for (index_t v = std::max<index_t>(0, y - 1); v <= std::min(d.y - 1, y + 1); ++v)
              for (index_t u = std::max<index_t>(0, x - 1); u <= std::min(d.x - 1, x + 1); ++u)
                if (det.ids(u, v, w)) ids.push_back(det.ids(u, v, w));
          std::sort(ids.begin(), ids.end());
          ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
          near += !ids.empty();
          for (std::uint32_t id : ids) ++cover[id];
        }
    std::uint32_t best = 0;
    for (const auto& [id, k] : cover)
      if (!best || k > cover[best]) best = id;
    std::vector<index_t> voxels;
    for (index_t i = 0; best && i < det.ids.size(); ++i)
      if (det.ids[i] == best) voxels.push_back(i);
    std::fprintf(
        stderr,
        "    planted %u: %lld voxels (labelled pore %lld, se %lld, am %lld), %.1f um2; %lld within one voxel of "
        "a detection; best detected crack %u: %lld voxels, aspect %.2f, within one voxel of %lld of them\n",
        c.id, static_cast<long long>(n), static_cast<long long>(by_label[0]), static_cast<long long>(by_label[1]),
        static_cast<long long>(by_label[2]), c.area_um2, static_cast<long long>(near), best,
        static_cast<long long>(voxels.size()),
        voxels.empty() ? 0.0 : sheet_aspect(principal_axes(voxels, d, labels.spacing_um)),
        static_cast<long long>(best ? cover[best] : 0));
  }
}

// Each detected crack (VP_DEBUG): its voxels, how many are planted crack voxels, the share
// labelled pore, the mean grey on the pore (0) to SE (1) scale, sheet aspect and extents.
void explain_detected(const phantom::Phantom& ph, const phantom::ImagingSpec& imaging, const Volume<float>& grey,
                      const Volume<std::uint8_t>& labels, const CrackDetection& det) {
  std::vector<std::vector<index_t>> voxels(det.count + 1);
  for (index_t i = 0; i < det.ids.size(); ++i)
    if (det.ids[i]) voxels[det.ids[i]].push_back(i);
  const double gp = imaging.grey_level("pore"), gs = imaging.grey_level("se");
  for (std::uint32_t c = 1; c <= det.count; ++c) {
    index_t planted = 0, pore = 0;
    double g = 0;
    for (index_t i : voxels[c]) {
      planted += ph.cracks.size() == det.ids.size() && ph.cracks[i] != 0;
      pore += labels[i] == 0;
      g += (grey[i] - gp) / (gs - gp);
    }
    const PrincipalAxes pa = principal_axes(voxels[c], labels.dims(), labels.spacing_um);
    const double n = static_cast<double>(voxels[c].size());
    std::fprintf(stderr,
                 "    detected %u (first %lld): %zu voxels, %lld on planted cracks, labelled pore %.2f, mean grey %.2f "
                 "(pore 0, se "
                 "1), aspect %.2f, extents %.1f %.1f %.1f um\n",
                 c, static_cast<long long>(voxels[c].empty() ? -1 : voxels[c][0]), voxels[c].size(),
                 static_cast<long long>(planted), pore / n, g / n, sheet_aspect(pa), std::sqrt(pa.variance[0]),
                 std::sqrt(pa.variance[1]), std::sqrt(pa.variance[2]));
  }
}

// One row per host: planted, found, recall, detected crack voxels, precision, false volume.
void evaluate(const std::string& name, const phantom::Phantom& ph, const phantom::ImagingSpec& imaging,
              std::map<std::string, Totals>& totals) {
  const Volume<float> grey = crack_recall::ct_grey(ph, imaging);
  Volume<std::uint8_t> labels = crack_recall::midpoint_labels(grey, imaging.grey_level("pore"),
                                                              imaging.grey_level("se"), imaging.grey_level("am"));
  for (const std::string host : {"se", "am"}) {
    // VP_HOST=se (or am): that host only, to iterate faster on one of them.
    if (const char* only = std::getenv("VP_HOST"); only && host != only) continue;
    CrackDetectionOptions o;  // the stage's defaults
    o.host_labels = {host == "se" ? 1 : 2};
    o.void_labels = {0};
    // VP_CUT_MIN_VALLEY=0: cut cracks judged by the void's flatness instead of the grey valley.
    if (const char* v = std::getenv("VP_CUT_MIN_VALLEY")) o.cut_min_valley = std::atof(v);
    // VP_CUT_MIN_BEYOND=0: lone fragments not judged by the valley beyond their void.
    if (const char* v = std::getenv("VP_CUT_MIN_BEYOND")) o.cut_min_beyond = std::atof(v);
    // VP_PLANAR_SHEETS=0: split pieces thicker than the aperture accepted as before.
    if (const char* v = std::getenv("VP_PLANAR_SHEETS")) o.planar_sheets = std::atoi(v) != 0;
    // VP_CUT_REFITS=0: cut planes kept as first fitted to the walled voxels they meet.
    if (const char* v = std::getenv("VP_CUT_REFITS")) o.cut_refits = std::atoi(v);
    // VP_CUT_REFIT_OUTSIDE=0: every cut plane of a cut crack's size refitted, however it was fitted.
    if (const char* v = std::getenv("VP_CUT_REFIT_OUTSIDE")) o.cut_refit_outside = std::atof(v);
    // VP_BRIDGE_ACCEPTED=0: cracks accepted apart are not joined to each other.
    if (const char* v = std::getenv("VP_BRIDGE_ACCEPTED")) o.bridge_accepted = std::atoi(v) != 0;
    // VP_JOINED_AS_LONE=0: joined fragments short of the cut aspect dropped, as before.
    if (const char* v = std::getenv("VP_JOINED_AS_LONE")) o.joined_judged_as_lone = std::atoi(v) != 0;
    const CrackDetection det = detect_cracks(labels, &grey, o);
    const crack_recall::Score s = crack_recall::score(ph, host, det.ids, det.count);
    totals[host].add(s, ph, host);
    if (std::getenv("VP_DEBUG"))
      std::fprintf(stderr,
                   "  %s: contrast %.0f, void %lld, sheet %lld, enclosed %lld, thin %lld, small %u, shape %u, cut %u, "
                   "facet voxels %lld, facets %u, count %u\n",
                   host.c_str(), det.contrast, static_cast<long long>(det.void_voxels),
                   static_cast<long long>(det.sheet_voxels), static_cast<long long>(det.enclosed_voxels),
                   static_cast<long long>(det.thin_voxels), det.rejected_small, det.rejected_shape, det.cut_cracks,
                   static_cast<long long>(det.facet_voxels), det.facet_cracks, det.count);
    if (std::getenv("VP_DEBUG")) explain_planted(ph, host, labels, det);
    if (std::getenv("VP_DEBUG")) explain_detected(ph, imaging, grey, labels, det);
    std::printf("| %-28s | %4.0f | %2s | %7d | %5d | %8u | %8lld | %9.3f | %9.4f |\n", name.c_str(), imaging.snr,
                host.c_str(), s.planted, s.found, s.detected_cracks, static_cast<long long>(s.detected_voxels),
                s.precision(), 100 * s.false_fraction());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const index_t n = argc > 1 ? std::atoll(argv[1]) : 128;
  const std::vector<double> seeds = numbers(argc > 2 ? argv[2] : "1,2,3");
  const std::vector<double> snrs = numbers(argc > 3 ? argv[3] : "5,8,12");
  const std::string samples =
      argc > 4 ? argv[4] : (std::filesystem::path(__FILE__).parent_path().parent_path() / "data_samples").string();

  std::printf("voxpress crack recall: %lld³ composites, CT PSF σ = 1 voxel, midpoint-threshold labels\n\n",
              static_cast<long long>(n));
  std::printf("| %-28s | %4s | %2s | %7s | %5s | %8s | %8s | %9s | %9s |\n", "phantom", "SNR", "host", "planted",
              "found", "detected", "voxels", "precision", "false %");
  std::printf(
      "|------------------------------|------|----|---------|-------|----------|----------|-----------|-----------|\n");
  // VP_PRESSURES=370 (a list): those cracked pressures only (any pressure but 125, e.g. 310: the
  // composite with the cracks open at that pressure), and the crack-free image only when 125 is
  // listed, to trace one kind of image faster.
  const char* only_pressures = std::getenv("VP_PRESSURES");
  const std::vector<double> pressures = numbers(only_pressures ? only_pressures : "250,370,125");
  const auto wanted = [&](double p) { return std::find(pressures.begin(), pressures.end(), p) != pressures.end(); };
  std::map<std::string, Totals> cracked, clean;
  for (double seed : seeds) {
    for (double pressure : pressures) {
      if (pressure == 125) continue;
      phantom::CompositeSpec spec;
      spec.dims = {n, n, n};
      spec.seed = static_cast<std::uint64_t>(seed);
      const phantom::Phantom ph = phantom::generate_composite(spec, pressure);
      for (double snr : snrs) {
        phantom::ImagingSpec imaging;
        imaging.snr = snr;
        imaging.seed = spec.seed;
        evaluate("seed " + std::to_string(spec.seed) + ", " + std::to_string(int(pressure)) + " MPa", ph, imaging,
                 cracked);
      }
    }
    if (!wanted(125)) continue;
    phantom::CompositeSpec spec;
    spec.dims = {n, n, n};
    spec.seed = static_cast<std::uint64_t>(seed);
    spec.cracks_enabled = false;
    const phantom::Phantom ph = phantom::generate_composite(spec, 125);
    for (double snr : snrs) {
      phantom::ImagingSpec imaging;
      imaging.snr = snr;
      imaging.seed = spec.seed;
      evaluate("seed " + std::to_string(spec.seed) + ", 125 MPa, crack-free", ph, imaging, clean);
    }
  }
  const std::string spec_path = samples + "/phantom_ct.yaml";
  if (std::filesystem::exists(spec_path)) {
    const phantom::PhantomJob job = phantom::load_phantom_spec(spec_path);
    for (double pressure : {250.0, 370.0}) {
      const phantom::Phantom ph = phantom::generate_composite(job.composite, pressure);
      evaluate("data_samples p" + std::to_string(int(pressure)), ph, job.imaging, cracked);
    }
  }
  std::printf("\n");
  for (const auto& [host, t] : cracked)
    std::printf(
        "cracked, host %s: found %d of %d planted (recall %.1f %%), precision %.3f, false volume %.4f %% of host\n",
        host.c_str(), t.found, t.planted, t.planted ? 100.0 * t.found / t.planted : 100.0,
        t.detected ? 1.0 - double(t.false_voxels) / t.detected : 1.0, 100.0 * t.false_voxels / t.host_voxels);
  for (const auto& [host, t] : cracked) {
    std::printf("cracked, host %s, found by planted area:", host.c_str());
    for (int b = 0; b < kAreaBinCount; ++b) {
      if (b == 0) std::printf(" < %g um2", kAreaBins[0]);
      else if (b + 1 == kAreaBinCount) std::printf(", >= %g um2", kAreaBins[b - 1]);
      else std::printf(", %g-%g um2", kAreaBins[b - 1], kAreaBins[b]);
      std::printf(" %d of %d", t.found_by_area[b], t.planted_by_area[b]);
    }
    std::printf("\n");
  }
  for (const auto& [host, t] : clean)
    std::printf("crack-free, host %s: false crack volume %.4f %% of host (%lld voxels)\n", host.c_str(),
                100.0 * t.false_voxels / t.host_voxels, static_cast<long long>(t.false_voxels));
  return 0;
}
