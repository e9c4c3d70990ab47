// Exact building blocks for accuracy tests: separated spheres, planar cracks, a capped sphere.
// Geometry is defined in µm, so anisotropic spacing is honoured; the truth is analytic.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "phantoms/geometry.h"
#include "phantoms/phantom.h"
#include "phantoms/random.h"

namespace vp::phantom {

namespace {

void check_grid(const Dims& dims, const Vec3& spacing, const std::string& what) {
  if (dims.empty()) throw InputError(what + ": expected positive dimensions, got " + to_string(dims));
  for (double h : spacing)
    if (!(h > 0)) throw InputError(what + ": expected positive spacing_um");
}

Phantom blank(const Dims& dims, const Vec3& spacing, std::uint8_t fill, const char* generator) {
  Phantom out;
  out.labels = LabelVolume(Volume<std::uint8_t>(dims, spacing, fill), phase_table(false));
  out.truth.generator = generator;
  return out;
}

}  // namespace

Phantom separated_spheres(const SpheresSpec& spec) {
  check_grid(spec.dims, spec.spacing_um, "spheres phantom");
  if (spec.matrix != Role::pore && spec.matrix != Role::electrolyte)
    throw InputError("spheres phantom: matrix: expected pore or electrolyte");
  if (!(spec.radius_min_um > 0 && spec.radius_min_um <= spec.radius_max_um))
    throw InputError("spheres phantom: expected 0 < radius_min_um ≤ radius_max_um");
  const std::uint8_t matrix = spec.matrix == Role::pore ? kPore : kElectrolyte;
  Phantom out = blank(spec.dims, spec.spacing_um, matrix, "spheres");
  const ImageBox box{spec.dims, spec.spacing_um};
  const Vec3 size = box.size();

  // Random sequential addition; each sphere keeps one voxel off the border and min_gap from
  // the others, so no two spheres share a voxel face.
  Rng rng(spec.seed, kStreamSpheres);
  std::vector<Vec3> centres;
  std::vector<double> radii;
  for (int k = 0; k < spec.count; ++k) {
    const double r = rng.uniform(spec.radius_min_um, spec.radius_max_um);
    bool placed = false;
    for (int attempt = 0; attempt < 20000 && !placed; ++attempt) {
      Vec3 c;
      for (int a = 0; a < 3; ++a) {
        const double m = r + spec.spacing_um[a];
        if (2 * m >= size[a])
          throw InputError("spheres phantom: a sphere of radius " + std::to_string(r) + " µm does not fit in " +
                           to_string(spec.dims));
        c[a] = rng.uniform(m, size[a] - m);
      }
      placed = true;
      for (std::size_t j = 0; j < centres.size() && placed; ++j)
        placed = norm(sub(c, centres[j])) >= r + radii[j] + spec.min_gap_um;
      if (placed) centres.push_back(c), radii.push_back(r);
    }
    if (!placed)
      throw InputError("spheres phantom: could not place sphere " + std::to_string(k + 1) + " of " +
                       std::to_string(spec.count) + " without overlap in " + to_string(spec.dims));
  }

  out.particles = Volume<std::uint32_t>(spec.dims, spec.spacing_um);
  for (std::size_t k = 0; k < centres.size(); ++k) {
    const Vec3& c = centres[k];
    const double r = radii[k];
    index_t lo[3], hi[3];
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::max<index_t>(0, static_cast<index_t>(std::floor((c[a] - r) / spec.spacing_um[a])));
      hi[a] = std::min<index_t>(spec.dims[a] - 1, static_cast<index_t>(std::ceil((c[a] + r) / spec.spacing_um[a])));
    }
    for (index_t z = lo[2]; z <= hi[2]; ++z)
      for (index_t y = lo[1]; y <= hi[1]; ++y)
        for (index_t x = lo[0]; x <= hi[0]; ++x)
          if (norm(sub(box.centre_of(x, y, z), c)) < r) {
            out.labels(x, y, z) = kActive;
            out.particles(x, y, z) = static_cast<std::uint32_t>(k + 1);
          }
  }

  GroundTruth& t = out.truth;
  t.seed = spec.seed;
  count_phases(out.labels, t);
  std::vector<std::int64_t> voxels(centres.size() + 1, 0);
  for (std::uint32_t id : out.particles.storage()) ++voxels[id];
  double area = 0;
  for (std::size_t k = 0; k < centres.size(); ++k) {
    const double r = radii[k];
    t.particles.push_back({static_cast<std::uint32_t>(k + 1),
                           "am",
                           centres[k],
                           {r, r, r},
                           4.0 / 3.0 * kPi * r * r * r,
                           4 * kPi * r * r,
                           voxels[k + 1],
                           true,
                           0});
    area += 4 * kPi * r * r;
  }
  t.interface_area_um2[matrix == kPore ? "pore|am" : "se|am"] = area;
  t.interface_area_method = "analytic";
  t.am_surface_area_um2 = area;
  t.am_se_contact_area_um2 = matrix == kElectrolyte ? area : 0;
  t.contact_area_fraction = matrix == kElectrolyte ? 1 : 0;
  t.parameters = {{"count", spec.count},
                  {"radius_min_um", spec.radius_min_um},
                  {"radius_max_um", spec.radius_max_um},
                  {"min_gap_um", spec.min_gap_um},
                  {"matrix", to_string(spec.matrix)}};
  return out;
}

