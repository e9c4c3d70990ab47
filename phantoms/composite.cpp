// The composite-cathode phantom: one particle set, pressed uniaxially along z.
//
// Model (plausibility over fidelity):
//  * Loose state (P = 0, relative density D0 = 1 − exp(−A)): AM particles (rigid spheres and
//    ellipsoids, some polycrystalline), SE particles (soft spheres) and binder blobs placed at
//    random in a box tall enough that the image window stays filled at every pressure.
//  * Pressing to P scales every centre's z by s(P) = D0 / D(P) (Heckel D); AM and binder keep
//    their shape, SE particles flatten volume-preservingly (z semi-axis r·s, lateral r/√s).
//  * SE flows into the voids: a point outside AM and binder is SE when
//    F = f_se − w·g ≤ δ, where f_se is the level-set distance to the nearest SE particle and g a
//    proximity to AM surfaces in [0, 1]. δ is chosen so the image porosity equals Heckel's exactly
//    (to one voxel); w steers how much SE wets the AM so the AM–SE contact follows a knee law.
//  * At and above the crack onset, planar discs in the SE and grain-boundary facets of
//    polycrystalline AM open into void; their number grows with pressure, each keeps its place.
// The phase at a point is a pure function of position, so the ground truth can be evaluated on
// the continuous geometry (surface and plane quadratures) as well as on the voxel grid.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

#include <malloc.h>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "phantoms/cell_grid.h"
#include "phantoms/geometry.h"
#include "phantoms/phantom.h"
#include "phantoms/random.h"

namespace vp::phantom {

double heckel_porosity(const CompactionSpec& c, double pressure_MPa) {
  return std::exp(-(c.heckel_k * pressure_MPa + c.heckel_A));
}

double target_contact_fraction(const CompactionSpec& c, double pressure_MPa) {
  return c.contact_c0 + (c.contact_max - c.contact_c0) * (1 - std::exp(-pressure_MPa / c.contact_knee_MPa)) +
         c.contact_slope_per_MPa * pressure_MPa;
}

nlohmann::json CompositeSpec::to_json() const {
  return {
      {"dims", {dims.x, dims.y, dims.z}},
      {"spacing_um", {spacing_um[0], spacing_um[1], spacing_um[2]}},
      {"seed", seed},
      {"fractions", {{"am", am_fraction}, {"se", se_fraction}, {"binder", binder_fraction}, {"pore", pore_fraction}}},
      {"am_particles",
       {{"radius_vox", am_radius_vox},
        {"radius_cv", am_radius_cv},
        {"radius_min_vox", am_radius_min_vox},
        {"radius_max_vox", am_radius_max_vox},
        {"ellipsoid_fraction", ellipsoid_fraction},
        {"aspect_max", aspect_max},
        {"polycrystal_fraction", polycrystal_fraction},
        {"grains", grains}}},
      {"se_radius_vox", se_radius_vox},
      {"binder_radius_vox", binder_radius_vox},
      {"pressures_MPa", pressures_MPa},
      {"compaction",
       {{"enabled", compaction.enabled},
        {"heckel_k", compaction.heckel_k},
        {"heckel_A", compaction.heckel_A},
        {"steer_contact", compaction.steer_contact},
        {"contact_c0", compaction.contact_c0},
        {"contact_max", compaction.contact_max},
        {"contact_knee_MPa", compaction.contact_knee_MPa},
        {"contact_slope_per_MPa", compaction.contact_slope_per_MPa}}},
      {"cracks",
       {{"enabled", cracks_enabled},
        {"onset_MPa", cracks.onset_MPa},
        {"full_pressure_MPa", cracks.full_pressure_MPa},
        {"se_count", cracks.se_count},
        {"se_aperture_um", cracks.se_aperture_um},
        {"se_radius_um", cracks.se_radius_um},
        {"se_normal", {cracks.se_normal[0], cracks.se_normal[1], cracks.se_normal[2]}},
        {"se_tilt_deg", cracks.se_tilt_deg},
        {"am_count", cracks.am_count},
        {"am_aperture_um", cracks.am_aperture_um}}},
      {"contact_samples_per_voxel_face", contact_samples_per_voxel_face},
  };
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------- the loose particle set

struct AmBody {
  Vec3 centre;               // loose frame
  Vec3 semi;                 // µm, rigid
  std::vector<Vec3> grains;  // grain seeds relative to the centre (µm); empty = single crystal
};
struct Ball {
  Vec3 centre;  // loose frame
  double r;
};
struct SeCrackSeed {
  Vec3 centre_loose;
  Vec3 normal;
};
struct AmCrackSeed {
  int particle;
  int grain_a, grain_b;
};

struct ParticleSet {
  std::vector<AmBody> am;
  std::vector<Ball> se, binder;
  std::vector<SeCrackSeed> se_cracks;
  std::vector<AmCrackSeed> am_cracks;
};

double relative_density(const CompositeSpec& s, double p) {
  return s.compaction.enabled ? 1 - heckel_porosity(s.compaction, p) : 1 - s.pore_fraction;
}
double z_scale(const CompositeSpec& s, double p) {
  return s.compaction.enabled ? relative_density(s, 0) / relative_density(s, p) : 1.0;
}
// The smallest z scale any pressure can reach (fully dense).
double z_scale_limit(const CompositeSpec& s) { return s.compaction.enabled ? relative_density(s, 0) : 1.0; }

void check_spec(const CompositeSpec& s) {
  auto bad = [](const std::string& key, const std::string& what) {
    throw InputError("phantom spec: " + key + ": " + what);
  };
  if (s.dims.empty()) bad("size", "expected positive dimensions, got " + to_string(s.dims));
  for (double h : s.spacing_um)
    if (!(h > 0)) bad("spacing_um", "expected positive spacing");
  if (s.am_fraction < 0 || s.se_fraction < 0 || s.binder_fraction < 0 ||
      s.am_fraction + s.se_fraction + s.binder_fraction <= 0)
    bad("fractions", "expected non-negative am, se, binder with a positive sum");
  if (!(s.pore_fraction >= 0 && s.pore_fraction < 1)) bad("fractions.pore", "expected 0 ≤ pore < 1");
  if (!(s.am_radius_min_vox > 0 && s.am_radius_min_vox <= s.am_radius_vox && s.am_radius_vox <= s.am_radius_max_vox))
    bad("am_particles", "expected 0 < radius_min_vox ≤ radius_vox ≤ radius_max_vox");
  if (!(s.se_radius_vox > 0)) bad("se_radius_vox", "expected > 0");
  if (s.binder_fraction > 0 && !(s.binder_radius_vox > 0)) bad("binder_radius_vox", "expected > 0");
  if (!(s.aspect_max >= 1)) bad("am_particles.aspect_max", "expected ≥ 1");
  if (s.grains < 2 && s.polycrystal_fraction > 0) bad("am_particles.grains", "expected ≥ 2 grains");
  if (s.compaction.enabled && !(s.compaction.heckel_k >= 0 && s.compaction.heckel_A > 0))
    bad("compaction", "expected heckel_k ≥ 0 and heckel_A > 0");
  if (s.cracks.full_pressure_MPa < s.cracks.onset_MPa) bad("cracks.full_pressure_MPa", "expected ≥ onset_MPa");
  if (s.contact_samples_per_voxel_face < 1) bad("contact_samples_per_voxel_face", "expected ≥ 1");
  for (double p : s.pressures_MPa)
    if (!(p >= 0)) bad("pressures_MPa", "expected non-negative pressures");
}

ParticleSet place_particles(const CompositeSpec& s) {
  ParticleSet set;
  const double h = s.spacing_um[0];
  const ImageBox box{s.dims, s.spacing_um};
  const Vec3 size = box.size();
  const double s_min = z_scale_limit(s);
  const double d0 = relative_density(s, 0);
  const double solid = s.am_fraction + s.se_fraction + s.binder_fraction;
  const double margin = s.am_radius_max_vox * s.aspect_max * h;
  const Vec3 lo{-margin, -margin, -margin};
  const Vec3 hi{size[0] + margin, size[1] + margin, size[2] / s_min + margin};
  const double region = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]);

