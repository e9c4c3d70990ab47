// itk_bridge.h: the ITK view shares the volume's buffer (no copy) with its spacing and origin,
// and filter results come back into Volumes with the right geometry.
#include <gtest/gtest.h>

#include <itkBinaryThresholdImageFilter.h>
#include <itkRegionOfInterestImageFilter.h>

#include "filters/io/itk_bridge.h"

using namespace vp;

TEST(ItkBridge, ViewSharesTheBufferAndGeometry) {
  Volume<float> v({5, 4, 3}, {0.5, 0.25, 2.0});
  v.origin_um = {1, 2, 3};
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  auto image = itk_view(v);
  EXPECT_EQ(image->GetBufferPointer(), v.data());  // zero-copy
  EXPECT_EQ(image->GetLargestPossibleRegion().GetSize()[0], 5u);
  EXPECT_EQ(image->GetLargestPossibleRegion().GetSize()[2], 3u);
  EXPECT_DOUBLE_EQ(image->GetSpacing()[1], 0.25);
  EXPECT_DOUBLE_EQ(image->GetOrigin()[2], 3.0);
  // ITK index (x, y, z) is our (x, y, z).
  EXPECT_EQ(image->GetPixel({{4, 3, 2}}), v(4, 3, 2));
  image->SetPixel({{1, 2, 0}}, -7.0f);
  EXPECT_EQ(v(1, 2, 0), -7.0f);
  image = nullptr;  // the view does not own the buffer: the volume stays valid
  EXPECT_EQ(v(4, 3, 2), 59.0f);
}

TEST(ItkBridge, FilterOutputsComeBackAsVolumes) {
  Volume<std::uint16_t> v({6, 5, 4}, {1, 1, 3});
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint16_t>(i);
  v.provenance.path = "/data/scan.tif";
  using Threshold = itk::BinaryThresholdImageFilter<ItkImage3<std::uint16_t>, ItkImage3<std::uint8_t>>;
  auto threshold = Threshold::New();
  const Volume<std::uint16_t>& input = v;  // filters take read-only views of const volumes
  threshold->SetInput(itk_view(input));
  threshold->SetLowerThreshold(60);
  threshold->SetInsideValue(1);
  threshold->SetOutsideValue(0);
  threshold->Update();
  // Into an existing volume: geometry and provenance stay the volume's.
  Volume<std::uint8_t> mask = v.like<std::uint8_t>(v.dims());
  copy_from_itk(threshold->GetOutput(), mask);
  for (index_t i = 0; i < v.size(); ++i) ASSERT_EQ(mask[i], i >= 60 ? 1 : 0);
  EXPECT_EQ(mask.provenance.path, "/data/scan.tif");
  Volume<std::uint8_t> wrong({2, 2, 2});
  EXPECT_THROW(copy_from_itk(threshold->GetOutput(), wrong), std::invalid_argument);
  // A sub-region comes back with its origin moved by index x spacing.
  using Roi = itk::RegionOfInterestImageFilter<ItkImage3<std::uint16_t>, ItkImage3<std::uint16_t>>;
  auto roi = Roi::New();
  roi->SetInput(itk_view(v));
  ItkImage3<std::uint16_t>::RegionType region({{1, 2, 1}}, {{3, 2, 2}});
  roi->SetRegionOfInterest(region);
  roi->Update();
  const Volume<std::uint16_t> out = volume_from_itk<std::uint16_t>(roi->GetOutput());
  ASSERT_EQ(out.dims(), (Dims{3, 2, 2}));
  EXPECT_EQ(out(0, 0, 0), v(1, 2, 1));
  EXPECT_EQ(out(2, 1, 1), v(3, 3, 2));
  EXPECT_DOUBLE_EQ(out.spacing_um[2], 3.0);
  EXPECT_DOUBLE_EQ(out.origin_um[0] + out.origin_um[1] + out.origin_um[2], 1 + 2 + 3.0);
}
