// Pore films along AM|SE faces from a per-face profile fit (filters/segment/film_profile.h): the
// film criterion's false-alarm rate on film-free faces is the one it is derived for, films of 2
// voxels under a σ = 1 PSF at SNR 8 are found and their voxels relabelled pore, and `auto` with
// pore_films reads a 10 MPa composite's contact fraction nearer the truth than without.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "filters/segment/film_profile.h"
#include "filters/segment/segmenter.h"
#include "metrics/interfaces.h"
#include "phantoms/phantom.h"
#include "test_composite_scan.h"

using namespace vp;
using vp::testing::composite_scan;
using vp::testing::CompositeScan;

namespace {

// AM for z < 12, then along x < 24 a pore film of `width` voxels (z in [12, 12 + width)), SE
// beyond; along x >= 24 SE directly on AM. Imaged by the CT model (σ 1 voxel, SNR 8).
struct PlanarScan {
  LabelVolume labels;
  phantom::ImagingSpec imaging;
  Volume<float> grey;
  std::vector<double> means;
};

PlanarScan planar_scan(int width, std::uint64_t seed) {
  PlanarScan s;
  const Dims d{48, 24, 28};
  static_cast<Volume<std::uint8_t>&>(s.labels) = Volume<std::uint8_t>(d);
  s.labels.phases = phantom::phase_table(false);
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x)
        s.labels(x, y, z) = z < 12                     ? phantom::kActive
                            : x < 24 && z < 12 + width ? phantom::kPore
                                                       : phantom::kElectrolyte;
  s.imaging.seed = seed;
  s.imaging.snr = 8;
  s.imaging.blur_sigma_vox = {1.0, 1.0, 1.0};
  const Volume<std::uint16_t> g16 = phantom::ct_image(s.labels, s.imaging);
  s.grey = g16.like<float>(d);
  for (index_t i = 0; i < s.grey.size(); ++i) s.grey[i] = g16[i];
  s.means = {s.imaging.grey_level("pore"), s.imaging.grey_level("se"), s.imaging.grey_level("am")};
  return s;
}

// The labels a blurred scan of this kind gets: the film read as SE.
Volume<std::uint8_t> film_read_as_se(const LabelVolume& truth) {
  Volume<std::uint8_t> l = truth;
  for (index_t i = 0; i < l.size(); ++i)
    if (l[i] == phantom::kPore) l[i] = phantom::kElectrolyte;
  return l;
}

double contact(const Volume<std::uint8_t>& labels, const PhaseTable& phases) {
  LabelVolume lv;
  static_cast<Volume<std::uint8_t>&>(lv) = labels;
  lv.phases = phases;
  return contact_area(lv).fraction;
}

}  // namespace

// The threshold is the χ²₁ quantile at 2α: ½ P(χ²₁ > c) = α.
TEST(SegmentFilms, ThresholdIsTheChiSquareQuantile) {
  EXPECT_NEAR(film_threshold(0.025), 1.959964 * 1.959964, 1e-4);
  EXPECT_NEAR(film_threshold(1e-3), 3.090232 * 3.090232, 1e-4);
  EXPECT_THROW(film_threshold(0.0), InputError);
}

// Film-free AM|SE faces (x >= 24, and every face of the film-free scan): the share read as films
// stays near α (here 1 %, so that a few hundred faces measure it); films of 2 voxels are found on
// nearly every face and their two voxels become pore, not more.
TEST(SegmentFilms, TwoVoxelFilmsFoundFilmFreeFacesAtTheFalseAlarmRate) {
  FilmProfileOptions o;
  o.false_alarm = 0.01;
  {
    const PlanarScan s = planar_scan(0, 3);
    Volume<std::uint8_t> l = s.labels;
    const FilmProfileResult r = relabel_pore_films(s.grey, l, s.means, {1, 1, 1}, s.imaging.noise_sigma(), o);
    EXPECT_EQ(r.faces_fitted, 48 * 24);
    EXPECT_LE(r.films_accepted, 0.03 * r.faces_fitted) << r.films_accepted << " of " << r.faces_fitted;
  }
  const PlanarScan s = planar_scan(2, 4);
  Volume<std::uint8_t> l = film_read_as_se(s.labels);
  const FilmProfileResult r = relabel_pore_films(s.grey, l, s.means, {1, 1, 1}, s.imaging.noise_sigma(), o);
  std::int64_t film_found = 0, film_faces = 0, false_films = 0, wrong = 0;
  const Dims d = l.dims();
  for (index_t y = 0; y < d.y; ++y)
    for (index_t x = 0; x < d.x; ++x) {
      const bool read = l(x, y, 12) == phantom::kPore;
      if (x < 24) ++film_faces, film_found += read && l(x, y, 13) == phantom::kPore;
      else false_films += read;
      for (index_t z = 14; z < d.z; ++z) wrong += l(x, y, z) != phantom::kElectrolyte;
    }
  EXPECT_GE(film_found, 0.9 * film_faces) << film_found << " of " << film_faces << "; " << r.films_accepted;
  EXPECT_LE(false_films, 0.03 * 24 * 24);
  EXPECT_LE(wrong, 0.1 * film_faces);  // a film fitted wider than 2.5 voxels takes the next SE voxel
  // Contact: the relabelled films take the film half of the AM face out of contact.
  EXPECT_NEAR(contact(l, s.labels.phases), contact(s.labels, s.labels.phases), 0.05);
}

