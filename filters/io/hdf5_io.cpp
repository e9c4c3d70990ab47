// HDF5 volumes through the C API: a named dataset (e.g. /exchange/data of DXchange files) or
// the only 3-D dataset in the file. numpy/h5py shape (z, y, x) is our (x, y, z). The ROI is
// read as a hyperslab; HDF5 converts int8 -> int16 and float64 -> float32 while reading.
#include <hdf5.h>

#include <filesystem>
#include <sstream>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "filters/io/io_formats.h"

namespace vp::io {
namespace {

// Owns an HDF5 identifier and closes it with the matching call.
class Hid {
 public:
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() {
    if (id_ >= 0) close_(id_);
  }
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its error stack on stderr by default; we report errors ourselves.
void silence_hdf5() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

Hid open_file(const std::string& path) {
  silence_hdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path + ": not an HDF5 file");
  Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f.valid()) throw InputError(path + ": cannot open as HDF5 (truncated or corrupt?)");
  return f;
}

std::vector<hsize_t> shape_of(hid_t dataset) {
  Hid space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> shape(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), shape.data(), nullptr);
  return shape;
}

// The element type that holds the dataset's samples, and the memory type HDF5 converts to.
std::optional<std::pair<DType, hid_t>> dtype_for(hid_t dataset) {
  Hid type(H5Dget_type(dataset), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  const std::size_t size = H5Tget_size(type.get());
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
    if (!is_signed && size == 1) return std::pair{DType::u8, H5T_NATIVE_UINT8};
    if (!is_signed && size == 2) return std::pair{DType::u16, H5T_NATIVE_UINT16};
    if (!is_signed && size == 4) return std::pair{DType::u32, H5T_NATIVE_UINT32};
    if (is_signed && (size == 1 || size == 2)) return std::pair{DType::i16, H5T_NATIVE_INT16};
  } else if (cls == H5T_FLOAT && (size == 4 || size == 8)) {
    return std::pair{DType::f32, H5T_NATIVE_FLOAT};
  }
  return std::nullopt;
}

std::string describe(hid_t dataset) {
  std::ostringstream s;
  const auto shape = shape_of(dataset);
  s << "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ")";
  Hid type(H5Dget_type(dataset), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  s << " " << (cls == H5T_FLOAT ? "float" : cls == H5T_INTEGER ? (H5Tget_sign(type.get()) == H5T_SGN_2 ? "int" : "uint") : "other")
    << 8 * H5Tget_size(type.get());
  return s.str();
}

struct Found {
  std::string name;
  std::string description;
  int rank = 0;
};

std::vector<Found> list_datasets(hid_t file) {
  std::vector<Found> found;
  auto visit = [](hid_t group, const char* name, const H5L_info_t* info, void* data) -> herr_t {
    if (info->type != H5L_TYPE_HARD) return 0;
    Hid obj(H5Oopen(group, name, H5P_DEFAULT), H5Oclose);
    if (!obj.valid() || H5Iget_type(obj.get()) != H5I_DATASET) return 0;
    Found f;
    f.name.append("/").append(name);
    f.description = describe(obj.get());
    f.rank = static_cast<int>(shape_of(obj.get()).size());
    static_cast<std::vector<Found>*>(data)->push_back(std::move(f));
    return 0;
  };
  H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit, &found);
  return found;
}

std::string listing(const std::vector<Found>& found) {
  if (found.empty()) return "no datasets";
  std::string s;
  for (const auto& f : found) s += (s.empty() ? "" : ", ") + f.name + " " + f.description;
  return s;
}

