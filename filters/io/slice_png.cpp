// Slice PNGs: cut a plane into an OpenCV matrix, resample to square micrometre pixels, colour,
// encode with libpng (OpenCV's imgcodecs would map GDAL and ~75 more libraries into every
// process: 25 MB of resident memory), write atomically.
#include "filters/io/slice_png.h"

#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <fstream>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace vp {

std::string to_string(Plane p) {
  switch (p) {
    case Plane::xy: return "xy";
    case Plane::xz: return "xz";
    case Plane::yz: return "yz";
  }
  return "?";
}

Plane parse_plane(const std::string& name) {
  if (name == "xy") return Plane::xy;
  if (name == "xz") return Plane::xz;
  if (name == "yz") return Plane::yz;
  throw InputError("unknown plane '" + name + "': expected xy, xz or yz");
}

index_t middle_index(const Dims& d, Plane p) {
  switch (p) {
    case Plane::xy: return d.z / 2;
    case Plane::xz: return d.y / 2;
    case Plane::yz: return d.x / 2;
  }
  return 0;
}

namespace {

// libpng's write struct and info, destroyed together.
struct PngWriter {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  ~PngWriter() { png_destroy_write_struct(&png, &info); }
};

void append_png_bytes(png_structp png, png_bytep data, png_size_t size) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + size);
}

// libpng reports an error by longjmp back here: no object with a destructor lives in this frame.
bool encode_rows(const PngWriter& w, png_bytepp rows, int width, int height, PngPixels layout) {
  if (setjmp(png_jmpbuf(w.png))) return false;
  png_set_filter(w.png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
  png_set_compression_level(w.png, Z_BEST_SPEED);
  png_set_compression_strategy(w.png, Z_RLE);
  png_set_IHDR(w.png, w.info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               layout == PngPixels::bgr ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
  png_write_info(w.png, w.info);
  if (layout == PngPixels::bgr) png_set_bgr(w.png);
  png_write_image(w.png, rows);
  png_write_end(w.png, w.info);
  return true;
}

}  // namespace

std::vector<std::uint8_t> encode_png(const std::uint8_t* pixels, int width, int height, std::size_t row_bytes,
                                     PngPixels layout) {
  if (width <= 0 || height <= 0)
    throw InputError("PNG of " + std::to_string(width) + " x " + std::to_string(height) +
                     " pixels: expected at least 1 x 1");
  std::vector<png_bytep> rows(static_cast<std::size_t>(height));
  for (std::size_t r = 0; r < rows.size(); ++r) rows[r] = const_cast<png_bytep>(pixels + r * row_bytes);
  std::vector<std::uint8_t> bytes;
  const PngWriter w;
  if (!w.info) throw std::bad_alloc();
  png_set_write_fn(w.png, &bytes, append_png_bytes, nullptr);
  if (!encode_rows(w, rows.data(), width, height, layout)) throw InputError("PNG encoding failed (libpng)");
  return bytes;
}

void write_png(const std::string& path, const std::uint8_t* pixels, int width, int height, std::size_t row_bytes,
               PngPixels layout) {
  const std::vector<std::uint8_t> bytes = encode_png(pixels, width, height, row_bytes, layout);
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw InputError(path + ": cannot write");
  });
}

