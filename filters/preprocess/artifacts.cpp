#include "filters/preprocess/artifacts.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/error.h"

namespace vp {

namespace {

struct Centre {
  double x, y;
};

Centre centre_of(const Volume<float>& g, const RadialGeometry& geo) {
  return {geo.centre_x >= 0 ? geo.centre_x : 0.5 * static_cast<double>(g.dims().x - 1),
          geo.centre_y >= 0 ? geo.centre_y : 0.5 * static_cast<double>(g.dims().y - 1)};
}

double median_of(std::vector<float>& v) {
  const std::size_t m = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(m), v.end());
  if (v.size() % 2) return v[m];
  const double hi = v[m];
  const double lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(m));
  return 0.5 * (lo + hi);
}

// Solves the small dense system A x = b (Gaussian elimination with partial pivoting).
std::vector<double> solve(std::vector<std::vector<double>> A, std::vector<double> b) {
  const std::size_t n = b.size();
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(A[r][c]) > std::abs(A[p][c])) p = r;
    std::swap(A[c], A[p]);
    std::swap(b[c], b[p]);
    if (A[c][c] == 0) throw ComputeError("cupping fit: singular system (too few distinct radii for the degree)");
    for (std::size_t r = c + 1; r < n; ++r) {
      const double f = A[r][c] / A[c][c];
      for (std::size_t k = c; k < n; ++k) A[r][k] -= f * A[c][k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (std::size_t c = n; c-- > 0;) {
    double s = b[c];
    for (std::size_t k = c + 1; k < n; ++k) s -= A[c][k] * x[k];
    x[c] = s / A[c][c];
  }
  return x;
}

}  // namespace

Volume<float> reduce_rings(const Volume<float>& grey, const RadialGeometry& geo, int window) {
  if (window < 3 || window % 2 == 0) throw InputError("ring removal: window must be an odd number >= 3 of shells");
  const Dims d = grey.dims();
  const Centre c = centre_of(grey, geo);
  // Radius in voxels of the finer in-plane spacing (one-voxel shells).
  const double sx = grey.spacing_um[0], sy = grey.spacing_um[1], unit = std::min(sx, sy);
  Volume<float> r(Dims{d.x, d.y, 1});
  index_t shells = 0;
  for (index_t y = 0; y < d.y; ++y)
    for (index_t x = 0; x < d.x; ++x) {
      const double rr = std::hypot((x - c.x) * sx, (y - c.y) * sy) / unit;
      r(x, y, 0) = static_cast<float>(rr);
      shells = std::max<index_t>(shells, static_cast<index_t>(std::lround(rr)) + 1);
    }
  Volume<float> out = grey;
  const int half = window / 2;
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& range) {
    std::vector<std::vector<float>> shell(static_cast<std::size_t>(shells));
    std::vector<double> profile(shells), ring(shells);
    std::vector<float> win;
    for (index_t z = range.begin(); z != range.end(); ++z) {
      for (auto& s : shell) s.clear();
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) shell[std::lround(r(x, y, 0))].push_back(grey(x, y, z));
      for (index_t k = 0; k < shells; ++k) profile[k] = shell[k].empty() ? 0 : median_of(shell[k]);
      for (index_t k = 0; k < shells; ++k) {
        win.clear();
        for (index_t j = std::max<index_t>(0, k - half); j <= std::min(shells - 1, k + half); ++j)
          if (!shell[j].empty()) win.push_back(static_cast<float>(profile[j]));
        ring[k] = shell[k].empty() || win.empty() ? 0 : profile[k] - median_of(win);
      }
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          // The same nearest-shell assignment as the profile: a ring is a shell-wise offset.
          out(x, y, z) = static_cast<float>(grey(x, y, z) - ring[std::lround(r(x, y, 0))]);
        }
    }
  });
  return out;
}

CuppingFit correct_cupping(const Volume<float>& grey, const RadialGeometry& geo, int degree) {
  if (degree < 1 || degree > 4)
    throw InputError("cupping correction: degree must be 1..4, got " + std::to_string(degree));
  const Dims d = grey.dims();
  const Centre c = centre_of(grey, geo);
  const double sx = grey.spacing_um[0], sy = grey.spacing_um[1];
  const std::size_t n = static_cast<std::size_t>(degree) + 1;
  // r² normalised by the largest r² for conditioning.
  double r2max = 0;
  Volume<double> u(Dims{d.x, d.y, 1});
  for (index_t y = 0; y < d.y; ++y)
    for (index_t x = 0; x < d.x; ++x) {
      const double dx = (x - c.x) * sx, dy = (y - c.y) * sy;
      u(x, y, 0) = dx * dx + dy * dy;
      r2max = std::max(r2max, u(x, y, 0));
    }
  if (r2max == 0) r2max = 1;
  for (auto& v : u.storage()) v /= r2max;
  // Normal equations: the slice-summed grey per pixel position is enough (the model has no z).
  std::vector<double> column(static_cast<std::size_t>(d.x * d.y), 0.0);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.x * d.y), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) {
      double s = 0;
      for (index_t z = 0; z < d.z; ++z) s += grey[i + z * d.x * d.y];
      column[i] = s;
    }
  });
  std::vector<std::vector<double>> A(n, std::vector<double>(n, 0.0));
  std::vector<double> b(n, 0.0);
  std::vector<double> pw(2 * n);
  for (index_t i = 0; i < d.x * d.y; ++i) {
    pw[0] = 1;
    for (std::size_t k = 1; k < 2 * n; ++k) pw[k] = pw[k - 1] * u[i];
    for (std::size_t a = 0; a < n; ++a) {
      b[a] += pw[a] * column[i];
      for (std::size_t k = 0; k < n; ++k) A[a][k] += pw[a + k] * static_cast<double>(d.z);
    }
  }
  const std::vector<double> coef = solve(A, b);
  auto shape = [&](double uu) {
    double s = 0, p = 1;
    for (std::size_t k = 0; k < n; ++k, p *= uu) s += coef[k] * p;
    return s;
  };
  double mean = 0;
  for (index_t i = 0; i < d.x * d.y; ++i) mean += shape(u[i]);
  mean /= static_cast<double>(d.x * d.y);
  CuppingFit fit;
  fit.grey = grey;
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t z = r.begin(); z != r.end(); ++z)
      for (index_t i = 0; i < d.x * d.y; ++i)
        fit.grey[i + z * d.x * d.y] = static_cast<float>(grey[i + z * d.x * d.y] - (shape(u[i]) - mean));
  });
  // Report coefficients of r^(2k) with r in µm.
  for (std::size_t k = 0; k < n; ++k) fit.coefficients.push_back(coef[k] / std::pow(r2max, static_cast<double>(k)));
  return fit;
}

}  // namespace vp
