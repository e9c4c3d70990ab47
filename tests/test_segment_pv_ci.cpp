// The 95 % interval of porosity_pv (issue 11: "say how sure it is") on phantoms with exact truth:
// narrow where the estimate is good, covering where it is not (docs/segmentation-studies.md, "How wide
// the porosity_pv interval is, and why"). Tuning seeds only (1, 85–87, 79, 127: see each test); the
// held-out check is the bench (bench_segment_pv_ci --seeds 71-73, 88-90, 130-132).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "filters/segment/segmenter.h"
#include "test_composite_scan.h"

using namespace vp;
using vp::testing::composite_scan;
using vp::testing::CompositeScan;

namespace {

// `auto` with three classes on a composite scan: its partial-volume result.
PartialVolumeResult three_class_pv(const CompositeScan& scan, SegmentOptions o = {}) {
  o.classes = 3;
  return *segment_grey(scan.grey, o).partial_volume;
}

// The porosity_pv interval holds the truth and tracks the error: under twice its size.
void expect_interval_covers_and_tracks(const PartialVolumeResult& pv, const CompositeScan& scan) {
  const double truth = scan.phantom.truth.volume_fraction.at("pore");
  const double err = pv.fraction_pv[0] - truth, ci = pv.fraction_pv_ci95[0];
  EXPECT_LE(std::fabs(err), ci) << "porosity_pv " << pv.fraction_pv[0] << " ± " << ci << ", truth " << truth;
  EXPECT_LT(ci, 2 * std::fabs(err)) << "porosity_pv " << pv.fraction_pv[0] << " ± " << ci << ", truth " << truth;
}

}  // namespace

// A sharp scan (96³, 50 MPa, SNR 8, PSF σ 0.7): porosity_pv is within 0.01 of the truth, every
// class has pure voxels, and their means are the generator's grey levels within 1 % of the
// contrast, where the histogram fit's pore and AM means are off by 3× more — the fit's bias, not
// an uncertainty of the end members. The half-width covers the error and stays below 0.03 (six
// times the 0.005 accuracy target); it was 0.095, mostly the fixed middle share counted
// as uncertain by its own size.
TEST(PartialVolumeInterval, NarrowWhereTheEstimateIsGood) {
  const CompositeScan scan = composite_scan(1, 50, 8, 0.7, 96);
  SegmentOptions o;
  o.classes = 3;
  const SegmentResult r = segment_grey(scan.grey, o);
  const PartialVolumeResult& pv = *r.partial_volume;
  const double truth = scan.phantom.truth.volume_fraction.at("pore");
  const double err = pv.fraction_pv[0] - truth, ci = pv.fraction_pv_ci95[0];
  EXPECT_LT(std::fabs(err), 0.01);
  EXPECT_LE(std::fabs(err), ci) << "porosity_pv " << pv.fraction_pv[0] << " ± " << ci << ", truth " << truth;
  EXPECT_LT(ci, 0.03) << "error " << err;
  const double level[3] = {scan.imaging.grey_level("pore"), scan.imaging.grey_level("se"),
                           scan.imaging.grey_level("am")};
  const double contrast = level[2] - level[0];
  for (int c = 0; c < 3; ++c) {
    ASSERT_GE(pv.pure_voxels[c], 200) << "class " << c;
    EXPECT_LT(std::fabs(pv.means[c] - level[c]), 0.01 * contrast) << "class " << c;
  }
  for (int c : {0, 2})
    EXPECT_GT(std::fabs(r.auto_fit->mixture.means[c] - level[c]), 3 * std::fabs(pv.means[c] - level[c]))
        << "class " << c;
}

// 10 MPa under a wide PSF (96³, SNR 12, PSF σ 1.5): the SE grains have no pure voxels, their
// histogram end member is pulled ~1 200 grey dark by the blends, and porosity_pv reads 0.065 low.
// The interval covers it (it was ± 0.052) and is not much wider than the error.
// The fit's own end member is read with the refit off (the refit, on by default, moves it and
// carries its own term); with the default the interval must still cover the truth.
TEST(PartialVolumeInterval, CoversTheTenMpaScanUnderAWidePsf) {
  const CompositeScan scan = composite_scan(1, 10, 12, 1.5, 96);
  const double truth = scan.phantom.truth.volume_fraction.at("pore");
  SegmentOptions fit_only;
  fit_only.partial_volume.refit_end_members = false;
  const PartialVolumeResult pv = three_class_pv(scan, fit_only);
  EXPECT_LT(pv.pure_voxels[1], 200);
  const double err = pv.fraction_pv[0] - truth;
  const double ci = pv.fraction_pv_ci95[0];
  EXPECT_LE(std::fabs(err), ci) << "porosity_pv " << pv.fraction_pv[0] << " ± " << ci;
  EXPECT_LT(ci, 2 * std::fabs(err));
  const PartialVolumeResult refit = three_class_pv(scan);
  EXPECT_LT(std::fabs(refit.fraction_pv[0] - truth), std::fabs(err));
  EXPECT_LE(std::fabs(refit.fraction_pv[0] - truth), refit.fraction_pv_ci95[0])
      << "porosity_pv " << refit.fraction_pv[0] << " ± " << refit.fraction_pv_ci95[0];
  // The refitted end member no longer carries the fit-only blend term (a bound on the pull the
  // refit removed): with it the interval was 0.146, 1.7x the fit's own 0.087.
  EXPECT_LT(refit.fraction_pv_ci95[0], 1.5 * ci) << "refit ± " << refit.fraction_pv_ci95[0] << ", fit ± " << ci;
}

