#include "metrics/cracks/measure.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"
#include "metrics/connectivity.h"
#include "metrics/cracks/graph.h"
#include "metrics/cracks/shape.h"
#include "metrics/cracks/skeleton.h"
#include "metrics/local_thickness.h"

namespace vp {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::array<bool, 256> label_set(const std::vector<int>& labels) {
  std::array<bool, 256> in{};
  for (int l : labels)
    if (l >= 0 && l < 256) in[static_cast<std::size_t>(l)] = true;
  return in;
}

// Crack ids present, each with its voxels in raster order.
std::map<std::uint32_t, std::vector<index_t>> crack_members(const Volume<std::uint32_t>& cracks) {
  std::map<std::uint32_t, std::vector<index_t>> m;
  for (index_t i = 0; i < cracks.size(); ++i)
    if (cracks[i]) m[cracks[i]].push_back(i);
  return m;
}

void measure_particles(const Volume<std::uint8_t>& labels, const Volume<std::uint32_t>& cracks,
                       const Volume<std::uint32_t>& particles, const std::array<bool, 256>& host,
                       CrackMeasurements& out) {
  if (!(particles.dims() == labels.dims()))
    throw InputError("crack measures: particle ids " + to_string(particles.dims()) + " and labels " +
                     to_string(labels.dims()) + " differ in size");
  const Dims d = labels.dims();
  // Plane ranges in parallel, each with its own sets, then merged: the same sets at any thread count.
  struct Found {
    std::set<std::uint32_t> host_ids;
    std::set<std::pair<std::uint32_t, std::uint32_t>> touching;  // (particle, crack)
  };
  tbb::enumerable_thread_specific<Found> found;
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& r) {
    Found& f = found.local();
    std::uint32_t last_host_id = 0;  // runs of one particle's voxels: one set insert per run
    for (index_t z = r.begin(); z != r.end(); ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = labels.index(x, y, z);
          if (host[labels[i]] && particles[i] && particles[i] != last_host_id) {
            f.host_ids.insert(particles[i]);
            last_host_id = particles[i];
          }
          if (!cracks[i]) continue;
          const index_t nb[6][3] = {{x - 1, y, z}, {x + 1, y, z}, {x, y - 1, z},
                                    {x, y + 1, z}, {x, y, z - 1}, {x, y, z + 1}};
          for (const auto& p : nb) {
            if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[0] >= d.x || p[1] >= d.y || p[2] >= d.z) continue;
            const index_t j = labels.index(p[0], p[1], p[2]);
            if (host[labels[j]] && particles[j]) f.touching.insert({particles[j], cracks[i]});
          }
        }
  });
  std::set<std::uint32_t> host_ids;
  std::set<std::pair<std::uint32_t, std::uint32_t>> touching;
  for (Found& f : found) {
    host_ids.merge(f.host_ids);
    touching.merge(f.touching);
  }
  std::set<std::uint32_t> cracked;
  for (const auto& [p, c] : touching) cracked.insert(p);
  out.has_particles = true;
  out.host_particles = static_cast<int>(host_ids.size());
  out.cracked_particles = static_cast<int>(cracked.size());
  out.cracked_particle_fraction = host_ids.empty() ? 0.0 : static_cast<double>(cracked.size()) / host_ids.size();
  out.cracks_per_particle = host_ids.empty() ? 0.0 : static_cast<double>(touching.size()) / host_ids.size();
}

}  // namespace

