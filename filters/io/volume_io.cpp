// read_volume / probe_volume / write_volume: find the files, pick the format, check the
// result (non-empty, finite) and record provenance. The formats live in *_io.cpp.
#include "filters/io/volume_io.h"

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>

#include "core/axis.h"
#include "core/error.h"
#include "core/hash.h"
#include "filters/io/io_formats.h"

namespace fs = std::filesystem;

namespace vp {
namespace io {

AnyVolume allocate_volume(DType dtype, Dims dims) {
  switch (dtype) {
    case DType::u8: return Volume<std::uint8_t>(dims);
    case DType::u16: return Volume<std::uint16_t>(dims);
    case DType::i16: return Volume<std::int16_t>(dims);
    case DType::u32: return Volume<std::uint32_t>(dims);
    case DType::f32: return Volume<float>(dims);
  }
  throw std::logic_error("allocate_volume: unknown dtype");
}

void* voxel_bytes(AnyVolume& v) {
  return std::visit([](auto& vol) -> void* { return vol.data(); }, v);
}
const void* voxel_bytes(const AnyVolume& v) {
  return std::visit([](const auto& vol) -> const void* { return vol.data(); }, v);
}
VolumeRef ref_of(const AnyVolume& v) {
  return std::visit([](const auto& vol) -> VolumeRef { return &vol; }, v);
}
Dims ref_dims(VolumeRef v) {
  return std::visit([](const auto* vol) { return vol->dims(); }, v);
}
DType ref_dtype(VolumeRef v) {
  return std::visit([](const auto* vol) { return dtype_of<typename std::decay_t<decltype(*vol)>::value_type>(); }, v);
}
Vec3 ref_spacing(VolumeRef v) {
  return std::visit([](const auto* vol) { return vol->spacing_um; }, v);
}
const void* ref_bytes(VolumeRef v) {
  return std::visit([](const auto* vol) -> const void* { return vol->data(); }, v);
}

Dims box_dims(const Box& b) { return {b.size[0], b.size[1], b.size[2]}; }
bool covers_all(const Box& b, const Dims& d) {
  return b.min[0] == 0 && b.min[1] == 0 && b.min[2] == 0 && b.size[0] == d.x && b.size[1] == d.y && b.size[2] == d.z;
}

}  // namespace io

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_glob(const std::string& path) { return path.find_first_of("*?[") != std::string::npos; }

// "slice_2.tif" before "slice_10.tif": digit runs compare by value.
bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      std::size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      std::string na = a.substr(i, i2 - i), nb = b.substr(j, j2 - j);
      na.erase(0, std::min(na.find_first_not_of('0'), na.size()));
      nb.erase(0, std::min(nb.find_first_not_of('0'), nb.size()));
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

struct Source {
  std::string format;
  std::vector<std::string> files;
};

// One entry per file format: its name, the extensions that name it, and how to probe, read and
// write it (io_formats.h). Adding a format is one entry here plus its *_io.cpp.
struct Format {
  std::string name;
  std::vector<std::string> extensions;  // lower case, with the dot
  io::Header (*probe)(const Source&, const ReadOptions&);
  AnyVolume (*read)(const Source&, const ReadOptions&, const io::Header&, const Box&);
  void (*write)(io::VolumeRef, const std::string& path, const std::string& format, const WriteOptions&);
  // Files whose bytes make up the volume (a detached header's data file); null: the input files.
  std::vector<std::string> (*data_files)(const std::string& path) = nullptr;
  std::string cannot_write;  // why there is no writer (write is null)
};

// Raw binary takes its layout from the options; the path is the file found.
ReadOptions with_path(const ReadOptions& o, const std::string& path) {
  ReadOptions r = o;
  r.path = path;
  return r;
}

io::Header probe_itk_source(const Source& s, const ReadOptions&) { return io::probe_itk(s.files[0], s.format); }
AnyVolume read_itk_source(const Source& s, const ReadOptions&, const io::Header& h, const Box& roi) {
  return io::read_itk(s.files[0], s.format, h, roi);
}
void write_itk_file(io::VolumeRef v, const std::string& path, const std::string& f, const WriteOptions& o) {
  io::write_itk(v, path, f, o.compress);
}

const std::vector<Format>& formats() {
  static const std::vector<Format> table{
      {"tiff",
       {".tif", ".tiff"},
       [](const Source& s, const ReadOptions&) { return io::probe_tiff(s.files); },
       [](const Source& s, const ReadOptions&, const io::Header& h, const Box& roi) {
         return io::read_tiff(s.files, h, roi);
       },
       [](io::VolumeRef v, const std::string& path, const std::string&, const WriteOptions& o) {
         io::write_tiff(v, path, o.compress);
       }},
      {"mha", {".mha"}, probe_itk_source, read_itk_source, write_itk_file},
      {"mhd",
       {".mhd"},
       probe_itk_source,
       read_itk_source,
       nullptr,
       io::itk_data_files,
       "write .mha (one file) instead of .mhd + .raw"},
      {"nrrd", {".nrrd", ".nhdr"}, probe_itk_source, read_itk_source, write_itk_file, io::itk_data_files},
      {"nifti", {".nii", ".nii.gz"}, probe_itk_source, read_itk_source, write_itk_file},
      {"hdf5",
       {".h5", ".hdf5", ".hdf", ".nxs", ".cxi"},
       [](const Source& s, const ReadOptions& o) { return io::probe_hdf5(s.files[0], o.dataset); },
       [](const Source& s, const ReadOptions& o, const io::Header& h, const Box& roi) {
         return io::read_hdf5(s.files[0], o.dataset, h, roi);
       },
       [](io::VolumeRef v, const std::string& path, const std::string&, const WriteOptions& o) {
         io::write_hdf5(v, path, o.dataset, o.compress);
       }},
      {"npy",
       {".npy"},
       [](const Source& s, const ReadOptions&) { return io::probe_npy(s.files[0]); },
       [](const Source& s, const ReadOptions&, const io::Header& h, const Box& roi) {
         return io::read_npy(s.files[0], h, roi);
       },
       [](io::VolumeRef v, const std::string& path, const std::string&, const WriteOptions&) {
         io::write_npy(v, path);
       }},
      {"raw",
       {".raw", ".bin", ".vol"},
       [](const Source& s, const ReadOptions& o) { return io::probe_raw(with_path(o, s.files[0])); },
       [](const Source& s, const ReadOptions& o, const io::Header& h, const Box& roi) {
         return io::read_raw(with_path(o, s.files[0]), h, roi);
       },
       [](io::VolumeRef v, const std::string& path, const std::string&, const WriteOptions&) {
         io::write_raw(v, path);
       }},
  };
  return table;
}

// "a, b or c".
std::string listing(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return out;
}

const Format& format_named(const std::string& name) {
  for (const Format& f : formats())
    if (f.name == name) return f;
  throw std::logic_error("volume_io: no format " + name);
}

bool has_extension(const Format& f, const std::string& lower_path) {
  return std::any_of(f.extensions.begin(), f.extensions.end(),
                     [&](const std::string& e) { return ends_with(lower_path, e); });
}

bool is_tiff_name(const std::string& p) { return has_extension(format_named("tiff"), lower(p)); }

// The files a path names: itself, the TIFF slices in a folder, or a glob's matches; sorted naturally.
std::vector<std::string> input_files(const std::string& path) {
  std::vector<std::string> files;
  if (is_glob(path) && !fs::exists(path)) {
    glob_t g{};
    const int rc = ::glob(path.c_str(), 0, nullptr, &g);
    if (rc == 0)
      for (std::size_t i = 0; i < g.gl_pathc; ++i) files.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (files.empty()) throw InputError(path + ": the pattern matches no file");
  } else if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && is_tiff_name(e.path().string())) files.push_back(e.path().string());
    if (files.empty()) throw InputError(path + ": the folder holds no .tif/.tiff slices");
  } else {
    if (!fs::exists(path)) throw InputError(path + ": no such file");
    if (!fs::is_regular_file(path)) throw InputError(path + ": not a regular file");
    files.push_back(path);
  }
  std::sort(files.begin(), files.end(), natural_less);
  return files;
}