  // AM: log-normal radii until the target volume, largest first (denser random packing), then
  // random sequential addition with bounding spheres kept apart in the fully dense frame.
  Rng rng(s.seed, kStreamAm);
  const double sig = std::sqrt(std::log(1 + s.am_radius_cv * s.am_radius_cv));
  const double mu = std::log(s.am_radius_vox) - sig * sig / 2;
  std::vector<AmBody> wanted;
  double vol = 0;
  const double am_target = s.am_fraction / solid * d0 * region;
  while (vol < am_target && wanted.size() < 200000) {
    const double r = std::clamp(std::exp(mu + sig * rng.normal()), s.am_radius_min_vox, s.am_radius_max_vox) * h;
    AmBody b;
    b.semi = {r, r, r};
    if (rng.uniform() < s.ellipsoid_fraction) {
      const double ex = std::pow(s.aspect_max, rng.uniform(-1, 1)), ey = std::pow(s.aspect_max, rng.uniform(-1, 1));
      const double ez = std::clamp(1 / (ex * ey), 1 / s.aspect_max, s.aspect_max);
      b.semi = {r * ex, r * ey, r * ez};
    }
    vol += ellipsoid_volume(b.semi);
    wanted.push_back(b);
  }
  std::stable_sort(wanted.begin(), wanted.end(), [](const AmBody& a, const AmBody& b) {
    return ellipsoid_volume(a.semi) > ellipsoid_volume(b.semi);
  });
  auto bound = [](const AmBody& b) { return std::max({b.semi[0], b.semi[1], b.semi[2]}); };
  CellGrid placed(lo, hi, 2 * s.am_radius_max_vox * s.aspect_max * h);
  const double keep_apart = 0.92;  // bounding spheres may overlap a little: touching particles
  for (AmBody& b : wanted) {
    const double rb = bound(b);
    for (int attempt = 0; attempt < 400; ++attempt) {
      const Vec3 c{rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]), rng.uniform(lo[2], hi[2])};
      bool free = true;
      for (int j : placed.at(c)) {
        const AmBody& o = set.am[j];
        const double dx = c[0] - o.centre[0], dy = c[1] - o.centre[1], dz = (c[2] - o.centre[2]) * s_min;
        const double dmin = keep_apart * (rb + bound(o));
        if (dx * dx + dy * dy + dz * dz < dmin * dmin) {
          free = false;
          break;
        }
      }
      if (!free) continue;
      b.centre = c;
      // Registered with a reach of the largest possible partner so every conflict is seen.
      const double reach = rb + s.am_radius_max_vox * s.aspect_max * h;
      placed.insert(static_cast<int>(set.am.size()), {c[0] - reach, c[1] - reach, c[2] - reach / s_min},
                    {c[0] + reach, c[1] + reach, c[2] + reach / s_min});
      set.am.push_back(b);
      break;
    }
  }
  // Polycrystalline agglomerates: grain seeds uniformly inside 0.8 of the body.
  Rng grains(s.seed, kStreamGrains);
  for (AmBody& b : set.am) {
    if (!(grains.uniform() < s.polycrystal_fraction)) continue;
    for (int g = 0; g < s.grains; ++g) {
      Vec3 u;
      do u = {grains.uniform(-1, 1), grains.uniform(-1, 1), grains.uniform(-1, 1)};
      while (dot(u, u) > 1);
      b.grains.push_back({0.8 * b.semi[0] * u[0], 0.8 * b.semi[1] * u[1], 0.8 * b.semi[2] * u[2]});
    }
  }

  // SE and binder: random centres outside AM, as many as their volume share asks for.
  CellGrid am_grid(lo, hi, 2 * s.am_radius_max_vox * s.aspect_max * h);
  for (std::size_t i = 0; i < set.am.size(); ++i) {
    const AmBody& b = set.am[i];
    am_grid.insert(static_cast<int>(i), sub(b.centre, b.semi), add(b.centre, b.semi));
  }
  auto outside_am = [&](const Vec3& c) {
    for (int j : am_grid.at(c))
      if (ellipsoid_norm(c, set.am[j].centre, set.am[j].semi) < 1) return false;
    return true;
  };
  auto scatter = [&](std::vector<Ball>& out, double fraction, double r, Stream stream) {
    Rng g(s.seed, stream);
    const auto n =
        static_cast<std::size_t>(std::llround(fraction / solid * d0 * region / (4.0 / 3.0 * kPi * r * r * r)));
    for (std::size_t tries = 0; out.size() < n && tries < 20 * n + 100; ++tries) {
      const Vec3 c{g.uniform(lo[0], hi[0]), g.uniform(lo[1], hi[1]), g.uniform(lo[2], hi[2])};
      if (outside_am(c)) out.push_back({c, r});
    }
  };
  scatter(set.se, s.se_fraction, s.se_radius_vox * h, kStreamSe);
  if (s.binder_fraction > 0) scatter(set.binder, s.binder_fraction, s.binder_radius_vox * h, kStreamBinder);

  // Crack sites, fixed once: SE discs centred inside the image at the onset pressure, and one
  // grain boundary (a grain and its nearest neighbour: they always share a facet) in each of
  // the polycrystalline particles lying wholly inside the image at the onset.
  if (s.cracks_enabled) {
    const double s_on = z_scale(s, s.cracks.onset_MPa);
    Rng cr(s.seed, kStreamCracksSe);
    const Vec3 n0 = normalized(s.cracks.se_normal);
    Vec3 e1, e2;
    plane_basis(n0, e1, e2);
    for (int i = 0; i < s.cracks.se_count; ++i) {
      Vec3 c;
      for (int a = 0; a < 3; ++a) {
        const double m = std::min(0.25 * size[a], 0.5 * s.cracks.se_radius_um);
        c[a] = cr.uniform(m, size[a] - m);
      }
      c[2] /= s_on;
      const double tilt = s.cracks.se_tilt_deg * kPi / 180 * std::sqrt(cr.uniform());
      const double az = 2 * kPi * cr.uniform();
      const Vec3 n =
          add(scale(n0, std::cos(tilt)), scale(add(scale(e1, std::cos(az)), scale(e2, std::sin(az))), std::sin(tilt)));
      set.se_cracks.push_back({c, normalized(n)});
    }
    std::vector<int> candidates;
    for (std::size_t i = 0; i < set.am.size(); ++i) {
      const AmBody& b = set.am[i];
      if (b.grains.size() < 2) continue;
      const Vec3 c{b.centre[0], b.centre[1], b.centre[2] * s_on};
      if (box.contains(sub(c, b.semi)) && box.contains(add(c, b.semi))) candidates.push_back(static_cast<int>(i));
    }
    Rng ca(s.seed, kStreamCracksAm);
    for (std::size_t i = candidates.size(); i > 1; --i) std::swap(candidates[i - 1], candidates[ca.below(i)]);
    for (int k = 0; k < s.cracks.am_count && k < static_cast<int>(candidates.size()); ++k) {
      const AmBody& b = set.am[candidates[k]];
      const int ga = static_cast<int>(ca.below(b.grains.size()));
      int gb = -1;
      double best = kInf;
      for (int g = 0; g < static_cast<int>(b.grains.size()); ++g) {
        const double d = norm(sub(b.grains[g], b.grains[ga]));
        if (g != ga && d < best) best = d, gb = g;
      }
      set.am_cracks.push_back({candidates[k], ga, gb});
    }
  }
  return set;
}

// ---------------------------------------------------------------- one pressed state

int active_cracks(const CrackSpec& c, int count, double p) {
  if (count <= 0 || p < c.onset_MPa) return 0;
  if (c.full_pressure_MPa <= c.onset_MPa) return count;
  const double t = std::min(1.0, (p - c.onset_MPa) / (c.full_pressure_MPa - c.onset_MPa));
  return std::min(count, 1 + static_cast<int>(std::floor((count - 1) * t + 1e-9)));
}

struct Fields {
  int am = -1;  // owning AM particle (smallest ellipsoid norm < 1)
  int binder = -1;
  int se = -1;      // nearest SE particle
  double f_se = 0;  // level-set distance to the nearest SE particle (capped at the reach)
  double g = 0;     // AM proximity in [0, 1]
};