namespace {

// Image axes of a plane: (column axis, row axis, normal axis).
std::array<int, 3> plane_axes(Plane p) {
  switch (p) {
    case Plane::xy: return {0, 1, 2};
    case Plane::xz: return {0, 2, 1};
    case Plane::yz: return {1, 2, 0};
  }
  return {0, 1, 2};
}

index_t checked_index(const Dims& d, Plane p, index_t index, const std::string& path) {
  const int normal = plane_axes(p)[2];
  if (index < 0) return middle_index(d, p);
  if (index >= d[normal])
    throw InputError(path + ": slice " + std::to_string(index) + " of plane " + to_string(p) + " is outside " +
                     to_string(d));
  return index;
}

// The slice as a matrix of OpenCV type `cv_type`, converting each voxel with f.
template <class T, class M, class F>
cv::Mat cut(const Volume<T>& v, Plane p, index_t index, int cv_type, F f) {
  const auto ax = plane_axes(p);
  const Dims& d = v.dims();
  const index_t cols = d[ax[0]], rows = d[ax[1]];
  cv::Mat m(static_cast<int>(rows), static_cast<int>(cols), cv_type);
  for (index_t r = 0; r < rows; ++r) {
    M* out = m.ptr<M>(static_cast<int>(r));
    for (index_t c = 0; c < cols; ++c) {
      index_t i[3];
      i[ax[0]] = c;
      i[ax[1]] = r;
      i[ax[2]] = index;
      out[c] = f(v(i[0], i[1], i[2]));
    }
  }
  return m;
}

// Scales an image so that each pixel is square: the finer of the two spacings wins.
cv::Mat square_pixels(const cv::Mat& m, const Vec3& spacing, Plane p, int interpolation) {
  const auto ax = plane_axes(p);
  const double su = spacing[ax[0]], sv = spacing[ax[1]];
  if (std::abs(su - sv) <= 1e-9 * std::max(su, sv)) return m;
  const double fine = std::min(su, sv);
  const int cols = std::max(1, static_cast<int>(std::lround(m.cols * su / fine)));
  const int rows = std::max(1, static_cast<int>(std::lround(m.rows * sv / fine)));
  cv::Mat out;
  cv::resize(m, out, cv::Size(cols, rows), 0, 0, interpolation);
  return out;
}

// Grey slice in 8 bits, 0.5th..99.5th percentile of the finite values stretched to 0..255.
template <class T>
cv::Mat grey_slice(const Volume<T>& v, Plane p, index_t index) {
  cv::Mat f = cut<T, float>(v, p, index, CV_32F, [](T x) { return static_cast<float>(x); });
  std::vector<float> values;
  values.reserve(f.total());
  for (int r = 0; r < f.rows; ++r)
    for (int c = 0; c < f.cols; ++c)
      if (std::isfinite(f.at<float>(r, c))) values.push_back(f.at<float>(r, c));
  cv::Mat out(f.rows, f.cols, CV_8U, cv::Scalar(0));
  if (values.empty()) return out;
  auto percentile = [&](double q) {
    const auto k = static_cast<std::size_t>(std::lround(q * (values.size() - 1)));
    std::nth_element(values.begin(), values.begin() + k, values.end());
    return static_cast<double>(values[k]);
  };
  const double lo = percentile(0.005), hi = percentile(0.995);
  for (int r = 0; r < f.rows; ++r)
    for (int c = 0; c < f.cols; ++c) {
      const double x = f.at<float>(r, c);
      double g = hi > lo ? (x - lo) / (hi - lo) * 255.0 : 128.0;
      if (!std::isfinite(x)) g = 0;
      out.at<std::uint8_t>(r, c) = static_cast<std::uint8_t>(std::clamp(g, 0.0, 255.0) + 0.5);
    }
  return out;
}

void write_image_png(const cv::Mat& image, const std::string& path) {
  write_png(path, image.ptr(), image.cols, image.rows, image.step,
            image.channels() == 3 ? PngPixels::bgr : PngPixels::grey);
}

// The grey backdrop of an overlay as 3-channel BGR, or black when there is no grey volume.
template <class G>
cv::Mat backdrop(const Volume<G>* grey, const Dims& d, Plane p, index_t index, const std::string& path) {
  const auto ax = plane_axes(p);
  if (!grey) return cv::Mat(static_cast<int>(d[ax[1]]), static_cast<int>(d[ax[0]]), CV_8UC3, cv::Scalar(0, 0, 0));
  if (!(grey->dims() == d))
    throw InputError(path + ": grey volume " + to_string(grey->dims()) + " and labels " + to_string(d) +
                     " differ in size");
  cv::Mat g = grey_slice(*grey, p, index), bgr;
  cv::cvtColor(g, bgr, cv::COLOR_GRAY2BGR);
  return bgr;
}

// Blends colour(label) over the backdrop; colour returns nullopt where nothing is drawn.
template <class G, class L, class Colour>
void write_overlay(const Volume<G>* grey, const Volume<L>& labels, Plane p, index_t index, const std::string& path,
                   double alpha, Colour colour) {
  index = checked_index(labels.dims(), p, index, path);
  const cv::Mat base = backdrop(grey, labels.dims(), p, index, path);
  const cv::Mat ids = cut<L, L>(labels, p, index, sizeof(L) == 1 ? CV_8U : CV_32S, [](L x) { return x; });
  const double a = grey ? std::clamp(alpha, 0.0, 1.0) : 1.0;
  cv::Mat out = base.clone();
  for (int r = 0; r < out.rows; ++r)
    for (int c = 0; c < out.cols; ++c) {
      const std::optional<Rgb> col = colour(ids.at<L>(r, c));
      if (!col) continue;
      cv::Vec3b& px = out.at<cv::Vec3b>(r, c);
      const double rgb[3] = {static_cast<double>(col->b), static_cast<double>(col->g), static_cast<double>(col->r)};
      for (int k = 0; k < 3; ++k) px[k] = static_cast<std::uint8_t>(std::lround((1 - a) * px[k] + a * rgb[k]));
    }
  write_image_png(square_pixels(out, labels.spacing_um, p, cv::INTER_NEAREST), path);
}

}  // namespace

Rgb label_colour(std::uint8_t label) {
  // Okabe-Ito (colour-blind safe) after a neutral first colour for label 0 (usually pore).
  static const Rgb palette[10] = {{40, 50, 70},  {230, 159, 0}, {86, 180, 233},  {0, 158, 115},   {240, 228, 66},
                                  {0, 114, 178}, {213, 94, 0},  {204, 121, 167}, {150, 150, 150}, {120, 60, 160}};
  return palette[label % 10];
}

