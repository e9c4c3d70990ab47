// TIFF stacks through libtiff: each page is one z-slice. Pages are decoded one strip or tile
// at a time straight into the volume's buffer, so reading needs the volume plus one strip.
#include <tiffio.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "filters/io/io_formats.h"

namespace vp::io {
namespace {

// One open TIFF with its own error sink (libtiff's global handlers are not thread-safe).
class TiffFile {
 public:
  // `name` is the path messages show (the target, when writing to a temporary file).
  TiffFile(const std::string& path, const char* mode, const std::string& name = "")
      : path_(name.empty() ? path : name) {
    TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
    TIFFOpenOptionsSetErrorHandlerExtR(opts, &TiffFile::on_error, this);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, &TiffFile::on_warning, this);
    // "m": no memory-mapping; mapped pages would sit in memory beside the volume.
    tif_ = TIFFOpenExt(path.c_str(), (std::string(mode) + "m").c_str(), opts);
    TIFFOpenOptionsFree(opts);
    if (!tif_) fail(mode[0] == 'r' ? "cannot open as TIFF" : "cannot create TIFF");
  }
  ~TiffFile() {
    if (tif_) TIFFClose(tif_);
  }
  TiffFile(const TiffFile&) = delete;
  TiffFile& operator=(const TiffFile&) = delete;

  TIFF* get() const { return tif_; }
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }
  // Closes explicitly so that errors while flushing are reported.
  void close() {
    TIFFClose(tif_);
    tif_ = nullptr;
    if (!error_.empty()) fail("error while writing");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(path_ + ": " + what + (error_.empty() ? "" : " (" + error_ + ")"));
  }

 private:
  static int on_error(TIFF*, void* self, const char* module, const char* fmt, va_list ap) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    auto* f = static_cast<TiffFile*>(self);
    if (f->error_.empty()) f->error_ = std::string(module ? module : "libtiff") + ": " + buf;
    return 1;
  }
  static int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }  // unknown tags etc.

  std::string path_;
  std::string error_;
  TIFF* tif_ = nullptr;
};

// The layout of one page as far as decoding is concerned.
struct PageLayout {
  std::uint32_t width = 0, height = 0;
  std::uint16_t bits = 0, sample_format = SAMPLEFORMAT_UINT;
  bool tiled = false;
  std::uint32_t block_w = 0, block_h = 0;  // tile size, or (width, rows per strip)
};

std::string page_name(const TiffFile&, std::uint32_t page) { return "page " + std::to_string(page); }

// A strip or tile buffer above this (and above the page itself) is refused.
constexpr std::uint64_t kMaxBlockBytes = std::uint64_t{64} << 20;

PageLayout read_layout(const TiffFile& f, std::uint32_t page) {
  TIFF* t = f.get();
  PageLayout L;
  std::uint16_t spp = 1;  // with one sample per pixel the planar configuration is moot
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &L.width);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &L.height);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &L.bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &L.sample_format);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  if (spp != 1)
    throw InputError(f.path() + ": " + page_name(f, page) + " has " + std::to_string(spp) +
                     " samples per pixel; expected a greyscale stack (1 sample)");
  L.tiled = TIFFIsTiled(t);
  if (L.tiled) {
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &L.block_w);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &L.block_h);
  } else {
    std::uint32_t rps = L.height;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rps);
    L.block_w = L.width;
    L.block_h = std::min(rps, L.height);
  }
  if (L.block_w == 0 || L.block_h == 0)
    throw InputError(f.path() + ": " + page_name(f, page) + " has empty strips/tiles");
  // One block is decoded at a time per thread: a tile far larger than the page is a lie.
  const std::uint64_t bits = std::max<std::uint16_t>(L.bits, 1);
  const std::uint64_t block_bytes =
      checked_mul(f.path(), "TileWidth x TileLength",
                  checked_mul(f.path(), "TileWidth x TileLength", L.block_w, L.block_h), bits) /
      8;
  const std::uint64_t page_bytes =
      checked_mul(f.path(), "ImageWidth x ImageLength",
                  checked_mul(f.path(), "ImageWidth x ImageLength", L.width, L.height), bits) /
      8;
  if (block_bytes > std::max(page_bytes, kMaxBlockBytes))
    throw InputError(f.path() + ": " + page_name(f, page) + " header field " +
                     (L.tiled ? "TileWidth/TileLength" : "RowsPerStrip") + " claims " + std::to_string(L.block_w) +
                     "x" + std::to_string(L.block_h) + " blocks for a " + std::to_string(L.width) + "x" +
                     std::to_string(L.height) + " page (corrupt or hostile file)");
  return L;
}