// Opens the named dataset, or the only 3-D one when no name is given.
Hid open_dataset(hid_t file, const std::string& path, const std::string& name, std::string* resolved = nullptr) {
  if (resolved) *resolved = name;
  if (!name.empty()) {
    // Check each link on the way: H5Dopen2 on a missing path fails without saying where.
    bool exists = true;
    std::string prefix;
    std::stringstream ss(name);
    for (std::string part; exists && std::getline(ss, part, '/');) {
      if (part.empty()) continue;
      prefix += "/" + part;
      exists = H5Lexists(file, prefix.c_str(), H5P_DEFAULT) > 0;
    }
    Hid ds(exists ? H5Dopen2(file, name.c_str(), H5P_DEFAULT) : -1, H5Dclose);
    if (!ds.valid())
      throw InputError(path + ": dataset '" + name + "' not found; the file holds " + listing(list_datasets(file)));
    return ds;
  }
  std::vector<Found> three_d;
  const auto all = list_datasets(file);
  for (const auto& f : all)
    if (f.rank == 3) three_d.push_back(f);
  if (three_d.size() != 1)
    throw InputError(path + ": " + std::to_string(three_d.size()) +
                     " 3-D datasets; name one with dataset (the file holds " + listing(all) + ")");
  if (resolved) *resolved = three_d[0].name;
  return Hid(H5Dopen2(file, three_d[0].name.c_str(), H5P_DEFAULT), H5Dclose);
}

// Voxel size from the dataset's attributes: element_size_um (z, y, x; the Fiji HDF5 plugin
// and ilastik convention) or voxel_size_um (one value, or z, y, x).
bool read_spacing(hid_t dataset, Vec3& spacing) {
  for (const char* name : {"element_size_um", "voxel_size_um"}) {
    if (H5Aexists(dataset, name) <= 0) continue;
    Hid attr(H5Aopen(dataset, name, H5P_DEFAULT), H5Aclose);
    Hid space(H5Aget_space(attr.get()), H5Sclose);
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n != 1 && n != 3) continue;
    double v[3] = {0, 0, 0};
    if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, v) < 0) continue;
    if (n == 1) v[1] = v[2] = v[0];
    if (!(v[0] > 0 && v[1] > 0 && v[2] > 0)) continue;
    spacing = {v[2], v[1], v[0]};
    return true;
  }
  return false;
}

// How many times the dataset's stored bytes can expand through its filter pipeline.
std::uint64_t max_expansion(hid_t dataset) {
  Hid dcpl(H5Dget_create_plist(dataset), H5Pclose);
  std::uint64_t ratio = 1;
  const int n = dcpl.valid() ? H5Pget_nfilters(dcpl.get()) : 0;
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    std::size_t nvalues = 0;
    const H5Z_filter_t f = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nvalues, nullptr, 0, nullptr,
                                          nullptr);
    if (f == H5Z_FILTER_SHUFFLE || f == H5Z_FILTER_FLETCHER32) continue;  // no change in size
    // Deflate and szip: about 1032:1; n-bit and scale-offset pack to as little as 1 bit a value.
    const std::uint64_t r = f == H5Z_FILTER_NBIT || f == H5Z_FILTER_SCALEOFFSET ? 64 : kMaxDeflateRatio;
    ratio = ratio > (std::uint64_t{1} << 40) ? ratio : ratio * r;
  }
  return ratio;
}

// The shape's bytes must be stored in the file (unwritten chunks would read as fill values: a
// wrapped or lying shape costs nothing to write but everything to allocate).
void check_dataset_storage(hid_t dataset, const std::string& path, const std::string& name, std::uint64_t needed) {
  const std::uint64_t stored = H5Dget_storage_size(dataset);
  const std::string what = "dataset '" + name + "' shape" + (stored == 0 ? " (never written: fill values only)" : "");
  check_stored(path, what, needed, std::min<std::uint64_t>(stored, file_bytes(path)), max_expansion(dataset));
}

}  // namespace

