// HDF5 volumes through the C API: a named dataset (e.g. /exchange/data of DXchange files) or
// the only 3-D dataset in the file. numpy/h5py shape (z, y, x) is our (x, y, z). The ROI is
// read as hyperslabs; HDF5 converts int8 -> int16 and float64 -> float32 while reading.
//
// libhdf5 (Debian's 1.10.8) trusts the sizes a file states: it mallocs a metadata block of
// whatever size a corrupt object header gives before checking it against the file (4 GiB, 80 TB
// for files of a few KiB: fuzz_hdf5), and it reads past a chunk whose layout claims more bytes
// than the file stores. So libhdf5 never reads a file in this process: probe and read each run in
// a forked child whose address space may grow by a bounded amount (RLIMIT_AS); the child sends
// the header or the voxels (in slabs) back through a pipe. An allocation libhdf5 is refused, or
// a crash inside it, is an InputError naming the file; the batch goes on.
#include <fcntl.h>
#include <hdf5.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>
#include <system_error>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "filters/io/io_formats.h"

// Sanitizer builds only (weak: null otherwise): libFuzzer's death callback.
extern "C" void __sanitizer_set_death_callback(void (*)()) __attribute__((weak));

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
  Hid& operator=(Hid&& o) noexcept {
    std::swap(id_, o.id_);
    std::swap(close_, o.close_);
    return *this;
  }
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
  s << " "
    << (cls == H5T_FLOAT     ? "float"
        : cls == H5T_INTEGER ? (H5Tget_sign(type.get()) == H5T_SGN_2 ? "int" : "uint")
                             : "other")
    << 8 * H5Tget_size(type.get());
  return s.str();
}

struct Found {
  std::string name;
  std::string description;
  int rank = 0;
};

// Bounds on the group walk: genuine files nest groups a few levels deep and hold far fewer links.
constexpr int kMaxGroupDepth = 64;
constexpr std::size_t kMaxLinks = std::size_t{1} << 16;

// Every dataset reachable by hard links, depth first in name order (as H5Lvisit lists them).
// Our own walk instead of H5Lvisit: libhdf5 remembers only groups with several links, so a
// corrupt file whose group links to itself (link count 1) made it recurse without end
// (tests/data/fuzz_hdf5_group_cycle.h5). Each group is entered once, by object address, and the
// depth and link count are bounded; a file beyond them is refused.
std::vector<Found> list_datasets(hid_t file, const std::string& path) {
  struct Walk {
    std::vector<Found> found;
    std::set<haddr_t> groups;  // entered already
    std::string prefix;        // "/a/b" of the group being listed
    int depth = 0;
    std::size_t links = 0;
    std::string refusal;
  } walk;
  struct Visit {
    static herr_t link(hid_t group, const char* name, const H5L_info_t* info, void* data) {
      auto& w = *static_cast<Walk*>(data);
      if (++w.links > kMaxLinks) {
        w.refusal = "more than " + std::to_string(kMaxLinks) + " links";
        return -1;
      }
      if (info->type != H5L_TYPE_HARD) return 0;
      Hid obj(H5Oopen(group, name, H5P_DEFAULT), H5Oclose);
      if (!obj.valid()) return 0;
      const std::string full = w.prefix + "/" + name;
      const H5I_type_t type = H5Iget_type(obj.get());
      if (type == H5I_DATASET) {
        w.found.push_back(Found{full, describe(obj.get()), static_cast<int>(shape_of(obj.get()).size())});
        return 0;
      }
      return type == H5I_GROUP ? enter(obj.get(), full, w) : 0;
    }
    static herr_t enter(hid_t group, const std::string& prefix, Walk& w) {
      H5O_info_t info{};
      if (H5Oget_info2(group, &info, H5O_INFO_BASIC) < 0 || !w.groups.insert(info.addr).second) return 0;
      if (w.depth == kMaxGroupDepth) {
        w.refusal = "groups nested more than " + std::to_string(kMaxGroupDepth) + " deep";
        return -1;
      }
      const std::string outer = w.prefix;
      w.prefix = prefix;
      ++w.depth;
      hsize_t at = 0;
      const herr_t rc = H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &at, link, &w);
      --w.depth;
      w.prefix = outer;
      return w.refusal.empty() ? 0 : rc;
    }
  };
  Visit::enter(file, "", walk);
  if (!walk.refusal.empty())
    throw InputError(path + ": " + walk.refusal + " (genuine files stay far below; corrupt or hostile HDF5)");
  return walk.found;
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
      throw InputError(path + ": dataset '" + name + "' not found; the file holds " +
                       listing(list_datasets(file, path)));
    return ds;
  }
  std::vector<Found> three_d;
  const auto all = list_datasets(file, path);
  for (const auto& f : all)
    if (f.rank == 3) three_d.push_back(f);
  if (three_d.size() != 1)
    throw InputError(path + ": " + std::to_string(three_d.size()) +
                     " 3-D datasets; name one with dataset (the file holds " + listing(all) + ")");
  if (resolved) *resolved = three_d[0].name;
  return Hid(H5Dopen2(file, three_d[0].name.c_str(), H5P_DEFAULT), H5Dclose);
}

