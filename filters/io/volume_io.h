// Reading and writing volumes in the formats beamlines and viewers use.
// No ITK types here: ITK stays inside the .cpp files that need it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/volume.h"

namespace vp {

struct ReadOptions {
  std::string path;             // a file, a folder of 2-D TIFF slices, or a glob ("stack/slice_*.tif")
  std::string format = "auto";  // auto | tiff | mha | mhd | nrrd | nifti | raw | hdf5 | npy
  // raw binary (format: raw)
  std::optional<Dims> dims;
  std::optional<DType> dtype;
  bool big_endian = false;
  std::uint64_t header_bytes = 0;
  // HDF5 (format: hdf5)
  std::string dataset;  // e.g. "/exchange/data"; empty = the only 3-D dataset in the file
  // Region of interest: only this box is kept (read slice-wise where the format allows).
  std::optional<Box> roi;
  bool hash = true;  // compute the SHA-256 of the input bytes for provenance
  // Most voxels a header may claim; 0 = $VP_MAX_VOXELS, else kDefaultMaxVoxels.
  std::uint64_t max_voxels = 0;
};

// 2^34 voxels (16 GiB of uint8): above a 2048^3 scan, far below what 64-bit sizes can wrap to.
inline constexpr std::uint64_t kDefaultMaxVoxels = std::uint64_t{1} << 34;
// The voxel cap in force for these options (throws InputError on a malformed $VP_MAX_VOXELS).
std::uint64_t max_voxels(const ReadOptions& options);

struct ReadResult {
  AnyVolume volume;                // provenance filled: absolute path + sha256
  std::string format;              // the format actually read
  bool spacing_from_file = false;  // true when the file recorded a voxel size
};

// Throws InputError naming the file and what was wrong (truncated, dims vs size, missing dataset,
// NaN in a float volume, zero-sized volume, unsupported sample format, ...). Every header field
// is checked before any voxel buffer is allocated: sizes whose product wraps 64 bits, data
// claimed beyond the file (or beyond what its compressed bytes can expand to), the voxel cap.
ReadResult read_volume(const ReadOptions& options);

// Header only: dims, dtype and spacing without reading voxels.
struct VolumeInfo {
  Dims dims;
  DType dtype = DType::u8;
  Vec3 spacing_um{1, 1, 1};
  bool spacing_from_file = false;
  std::string format;
};
VolumeInfo probe_volume(const ReadOptions& options);

struct WriteOptions {
  std::string format = "auto";             // auto (from the extension) | tiff | mha | nrrd | nifti | raw | npy | hdf5
  bool compress = true;                    // Deflate for TIFF, zlib for MHA/NRRD, gzip'ed chunks for HDF5
  std::string dataset = "/exchange/data";  // HDF5 only: where the volume goes
};

// Writes atomically (temporary file, then rename). TIFF: one page per z, ImageJ-compatible
// spacing; MHA/NRRD: spacing and origin in the header (µm); NIfTI: in mm as the format wants;
// npy: numpy (z, y, x) C order, no spacing; HDF5: numpy (z, y, x) with element_size_um (z, y, x);
// raw: the voxels alone, x fastest, little-endian.
void write_volume(const AnyVolume& volume, const std::string& path, const WriteOptions& options = {});

namespace io_detail {
// Defined for the five element types in volume_io.cpp.
template <class T>
void write_typed(const Volume<T>& volume, const std::string& path, const WriteOptions& options);
}  // namespace io_detail

// Writes a typed volume (LabelVolume included) without copying it into an AnyVolume.
template <class T>
void write_volume(const Volume<T>& volume, const std::string& path, const WriteOptions& options = {}) {
  io_detail::write_typed(volume, path, options);
}

}  // namespace vp
