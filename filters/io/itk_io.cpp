// MHA/MHD, NRRD and NIfTI through ITK's ImageIO. Reading decodes straight into the volume's
// buffer; writing hands ITK a non-owning view of it (itk_bridge.h).
//
// Units: MHA/MHD and NRRD carry spacing and origin as plain numbers; ours are micrometres.
// ITK's NIfTI IO converts the file's units to millimetres, so NIfTI is scaled by 1000 both ways.
#include <itkImageFileWriter.h>
#include <itkImageIOBase.h>
#include <itkImageIOFactory.h>
#include <itkMetaImageIO.h>
#include <itkNiftiImageIO.h>
#include <itkNrrdImageIO.h>

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>

#include "core/atomic_file.h"
#include "core/error.h"
#include "filters/io/io_formats.h"
#include "filters/io/itk_bridge.h"

namespace vp::io {
namespace {

using Component = itk::IOComponentEnum;

double um_per_itk_unit(const std::string& format) { return format == "nifti" ? 1000.0 : 1.0; }

std::string trimmed(std::string s);

// ITK 5.2's MetaIO parses a header into fixed-size records (255 values or characters per field)
// and trusts NDims, counts and the ElementDataFile pattern (a printf format it runs): a crafted
// header overflows its heap (fuzz_mha found one, kept as tests/data/fuzz_mha_overflow.mha).
// So the header is validated here, field by field, before MetaIO sees it.
void check_meta_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open");
  auto refuse = [&](const std::string& field, const std::string& what) {
    throw InputError(path + ": MetaImage header " + (field.empty() ? "" : "field " + field + " ") + what);
  };
  auto numbers = [&](const std::string& field, const std::string& value, std::size_t count, bool integral) {
    std::istringstream ss(value);
    std::string word;
    std::size_t n = 0;
    while (ss >> word) {
      char* end = nullptr;
      const double v = std::strtod(word.c_str(), &end);
      if (*end != '\0' || !std::isfinite(v) || (integral && v != std::floor(v)))
        refuse(field, "holds '" + word + "'; expected " + (integral ? "integers" : "finite numbers"));
      ++n;
    }
    if (n != count)
      refuse(field, "holds " + std::to_string(n) + " values; expected " + std::to_string(count) + " (NDims" +
                        (count > 3 ? " squared)" : ")"));
  };
  static const std::set<std::string> element_types{"MET_CHAR",      "MET_UCHAR",      "MET_SHORT", "MET_USHORT",
                                                   "MET_INT",       "MET_UINT",       "MET_LONG",  "MET_ULONG",
                                                   "MET_LONG_LONG", "MET_ULONG_LONG", "MET_FLOAT", "MET_DOUBLE"};
  static const std::set<std::string> per_axis{"DimSize",  "ElementSpacing", "ElementSize",     "Offset",
                                              "Position", "Origin",         "CenterOfRotation"};
  static const std::set<std::string> per_axis_squared{"TransformMatrix", "Rotation", "Orientation"};
  int ndims = 0;
  bool has_type = false, has_dims = false;
  std::set<std::string> seen;
  std::string line;
  std::uint64_t header_bytes = 0;
  while (std::getline(in, line)) {
    header_bytes += line.size() + 1;
    if (header_bytes > (1u << 20)) refuse("", "runs past 1 MiB without an ElementDataFile line");
    for (unsigned char c : line)
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
        refuse("", "holds a control byte (code " + std::to_string(c) +
                       ") before its ElementDataFile line; a MetaImage header is text");
    if (trimmed(line).empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      refuse("", "line '" + line.substr(0, 40) + "' has no '='; expected 'Key = Value' lines");
    const std::string key = trimmed(line.substr(0, eq)), value = trimmed(line.substr(eq + 1));
    // Keys are names (MetaIO's own, ITK's user fields, DICOM tags such as 0008|0060): fuzz_mha
    // produced keys with quotes and bytes >= 0x80 next to MetaIO's heap corruption.
    if (key.empty() || key.size() > 64 ||
        key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_|.-") !=
            std::string::npos)
      refuse("", "key '" + key.substr(0, 40) + "' is not a name (letters, digits, '_', '|', '.', '-', at most 64)");
    if (value.size() > 254) refuse(key, "is " + std::to_string(value.size()) + " characters long; at most 254");
    if (!seen.insert(key).second) refuse(key, "appears twice; each field is given once");
    if ((key == "CompressedData" || key == "BinaryData" || key == "BinaryDataByteOrderMSB" ||
         key == "ElementByteOrderMSB") &&
        value != "True" && value != "False" && value != "true" && value != "false")
      refuse(key, "is '" + value.substr(0, 40) + "'; expected True or False");
    if (key == "NDims") {
      numbers(key, value, 1, true);
      ndims = std::atoi(value.c_str());
      if (ndims < 2 || ndims > 3) refuse(key, "is " + value + "; expected a 2-D or 3-D volume (2 or 3)");
      continue;
    }
    if ((per_axis.count(key) || per_axis_squared.count(key) || key == "AnatomicalOrientation") && ndims == 0)
      refuse(key, "comes before NDims; NDims must be given first");
    if (per_axis.count(key)) numbers(key, value, static_cast<std::size_t>(ndims), key == "DimSize");
    if (per_axis_squared.count(key)) numbers(key, value, static_cast<std::size_t>(ndims * ndims), false);
    if (key == "DimSize") {
      has_dims = true;
      std::istringstream ss(value);
      // The word, not a cast: fuzz_mha's -2.2e82 overflowed long long (UBSan).
      for (std::string w; ss >> w;)
        if (std::strtod(w.c_str(), nullptr) < 1) refuse(key, "holds " + w.substr(0, 40) + "; sizes must be positive");
    }
    if (key == "AnatomicalOrientation" && value.size() != static_cast<std::size_t>(ndims) && value != "?" &&
        value.find_first_not_of('?') != std::string::npos)
      refuse(key, "is '" + value + "'; expected one letter per axis (NDims)");
    if (key == "ElementNumberOfChannels" && value != "1")
      refuse(key, "is '" + value + "'; expected 1 (a scalar volume)");
    if (key == "HeaderSize") {
      numbers(key, value, 1, true);
      if (std::atof(value.c_str()) < -1) refuse(key, "is " + value + "; expected -1 or a byte count");
    }
    if (key == "ElementType") {
      if (!element_types.count(value)) refuse(key, "is '" + value + "'; expected a MET_ type such as MET_UCHAR");
      has_type = true;
    }
    if (key == "ElementDataFile") {
      if (value.empty()) refuse(key, "is empty; expected LOCAL or a file name");
      if (ndims == 0 || !has_dims || !has_type)
        refuse(key, "comes before NDims, DimSize and ElementType; it must be the last header line");
      // LIST and patterns "NAME%0Nd.raw FIRST LAST STEP" (one file per slice) are refused:
      // fuzz_mha found MetaIO's LIST reader corrupting the heap on a malformed list, and
      // voxpress's size checks cover one data file. One data file: LOCAL or a name.
      if (value.rfind("LIST", 0) == 0 || value.find_first_of(" \t%") != std::string::npos)
        refuse(key, "'" + value.substr(0, 60) +
                        "' names several slice files (LIST or a pattern with '%'); voxpress reads one data "
                        "file: LOCAL or a file name (join the slices into one file)");
      return;
    }
  }
  refuse("ElementDataFile", "is missing; it ends a MetaImage header");
}

// The format's own ImageIO, not ITK's factory: the factory asks every registered reader in turn
// (about 100 ms per file, and readers of formats we never meant to parse see hostile bytes).
itk::ImageIOBase::Pointer io_for(const std::string& format) {
  if (format == "mha" || format == "mhd") return itk::MetaImageIO::New().GetPointer();
  if (format == "nrrd") return itk::NrrdImageIO::New().GetPointer();
  if (format == "nifti") return itk::NiftiImageIO::New().GetPointer();
  return nullptr;
}

void check_nifti_geometry(const std::string& path);  // below, with the other NIfTI checks

itk::ImageIOBase::Pointer open_io(const std::string& path, const std::string& format) {
  if (format == "mha" || format == "mhd") check_meta_header(path);
  if (format == "nifti") check_nifti_geometry(path);
  itk::ImageIOBase::Pointer io = io_for(format);
  if (!io || !io->CanReadFile(path.c_str()))
    throw InputError(path + ": not a readable " + format + " file (the " + format +
                     " reader does not recognise its header); expected MHA/MHD, NRRD or NIfTI as its name says");
  io->SetFileName(path);
  try {
    io->ReadImageInformation();
  } catch (const itk::ExceptionObject& e) {
    throw InputError(path + ": cannot read the image header (" + std::string(e.GetDescription()) + ")");
  }
  return io;
}

// int8 widens to int16 and float64 narrows to float32; other component types are refused.
DType dtype_for(const itk::ImageIOBase& io, const std::string& path) {
  switch (io.GetComponentType()) {
    case Component::UCHAR: return DType::u8;
    case Component::CHAR: return DType::i16;
    case Component::USHORT: return DType::u16;
    case Component::SHORT: return DType::i16;
    case Component::UINT: return DType::u32;
    case Component::FLOAT: return DType::f32;
    case Component::DOUBLE: return DType::f32;
    default:
      throw InputError(path + ": unsupported sample format " +
                       itk::ImageIOBase::GetComponentTypeAsString(io.GetComponentType()) +
                       "; expected uint8, int8, uint16, int16, uint32, float32 or float64 voxels");
  }
}

template <class Src, class Dst>
void read_converted(itk::ImageIOBase& io, Dst* dst, std::size_t n) {
  std::vector<Src> tmp(n);
  io.Read(tmp.data());
  std::transform(tmp.begin(), tmp.end(), dst, [](Src s) { return static_cast<Dst>(s); });
}

std::uint64_t size_of(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

[[noreturn]] void truncated(const std::string& path, std::uint64_t expected, std::uint64_t actual, const char* what) {
  throw InputError(path + ": truncated; the header promises " + std::to_string(expected) + " bytes of " + what +
                   ", the file holds " + std::to_string(actual));
}

std::string trimmed(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t\r") + 1);
  return s;
}

// ITK 5.2's MetaIO inflates in a loop that never ends on a corrupt zlib stream (a hang found by
// fuzz_mha): inflate the stored bytes once here, discarding the output, and accept only one
// clean stream of exactly the promised size. Time is bounded by `expected`.
void check_zlib_stream(const std::string& path, const std::string& where, std::uint64_t offset, std::uint64_t stored,
                       std::uint64_t expected) {
  std::ifstream in(where, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw std::runtime_error("zlib: inflateInit failed");
  std::vector<unsigned char> src(1 << 16), dst(1 << 16);
  std::uint64_t left = stored;
  int rc = Z_OK;
  while (rc != Z_STREAM_END && z.total_out <= expected) {
    if (z.avail_in == 0) {
      const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(left, src.size()));
      if (n == 0 || !in.read(reinterpret_cast<char*>(src.data()), n)) break;
      left -= static_cast<std::uint64_t>(n);
      z.next_in = src.data();
      z.avail_in = static_cast<uInt>(n);
    }
    z.next_out = dst.data();
    z.avail_out = static_cast<uInt>(dst.size());
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
  }
  const std::uint64_t got = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || got != expected)
    throw InputError(path + ": corrupt zlib voxel data (CompressedData = True): the stream " +
                     (rc == Z_STREAM_END ? "holds " + std::to_string(got) + " bytes"
                                         : "breaks after " + std::to_string(got) + " bytes") +
                     ", DimSize x ElementType promises " + std::to_string(expected));
}

// MetaIO reads short data without complaint: compare the header's promise with the bytes present
// (for zlib data, with what those bytes can expand to).
void check_meta_data(const std::string& path, std::uint64_t data_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string line, data_file;
  bool compressed = false, has_compressed_size = false;
  std::uint64_t compressed_size = 0, header_size = 0;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = trimmed(line.substr(0, eq)), value = trimmed(line.substr(eq + 1));
    if (key == "CompressedData") compressed = value == "True" || value == "true";
    // Malformed numbers are left for ITK to report.
    if (key == "CompressedDataSize") {
      compressed_size = std::strtoull(value.c_str(), nullptr, 10);
      has_compressed_size = true;
    }
    if (key == "HeaderSize" && value != "-1") header_size = std::strtoull(value.c_str(), nullptr, 10);
    if (key == "ElementDataFile") {
      data_file = value;
      break;  // the last header line
    }
  }
  // Lists and patterns of slice files: only the voxel cap applies.
  if (data_file.empty() || data_file.rfind("LIST", 0) == 0 || data_file.find(' ') != std::string::npos) return;
  std::uint64_t available;
  std::string where = path;
  if (data_file == "LOCAL") {
    const auto header_end = in.tellg();  // -1 when the header ends the file
    available = header_end < 0 ? 0 : size_of(path) - static_cast<std::uint64_t>(header_end);
  } else {
    where = (std::filesystem::path(path).parent_path() / data_file).string();
    const std::uint64_t n = size_of(where);
    available = n > header_size ? n - header_size : 0;
  }
  const std::string what = where == path ? "DimSize x ElementType" : "DimSize x ElementType (data in " + where + ")";
  if (!compressed) return check_stored(path, what, data_bytes, available, 1);
  if (has_compressed_size && available < compressed_size)
    truncated(where, compressed_size, available, "compressed voxel data");
  const std::uint64_t stored = has_compressed_size ? compressed_size : available;
  check_stored(path, what, data_bytes, stored, kMaxDeflateRatio);
  check_zlib_stream(path, where, where == path ? size_of(path) - available : header_size, stored, data_bytes);
}

// The fields of a NRRD header that the checks below need, read once. teem matches field names
// and encoding names without regard to case ("SIZES:", "encoding: RAW" are valid NRRD), so they
// are lower-cased here: a check that misses a spelling teem accepts checks nothing.
struct NrrdHeader {
  std::vector<std::string> sizes;  // every "sizes:" value (teem refuses duplicates; ITK may not see them)
  std::string encoding = "raw", data_file;
  bool attached = false;  // a blank line ends the header; the data follow it
  std::uint64_t data_offset = 0;
};

std::string lower_case(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

NrrdHeader read_nrrd_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NrrdHeader h;
  std::string line;
  std::getline(in, line);  // NRRD000X
  while (std::getline(in, line)) {
    if (trimmed(line).empty()) {
      h.attached = true;
      h.data_offset = static_cast<std::uint64_t>(std::max<std::streamoff>(in.tellg(), 0));
      break;
    }
    // Comments and "key:=value" pairs are not fields.
    if (line[0] == '#' || line.find(":=") != std::string::npos) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = lower_case(trimmed(line.substr(0, colon))), value = trimmed(line.substr(colon + 1));
    if (key == "sizes") h.sizes.push_back(value);
    if (key == "encoding") h.encoding = lower_case(value);
    if (key == "data file" || key == "datafile") h.data_file = value;
  }
  return h;
}

// Before ITK parses the header: teem reads a size that does not fit 64 bits as some other number
// and callocs for it while reading the header. Each size must be a decimal integer ≥ 1 and their
// product must fit 64 bits; the voxel cap is checked after.
void check_nrrd_sizes(const std::string& path, const NrrdHeader& header) {
  for (const std::string& sizes : header.sizes) {
    std::istringstream tokens(sizes);
    std::uint64_t product = 1;
    for (std::string t; tokens >> t;) {
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
      if (ec != std::errc() || end != t.data() + t.size() || n == 0 ||
          product > std::numeric_limits<std::uint64_t>::max() / n)
        throw InputError(path + ": NRRD sizes '" + sizes.substr(0, 80) +
                         "': expected integers ≥ 1 whose product fits 64 bits");
      product *= n;
    }
  }
}

// ITK 5.2's NRRD IO keeps sizes in 32 bits: "sizes: 2666666666666 2 2" reached us as
// 3786943146 x 2 x 2, under the voxel cap, while teem reads the data for the header's own sizes.
// The voxels ITK reports must be the product of the header's sizes.
void check_nrrd_voxels(const std::string& path, const NrrdHeader& header, std::uint64_t itk_voxels) {
  for (const std::string& sizes : header.sizes) {
    std::istringstream tokens(sizes);
    std::uint64_t product = 1;
    for (std::uint64_t n; tokens >> n;) product *= n;  // fits: check_nrrd_sizes ran first
    if (product != itk_voxels)
      throw InputError(path + ": NRRD sizes '" + sizes.substr(0, 80) + "' hold " + std::to_string(product) +
                       " voxels, ITK's reader reads " + std::to_string(itk_voxels) +
                       " (a size beyond 32 bits, or a sizes line for another dimension)");
  }
}

// ITK's NRRD IO allocates what "sizes" claims before it finds the data short: compare the
// claim with the data bytes present, as the "encoding" stores them.
void check_nrrd_data(const std::string& path, const NrrdHeader& header, std::uint64_t data_bytes,
                     std::uint64_t voxels) {
  std::uint64_t available;
  std::string where = path;
  if (!header.data_file.empty()) {
    const std::string& data_file = header.data_file;
    // LIST or "FORMAT MIN MAX STEP [SUBDIM]" (one file per slice) are refused, as for MHA: the size
    // checks cover one data file, and with none of them ITK allocated whatever the sizes claimed
    // before it found no data (fuzz_nrrd: 161 bytes with 'datafile: LIST...' made voxpress info
    // allocate 15 GB; tests/data/fuzz_nrrd_list_allocates.nrrd). The hash of the input would also
    // miss the slices.
    if (data_file.rfind("LIST", 0) == 0 || data_file.find_first_of(" \t%") != std::string::npos)
      throw InputError(path + ": data file '" + data_file.substr(0, 60) +
                       "' names several slice files (LIST or a pattern 'FORMAT MIN MAX STEP'); voxpress reads one "
                       "data file: attached data or one file name (join the slices into one file, e.g. unu join)");
    const std::filesystem::path p(data_file);
    where = (p.is_absolute() ? p : std::filesystem::path(path).parent_path() / p).string();
    available = size_of(where);
  } else if (header.attached) {
    available = size_of(path) - std::min(header.data_offset, size_of(path));
  } else {
    available = 0;  // neither attached nor detached data
  }
  const std::string what = where == path ? "sizes x type" : "sizes x type (data in " + where + ")";
  const std::string& encoding = header.encoding;
  if (encoding == "raw") check_stored(path, what, data_bytes, available, 1);
  else if (encoding == "gz" || encoding == "gzip") check_stored(path, what, data_bytes, available, kMaxDeflateRatio);
  else if (encoding == "hex") check_stored(path, what, data_bytes, available / 2, 1);
  // Text: at least one character per value.
  else if (encoding == "txt" || encoding == "text" || encoding == "ascii")
    check_stored(path, "sizes", voxels, available, 1);
  // teem parses only these and bzip2, which ITK's NrrdIO is built without: it failed only after our
  // volume was allocated. (Before the names were lower-cased, "encoding: RAW" took the loose bound
  // this branch had for bzip2, 65536:1, so 32 KB of data could allocate 2 GB.)
  else
    throw InputError(path + ": NRRD encoding '" + encoding +
                     "' cannot be read (ITK's NRRD reader has no bzip2); expected raw, gzip, hex or text — "
                     "re-save the volume with one of those");
}

// NIfTI's vox_offset and where the data start; compressed (.nii.gz) or not.
struct NiftiLayout {
  bool known = false;
  std::uint64_t offset = 0;
};

// A single-file NIfTI-1 or -2 header as read (plain or gzip), and the byte order it is in.
struct NiftiHeader {
  unsigned char bytes[540] = {};
  bool swap = false;  // the file's byte order is not this machine's
  bool two = false;   // NIfTI-2 (540 bytes, doubles) rather than NIfTI-1 (348, floats)