// Whether libhdf5 may decode the dataset's attribute messages: each holds the bytes it claims
// (hdf5_object_header.cpp; libhdf5 1.10.8 copies them out unchecked). Throws for one that does not.
bool attributes_sound(hid_t file, hid_t dataset, const std::string& path) {
  H5O_info_t info{};
  Hid fcpl(H5Fget_create_plist(file), H5Pclose);
  hsize_t user_block = 0;
  std::size_t offset_bytes = 0, length_bytes = 0;
  if (H5Oget_info2(dataset, &info, H5O_INFO_BASIC) < 0 || !fcpl.valid() ||
      H5Pget_userblock(fcpl.get(), &user_block) < 0 || H5Pget_sizes(fcpl.get(), &offset_bytes, &length_bytes) < 0)
    throw InputError(path + ": cannot locate the dataset's HDF5 object header (corrupt or hostile HDF5)");
  return check_attribute_messages(path, Hdf5ObjectHeader{info.addr, user_block, static_cast<unsigned>(offset_bytes),
                                                         static_cast<unsigned>(length_bytes)})
      .verifiable;
}

// Voxel size from the dataset's attributes: element_size_um (z, y, x; the Fiji HDF5 plugin
// and ilastik convention) or voxel_size_um (one value, or z, y, x). None (not recorded) when an
// attribute is stored where attributes_sound() cannot check it.
bool read_spacing(hid_t file, hid_t dataset, const std::string& path, Vec3& spacing) {
  if (!attributes_sound(file, dataset, path)) return false;
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

// The dataset's filter pipeline, in the order the writer applied the filters.
std::vector<H5Z_filter_t> filter_pipeline(hid_t dataset) {
  Hid dcpl(H5Dget_create_plist(dataset), H5Pclose);
  const int n = dcpl.valid() ? H5Pget_nfilters(dcpl.get()) : 0;
  std::vector<H5Z_filter_t> filters;
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    std::size_t nvalues = 0;
    filters.push_back(
        H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nvalues, nullptr, 0, nullptr, nullptr));
  }
  return filters;
}

