// Zero-copy bridge between Volume<T> and itk::Image<T, 3>.
//
// ITK types live here only. Include this header from .cpp files that run ITK filters
// (segment, cracks, the ITK readers), never from another header: each ITK TU costs 10-40 s.
//
// Geometry: ITK spacing and origin carry our micrometres as-is (index (x, y, z) = ITK index
// (0, 1, 2)); direction is the identity.
#pragma once

#include <algorithm>

#include <itkImage.h>
#include <itkImportImageContainer.h>

#include "core/volume.h"

namespace vp {

template <class T>
using ItkImage3 = itk::Image<T, 3>;

// An itk::Image that shares the volume's buffer (no copy, does not own it). The volume must
// outlive the image and keep its size; filters that write in place write into the volume.
template <class T>
typename ItkImage3<T>::Pointer itk_view(Volume<T>& volume) {
  using Image = ItkImage3<T>;
  const Dims& d = volume.dims();
  typename Image::RegionType region;
  region.SetSize({{static_cast<itk::SizeValueType>(d.x), static_cast<itk::SizeValueType>(d.y),
                   static_cast<itk::SizeValueType>(d.z)}});
  auto image = Image::New();
  image->SetRegions(region);
  typename Image::SpacingType spacing;
  typename Image::PointType origin;
  for (unsigned a = 0; a < 3; ++a) {
    spacing[a] = volume.spacing_um[a];
    origin[a] = volume.origin_um[a];
  }
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  auto container = itk::ImportImageContainer<itk::SizeValueType, T>::New();
  container->SetImportPointer(volume.data(), static_cast<itk::SizeValueType>(d.count()),
                              /*LetContainerManageMemory=*/false);
  image->SetPixelContainer(container);
  return image;
}

// Read-only flavour for writers and filter inputs. ITK has no const images: the buffer is
// shared as non-const, so only pass the result to filters that do not run in place.
template <class T>
typename ItkImage3<T>::ConstPointer itk_view(const Volume<T>& volume) {
  return itk_view(const_cast<Volume<T>&>(volume)).GetPointer();
}

// Copies an ITK image's buffered region into a new Volume (spacing and origin from the image).
template <class T>
Volume<T> volume_from_itk(const ItkImage3<T>* image) {
  const auto region = image->GetBufferedRegion();
  const auto size = region.GetSize();
  Volume<T> out(Dims{static_cast<index_t>(size[0]), static_cast<index_t>(size[1]), static_cast<index_t>(size[2])});
  for (unsigned a = 0; a < 3; ++a) {
    out.spacing_um[a] = image->GetSpacing()[a];
    out.origin_um[a] = image->GetOrigin()[a] + region.GetIndex()[a] * image->GetSpacing()[a];
  }
  std::copy_n(image->GetBufferPointer(), out.size(), out.data());
  return out;
}

// Copies an ITK image's voxels into an existing volume of the same size (keeps the volume's
// spacing, origin and provenance): the usual end of an ITK filter run on itk_view(volume).
template <class T>
void copy_from_itk(const ItkImage3<T>* image, Volume<T>& volume) {
  const auto size = image->GetBufferedRegion().GetSize();
  if (static_cast<index_t>(size[0]) != volume.dims().x || static_cast<index_t>(size[1]) != volume.dims().y ||
      static_cast<index_t>(size[2]) != volume.dims().z)
    throw std::invalid_argument("copy_from_itk: image size differs from the volume " + to_string(volume.dims()));
  std::copy_n(image->GetBufferPointer(), volume.size(), volume.data());
}

}  // namespace vp
