// Where auto's labels go wrong on one phantom cell (issue 11, σ 0.7): Dice per phase of the
// blur ceiling, of plain thresholds (true and fitted end members, raw and σ 0.5 grey), of the
// rules alone (sharp_psf_sweep off; also without the thin-pore rule) and of auto as shipped;
// per reading the confusion counts truth > label
// and the wrong voxels by Chebyshev distance (1..4, 5 = farther) from the nearest voxel of another
// truth phase; the sweep's flips by truth and label change, with the grey and the local offset of
// the classes (as the sweep's local end members, from the raw grey); AM|SE faces and AM|pore faces
// by the truth of their two voxels (what the contact fraction reads).
// Usage: bench_segment_diag [SNR [blur σ [P MPa [seed [size [realistic]]]]]] (default 12 0.7 50 1 96;
// `realistic`: Poisson noise, the 8 % cup, AM grains ± 4 %).
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "filters/segment/features.h"
#include "filters/segment/histogram.h"
#include "filters/segment/segmenter.h"
#include "metrics/interfaces.h"
#include "phantoms/phantom.h"
#include "test_composite_scan.h"

using namespace vp;
using vp::testing::blur_ceiling_labels;
using vp::testing::dice;
using vp::testing::grey_as_float;

namespace {
// Chebyshev distance (in voxels, up to 4) to the nearest voxel of another truth label.
Volume<std::uint8_t> boundary_distance(const Volume<std::uint8_t>& t) {
  const Dims d = t.dims();
  Volume<std::uint8_t> dist = t.like<std::uint8_t>(d);
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        int best = 5;
        for (int r = 1; r <= 4 && best == 5; ++r)
          for (index_t zz = std::max<index_t>(0, z - r); zz <= std::min(d.z - 1, z + r) && best == 5; ++zz)
            for (index_t yy = std::max<index_t>(0, y - r); yy <= std::min(d.y - 1, y + r) && best == 5; ++yy)
              for (index_t xx = std::max<index_t>(0, x - r); xx <= std::min(d.x - 1, x + r); ++xx)
                if (t(xx, yy, zz) != t(x, y, z)) {
                  best = r;
                  break;
                }
        dist(x, y, z) = static_cast<std::uint8_t>(best);
      }
  return dist;
}
void report(const char* name, const Volume<std::uint8_t>& l, const Volume<std::uint8_t>& t,
            const Volume<std::uint8_t>& dist) {
  std::printf("%-36s Dice %.4f %.4f %.4f |", name, dice(l, t, 0), dice(l, t, 1), dice(l, t, 2));
  // confusion: truth→label counts (off-diagonal), and wrong voxels by boundary distance
  long conf[3][3] = {};
  long bydist[6] = {};
  for (index_t i = 0; i < l.size(); ++i) {
    conf[t[i]][l[i]]++;
    if (t[i] != l[i]) bydist[dist[i]]++;
  }
  std::printf(" t>l 0>1 %ld 0>2 %ld 1>0 %ld 1>2 %ld 2>0 %ld 2>1 %ld | wrong@d1..5 %ld %ld %ld %ld %ld\n", conf[0][1],
              conf[0][2], conf[1][0], conf[1][2], conf[2][0], conf[2][1], bydist[1], bydist[2], bydist[3], bydist[4],
              bydist[5]);
}
}  // namespace

