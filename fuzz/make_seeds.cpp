// Writes the fuzzers' seed corpora: small phantom volumes in every format and flavour our
// writers produce (and a few crafted TIFF layouts other tools write), laid out as each harness
// expects its input. Usage: vp_fuzz_seeds OUT_DIR  (one sub-folder per target).
#include <tiffio.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "filters/io/volume_io.h"
#include "phantoms/phantom.h"
#include "tests/io_craft.h"

namespace fs = std::filesystem;
using namespace vp;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

// Our writer's bytes for `v` as `ext`.
template <class T>
std::string written(const Volume<T>& v, const fs::path& tmp, const std::string& ext, bool compress) {
  const fs::path p = tmp / ("v" + ext);
  WriteOptions w;
  w.compress = compress;
  write_volume(v, p.string(), w);
  return slurp(p);
}

// TIFF layouts our writer does not produce: tiles, 1-bit, BigTIFF.
std::string libtiff_file(const fs::path& tmp, const char* mode, std::uint16_t bits, std::uint32_t tile) {
  const fs::path p = tmp / "t.tif";
  TIFF* t = TIFFOpen(p.c_str(), mode);
  const std::uint32_t w = 32, h = 32;
  for (int page = 0; page < 2; ++page) {
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bits);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, bits == 1 ? COMPRESSION_PACKBITS : COMPRESSION_LZW);
    std::vector<std::uint8_t> row((w * bits + 7) / 8);
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = static_cast<std::uint8_t>(i * 37 + page);
    if (tile) {
      TIFFSetField(t, TIFFTAG_TILEWIDTH, tile);
      TIFFSetField(t, TIFFTAG_TILELENGTH, tile);
      std::vector<std::uint8_t> buf(static_cast<std::size_t>(tile) * tile * bits / 8, static_cast<std::uint8_t>(page));
      for (std::uint32_t y = 0; y < h; y += tile)
        for (std::uint32_t x = 0; x < w; x += tile) TIFFWriteTile(t, buf.data(), x, y, 0, 0);
    } else {
      TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 8);
      for (std::uint32_t y = 0; y < h; ++y) TIFFWriteScanline(t, row.data(), y, 0);
    }
    TIFFWriteDirectory(t);
  }
  TIFFClose(t);
  return slurp(p);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: vp_fuzz_seeds OUT_DIR\n";
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path tmp = out / ".tmp";
  fs::create_directories(tmp);
  // A phantom of spheres (labels) and a grey ramp: small, so that mutations stay fast.
  phantom::SpheresSpec spec;
  spec.dims = {16, 14, 12};
  spec.count = 1;
  spec.radius_min_um = 2;
  spec.radius_max_um = 2;
  spec.min_gap_um = 1;
  const LabelVolume labels = phantom::separated_spheres(spec).labels;
  Volume<float> grey({7, 5, 3}, {0.5, 0.5, 2.0});
  for (index_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<float>(i) * 0.25f;
  Volume<std::uint16_t> u16({6, 4, 2});
  for (index_t i = 0; i < u16.size(); ++i) u16[i] = static_cast<std::uint16_t>(1000 + 7 * i);

  for (bool z : {false, true}) {
    const std::string c = z ? "z" : "";
    put(out / "tiff", "labels" + c + ".tif", written(labels, tmp, ".tif", z));
    put(out / "tiff", "grey" + c + ".tif", written(grey, tmp, ".tif", z));
    put(out / "nrrd", "labels" + c + ".nrrd", written(labels, tmp, ".nrrd", z));
    put(out / "nrrd", "grey" + c + ".nrrd", written(grey, tmp, ".nrrd", z));
    put(out / "hdf5", "labels" + c + ".h5", written(labels, tmp, ".h5", z));
    put(out / "hdf5", "u16" + c + ".h5", written(u16, tmp, ".h5", z));
    // Byte 0 picks the flavour: .mha / .mhd, .nii / .nii.gz.
    put(out / "mha", "labels" + c + ".mha", std::string(1, '\0') + written(labels, tmp, ".mha", z));
    put(out / "mha", "grey" + c + ".mha", std::string(1, '\0') + written(grey, tmp, ".mha", z));
  }
  put(out / "mha", "ramp.mhd",
      std::string(1, '\1') +
          "ObjectType = Image\nNDims = 3\nDimSize = 16 16 8\nElementSpacing = 1 1 2\n"
          "ElementType = MET_USHORT\nElementDataFile = data.raw\n");
  put(out / "nrrd", "text.nrrd",
      "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: text\n\n1 2 3 4 5 6 7 8\n");
  put(out / "nifti", "labels.nii", std::string(1, '\0') + written(labels, tmp, ".nii", false));
  put(out / "nifti", "grey.nii.gz", std::string(1, '\1') + written(grey, tmp, ".nii.gz", true));
  put(out / "npy", "labels.npy", written(labels, tmp, ".npy", false));
  put(out / "npy", "grey.npy", written(grey, tmp, ".npy", false));
  put(out / "npy", "fortran.npy", [] {
    std::string d = "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3, 2), }";
    d.append(117 - d.size(), ' ');
    d.push_back('\n');
    std::string s("\x93NUMPY\x01\x00", 8);
    s.push_back(static_cast<char>(d.size()));
    s.push_back('\0');
    return s + d + std::string(24, '\x05');
  }());
  // raw: 12 bytes of options (dims, dtype, byte order, header size), then the file.
  {
    std::string opts(12, '\0');
    const std::uint16_t d[3] = {16, 14, 12};
    std::memcpy(opts.data(), d, 6);
    put(out / "raw", "labels.raw", opts + written(labels, tmp, ".raw", false));
    const std::uint16_t g[3] = {7, 5, 3};
    std::memcpy(opts.data(), g, 6);
    opts[6] = static_cast<char>(DType::f32);
    put(out / "raw", "grey.raw", opts + written(grey, tmp, ".raw", false));
  }
  put(out / "tiff", "tiled.tif", libtiff_file(tmp, "w", 8, 16));
  put(out / "tiff", "bit1.tif", libtiff_file(tmp, "w", 1, 0));
  put(out / "tiff", "big.tif", libtiff_file(tmp, "w8", 16, 0));
  std::vector<std::uint16_t> planes(5 * 4 * 3);
  for (std::size_t i = 0; i < planes.size(); ++i) planes[i] = static_cast<std::uint16_t>(i);
  put(out / "tiff", "imagej.tif", craft::imagej_big_stack(5, 4, 3, planes));
  // The config: our own example and demo configs.
  for (const char* name : {"example.yaml", "demo.yaml"})
    put(out / "config", name, slurp(fs::path(VP_SOURCE_DIR) / "configs" / name));
  // Every fuzzer finding kept as a regression test (tests/data/fuzz_TARGET_*) is a seed of its
  // target too, so each fuzz run (CI's smoke included) replays them first. mha and nifti take
  // byte 0 as the flavour: 0 = .mha / .nii (the kept files are those).
  for (const auto& e : fs::directory_iterator(fs::path(VP_SOURCE_DIR) / "tests" / "data")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("fuzz_", 0) != 0) continue;
    const std::string target = name.substr(5, name.find('_', 5) - 5);
    if (!fs::is_directory(out / target)) continue;
    const bool flavoured = target == "mha" || target == "nifti";
    put(out / target, "kept_" + name, (flavoured ? std::string(1, '\0') : std::string()) + slurp(e.path()));
  }
  fs::remove_all(tmp);
  return 0;
}