  std::uint64_t u(int offset, int width) const {
    std::uint64_t v = 0;
    if (width == 2) {
      std::uint16_t w;
      std::memcpy(&w, bytes + offset, 2);
      v = swap ? __builtin_bswap16(w) : w;
    } else if (width == 4) {
      std::uint32_t w;
      std::memcpy(&w, bytes + offset, 4);
      v = swap ? __builtin_bswap32(w) : w;
    } else {
      std::memcpy(&v, bytes + offset, 8);
      if (swap) v = __builtin_bswap64(v);
    }
    return v;
  }
  double real(int offset) const {  // a float (NIfTI-1) or double (NIfTI-2) field
    if (two) {
      const std::uint64_t w = u(offset, 8);
      double d;
      std::memcpy(&d, &w, 8);
      return d;
    }
    const auto w = static_cast<std::uint32_t>(u(offset, 4));
    float f;
    std::memcpy(&f, &w, 4);
    return f;
  }
};

// Only a single-file NIfTI-1 or -2 header (its size 348 or 540 in either byte order, magic
// "n+1" or "n+2") says where its voxels are. ITK reads anything else named .nii as an Analyze
// 7.5 header whose sizes nothing bounds: fuzz_nifti turned a 437-byte file into a 780 MB float
// volume of invented values, exit 0 (tests/data/fuzz_nifti_analyze.nii).
// The NIfTI library takes the byte order from dim[0] (1..7 in the right one), sizeof_hdr only
// when dim[0] fits neither: so dim[0] must agree with sizeof_hdr, or our checks below read the
// fields in one byte order while ITK reads them in the other (fuzz_nifti: a NaN in srow_z that
// only the swapped reading shows aborted ITK, tests/data/fuzz_nifti_dim0_order.nii).
NiftiHeader read_nifti_header(const std::string& path) {
  NiftiHeader h;
  gzFile gz = gzopen(path.c_str(), "rb");  // reads plain files as they are
  if (!gz) throw InputError(path + ": cannot open");
  const int got = gzread(gz, h.bytes, sizeof h.bytes);
  gzclose(gz);
  std::uint32_t size_native = 0;
  std::memcpy(&size_native, h.bytes, 4);
  const std::uint32_t size_swapped = __builtin_bswap32(size_native);
  h.swap = size_native != 348 && size_native != 540 && (size_swapped == 348 || size_swapped == 540);
  const std::uint32_t sizeof_hdr = h.swap ? size_swapped : size_native;
  const bool one = sizeof_hdr == 348 && got >= 348 && std::memcmp(h.bytes + 344, "n+1", 4) == 0;
  h.two = sizeof_hdr == 540 && got >= 540 && std::memcmp(h.bytes + 4, "n+2", 4) == 0;
  if (!one && !h.two)
    throw InputError(path + ": not a single-file NIfTI-1/-2 image: header field sizeof_hdr is " +
                     std::to_string(size_native) + " with no 'n+1'/'n+2' magic (expected 348 with 'n+1' or 540 with " +
                     "'n+2'; Analyze .hdr/.img pairs are not read)");
  const auto dim0 = static_cast<std::int64_t>(h.two ? h.u(16, 8) : static_cast<std::int16_t>(h.u(40, 2)));
  if (dim0 < 1 || dim0 > 7)
    throw InputError(path + ": NIfTI header field dim[0] is " + std::to_string(dim0) + " read in the byte order " +
                     "sizeof_hdr gives; expected 1 to 7 (a header whose dim[0] and sizeof_hdr disagree on byte " +
                     "order is damaged)");
  return h;
}

NiftiLayout nifti_layout(const std::string& path) {
  const NiftiHeader h = read_nifti_header(path);
  if (!h.two) {
    const double f = h.real(108);
    if (!(f >= 0 && f < 1e18)) throw InputError(path + ": NIfTI header field vox_offset is " + std::to_string(f));
    return {true, static_cast<std::uint64_t>(f)};
  }
  const auto o = static_cast<std::int64_t>(h.u(168, 8));
  if (o < 0 || static_cast<std::uint64_t>(o) > kMaxHeaderBytes)
    throw InputError(path + ": NIfTI header field vox_offset is " + std::to_string(o));
  return {true, static_cast<std::uint64_t>(o)};
}

// ITK 5.2's NIfTI reader builds the orientation from pixdim, the quaternion and the srow
// affine and aborts (vnl's assert_finite) on a NaN there: fuzz_nifti found it, kept as
// tests/data/fuzz_nifti_nan_srow.nii. So those fields must be finite before ITK sees them.
// NIfTI-1 (348-byte header, floats) and NIfTI-2 (540, doubles), either byte order, plain or gzip.
void check_nifti_geometry(const std::string& path) {
  // Before ITK parses anything: its reader accepts a sizeof_hdr of 0x0100015C and then aborts
  // on the NaN in srow_y we would not have looked at (fuzz_nifti, fuzz_nifti_sizeof_hdr.nii).
  const NiftiHeader h = read_nifti_header(path);
  struct Field {
    const char* name;
    int offset1, offset2, count;
  };
  static constexpr Field kFields[] = {{"pixdim", 76, 104, 8},         {"quatern_b/c/d", 256, 352, 3},
                                      {"qoffset_x/y/z", 268, 376, 3}, {"srow_x", 280, 400, 4},
                                      {"srow_y", 296, 432, 4},        {"srow_z", 312, 464, 4}};
  // Finite is not enough: a subnormal next to 8e23 in srow_x made ITK's SVD of the affine (vnl,
  // netlib ssvdc) spin for minutes (fuzz_nifti hang, tests/data/fuzz_nifti_svd_hang.nii). Voxel
  // sizes, quaternion and affine must be normal numbers (or 0) within 1e9 mm.
  const double smallest = h.two ? std::numeric_limits<double>::min() : std::numeric_limits<float>::min();
  for (const Field& f : kFields)
    for (int i = 0; i < f.count; ++i) {
      const double v = h.real((h.two ? f.offset2 : f.offset1) + i * (h.two ? 8 : 4));
      const bool spatial = std::string_view(f.name) != "pixdim" || (i >= 1 && i <= 3);
      if (!std::isfinite(v))
        throw InputError(path + ": NIfTI header field " + f.name + "[" + std::to_string(i) + "] is " +
                         std::to_string(v) + "; expected a finite number (voxel size and orientation)");
      if (spatial && v != 0 && (std::abs(v) < smallest || std::abs(v) > 1e9)) {
        std::ostringstream m;
        m << path << ": NIfTI header field " << f.name << "[" << i << "] is " << v
          << "; expected 0 or a magnitude between " << smallest << " and 1e9 mm (voxel size and orientation)";
        throw InputError(m.str());
      }
    }
}

bool gzip_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char m[2] = {};
  in.read(reinterpret_cast<char*>(m), 2);
  return in && m[0] == 0x1f && m[1] == 0x8b;
}