class PressedState {
 public:
  PressedState(const CompositeSpec& spec, const ParticleSet& set, double pressure)
      : spec_(spec), set_(set), box_{spec.dims, spec.spacing_um} {
    s_ = z_scale(spec, pressure);
    proximity_ = 2 * spec.se_radius_vox * spec.spacing_um[0];
    se_reach_ = 1.5 * spec.se_radius_vox * spec.spacing_um[0];
    am_.resize(set.am.size());
    for (std::size_t i = 0; i < set.am.size(); ++i) {
      const AmBody& b = set.am[i];
      am_[i] = {b.centre[0], b.centre[1], b.centre[2] * s_};
      // Beyond this half-width along any axis, q > 1 + proximity / min(a): the particle neither
      // owns p nor adds proximity (with a margin far above rounding), so it is skipped.
      am_box_.push_back(scale(b.semi, (1 + proximity_ / std::min({b.semi[0], b.semi[1], b.semi[2]})) * 1.001));
      am_reach_.push_back({{1 / b.semi[0], 1 / b.semi[1], 1 / b.semi[2]},
                           1 + proximity_ / std::min({b.semi[0], b.semi[1], b.semi[2]}) + 1e-9});
    }
    // SE flattens volume-preservingly: z semi-axis r·s, lateral r/√s.
    se_c_.resize(set.se.size());
    se_a_.resize(set.se.size());
    se_box_.resize(set.se.size());
    for (std::size_t i = 0; i < set.se.size(); ++i) {
      const Ball& b = set.se[i];
      se_c_[i] = {b.centre[0], b.centre[1], b.centre[2] * s_};
      se_a_[i] = {b.r / std::sqrt(s_), b.r / std::sqrt(s_), b.r * s_};
      // Beyond this half-width along any axis (the reach box plus a margin far above rounding)
      // the level-set distance exceeds the reach: the body cannot be the nearest.
      se_box_[i] = scale(se_reach_box(static_cast<int>(i)), 1.001);
    }
    if (!set.se.empty() && std::all_of(set.se.begin(), set.se.end(), [&](const Ball& b) { return b.r == set.se[0].r; }))
      se_bound_ = SeBound{{1 / se_a_[0][0], 1 / se_a_[0][1], 1 / se_a_[0][2]}, 1 / set.se[0].r};
    binder_c_.resize(set.binder.size());
    for (std::size_t i = 0; i < set.binder.size(); ++i) {
      const Ball& b = set.binder[i];
      binder_c_[i] = {b.centre[0], b.centre[1], b.centre[2] * s_};
    }
    index_bodies();
    const int n_se = active_cracks(spec.cracks, static_cast<int>(set.se_cracks.size()), pressure);
    const int n_am = active_cracks(spec.cracks, static_cast<int>(set.am_cracks.size()), pressure);
    for (int i = 0; i < n_se; ++i) {
      const auto& c = set.se_cracks[i];
      se_cracks_.push_back({{c.centre_loose[0], c.centre_loose[1], c.centre_loose[2] * s_},
                            c.normal,
                            static_cast<std::uint32_t>(i + 1)});
    }
    for (int i = 0; i < n_am; ++i) {
      const auto& c = set.am_cracks[i];
      const AmBody& b = set.am[c.particle];
      const Vec3 sa = add(am_[c.particle], b.grains[c.grain_a]), sb = add(am_[c.particle], b.grains[c.grain_b]);
      am_cracks_.push_back({c.particle, c.grain_a, c.grain_b, scale(add(sa, sb), 0.5), normalized(sub(sb, sa)),
                            static_cast<std::uint32_t>(set.se_cracks.size() + i + 1)});
    }
  }

  // (Re)builds the cell grids that the field queries walk: for every point, or (`z` given) only for
  // points with z in [z_lo, z_hi] — at 256³ the grids take 31 MiB, a 16-plane slab's a tenth of
  // that. Same lists in the cells either covers, so the same answers.
  void index_bodies(const std::optional<std::array<double, 2>>& z = {}) {
    am_grid_ = se_grid_ = binder_grid_ = PackedCellGrid();
    const double h = spec_.spacing_um[0];
    const Vec3 size = box_.size();
    const double pad = (spec_.am_radius_max_vox * spec_.aspect_max + 4 * spec_.se_radius_vox) * h;
    const Vec3 lo{-pad, -pad, -pad}, hi{size[0] + pad, size[1] + pad, size[2] + pad};
    std::vector<Vec3> bb_lo(am_.size()), bb_hi(am_.size());
    for (std::size_t i = 0; i < am_.size(); ++i) {
      const Vec3 r = add(set_.am[i].semi, {proximity_, proximity_, proximity_});
      bb_lo[i] = sub(am_[i], r), bb_hi[i] = add(am_[i], r);
    }
    am_grid_ = PackedCellGrid(lo, hi, std::max(4.0 * h, spec_.am_radius_max_vox * h), bb_lo, bb_hi, z);
    // Cells a quarter of the width of an SE body's reach box: a point sees about a fifth as many
    // candidates as with cells as wide as the box (each then tested on its box before its norm).
    // Bodies whose reach box misses the point never win the minimum below, so the cell size does
    // not change any result.
    bb_lo.resize(se_c_.size()), bb_hi.resize(se_c_.size());
    for (std::size_t i = 0; i < se_c_.size(); ++i) {
      const Vec3 r = se_reach_box(static_cast<int>(i));
      bb_lo[i] = sub(se_c_[i], r), bb_hi[i] = add(se_c_[i], r);
    }
    se_grid_ = PackedCellGrid(
        lo, hi, std::max(h, 0.5 * (spec_.se_radius_vox * h / std::sqrt(s_) + se_reach_ * std::max(1.0, 1 / s_))), bb_lo,
        bb_hi, z);
    bb_lo.resize(binder_c_.size()), bb_hi.resize(binder_c_.size());
    for (std::size_t i = 0; i < binder_c_.size(); ++i) {
      const double r = set_.binder[i].r;
      bb_lo[i] = sub(binder_c_[i], {r, r, r}), bb_hi[i] = add(binder_c_[i], {r, r, r});
    }
    binder_grid_ = PackedCellGrid(lo, hi, std::max(2.0 * h, 4 * spec_.binder_radius_vox * h), bb_lo, bb_hi, z);
  }

  double z_scale_value() const { return s_; }
  const ImageBox& box() const { return box_; }
  const Vec3& am_centre(int i) const { return am_[i]; }

  Fields fields(const Vec3& p) const {
    Fields f;
    add_am(p, f);
    add_binder(p, f);
    add_se(p, f);
    return f;
  }

  // The bodies of one grid cell whose box reaches a row of points (fixed y and z), in the
  // cell's order: a walk along x re-filters only when the cell changes, and tests x alone per
  // point (the same box tests, so the same bodies are kept). Reset `cell` at each new row.
  struct RowCandidates {
    static constexpr std::size_t kNoCell = ~std::size_t{0};
    std::size_t cell = kNoCell;
    std::vector<int> ids;
  };

  // The parts of fields(), for callers that need only some of them (an AM point's SE distance
  // decides nothing): the owning AM particle and the AM proximity g ...
  void add_am(const Vec3& p, Fields& f) const {
    double best = 1;
    for (int i : am_grid_.at(p))
      if (am_in_reach(p, i)) add_am_body(p, i, best, f);
    if (f.am >= 0) f.g = 1;
  }
  void add_am(const Vec3& p, Fields& f, RowCandidates& row) const {
    filter_row(
        p, am_grid_, am_, [&](int i) -> const Vec3& { return am_box_[i]; }, row);
    double best = 1;
    for (int i : row.ids)
      if (am_in_reach(p, i)) add_am_body(p, i, best, f);
    if (f.am >= 0) f.g = 1;
  }
  // ... the binder blob containing p ...
  void add_binder(const Vec3& p, Fields& f) const {
    for (int i : binder_grid_.at(p))
      if (norm(sub(p, binder_c_[i])) < set_.binder[i].r) {
        f.binder = i;
        break;
      }
  }
  // ... and the nearest SE particle with its level-set distance.
  // With one SE radius, the bound of se_may_be_nearer replaces the box tests: it rejects every
  // body outside its box too (their distance exceeds the reach, which no f exceeds), in one
  // branch instead of three.
  void add_se(const Vec3& p, Fields& f) const {
    f.f_se = se_reach_;
    if (se_bound_) {
      for (int i : se_grid_.at(p))
        if (se_may_be_nearer(p, i, f.f_se)) add_se_body(p, i, f);
    } else {
      for (int i : se_grid_.at(p))
        if (in_box(p, se_c_[i], se_box_[i])) add_se_body(p, i, f);
    }
  }
  void add_se(const Vec3& p, Fields& f, RowCandidates& row) const {
    f.f_se = se_reach_;
    if (se_bound_) {
      filter_row(
          p, se_grid_, se_c_, [&](int) -> const Vec3& { return se_box_[0]; }, row);  // all alike
      for (int i : row.ids)
        if (se_may_be_nearer(p, i, f.f_se)) add_se_body(p, i, f);
    } else {
      filter_row(
          p, se_grid_, se_c_, [&](int i) -> const Vec3& { return se_box_[i]; }, row);
      for (int i : row.ids)
        if (!(std::fabs(p[0] - se_c_[i][0]) > se_box_[i][0])) add_se_body(p, i, f);
    }
  }

  // Id of the SE crack slab containing p (before asking whether p is SE), 0 if none.
  std::uint32_t se_crack_at(const Vec3& p) const {
    for (const auto& c : se_cracks_) {
      const Vec3 d = sub(p, c.centre);
      const double along = dot(d, c.normal);
      if (std::fabs(along) >= spec_.cracks.se_aperture_um / 2) continue;
      if (dot(d, d) - along * along < spec_.cracks.se_radius_um * spec_.cracks.se_radius_um) return c.id;
    }
    return 0;
  }

  // Does p, inside AM particle `am`, lie on the facet between grains a and b (distance to the
  // bisector plane below `half_width`, and a or b the nearest grain)?
  bool on_grain_facet(const Vec3& p, int am, int ga, int gb, const Vec3& mid, const Vec3& n, double half_width) const {
    if (std::fabs(dot(sub(p, mid), n)) >= half_width) return false;
    const auto& g = set_.am[am].grains;
    const Vec3 q = sub(p, am_[am]);
    const double da = norm(sub(q, g[ga])), db = norm(sub(q, g[gb]));
    const double near = std::min(da, db);
    for (int k = 0; k < static_cast<int>(g.size()); ++k)
      if (k != ga && k != gb && norm(sub(q, g[k])) < near) return false;
    return true;
  }