Header probe_hdf5(const std::string& path, const std::string& name) {
  Hid file = open_file(path);
  std::string dataset;
  Hid ds = open_dataset(file.get(), path, name, &dataset);
  const auto shape = shape_of(ds.get());
  const auto t = dtype_for(ds.get());
  if (!t)
    throw InputError(path + ": dataset '" + dataset + "' is " + describe(ds.get()) +
                     "; unsupported sample format (expected uint8/16/32, int8/16, float32/64)");
  Header h;
  h.dtype = t->first;
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  const std::uint64_t stored_size = H5Tget_size(type.get());
  const std::string field = "dataset '" + dataset + "' shape";
  if (shape.size() == 3) h.dims = checked_dims(path, field, shape[2], shape[1], shape[0], stored_size);
  else if (shape.size() == 2) h.dims = checked_dims(path, field, shape[1], shape[0], 1, stored_size);
  else throw InputError(path + ": dataset '" + dataset + "' is " + describe(ds.get()) + "; expected 2-D or 3-D");
  if (!h.dims.empty()) check_dataset_storage(ds.get(), path, dataset, static_cast<std::uint64_t>(h.dims.count()) * stored_size);
  h.spacing_from_file = read_spacing(ds.get(), h.spacing_um);
  return h;
}

AnyVolume read_hdf5(const std::string& path, const std::string& name, const Header& header, const Box& roi) {
  Hid file = open_file(path);
  std::string dataset;
  Hid ds = open_dataset(file.get(), path, name, &dataset);
  const auto t = dtype_for(ds.get());
  const int rank = static_cast<int>(shape_of(ds.get()).size());
  AnyVolume out = allocate_volume(header.dtype, box_dims(roi));
  Hid fspace(H5Dget_space(ds.get()), H5Sclose);
  // File order is (z, y, x); a 2-D dataset is (y, x).
  hsize_t start[3], count[3];
  for (int a = 0; a < rank; ++a) {
    start[rank - 1 - a] = static_cast<hsize_t>(roi.min[a]);
    count[rank - 1 - a] = static_cast<hsize_t>(roi.size[a]);
  }
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
  Hid mspace(H5Screate_simple(rank, count, nullptr), H5Sclose);
  if (H5Dread(ds.get(), t->second, mspace.get(), fspace.get(), H5P_DEFAULT, voxel_bytes(out)) < 0)
    throw InputError(path + ": cannot read dataset '" + dataset +
                     "' (truncated, corrupt, or compressed with a filter this HDF5 library lacks)");
  return out;
}

void write_hdf5(VolumeRef volume, const std::string& path, const std::string& dataset, bool compress) {
  silence_hdf5();
  static const hid_t mem_types[] = {H5T_NATIVE_UINT8, H5T_NATIVE_UINT16, H5T_NATIVE_INT16, H5T_NATIVE_UINT32,
                                    H5T_NATIVE_FLOAT};
  static const hid_t file_types[] = {H5T_STD_U8LE, H5T_STD_U16LE, H5T_STD_I16LE, H5T_STD_U32LE, H5T_IEEE_F32LE};
  const int k = static_cast<int>(ref_dtype(volume));
  const Dims d = ref_dims(volume);
  const Vec3 s = ref_spacing(volume);
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    Hid file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.valid()) throw InputError(path + ": cannot create HDF5 file");
    const hsize_t shape[3] = {static_cast<hsize_t>(d.z), static_cast<hsize_t>(d.y), static_cast<hsize_t>(d.x)};
    Hid space(H5Screate_simple(3, shape, nullptr), H5Sclose);
    Hid lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    if (compress) {
      const hsize_t chunk[3] = {1, shape[1], shape[2]};  // one z-slice per chunk
      H5Pset_chunk(dcpl.get(), 3, chunk);
      H5Pset_deflate(dcpl.get(), 4);
    }
    Hid ds(H5Dcreate2(file.get(), dataset.c_str(), file_types[k], space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
           H5Dclose);
    if (!ds.valid() || H5Dwrite(ds.get(), mem_types[k], H5S_ALL, H5S_ALL, H5P_DEFAULT, ref_bytes(volume)) < 0)
      throw InputError(path + ": cannot write dataset '" + dataset + "'");
    const hsize_t three = 3;
    Hid aspace(H5Screate_simple(1, &three, nullptr), H5Sclose);
    Hid attr(H5Acreate2(ds.get(), "element_size_um", H5T_IEEE_F64LE, aspace.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const double zyx[3] = {s[2], s[1], s[0]};
    if (!attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, zyx) < 0)
      throw InputError(path + ": cannot write attribute element_size_um");
  });
}

}  // namespace vp::io
