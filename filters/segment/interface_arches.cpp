#include "filters/segment/interface_arches.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gaussian.h"
#include "filters/preprocess/psf.h"

namespace vp {

namespace {

constexpr double kSqrt2Pi = 2.5066282746310002;
constexpr int kClasses = 6;  // pure pore, SE, AM; arches pore|SE, pore|AM, SE|AM

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double normal_density(double x, double mean, double sigma) {
  const double z = (x - mean) / sigma;
  return std::exp(-0.5 * z * z) / (sigma * kSqrt2Pi);
}

// Density of |x| for x ~ N(m, s² I₃) with |m| = G: the noncentral χ of 3 degrees of freedom,
// (g/G) [n(g − G) − n(g + G)] with n the N(0, s²) density; Maxwell as G → 0. Written with
// 1 − e^{−2gG/s²} so that neither term overflows nor cancels.
double gradient_density(double g, double G, double s) {
  const double x = g * G / (s * s);
  const double e = normal_density(g, G, s);
  if (x < 1e-8) return 2 * g * g / (s * s) * e;
  return g / G * -std::expm1(-2 * x) * e;
}

// |∇u| by central differences of the smoothed grey along each axis (one-sided at the faces).
Volume<float> gradient_magnitude(const Volume<float>& u) {
  const Dims d = u.dims();
  Volume<float> g = u.like<float>(d);
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        double sum = 0;
        const index_t at[3] = {x, y, z};
        for (int a = 0; a < 3; ++a) {
          const index_t n = d[a];
          if (n < 2) continue;
          index_t lo[3] = {x, y, z}, hi[3] = {x, y, z};
          lo[a] = std::max<index_t>(at[a] - 1, 0);
          hi[a] = std::min<index_t>(at[a] + 1, n - 1);
          const double diff = (u(hi[0], hi[1], hi[2]) - u(lo[0], lo[1], lo[2])) / static_cast<double>(hi[a] - lo[a]);
          sum += diff * diff;
        }
        g(x, y, z) = static_cast<float>(std::sqrt(sum));
      }
  return g;
}

}  // namespace