// A folder of slices or a glob is a TIFF stack; otherwise the extension decides.
std::string format_from_name(const std::string& path) {
  const std::string l = lower(path);
  if (fs::is_directory(path) || is_glob(path)) return "tiff";
  std::vector<std::string> known;
  for (const Format& f : formats()) {
    if (has_extension(f, l)) return f.name;
    known.insert(known.end(), f.extensions.begin(), f.extensions.end());
  }
  throw InputError(path + ": cannot tell the format from the name; expected " + listing(known) + " (or give format)");
}

std::string check_format(const std::string& path, const std::string& requested) {
  if (requested.empty() || requested == "auto") return format_from_name(path);
  const std::string f = lower(requested) == "tif" ? "tiff" : lower(requested);
  std::vector<std::string> known{"auto"};
  for (const Format& k : formats()) {
    if (k.name == f) return f;
    known.push_back(k.name);
  }
  throw InputError(path + ": unknown format '" + requested + "'; expected " + listing(known));
}

Source locate(const ReadOptions& o) {
  if (o.path.empty()) throw InputError("volume path is empty");
  Source s;
  s.files = input_files(o.path);
  s.format = check_format(o.path, o.format);
  if (s.files.size() > 1 && s.format != "tiff")
    throw InputError(o.path + ": several files match; only TIFF slices can be stacked");
  return s;
}

io::Header probe(const Source& s, const ReadOptions& o) {
  const io::Header h = format_named(s.format).probe(s, o);
  if (h.dims.empty())
    throw InputError(o.path + ": zero-sized volume " + to_string(h.dims) + "; expected at least one voxel");
  io::check_voxel_cap(o.path, h.dims, max_voxels(o));
  return h;
}