// How many times the dataset's stored bytes can expand through its filter pipeline.
std::uint64_t max_expansion(hid_t dataset) {
  std::uint64_t ratio = 1;
  for (const H5Z_filter_t f : filter_pipeline(dataset)) {
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

// A chunk larger than a fixed dimension is what no HDF5 writer makes (H5Dcreate refuses it), and
// libhdf5 then reads the chunk's bytes past the buffer it decoded them into (fuzz_hdf5: chunk
// (1, 4, 126) on a (2, 4, 6) dataset; heap-buffer-overflow in H5Dread).
void check_chunk_layout(hid_t dataset, const std::string& path, const std::string& name,
                        const std::vector<hsize_t>& shape) {
  Hid dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return;
  const int rank = static_cast<int>(shape.size());
  std::vector<hsize_t> chunk(rank), max(rank);
  Hid space(H5Dget_space(dataset), H5Sclose);
  if (H5Pget_chunk(dcpl.get(), rank, chunk.data()) != rank ||
      H5Sget_simple_extent_dims(space.get(), nullptr, max.data()) != rank)
    throw InputError(path + ": dataset '" + name + "' chunk layout does not match its " + std::to_string(rank) +
                     "-D shape (corrupt or hostile file)");
  auto tuple = [](const std::vector<hsize_t>& v) {
    std::string t = "(";
    for (std::size_t i = 0; i < v.size(); ++i) t += (i ? ", " : "") + std::to_string(v[i]);
    return t + ")";
  };
  for (int a = 0; a < rank; ++a)
    if (chunk[a] == 0 || (max[a] != H5S_UNLIMITED && chunk[a] > max[a]))
      throw InputError(path + ": dataset '" + name + "' chunk " + tuple(chunk) + " does not fit its fixed shape " +
                       tuple(max) + " (corrupt or hostile file)");
}

// The dataset's chunk depth along z (file axis 0 of a 3-D dataset): 1 when not chunked.
std::uint64_t chunk_layer(hid_t dataset, int rank) {
  Hid dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (rank != 3 || !dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return 1;
  hsize_t chunk[3] = {1, 1, 1};
  H5Pget_chunk(dcpl.get(), 3, chunk);
  return chunk[0] > 0 ? chunk[0] : 1;
}

// Bytes of one chunk in the file's sample size (0 when not chunked).
std::uint64_t chunk_bytes(hid_t dataset, int rank, std::uint64_t sample_size) {
  Hid dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return 0;
  std::vector<hsize_t> chunk(rank, 1);
  H5Pget_chunk(dcpl.get(), rank, chunk.data());
  std::uint64_t n = sample_size;
  for (hsize_t c : chunk)
    if (__builtin_mul_overflow(n, c, &n)) return kMaxHeaderBytes;
  return n;
}

// The walk both probe and read make, in the child: the file's dataset, validated.
struct Opened {
  Hid file{-1, H5Fclose};
  Hid dataset{-1, H5Dclose};
  std::string name;
  std::vector<hsize_t> shape;
};

Opened open_validated(const std::string& path, const std::string& wanted, Header* header) {
  Opened o;
  o.file = open_file(path);
  o.dataset = open_dataset(o.file.get(), path, wanted, &o.name);
  o.shape = shape_of(o.dataset.get());
  const auto t = dtype_for(o.dataset.get());
  if (!t)
    throw InputError(path + ": dataset '" + o.name + "' is " + describe(o.dataset.get()) +
                     "; unsupported sample format (expected uint8/16/32, int8/16, float32/64)");
  Hid type(H5Dget_type(o.dataset.get()), H5Tclose);
  const std::uint64_t stored_size = H5Tget_size(type.get());
  const std::string field = "dataset '" + o.name + "' shape";
  Header h;
  h.dtype = t->first;
  if (o.shape.size() == 3) h.dims = checked_dims(path, field, o.shape[2], o.shape[1], o.shape[0], stored_size);
  else if (o.shape.size() == 2) h.dims = checked_dims(path, field, o.shape[1], o.shape[0], 1, stored_size);
  else throw InputError(path + ": dataset '" + o.name + "' is " + describe(o.dataset.get()) + "; expected 2-D or 3-D");
  check_chunk_layout(o.dataset.get(), path, o.name, o.shape);
  if (!h.dims.empty())
    check_dataset_storage(o.dataset.get(), path, o.name, static_cast<std::uint64_t>(h.dims.count()) * stored_size);
  h.spacing_from_file = read_spacing(o.file.get(), o.dataset.get(), path, h.spacing_um);
  if (header) *header = h;
  return o;
}

// ---- libhdf5 in a child process ----

// What libhdf5 may add to the child's address space beyond the voxel slab it fills: its metadata
// cache (at most 32 MiB by default), the chunk cache, free lists and the metadata blocks of the
// file, which genuine files keep to kilobytes or a few megabytes.
constexpr std::uint64_t kHdf5MemoryBudget = std::uint64_t{256} << 20;
// Voxels travel in slabs of whole chunk layers of about this size.
constexpr std::uint64_t kSlabBytes = std::uint64_t{64} << 20;

// The child's answer: frames of a tag, a 64-bit length and that many bytes.
constexpr char kHeaderFrame = 'H', kVoxelFrame = 'D', kErrorFrame = 'E';
constexpr std::uint64_t kMaxMessageBytes = 1 << 20;

// The header as it crosses the pipe.
struct WireHeader {
  std::int64_t dims[3];
  std::int32_t dtype;
  std::int32_t spacing_from_file;
  double spacing_um[3];
};

// libhdf5 is not thread-safe (Debian's serial build): one HDF5 call sequence, and one fork, at a time.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

// Whether the reader process serves on after an answer that is an error (fuzzing only).
bool keep_after_errors = false;

// Reader processes that ended by SIGABRT (hdf5_reader_aborts()).
std::atomic<int> reader_aborts{0};

// Child only: set when libhdf5 reported an allocation it could not make.
bool allocation_refused = false;

herr_t note_allocation_failures(hid_t stack, void*) {
  H5Ewalk2(
      stack, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void*) -> herr_t {
        if (e->min_num == H5E_CANTALLOC || e->min_num == H5E_NOSPACE) allocation_refused = true;
        return 0;
      },
      nullptr);
  return 0;
}

// Child: the address space in bytes now (0 when /proc cannot tell).
std::uint64_t address_space_now() {
  std::uint64_t pages = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%" SCNu64, &pages) != 1) pages = 0;
    std::fclose(f);
  }
  return pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Child: lets the address space grow by at most `extra` bytes from now on (never above a limit
// already set from outside).
void limit_address_space(std::uint64_t extra) {
  const std::uint64_t now = address_space_now();
  rlimit r{};
  if (now == 0 || ::getrlimit(RLIMIT_AS, &r) != 0) return;
  const std::uint64_t want = now + extra;
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur <= want) return;
  r.rlim_cur = want;
  ::setrlimit(RLIMIT_AS, &r);
}

// Moves exactly n bytes through the socket with `step` (one recv or send); false at the peer's end
// or on an error. The one loop both directions share.
template <class Step>
bool transfer_all(int fd, char* p, std::size_t n, Step step) {
  while (n > 0) {
    const ssize_t k = step(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

// Sends exactly n bytes; false when the peer has gone (MSG_NOSIGNAL: no SIGPIPE for that).
bool send_all(int fd, const void* data, std::size_t n) {
  return transfer_all(fd, static_cast<char*>(const_cast<void*>(data)), n,
                      [](int f, char* p, std::size_t k) { return ::send(f, p, k, MSG_NOSIGNAL); });
}

// Reads exactly n bytes; false at end of file or on an error.
bool read_all(int fd, void* data, std::size_t n) {
  return transfer_all(fd, static_cast<char*>(data), n,
                      [](int f, char* p, std::size_t k) { return ::recv(f, p, k, 0); });
}

// Child: one frame of the answer; the parent gone means nobody waits for the rest.
void send_frame(int fd, char tag, const void* data, std::uint64_t n) {
  if (!send_all(fd, &tag, 1) || !send_all(fd, &n, sizeof n) || !send_all(fd, data, n)) ::_exit(3);
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    default: return "signal " + std::to_string(sig);
  }
}

// ---- the reader process ----
//
// One child, forked at the first HDF5 read of this process, serves every probe and read that
// follows over a socket: a request names the file, the dataset and (for a read) the expected
// header and the ROI; the child answers in frames and ends each answer with a done frame. It
// shares no memory with the parent after the fork, so a crafted file can at worst corrupt the
// child. A child that crashed, was refused memory, broke the protocol or was left with open HDF5
// files open after an answer ends, and the next request forks a fresh one. Forking once instead of twice
// per file is what made fuzz_hdf5 fast (a fork of an ASan process costs tens of ms).

constexpr char kDoneFrame = 'Z';
constexpr char kProbeRequest = 'P', kReadRequest = 'R';
constexpr std::uint32_t kMaxRequestString = 1 << 16;

struct WireRequest {
  char op;
  std::int32_t dtype;
  std::int64_t dims[3];
  std::int64_t roi_min[3];
  std::int64_t roi_size[3];
  std::uint32_t path_bytes;
  std::uint32_t name_bytes;
};

struct Request {
  char op = kProbeRequest;
  std::string path, name;
  Header header;  // read: what the probe found
  Box roi;        // read: the voxels wanted
};

WireHeader to_wire(const Header& h) {
  return WireHeader{{h.dims.x, h.dims.y, h.dims.z},
                    static_cast<std::int32_t>(h.dtype),
                    h.spacing_from_file,
                    {h.spacing_um[0], h.spacing_um[1], h.spacing_um[2]}};
}

// ---- deflate streams checked against the chunk size (in the reader process) ----
//
// libhdf5 1.10.8's deflate filter returns however many bytes a stream inflates to, and the chunk
// code then copies a whole chunk out of that buffer: a chunk whose stream inflates short is read
// past its end (ASan: heap-buffer-overflow in H5VM_memcpyvv under H5Dread; Release returned heap
// garbage as voxels, exit 0; tests/data/hdf5_deflate_chunk_short.h5). Predefined filters cannot
// be replaced (H5Zregister: "unable to modify predefined filters"), so before each slab is read
// the reader process inflates the stored stream of every chunk in it (discarding the output) and refuses a
// chunk that does not inflate to exactly the chunk's bytes.

// Where deflate sits in a dataset's pipeline and what its output must be.
struct DeflateStage {
  int index = -1;              // position in the pipeline; -1: no deflate, or one this check cannot follow
  std::uint64_t bytes = 0;     // what each chunk's stream must inflate to
  std::vector<hsize_t> chunk;  // the chunk's shape (file order)
};

// Filters before deflate in the pipeline run after it on reading: shuffle keeps the size,
// Fletcher-32 adds its 4 bytes. After it, only Fletcher-32 (a 4-byte checksum behind the stream)
// is followed; other filters (n-bit, scale-offset, szip around deflate) are left to libhdf5.
DeflateStage deflate_stage(hid_t dataset, int rank, std::uint64_t chunk_bytes) {
  DeflateStage d{-1, chunk_bytes, std::vector<hsize_t>(static_cast<std::size_t>(rank), 1)};
  const std::vector<H5Z_filter_t> filters = filter_pipeline(dataset);
  for (int i = 0; i < static_cast<int>(filters.size()); ++i) {
    const H5Z_filter_t f = filters[static_cast<std::size_t>(i)];
    if (f == H5Z_FILTER_DEFLATE && d.index < 0) d.index = i;
    else if (f == H5Z_FILTER_FLETCHER32 && d.index < 0) d.bytes += 4;
    else if (f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_FLETCHER32) return DeflateStage{};
  }
  Hid dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (d.index >= 0 && (!dcpl.valid() || H5Pget_chunk(dcpl.get(), rank, d.chunk.data()) != rank)) return DeflateStage{};
  return d;
}

// The number of bytes one zlib stream inflates to, or more than `limit` when it exceeds it; -1
// when the stream is corrupt or ends early.
std::int64_t inflated_size(const std::vector<unsigned char>& stored, std::uint64_t limit) {
  z_stream z{};
  if (stored.size() > UINT32_MAX || inflateInit(&z) != Z_OK) return -1;
  z.next_in = const_cast<Bytef*>(stored.data());
  z.avail_in = static_cast<uInt>(stored.size());
  unsigned char sink[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK && z.total_out <= limit) {
    z.next_out = sink;
    z.avail_out = sizeof sink;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && z.avail_out == sizeof sink) break;  // no progress: the input ended
  }
  const std::int64_t total = static_cast<std::int64_t>(z.total_out);
  inflateEnd(&z);
  return rc == Z_STREAM_END || total > static_cast<std::int64_t>(limit) ? total : -1;
}

// Refuses the first chunk overlapping the hyperslab (file order start/count) whose deflate
// stream does not inflate to exactly the chunk's bytes.
void check_deflate_chunks(hid_t dataset, const std::string& path, const std::string& name, int rank,
                          const DeflateStage& stage, const hsize_t* start, const hsize_t* count) {
  if (stage.index < 0) return;
  const std::vector<hsize_t>& chunk = stage.chunk;
  std::vector<hsize_t> first(rank), last(rank), at(rank);
  for (int a = 0; a < rank; ++a) {
    if (count[a] == 0) return;
    first[a] = start[a] / chunk[a];
    last[a] = (start[a] + count[a] - 1) / chunk[a];
  }
  const std::uint64_t file = file_bytes(path);
  std::vector<unsigned char> stored;
  for (std::vector<hsize_t> idx = first;;) {
    for (int a = 0; a < rank; ++a) at[a] = idx[a] * chunk[a];
    hsize_t bytes = 0;
    // An unwritten chunk reads as fill values (no filter); H5Dread reports other failures.
    if (H5Dget_chunk_storage_size(dataset, at.data(), &bytes) >= 0 && bytes > 0 && bytes <= file) {
      stored.resize(bytes);
      std::uint32_t skipped = 0;
      if (H5Dread_chunk(dataset, H5P_DEFAULT, at.data(), &skipped, stored.data()) >= 0 &&
          !(skipped & (1u << stage.index))) {
        const std::int64_t got = inflated_size(stored, stage.bytes);
        if (got != static_cast<std::int64_t>(stage.bytes)) {
          std::string where = "(";
          for (int a = 0; a < rank; ++a) where += (a ? ", " : "") + std::to_string(at[a]);
          where += ")";
          throw InputError(path + ": dataset '" + name + "' chunk at " + where + " (file order) " +
                           (got < 0 ? std::string("holds a corrupt deflate stream")
                                    : "inflates to " +
                                          std::string(got > static_cast<std::int64_t>(stage.bytes)
                                                          ? "more than"
                                                          : std::to_string(got) + " bytes, not") +
                                          " the chunk's " + std::to_string(stage.bytes) + " bytes") +
                           " (corrupt or hostile HDF5)");
        }
      }
    }
    int a = rank - 1;
    while (a >= 0 && idx[a] == last[a]) idx[a] = first[a], --a;
    if (a < 0) return;
    ++idx[a];
  }
}

// Child: sends the validated header.
void serve_probe(int fd, const Request& q) {
  Header h;
  open_validated(q.path, q.name, &h);
  const WireHeader w = to_wire(h);
  send_frame(fd, kHeaderFrame, &w, sizeof w);
}

// Child: sends the ROI's voxels in z-slabs of whole chunk layers.
void serve_read(int fd, const Request& q) {
  const std::string& path = q.path;
  const Box& roi = q.roi;
  const Dims d = box_dims(roi);
  const std::uint64_t plane =
      static_cast<std::uint64_t>(d.x) * static_cast<std::uint64_t>(d.y) * dtype_size(q.header.dtype);
  Header now;
  Opened o = open_validated(path, q.name, &now);
  if (now.dims != q.header.dims || now.dtype != q.header.dtype)
    throw InputError(path + ": dataset '" + o.name + "' changed while it was being read");
  const int rank = static_cast<int>(o.shape.size());
  const auto t = dtype_for(o.dataset.get());
  Hid type(H5Dget_type(o.dataset.get()), H5Tclose);
  // z-slabs of whole chunk layers, so that each chunk is decoded once.
  const std::uint64_t layer = chunk_layer(o.dataset.get(), rank);
  const std::uint64_t layers = std::max<std::uint64_t>(1, kSlabBytes / std::max<std::uint64_t>(1, plane * layer));
  const std::uint64_t step = layer * layers;
  // This slab, libhdf5's buffers for the chunks it decodes (stored and decoded) and its
  // type-conversion buffer, beyond the metadata budget.
  const std::uint64_t slab_max = std::min<std::uint64_t>(step, static_cast<std::uint64_t>(d.z)) * plane;
  // A chunk beyond both the dataset and a slab is no genuine layout: it gets no allowance.
  const std::uint64_t dataset_bytes = static_cast<std::uint64_t>(now.dims.count()) * H5Tget_size(type.get());
  const std::uint64_t chunk =
      std::min(chunk_bytes(o.dataset.get(), rank, H5Tget_size(type.get())), std::max(dataset_bytes, kSlabBytes));
  rlimit r{};
  if (::getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
    r.rlim_cur += slab_max + 3 * chunk + (std::uint64_t{16} << 20);
    if (r.rlim_max != RLIM_INFINITY) r.rlim_cur = std::min<rlim_t>(r.rlim_cur, r.rlim_max);
    ::setrlimit(RLIMIT_AS, &r);
  }
  const DeflateStage deflate =
      deflate_stage(o.dataset.get(), rank, chunk_bytes(o.dataset.get(), rank, H5Tget_size(type.get())));
  std::vector<char> slab(slab_max);
  Hid fspace(H5Dget_space(o.dataset.get()), H5Sclose);
  const std::uint64_t z_end = static_cast<std::uint64_t>(roi.min[2] + roi.size[2]);
  for (std::uint64_t z = static_cast<std::uint64_t>(roi.min[2]); z < z_end;) {
    const std::uint64_t next = std::min(z_end, (z / step + 1) * step);
    // File order is (z, y, x); a 2-D dataset is (y, x).
    hsize_t start[3], count[3];
    for (int a = 0; a < rank; ++a) {
      start[rank - 1 - a] = static_cast<hsize_t>(roi.min[a]);
      count[rank - 1 - a] = static_cast<hsize_t>(roi.size[a]);
    }
    if (rank == 3) {
      start[0] = z;
      count[0] = next - z;
    }
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    Hid mspace(H5Screate_simple(rank, count, nullptr), H5Sclose);
    const std::uint64_t bytes = (next - z) * plane;
    check_deflate_chunks(o.dataset.get(), path, o.name, rank, deflate, start, count);
    if (H5Dread(o.dataset.get(), t->second, mspace.get(), fspace.get(), H5P_DEFAULT, slab.data()) < 0)
      throw InputError(path + ": cannot read dataset '" + o.name +
                       "' (truncated, corrupt, or compressed with a filter this HDF5 library lacks)");
    send_frame(fd, kVoxelFrame, slab.data(), bytes);
    z = next;
  }
}

// Child: the next request, false when the parent has gone (end of the socket) or sent garbage.
bool receive_request(int fd, Request& q) {
  WireRequest w{};
  if (!read_all(fd, &w, sizeof w) || w.path_bytes > kMaxRequestString || w.name_bytes > kMaxRequestString) return false;
  q.op = w.op;
  q.path.resize(w.path_bytes);
  q.name.resize(w.name_bytes);
  if (!read_all(fd, q.path.data(), q.path.size()) || !read_all(fd, q.name.data(), q.name.size())) return false;
  q.header = Header{};
  q.header.dims = Dims{w.dims[0], w.dims[1], w.dims[2]};
  q.header.dtype = static_cast<DType>(w.dtype);
  for (int a = 0; a < 3; ++a) {
    q.roi.min[a] = w.roi_min[a];
    q.roi.size[a] = w.roi_size[a];
  }
  return true;
}

// Child: serves requests until the parent goes away or a file leaves this process untrustworthy.
[[noreturn]] void serve(int fd) {
  // A crash in libhdf5 ends this child only (not a fuzzer's or a sanitizer's handler of the parent).
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
  // Nor does a sanitizer report here run a fuzzer's death callback: it would save the input the
  // fuzzer held at the fork. The parent reports the crash with the input that caused it.
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(nullptr);
  // Also keeps libhdf5 from printing its error stack: errors are reported by us.
  H5Eset_auto2(H5E_DEFAULT, note_allocation_failures, nullptr);
  rlimit inherited{};
  const bool limits = ::getrlimit(RLIMIT_AS, &inherited) == 0;
  for (Request q; receive_request(fd, q);) {
    // Each request gets the metadata budget from the address space it starts with.
    if (limits) ::setrlimit(RLIMIT_AS, &inherited);
    limit_address_space(kHdf5MemoryBudget);
    allocation_refused = false;
    std::string error;
    try {
      if (q.op == kProbeRequest) serve_probe(fd, q);
      else if (q.op == kReadRequest) serve_read(fd, q);
      else ::_exit(4);
    } catch (const InputError& e) {
      error = e.what();
    } catch (const std::bad_alloc&) {
      allocation_refused = true;
    } catch (const std::exception& e) {
      error = q.path + ": " + e.what();
    }
    if (allocation_refused)
      error = q.path + ": libhdf5 asked for more memory than this " + std::to_string(file_bytes(q.path)) +
              "-byte file can justify (over " + std::to_string(kHdf5MemoryBudget >> 20) +
              " MiB beyond the voxels; corrupt or hostile HDF5 metadata)";
    if (!error.empty()) send_frame(fd, kErrorFrame, error.data(), error.size());
    // After an error the file may have left libhdf5's state altered (fuzz_hdf5: a SIGSEGV that
    // only a sequence of inputs gives), after a refused allocation libhdf5 is half-way through an
    // operation, and a file whose objects stayed open would be found again by a later open of the
    // same inode: a fresh child serves the next request. The answer then ends without a done
    // frame; the parent forks anew.
    if ((!error.empty() && !keep_after_errors) || allocation_refused ||
        H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE) != 0)
      ::_exit(0);
    send_frame(fd, kDoneFrame, nullptr, 0);
  }
  ::_exit(0);  // no atexit handlers: they belong to the parent
}

// Parent: the reader process, if one runs. At exit it is told to end (the socket closes) and
// waited for, so its CPU time counts as this process's children's. There is one (reader_process())
// and it is never copied: a copy's destructor would end the reader it names. (The reverted first
// version assigned `r = ReaderProcess{pid, fd}`; clang destroys that temporary, which closed the
// socket and waited for the reader it had just forked, so under sanitize.sh every request found
// the reader gone; GCC 12 skips that destructor call, so Release passed.)
class ReaderProcess {
 public:
  ReaderProcess() = default;
  ReaderProcess(const ReaderProcess&) = delete;
  ReaderProcess& operator=(const ReaderProcess&) = delete;
  ~ReaderProcess() {
    if (running()) end(false);
  }

  bool running() const { return pid_ >= 0; }
  int fd() const { return fd_; }

  // Forks the reader; it talks through one end of a socket pair, we through the other.
  void start() {
    // A process forked from this one (a sample's worker) must fork its own reader, not talk to ours.
    static const bool forget_in_children = [] {
      return ::pthread_atfork(nullptr, nullptr, [] { reader_process().forget(); }) == 0;
    }();
    (void)forget_in_children;
    H5open();  // initialised once here, inherited by every child
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      throw std::system_error(errno, std::generic_category(), "socket for the HDF5 reader");
    // Fewer round trips for the voxel slabs.
    const int buffer = 4 << 20;
    ::setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int e = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      throw std::system_error(e, std::generic_category(), "fork for the HDF5 reader");
    }
    if (pid == 0) {
      ::close(fds[0]);
      serve(fds[1]);
    }
    ::close(fds[1]);
    pid_ = pid;
    fd_ = fds[0];
  }

  // Ends the reader (killing it first when asked) and returns its wait status.
  int end(bool kill) {
    if (kill) ::kill(pid_, SIGKILL);
    ::close(fd_);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = fd_ = -1;
    return status;
  }

  static ReaderProcess& reader_process() {
    static ReaderProcess r;
    return r;
  }

 private:
  // In a forked child: the parent's reader is not ours to end or wait for.
  void forget() {
    if (fd_ >= 0) ::close(fd_);
    pid_ = fd_ = -1;
  }

  pid_t pid_ = -1;
  int fd_ = -1;  // our end of the socket
};

bool send_request(int fd, const Request& q) {
  WireRequest w{};
  w.op = q.op;
  w.dtype = static_cast<std::int32_t>(q.header.dtype);
  w.dims[0] = q.header.dims.x;
  w.dims[1] = q.header.dims.y;
  w.dims[2] = q.header.dims.z;
  for (int a = 0; a < 3; ++a) {
    w.roi_min[a] = q.roi.min[a];
    w.roi_size[a] = q.roi.size[a];
  }
  w.path_bytes = static_cast<std::uint32_t>(q.path.size());
  w.name_bytes = static_cast<std::uint32_t>(q.name.size());
  std::string bytes(reinterpret_cast<const char*>(&w), sizeof w);
  bytes += q.path;
  bytes += q.name;
  return send_all(fd, bytes.data(), bytes.size());  // a reader that died: false, not SIGPIPE
}

// Sends the request to the reader process (forking one when none runs) and hands each frame of
// the answer to `receive(tag, length, fd)`, which reads exactly `length` bytes or returns false.
// Throws the child's InputError, or one naming the file when libhdf5 was refused memory or
// crashed.
template <class Receive>
void run_isolated(const Request& q, Receive&& receive) {
  const std::string& path = q.path;
  if (q.path.size() > kMaxRequestString || q.name.size() > kMaxRequestString)
    throw InputError(path + ": path or dataset name longer than " + std::to_string(kMaxRequestString) + " bytes");
  std::lock_guard lock(hdf5_mutex());
  ReaderProcess& r = ReaderProcess::reader_process();
  if (r.running() && !send_request(r.fd(), q)) r.end(true);  // it ended since its last answer
  if (!r.running()) {
    r.start();
    if (!send_request(r.fd(), q)) {
      r.end(true);
      throw InputError(path + ": the HDF5 reader process did not take the request");
    }
  }
  std::string error;
  bool broken = false, done = false;
  try {
    for (char tag; !done && read_all(r.fd(), &tag, 1);) {
      std::uint64_t n = 0;
      if (!read_all(r.fd(), &n, sizeof n)) {
        broken = true;
      } else if (tag == kDoneFrame) {
        done = n == 0;
        broken = n != 0;
      } else if (tag == kErrorFrame && n <= kMaxMessageBytes) {
        error.resize(n);
        broken = !read_all(r.fd(), error.data(), n);
      } else {
        broken = tag == kErrorFrame || !receive(tag, n, r.fd());
      }
      if (broken) break;
    }
  } catch (...) {
    broken = true;
  }
  if (done && !error.empty()) throw InputError(error);
  if (done) return;
  const int status = r.end(broken);
  if (!error.empty()) throw InputError(error);
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) reader_aborts.fetch_add(1);
  if (WIFSIGNALED(status) && !broken)
    throw InputError(path + ": libhdf5 crashed reading this file (" + signal_name(WTERMSIG(status)) +
                     "; corrupt or hostile HDF5)");
  throw InputError(path + ": the HDF5 reader process ended without a complete answer (corrupt or hostile HDF5)");
}

}  // namespace

