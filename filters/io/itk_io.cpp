// MHA/MHD, NRRD and NIfTI through ITK's ImageIO. Reading decodes straight into the volume's
// buffer; writing hands ITK a non-owning view of it (itk_bridge.h).
//
// Units: MHA/MHD and NRRD carry spacing and origin as plain numbers; ours are micrometres.
// ITK's NIfTI IO converts the file's units to millimetres, so NIfTI is scaled by 1000 both ways.
#include <itkImageFileWriter.h>
#include <itkImageIOBase.h>
#include <itkImageIOFactory.h>

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "filters/io/io_formats.h"
#include "filters/io/itk_bridge.h"

namespace vp::io {
namespace {

using Component = itk::IOComponentEnum;

double um_per_itk_unit(const std::string& format) { return format == "nifti" ? 1000.0 : 1.0; }

itk::ImageIOBase::Pointer open_io(const std::string& path) {
  itk::ImageIOBase::Pointer io =
      itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::ImageIOFactory::IOFileModeEnum::ReadMode);
  if (!io) throw InputError(path + ": no ITK reader recognises this file (expected MHA/MHD, NRRD or NIfTI)");
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

// MetaIO reads short data without complaint: compare the header's promise with the bytes present.
void check_meta_complete(const std::string& path, std::uint64_t data_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string line, data_file;
  bool compressed = false;
  std::uint64_t compressed_size = 0, header_size = 0;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    key.erase(key.find_last_not_of(" \t") + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r") + 1);
    if (key == "CompressedData") compressed = value == "True" || value == "true";
    // Malformed numbers are left for ITK to report.
    if (key == "CompressedDataSize") compressed_size = std::strtoull(value.c_str(), nullptr, 10);
    if (key == "HeaderSize" && value != "-1") header_size = std::strtoull(value.c_str(), nullptr, 10);
    if (key == "ElementDataFile") {
      data_file = value;
      break;  // the last header line
    }
  }
  if (data_file.empty() || data_file.rfind("LIST", 0) == 0 || data_file.find(' ') != std::string::npos) return;
  std::uint64_t available;
  std::string where = path;
  if (data_file == "LOCAL") {
    const auto header_end = static_cast<std::uint64_t>(in.tellg());
    available = size_of(path) - header_end;
  } else {
    where = (std::filesystem::path(path).parent_path() / data_file).string();
    const std::uint64_t n = size_of(where);
    available = n > header_size ? n - header_size : 0;
  }
  const std::uint64_t expected = compressed ? compressed_size : data_bytes;
  if (available < expected) truncated(where, expected, available, compressed ? "compressed voxel data" : "voxel data");
}

// ITK's NIfTI IO reads short data (plain or gzip'ed) without complaint: count the bytes.
void check_nifti_complete(const std::string& path, std::uint64_t data_bytes) {
  gzFile gz = gzopen(path.c_str(), "rb");  // reads plain files as they are
  if (!gz) throw InputError(path + ": cannot open");
  unsigned char hdr[176] = {};
  const int got = gzread(gz, hdr, sizeof hdr);
  std::int32_t sizeof_hdr = 0;
  std::memcpy(&sizeof_hdr, hdr, 4);
  std::uint64_t offset = 0;
  if (got >= 112 && sizeof_hdr == 348) {
    float f;
    std::memcpy(&f, hdr + 108, 4);
    offset = static_cast<std::uint64_t>(f);
  } else if (got >= 176 && sizeof_hdr == 540) {
    std::int64_t o;
    std::memcpy(&o, hdr + 168, 8);
    offset = static_cast<std::uint64_t>(o);
  } else {
    gzclose(gz);
    return;  // byte-swapped or detached (.hdr/.img) headers: left to ITK
  }
  std::uint64_t total = static_cast<std::uint64_t>(std::max(got, 0));
  std::vector<unsigned char> buf(1 << 20);
  for (int n; (n = gzread(gz, buf.data(), static_cast<unsigned>(buf.size()))) > 0;) total += n;
  gzclose(gz);
  if (total < offset + data_bytes) truncated(path, offset + data_bytes, total, "header and voxel data");
}

}  // namespace

Header probe_itk(const std::string& path, const std::string& format) {
  auto io = open_io(path);
  const unsigned nd = io->GetNumberOfDimensions();
  if (nd < 2 || nd > 3)
    throw InputError(path + ": " + std::to_string(nd) + "-D image; expected a 2-D or 3-D volume");
  if (io->GetNumberOfComponents() != 1)
    throw InputError(path + ": " + std::to_string(io->GetNumberOfComponents()) +
                     " components per voxel; expected a scalar volume");
  Header h;
  h.dtype = dtype_for(*io, path);
  h.dims = {static_cast<index_t>(io->GetDimensions(0)), static_cast<index_t>(io->GetDimensions(1)),
            nd == 3 ? static_cast<index_t>(io->GetDimensions(2)) : 1};
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
  auto io = open_io(path);
  const unsigned nd = io->GetNumberOfDimensions();
  const std::uint64_t data_bytes = static_cast<std::uint64_t>(header.dims.count()) * io->GetComponentSize();
  if (format == "mha" || format == "mhd") check_meta_complete(path, data_bytes);
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
    throw InputError(path + ": cannot read the voxels, file truncated or corrupt? (" +
                     std::string(e.GetDescription()) + ")");
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
