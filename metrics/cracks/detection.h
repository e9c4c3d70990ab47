// Crack detection: thin, sheet-like voids inside a host phase.
//
// 1. Void = voxels of the void labels (the pore role), plus, when a grey image is given,
//    host voxels with a dark-sheet response (sheetness.h) ≥ sheet_threshold / 2 that are
//    26-connected to one ≥ sheet_threshold (hysteresis): cracks one to three voxels wide
//    that thresholding labelled as host. Voxels within 1.75 voxels of any non-host voxel are
//    left out: a thin film of a darker solid between host grains looks like a crack, and
//    beside labelled void the response would only widen what the labels hold (a crack the
//    labels hold in part keeps a gap of about one voxel to its grey-found remainder).
// 2. Inside the host: void voxels within the morphological closing of the host by a ball of
//    radius closing_radius_um (the host with its thin gaps filled; pores wider than twice the
//    radius stay open).
// 3. Thin: local thickness of the void (metrics/local_thickness.h, computed on the whole void
//    so that the rim of a large pore keeps the pore's large thickness) ≤ max_aperture_um.
// 4. Sheet-like: 26-connected components of the voxels left, coplanar pieces of one holey
//    sheet joined (within join_gap_vox voxels, the smaller piece on the larger one's plane);
//    a component (group) is a crack when it has at least min_voxels voxels (min_grey_voxels
//    when most of it comes from the grey image: noise makes small sheets) and sheet_aspect ≥
//    min_aspect (middle over smallest principal extent, shape.h). Coplanar groups farther apart
//    (up to bridge_max_um) are one crack when the path between them crosses no intact host: the
//    particle that interrupts the crack, its partial-volume rim, or host dark as a half-open crack.
// 5. Touching cracks kept apart (split_touching): an accepted crack is split by sequential plane
//    fitting into the planes of the discs that touch or cross in it (pieces with agreeing
//    planes rejoined, left-over voxels to the nearest plane); the crack voxels do not change. A
//    piece whose voxels spread across its plane wider than max_aperture_um (the width of a uniform
//    slab of their variance along the normal; planar_sheets) is no planar crack — a compaction pore
//    curved along the grains that bound it, or a crack with a pore on it — and is cut as in 4b.
// 4b. Cut planes: a group that fails step 4 (a holey crack merged with pores or debris) is
//    searched for crack planes (cut_* options): candidate planes are local principal planes of
//    the group, scored by their voxels walled by host along the normal within max_aperture
//    (sandwiched: a slab through a pore network runs on into void, a crack has host right
//    above and below); of the voxels within 1.5 voxels of the best plane, the cluster with most
//    sandwiched voxels (the plane refitted to that cluster's own sandwiched voxels while that
//    walls more of it, cut_refits: pore walls elsewhere in a merged group tilt the first fit off
//    the crack) is a crack when it has ≥ cut_min_voxels voxels, ≥ cut_min_sandwiched of
//    them sandwiched, sheet aspect ≥ cut_min_aspect, one sheet where it lies — with grey, one
//    dark valley across its plane (the smoothed grey's mean curvature along the cut's normal
//    ≥ cut_min_valley × contrast per voxel² and ≥ cut_valley_ratio times its largest mean
//    curvature in the plane: a slab through pores or curved compaction films meets dark
//    structures at every angle), or ≥ cut_min_flat of its voxels with void within 3 voxels
//    whose principal plane lies within 25° of the cut — and, with grey, a mean grey ≥
//    cut_min_dip × contrast below the host level (noise ridges of the grey branch sit at host
//    level). A long cut (aspect ≥ cut_long_aspect) judged by its valley needs only
//    cut_long_min_sandwiched sandwiched and a valley ratio of cut_long_valley_ratio (a crack
//    through a thick pore). Each plane tried is removed, up to cut_max_planes per group. Of
//    groups with no cut crack, the planes that pass as pieces (≥ min_voxels, aspect ≥ 2, sandwiched and dark) are
//    fragments; coplanar fragments of different groups within bridge_max_um, with no intact host
//    between them (with grey, host beside a solid brighter than the host counts as that solid: a
//    crack along a particle's surface), are joined and judged as one cut crack (the valley by its
//    depth alone), or, short only of the cut aspect, as one lone fragment (below;
//    joined_judged_as_lone); cracks accepted apart are joined to each other by the same tests
//    (bridge_accepted: two halves of one disc that were split into two groups). With grey, a
//    fragment no other joined that passes every test of a cut crack but
//    its aspect (≥ min_aspect only) is one when its valley runs on past its void: the host on its
//    plane 2–5 voxels beyond it dips across the plane by ≥ cut_min_beyond × contrast (the rest of
//    a disc whose opening the PSF lifted above the threshold; a pore ends at intact host).
// 6. Facets (facets.h; with grey, find_facets): in a host brighter than another solid (AM beside
//    SE), openings about one voxel wide that thresholds label as that solid — non-host voxels
//    walled on both sides by one particle of the closed host and darker than the walls by a
//    noise-aware margin, a plane of them per particle deep enough inside it — are cracks of their
//    own where no crack was detected yet.
// Crack ids 1..count follow the raster order (x fastest) of each crack's first voxel.
#pragma once

#include <cstdint>
#include <vector>

#include "core/volume.h"
#include "metrics/cracks/facets.h"
#include "metrics/cracks/sheetness.h"