// Before allocating: the bytes present (or what gzip'ed bytes can expand to) must cover the claim.
void check_nifti_data(const std::string& path, std::uint64_t data_bytes) {
  const NiftiLayout L = nifti_layout(path);
  if (!L.known) return;
  const std::uint64_t needed = checked_add(path, "vox_offset + dim x datatype", L.offset, data_bytes);
  check_stored(path, "vox_offset + dim x datatype", needed, size_of(path), gzip_magic(path) ? kMaxDeflateRatio : 1);
}

// ITK's NIfTI IO reads short data (plain or gzip'ed) without complaint: count the bytes, up to
// what the header promises.
void check_nifti_complete(const std::string& path, std::uint64_t data_bytes) {
  const NiftiLayout L = nifti_layout(path);
  if (!L.known) return;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) throw InputError(path + ": cannot open");
  const std::uint64_t needed = L.offset + data_bytes;
  std::uint64_t total = 0;
  std::vector<unsigned char> buf(1 << 20);
  for (int n; total < needed && (n = gzread(gz, buf.data(), static_cast<unsigned>(buf.size()))) > 0;) total += n;
  gzclose(gz);
  if (total < needed) truncated(path, needed, total, "header and voxel data");
}

}  // namespace

Header probe_itk(const std::string& path, const std::string& format) {
  const NrrdHeader nrrd = format == "nrrd" ? read_nrrd_header(path) : NrrdHeader{};
  if (format == "nrrd") check_nrrd_sizes(path, nrrd);
  auto io = open_io(path, format);
  const unsigned nd = io->GetNumberOfDimensions();
  if (nd < 2 || nd > 3) throw InputError(path + ": " + std::to_string(nd) + "-D image; expected a 2-D or 3-D volume");
  if (io->GetNumberOfComponents() != 1)
    throw InputError(path + ": " + std::to_string(io->GetNumberOfComponents()) +
                     " components per voxel; expected a scalar volume");
  Header h;
  h.dtype = dtype_for(*io, path);
  // ITK has parsed the header but allocated nothing yet: validate before read_itk does.
  const char* field = format == "nifti" ? "dim" : format == "nrrd" ? "sizes" : "DimSize";
  h.dims = checked_dims(path, field, io->GetDimensions(0), io->GetDimensions(1), nd == 3 ? io->GetDimensions(2) : 1,
                        io->GetComponentSize());
  const auto voxels = static_cast<std::uint64_t>(h.dims.count());
  const std::uint64_t data_bytes = voxels * io->GetComponentSize();
  if (format == "mha" || format == "mhd") check_meta_data(path, data_bytes);
  if (format == "nrrd") {
    check_nrrd_voxels(path, nrrd, voxels);
    check_nrrd_data(path, nrrd, data_bytes, voxels);
  }
  if (format == "nifti") check_nifti_data(path, data_bytes);
  const double scale = um_per_itk_unit(format);
  for (unsigned a = 0; a < nd; ++a) {
    h.spacing_um[a] = io->GetSpacing(a) * scale;
    h.origin_um[a] = io->GetOrigin(a) * scale;
  }
  if (nd == 2) h.spacing_um[2] = h.spacing_um[0];
  h.spacing_from_file = true;
  return h;
}

