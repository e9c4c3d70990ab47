// Pore films along AM|SE faces from a per-face profile fit (issue 11 items 5 and 6).
//
// A pore film pressed between the active material (brightest class) and the electrolyte (middle
// class) is, under the PSF, a dark dip beside AM's edge that the labels read as SE: it is not a
// valley (AM's side is brighter), so the thin-pore rule misses it, and the contact fraction reads
// it as contact. For each axis face of an AM voxel whose neighbour is labelled SE, the grey along
// that axis is fitted, by least squares with the scan's end members, noise σ and PSF, by
//   step: AM | SE, the surface at a free position t0, and
//   film: AM | pore (width w) | SE, t0 and w free,
// each blurred by the PSF along the line (σ along the axis = the PSF σ along the surface normal
// over |n_axis|, the normal from the smoothed grey's gradient). The film model nests the step
// (w → 0), so under the step and Gaussian noise of σ_n, ΔRSS/σ_n² is asymptotically ½χ²₀ + ½χ²₁
// (one extra parameter on the boundary of its range). A film is accepted when ΔRSS/σ_n² exceeds
// the χ²₁ quantile at 2α (α the false-alarm rate per face), and the SE voxels whose centres lie
// inside the fitted film become pore.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/volume.h"

namespace vp {

struct FilmProfileOptions {
  // α: probability that a film-free face is read as a film. Each false film takes its face out of
  // contact, so false alarms alone lower the contact fraction by ≈ α·C (C ≤ 1): 0.01 keeps that
  // under a third of the 0.03 the contact fraction is asked to meet (issue 11).
  double false_alarm = 0.01;
  int inside_samples = 3;   // AM voxels sampled inward of the face (fewer where AM is thinner)
  int outside_samples = 5;  // SE voxels sampled outward (fewer where the SE run is shorter)
  double max_width = 3.5;   // widest film fitted, voxels along the axis
  // Faces whose normal is further than this from their axis (|n_axis| below it) are not fitted:
  // the axis line then runs along the surface, across voxels of other depths.
  double min_axis_cosine = 0.5;
  // Where a film is accepted and its fitted surface t0 lies outward of the labelled face, the SE
  // voxels between (centres < t0) become AM again: the film had darkened AM's edge voxel.
  bool restore_am = false;
  // Keep every fitted face in FilmProfileResult::faces (diagnostics: bench_segment_contact --films).
  bool record_faces = false;
};

// One fitted face (record_faces): the AM voxel, the axis and sense of the line, the fit.
struct FilmFace {
  index_t am_voxel = 0;  // x + nx (y + ny z)
  int axis = 0, dir = 1;
  bool film = false;
  double t0 = 0, width = 0;  // the best film's surface and width, voxels from the labelled face
  double statistic = 0;      // ΔRSS/σ_n², step minus film
};

struct FilmProfileResult {
  std::int64_t faces_fitted = 0;        // AM|SE axis faces whose profile was fitted
  std::int64_t films_accepted = 0;      // of them, read as AM|pore|SE
  std::int64_t voxels_relabelled = 0;   // SE voxels now labelled pore
  std::int64_t am_voxels_restored = 0;  // SE voxels now labelled AM (restore_am)
  double threshold = 0;                 // ΔRSS/σ_n² above which a film is accepted
  std::vector<FilmFace> faces;          // record_faces: every fitted face, in index order
};

// {faces_fitted, films_accepted, voxels_relabelled, am_voxels_restored, threshold}: `segment --json`
// and the segment stage's details.
nlohmann::json pore_films_json(const FilmProfileResult& r);

// ΔRSS/σ_n² above which a film is accepted at false-alarm rate α per face: the χ²₁ quantile at 2α.
double film_threshold(double false_alarm);

// Relabels, in `labels` (0 pore, 1 SE, 2 AM: three classes ascending in grey), the SE voxels
// inside accepted pore films. `means` are the three end members, `psf_sigma_vox` the PSF σ per
// axis, `noise_sigma` the scan's per-voxel noise σ. Decisions read a copy of the labels, so they
// do not depend on the visiting order; the result is the same for any thread count.
FilmProfileResult relabel_pore_films(const Volume<float>& grey, Volume<std::uint8_t>& labels,
                                     const std::vector<double>& means, const std::array<double, 3>& psf_sigma_vox,
                                     double noise_sigma, const FilmProfileOptions& options = {});

}  // namespace vp