InterfaceArchAreas interface_arch_areas(const Volume<float>& grey, const std::array<double, 3>& means,
                                        double noise_sigma, const std::array<double, 3>& psf_sigma_vox,
                                        const InterfaceArchOptions& options) {
  if (!(means[0] < means[1] && means[1] < means[2]))
    throw InputError("interface arches: the pure grey levels must ascend (pore < SE < AM)");
  if (!(noise_sigma > 0)) throw InputError("interface arches: the noise σ must be > 0");
  InterfaceArchAreas out;
  const double s = options.smoothing_vox;
  const double psf = (psf_sigma_vox[0] + psf_sigma_vox[1] + psf_sigma_vox[2]) / 3;
  const double blur = std::sqrt(psf * psf + s * s);

  // White noise of σ_n through the smoothing taps t: the value's σ is σ_n (Σt²)^{3/2}; a gradient
  // component's is σ_n √(Σc²) Σt², c the taps convolved with the central difference. The
  // components are independent (c odd, t even), so |∇u| of a pure phase is Maxwell(σ_g).
  const std::vector<double> t = gaussian_taps(s, 4.0);
  const int r = static_cast<int>(t.size() / 2);
  double t2 = 0, c2 = 0;
  for (double x : t) t2 += x * x;
  for (int j = -r - 1; j <= r + 1; ++j) {
    const auto tap = [&](int k) { return k < -r || k > r ? 0.0 : t[k + r]; };
    const double c = 0.5 * (tap(j + 1) - tap(j - 1));
    c2 += c * c;
  }
  const double sv = noise_sigma * std::pow(t2, 1.5), sg = noise_sigma * std::sqrt(c2) * t2;
  out.value_sigma = sv, out.gradient_sigma = sg, out.blur_sigma = blur;

  const Volume<float> u = gaussian_blur(grey, {s, s, s});
  const Volume<float> grad = gradient_magnitude(u);

  // The arches' shapes. Central differences see the blurred step's slope over ± h along each
  // axis; averaged over face orientations (E Σ n_a⁴ = 3/5) that is the slope over ± √(3/5).
  const double Z = options.arch_extent, h = std::sqrt(0.6);
  const int pair_lo[3] = {0, 0, 1}, pair_hi[3] = {1, 2, 2};
  double peak = 0;
  std::array<double, 3> step{};
  for (int p = 0; p < 3; ++p) {
    step[p] = means[pair_hi[p]] - means[pair_lo[p]];
    peak = std::max(peak, step[p] * (normal_cdf(h / blur) - normal_cdf(-h / blur)) / (2 * h));
  }
  const double vlo = means[0] - 6 * sv, vhi = means[2] + 6 * sv, ghi = 1.5 * peak + 8 * sg;
  const double bv = std::max(sv / 2, (vhi - vlo) / 800), bg = std::max(sg / 2, ghi / 400);
  const index_t nv = static_cast<index_t>(std::ceil((vhi - vlo) / bv)), ng = static_cast<index_t>(std::ceil(ghi / bg));
  const auto bin_of = [&](double v, double g) {
    const index_t iv = std::clamp<index_t>(static_cast<index_t>(std::floor((v - vlo) / bv)), 0, nv - 1);
    const index_t ig = std::clamp<index_t>(static_cast<index_t>(std::floor(g / bg)), 0, ng - 1);
    return iv + nv * ig;
  };

  std::vector<double> count(static_cast<std::size_t>(nv * ng), 0.0), gsum(count.size(), 0.0);
  for (index_t i = 0; i < grey.size(); ++i) {
    const index_t b = bin_of(u[i], grad[i]);
    count[b] += 1, gsum[b] += grad[i];
  }
  std::vector<index_t> used;
  for (index_t b = 0; b < nv * ng; ++b)
    if (count[b] > 0) used.push_back(b);

  // Class densities at the used bins' centres.
  std::vector<std::array<double, kClasses>> density(static_cast<std::size_t>(nv * ng));
  // Per arch, Σ density · slope, for the slope expected given the bin (model_gradient).
  std::vector<std::array<double, 3>> slope(static_cast<std::size_t>(nv * ng), {0.0, 0.0, 0.0});
  const auto centre_v = [&](index_t iv) { return vlo + (iv + 0.5) * bv; };
  const auto centre_g = [&](index_t ig) { return (ig + 0.5) * bg; };
  for (index_t b : used) {
    const double v = centre_v(b % nv), g = centre_g(b / nv);
    auto& f = density[b];
    f.fill(0.0);
    for (int k = 0; k < 3; ++k) f[k] = normal_density(v, means[k], sv) * gradient_density(g, 0, sg);
  }
  // An arch: voxels uniform in d over |d| ≤ Z σ_e, i.e. z = d/σ_e uniform on [−Z, Z], each point
  // (μ_i + Δ Φ(z), Δ slope(z)) spread by the noise; summed over the bins within 6 σ of it.
  const int M = 481;
  for (int p = 0; p < 3; ++p)
    for (int m = 0; m < M; ++m) {
      const double z = -Z + 2 * Z * m / (M - 1);
      const double v0 = means[pair_lo[p]] + step[p] * normal_cdf(z);
      const double g0 = step[p] * (normal_cdf(z + h / blur) - normal_cdf(z - h / blur)) / (2 * h);
      const index_t iv0 = std::max<index_t>(0, static_cast<index_t>(std::floor((v0 - 6 * sv - vlo) / bv)));
      const index_t iv1 = std::min<index_t>(nv - 1, static_cast<index_t>(std::floor((v0 + 6 * sv - vlo) / bv)));
      const index_t ig0 = std::max<index_t>(0, static_cast<index_t>(std::floor((g0 - 6 * sg) / bg)));
      const index_t ig1 = std::min<index_t>(ng - 1, static_cast<index_t>(std::floor((g0 + 6 * sg) / bg)));
      for (index_t ig = ig0; ig <= ig1; ++ig) {
        const double fg = gradient_density(centre_g(ig), g0, sg) / M;
        for (index_t iv = iv0; iv <= iv1; ++iv) {
          const index_t b = iv + nv * ig;
          if (count[b] == 0) continue;
          const double f = fg * normal_density(centre_v(iv), v0, sv);
          density[b][3 + p] += f, slope[b][p] += f * g0;
        }
      }
    }

  // EM on the class weights, the shapes fixed.
  std::array<double, kClasses> w{0.25, 0.25, 0.25, 0.25 / 3, 0.25 / 3, 0.25 / 3};
  const double total = static_cast<double>(grey.size());
  int it = 0;
  for (; it < options.max_iterations; ++it) {
    std::array<double, kClasses> next{};
    double explained = 0;
    for (index_t b : used) {
      double norm = 0;
      for (int k = 0; k < kClasses; ++k) norm += w[k] * density[b][k];
      if (!(norm > 0)) continue;
      explained += count[b];
      for (int k = 0; k < kClasses; ++k) next[k] += count[b] * w[k] * density[b][k] / norm;
    }
    if (!(explained > 0)) throw ComputeError("interface arches: no voxel fits a pure phase or an arch");
    out.unexplained = 1 - explained / total;
    double change = 0;
    for (int k = 0; k < kClasses; ++k) {
      next[k] /= explained;
      change = std::max(change, std::fabs(next[k] - w[k]));
    }
    w = next;
    if (change < 1e-9) break;
  }
  out.weights = w, out.iterations = it;

  // Posteriors of the arches per bin; coarea per pair, and per block for the jackknife.
  std::vector<std::array<double, 3>> arch(static_cast<std::size_t>(nv * ng), {0.0, 0.0, 0.0});
  for (index_t b : used) {
    double norm = 0;
    for (int k = 0; k < kClasses; ++k) norm += w[k] * density[b][k];
    if (norm > 0)
      for (int p = 0; p < 3; ++p) {
        arch[b][p] = w[3 + p] * density[b][3 + p] / norm;
        // model_gradient: the posterior's |∇u| in place of the voxel's, r · E[slope | bin, arch].
        if (options.model_gradient && density[b][3 + p] > 0) arch[b][p] *= slope[b][p] / density[b][3 + p];
      }
  }
  const double covered = 2 * normal_cdf(Z) - 1;  // the share of Δ an arch of |z| ≤ Z spans
  const Dims d = grey.dims();
  const index_t B = std::max<index_t>(1, options.block_vox);
  const index_t bx = (d.x + B - 1) / B, by = (d.y + B - 1) / B, bz = (d.z + B - 1) / B;
  std::vector<std::array<double, 3>> block(static_cast<std::size_t>(bx * by * bz), {0.0, 0.0, 0.0});
  std::array<double, 3> sum{0.0, 0.0, 0.0};
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const index_t i = x + d.x * (y + d.y * z);
        const auto& a = arch[bin_of(u[i], grad[i])];
        auto& k = block[x / B + bx * (y / B + by * (z / B))];
        for (int p = 0; p < 3; ++p) {
          const double c = a[p] * (options.model_gradient ? 1.0 : grad[i]) / (step[p] * covered);
          k[p] += c, sum[p] += c;
        }
      }
  const auto fraction = [](double sa, double pa) { return sa + pa > 0 ? sa / (sa + pa) : NAN; };
  for (int p = 0; p < 3; ++p) {
    out.area_vox2[p] = sum[p];
    out.count_area_vox2[p] = w[3 + p] * total * (1 - out.unexplained) / (2 * Z * blur);
  }
  out.contact_fraction = fraction(sum[2], sum[1]);
  out.count_contact_fraction = fraction(out.count_area_vox2[2], out.count_area_vox2[1]);
  // Delete-one-block jackknife of the ratio: the noise and how the interfaces vary across the scan.
  const double n = static_cast<double>(block.size());
  if (n > 1) {
    std::vector<double> left;
    double mean = 0;
    for (const auto& k : block) {
      left.push_back(fraction(sum[2] - k[2], sum[1] - k[1]));
      mean += left.back();
    }
    mean /= n;
    double var = 0;
    for (double f : left) var += (f - mean) * (f - mean);
    out.contact_ci95 = 1.96 * std::sqrt((n - 1) / n * var);
  }
  return out;
}

}  // namespace vp