  // Id of the intergranular crack of AM particle `am` containing p, 0 if none.
  std::uint32_t am_crack_at(const Vec3& p, int am) const {
    for (const auto& c : am_cracks_)
      if (c.particle == am && on_grain_facet(p, am, c.ga, c.gb, c.mid, c.normal, spec_.cracks.am_aperture_um / 2))
        return c.id;
    return 0;
  }

  struct Point {
    std::uint8_t label;
    std::uint32_t crack;
  };
  // The final phase at p for the solved (w, δ).
  Point classify(const Vec3& p, double w, double delta) const {
    const Fields f = fields(p);
    return classify(p, f, w, delta);
  }
  Point classify(const Vec3& p, const Fields& f, double w, double delta) const {
    if (f.am >= 0) {
      const std::uint32_t c = am_crack_at(p, f.am);
      return c ? Point{kPore, c} : Point{kActive, 0};
    }
    if (f.binder >= 0) return {kBinder, 0};
    const bool se = f.f_se - w * f.g <= delta;
    const std::uint32_t c = se_crack_at(p);
    if (c) return {kPore, se ? c : 0u};
    return {se ? kElectrolyte : kPore, 0};
  }

  struct SeCrack {
    Vec3 centre, normal;
    std::uint32_t id;
  };
  struct AmCrack {
    int particle, ga, gb;
    Vec3 mid, normal;
    std::uint32_t id;
  };
  const std::vector<SeCrack>& se_cracks() const { return se_cracks_; }
  const std::vector<AmCrack>& am_cracks() const { return am_cracks_; }
  const Vec3& se_centre(int i) const { return se_c_[i]; }
  const Vec3& se_semi(int i) const { return se_a_[i]; }

 private:
  // Half-widths of SE body i's reach box: its semi-axes plus the reach (stretched where s < 1).
  Vec3 se_reach_box(int i) const {
    const double e = se_reach_ * std::max(1.0, 1 / s_);
    return add(se_a_[i], {e, e, e});
  }
  static bool in_box(const Vec3& p, const Vec3& c, const Vec3& box) {
    return !(std::fabs(p[0] - c[0]) > box[0] || std::fabs(p[1] - c[1]) > box[1] || std::fabs(p[2] - c[2]) > box[2]);
  }
  // `box(i)` gives body i's box half-widths. The kept ids are written without a branch on the
  // test (about half pass, at random).
  template <class Box>
  static void filter_row(const Vec3& p, const PackedCellGrid& grid, const std::vector<Vec3>& c, Box&& box,
                         RowCandidates& row) {
    const std::size_t cell = grid.cell_of(p);
    if (row.cell == cell) return;
    row.cell = cell;
    std::size_t kept = 0;
    for (int i : grid.bodies(cell)) {
      if (kept == row.ids.size()) row.ids.resize(2 * kept + 16);
      const Vec3& b = box(i);
      row.ids[kept] = i;
      kept += (std::fabs(p[1] - c[i][1]) <= b[1]) & (std::fabs(p[2] - c[i][2]) <= b[2]);
    }
    row.ids.resize(kept);
  }
  void add_am_body(const Vec3& p, int i, double& best, Fields& f) const {
    const Vec3& a = set_.am[i].semi;
    const double q = ellipsoid_norm(p, am_[i], a);
    if (q < best) best = q, f.am = i;
    if (q >= 1) {
      const double d = (q - 1) * std::min({a[0], a[1], a[2]});
      f.g = std::max(f.g, 1 - d / proximity_);
    }
  }
  void add_se_body(const Vec3& p, int i, Fields& f) const {
    const double d = (ellipsoid_norm(p, se_c_[i], se_a_[i]) - 1) * set_.se[i].r;
    if (d < f.f_se) f.f_se = d, f.se = i;
  }

  // False only where AM body i's norm at p is certainly ≥ 1 + proximity / min(a), where the body
  // neither owns p nor adds proximity (add_am_body would change nothing): the norm by multiplying
  // with the reciprocal semi-axes (within a few ulps of the divisions') against that reach plus a
  // margin of 10⁻⁹. One branch instead of the box's three, and no divisions for about half of the
  // bodies in the box (its corners lie outside the reach's ellipsoid).
  bool am_in_reach(const Vec3& p, int i) const {
    const Vec3& c = am_[i];
    const Vec3& inv = am_reach_[i].inv_a;
    const double ux = (p[0] - c[0]) * inv[0], uy = (p[1] - c[1]) * inv[1], uz = (p[2] - c[2]) * inv[2];
    return ux * ux + uy * uy + uz * uz <= am_reach_[i].norm * am_reach_[i].norm;
  }
  // False only where SE body i's level-set distance at p is certainly ≥ f (so it would not
  // replace the nearest found so far): its norm by multiplying with the reciprocal semi-axes
  // (within a few ulps of the divisions') against (f / r + 1) with a margin of 10⁻⁹, far above
  // those ulps. Skips the three divisions and the square root for most of the bodies in reach.
  bool se_may_be_nearer(const Vec3& p, int i, double f) const {
    const Vec3& c = se_c_[i];
    const Vec3& inv = se_bound_->inv_a;
    const double ux = (p[0] - c[0]) * inv[0], uy = (p[1] - c[1]) * inv[1], uz = (p[2] - c[2]) * inv[2];
    const double q = f * se_bound_->inv_r + (1 + 1e-9);
    return ux * ux + uy * uy + uz * uz <= q * q;
  }

  const CompositeSpec& spec_;
  const ParticleSet& set_;
  ImageBox box_;
  double s_ = 1, proximity_ = 1, se_reach_ = 1;
  PackedCellGrid am_grid_, se_grid_, binder_grid_;
  std::vector<Vec3> am_, am_box_, se_c_, se_a_, se_box_, binder_c_;
  std::vector<SeCrack> se_cracks_;
  std::vector<AmCrack> am_cracks_;
  // AM body i's reciprocal semi-axes and the norm beyond which it changes no field (with margin).
  struct AmReach {
    Vec3 inv_a;
    double norm;
  };
  std::vector<AmReach> am_reach_;
  // The SE bodies share one radius (the spec has one), so one set of reciprocals serves them all.
  struct SeBound {
    Vec3 inv_a;
    double inv_r;
  };
  std::optional<SeBound> se_bound_;
};

// The level-set values of a voxel whose phase the solve for (w, δ) decides, as the floats the
// voxel keeps (F = f_se − w·g is formed from them in double).
struct Level {
  float f_se, g;
};

// What the solve needs of the voxels outside AM and binder, per z plane in x-fastest order: the
// levels of the free voxels (SE or pore by F ≤ δ) and of those in SE crack slabs (pore whatever
// δ is; their crack id kept where they would be SE). 8 bytes per such voxel instead of seven
// full-volume fields.
struct OpenVoxels {
  std::vector<std::vector<Level>> free, slab;
  // The crack voxels of each plane (AM crack and SE slab voxels, in x-fastest order): the crack
  // id volume is written from them once the levels and surface samples are gone (4 B/voxel less
  // at the peak).
  struct CrackVoxel {
    index_t offset;  // in the plane
    std::uint32_t id;
  };
  std::vector<std::vector<CrackVoxel>> cracks;
  // Each plane's particle ids as they were sampled (an open voxel's the nearest SE particle's), in
  // runs along the x-fastest order (at 256³ 2.9 M runs, 5.8 voxels each): the id volume is written
  // from them once the levels and surface samples are gone. A run longer than 255 is split.
  struct ParticleRuns {
    std::vector<std::uint32_t> ids;
    std::vector<std::uint8_t> lengths;
    void add(std::uint32_t id) {
      if (!ids.empty() && ids.back() == id && lengths.back() < 255) ++lengths.back();
      else ids.push_back(id), lengths.push_back(1);
    }
  };
  std::vector<ParticleRuns> particles;
  std::int64_t free_count = 0;
  std::int64_t fixed_pore = 0;  // AM crack voxels + SE slab voxels: pore whatever δ is
};

// Provisional labels of the voxels that settle_open_voxels decides; no phase uses them.
constexpr std::uint8_t kUndecidedFree = 255, kUndecidedSlab = 254;