// How many times a page's stored bytes can expand when decoded; a header claiming more
// voxels than that is a lie. Codecs without a tight bound get a loose one (the voxel cap holds).
std::uint64_t max_expansion(std::uint16_t compression) {
  switch (compression) {
    case COMPRESSION_NONE: return 1;
    case COMPRESSION_PACKBITS: return 64;  // a 2-byte run code decodes to at most 128 bytes
    case COMPRESSION_ADOBE_DEFLATE:
    case COMPRESSION_DEFLATE: return kMaxDeflateRatio;
    case COMPRESSION_LZW: return 2048;       // 12-bit codes, table reset at 4094 entries: ~1500:1
    default: return std::uint64_t{1} << 16;  // zstd, LZMA, CCITT, JPEG ...
  }
}

// The fewest bytes the file must hold for one page of this layout and compression.
std::uint64_t min_stored_bytes(const TiffFile& f, const PageLayout& L) {
  std::uint16_t compression = COMPRESSION_NONE;
  TIFFGetFieldDefaulted(f.get(), TIFFTAG_COMPRESSION, &compression);
  const std::uint64_t row_bytes = (static_cast<std::uint64_t>(L.width) * L.bits + 7) / 8;
  const std::uint64_t page = checked_mul(f.path(), "ImageLength x row bytes", L.height, row_bytes);
  const std::uint64_t ratio = max_expansion(compression);
  return (page + ratio - 1) / ratio;
}

// Which of our element types holds a TIFF sample losslessly. int8 widens to int16.
DType dtype_for(const TiffFile& f, std::uint32_t page, const PageLayout& L) {
  const auto b = L.bits;
  const auto s = L.sample_format;
  if (s == SAMPLEFORMAT_UINT || s == SAMPLEFORMAT_VOID) {
    if (b == 1 || b == 8) return DType::u8;
    if (b == 16) return DType::u16;
    if (b == 32) return DType::u32;
  } else if (s == SAMPLEFORMAT_INT) {
    if (b == 8 || b == 16) return DType::i16;
  } else if (s == SAMPLEFORMAT_IEEEFP) {
    if (b == 32) return DType::f32;
  }
  const char* kind = s == SAMPLEFORMAT_INT ? "signed integer" : s == SAMPLEFORMAT_IEEEFP ? "float" : "unsigned integer";
  throw InputError(f.path() + ": " + page_name(f, page) + " holds " + std::to_string(b) + "-bit " + kind +
                   " samples; unsupported sample format (expected 1/8/16/32-bit unsigned, 8/16-bit signed or "
                   "32-bit float)");
}

// Micrometres per unit of an ImageJ "unit=" string; 0 when it is not a length.
double um_per_unit(std::string u) {
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return std::tolower(c); });
  if (u == "micron" || u == "microns" || u == "um" || u == "\xc2\xb5m" || u == "\xb5m" || u == "\\u00b5m" ||
      u == "micrometer" || u == "micrometre")
    return 1.0;
  if (u == "nm" || u == "nanometer" || u == "nanometre") return 1e-3;
  if (u == "mm" || u == "millimeter" || u == "millimetre") return 1e3;
  if (u == "cm" || u == "centimeter" || u == "centimetre") return 1e4;
  if (u == "m" || u == "meter" || u == "metre") return 1e6;
  if (u == "inch" || u == "in") return 25400.0;
  return 0.0;
}

