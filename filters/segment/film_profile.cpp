#include "filters/segment/film_profile.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "filters/preprocess/psf.h"
#include "filters/segment/features.h"

namespace vp {

namespace {

constexpr std::uint8_t kPoreClass = 0, kSeClass = 1, kAmClass = 2;
// Surface positions and film widths are searched on this grid (voxels); the cumulative Gaussians
// are tabulated on it, so every sample position (half-integers) minus a grid point is on it too.
constexpr double kStep = 0.05;
constexpr double kPositionStep = 0.1;  // t0 and w are fitted on multiples of this
// t0 from 1 voxel inside the labelled face to this far outside it: a pore film darkens AM's edge
// voxel, so the labels' AM surface recedes (by ≈ 0.73 w, docs/segmentation.md) and the true one
// lies outward of the labelled face.
constexpr double kSurfaceOutward = 2.0;
constexpr double kMinWidth = 0.2;
constexpr double kTableReach = 24.0;  // |x − c| beyond this: Φ is 0 or 1
constexpr double kSigmaQuantum = 0.01;
constexpr std::size_t kMaxSamples = 32;  // inside + outside samples of one line, at most

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Φ((x − c)/σ) for x − c on the kStep grid, one table per quantised σ.
class CdfTables {
 public:
  CdfTables(double sigma_lo, double sigma_hi) {
    first_ = std::max<long>(1, std::lround(sigma_lo / kSigmaQuantum) - 1);
    const long last = std::lround(sigma_hi / kSigmaQuantum) + 1;
    half_ = std::lround(kTableReach / kStep);
    tables_.resize(static_cast<std::size_t>(last - first_ + 1));
    for (long q = first_; q <= last; ++q) {
      auto& t = tables_[static_cast<std::size_t>(q - first_)];
      t.resize(static_cast<std::size_t>(2 * half_ + 1));
      const double s = q * kSigmaQuantum;
      for (long k = -half_; k <= half_; ++k) t[static_cast<std::size_t>(k + half_)] = normal_cdf(k * kStep / s);
    }
  }
  const std::vector<double>& table(double sigma) const {
    const long q =
        std::clamp<long>(std::lround(sigma / kSigmaQuantum), first_, first_ + static_cast<long>(tables_.size()) - 1);
    return tables_[static_cast<std::size_t>(q - first_)];
  }
  // Φ((x − c)/σ) with x − c given in kStep units.
  double at(const std::vector<double>& t, long steps) const {
    return t[static_cast<std::size_t>(std::clamp(steps, -half_, half_) + half_)];
  }

 private:
  long first_ = 1, half_ = 0;
  std::vector<std::vector<double>> tables_;
};

long steps_of(double x) { return std::lround(x / kStep); }

struct LineFit {
  bool film = false;
  double t0 = 0, width = 0, statistic = 0;
};

// One face's profile: samples at positions c (voxel centres relative to the face at 0, AM at
// c < 0), the labels' blurred model `base` there, and the SE run's length. Fits step and film and applies the
// criterion. t0 and t0 + w lie on one grid (multiples of kPositionStep), so Φ at every sample is
// looked up once per grid position into `phi` (scratch), not once per (t0, w) pair.
LineFit fit_profile(const std::vector<double>& pos, const std::vector<double>& grey, const std::vector<double>& base,
                    int se_run, double mu_pore, double mu_se, double mu_am, const CdfTables& cdf,
                    const std::vector<double>& table, double noise_sigma, double threshold, double max_width,
                    std::vector<double>& phi) {
  const std::size_t n = pos.size();
  double step[kMaxSamples], phi_face[kMaxSamples];
  long c[kMaxSamples];
  const int t_in = static_cast<int>(std::lround(1.0 / kPositionStep));
  const int t_out = static_cast<int>(std::lround(std::min(kSurfaceOutward, se_run - 1.0) / kPositionStep));
  const int w_min = static_cast<int>(std::lround(kMinWidth / kPositionStep));
  const int k_last = t_out + static_cast<int>(std::floor(max_width / kPositionStep + 1e-9));
  const long per = steps_of(kPositionStep);
  for (std::size_t s = 0; s < n; ++s) c[s] = steps_of(pos[s]), phi_face[s] = cdf.at(table, -c[s]);
  // phi[(k + t_in) n + s] = Φ at sample s of an edge at grid position k.
  phi.resize(static_cast<std::size_t>(k_last + t_in + 1) * n);
  for (int k = -t_in; k <= k_last; ++k)
    for (std::size_t s = 0; s < n; ++s) phi[static_cast<std::size_t>(k + t_in) * n + s] = cdf.at(table, k * per - c[s]);
  double best_step = INFINITY, best_film = INFINITY;
  LineFit fit;
  for (int it = -t_in; it <= t_out; ++it) {
    const double* p0 = &phi[static_cast<std::size_t>(it + t_in) * n];
    double rss = 0;
    for (std::size_t s = 0; s < n; ++s) {
      step[s] = base[s] + (mu_am - mu_se) * (p0[s] - phi_face[s]);
      const double r = grey[s] - step[s];
      rss += r * r;
    }
    best_step = std::min(best_step, rss);
    const double t0 = it * kPositionStep;
    const double widest = std::min(max_width, se_run - 0.5 - t0);
    const int w_max = static_cast<int>(std::floor(widest / kPositionStep + 1e-9));
    for (int iw = w_min; iw <= w_max; ++iw) {
      const double* p1 = &phi[static_cast<std::size_t>(it + iw + t_in) * n];
      double rf = 0;
      for (std::size_t s = 0; s < n && rf < best_film; ++s) {
        const double r = grey[s] - step[s] - (mu_pore - mu_se) * (p1[s] - p0[s]);
        rf += r * r;
      }
      if (rf < best_film) best_film = rf, fit.t0 = t0, fit.width = iw * kPositionStep;
    }
  }
  fit.statistic = std::isfinite(best_film) ? (best_step - best_film) / (noise_sigma * noise_sigma) : 0.0;
  fit.film = fit.statistic > threshold;
  return fit;
}

}  // namespace

double film_threshold(double false_alarm) {
  if (!(false_alarm > 0 && false_alarm < 0.5)) throw InputError("film false-alarm rate must be in (0, 0.5)");
  // Φ⁻¹(1 − α) by bisection: ½ P(χ²₁ > z²) = P(Z > z) = α.
  double lo = 0, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (1 - normal_cdf(mid) > false_alarm ? lo : hi) = mid;
  }
  const double z = 0.5 * (lo + hi);
  return z * z;
}