// Samples the fields at every voxel centre, one z plane per task. AM and binder voxels get their
// final label and particle id (their SE distance decides nothing, so it is not sampled); the
// others a provisional label and the nearest SE particle's id. The particle ids, the levels of
// the open voxels and every crack voxel's id are returned in OpenVoxels. The planes go slab by
// slab, each with the cell grids of its own planes only (which st keeps after the last slab).
OpenVoxels sample_voxels(PressedState& st, const ParticleSet& set, LabelVolume& labels) {
  const Dims d = st.box().dims;
  const auto n_am = static_cast<std::uint32_t>(set.am.size()), n_se = static_cast<std::uint32_t>(set.se.size());
  OpenVoxels open;
  open.free.resize(static_cast<std::size_t>(d.z));
  open.slab.resize(static_cast<std::size_t>(d.z));
  open.cracks.resize(static_cast<std::size_t>(d.z));
  open.particles.resize(static_cast<std::size_t>(d.z));
  std::vector<std::int64_t> fixed_pore(static_cast<std::size_t>(d.z), 0);
  // A plane's levels are gathered in per-thread scratch and kept at their exact size: grown by
  // push_back, the kept vectors held up to twice their levels (134 MB for 74 MB at 256³).
  struct Scratch {
    std::vector<Level> free, slab;
    OpenVoxels::ParticleRuns particles;
  };
  tbb::enumerable_thread_specific<Scratch> scratch;
  auto sample_plane = [&](index_t z) {
    auto& [free, slab, particles] = scratch.local();
    free.clear();
    slab.clear();
    particles.ids.clear();
    particles.lengths.clear();
    std::vector<OpenVoxels::CrackVoxel>& cracks = open.cracks[static_cast<std::size_t>(z)];
    std::int64_t pore = 0;
    PressedState::RowCandidates am_row, se_row;
    for (index_t y = 0; y < d.y; ++y) {
      am_row.cell = se_row.cell = PressedState::RowCandidates::kNoCell;
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + d.x * (y + d.y * z);
        const Vec3 p = st.box().centre_of(x, y, z);
        Fields f;
        st.add_am(p, f, am_row);
        std::uint8_t label;
        std::uint32_t particle = 0, crack = 0;
        if (f.am >= 0) {
          crack = st.am_crack_at(p, f.am);
          label = crack ? kPore : kActive;
          if (crack) ++pore;
          else particle = static_cast<std::uint32_t>(f.am) + 1;
        } else if (st.add_binder(p, f), f.binder >= 0) {
          label = kBinder;
          particle = n_am + n_se + static_cast<std::uint32_t>(f.binder) + 1;
        } else {
          st.add_se(p, f, se_row);
          const Level level{static_cast<float>(f.f_se), static_cast<float>(f.g)};
          crack = st.se_crack_at(p);
          if (crack) {
            label = kUndecidedSlab;
            slab.push_back(level);
            ++pore;
          } else {
            label = kUndecidedFree;
            free.push_back(level);
            if (f.se >= 0) particle = n_am + static_cast<std::uint32_t>(f.se) + 1;
          }
        }
        labels[i] = label;
        particles.add(particle);
        if (crack) cracks.push_back({x + d.x * y, crack});
      }
    }
    open.free[static_cast<std::size_t>(z)].assign(free.begin(), free.end());
    open.slab[static_cast<std::size_t>(z)].assign(slab.begin(), slab.end());
    OpenVoxels::ParticleRuns& runs = open.particles[static_cast<std::size_t>(z)];
    runs.ids.assign(particles.ids.begin(), particles.ids.end());
    runs.lengths.assign(particles.lengths.begin(), particles.lengths.end());
    fixed_pore[static_cast<std::size_t>(z)] = pore;
  };
  constexpr index_t kSlab = 16;  // planes
  for (index_t z0 = 0; z0 < d.z; z0 += kSlab) {
    const index_t z1 = std::min(d.z, z0 + kSlab);
    st.index_bodies(std::array{st.box().centre_of(0, 0, z0)[2], st.box().centre_of(0, 0, z1 - 1)[2]});
    tbb::parallel_for(z0, z1, sample_plane);
  }
  for (std::size_t z = 0; z < open.free.size(); ++z) {
    open.free_count += static_cast<std::int64_t>(open.free[z].size());
    open.fixed_pore += fixed_pore[z];
  }
  return open;
}

// A key with the order of the doubles here (finite; no −0 beside +0 to tell apart).
std::uint64_t order_key(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b ^ ((std::uint64_t{0} - (b >> 63)) | (std::uint64_t{1} << 63));  // negative: ~b; else b | sign
}
double from_order_key(std::uint64_t k) {
  const std::uint64_t b = (k >> 63) ? k & ~(std::uint64_t{1} << 63) : ~k;
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// Keys of F from lo to hi, both included.
struct KeyRange {
  std::uint64_t lo = 0, hi = ~std::uint64_t{0};
};

// Calls visit(state, key of F = f_se − w·g) for every free voxel, one z-plane range per task,
// each thread with its own state.
template <class State, class Visit>
void visit_free_keys(const OpenVoxels& open, double w, tbb::enumerable_thread_specific<State>& states, Visit&& visit) {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, open.free.size()),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      State& state = states.local();
                      for (std::size_t z = r.begin(); z != r.end(); ++z)
                        for (const Level& lv : open.free[z]) visit(state, order_key(lv.f_se - w * lv.g));
                    });
}

// δ such that exactly `pore_wanted` free voxels have F = f_se − w·g > δ: the free voxels' F of
// ascending rank n − pore_wanted − 1 (unique: the one a sort would put at that rank). Each pass
// over the keys of F counts those below a key range known to hold it and histograms those inside
// on 2¹⁶ buckets (integer counts, so the split among threads does not change them), narrowing
// the range to one bucket, until the range holds few enough keys that the pass also gathers them
// all; nth_element then picks it. `bracket`, where the caller knows one (the contact bisection:
// δ is non-increasing in w), is the first range: late in the bisection one pass does it all. Every
// path selects the same key, so only the number of passes depends on the bracket. `bracket_keys`,
// if given, gets the number of keys inside the bracket.
double solve_delta(const OpenVoxels& open, double w, std::int64_t pore_wanted,
                   const std::optional<KeyRange>& bracket = {}, std::uint64_t* bracket_keys = nullptr) {
  const std::int64_t n = open.free_count;
  pore_wanted = std::clamp<std::int64_t>(pore_wanted, 0, n);
  if (pore_wanted == n) return -kInf;
  const auto rank = static_cast<std::uint64_t>(n - pore_wanted - 1);
  constexpr int kBits = 16;
  constexpr std::size_t kBuckets = std::size_t{1} << kBits;
  constexpr std::size_t kGathered = std::size_t{1} << 16;  // keys a thread gathers at most (512 KiB)
  struct Scan {
    std::uint64_t below = 0, inside = 0;
    std::vector<std::uint64_t> hist = std::vector<std::uint64_t>(kBuckets, 0);
    std::vector<std::uint64_t> keys;
  };

  KeyRange range = bracket.value_or(KeyRange{});
  bool gather = bracket.has_value();  // else the range holds all n keys
  for (;;) {
    const int width = std::bit_width(range.hi - range.lo);
    const int shift = std::max(0, width - kBits);
    tbb::enumerable_thread_specific<Scan> local;
    visit_free_keys(open, w, local, [&](Scan& s, std::uint64_t key) {
      if (key < range.lo) {
        ++s.below;
      } else if (key <= range.hi) {
        ++s.inside;
        ++s.hist[(key - range.lo) >> shift];
        if (gather && s.keys.size() < kGathered) s.keys.push_back(key);
      }
    });
    std::uint64_t below = 0, inside = 0, kept = 0;
    for (const Scan& s : local) below += s.below, inside += s.inside, kept += s.keys.size();
    if (bracket_keys && bracket) *bracket_keys = inside, bracket_keys = nullptr;  // the first pass's
    if (rank < below || rank - below >= inside) {  // a bracket that misses: start over with all keys
      range = KeyRange{}, gather = false;
      continue;
    }
    std::uint64_t rank_in = rank - below;
    if (gather && kept == inside) {
      std::vector<std::uint64_t> keys;
      keys.reserve(kept);
      for (Scan& s : local) keys.insert(keys.end(), s.keys.begin(), s.keys.end()), s.keys = {};
      std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(rank_in), keys.end());
      return from_order_key(keys[rank_in]);
    }
    // Narrow to the bucket holding the answer (its counts summed over the threads).
    std::uint64_t b = 0, count;
    for (;; ++b) {
      count = 0;
      for (const Scan& s : local) count += s.hist[b];
      if (rank_in < count) break;
      rank_in -= count;
    }
    range.lo += b << shift;
    const std::uint64_t last = (std::uint64_t{1} << shift) - 1;  // the bucket's last key, from lo
    if (range.hi - range.lo > last) range.hi = range.lo + last;
    if (range.lo == range.hi) return from_order_key(range.lo);
    gather = count <= kGathered;
  }
}

bool overlaps_box(const ImageBox& box, const Vec3& c, const Vec3& a) {
  const Vec3 size = box.size();
  for (int k = 0; k < 3; ++k)
    if (c[k] + a[k] <= 0 || c[k] - a[k] >= size[k]) return false;
  return true;
}