int main(int argc, char** argv) {
  const double snr = argc > 1 ? std::atof(argv[1]) : 12, blur = argc > 2 ? std::atof(argv[2]) : 0.7;
  const double pressure = argc > 3 ? std::atof(argv[3]) : 50;
  const std::uint64_t seed = argc > 4 ? std::atoi(argv[4]) : 1;
  const index_t size = argc > 5 ? std::atoi(argv[5]) : 96;
  const bool realistic = argc > 6 && std::string(argv[6]) == "realistic";
  phantom::CompositeSpec spec;
  spec.dims = {size, size, size};
  spec.seed = seed;
  const phantom::Phantom ph = phantom::generate_composite(spec, pressure);
  phantom::ImagingSpec im;
  im.seed = seed;
  im.snr = snr;
  im.blur_sigma_vox = {blur, blur, blur};
  if (realistic) {
    im.noise = phantom::NoiseModel::poisson;
    im.cupping = phantom::kRealisticCupping;
    im.grain_contrast = phantom::kRealisticGrainContrast;
  }
  const Volume<float> grey = grey_as_float(phantom::ct_image(ph, im));
  const Volume<std::uint8_t>& truth = ph.labels;
  const auto dist = boundary_distance(truth);
  const double p = im.grey_level("pore"), se = im.grey_level("se"), am = im.grey_level("am");
  report("ceiling (noise-free, true midpoints)", blur_ceiling_labels(ph.labels, im), truth, dist);
  report("true midpoints on raw grey", apply_thresholds(grey, {0.5 * (p + se), 0.5 * (se + am)}), truth, dist);
  const Volume<float> g05 = gaussian_smooth(grey, 0.5 * grey.spacing_um[0]);
  report("true midpoints on σ 0.5 grey", apply_thresholds(g05, {0.5 * (p + se), 0.5 * (se + am)}), truth, dist);
  SegmentOptions o;
  o.method = SegmentMethod::automatic;
  o.classes = 3;
  auto contact = [&](const Volume<std::uint8_t>& labels) {
    LabelVolume lv;
    static_cast<Volume<std::uint8_t>&>(lv) = labels;
    lv.phases = ph.labels.phases;
    return contact_area(lv).fraction;
  };
  // The rules alone first (no sharp-PSF sweep), then auto as shipped, then the opt-in readings.
  o.partial_volume.sharp_psf_sweep = false;
  const SegmentResult r = segment_grey(grey, o);
  const auto& mu = r.auto_fit->mixture.means;
  std::printf("fit means %.0f %.0f %.0f (true %.0f %.0f %.0f), label thresholds %.0f %.0f, PSF σ %.3f %.3f %.3f\n",
              mu[0], mu[1], mu[2], p, se, am, r.thresholds[0], r.thresholds[1], r.psf_sigma_vox[0], r.psf_sigma_vox[1],
              r.psf_sigma_vox[2]);
  report("fit midpoints on raw grey", apply_thresholds(grey, {0.5 * (mu[0] + mu[1]), 0.5 * (mu[1] + mu[2])}), truth,
         dist);
  report("fit midpoints on σ 0.5 grey", apply_thresholds(g05, {0.5 * (mu[0] + mu[1]), 0.5 * (mu[1] + mu[2])}), truth,
         dist);
  report("label thresholds on σ 0.5 grey", apply_thresholds(g05, r.thresholds), truth, dist);
  report("rules (sharp_psf_sweep off)", r.labels, truth, dist);
  o.partial_volume.thin_pores = false;
  const SegmentResult no_thin = segment_grey(grey, o);
  report("rules without thin_pores", no_thin.labels, truth, dist);
  o.partial_volume.thin_pores = true;
  o.partial_volume.sharp_psf_sweep = true;
  const SegmentResult shipped = segment_grey(grey, o);
  report("auto (one sweep under a sharp PSF)", shipped.labels, truth, dist);
  {
    // The sweep's flips: per (truth, rules label -> swept label), the count and the mean grey minus
    // the rules label's end member and the local offset of that class (σ 2 mean of grey - μ over
    // the rules label's interior voxels).
    const auto& em = r.partial_volume->means;
    std::printf("end members %.0f %.0f %.0f, noise σ %.0f\n", em[0], em[1], em[2], scan_noise_sigma(grey));
    std::vector<Volume<float>> off;
    const Dims d = grey.dims();
    for (int c = 0; c < 3; ++c) {
      Volume<float> num = grey.like<float>(d), den = grey.like<float>(d);
      for (index_t z = 1; z + 1 < d.z; ++z)
        for (index_t y = 1; y + 1 < d.y; ++y)
          for (index_t x = 1; x + 1 < d.x; ++x) {
            const index_t i = x + d.x * (y + d.y * z);
            bool in = r.labels[i] == c;
            for (int s = -1; s <= 1 && in; s += 2)
              in = r.labels[i + s] == c && r.labels[i + s * d.x] == c && r.labels[i + s * d.x * d.y] == c;
            if (in) num[i] = grey[i] - static_cast<float>(em[c]), den[i] = 1;
          }
      num = gaussian_smooth(num, 2 * grey.spacing_um[0]);
      den = gaussian_smooth(den, 2 * grey.spacing_um[0]);
      for (index_t i = 0; i < num.size(); ++i) num[i] = den[i] > 0.05f ? num[i] / den[i] : NAN;
      off.push_back(std::move(num));
    }
    long n[3][3][3] = {};
    double dg[3][3][3] = {}, doff[3][3][3] = {}, dofft[3][3][3] = {};
    long noff[3][3][3] = {}, nofft[3][3][3] = {};
    for (index_t i = 0; i < grey.size(); ++i) {
      const int t = truth[i], a = r.labels[i], b = shipped.labels[i];
      if (a == b) continue;
      ++n[t][a][b];
      dg[t][a][b] += grey[i] - em[a];
      if (std::isfinite(off[a][i])) doff[t][a][b] += off[a][i], ++noff[t][a][b];
      if (std::isfinite(off[b][i])) dofft[t][a][b] += off[b][i], ++nofft[t][a][b];
    }
    for (int t = 0; t < 3; ++t)
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b)
          if (n[t][a][b] > 0)
            std::printf(
                "  flips truth %d: %d>%d %6ld  grey-mu_from %7.0f  local offset from %7.0f (%ld) to %7.0f (%ld)\n", t,
                a, b, n[t][a][b], dg[t][a][b] / n[t][a][b], noff[t][a][b] ? doff[t][a][b] / noff[t][a][b] : NAN,
                noff[t][a][b], nofft[t][a][b] ? dofft[t][a][b] / nofft[t][a][b] : NAN, nofft[t][a][b]);
  }
  {
    // AM|pore faces of the labels by the truth of the two voxels (AM-labelled, pore-labelled), and
    // AM|SE faces: what the contact fraction reads.
    auto faces = [&](const char* name, const Volume<std::uint8_t>& l) {
      long am_pore[3][3] = {}, am_se = 0;
      const Dims d = l.dims();
      const index_t step[3] = {1, d.x, d.x * d.y};
      for (index_t z = 0; z < d.z; ++z)
        for (index_t y = 0; y < d.y; ++y)
          for (index_t x = 0; x < d.x; ++x) {
            const index_t i = x + d.x * (y + d.y * z), pos[3] = {x, y, z};
            for (int a = 0; a < 3; ++a) {
              if (pos[a] + 1 >= d[a]) continue;
              const index_t j = i + step[a];
              int p = -1, q = -1;
              if (l[i] == 2 && l[j] == 0) p = i, q = j;
              if (l[j] == 2 && l[i] == 0) p = j, q = i;
              if (p >= 0) ++am_pore[truth[p]][truth[q]];
              if ((l[i] == 2 && l[j] == 1) || (l[i] == 1 && l[j] == 2)) ++am_se;
            }
          }
      std::printf("%-8s AM|SE faces %ld, AM|pore faces by truth (AM voxel, pore voxel):", name, am_se);
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) std::printf(" %d%d %ld", a, b, am_pore[a][b]);
      std::printf("\n");
    };
    faces("truth", truth);
    faces("rules", r.labels);
    faces("sweep", shipped.labels);
  }
  std::printf("contact: truth %.4f, rules %.4f, without thin_pores %.4f, auto %.4f\n", ph.truth.contact_area_fraction,
              contact(r.labels), contact(no_thin.labels), contact(shipped.labels));
  return 0;
}