// Spacing from XResolution/YResolution (pixels per unit) and ImageJ's description
// ("unit=micron", "spacing=<z>"). A whole number of dots per inch up to 1200 (72, 96, 100,
// 300, ...) is an image editor's print default, not a voxel size (PuMA's FiberForm carries
// ImageJ "unit=inch" at 100 px/inch = 254 µm for 1.3 µm voxels), and is ignored.
void read_spacing(const TiffFile& f, Header& h) {
  TIFF* t = f.get();
  std::string unit;
  double z_spacing = 0;
  char* desc = nullptr;
  if (TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc) && desc && std::strncmp(desc, "ImageJ=", 7) == 0) {
    std::istringstream in(desc);
    for (std::string line; std::getline(in, line);) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "unit") unit = value;
      if (key == "spacing") z_spacing = std::atof(value.c_str());
    }
  }
  float xres = 0, yres = 0;
  std::uint16_t res_unit = RESUNIT_INCH;
  const bool has_x = TIFFGetField(t, TIFFTAG_XRESOLUTION, &xres) && xres > 0;
  const bool has_y = TIFFGetField(t, TIFFTAG_YRESOLUTION, &yres) && yres > 0;
  TIFFGetFieldDefaulted(t, TIFFTAG_RESOLUTIONUNIT, &res_unit);
  double scale = 0;  // µm per resolution unit
  if (!unit.empty()) scale = um_per_unit(unit);
  else if (res_unit == RESUNIT_CENTIMETER) scale = 1e4;
  else if (res_unit == RESUNIT_INCH) scale = 25400.0;
  const bool print_default = scale == 25400.0 && xres <= 1200.0f && xres == std::floor(xres);
  if (scale <= 0 || !has_x || print_default) return;
  h.spacing_um[0] = scale / xres;
  h.spacing_um[1] = scale / (has_y ? yres : xres);
  h.spacing_um[2] = z_spacing > 0 ? z_spacing * scale : h.spacing_um[0];
  h.spacing_from_file = true;
}

// Copies samples [x_begin, x_begin + n) of one decoded row into dst, widening where needed.
template <class T>
void unpack_row(const std::uint8_t* row, const PageLayout& L, std::uint32_t x_begin, std::uint32_t n, T* dst) {
  if (L.bits == 1) {
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t x = x_begin + i;
      dst[i] = static_cast<T>((row[x >> 3] >> (7 - (x & 7))) & 1u);
    }
  } else if (L.bits == 8 && L.sample_format == SAMPLEFORMAT_INT) {
    const auto* s = reinterpret_cast<const std::int8_t*>(row) + x_begin;
    for (std::uint32_t i = 0; i < n; ++i) dst[i] = static_cast<T>(s[i]);
  } else {
    std::memcpy(dst, row + static_cast<std::size_t>(x_begin) * sizeof(T), static_cast<std::size_t>(n) * sizeof(T));
  }
}

// Decodes the blocks (strips or tiles) of the current page that meet the ROI's rows and columns.
// Refuses a strip or tile whose stored bytes do not lie inside the file, before libtiff reads it:
// libtiff 4.5 overruns its own buffer on some offsets past the end (a fuzzed BigTIFF strip offset of
// 2^63 − 137 wrote a byte before its read buffer).
void check_block_in_file(const TiffFile& f, std::uint32_t page, const PageLayout& L, std::uint32_t block,
                         std::uint64_t file_bytes) {
  int failed = 0;
  const std::uint64_t offset = TIFFGetStrileOffsetWithErr(f.get(), block, &failed);
  const std::uint64_t bytes = TIFFGetStrileByteCountWithErr(f.get(), block, &failed);
  if (failed || offset > file_bytes || bytes > file_bytes - offset)
    f.fail(page_name(f, page) + ": " + (L.tiled ? "tile " : "strip ") + std::to_string(block) + " claims " +
           std::to_string(bytes) + " bytes at offset " + std::to_string(offset) + " of a " +
           std::to_string(file_bytes) + "-byte file (truncated, corrupt or hostile file)");
}

