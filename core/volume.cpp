#include "core/volume.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace vp {

std::string to_string(const Dims& d) {
  return std::to_string(d.x) + "x" + std::to_string(d.y) + "x" + std::to_string(d.z);
}

std::string to_string(DType t) {
  switch (t) {
    case DType::u8: return "uint8";
    case DType::u16: return "uint16";
    case DType::i16: return "int16";
    case DType::u32: return "uint32";
    case DType::f32: return "float32";
  }
  return "?";
}

DType parse_dtype(const std::string& name) {
  if (name == "uint8" || name == "u8") return DType::u8;
  if (name == "uint16" || name == "u16") return DType::u16;
  if (name == "int16" || name == "i16") return DType::i16;
  if (name == "uint32" || name == "u32") return DType::u32;
  if (name == "float32" || name == "f32" || name == "float") return DType::f32;
  throw InputError("unknown dtype '" + name + "': expected one of uint8, uint16, int16, uint32, float32");
}

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::u8: return 1;
    case DType::u16:
    case DType::i16: return 2;
    case DType::u32:
    case DType::f32: return 4;
  }
  return 0;
}

DType dtype_of(const AnyVolume& v) {
  return std::visit([](const auto& vol) { return dtype_of<typename std::decay_t<decltype(vol)>::value_type>(); }, v);
}
const Dims& dims_of(const AnyVolume& v) {
  return std::visit([](const auto& vol) -> const Dims& { return vol.dims(); }, v);
}
Vec3& spacing_of(AnyVolume& v) {
  return std::visit([](auto& vol) -> Vec3& { return vol.spacing_um; }, v);
}
const Vec3& spacing_of(const AnyVolume& v) {
  return std::visit([](const auto& vol) -> const Vec3& { return vol.spacing_um; }, v);
}
Provenance& provenance_of(AnyVolume& v) {
  return std::visit([](auto& vol) -> Provenance& { return vol.provenance; }, v);
}
const Provenance& provenance_of(const AnyVolume& v) {
  return std::visit([](const auto& vol) -> const Provenance& { return vol.provenance; }, v);
}

Volume<float> to_float(const AnyVolume& v) {
  return std::visit(
      [](const auto& vol) {
        Volume<float> out = vol.template like<float>(vol.dims());
        for (index_t i = 0; i < vol.size(); ++i) out[i] = static_cast<float>(vol[i]);
        return out;
      },
      v);
}

Volume<std::uint8_t> to_labels_u8(const AnyVolume& v) {
  return std::visit(
      [](const auto& vol) {
        Volume<std::uint8_t> out = vol.template like<std::uint8_t>(vol.dims());
        const Dims& d = vol.dims();
        for (index_t i = 0; i < vol.size(); ++i) {
          const double x = static_cast<double>(vol[i]);
          if (!(x >= 0 && x <= 255 && x == std::floor(x))) {
            const index_t ix = i % d.x, iy = (i / d.x) % d.y, iz = i / (d.x * d.y);
            std::ostringstream msg;
            msg << (vol.provenance.path.empty() ? std::string("label volume") : vol.provenance.path)
                << ": voxel (x=" << ix << ", y=" << iy << ", z=" << iz << ") holds " << x
                << "; phase labels must be integers 0..255";
            throw InputError(msg.str());
          }
          out[i] = static_cast<std::uint8_t>(x);
        }
        return out;
      },
      v);
}

Volume<std::uint8_t> to_labels_u8(AnyVolume&& v) {
  if (auto* u8 = std::get_if<Volume<std::uint8_t>>(&v)) return std::move(*u8);
  Volume<std::uint8_t> out = to_labels_u8(static_cast<const AnyVolume&>(v));
  v = Volume<std::uint8_t>{};  // free the wider copy as soon as the labels exist
  return out;
}

}  // namespace vp