// Quadrature points on the exact AM surfaces inside the image (not buried in another AM
// particle, not cut away by a crack), each with what lies just outside it: fixed (pore, binder)
// or the SE level-set values that decide SE vs pore for a given (w, δ).
struct SurfaceSums {
  double se = 0, pore = 0, binder = 0;
};
// A particle's surface points, each column in the narrowest form that gives back its exact value
// (the contact bisection re-sums them ~32 times, so they are kept; 16 bytes a point took 146 MiB
// at 256³). f_se is a float. g lies just below 1 for almost every point (the point's own
// particle is 10⁻⁵ voxel away): one byte counts the float steps below 1, with 254 for 0 and 255
// for NaN, or floats where some g does not fit. A sphere's weights take a handful of distinct
// doubles (its area density is r² up to rounding): one byte indexes the particle's table of them,
// or doubles where more than 256 differ (ellipsoids).
class ParticleSurface {
 public:
  struct Point {
    double weight;
    float f_se, g;
  };
  ParticleSurface() = default;
  explicit ParticleSurface(const std::vector<Point>& points) {
    f_se_.reserve(points.size());
    for (const Point& p : points) f_se_.push_back(p.f_se);
    code_g(points);
    code_weights(points);
  }
  std::size_t size() const { return f_se_.size(); }

  // Calls add(weight, f_se, g) for every point in order.
  template <class Add>
  void for_each(Add&& add) const {
    auto with_g = [&](auto&& g) {
      if (weight_codes_.empty()) {
        for (std::size_t k = 0; k < f_se_.size(); ++k) add(weights_[k], f_se_[k], g(k));
      } else {
        for (std::size_t k = 0; k < f_se_.size(); ++k) add(weights_[weight_codes_[k]], f_se_[k], g(k));
      }
    };
    if (g_codes_.empty()) with_g([&](std::size_t k) { return g_[k]; });
    else with_g([&](std::size_t k) { return g_of_code(g_codes_[k]); });
  }

 private:
  static constexpr std::uint32_t kOneBits = 0x3f800000;  // 1.0f
  static constexpr std::uint8_t kZeroCode = 254, kNanCode = 255;
  static float g_of_code(std::uint8_t code) {
    if (code == kNanCode) return std::numeric_limits<float>::quiet_NaN();
    if (code == kZeroCode) return 0.0f;
    return std::bit_cast<float>(kOneBits - code);
  }
  void code_g(const std::vector<Point>& points) {
    g_codes_.reserve(points.size());
    for (const Point& p : points) {
      const auto bits = std::bit_cast<std::uint32_t>(p.g);
      std::uint8_t code;
      if (std::isnan(p.g)) code = kNanCode;
      else if (bits == 0) code = kZeroCode;
      else if (bits <= kOneBits && kOneBits - bits < kZeroCode) code = static_cast<std::uint8_t>(kOneBits - bits);
      else {
        g_codes_ = {};
        g_.reserve(points.size());
        for (const Point& q : points) g_.push_back(q.g);
        return;
      }
      g_codes_.push_back(code);
    }
  }
  void code_weights(const std::vector<Point>& points) {
    weight_codes_.reserve(points.size());
    for (const Point& p : points) {
      const auto known = std::find(weights_.begin(), weights_.end(), p.weight);
      if (known == weights_.end() && weights_.size() == 256) {
        weight_codes_ = {};
        weights_.clear();
        weights_.reserve(points.size());
        for (const Point& q : points) weights_.push_back(q.weight);
        return;
      }
      weight_codes_.push_back(static_cast<std::uint8_t>(known - weights_.begin()));
      if (known == weights_.end()) weights_.push_back(p.weight);
    }
    weights_.shrink_to_fit();
  }

  std::vector<float> f_se_;
  std::vector<std::uint8_t> g_codes_;  // empty: g_ holds the floats
  std::vector<float> g_;
  std::vector<std::uint8_t> weight_codes_;  // empty: weights_ holds every point's weight
  std::vector<double> weights_;             // else the distinct weights the codes index
};

struct SurfaceSamples {
  // Kept per particle in in_view order (the sums add them in that order). What lies outside is
  // coded in the levels: pore has f_se = +∞ (F > δ for every w and finite or −∞ δ), binder
  // g = NaN; else SE where f_se − w·g ≤ δ, pore otherwise.
  static constexpr float kPoreOutside = std::numeric_limits<float>::infinity();
  static constexpr float kBinderOutside = std::numeric_limits<float>::quiet_NaN();
  std::vector<ParticleSurface> per_particle;
  bool empty() const {
    return std::all_of(per_particle.begin(), per_particle.end(), [](const auto& v) { return v.size() == 0; });
  }
  SurfaceSums sums(double w, double delta) const {
    SurfaceSums s;
    for (const ParticleSurface& points : per_particle)
      points.for_each([&](double weight, float f_se, float g) {
        // Without branches (the classes alternate at random): adding +0 to a sum that started
        // at +0 leaves it bit-identical, so each sum still adds its own points in order.
        const bool binder = std::isnan(g);
        const bool se = !binder && f_se - w * g <= delta;
        s.binder += binder ? weight : 0.0;
        s.se += se ? weight : 0.0;
        s.pore += !binder && !se ? weight : 0.0;
      });
    return s;
  }
};

SurfaceSamples sample_am_surfaces(const PressedState& st, const ParticleSet& set, const std::vector<int>& in_view,
                                  int samples_per_face) {
  const ImageBox& box = st.box();
  const double face = box.h[0] * box.h[1];
  const double eps = 1e-5 * std::min({box.h[0], box.h[1], box.h[2]});
  SurfaceSamples out;
  std::vector<ParticleSurface>& per = out.per_particle;
  per.resize(in_view.size());
  // Per-thread scratch, coded into each particle's columns at their exact size.
  tbb::enumerable_thread_specific<std::vector<ParticleSurface::Point>> scratch;
  tbb::parallel_for(std::size_t{0}, in_view.size(), [&](std::size_t k) {
    std::vector<ParticleSurface::Point>& points = scratch.local();
    points.clear();
    const int i = in_view[k];
    const Vec3& a = set.am[i].semi;
    const double area = (a[0] == a[1] && a[1] == a[2]) ? 4 * kPi * a[0] * a[0] : ellipsoid_surface_area(a);
    const int m = std::max(64, static_cast<int>(std::ceil(samples_per_face * area / face)));
    for (const SurfacePoint& sp : ellipsoid_surface_points(st.am_centre(i), a, m)) {
      if (!box.contains(sp.p)) continue;
      Fields f;
      st.add_am(sp.p, f);
      if (f.am != i && f.am >= 0) continue;   // inside another AM particle: not a surface
      if (st.am_crack_at(sp.p, i)) continue;  // cut away by an intergranular crack
      const Vec3 o = add(sp.p, scale(sp.n, eps));
      if (!box.contains(o)) continue;
      // What lies just outside; its SE distance matters only outside AM and binder.
      Fields fo;
      st.add_am(o, fo);
      ParticleSurface::Point pt{sp.weight, SurfaceSamples::kPoreOutside, 0.0f};
      if (fo.am >= 0) {
        if (!st.am_crack_at(o, fo.am)) continue;
      } else if (st.add_binder(o, fo), fo.binder >= 0) {
        pt.g = SurfaceSamples::kBinderOutside;
      } else if (!st.se_crack_at(o)) {
        st.add_se(o, fo);
        pt.f_se = static_cast<float>(fo.f_se), pt.g = static_cast<float>(fo.g);
      }
      points.push_back(pt);
    }
    per[k] = ParticleSurface(points);
  });
  return out;
}

// AM particles whose bounding box meets the image: the ones with surfaces and truth rows.
std::vector<int> am_in_view(const PressedState& st, const ParticleSet& set) {
  std::vector<int> in_view;
  for (std::size_t i = 0; i < set.am.size(); ++i)
    if (overlaps_box(st.box(), st.am_centre(static_cast<int>(i)), set.am[i].semi))
      in_view.push_back(static_cast<int>(i));
  return in_view;
}

// Each intergranular AM crack's mid-plane area inside its particle and the image (plane
// quadrature at `step`), and the AM wall area they add: both walls of a grain-boundary crack are AM.
struct AmCrackAreas {
  std::vector<PlaneArea> areas;  // in st.am_cracks() order
  double walls = 0;
};

AmCrackAreas measure_am_cracks(const PressedState& st, const ParticleSet& set, double step) {
  const ImageBox& box = st.box();
  AmCrackAreas out;
  for (const auto& c : st.am_cracks()) {
    // Search square centred on the particle centre's projection onto the facet plane.
    const Vec3& a = set.am[c.particle].semi;
    const Vec3 centre = st.am_centre(c.particle);
    const Vec3 foot = sub(centre, scale(c.normal, dot(sub(centre, c.mid), c.normal)));
    out.areas.push_back(plane_area(foot, c.normal, std::max({a[0], a[1], a[2]}), step, [&](const Vec3& q) {
      if (!box.contains(q)) return false;
      const Fields f = st.fields(q);
      return f.am == c.particle && st.on_grain_facet(q, c.particle, c.ga, c.gb, c.mid, c.normal, kInf);
    }));
    out.walls += 2 * out.areas.back().area;
  }
  return out;
}

// The contact weight w and the level δ for it.
struct Solution {
  double w, delta;
};