template <class T>
void read_page(const TiffFile& f, std::uint32_t page, const PageLayout& L, const Box& roi, T* plane) {
  TIFF* t = f.get();
  const auto x0 = static_cast<std::uint32_t>(roi.min[0]), x1 = static_cast<std::uint32_t>(roi.min[0] + roi.size[0]);
  const auto y0 = static_cast<std::uint32_t>(roi.min[1]), y1 = static_cast<std::uint32_t>(roi.min[1] + roi.size[1]);
  const std::size_t nx = roi.size[0];
  const tmsize_t row_bytes = L.tiled ? TIFFTileRowSize(t) : TIFFScanlineSize(t);
  const tmsize_t block_bytes = L.tiled ? TIFFTileSize(t) : TIFFStripSize(t);
  if (row_bytes <= 0 || block_bytes <= 0) f.fail(page_name(f, page) + ": invalid strip/tile size");
  std::vector<std::uint8_t> block(static_cast<std::size_t>(block_bytes));
  std::error_code size_error;
  const std::uint64_t file_bytes = std::filesystem::file_size(f.path(), size_error);
  if (size_error) f.fail("cannot read its size: " + size_error.message());
  for (std::uint32_t by = (y0 / L.block_h) * L.block_h; by < y1; by += L.block_h) {
    const std::uint32_t bx_begin = L.tiled ? (x0 / L.block_w) * L.block_w : 0;
    for (std::uint32_t bx = bx_begin; bx < x1; bx += L.block_w) {
      // Rows of this block that exist in the page (the last strip may be short).
      const std::uint32_t rows = std::min(L.block_h, L.height - by);
      const std::uint32_t index = L.tiled ? TIFFComputeTile(t, bx, by, 0, 0) : TIFFComputeStrip(t, by, 0);
      check_block_in_file(f, page, L, index, file_bytes);
      const tmsize_t got = L.tiled ? TIFFReadEncodedTile(t, index, block.data(), block_bytes)
                                   : TIFFReadEncodedStrip(t, index, block.data(), block_bytes);
      const tmsize_t needed = L.tiled ? block_bytes : row_bytes * static_cast<tmsize_t>(rows);
      if (got < needed)
        f.fail(page_name(f, page) + ": truncated or corrupt " + (L.tiled ? "tile" : "strip") + " at row " +
               std::to_string(by) + "; expected " + std::to_string(needed) + " bytes, decoded " +
               std::to_string(std::max<tmsize_t>(got, 0)));
      const std::uint32_t cx0 = std::max(x0, bx), cx1 = std::min(x1, bx + L.block_w);
      const std::uint32_t ry0 = std::max(y0, by), ry1 = std::min(y1, by + rows);
      for (std::uint32_t y = ry0; y < ry1; ++y) {
        const std::uint8_t* row = block.data() + static_cast<std::size_t>(y - by) * row_bytes;
        unpack_row(row, L, cx0 - bx, cx1 - cx0, plane + (y - y0) * nx + (cx0 - x0));
      }
    }
  }
}

// Moves to page p. Stepping forward one page at a time keeps a long stack linear
// (TIFFSetDirectory walks the chain from the first page every time).
void go_to_page(const TiffFile& f, std::uint32_t p, std::uint32_t current) {
  const bool ok = p == current + 1 ? TIFFReadDirectory(f.get()) : TIFFSetDirectory(f.get(), static_cast<tdir_t>(p));
  if (!ok) f.fail("cannot read the header of page " + std::to_string(p));
}

