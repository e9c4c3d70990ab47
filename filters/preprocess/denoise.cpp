// Denoising: the ITK filters (median, anisotropic diffusion) and the dispatch to the fast kernels.
#include "filters/preprocess/denoise.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <itkCurvatureAnisotropicDiffusionImageFilter.h>
#include <itkMedianImageFilter.h>

#include "core/error.h"
#include "filters/io/itk_bridge.h"
#include "filters/preprocess/edge_preserving.h"

namespace vp {

namespace {
using Image = ItkImage3<float>;
}

DenoiseMethod parse_denoise_method(const std::string& n) {
  if (n == "none") return DenoiseMethod::none;
  if (n == "median") return DenoiseMethod::median;
  if (n == "bilateral") return DenoiseMethod::bilateral;
  if (n == "anisotropic") return DenoiseMethod::anisotropic;
  if (n == "nlmeans") return DenoiseMethod::nlmeans;
  throw InputError("denoise method '" + n + "': expected none, median, bilateral, anisotropic or nlmeans");
}

std::string to_string(DenoiseMethod m) {
  switch (m) {
    case DenoiseMethod::none: return "none";
    case DenoiseMethod::median: return "median";
    case DenoiseMethod::bilateral: return "bilateral";
    case DenoiseMethod::anisotropic: return "anisotropic";
    case DenoiseMethod::nlmeans: return "nlmeans";
  }
  return "none";
}

double estimate_noise_sigma(const Volume<float>& g) {
  const Dims d = g.dims();
  if (d.x < 2) return 0;
  std::vector<float> diff;
  diff.reserve(static_cast<std::size_t>(g.size()));
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x + 1 < d.x; ++x) diff.push_back(g(x + 1, y, z) - g(x, y, z));
  auto mid = diff.begin() + static_cast<std::ptrdiff_t>(diff.size() / 2);
  std::nth_element(diff.begin(), mid, diff.end());
  const float med = *mid;
  for (float& v : diff) v = std::abs(v - med);
  std::nth_element(diff.begin(), mid, diff.end());
  return 1.4826 * *mid / std::sqrt(2.0);
}

Volume<float> denoise(const Volume<float>& grey, const DenoiseOptions& o) {
  // The two fast kernels (filters/preprocess/edge_preserving.h) allocate their own output.
  if (o.method == DenoiseMethod::bilateral) {
    if (!(o.bilateral_domain_um > 0)) throw InputError("bilateral domain σ must be > 0 µm");
    const double range = o.bilateral_range > 0 ? o.bilateral_range : 2 * estimate_noise_sigma(grey);
    return bilateral_filter(grey, o.bilateral_domain_um, range > 0 ? range : 1.0);
  }
  if (o.method == DenoiseMethod::nlmeans) {
    NonlocalMeansOptions nl;
    nl.patch_radius = o.nlmeans_patch_radius;
    nl.search_radius = o.nlmeans_search_radius;
    nl.samples = o.nlmeans_samples;
    nl.iterations = o.nlmeans_iterations;
    // h = σ_noise: best of 0.5–3 σ on the CT phantoms at SNR 5–12 (docs/segmentation.md).
    const double bw = o.nlmeans_bandwidth > 0 ? o.nlmeans_bandwidth : estimate_noise_sigma(grey);
    nl.bandwidth = bw > 0 ? bw : 1.0;
    return nonlocal_means(grey, nl);
  }
  Volume<float> out = grey;
  if (o.method == DenoiseMethod::none) return out;
  auto input = itk_view(grey);
  const double min_spacing = *std::min_element(grey.spacing_um.begin(), grey.spacing_um.end());
  try {
    switch (o.method) {
      case DenoiseMethod::none:
      case DenoiseMethod::bilateral:
      case DenoiseMethod::nlmeans: break;
      case DenoiseMethod::median: {
        if (o.median_radius_vox < 1) throw InputError("median radius must be >= 1 voxel");
        auto f = itk::MedianImageFilter<Image, Image>::New();
        f->SetInput(input);
        f->SetRadius(static_cast<unsigned>(o.median_radius_vox));
        f->Update();
        copy_from_itk(f->GetOutput(), out);
        break;
      }
      case DenoiseMethod::anisotropic: {
        if (o.diffusion_iterations < 1) throw InputError("anisotropic diffusion: iterations must be >= 1");
        auto f = itk::CurvatureAnisotropicDiffusionImageFilter<Image, Image>::New();
        f->SetInput(input);
        f->SetNumberOfIterations(static_cast<unsigned>(o.diffusion_iterations));
        f->SetTimeStep(min_spacing / 16.0);  // the 3-D stability limit, spacing / 2^(N+1)
        f->SetConductanceParameter(o.diffusion_conductance);
        f->Update();
        copy_from_itk(f->GetOutput(), out);
        break;
      }
    }
  } catch (const itk::ExceptionObject& e) {
    throw ComputeError(std::string("denoise (") + to_string(o.method) + "): " + e.GetDescription());
  }
  return out;
}

}  // namespace vp
