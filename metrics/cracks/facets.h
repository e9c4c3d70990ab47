// Intergranular facets: openings about one voxel wide inside a host brighter than another solid
// (grain boundaries opened inside AM agglomerates beside the SE). The PSF lifts such an opening
// to a grey between the two solids, so thresholds label it as the darker solid, never as void,
// and the void-based branches of detect_cracks have nothing to start from. A film of the darker
// solid between two host particles reads the same in labels and grey (blur conserves the
// attenuation deficit: a 1.2-voxel void and a 2-voxel SE film dip alike); what tells a facet is
// that it lies inside one particle.
//
// 1. Particles: the host closed by a ball of closing_vox (which fills a facet, as it lies inside a
//    convex particle, but not the wedge-shaped films between two particles), split at its necks
//    by the watershed of its distance map from h-maxima markers (h = marker_h_vox).
// 2. Candidates: voxels not labelled host (where the noise is low, also host voxels darker than
//    the host by open_dip: clean labels hold a facet thinner than noisy ones), inside the closed
//    host, walled along one of the 13 grid directions by host on both sides within a run of
//    ≤ max_opening_vox non-host voxels, each wall ≥ wall_depth_vox host voxels deep and in the same
//    particle, and darker than both walls' mean grey by max(min_dip × (host − darker solid),
//    min_dip_noise × σ), σ the host's grey noise (clipped RMS of host voxels inside particles).
// 3. Per particle: the plane of its candidates (principal plane, refitted twice to those within
//    1.5 voxels). A facet when ≥ min_voxels candidates lie on it at a mean depth in the closed host
//    ≥ min_depth_vox (films between particles that the closing fused lie near the surface), and,
//    when asked, the plane passes within max_centre_offset × the particle's inscribed radius of
//    its centroid. A first plane holding ≥ coplanar_share of its particle's candidates needs only
//    coplanar_min_voxels on it where its deepest candidate reaches coplanar_min_reach × the
//    inscribed radius. Then, up to max_planes, the same on the candidates left off the planes before,
//    started at the local plane holding most of them, and a facet only at a mean depth ≥
//    further_min_depth_vox.
// Where σ > max_noise × (host − darker solid), steps 2 and 3 use the grey smoothed by a Gaussian of
// smooth_sigma_vox (σ measured again on it) and a depth ≥ smoothed_min_depth_vox, or ≥ min_depth_vox
// where the plane's deepest candidate reaches core_reach × the inscribed radius.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/volume.h"

namespace vp {

struct FacetOptions {
  double closing_vox = 1.5;  // closing of the host that fills facets (voxels of the coarsest spacing)
  double marker_h_vox = 2;   // h-maxima height splitting the closed host into particles
  int max_opening_vox = 3;   // longest run of non-host voxels across a candidate (a 1.2-voxel
                             // opening under a PSF of one voxel is labelled 2–3 voxels thick)
  int wall_depth_vox = 2;    // host voxels each wall must have in a row
  // Where σ ≤ open_max_noise × contrast (SNR ≥ 12 or so), host voxels darker than the host level by
  // max(open_dip × contrast, open_dip_noise × σ) count as opening, not wall (0: off).
  double open_dip = 0.25;
  double open_dip_noise = 3;
  double open_max_noise = 0.12;
  double min_dip = 0.3;      // grey dip below the walls' mean, × (host − darker solid) contrast
  double min_dip_noise = 2;  // and ≥ this × the host's grey noise σ
  // Facets are looked for on the raw grey only where the host's grey noise σ ≤ max_noise × (host −
  // darker solid): a 1.2-voxel opening dips ≈ 0.6 × that contrast, and noisier images (SNR 5:
  // σ ≈ 0.23 ×) hold more noise holes walled by one particle than facets.
  double max_noise = 0.19;
  // Noisier images: steps 2 and 3 run on the grey smoothed by a Gaussian of this σ (voxels of the
  // finest spacing), with the noise σ measured on it, and a facet must lie deeper: noisy labels
  // fuse neighbouring particles across more films (0: no facets there).
  double smooth_sigma_vox = 0.7;
  double smoothed_min_depth_vox = 1.8;
  index_t min_voxels = 30;     // candidates on a particle's plane
  double min_depth_vox = 1.4;  // their mean depth in the closed host
  // The plane must pass within this × the particle's inscribed radius (its deepest voxel in the
  // closed host) of the particle's centroid (0: off): a facet cuts through its particle, a film
  // fused into it by the closing lies at its side. Off by default: 0.6 raised precision on the
  // 128³ benchmark (0.30 → 0.34) but lost facets on 64³ phantoms (seeds 1–12 at SNR 8: 41 → 33
  // of 59, 34 when particles cut by the image border are not judged; docs/cracks.md).
  double max_centre_offset = 0;
  // On the smoothed grey, a plane whose deepest candidate lies ≥ this × the inscribed radius deep
  // (it reaches the particle's core, as films at its skin do not) needs only min_depth_vox, not
  // smoothed_min_depth_vox (0: off).
  double core_reach = 0.55;
  // Planes per particle: after the first, the candidates left off it are searched again for the
  // plane that holds most of them (the principal plane of a large facet's candidates and of the
  // films and noise holes beside it runs off the facet; 128³ seed 4: a 49 µm² facet got 43 of its
  // 287 candidates). Such a further plane is a facet only at a mean depth ≥ further_min_depth_vox:
  // the further planes are mostly films at the skin of particles that the closing fused (measured
  // ≤ 2.3 voxels deep, the facets 3.9; with 1.4 a 64³ crack-free image went from 0.041 to 0.076 % false volume).
  int max_planes = 3;
  // A particle whose candidates lie ≥ coplanar_share on its first plane needs only
  // coplanar_min_voxels of them there (0: off): noise holes scatter over a particle, and a facet of
  // 5 µm² holds about 20 voxels, under min_voxels. Alone it found 2 more facets of 45 on 128³ seeds
  // 4–6 and 3 of 59 at 64³, but put a 64³ crack-free image (exact labels, SNR 8:
  // CrackAccuracy.NoFalseCracksOnNoisyCrackFreeComposite) at 0.053 % false volume (docs/cracks.md).
  index_t coplanar_min_voxels = 15;
  double coplanar_share = 0.8;
  // Such a small plane (under min_voxels) must also reach ≥ this × the particle's inscribed radius
  // deep with its deepest candidate (0: not asked): a facet is a grain boundary cut through its
  // particle, while the small planes of films fused at a particle's skin and of noise holes stay
  // near its surface (traced on 128³ seeds 4–6 and 64³ seeds 1–12: the 5 facets 0.29–0.86 R, 4 of
  // them ≥ 0.42 R; 42 of the 55 false planes < 0.4 R, that test image's 0.29 R; docs/cracks.md).
  double coplanar_min_reach = 0.4;
  double further_min_depth_vox = 3;
};

struct Facets {
  std::vector<std::vector<index_t>> voxels;  // per facet, sorted linear indices
  index_t candidates = 0;                    // candidate voxels (step 2)
  double noise_sigma = 0;                    // the host's grey noise σ (of the smoothed grey, where used)
};

// labels, grey: same dims; host: the host labels; host_level / darker_level: median grey of the
// host and of the darker solid. Facets in particle order; taken voxels (≠ 0) are left out.
Facets detect_facets(const Volume<std::uint8_t>& labels, const Volume<float>& grey, const std::array<bool, 256>& host,
                     double host_level, double darker_level, const FacetOptions& options,
                     const Volume<std::uint32_t>& taken);

}  // namespace vp