Phantom planar_cracks(const PlanarCrackSpec& spec) {
  check_grid(spec.dims, spec.spacing_um, "planar-crack phantom");
  if (spec.host != "se" && spec.host != "am")
    throw InputError("planar-crack phantom: host: expected se or am, got '" + spec.host + "'");
  const ImageBox box{spec.dims, spec.spacing_um};
  const Vec3 size = box.size();
  const Vec3 centre = scale(size, 0.5);
  const bool in_am = spec.host == "am";
  if (in_am && !(spec.am_radius_um > 0 && 2 * spec.am_radius_um < std::min({size[0], size[1], size[2]})))
    throw InputError("planar-crack phantom: am_radius_um: expected a sphere that fits inside the image");
  std::vector<Vec3> normals;
  for (const PlanarCrack& c : spec.cracks) {
    if (!(c.aperture_um > 0)) throw InputError("planar-crack phantom: aperture_um: expected > 0");
    if (!(norm(c.normal) > 0)) throw InputError("planar-crack phantom: normal: expected a non-zero vector");
    normals.push_back(normalized(c.normal));
  }

  Phantom out = blank(spec.dims, spec.spacing_um, kElectrolyte, "planar_cracks");
  out.cracks = Volume<std::uint32_t>(spec.dims, spec.spacing_um);
  if (in_am) out.particles = Volume<std::uint32_t>(spec.dims, spec.spacing_um);
  auto in_host = [&](const Vec3& p) { return !in_am || norm(sub(p, centre)) < spec.am_radius_um; };
  auto in_crack = [&](std::size_t k, const Vec3& p, double half_width) {
    const PlanarCrack& c = spec.cracks[k];
    const Vec3 d = sub(p, c.centre_um);
    const double along = dot(d, normals[k]);
    if (std::fabs(along) >= half_width) return false;
    return c.radius_um <= 0 || dot(d, d) - along * along < c.radius_um * c.radius_um;
  };
  for (index_t z = 0; z < spec.dims.z; ++z)
    for (index_t y = 0; y < spec.dims.y; ++y)
      for (index_t x = 0; x < spec.dims.x; ++x) {
        const Vec3 p = box.centre_of(x, y, z);
        if (!in_host(p)) continue;
        if (in_am) out.labels(x, y, z) = kActive, out.particles(x, y, z) = 1;
        for (std::size_t k = 0; k < spec.cracks.size(); ++k)
          if (in_crack(k, p, spec.cracks[k].aperture_um / 2)) {
            out.labels(x, y, z) = kPore;
            out.cracks(x, y, z) = static_cast<std::uint32_t>(k + 1);
            if (in_am) out.particles(x, y, z) = 0;
            break;
          }
      }

  GroundTruth& t = out.truth;
  count_phases(out.labels, t);
  std::vector<std::int64_t> voxels(spec.cracks.size() + 1, 0);
  for (std::uint32_t id : out.cracks.storage()) ++voxels[id];
  const double step = std::min({spec.spacing_um[0], spec.spacing_um[1], spec.spacing_um[2]}) / 16;
  const double diag = norm(size);
  bool all_analytic = true;
  double walls = 0;
  for (std::size_t k = 0; k < spec.cracks.size(); ++k) {
    const PlanarCrack& c = spec.cracks[k];
    const Vec3& n = normals[k];
    CrackTruth ct{static_cast<std::uint32_t>(k + 1), spec.host,       "planar",     c.centre_um, n, c.aperture_um, 0,
                  std::max(0.0, c.radius_um),        in_am ? 1u : 0u, voxels[k + 1]};
    // Analytic when the disc lies wholly in the host (and the image), or for a through-crack
    // across a sphere or normal to an image axis; otherwise a plane quadrature at 1/16 voxel.
    bool analytic = false;
    if (c.radius_um > 0) {
      bool inside = true;
      for (int a = 0; a < 3; ++a) {
        const double reach = c.radius_um * std::sqrt(std::max(0.0, 1 - n[a] * n[a]));
        inside = inside && c.centre_um[a] - reach >= 0 && c.centre_um[a] + reach <= size[a];
      }
      if (in_am) {
        const Vec3 d = sub(c.centre_um, centre);
        const double off = dot(d, n);
        const double rho = std::sqrt(std::max(0.0, spec.am_radius_um * spec.am_radius_um - off * off));
        inside = inside && norm(sub(d, scale(n, off))) + c.radius_um <= rho;
      }
      if (inside) ct.area_um2 = kPi * c.radius_um * c.radius_um, analytic = true;
    } else if (in_am) {
      const double off = dot(sub(c.centre_um, centre), n);
      ct.area_um2 = kPi * std::max(0.0, spec.am_radius_um * spec.am_radius_um - off * off);
      ct.centre_um = add(centre, scale(n, off));
      analytic = true;
    } else {
      for (int a = 0; a < 3; ++a)
        if (std::fabs(std::fabs(n[a]) - 1) < 1e-12 && c.centre_um[a] > 0 && c.centre_um[a] < size[a]) {
          ct.area_um2 = size[(a + 1) % 3] * size[(a + 2) % 3];
          ct.centre_um = centre;
          ct.centre_um[a] = c.centre_um[a];
          analytic = true;
        }
    }
    if (!analytic) {
      const PlaneArea pa = plane_area(c.centre_um, n, c.radius_um > 0 ? c.radius_um : diag, step, [&](const Vec3& q) {
        return box.contains(q) && in_host(q) && in_crack(k, q, 1.0);
      });
      ct.area_um2 = pa.area;
      ct.centre_um = pa.centroid;
      all_analytic = false;
    }
    // Crack walls: two faces, plus the rim of a disc lying wholly inside the host.
    walls += 2 * ct.area_um2 + (analytic && c.radius_um > 0 ? 2 * kPi * c.radius_um * c.aperture_um : 0);
    t.cracks.push_back(ct);
  }
  if (spec.cracks.size() <= 1 && all_analytic) {
    t.interface_area_um2[in_am ? "pore|am" : "pore|se"] = walls;
    t.interface_area_method = "analytic";
  }
  if (in_am) {
    const double r = spec.am_radius_um;
    t.particles.push_back(
        {1, "am", centre, {r, r, r}, 4.0 / 3.0 * kPi * r * r * r, 4 * kPi * r * r, t.voxel_count["am"], true, 0});
  }
  nlohmann::json cj = nlohmann::json::array();
  for (const auto& c : spec.cracks)
    cj.push_back({{"centre_um", {c.centre_um[0], c.centre_um[1], c.centre_um[2]}},
                  {"normal", {c.normal[0], c.normal[1], c.normal[2]}},
                  {"aperture_um", c.aperture_um},
                  {"radius_um", c.radius_um}});
  t.parameters = {{"host", spec.host}, {"am_radius_um", spec.am_radius_um}, {"cracks", cj}};
  return out;
}