namespace vp {

struct CrackDetectionOptions {
  std::vector<int> host_labels;  // phase labels of the host (e.g. the electrolyte)
  std::vector<int> void_labels;  // labels of void (pore role)
  double max_aperture_um = 0;    // ≤ 0: 4 voxels of the coarsest spacing
  double closing_radius_um = 0;  // ≤ 0: max_aperture/2 + one coarsest voxel
  double min_aspect = 4;
  index_t min_voxels = 20;
  index_t min_grey_voxels = 200;  // the same for a component found mostly in the grey image
  bool split_touching = true;     // split an accepted crack into the planes of touching cracks
  // A split piece whose voxels spread across its plane wider than max_aperture (as a uniform slab)
  // is cut as a rejected group (step 4b) instead of accepted: cracks are planar discs.
  bool planar_sheets = true;
  int join_gap_vox = 3;  // coplanar pieces up to this many voxels apart are one sheet (0: off)
  // Coplanar pieces farther apart, up to this far (about one active-material particle across),
  // are one crack when what lies between them is no intact host: the particle that interrupts
  // the crack, or host as dark as a half-open crack (0: off).
  double bridge_max_um = 12;
  // Groups failing the sheet test: crack planes cut out of them (0 planes: off), each walled by
  // host along its normal at ≥ cut_min_sandwiched of its voxels, ≥ cut_min_voxels voxels.
  int cut_max_planes = 8;
  index_t cut_min_voxels = 200;
  double cut_min_sandwiched = 0.7;
  double cut_min_flat = 0.6;  // share of a cut crack's voxels whose local void is flat in its plane
  // With grey, or else the flatness: a cut crack is one grey valley across its plane — the mean
  // curvature across it ≥ cut_min_valley × contrast per finest voxel² and ≥ cut_valley_ratio
  // times the largest mean curvature along it (0: the flatness alone).
  double cut_min_valley = 0.15;
  double cut_valley_ratio = 2;
  double cut_min_aspect = 6;  // a slab cut 3 voxels thick is flat whatever it cuts: ask for more
  // With grey and the valley test, a long cut (sheet aspect ≥ cut_long_aspect; 0: off) passes with
  // ≥ cut_long_min_sandwiched of its voxels sandwiched and a valley ≥ cut_long_valley_ratio times
  // the curvature along it: a crack through a thick pore group has voxels inside the pore (void on
  // along its normal) and the pore curves the grey along its plane; the valley's depth is unchanged.
  double cut_long_aspect = 12;
  double cut_long_min_sandwiched = 0.6;
  double cut_long_valley_ratio = 1.5;
  double cut_min_dip = 0.25;  // with grey: a cut crack's mean grey ≥ this × contrast below the host
  // With grey: a fragment no other joined, short only of cut_min_aspect (≥ min_aspect), is a crack
  // when the host on its plane 2–5 voxels beyond it still dips across the plane by ≥ this × contrast
  // (the crack runs on where the PSF lifted it above the threshold; 0: off).
  double cut_min_beyond = 0.3;
  // A cut plane is refitted to the walled voxels of the cluster it picked (of ≥ cut_min_voxels), up
  // to this many times while the refit walls more of its cluster (0: off), when ≥ cut_refit_outside
  // of the walled voxels it was first fitted to lie outside that cluster: the walls of other pores
  // of a merged group tilt it off the crack's plane.
  int cut_refits = 3;
  double cut_refit_outside = 0.2;
  // Cracks accepted apart (whole, split or cut) are joined to each other as fragments are to them:
  // coplanar, no intact host between, and the joined set passing a cut crack's tests as one — the
  // two halves of a disc that a particle or the PSF split into two groups, each a crack alone.
  bool bridge_accepted = true;
  // A joined set of fragments short only of cut_min_aspect (≥ min_aspect) is a crack when it passes
  // the tests of a lone fragment (lone fragments: valley with its ratio, valley beyond its void ≥
  // cut_min_beyond); otherwise only a lone fragment is judged so.
  bool joined_judged_as_lone = true;
  // Grey-image branch (used only when a grey image is passed).
  double sheet_threshold = 0.5;
  SheetnessOptions sheetness;  // contrast ≤ 0: host median − void median of the grey
  // Facets (facets.h): with grey, openings about one voxel wide inside a host brighter than
  // another solid, which thresholds label as that solid (AM intergranular cracks).
  bool find_facets = true;
  FacetOptions facets;
};

struct CrackDetection {
  Volume<std::uint32_t> ids;  // 0 = no crack, 1..count
  std::uint32_t count = 0;
  double max_aperture_um = 0;  // the values actually used
  double closing_radius_um = 0;
  double contrast = 0;               // grey contrast used for sheetness (0 without grey)
  index_t void_voxels = 0;           // labelled void
  index_t sheet_voxels = 0;          // added from the grey sheet response
  index_t enclosed_voxels = 0;       // void inside the closed host
  index_t thin_voxels = 0;           // of those, thin enough
  std::uint32_t rejected_small = 0;  // components below min_voxels
  std::uint32_t rejected_shape = 0;  // components not sheet-like
  std::uint32_t cut_cracks = 0;      // cracks cut out of rejected components
  index_t facet_voxels = 0;          // facet candidates (facets.h, step 2)
  std::uint32_t facet_cracks = 0;    // facets accepted as cracks
};

// labels: phase labels; grey: optional, same dims. Throws InputError on dims mismatch, empty
// host or void label lists, or non-positive thresholds.
CrackDetection detect_cracks(const Volume<std::uint8_t>& labels, const Volume<float>* grey,
                             const CrackDetectionOptions& options);

}  // namespace vp