// The free voxels whose F may fall on either side of δ for a w inside a bisection bracket
// [lo, hi]. F(w) lies in [F(hi), F(lo)] and δ(w) in [δ(hi), δ(lo)] (both non-increasing in w),
// so a voxel with F(lo) < δ(hi) is below δ for every such w, and one with F(hi) > δ(lo) above:
// δ(w), the F of rank r of all free voxels, is the straddling voxels' F of rank r − below. Once
// the bracket is narrow their levels are kept (at 256³ 30 k after the 10th step, halving at each) and each step selects
// among them alone, instead of passing over all the levels.
struct Straddling {
  std::vector<Level> levels;
  std::uint64_t below = 0;  // free voxels below δ for every w in the bracket
};
enum class Side { kBelow, kStraddles, kAbove };
Side side_of(const Level& lv, const Solution& lo, const Solution& hi) {
  if (order_key(lv.f_se - lo.w * lv.g) < order_key(hi.delta)) return Side::kBelow;
  if (order_key(lv.f_se - hi.w * lv.g) > order_key(lo.delta)) return Side::kAbove;
  return Side::kStraddles;
}
constexpr std::size_t kStraddlingKept = std::size_t{1} << 17;  // levels at most (1 MiB)

// One pass over the free voxels; nothing if more than kStraddlingKept straddle.
std::optional<Straddling> straddling_levels(const OpenVoxels& open, const Solution& lo, const Solution& hi) {
  tbb::enumerable_thread_specific<Straddling> local;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, open.free.size()),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      Straddling& s = local.local();
                      for (std::size_t z = r.begin(); z != r.end(); ++z)
                        for (const Level& lv : open.free[z]) {
                          const Side side = side_of(lv, lo, hi);
                          s.below += side == Side::kBelow;
                          if (side == Side::kStraddles && s.levels.size() <= kStraddlingKept) s.levels.push_back(lv);
                        }
                    });
  Straddling all;
  for (Straddling& s : local) {
    if (all.levels.size() + s.levels.size() > kStraddlingKept) return std::nullopt;
    all.below += s.below;
    all.levels.insert(all.levels.end(), s.levels.begin(), s.levels.end());
  }
  return all;
}

// The same for a bracket inside the one `s` was made for.
void narrow_straddling(Straddling& s, const Solution& lo, const Solution& hi) {
  std::size_t kept = 0;
  for (const Level& lv : s.levels) {
    const Side side = side_of(lv, lo, hi);
    s.below += side == Side::kBelow;
    if (side == Side::kStraddles) s.levels[kept++] = lv;
  }
  s.levels.resize(kept);
}

// δ(w) for a w inside the bracket of `s`, from the straddling levels alone; nothing if the rank
// falls outside them (not for a bracket that holds δ(w)).
std::optional<double> straddling_delta(const Straddling& s, const OpenVoxels& open, double w,
                                       std::int64_t pore_wanted) {
  const std::int64_t n = open.free_count;
  pore_wanted = std::clamp<std::int64_t>(pore_wanted, 0, n);
  if (pore_wanted == n) return -kInf;
  const auto rank = static_cast<std::uint64_t>(n - pore_wanted - 1);
  if (rank < s.below || rank - s.below >= s.levels.size()) return std::nullopt;
  std::vector<std::uint64_t> keys;
  keys.reserve(s.levels.size());
  for (const Level& lv : s.levels) keys.push_back(order_key(lv.f_se - w * lv.g));
  const auto k = static_cast<std::ptrdiff_t>(rank - s.below);
  std::nth_element(keys.begin(), keys.begin() + k, keys.end());
  return from_order_key(keys[static_cast<std::size_t>(k)]);
}

// The contact weight w: bisection on w until the AM|SE contact fraction, measured with the same
// surface quadrature the ground truth uses, meets the compaction law's target (monotone: a larger
// w pulls SE onto AM surfaces). 0 without contact steering. Every F = f_se − w·g is
// non-increasing in w (g ≥ 0; so are its roundings), hence so is δ(w): the δ at the bracket's
// ends bracket the δ of any w between them, which lets solve_delta gather its candidates at once,
// and, once few voxels straddle the bracket, the steps select among those alone.
Solution steer_contact_weight(const CompositeSpec& spec, double pressure_MPa, const OpenVoxels& open,
                              const SurfaceSamples& surface, double crack_walls, std::int64_t pore_wanted) {
  if (!(spec.compaction.enabled && spec.compaction.steer_contact && !surface.empty()))
    return {0, solve_delta(open, 0, pore_wanted)};
  auto contact = [&](const Solution& s) {
    const SurfaceSums sums = surface.sums(s.w, s.delta);
    const double all = sums.se + sums.pore + sums.binder + crack_walls;
    return all > 0 ? sums.se / all : 0.0;
  };
  std::optional<Straddling> straddling;
  std::uint64_t bracket_keys = ~std::uint64_t{0};  // the last bracketed solve's keys inside its bracket
  auto between = [&](double ww, const Solution& lo, const Solution& hi) {
    if (straddling)
      if (const std::optional<double> d = straddling_delta(*straddling, open, ww, pore_wanted)) return Solution{ww, *d};
    const KeyRange bracket{order_key(hi.delta), order_key(lo.delta)};
    return Solution{ww, solve_delta(open, ww, pore_wanted, bracket, &bracket_keys)};
  };
  const double h = spec.spacing_um[0];
  const double target = target_contact_fraction(spec.compaction, pressure_MPa);
  Solution lo{-2 * spec.se_radius_vox * h, 0}, hi{4 * spec.se_radius_vox * h, 0};
  lo.delta = solve_delta(open, lo.w, pore_wanted);
  if (target <= contact(lo)) return lo;
  hi.delta = solve_delta(open, hi.w, pore_wanted);
  if (target >= contact(hi)) return hi;
  for (int it = 0; it < 30; ++it) {
    const Solution mid = between(0.5 * (lo.w + hi.w), lo, hi);
    (contact(mid) < target ? lo : hi) = mid;
    // A pass to keep the straddling levels is worth it once they are likely to fit.
    if (straddling) narrow_straddling(*straddling, lo, hi);
    else if (bracket_keys <= kStraddlingKept / 4) straddling = straddling_levels(open, lo, hi);
  }
  return between(0.5 * (lo.w + hi.w), lo, hi);
}

// Settles the voxels sample_voxels left open, one z plane per task: a free voxel is SE where
// f_se − w·g ≤ δ (else pore; particle_ids then gives it no id); a slab voxel is pore, keeping its
// crack id only where it would be SE (the id is cleared in open.cracks).
void settle_open_voxels(OpenVoxels& open, double w, double delta, LabelVolume& labels) {
  const Dims d = labels.dims();
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    const index_t plane = d.x * d.y * z;
    // The slab voxels' levels and their crack entries are in the same (x-fastest) order.
    const Level* slab = open.slab[static_cast<std::size_t>(z)].data();
    for (OpenVoxels::CrackVoxel& c : open.cracks[static_cast<std::size_t>(z)])
      if (labels[plane + c.offset] == kUndecidedSlab) {
        const Level lv = *slab++;
        if (!(lv.f_se - w * lv.g <= delta)) c.id = 0;
      }
    const Level* free = open.free[static_cast<std::size_t>(z)].data();
    for (index_t i = plane, end = i + d.x * d.y; i < end; ++i) {
      const std::uint8_t label = labels[i];
      if (label == kUndecidedFree) {
        const Level lv = *free++;
        labels[i] = lv.f_se - w * lv.g <= delta ? kElectrolyte : kPore;
      } else if (label == kUndecidedSlab) {
        labels[i] = kPore;
      }
    }
  });
}

// The particle id volume from the sampled runs and the settled labels: a pore voxel has no
// particle (AM crack and slab voxels were sampled without one; a free voxel keeps its nearest SE
// particle's id only where it is SE).
Volume<std::uint32_t> particle_ids(const OpenVoxels& open, const LabelVolume& labels) {
  const Dims d = labels.dims();
  Volume<std::uint32_t> ids(d, labels.spacing_um);
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    const OpenVoxels::ParticleRuns& runs = open.particles[static_cast<std::size_t>(z)];
    index_t i = d.x * d.y * z;
    for (std::size_t r = 0; r < runs.ids.size(); ++r)
      for (const index_t end = i + runs.lengths[r]; i < end; ++i) ids[i] = labels[i] == kPore ? 0 : runs.ids[r];
  });
  return ids;
}

// The crack id volume from the settled crack voxels.
Volume<std::uint32_t> crack_ids(const OpenVoxels& open, const Dims& dims, const Vec3& spacing_um) {
  Volume<std::uint32_t> ids(dims, spacing_um);
  tbb::parallel_for(index_t{0}, dims.z, [&](index_t z) {
    for (const OpenVoxels::CrackVoxel& c : open.cracks[static_cast<std::size_t>(z)])
      ids[dims.x * dims.y * z + c.offset] = c.id;
  });
  return ids;
}

