// Detection of holey sheets: a crack only partly labelled as void (the PSF lifts much of a
// two-voxel opening above the threshold) falls apart into pieces; coplanar pieces are judged
// as one sheet, while stacked parallel cracks stay apart.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "metrics/cracks/detection.h"

namespace vp {
namespace {

constexpr std::uint8_t kPore = 0, kSe = 1;

CrackDetectionOptions se_options() {
  CrackDetectionOptions o;
  o.host_labels = {kSe};
  o.void_labels = {kPore};
  return o;
}

// A disc two voxels thick (z = zc, zc + 1) of radius r, with host gaps one voxel wide every
// `period` voxels along x and y: pieces of (period − 1)² × 2 voxels.
void holey_disc(Volume<std::uint8_t>& labels, index_t zc, double r, index_t period) {
  const Dims d = labels.dims();
  for (index_t z = zc; z < zc + 2; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x)
        if (std::hypot(x + 0.5 - d.x / 2.0, y + 0.5 - d.y / 2.0) < r && x % period && y % period)
          labels(x, y, z) = kPore;
}

TEST(CrackDetection, HoleySheetIsOneCrack) {
  Volume<std::uint8_t> labels({48, 48, 32}, {0.5, 0.5, 0.5}, kSe);
  holey_disc(labels, 15, 18, 6);  // pieces of 5 × 5 × 2 voxels: too compact to pass alone
  index_t planted = 0;
  for (std::uint8_t l : labels.storage()) planted += l == kPore;
  CrackDetectionOptions o = se_options();
  o.join_gap_vox = 0;
  EXPECT_EQ(detect_cracks(labels, nullptr, o).count, 0u);  // each piece alone is no sheet
  const CrackDetection det = detect_cracks(labels, nullptr, se_options());
  ASSERT_EQ(det.count, 1u);
  index_t found = 0;
  for (std::uint32_t id : det.ids.storage()) found += id == 1;
  EXPECT_EQ(found, planted);
}

TEST(CrackDetection, StackedParallelCracksStayApart) {
  Volume<std::uint8_t> labels({48, 48, 32}, {0.5, 0.5, 0.5}, kSe);
  holey_disc(labels, 10, 18, 6);
  holey_disc(labels, 15, 18, 6);  // three host voxels between the two sheets
  const CrackDetection det = detect_cracks(labels, nullptr, se_options());
  ASSERT_EQ(det.count, 2u);
  for (index_t z = 0; z < 32; ++z)
    for (index_t y = 0; y < 48; ++y)
      for (index_t x = 0; x < 48; ++x)
        if (labels(x, y, z) == kPore) {
          ASSERT_EQ(det.ids(x, y, z), z < 13 ? 1u : 2u) << x << "," << y << "," << z;
        }
}

}  // namespace
}  // namespace vp