Phantom capped_sphere(const CappedSphereSpec& spec) {
  check_grid(spec.dims, spec.spacing_um, "capped-sphere phantom");
  const ImageBox box{spec.dims, spec.spacing_um};
  const Vec3 size = box.size();
  const Vec3 c = scale(size, 0.5);
  const double R = spec.radius_um, t_shell = spec.shell_um;
  if (!(R > 0 && t_shell > 0 && 2 * (R + t_shell) < std::min({size[0], size[1], size[2]})))
    throw InputError(
        "capped-sphere phantom: expected radius_um > 0, shell_um > 0 and the capped sphere inside the image");
  if (!(spec.cap_angle_deg > 0 && spec.cap_angle_deg <= 180))
    throw InputError("capped-sphere phantom: cap_angle_deg: expected 0 < angle ≤ 180");
  const double theta = spec.cap_angle_deg * kPi / 180;
  const double cos_t = std::cos(theta);

  Phantom out = blank(spec.dims, spec.spacing_um, kPore, "capped_sphere");
  out.particles = Volume<std::uint32_t>(spec.dims, spec.spacing_um);
  for (index_t z = 0; z < spec.dims.z; ++z)
    for (index_t y = 0; y < spec.dims.y; ++y)
      for (index_t x = 0; x < spec.dims.x; ++x) {
        const Vec3 d = sub(box.centre_of(x, y, z), c);
        const double r = norm(d);
        if (r < R) {
          out.labels(x, y, z) = kActive;
          out.particles(x, y, z) = 1;
        } else if (r < R + t_shell && d[2] >= r * cos_t) {
          out.labels(x, y, z) = kElectrolyte;
          out.particles(x, y, z) = 2;
        }
      }

  GroundTruth& t = out.truth;
  count_phases(out.labels, t);
  const double am_area = 4 * kPi * R * R;
  const double contact = 2 * kPi * R * R * (1 - cos_t);
  const double Ro = R + t_shell;
  t.interface_area_um2["se|am"] = contact;
  t.interface_area_um2["pore|am"] = am_area - contact;
  // Outer cap plus the conical rim between R and R + t (an annulus for the half cap).
  t.interface_area_um2["pore|se"] =
      2 * kPi * Ro * Ro * (1 - cos_t) + (theta < kPi ? kPi * std::sin(theta) * (Ro * Ro - R * R) : 0);
  t.interface_area_method = "analytic";
  t.am_surface_area_um2 = am_area;
  t.am_se_contact_area_um2 = contact;
  t.contact_area_fraction = (1 - cos_t) / 2;
  t.particles.push_back({1, "am", c, {R, R, R}, 4.0 / 3.0 * kPi * R * R * R, am_area, t.voxel_count["am"], true, 0});
  t.parameters = {{"radius_um", R}, {"shell_um", t_shell}, {"cap_angle_deg", spec.cap_angle_deg}};
  return out;
}

}  // namespace vp::phantom