// One truth row per AM particle in view (exact volume and surface, voxels counted), and the SE /
// binder summaries (particles with at least one voxel).
void add_particle_truth(const CompositeSpec& spec, const PressedState& st, const ParticleSet& set,
                        const std::vector<int>& in_view, Phantom& out) {
  GroundTruth& t = out.truth;
  const ImageBox& box = st.box();
  const auto n_am = static_cast<std::uint32_t>(set.am.size()), n_se = static_cast<std::uint32_t>(set.se.size());
  std::vector<std::int64_t> voxels(static_cast<std::size_t>(n_am + n_se + set.binder.size() + 1), 0);
  for (std::uint32_t id : out.particles.storage()) ++voxels[id];
  for (int k : in_view) {
    const auto i = static_cast<std::uint32_t>(k);
    const Vec3& c = st.am_centre(k);
    const Vec3& a = set.am[i].semi;
    ParticleTruth p;
    p.id = i + 1;
    p.phase = "am";
    p.centre_um = c;
    p.semi_axes_um = a;
    p.volume_um3 = ellipsoid_volume(a);
    p.surface_area_um2 = (a[0] == a[1] && a[1] == a[2]) ? 4 * kPi * a[0] * a[0] : ellipsoid_surface_area(a);
    p.voxels = voxels[i + 1];
    p.inside = box.contains(sub(c, a)) && box.contains(add(c, a));
    p.grains = static_cast<int>(set.am[i].grains.size());
    t.particles.push_back(p);
  }
  auto summary = [&](std::uint32_t first, std::size_t count, double r) {
    std::int64_t seen = 0;
    for (std::size_t i = 0; i < count; ++i) seen += voxels[first + i + 1] > 0;
    return nlohmann::json{{"count", seen},
                          {"equivalent_radius_mean_um", r},
                          {"equivalent_radius_min_um", r},
                          {"equivalent_radius_max_um", r},
                          {"equivalent_radius_median_um", r},
                          {"note", "particles with at least one voxel; SE radius before flattening"}};
  };
  const double h = spec.spacing_um[0];
  t.particle_summary["se"] = summary(n_am, set.se.size(), spec.se_radius_vox * h);
  if (spec.binder_fraction > 0)
    t.particle_summary["binder"] = summary(n_am + n_se, set.binder.size(), spec.binder_radius_vox * h);
}

// Voxels per crack id (index 0 unused) from the settled crack voxels: the crack id volume's counts.
std::vector<std::int64_t> crack_voxel_counts(const OpenVoxels& open, std::size_t crack_count) {
  std::vector<std::int64_t> counts(crack_count + 1, 0);
  for (const std::vector<OpenVoxels::CrackVoxel>& plane : open.cracks)
    for (const OpenVoxels::CrackVoxel& c : plane) ++counts[c.id];
  return counts;
}

// One truth row per crack: SE cracks' mid-plane area within the SE and the image by a plane
// quadrature at `step`, AM cracks' from measure_am_cracks; voxels from crack_voxel_counts.
void add_crack_truth(const CompositeSpec& spec, const PressedState& st, const AmCrackAreas& am_cracks,
                     const std::vector<std::int64_t>& crack_voxels, double step, double w, double delta, Phantom& out) {
  GroundTruth& t = out.truth;
  const ImageBox& box = st.box();
  for (const auto& c : st.se_cracks()) {
    const double R = spec.cracks.se_radius_um;
    const PlaneArea pa = plane_area(c.centre, c.normal, R, step, [&](const Vec3& q) {
      if (!box.contains(q) || norm(sub(q, c.centre)) >= R) return false;
      const Fields f = st.fields(q);
      return f.am < 0 && f.binder < 0 && f.f_se - w * f.g <= delta;
    });
    t.cracks.push_back(
        {c.id, "se", "planar", pa.centroid, c.normal, spec.cracks.se_aperture_um, pa.area, R, 0, crack_voxels[c.id]});
  }
  for (std::size_t k = 0; k < st.am_cracks().size(); ++k) {
    const auto& c = st.am_cracks()[k];
    t.cracks.push_back({c.id, "am", "intergranular", am_cracks.areas[k].centroid, c.normal, spec.cracks.am_aperture_um,
                        am_cracks.areas[k].area, 0, static_cast<std::uint32_t>(c.particle + 1), crack_voxels[c.id]});
  }
}

// AM surfaces by quadrature (see sample_am_surfaces), crack walls added to pore|am.
void add_interface_truth(const CompositeSpec& spec, const SurfaceSamples& surface, double crack_walls, double w,
                         double delta, GroundTruth& t) {
  SurfaceSums total = surface.sums(w, delta);
  total.pore += crack_walls;
  t.interface_area_um2["se|am"] = total.se;
  t.interface_area_um2["pore|am"] = total.pore;
  if (spec.binder_fraction > 0) t.interface_area_um2["am|binder"] = total.binder;
  t.interface_area_method = "surface quadrature";
  t.am_surface_area_um2 = total.se + total.pore + total.binder;
  t.am_se_contact_area_um2 = total.se;
  t.contact_area_fraction = t.am_surface_area_um2 > 0 ? total.se / t.am_surface_area_um2 : -1;
  t.contact_samples_per_voxel_face = spec.contact_samples_per_voxel_face;
}

}  // namespace

// Place the particles, press them, sample the fields on the voxels; solve (w, δ) for the porosity
// and the contact fraction; label the voxels; write the ground truth.
Phantom generate_composite(const CompositeSpec& spec, double pressure_MPa) {
  check_spec(spec);
  if (!(pressure_MPa >= 0))
    throw InputError("phantom: pressure " + std::to_string(pressure_MPa) + " MPa: expected ≥ 0");
  const ParticleSet set = place_particles(spec);
  std::optional<PressedState> pressed;
  PressedState& st = pressed.emplace(spec, set, pressure_MPa);

  // AM surface samples and crack walls depend on the geometry only. They are taken first, with
  // the whole cell grids; the voxels then go slab by slab with a slab's grids, so the whole grids
  // are not held beside the samples, labels, particle runs and levels (31 MiB at 256³).
  const std::vector<int> in_view = am_in_view(st, set);
  SurfaceSamples surface = sample_am_surfaces(st, set, in_view, spec.contact_samples_per_voxel_face);
  const double step = std::min({spec.spacing_um[0], spec.spacing_um[1], spec.spacing_um[2]}) / 8;
  const AmCrackAreas am_cracks = measure_am_cracks(st, set, step);
  Phantom out;
  out.labels = LabelVolume(Volume<std::uint8_t>(spec.dims, spec.spacing_um), phase_table(spec.binder_fraction > 0));
  OpenVoxels open = sample_voxels(st, set, out.labels);

  // Porosity: Heckel's (or the fixed pore fraction), exactly to one voxel, cracks included; then
  // the contact weight w and the level δ that gives it.
  const double porosity = spec.compaction.enabled ? heckel_porosity(spec.compaction, pressure_MPa) : spec.pore_fraction;
  const std::int64_t pore_wanted = std::llround(porosity * static_cast<double>(spec.dims.count())) - open.fixed_pore;
  const auto [w, delta] = steer_contact_weight(spec, pressure_MPa, open, surface, am_cracks.walls, pore_wanted);
  settle_open_voxels(open, w, delta, out.labels);
  GroundTruth& t = out.truth;
  add_interface_truth(spec, surface, am_cracks.walls, w, delta, t);
  surface = SurfaceSamples();
  open.free.clear(), open.slab.clear();  // the levels are settled
  // The id volume lands on the pages the levels and samples gave back (many small blocks, which
  // the heap keeps unless asked).
  malloc_trim(0);
  out.particles = particle_ids(open, out.labels);
  open.particles.clear();
  if (!st.se_cracks().empty()) st.index_bodies();  // the SE crack truth asks for fields anywhere

  t.generator = "composite";
  t.pressure_MPa = pressure_MPa;
  t.seed = spec.seed;
  count_phases(out.labels, t);
  t.target_porosity = porosity;
  t.relative_density = 1 - porosity;
  t.z_scale = st.z_scale_value();
  t.parameters = spec.to_json();
  t.parameters["solved"] = {
      {"delta_um", delta},
      {"contact_weight_um", w},
      {"target_contact_fraction", spec.compaction.enabled && spec.compaction.steer_contact
                                      ? nlohmann::json(target_contact_fraction(spec.compaction, pressure_MPa))
                                      : nlohmann::json(nullptr)}};
  add_particle_truth(spec, st, set, in_view, out);
  add_crack_truth(spec, st, am_cracks, crack_voxel_counts(open, set.se_cracks.size() + set.am_cracks.size()), step, w,
                  delta, out);

  // The crack id volume comes last, once the cell grids, levels and surface points are gone. They
  // were many small blocks that the heap keeps after their release: hand the free pages back
  // first, or the volume would add to them.
  pressed.reset();
  malloc_trim(0);
  out.cracks = crack_ids(open, spec.dims, spec.spacing_um);
  return out;
}

std::vector<Phantom> generate_series(const CompositeSpec& spec) {
  std::vector<Phantom> out;
  for (double p : spec.pressures_MPa) out.push_back(generate_composite(spec, p));
  return out;
}

}  // namespace vp::phantom