// ImageJ saves stacks over 4 GB as one IFD whose description says "images=N" and puts the N
// uncompressed planes back to back. Returns where the planes start, or 0 for an ordinary TIFF.
std::uint64_t imagej_planes_offset(const TiffFile& f, const PageLayout& L, index_t& planes) {
  TIFF* t = f.get();
  char* desc = nullptr;
  if (!TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc) || !desc || std::strncmp(desc, "ImageJ=", 7) != 0) return 0;
  const char* images = std::strstr(desc, "\nimages=");
  if (!images) return 0;
  // A plain count of at most 10 digits; anything else is not what ImageJ writes.
  const char* digits = images + 8;
  std::size_t n = 0;
  while (n < 11 && digits[n] >= '0' && digits[n] <= '9') ++n;
  if (n == 0 || n > 10 || (digits[n] != '\n' && digits[n] != '\0'))
    f.fail("header field ImageDescription 'images=' is not a plane count");
  planes = std::atoll(digits);
  std::uint16_t compression = COMPRESSION_NONE;
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &compression);
  if (planes <= 1 || compression != COMPRESSION_NONE || L.tiled || L.bits % 8 != 0) return 0;
  // The strips of the first plane must be contiguous for the planes to be.
  const std::uint64_t* offsets = nullptr;
  const std::uint64_t* counts = nullptr;
  if (!TIFFGetField(t, TIFFTAG_STRIPOFFSETS, &offsets) || !TIFFGetField(t, TIFFTAG_STRIPBYTECOUNTS, &counts)) return 0;
  const std::uint32_t strips = TIFFNumberOfStrips(t);
  for (std::uint32_t i = 1; i < strips; ++i)
    if (offsets[i] != offsets[i - 1] + counts[i - 1]) return 0;
  return offsets[0];
}

std::uint32_t page_count(const TiffFile& f) {
  const tdir_t n = TIFFNumberOfDirectories(f.get());
  // A broken chain of pages (truncated file) must not read as a shorter stack.
  if (!f.error().empty()) f.fail("truncated or corrupt page directory after page " + std::to_string(n));
  if (n == 0) f.fail("no image pages");
  return n;
}

}  // namespace

Header probe_tiff(const std::vector<std::string>& files) {
  Header h;
  PageLayout first;
  index_t pages = 0;
  std::uint64_t min_stored = 0, file_total = 0;
  for (std::size_t k = 0; k < files.size(); ++k) {
    TiffFile f(files[k], "r");
    file_total += file_bytes(files[k]);
    const std::uint32_t n = page_count(f);
    std::vector<std::uint32_t> slices;
    // Every slice must match the first one; checking all headers is cheap (no voxels).
    for (std::uint32_t p = 0; p < n; ++p) {
      if (p > 0) go_to_page(f, p, p - 1);
      // Thumbnails and pyramid levels (reduced-resolution pages) are not slices.
      std::uint32_t subfile = 0;
      if (TIFFGetField(f.get(), TIFFTAG_SUBFILETYPE, &subfile) && (subfile & FILETYPE_REDUCEDIMAGE)) continue;
      slices.push_back(p);
      const PageLayout L = read_layout(f, p);
      const DType t = dtype_for(f, p, L);
      min_stored = checked_add(f.path(), "page sizes", min_stored, min_stored_bytes(f, L));
      if (pages == 0 && slices.size() == 1) {
        first = L;
        h.dtype = t;
        read_spacing(f, h);
      } else if (L.width != first.width || L.height != first.height || t != h.dtype) {
        f.fail(page_name(f, p) + " is " + std::to_string(L.width) + "x" + std::to_string(L.height) + " " +
               to_string(t) + "; expected " + std::to_string(first.width) + "x" + std::to_string(first.height) + " " +
               to_string(h.dtype) + " like the first page");
      }
    }
    pages += static_cast<index_t>(slices.size());
    h.tiff_pages.push_back(std::move(slices));
  }
  if (pages == 0) throw InputError(files[0] + ": no full-resolution image pages");
  h.dims = checked_dims(files[0], "ImageWidth x ImageLength x pages", first.width, first.height,
                        static_cast<std::uint64_t>(pages), dtype_size(h.dtype));
  const std::string where =
      files.size() == 1 ? files[0] : files[0] + " (and " + std::to_string(files.size() - 1) + " more slices)";
  check_stored(where, "ImageWidth x ImageLength x pages", min_stored, file_total, 1);
  if (files.size() == 1 && pages == 1) {
    TiffFile f(files[0], "r");
    index_t planes = 0;
    const std::uint64_t offset = imagej_planes_offset(f, first, planes);
    const std::uint64_t plane_bytes = static_cast<std::uint64_t>(first.width) * first.height * (first.bits / 8);
    if (offset > 0 && plane_bytes == static_cast<std::uint64_t>(first.width) * first.height * dtype_size(h.dtype)) {
      const std::string field = "ImageDescription 'images=" + std::to_string(planes) + "'";
      const std::uint64_t need = checked_add(
          f.path(), field, offset, checked_mul(f.path(), field, plane_bytes, static_cast<std::uint64_t>(planes)));
      const std::uint64_t have = file_bytes(files[0]);
      if (have < need)
        f.fail("truncated ImageJ stack: header field " + field + " needs " + std::to_string(need) +
               " bytes, the file has " + std::to_string(have));
      h.dims = checked_dims(f.path(), field, first.width, first.height, static_cast<std::uint64_t>(planes),
                            dtype_size(h.dtype));
      h.imagej_planes_offset = offset;
      h.big_endian = TIFFIsBigEndian(f.get());
    }
  }
  return h;
}

