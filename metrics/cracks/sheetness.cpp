// The one ITK translation unit of the crack area: Hessian and Gaussian smoothing.
#include "metrics/cracks/sheetness.h"

#include <algorithm>
#include <cmath>

#include <itkHessianRecursiveGaussianImageFilter.h>
#include <itkSmoothingRecursiveGaussianImageFilter.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/error.h"
#include "core/progress.h"
#include "filters/io/itk_bridge.h"
#include "metrics/cracks/shape.h"

namespace vp {

namespace {

// Eigenvalues of a symmetric 3×3 matrix in closed form (Smith 1961): about ten times faster
// than an iterative solver, and the Hessian is evaluated at every voxel and scale.
void eigenvalues(double a00, double a01, double a02, double a11, double a12, double a22, double out[3]) {
  const double p1 = a01 * a01 + a02 * a02 + a12 * a12;
  if (p1 == 0) {
    out[0] = a00, out[1] = a11, out[2] = a22;
    return;
  }
  const double q = (a00 + a11 + a22) / 3;
  const double p2 = (a00 - q) * (a00 - q) + (a11 - q) * (a11 - q) + (a22 - q) * (a22 - q) + 2 * p1;
  const double p = std::sqrt(p2 / 6);
  const double b00 = (a00 - q) / p, b11 = (a11 - q) / p, b22 = (a22 - q) / p, b01 = a01 / p, b02 = a02 / p,
               b12 = a12 / p;
  const double r = std::clamp((b00 * (b11 * b22 - b12 * b12) - b01 * (b01 * b22 - b12 * b02) + b02 * (b01 * b12 - b11 * b02)) / 2,
                              -1.0, 1.0);
  const double phi = std::acos(r) / 3;
  out[0] = q + 2 * p * std::cos(phi);
  out[2] = q + 2 * p * std::cos(phi + 2 * M_PI / 3);
  out[1] = 3 * q - out[0] - out[2];
}

}  // namespace

Volume<float> dark_sheetness(const Volume<float>& grey, const SheetnessOptions& o) {
  if (!(o.contrast > 0))
    throw InputError("sheetness: contrast " + std::to_string(o.contrast) +
                     " (host minus void grey level) must be positive");
  const Vec3 h = grey.spacing_um;
  const double h_min = std::min({h[0], h[1], h[2]});
  const Dims d = grey.dims();
  Volume<float> best = grey.like<float>(d, 0.0f);
  const double c = o.contrast_fraction * o.contrast;
  const double valley = o.valley_fraction * o.contrast;
  const double below_host = std::isfinite(o.host_level) ? o.host_level - valley : std::numeric_limits<double>::infinity();

  using Image = ItkImage3<float>;
  for (double s_vox : o.scales_vox) {
    if (!(s_vox > 0)) throw InputError("sheetness: scale " + std::to_string(s_vox) + " voxels must be positive");
    const double sigma = s_vox * h_min;
    auto input = itk_view(grey);
    // Single-precision tensors: 24 instead of 48 bytes per voxel (the response is a float).
    using Hessian = itk::HessianRecursiveGaussianImageFilter<Image, itk::Image<itk::SymmetricSecondRankTensor<float, 3>, 3>>;
    auto hessian = Hessian::New();
    hessian->SetInput(input);
    hessian->SetSigma(sigma);
    hessian->SetNormalizeAcrossScale(true);  // σ²·∂²: responses comparable across scales
    hessian->Update();
    using Smooth = itk::SmoothingRecursiveGaussianImageFilter<Image, Image>;
    auto smooth = Smooth::New();
    smooth->SetInput(input);
    smooth->SetSigma(sigma);
    smooth->Update();
    const auto* H = hessian->GetOutput()->GetBufferPointer();
    const float* G = smooth->GetOutput()->GetBufferPointer();

    tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& r) {
      cancellation_point();  // a Ctrl-C from Python stops here (core/progress.h)
      for (index_t z = r.begin(); z < r.end(); ++z)
        for (index_t y = 0; y < d.y; ++y)
          for (index_t x = 0; x < d.x; ++x) {
            const index_t i = grey.index(x, y, z);
            const auto& t = H[i];
            double l[3];
            eigenvalues(t(0, 0), t(0, 1), t(0, 2), t(1, 1), t(1, 2), t(2, 2), l);
            std::sort(l, l + 3, [](double a, double b) { return std::abs(a) < std::abs(b); });
            if (l[2] <= 0) continue;
            const double rs = std::abs(l[1]) / l[2];
            const double rb = std::abs(2 * l[2] - std::abs(l[1]) - std::abs(l[0])) / l[2];
            const double s2 = l[0] * l[0] + l[1] * l[1] + l[2] * l[2];
            const double m = std::exp(-rs * rs / (2 * o.alpha * o.alpha)) *
                             (1 - std::exp(-rb * rb / (2 * o.beta * o.beta))) * (1 - std::exp(-s2 / (2 * c * c)));
            if (m < 0.05 || m <= best[i]) continue;  // negligible: skip the valley test
            if (G[i] > below_host) continue;
            // Valley test along the sheet normal (the eigenvector of the largest eigenvalue).
            std::array<std::array<double, 3>, 3> mtx{{{t(0, 0), t(0, 1), t(0, 2)},
                                                     {t(1, 0), t(1, 1), t(1, 2)},
                                                     {t(2, 0), t(2, 1), t(2, 2)}}};
            std::array<double, 3> values;
            std::array<Vec3, 3> vectors;
            symmetric_eigen(mtx, values, vectors);
            const Vec3& n = vectors[0];  // largest (positive) eigenvalue
            // Grey at p + t·n, nearest voxel (clamped to the volume).
            auto grey_along = [&](double t) {
              index_t p[3] = {x, y, z};
              for (int k = 0; k < 3; ++k)
                p[k] = std::clamp<index_t>(p[k] + static_cast<index_t>(std::lround(t * n[k] / h[k])), 0, d[k] - 1);
              return G[grey.index(p[0], p[1], p[2])];
            };
            bool keep = true;
            for (int side = -1; side <= 1 && keep; side += 2) {
              keep = grey_along(side * 2 * sigma) - G[i] >= valley;
              // Ridge only: the valley floor, not its flanks, so that a crack the labels
              // already hold is not widened.
              if (o.ridge_only) {
                const double step = std::abs(n[0]) * h[0] + std::abs(n[1]) * h[1] + std::abs(n[2]) * h[2];
                keep = keep && grey_along(side * step) >= G[i];
              }
            }
            if (keep) best[i] = static_cast<float>(m);
          }
    });
  }
  return best;
}

}  // namespace vp
