// Slice PNGs for the report gallery: grey with percentile contrast, label overlays, fields.
//
// A slice of plane xy is an image with rows = y and columns = x (row 0 = y 0 at the top);
// xz: rows = z, columns = x; yz: rows = z, columns = y. index is the position along the
// third axis (z for xy, y for xz, x for yz); a negative index means the middle slice.
// Anisotropic voxels are resampled so that image pixels are square in micrometres.
// Files are written atomically. Name them <what>_<plane>.png (grey_xy.png, labels_xz.png...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/volume.h"

namespace vp {

enum class Plane { xy, xz, yz };
std::string to_string(Plane p);              // "xy", "xz", "yz"
Plane parse_plane(const std::string& name);  // throws InputError
// The index of the middle slice of plane p (the default slice of each plane).
index_t middle_index(const Dims& d, Plane p);

// Grey values mapped linearly from their 0.5th..99.5th percentile (over the slice) to 0..255.
void write_slice_png(const AnyVolume& grey, Plane plane, index_t index, const std::string& path);
// The same without wrapping (copying) a typed volume into an AnyVolume; T is any volume type.
template <class T>
void write_slice_png(const Volume<T>& grey, Plane plane, index_t index, const std::string& path);

// Phase labels over grey: a fixed qualitative colour per label value (label_colour), blended
// with `alpha` over the grey slice (contrast as write_slice_png). grey may be null: the labels
// are drawn opaque.
void write_label_overlay_png(const AnyVolume* grey, const Volume<std::uint8_t>& labels, Plane plane, index_t index,
                             const std::string& path, double alpha = 0.45);
// Object ids (particles, cracks) over grey: a hashed colour per id, id 0 transparent.
void write_label_overlay_png(const AnyVolume* grey, const Volume<std::uint32_t>& ids, Plane plane, index_t index,
                             const std::string& path, double alpha = 0.6);
// The same with a typed grey volume (no AnyVolume copy); G is any volume type.
template <class G>
void write_label_overlay_png(const Volume<G>* grey, const Volume<std::uint8_t>& labels, Plane plane, index_t index,
                             const std::string& path, double alpha = 0.45);
template <class G>
void write_label_overlay_png(const Volume<G>* grey, const Volume<std::uint32_t>& ids, Plane plane, index_t index,
                             const std::string& path, double alpha = 0.6);

// A scalar field (potential, current density) in the viridis colour map, from range->first
// (dark blue) to range->second (yellow); by default the slice's finite minimum and maximum.
// Non-finite values are drawn black.
void write_field_png(const Volume<float>& field, Plane plane, index_t index, const std::string& path,
                     std::optional<std::pair<double, double>> range = std::nullopt);

// The one PNG writer of the project (libpng): 8-bit pixels in `height` rows that start
// `row_bytes` apart, one channel (grey) or three in OpenCV's order (blue, green, red), encoded
// as an 8-bit grey or RGB PNG (filter "sub", zlib level 1, run-length strategy: OpenCV's defaults).
enum class PngPixels { grey, bgr };
std::vector<std::uint8_t> encode_png(const std::uint8_t* pixels, int width, int height, std::size_t row_bytes,
                                     PngPixels layout);
// encode_png written atomically to path; throws InputError naming path when it cannot.
void write_png(const std::string& path, const std::uint8_t* pixels, int width, int height, std::size_t row_bytes,
               PngPixels layout);

// The palette behind the overlays, as 8-bit RGB.
struct Rgb {
  std::uint8_t r, g, b;
  bool operator==(const Rgb&) const = default;
};
Rgb label_colour(std::uint8_t label);  // fixed: 0 dark grey-blue, 1 orange, 2 blue, ...
Rgb id_colour(std::uint32_t id);       // hashed, bright; id 0 is not drawn

}  // namespace vp