CrackMeasurements measure_cracks(const Volume<std::uint8_t>& labels, const Volume<std::uint32_t>& cracks,
                                 const CrackMeasureOptions& o) {
  if (!(cracks.dims() == labels.dims()))
    throw InputError("crack measures: crack ids " + to_string(cracks.dims()) + " and labels " +
                     to_string(labels.dims()) + " differ in size; expected the same dims");
  if (o.pressing_axis < 0 || o.pressing_axis > 2)
    throw InputError("crack measures: pressing axis " + std::to_string(o.pressing_axis) + " is not 0, 1 or 2");
  const int conn = o.connectivity == 6 ? 6 : 26;
  const Dims d = labels.dims();
  const Vec3 h = labels.spacing_um;
  const double voxel_um3 = h[0] * h[1] * h[2];
  const std::array<bool, 256> host = label_set(o.host_labels), pore = label_set(o.void_labels);
  CrackMeasurements out;

  Volume<std::uint8_t> crack_mask = labels.like<std::uint8_t>(d), network_mask = labels.like<std::uint8_t>(d);
  // The masks and the voxel counts (integer sums: the same at any thread count), in parallel.
  const auto [crack_voxels, host_voxels] = tbb::parallel_reduce(
      tbb::blocked_range<index_t>(0, labels.size(), 1 << 16), std::pair<index_t, index_t>{0, 0},
      [&](const tbb::blocked_range<index_t>& r, std::pair<index_t, index_t> n) {
        for (index_t i = r.begin(); i != r.end(); ++i) {
          crack_mask[i] = cracks[i] != 0;
          network_mask[i] = crack_mask[i] || pore[labels[i]];
          n.first += crack_mask[i];
          n.second += host[labels[i]] && !crack_mask[i];
        }
        return n;
      },
      [](std::pair<index_t, index_t> a, std::pair<index_t, index_t> b) {
        return std::pair<index_t, index_t>{a.first + b.first, a.second + b.second};
      });
  out.crack_voxels = crack_voxels;
  out.host_volume_um3 = static_cast<double>(host_voxels + out.crack_voxels) * voxel_um3;
  out.crack_volume_um3 = static_cast<double>(out.crack_voxels) * voxel_um3;
  out.crack_volume_fraction = out.host_volume_um3 > 0 ? out.crack_volume_um3 / out.host_volume_um3 : 0;

  // Per crack: shape, area, orientation, aperture (the thickness dropped after: the network
  // measures below hold volumes of their own).
  const auto members = crack_members(cracks);
  double lt_sum = 0;
  out.aperture_max_um = 0;
  Volume<float> thickness = local_thickness(crack_mask);
  for (const auto& [id, voxels] : members) {
    CrackProperties c;
    c.id = id;
    c.voxels = static_cast<index_t>(voxels.size());
    c.volume_um3 = static_cast<double>(c.voxels) * voxel_um3;
    const PrincipalAxes axes = principal_axes(voxels, d, h, labels.origin_um);
    c.centroid_um = axes.centroid_um;
    c.normal = axes.axis[2];
    c.aspect = sheet_aspect(axes);
    const SheetGeometry sheet = sheet_geometry(voxels, d, h, c.normal);
    c.area_um2 = sheet.area_um2;
    c.aperture_mean_um = sheet.opening_mean_um;
    c.aperture_max_um = sheet.opening_max_um;
    c.angle_to_pressing_axis_deg =
        std::acos(std::min(1.0, std::abs(c.normal[static_cast<std::size_t>(o.pressing_axis)]))) * 180.0 / M_PI;
    double sum = 0;
    for (index_t v : voxels) {
      sum += thickness[v];
      c.aperture_local_thickness_max_um =
          std::max(c.aperture_local_thickness_max_um, static_cast<double>(thickness[v]));
    }
    c.aperture_local_thickness_mean_um = sum / static_cast<double>(voxels.size());
    lt_sum += sum;
    out.aperture_local_thickness_max_um =
        std::max(out.aperture_local_thickness_max_um, c.aperture_local_thickness_max_um);
    out.aperture_max_um = std::max(out.aperture_max_um, c.aperture_max_um);
    out.crack_area_um2 += c.area_um2;
    const int bin = std::min(8, static_cast<int>(c.angle_to_pressing_axis_deg / 10.0));
    out.orientation_histogram[static_cast<std::size_t>(bin)] += c.area_um2;
    out.orientation_mean_deg += c.area_um2 * c.angle_to_pressing_axis_deg;
    out.cracks.push_back(c);
  }
  thickness = {};
  if (out.crack_area_um2 > 0) {
    for (double& b : out.orientation_histogram) b /= out.crack_area_um2;
    out.orientation_mean_deg /= out.crack_area_um2;
  } else {
    out.orientation_mean_deg = kNaN;
  }
  out.aperture_mean_um = out.crack_area_um2 > 0 ? out.crack_volume_um3 / out.crack_area_um2 : kNaN;
  out.aperture_local_thickness_mean_um = out.crack_voxels ? lt_sum / static_cast<double>(out.crack_voxels) : kNaN;
  if (!out.crack_voxels) out.aperture_max_um = out.aperture_local_thickness_max_um = kNaN;
  out.crack_surface_density = out.host_volume_um3 > 0 ? out.crack_area_um2 / out.host_volume_um3 : 0;

  auto index_of = [&](std::uint32_t id) {
    return static_cast<std::size_t>(std::distance(members.begin(), members.find(id)));
  };

  // Skeleton lengths, attributed to the crack that holds each skeleton network.
  if (o.skeleton && out.crack_voxels) {
    const SkeletonGraph g = skeleton_graph(skeletonize(crack_mask));
    out.skeleton_junctions = g.junction_count();
    out.skeleton_ends = g.end_count();
    out.skeleton_cycles = g.cycle_count();
    out.total_length_um = g.total_length_um();
    std::vector<std::uint32_t> network_crack(g.networks.size(), 0);
    for (const auto& node : g.nodes)
      network_crack[static_cast<std::size_t>(node.network)] = cracks[node.voxels.front()];
    for (std::size_t k = 0; k < g.networks.size(); ++k)
      out.cracks[index_of(network_crack[k])].length_um += g.networks[k].length_um;
  }

  // Void networks that hold cracks.
  const Clusters nets = label_clusters(network_mask, conn);
  std::map<std::uint32_t, double> crack_volume_of_net;
  for (auto& c : out.cracks) {
    const std::uint32_t net = nets.ids[members.at(c.id).front()];
    crack_volume_of_net[net] += c.volume_um3;
  }
  int k = 0;
  std::map<std::uint32_t, int> net_index;
  for (const auto& [net, vol] : crack_volume_of_net) {
    net_index[net] = k++;
    out.largest_network_fraction = std::max(out.largest_network_fraction, vol);
  }
  out.network_count = static_cast<int>(crack_volume_of_net.size());
  out.largest_network_fraction = out.crack_volume_um3 > 0 ? out.largest_network_fraction / out.crack_volume_um3 : 0;
  for (auto& c : out.cracks) c.network = net_index[nets.ids[members.at(c.id).front()]];

  if (o.particles) measure_particles(labels, cracks, *o.particles, host, out);

  const std::vector<ShortCircuitRisk> risks = short_circuit_risks(network_mask, nets, {0, 1, 2}, conn);
  std::copy(risks.begin(), risks.end(), out.short_circuit.begin());
  return out;
}

}  // namespace vp