FilmProfileResult relabel_pore_films(const Volume<float>& grey, Volume<std::uint8_t>& labels,
                                     const std::vector<double>& means, const std::array<double, 3>& psf_sigma_vox,
                                     double noise_sigma, const FilmProfileOptions& o) {
  if (means.size() != 3)
    throw InputError("pore films: need three classes (pore, SE, AM), got " + std::to_string(means.size()));
  if (!(noise_sigma > 0)) throw InputError("pore films: the noise σ must be > 0");
  if (o.inside_samples < 1 || o.outside_samples < 2 ||
      static_cast<std::size_t>(o.inside_samples + o.outside_samples) > kMaxSamples)
    throw InputError("pore films: inside_samples ≥ 1, outside_samples ≥ 2 and their sum ≤ " +
                     std::to_string(kMaxSamples) + " expected");
  FilmProfileResult result;
  result.threshold = film_threshold(o.false_alarm);
  const Dims d = grey.dims();
  const Volume<std::uint8_t> in = labels;  // decisions read the labels before any film
  // The surface normal from the grey smoothed by 1 voxel (its gradient is the edge's direction).
  const Volume<float> smooth = gaussian_smooth(grey, grey.spacing_um[0]);
  double s_lo = INFINITY, s_hi = 0;
  for (double s : psf_sigma_vox) s_lo = std::min(s_lo, s), s_hi = std::max(s_hi, s);
  if (!(s_lo > 0)) throw InputError("pore films: the PSF σ must be > 0 on every axis");
  const CdfTables cdf(s_lo, s_hi / o.min_axis_cosine);
  const double mu_pore = means[0], mu_se = means[1], mu_am = means[2];
  // The labels as the scan would image them (the end members blurred by the PSF in 3-D): the
  // profile's base, so that what lies beside the line (a small SE grain with pore around it, the
  // particle's curvature) is in the model; the fit then only moves the surface and opens a film.
  Volume<float> model = grey.like<float>(d);
  for (index_t i = 0; i < model.size(); ++i) model[i] = static_cast<float>(means[std::min<int>(in[i], 2)]);
  model = gaussian_blur(model, psf_sigma_vox);

  struct FittedFace {
    FilmFace face;
    int se_run = 0;
  };
  struct Local {
    std::vector<FittedFace> faces;
    std::int64_t fitted = 0;
  };
  tbb::enumerable_thread_specific<Local> locals;
  tbb::parallel_for(index_t{0}, d.z, [&](index_t z) {
    Local& local = locals.local();
    std::vector<double> pos, g, base, phi;
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        if (in(x, y, z) != kAmClass) continue;
        const index_t p[3] = {x, y, z};
        for (int a = 0; a < 3; ++a)
          for (int dir : {-1, 1}) {
            auto at = [&](long k) {  // voxel k steps outward along the line (k = 0: the AM voxel)
              index_t q[3] = {p[0], p[1], p[2]};
              q[a] = std::clamp<index_t>(q[a] + dir * k, 0, d[a] - 1);
              return std::array<index_t, 3>{q[0], q[1], q[2]};
            };
            if (p[a] + dir < 0 || p[a] + dir >= d[a]) continue;
            const auto q1 = at(1);
            if (in(q1[0], q1[1], q1[2]) != kSeClass) continue;
            // Normal: the smoothed grey's gradient, mean of the two voxels beside the face.
            double n[3];
            double norm2 = 0;
            for (int b = 0; b < 3; ++b) {
              auto grad = [&](const std::array<index_t, 3>& v) {
                index_t lo[3] = {v[0], v[1], v[2]}, hi[3] = {v[0], v[1], v[2]};
                lo[b] = std::max<index_t>(0, lo[b] - 1), hi[b] = std::min<index_t>(d[b] - 1, hi[b] + 1);
                const double span = static_cast<double>(hi[b] - lo[b]);
                return span > 0 ? (smooth(hi[0], hi[1], hi[2]) - smooth(lo[0], lo[1], lo[2])) / span : 0.0;
              };
              n[b] = grad(at(0)) + grad(q1);
              norm2 += n[b] * n[b];
            }
            if (!(norm2 > 0)) continue;
            const double cos_axis = std::fabs(n[a]) / std::sqrt(norm2);
            if (cos_axis < o.min_axis_cosine) continue;
            double sigma_n2 = 0;
            for (int b = 0; b < 3; ++b) sigma_n2 += n[b] * n[b] / norm2 * psf_sigma_vox[b] * psf_sigma_vox[b];
            const double sigma = std::sqrt(sigma_n2) / cos_axis;
            // Runs: AM inward (from the AM voxel), SE outward (from its neighbour), within the image.
            const long room_out = dir > 0 ? static_cast<long>(d[a] - 1 - p[a]) : static_cast<long>(p[a]);
            const long room_in = dir > 0 ? static_cast<long>(p[a]) : static_cast<long>(d[a] - 1 - p[a]);
            int am_run = 0, se_run = 0;
            while (am_run < o.inside_samples && am_run <= room_in) {
              const auto v = at(-am_run);
              if (in(v[0], v[1], v[2]) != kAmClass) break;
              ++am_run;
            }
            while (se_run < 16 && se_run < room_out) {
              const auto v = at(se_run + 1);
              if (in(v[0], v[1], v[2]) != kSeClass) break;
              ++se_run;
            }
            if (se_run < 2) continue;  // a film needs SE beyond it
            const int outside = std::min(se_run, o.outside_samples);
            pos.clear(), g.clear();
            for (int i = am_run - 1; i >= 0; --i) {
              const auto v = at(-i);
              pos.push_back(-i - 0.5), g.push_back(grey(v[0], v[1], v[2]));
            }
            for (int j = 0; j < outside; ++j) {
              const auto v = at(j + 1);
              pos.push_back(j + 0.5), g.push_back(grey(v[0], v[1], v[2]));
            }
            const auto& table = cdf.table(sigma);
            base.clear();
            for (int i = am_run - 1; i >= 0; --i) {
              const auto v = at(-i);
              base.push_back(model(v[0], v[1], v[2]));
            }
            for (int j = 0; j < outside; ++j) {
              const auto v = at(j + 1);
              base.push_back(model(v[0], v[1], v[2]));
            }
            ++local.fitted;
            const LineFit fit = fit_profile(pos, g, base, se_run, mu_pore, mu_se, mu_am, cdf, table, noise_sigma,
                                            result.threshold, o.max_width, phi);
            if (fit.film || o.record_faces)  // the rest only when asked: a face list is the AM surface's size
              local.faces.push_back(
                  {{x + d.x * (y + d.y * z), a, dir, fit.film, fit.t0, fit.width, fit.statistic}, se_run});
          }
      }
  });
  std::vector<FittedFace> faces;
  for (Local& local : locals) {
    result.faces_fitted += local.fitted;
    faces.insert(faces.end(), local.faces.begin(), local.faces.end());
  }
  // One order whatever the threads did (that of the recorded faces; the labels do not depend on it).
  std::sort(faces.begin(), faces.end(), [](const FittedFace& u, const FittedFace& v) {
    return std::tie(u.face.am_voxel, u.face.axis, u.face.dir) < std::tie(v.face.am_voxel, v.face.axis, v.face.dir);
  });
  std::vector<index_t> pore, am;
  for (const FittedFace& f : faces) {
    if (!f.face.film) continue;
    ++result.films_accepted;
    const index_t p[3] = {f.face.am_voxel % d.x, (f.face.am_voxel / d.x) % d.y, f.face.am_voxel / (d.x * d.y)};
    for (int j = 0; j < f.se_run; ++j) {
      const double c = j + 0.5;
      index_t q[3] = {p[0], p[1], p[2]};
      q[f.face.axis] += f.face.dir * (j + 1);
      const index_t v = q[0] + d.x * (q[1] + d.y * q[2]);
      if (c > f.face.t0 && c < f.face.t0 + f.face.width) pore.push_back(v);
      else if (o.restore_am && c < f.face.t0) am.push_back(v);
    }
  }
  for (index_t i : pore)
    if (labels[i] == kSeClass) labels[i] = kPoreClass, ++result.voxels_relabelled;
  for (index_t i : am)
    if (labels[i] == kSeClass) labels[i] = kAmClass, ++result.am_voxels_restored;
  if (o.record_faces)
    for (const FittedFace& f : faces) result.faces.push_back(f.face);
  return result;
}

nlohmann::json pore_films_json(const FilmProfileResult& r) {
  return {{"faces_fitted", r.faces_fitted},
          {"films_accepted", r.films_accepted},
          {"voxels_relabelled", r.voxels_relabelled},
          {"am_voxels_restored", r.am_voxels_restored},
          {"threshold", r.threshold}};
}

}  // namespace vp