Box resolve_roi(const std::optional<Box>& roi, const Dims& d, const std::string& path) {
  if (!roi) return Box{{0, 0, 0}, {d.x, d.y, d.z}};
  for (int a = 0; a < 3; ++a) {
    if (roi->min[a] < 0 || roi->size[a] <= 0 || roi->min[a] >= d[a] || roi->size[a] > d[a] - roi->min[a]) {
      std::ostringstream m;
      m << path << ": ROI along " << kAxisNames[a] << " [" << roi->min[a] << ", " << roi->min[a] + roi->size[a]
        << ") is empty or leaves the volume " << to_string(d);
      throw InputError(m.str());
    }
  }
  return *roi;
}

// NaN or Inf would poison every mean and solve downstream: refuse them at the door.
// The first (lowest index) offending voxel is named, whatever the thread count.
void check_finite(const Volume<float>& v, const std::string& path) {
  const Dims& d = v.dims();
  const index_t first = tbb::parallel_reduce(
      tbb::blocked_range<index_t>(0, v.size(), index_t{1} << 16), v.size(),
      [&](const tbb::blocked_range<index_t>& r, index_t found) {
        for (index_t i = r.begin(); i < r.end() && i < found; ++i)
          if (!std::isfinite(v[i])) return i;
        return found;
      },
      [](index_t a, index_t b) { return std::min(a, b); });
  if (first == v.size()) return;
  std::ostringstream m;
  m << path << ": voxel (x=" << first % d.x << ", y=" << (first / d.x) % d.y << ", z=" << first / (d.x * d.y) << ") is "
    << v[first] << "; expected finite grey values";
  throw InputError(m.str());
}

std::string content_hash(const Source& s) {
  const Format& format = format_named(s.format);
  const std::vector<std::string> files = format.data_files ? format.data_files(s.files[0]) : s.files;
  if (files.size() == 1) return sha256_file(files[0]);
  // Several files: one hash over their bytes in order.
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (const auto& f : files) {
    std::FILE* fp = std::fopen(f.c_str(), "rb");
    if (!fp) throw InputError(f + ": cannot open for hashing");
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), fp)) > 0) h.update(buf.data(), n);
    std::fclose(fp);
  }
  return h.hex_digest();
}

}  // namespace

ReadResult read_volume(const ReadOptions& options) {
  const Source s = locate(options);
  const io::Header h = probe(s, options);
  const Box roi = resolve_roi(options.roi, h.dims, options.path);
  ReadResult r;
  r.volume = format_named(s.format).read(s, options, h, roi);
  r.format = s.format;
  r.spacing_from_file = h.spacing_from_file;

  std::visit(
      [&](auto& v) {
        v.spacing_um = h.spacing_um;
        for (int a = 0; a < 3; ++a) v.origin_um[a] = h.origin_um[a] + roi.min[a] * h.spacing_um[a];
        v.provenance.path = fs::absolute(options.path).lexically_normal().string();
        if (options.hash) v.provenance.sha256 = content_hash(s);
      },
      r.volume);
  if (auto* fv = std::get_if<Volume<float>>(&r.volume)) check_finite(*fv, options.path);
  return r;
}

VolumeInfo probe_volume(const ReadOptions& options) {
  const Source s = locate(options);
  const io::Header h = probe(s, options);
  VolumeInfo info;
  info.dims = h.dims;
  info.dtype = h.dtype;
  info.spacing_um = h.spacing_um;
  info.spacing_from_file = h.spacing_from_file;
  info.format = s.format;
  return info;
}

namespace {

void write_ref(io::VolumeRef volume, const std::string& path, const WriteOptions& options) {
  const Dims d = io::ref_dims(volume);
  if (d.empty()) throw InputError(path + ": refusing to write a zero-sized volume " + to_string(d));
  const std::string requested = options.format.empty() ? "auto" : options.format;
  const Format& f = format_named(check_format(path, requested));
  if (!f.write) {
    if (requested == "auto") throw InputError(path + ": " + f.cannot_write);
    std::vector<std::string> writable;
    for (const Format& k : formats())
      if (k.write) writable.push_back(k.name);
    throw InputError(path + ": cannot write format '" + f.name + "'; expected " + listing(writable));
  }
  f.write(volume, path, f.name, options);
}

}  // namespace

void write_volume(const AnyVolume& volume, const std::string& path, const WriteOptions& options) {
  write_ref(io::ref_of(volume), path, options);
}

namespace io_detail {
template <class T>
void write_typed(const Volume<T>& volume, const std::string& path, const WriteOptions& options) {
  write_ref(io::VolumeRef(&volume), path, options);
}
template void write_typed(const Volume<std::uint8_t>&, const std::string&, const WriteOptions&);
template void write_typed(const Volume<std::uint16_t>&, const std::string&, const WriteOptions&);
template void write_typed(const Volume<std::int16_t>&, const std::string&, const WriteOptions&);
template void write_typed(const Volume<std::uint32_t>&, const std::string&, const WriteOptions&);
template void write_typed(const Volume<float>&, const std::string&, const WriteOptions&);
}  // namespace io_detail

}  // namespace vp