AnyVolume read_tiff(const std::vector<std::string>& files, const Header& header, const Box& roi) {
  if (header.imagej_planes_offset > 0)
    return read_contiguous(files[0], header.imagej_planes_offset, header.dtype, header.big_endian, header.dims, roi);
  // The pages the ROI needs, in z order: (file, page in that file).
  std::vector<std::pair<std::size_t, std::uint32_t>> pages;
  index_t z = 0;
  for (std::size_t k = 0; k < files.size(); ++k)
    for (std::uint32_t p : header.tiff_pages.at(k)) {
      if (z >= roi.min[2] && z < roi.min[2] + roi.size[2]) pages.emplace_back(k, p);
      ++z;
    }
  AnyVolume out = allocate_volume(header.dtype, box_dims(roi));
  std::visit(
      [&](auto& vol) {
        using T = typename std::decay_t<decltype(vol)>::value_type;
        const index_t plane = roi.size[0] * roi.size[1];
        // Pages decode independently into their own planes: each task opens its own handle
        // and walks its run of pages forward. The result does not depend on the split.
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, pages.size(), 4), [&](const auto& range) {
          std::unique_ptr<TiffFile> f;
          std::size_t open_file = files.size();
          std::uint32_t current = 0;
          for (std::size_t i = range.begin(); i != range.end(); ++i) {
            const auto [k, p] = pages[i];
            if (k != open_file) {
              f = std::make_unique<TiffFile>(files[k], "r");  // opens on page 0
              open_file = k;
              current = 0;
            }
            if (p != current) go_to_page(*f, p, current);
            current = p;
            read_page<T>(*f, p, read_layout(*f, p), roi, vol.data() + static_cast<index_t>(i) * plane);
          }
        });
      },
      out);
  return out;
}

namespace {

template <class T>
std::uint16_t sample_format_of() {
  if constexpr (std::is_floating_point_v<T>) return SAMPLEFORMAT_IEEEFP;
  else if constexpr (std::is_signed_v<T>) return SAMPLEFORMAT_INT;
  else return SAMPLEFORMAT_UINT;
}

// ImageJ reads these keys: the stack size, the unit and the z spacing (x, y from the
// resolution tags); min/max set the display range of 16/32-bit stacks.
template <class T>
std::string imagej_description(const Volume<T>& v) {
  std::ostringstream d;
  d.precision(10);
  const auto [lo, hi] = std::minmax_element(v.storage().begin(), v.storage().end());
  d << "ImageJ=1.11a\nimages=" << v.dims().z << "\nslices=" << v.dims().z
    << "\nunit=micron\nspacing=" << v.spacing_um[2] << "\nloop=false\nmin=" << static_cast<double>(*lo)
    << "\nmax=" << static_cast<double>(*hi) << "\n";
  return d.str();
}

// Deflate-compressed strips of pages [z0, z1), compressed in parallel (zlib streams, as TIFF's
// Adobe Deflate expects). Each strip is compressed on its own, so the bytes do not depend on
// the thread count.
template <class T>
std::vector<std::vector<std::vector<std::uint8_t>>> deflate_strips(const Volume<T>& v, index_t z0, index_t z1,
                                                                   std::uint32_t rows_per_strip) {
  const Dims& d = v.dims();
  const index_t strips = (d.y + rows_per_strip - 1) / rows_per_strip;
  std::vector<std::vector<std::vector<std::uint8_t>>> out(static_cast<std::size_t>(z1 - z0),
                                                          std::vector<std::vector<std::uint8_t>>(strips));
  tbb::parallel_for(tbb::blocked_range<index_t>(0, (z1 - z0) * strips), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t k = r.begin(); k != r.end(); ++k) {
      const index_t z = z0 + k / strips, s = k % strips;
      const index_t y0 = s * rows_per_strip, rows = std::min<index_t>(rows_per_strip, d.y - y0);
      const auto* src = reinterpret_cast<const Bytef*>(&v(0, y0, z));
      const uLong n = static_cast<uLong>(rows * d.x * static_cast<index_t>(sizeof(T)));
      auto& dst = out[static_cast<std::size_t>(k / strips)][static_cast<std::size_t>(s)];
      dst.resize(compressBound(n));
      uLongf len = dst.size();
      if (compress2(dst.data(), &len, src, n, Z_DEFAULT_COMPRESSION) != Z_OK)
        throw std::runtime_error("zlib failed to compress a TIFF strip");
      dst.resize(len);
    }
  });
  return out;
}