AnyVolume read_itk(const std::string& path, const std::string& format, const Header& header, const Box& roi) {
  if (format == "nrrd") check_nrrd_sizes(path, read_nrrd_header(path));
  auto io = open_io(path, format);
  const unsigned nd = io->GetNumberOfDimensions();
  const std::uint64_t data_bytes = static_cast<std::uint64_t>(header.dims.count()) * io->GetComponentSize();
  if (format == "nifti") check_nifti_complete(path, data_bytes);
  // MetaIO reads a sub-region of uncompressed data from disk; the other ITK readers decode
  // the whole image, which is then cropped.
  const bool stream_roi = (format == "mha" || format == "mhd") && io->CanStreamRead() && !io->GetUseCompression();
  const Box region_box = stream_roi ? roi : Box{{0, 0, 0}, {header.dims.x, header.dims.y, header.dims.z}};
  itk::ImageIORegion region(nd);
  for (unsigned a = 0; a < nd; ++a) {
    region.SetIndex(a, region_box.min[a]);
    region.SetSize(a, static_cast<itk::SizeValueType>(region_box.size[a]));
  }
  io->SetIORegion(region);
  AnyVolume read = allocate_volume(header.dtype, box_dims(region_box));
  const auto n = static_cast<std::size_t>(box_dims(region_box).count());
  try {
    switch (io->GetComponentType()) {
      case Component::CHAR: read_converted<std::int8_t>(*io, std::get<Volume<std::int16_t>>(read).data(), n); break;
      case Component::DOUBLE: read_converted<double>(*io, std::get<Volume<float>>(read).data(), n); break;
      default: io->Read(voxel_bytes(read));
    }
  } catch (const itk::ExceptionObject& e) {
    throw InputError(path + ": cannot read the voxels, file truncated or corrupt? (" + std::string(e.GetDescription()) +
                     ")");
  }
  if (stream_roi || covers_all(roi, header.dims)) return read;
  return std::visit([&](const auto& v) -> AnyVolume { return v.crop(roi); }, read);
}