Rgb id_colour(std::uint32_t id) {
  // A 32-bit integer hash, then hue-like spread kept away from black so every id is visible.
  std::uint32_t h = id * 0x9E3779B1u;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  return {static_cast<std::uint8_t>(64 + (h & 0xBF)), static_cast<std::uint8_t>(64 + ((h >> 8) & 0xBF)),
          static_cast<std::uint8_t>(64 + ((h >> 16) & 0xBF))};
}

template <class T>
void write_slice_png(const Volume<T>& grey, Plane plane, index_t index, const std::string& path) {
  index = checked_index(grey.dims(), plane, index, path);
  write_image_png(square_pixels(grey_slice(grey, plane, index), grey.spacing_um, plane, cv::INTER_LINEAR), path);
}

void write_slice_png(const AnyVolume& grey, Plane plane, index_t index, const std::string& path) {
  std::visit([&](const auto& v) { write_slice_png(v, plane, index, path); }, grey);
}

template <class G>
void write_label_overlay_png(const Volume<G>* grey, const Volume<std::uint8_t>& labels, Plane plane, index_t index,
                             const std::string& path, double alpha) {
  write_overlay(grey, labels, plane, index, path, alpha,
                [](std::uint8_t l) { return std::optional<Rgb>(label_colour(l)); });
}

template <class G>
void write_label_overlay_png(const Volume<G>* grey, const Volume<std::uint32_t>& ids, Plane plane, index_t index,
                             const std::string& path, double alpha) {
  write_overlay(grey, ids, plane, index, path, alpha,
                [](std::uint32_t id) { return id == 0 ? std::nullopt : std::optional<Rgb>(id_colour(id)); });
}

void write_label_overlay_png(const AnyVolume* grey, const Volume<std::uint8_t>& labels, Plane plane, index_t index,
                             const std::string& path, double alpha) {
  if (!grey)
    return write_label_overlay_png(static_cast<const Volume<float>*>(nullptr), labels, plane, index, path, alpha);
  std::visit([&](const auto& g) { write_label_overlay_png(&g, labels, plane, index, path, alpha); }, *grey);
}

void write_label_overlay_png(const AnyVolume* grey, const Volume<std::uint32_t>& ids, Plane plane, index_t index,
                             const std::string& path, double alpha) {
  if (!grey) return write_label_overlay_png(static_cast<const Volume<float>*>(nullptr), ids, plane, index, path, alpha);
  std::visit([&](const auto& g) { write_label_overlay_png(&g, ids, plane, index, path, alpha); }, *grey);
}

void write_field_png(const Volume<float>& field, Plane plane, index_t index, const std::string& path,
                     std::optional<std::pair<double, double>> range) {
  index = checked_index(field.dims(), plane, index, path);
  const cv::Mat f = cut<float, float>(field, plane, index, CV_32F, [](float x) { return x; });
  double lo = 0, hi = 0;
  if (range) {
    lo = range->first;
    hi = range->second;
  } else {
    bool any = false;
    for (int r = 0; r < f.rows; ++r)
      for (int c = 0; c < f.cols; ++c) {
        const float x = f.at<float>(r, c);
        if (!std::isfinite(x)) continue;
        lo = any ? std::min(lo, static_cast<double>(x)) : x;
        hi = any ? std::max(hi, static_cast<double>(x)) : x;
        any = true;
      }
  }
  cv::Mat level(f.rows, f.cols, CV_8U), mask(f.rows, f.cols, CV_8U, cv::Scalar(0));
  for (int r = 0; r < f.rows; ++r)
    for (int c = 0; c < f.cols; ++c) {
      const double x = f.at<float>(r, c);
      const double t = hi > lo ? (x - lo) / (hi - lo) : 0.5;
      level.at<std::uint8_t>(r, c) = static_cast<std::uint8_t>(std::lround(std::clamp(t, 0.0, 1.0) * 255.0));
      if (!std::isfinite(x)) mask.at<std::uint8_t>(r, c) = 255;
    }
  cv::Mat colour;
  cv::applyColorMap(level, colour, cv::COLORMAP_VIRIDIS);
  colour.setTo(cv::Scalar(0, 0, 0), mask);
  write_image_png(square_pixels(colour, field.spacing_um, plane, cv::INTER_NEAREST), path);
}

#define VP_SLICE_PNG_INSTANTIATE(T)                                                                        \
  template void write_slice_png<T>(const Volume<T>&, Plane, index_t, const std::string&);                  \
  template void write_label_overlay_png<T>(const Volume<T>*, const Volume<std::uint8_t>&, Plane, index_t,  \
                                           const std::string&, double);                                    \
  template void write_label_overlay_png<T>(const Volume<T>*, const Volume<std::uint32_t>&, Plane, index_t, \
                                           const std::string&, double);
VP_SLICE_PNG_INSTANTIATE(std::uint8_t)
VP_SLICE_PNG_INSTANTIATE(std::uint16_t)
VP_SLICE_PNG_INSTANTIATE(std::int16_t)
VP_SLICE_PNG_INSTANTIATE(std::uint32_t)
VP_SLICE_PNG_INSTANTIATE(float)

}  // namespace vp