template <class T>
void write_pages(const Volume<T>& v, const std::string& tmp, const std::string& path, bool compress) {
  const Dims& d = v.dims();
  const std::uint64_t bytes = static_cast<std::uint64_t>(d.count()) * sizeof(T);
  // Classic TIFF offsets are 32-bit: switch to BigTIFF near 4 GiB.
  TiffFile f(tmp, bytes > (std::uint64_t{4000} << 20) ? "w8" : "w", path);
  TIFF* t = f.get();
  const std::string desc = imagej_description(v);
  // Strips of about 256 KiB: Deflate compresses better than in libtiff's default 8 KiB.
  const auto rows_per_strip = static_cast<std::uint32_t>(
      std::min<index_t>(d.y, std::max<index_t>(1, (index_t{256} << 10) / (d.x * index_t{sizeof(T)}))));
  // Pages are compressed a batch at a time: bounded memory, and every core busy.
  const index_t batch = 16;
  std::vector<std::vector<std::vector<std::uint8_t>>> packed;
  for (index_t z = 0; z < d.z; ++z) {
    if (compress && z % batch == 0) packed = deflate_strips(v, z, std::min(d.z, z + batch), rows_per_strip);
    TIFFSetField(t, TIFFTAG_SUBFILETYPE, 0);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(d.x));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(d.y));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, static_cast<std::uint16_t>(8 * sizeof(T)));
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, static_cast<std::uint16_t>(1));
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, sample_format_of<T>());
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compress ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rows_per_strip);
    TIFFSetField(t, TIFFTAG_XRESOLUTION, static_cast<float>(1.0 / v.spacing_um[0]));
    TIFFSetField(t, TIFFTAG_YRESOLUTION, static_cast<float>(1.0 / v.spacing_um[1]));
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_NONE);
    if (z == 0) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, desc.c_str());
    if (compress) {
      auto& strips = packed[static_cast<std::size_t>(z % batch)];
      for (std::size_t s = 0; s < strips.size(); ++s)
        if (TIFFWriteRawStrip(t, static_cast<std::uint32_t>(s), strips[s].data(),
                              static_cast<tmsize_t>(strips[s].size())) < 0)
          f.fail("cannot write strip " + std::to_string(s) + " of page " + std::to_string(z));
    } else {
      for (index_t y = 0; y < d.y; ++y) {
        auto* row = const_cast<T*>(&v(0, y, z));  // libtiff's API is not const-correct; it does not modify rows
        if (TIFFWriteScanline(t, row, static_cast<std::uint32_t>(y), 0) < 0)
          f.fail("cannot write row " + std::to_string(y) + " of page " + std::to_string(z));
      }
    }
    if (!TIFFWriteDirectory(t)) f.fail("cannot write page " + std::to_string(z));
  }
  f.close();
}

}  // namespace

void write_tiff(VolumeRef volume, const std::string& path, bool compress) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::visit([&](const auto* v) { write_pages(*v, tmp.string(), path, compress); }, volume);
  });
}

}  // namespace vp::io