std::vector<std::string> itk_data_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<std::string> files{path};
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::string name;
    for (const char* key : {"ElementDataFile", "data file:", "datafile:"}) {
      if (line.rfind(key, 0) == 0) {
        name = line.substr(std::strlen(key));
        const auto eq = name.find('=');
        if (std::string(key) == "ElementDataFile" && eq != std::string::npos) name = name.substr(eq + 1);
      }
    }
    if (name.empty()) continue;
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t\r") + 1);
    // LOCAL: data follows the header in the same file; LIST and patterns are not hashed.
    if (name.empty() || name == "LOCAL" || name.rfind("LIST", 0) == 0 || name.find(' ') != std::string::npos) break;
    const fs::path data = fs::path(path).parent_path() / name;
    if (fs::exists(data)) files.push_back(data.string());
    break;
  }
  return files;
}

void write_itk(VolumeRef volume, const std::string& path, const std::string& format, bool compress) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::visit(
        [&](const auto* v) {
          using T = typename std::decay_t<decltype(*v)>::value_type;
          // The writer only reads the shared buffer.
          auto image = itk_view(const_cast<Volume<T>&>(*v));
          // NIfTI's header unit is mm as ITK writes it: hand it millimetres.
          if (format == "nifti") {
            auto spacing = image->GetSpacing();
            auto origin = image->GetOrigin();
            for (unsigned a = 0; a < 3; ++a) {
              spacing[a] /= 1000.0;
              origin[a] /= 1000.0;
            }
            image->SetSpacing(spacing);
            image->SetOrigin(origin);
          }
          auto writer = itk::ImageFileWriter<ItkImage3<T>>::New();
          writer->SetInput(image);
          writer->SetFileName(tmp.string());
          writer->SetUseCompression(compress);
          try {
            writer->Update();
          } catch (const itk::ExceptionObject& e) {
            throw InputError(path + ": cannot write " + format + " (" + std::string(e.GetDescription()) + ")");
          }
        },
        volume);
  });
}

}  // namespace vp::io
