// Internal to filters/io: one reader/writer per file format, behind read_volume/write_volume.
// Each reader fills a Header without touching voxels (probe) and reads only the ROI's voxels
// straight into a Volume allocated at the ROI's size.
#pragma once

#include <string>
#include <vector>

#include "filters/io/volume_io.h"

namespace vp::io {

// What a file says about its volume before any voxel is read.
struct Header {
  Dims dims;
  DType dtype = DType::u8;
  Vec3 spacing_um{1, 1, 1};
  Vec3 origin_um{0, 0, 0};
  bool spacing_from_file = false;
  std::vector<std::vector<std::uint32_t>> tiff_pages;  // TIFF: the slice pages of each input file
  // ImageJ stacks over 4 GB keep one IFD and `images=N` planes back to back from this offset.
  std::uint64_t imagej_planes_offset = 0;
  bool big_endian = false;
};

// ---- header limits (read_limits.cpp): what a header may claim, checked before allocating ----
// Most bytes any size computation may reach: index arithmetic in bytes never wraps below 2^63.
inline constexpr std::uint64_t kMaxHeaderBytes = std::uint64_t{1} << 62;
// Deflate (zlib, gzip) expands at most 1032:1; a claim beyond that is a lie.
inline constexpr std::uint64_t kMaxDeflateRatio = 1032;

// a * b, or an InputError "path: field ..." when the product leaves [0, kMaxHeaderBytes].
std::uint64_t checked_mul(const std::string& path, const std::string& field, std::uint64_t a, std::uint64_t b);
// a + b under the same limit.
std::uint64_t checked_add(const std::string& path, const std::string& field, std::uint64_t a, std::uint64_t b);
// The dims a header's (x, y, z) sizes make, each and their product times `bytes_per_voxel`
// checked; `field` names the header field the sizes came from.
Dims checked_dims(const std::string& path, const std::string& field, std::uint64_t x, std::uint64_t y, std::uint64_t z,
                  std::uint64_t bytes_per_voxel);
// Refuses `needed` bytes of voxels when the file holds only `stored` bytes for them and they
// could expand at most `max_ratio` times (1: uncompressed). `what` names the field or data.
void check_stored(const std::string& path, const std::string& what, std::uint64_t needed, std::uint64_t stored,
                  std::uint64_t max_ratio);
// Refuses dims over the voxel cap, saying how to raise it.
void check_voxel_cap(const std::string& path, const Dims& dims, std::uint64_t cap);
// The file's size in bytes (InputError when it cannot be stat'ed).
std::uint64_t file_bytes(const std::string& path);

// A non-owning handle on a volume of any element type: writers take it so that writing a
// Volume<T> never copies it into an AnyVolume.
using VolumeRef = std::variant<const Volume<std::uint8_t>*, const Volume<std::uint16_t>*, const Volume<std::int16_t>*,
                               const Volume<std::uint32_t>*, const Volume<float>*>;
VolumeRef ref_of(const AnyVolume& v);
Dims ref_dims(VolumeRef v);
DType ref_dtype(VolumeRef v);
Vec3 ref_spacing(VolumeRef v);
const void* ref_bytes(VolumeRef v);

// A zero-initialised volume of the given element type and size.
AnyVolume allocate_volume(DType dtype, Dims dims);
// Untyped access to an AnyVolume's voxel buffer (x fastest).
void* voxel_bytes(AnyVolume& v);
const void* voxel_bytes(const AnyVolume& v);
Dims box_dims(const Box& b);
bool covers_all(const Box& b, const Dims& d);

// TIFF (libtiff): one multi-page file or several files whose pages follow each other in z.
Header probe_tiff(const std::vector<std::string>& files);
AnyVolume read_tiff(const std::vector<std::string>& files, const Header& header, const Box& roi);
void write_tiff(VolumeRef volume, const std::string& path, bool compress);

// MHA/MHD, NRRD, NIfTI (ITK ImageIO). format: mha | mhd | nrrd | nifti.
Header probe_itk(const std::string& path, const std::string& format);
AnyVolume read_itk(const std::string& path, const std::string& format, const Header& header, const Box& roi);
void write_itk(VolumeRef volume, const std::string& path, const std::string& format, bool compress);
// Files whose bytes make up an ITK image: the header plus a detached data file (MHD, NHDR).
std::vector<std::string> itk_data_files(const std::string& path);

// Raw binary: dims, dtype, endianness and header offset come from the options.
Header probe_raw(const ReadOptions& options);
AnyVolume read_raw(const ReadOptions& options, const Header& header, const Box& roi);
void write_raw(VolumeRef volume, const std::string& path);
// The ROI of dims.count() samples of dtype stored x-fastest from `offset` (raw, ImageJ planes).
AnyVolume read_contiguous(const std::string& path, std::uint64_t offset, DType dtype, bool big_endian, const Dims& dims,
                          const Box& roi);

// NumPy .npy (C or Fortran order; numpy shape (z, y, x) or (y, x)).
Header probe_npy(const std::string& path);
AnyVolume read_npy(const std::string& path, const Header& header, const Box& roi);
void write_npy(VolumeRef volume, const std::string& path);

// HDF5 (C API): a named dataset or the only 3-D dataset; numpy shape (z, y, x).
Header probe_hdf5(const std::string& path, const std::string& dataset);
AnyVolume read_hdf5(const std::string& path, const std::string& dataset, const Header& header, const Box& roi);
void write_hdf5(VolumeRef volume, const std::string& path, const std::string& dataset, bool compress);
// ---- HDF5 object headers read without libhdf5 (hdf5_object_header.cpp) ----
// Where an object's header is and how the file encodes addresses (from the superblock).
struct Hdf5ObjectHeader {
  std::uint64_t address = 0;  // as libhdf5 gives it: relative to the base address
  std::uint64_t base = 0;     // the base address (after a user block)
  unsigned offset_bytes = 8;  // the superblock's "size of offsets"
  unsigned length_bytes = 8;  // and "size of lengths"
};
struct AttributeVerdict {
  bool verifiable = true;  // false: some attribute is stored where the check does not follow
  std::string why_not;
};
// Walks the object header's chunks and checks that each attribute message holds its name
// (NUL-terminated) and the data its dataspace and datatype size claim; throws InputError naming
// the file and the attribute when one does not. Dense storage and shared messages: not verifiable.
AttributeVerdict check_attribute_messages(const std::string& path, const Hdf5ObjectHeader& at);

// The HDF5 reader process ends after any answer that is an error, so that a hostile file cannot
// leave libhdf5's state altered for the next file. The fuzz harness keeps it across errors (one
// fork per crash instead of per input; accumulated state is a harsher test).
void keep_hdf5_reader_after_errors(bool keep);

// How many HDF5 reader processes this process has seen end by SIGABRT (a sanitizer report in
// libhdf5 under the fuzz build): the fuzz harness counts findings by it, not by the message,
// whose text a hostile file can echo.
int hdf5_reader_aborts();

}  // namespace vp::io