// A sharp PSF at 370 MPa (96³ seed 87, SNR 5, σ 0.7; tuning seed of docs/segmentation-studies.md, "The
// porosity_pv interval at a sharp PSF and where the SE end member is refitted"): the pore lies
// only in films thinner than the PSF (no pure pore voxels), and the unmixing reads part of them as
// SE: porosity_pv is 0.006 low. The interval was ± 0.0054 (pairing and middle share only); the
// hidden-film term covers it without making it wider than twice the error.
TEST(PartialVolumeInterval, CoversThePoreFilmsBelowASharpPsf) {
  const CompositeScan scan = composite_scan(87, 370, 5, 0.7, 96);
  const PartialVolumeResult pv = three_class_pv(scan);
  EXPECT_LT(pv.pure_voxels[0], 200);
  expect_interval_covers_and_tracks(pv, scan);
}

// Where the SE end member is refitted (96³ seed 85, SNR 8, σ 1.5, 10 MPa: no pure SE voxels, the
// refit moves it ~1 100 grey brighter) the interval covers the truth and tracks the error: the
// refitted end member and the fit's mean the kept classes are unmixed with move together. Counted
// apart, the fit's whole uncertainty went through the grey-mean split (± 0.17 for an error of 0.04).
TEST(PartialVolumeInterval, TracksTheErrorWhereTheSeEndMemberIsRefitted) {
  const CompositeScan scan = composite_scan(85, 10, 8, 1.5, 96);
  const PartialVolumeResult pv = three_class_pv(scan);
  ASSERT_GT(pv.end_member_shift[1], 0) << "the refit did not act";
  expect_interval_covers_and_tracks(pv, scan);
}

// 10 MPa under a wide PSF at SNR 5 (96³ seed 79, a tuning seed of the refit's pure-share rule): the
// SE has 232 "pure" voxels of ~459 000 labelled (0.05 %), enough to replace the fit's end member
// (≥ 200) but only the noise tail of blends the pure window admits, 780 grey dark. Without the
// refit porosity_pv reads −0.066 and the truth is outside its interval (± 0.049); the rule
// (kRefitMinPureShare of partial_volume.cpp) refits that end member, which moves it brighter:
// the error shrinks a little. What is left (−0.062) is the pairing of pore|AM blends (−0.054 with
// the generator's end members), which the pairing term at the fixed 8 % share (± 0.042) did not cover: since
// the refitted and the kept classes' end members are varied together (TracksTheError... above)
// the interval was ± 0.062 here, the error's size, so coverage is not asserted
// (docs/segmentation-studies.md, "The 10 MPa σ 1.5 error taken apart"; the share now grows with the
// PSF: PairingTermCoversThePairingBiasUnderAWidePsf below).
TEST(PartialVolumeInterval, RefitsAnEndMemberWhosePureVoxelsAreATinyShareOfItsLabels) {
  const CompositeScan scan = composite_scan(79, 10, 5, 1.5, 96);
  const double truth = scan.phantom.truth.volume_fraction.at("pore");
  const PartialVolumeResult pv = three_class_pv(scan);
  ASSERT_GE(pv.pure_voxels[1], 200);
  EXPECT_LT(static_cast<double>(pv.pure_voxels[1]), 0.001 * pv.fraction_labels[1] * scan.grey.size());
  EXPECT_GT(pv.end_member_shift[1], 0) << "the SE end member is refitted";
  const double err = pv.fraction_pv[0] - truth;
  // Without the refit the SE keeps its pure-voxel mean, as it did without the share rule.
  SegmentOptions without_refit;
  without_refit.partial_volume.refit_end_members = false;
  const PartialVolumeResult kept = three_class_pv(scan, without_refit);
  EXPECT_EQ(kept.end_member_shift[1], 0);
  const double kept_err = kept.fraction_pv[0] - truth;
  EXPECT_GT(std::fabs(kept_err), kept.fraction_pv_ci95[0]) << "the pure-voxel mean's interval misses";
  EXPECT_LT(std::fabs(err), std::fabs(kept_err));
}

// 10 MPa under a wide PSF at SNR 5 (96³ tuning seed 127 of docs/segmentation-studies.md, "The pairing
// share that follows the PSF"): with the generator's three end members the same unmixing sums read
// porosity 0.050 low — the pairing of pore|AM blends at SE grey, a bias of the geometry under the
// PSF that no end-member term carries. The pairing term must cover it on its own: at the fixed 8 %
// of the ambiguity (0.24 of the volume) it was ± 0.038; the share grown with the estimated PSF σ
// (1.57 voxels) makes it ± 0.052. The whole interval holds the truth.
TEST(PartialVolumeInterval, PairingTermCoversThePairingBiasUnderAWidePsf) {
  const CompositeScan scan = composite_scan(127, 10, 5, 1.5, 96);
  const PartialVolumeResult pv = three_class_pv(scan);
  const double truth = scan.phantom.truth.volume_fraction.at("pore");
  const std::vector<double> level{scan.imaging.grey_level("pore"), scan.imaging.grey_level("se"),
                                  scan.imaging.grey_level("am")};
  const double pairing_bias = unmixed_fractions(pv.unmixing, level)[0] - truth;
  const double pairing_ci = 1.96 * pv.pairing_share * pv.pairing_ambiguity[0];
  EXPECT_LE(std::fabs(pairing_bias), pairing_ci) << "pairing term ± " << pairing_ci << ", share " << pv.pairing_share;
  const double err = pv.fraction_pv[0] - truth, ci = pv.fraction_pv_ci95[0];
  EXPECT_LE(std::fabs(err), ci) << "porosity_pv " << pv.fraction_pv[0] << " ± " << ci << ", truth " << truth;
}