int hdf5_reader_aborts() { return reader_aborts.load(); }

void keep_hdf5_reader_after_errors(bool keep) {
  std::lock_guard lock(hdf5_mutex());
  keep_after_errors = keep;  // read by the next reader process forked
}

Header probe_hdf5(const std::string& path, const std::string& name) {
  WireHeader w{};
  bool got = false;
  Request q;
  q.op = kProbeRequest;
  q.path = path;
  q.name = name;
  run_isolated(q, [&](char tag, std::uint64_t n, int fd) {
    if (tag != kHeaderFrame || n != sizeof w || got) return false;
    return got = read_all(fd, &w, sizeof w);
  });
  if (!got || w.dtype < 0 || w.dtype > static_cast<int>(DType::f32))
    throw InputError(path + ": the HDF5 reader process sent no header (corrupt or hostile HDF5)");
  Header h;
  h.dims = Dims{w.dims[0], w.dims[1], w.dims[2]};
  h.dtype = static_cast<DType>(w.dtype);
  h.spacing_from_file = w.spacing_from_file != 0;
  h.spacing_um = {w.spacing_um[0], w.spacing_um[1], w.spacing_um[2]};
  return h;
}

AnyVolume read_hdf5(const std::string& path, const std::string& name, const Header& header, const Box& roi) {
  AnyVolume out = allocate_volume(header.dtype, box_dims(roi));
  const Dims d = box_dims(roi);
  const std::uint64_t sample = dtype_size(header.dtype);
  const std::uint64_t plane = static_cast<std::uint64_t>(d.x) * static_cast<std::uint64_t>(d.y) * sample;
  const std::uint64_t total = plane * static_cast<std::uint64_t>(d.z);
  std::uint64_t filled = 0;
  char* dst = static_cast<char*>(voxel_bytes(out));
  Request q;
  q.op = kReadRequest;
  q.path = path;
  q.name = name;
  q.header = header;
  q.roi = roi;
  run_isolated(q, [&](char tag, std::uint64_t n, int fd) {
    if (tag != kVoxelFrame || n > total - filled) return false;
    if (!read_all(fd, dst + filled, n)) return false;
    filled += n;
    return true;
  });
  if (filled != total)
    throw InputError(path + ": the HDF5 reader process sent " + std::to_string(filled) + " of " +
                     std::to_string(total) + " voxel bytes (corrupt or hostile HDF5)");
  return out;
}

void write_hdf5(VolumeRef volume, const std::string& path, const std::string& dataset, bool compress) {
  std::lock_guard lock(hdf5_mutex());
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