// On a 10 MPa composite (σ 1, SNR 8) `auto`'s rules read contact well above the truth: the films
// along AM|SE faces read as SE. With pore_films the excess shrinks and the pore Dice does not fall.
// Measured on the rules' labels: on the default sweep's (contact +0.105) pore_films reads +0.113.
TEST(SegmentFilms, AutoWithPoreFilmsReadsContactNearerTheTruth) {
  const CompositeScan scan = composite_scan(1, 10, 8, 1.0, 64);
  SegmentOptions o;
  o.classes = 3;
  o.partial_volume.low_snr_sweep = false;
  const SegmentResult without = segment_grey(scan.grey, o);
  o.pore_films = true;
  const SegmentResult with = segment_grey(scan.grey, o);
  ASSERT_TRUE(with.pore_films.has_value());
  const double truth = scan.phantom.truth.contact_area_fraction;
  const double before = contact(without.labels, scan.phantom.labels.phases) - truth;
  const double after = contact(with.labels, scan.phantom.labels.phases) - truth;
  EXPECT_GT(before, 0.1);
  EXPECT_LT(after, before - 0.01) << "films " << with.pore_films->films_accepted << ", voxels "
                                  << with.pore_films->voxels_relabelled;
  EXPECT_NEAR(with.partial_volume->fraction_labels[0] - without.partial_volume->fraction_labels[0],
              static_cast<double>(with.pore_films->voxels_relabelled) / scan.grey.size(), 1e-12);
}

// A film darkens AM's edge voxel, so labels drawn from the grey lose it (the AM surface recedes by
// ≈ 0.73 w). With restore_am the fitted surface gives that voxel back to AM where a film is found.
TEST(SegmentFilms, RestoreAmGivesTheRecededEdgeVoxelBack) {
  const PlanarScan s = planar_scan(2, 5);
  Volume<std::uint8_t> l = film_read_as_se(s.labels);
  const Dims d = l.dims();
  for (index_t y = 0; y < d.y; ++y)
    for (index_t x = 0; x < d.x; ++x) l(x, y, 11) = phantom::kElectrolyte;
  FilmProfileOptions o;
  o.restore_am = true;
  const FilmProfileResult r = relabel_pore_films(s.grey, l, s.means, {1, 1, 1}, s.imaging.noise_sigma(), o);
  std::int64_t restored = 0, film = 0;
  for (index_t y = 0; y < d.y; ++y)
    for (index_t x = 0; x < 24; ++x) restored += l(x, y, 11) == phantom::kActive, film += l(x, y, 12) == phantom::kPore;
  EXPECT_GE(restored, 0.8 * 24 * 24) << r.films_accepted << " films, " << r.am_voxels_restored << " restored";
  EXPECT_GE(film, 0.8 * 24 * 24);
  // Where there is no film the receded voxel is left to the labels (restore_am acts on films only).
  std::int64_t restored_without_film = 0;
  for (index_t y = 0; y < d.y; ++y)
    for (index_t x = 24; x < d.x; ++x) restored_without_film += l(x, y, 11) == phantom::kActive;
  EXPECT_LE(restored_without_film, 0.05 * 24 * 24);
}

// record_faces keeps every fitted face with its fit: as many as were fitted, the films those whose
// statistic passes the threshold, in index order (the same for any thread count).
TEST(SegmentFilms, RecordedFacesAreTheFitsAndTheirDecisions) {
  const PlanarScan s = planar_scan(2, 4);
  Volume<std::uint8_t> l = film_read_as_se(s.labels);
  FilmProfileOptions o;
  o.record_faces = true;
  const FilmProfileResult r = relabel_pore_films(s.grey, l, s.means, {1, 1, 1}, s.imaging.noise_sigma(), o);
  ASSERT_EQ(static_cast<std::int64_t>(r.faces.size()), r.faces_fitted);
  std::int64_t films = 0, film_side = 0;
  for (std::size_t i = 0; i < r.faces.size(); ++i) {
    const FilmFace& f = r.faces[i];
    EXPECT_EQ(f.film, f.statistic > r.threshold) << i;
    films += f.film;
    film_side += f.film && f.am_voxel % 48 < 24;                // x < 24: the film half
    if (i > 0) EXPECT_LT(r.faces[i - 1].am_voxel, f.am_voxel);  // one face per AM voxel here (+z)
    EXPECT_EQ(f.axis, 2);
    EXPECT_EQ(f.dir, 1);
  }
  EXPECT_EQ(films, r.films_accepted);
  EXPECT_GE(film_side, 0.9 * 24 * 24);
  const FilmProfileResult unrecorded =
      relabel_pore_films(s.grey, l = film_read_as_se(s.labels), s.means, {1, 1, 1}, s.imaging.noise_sigma(), {});
  EXPECT_TRUE(unrecorded.faces.empty());
  EXPECT_EQ(unrecorded.films_accepted, r.films_accepted);
}

// A line holds at most 32 samples (inside + outside); more is refused with a message, not overrun.
TEST(SegmentFilms, MoreSamplesPerLineThanTheFitHoldsIsRefused) {
  const PlanarScan s = planar_scan(2, 4);
  Volume<std::uint8_t> l = film_read_as_se(s.labels);
  FilmProfileOptions o;
  o.outside_samples = 40;
  EXPECT_THROW(relabel_pore_films(s.grey, l, s.means, {1, 1, 1}, s.imaging.noise_sigma(), o), InputError);
  o.outside_samples = 1;
  EXPECT_THROW(relabel_pore_films(s.grey, l, s.means, {1, 1, 1}, s.imaging.noise_sigma(), o), InputError);
}
