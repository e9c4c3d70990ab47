// The voxel volume model shared by every stage.
//
// Index order is (x, y, z) with x fastest in memory; z is the TIFF page index.
// Spacing and origin are in micrometres. A Volume owns contiguous storage; a
// VolumeView is a non-owning strided window (cheap crops) over one.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/phase_table.h"

namespace vp {

using index_t = std::int64_t;

// std::lround's value (halves away from zero) without its library call, for voxel offsets
// sampled along a direction in hot loops: v − trunc(v) is exact; |v| must fit index_t.
inline index_t round_half_away(double v) {
  const auto t = static_cast<index_t>(v);
  const double f = v - static_cast<double>(t);
  return t + (f >= 0.5) - (f <= -0.5);
}
using Vec3 = std::array<double, 3>;

struct Dims {
  index_t x = 0, y = 0, z = 0;
  index_t count() const { return x * y * z; }
  index_t operator[](int axis) const { return axis == 0 ? x : axis == 1 ? y : z; }
  bool empty() const { return x <= 0 || y <= 0 || z <= 0; }
  bool operator==(const Dims&) const = default;
};

std::string to_string(const Dims& d);  // "128x128x64"

// Element types a volume can hold. Phase labels are u8; particle labels u32.
enum class DType : std::uint8_t { u8, u16, i16, u32, f32 };

std::string to_string(DType t);              // "uint8", "uint16", "int16", "uint32", "float32"
DType parse_dtype(const std::string& name);  // accepts the names above (and u8/f32/...); throws InputError
std::size_t dtype_size(DType t);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::u8;
}
template <>
constexpr DType dtype_of<std::uint16_t>() {
  return DType::u16;
}
template <>
constexpr DType dtype_of<std::int16_t>() {
  return DType::i16;
}
template <>
constexpr DType dtype_of<std::uint32_t>() {
  return DType::u32;
}
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}

// Where a volume came from: the file path and the SHA-256 of its bytes.
struct Provenance {
  std::string path;
  std::string sha256;
};

// An axis-aligned region in voxel indices: [min, min + size).
struct Box {
  std::array<index_t, 3> min{0, 0, 0};
  std::array<index_t, 3> size{0, 0, 0};
};

template <class T>
struct VolumeView {
  T* data = nullptr;
  Dims dims;
  index_t stride_y = 0;  // elements between (x, y, z) and (x, y+1, z)
  index_t stride_z = 0;  // elements between (x, y, z) and (x, y, z+1)

  T& operator()(index_t x, index_t y, index_t z) const { return data[x + y * stride_y + z * stride_z]; }
  bool contiguous() const { return stride_y == dims.x && stride_z == dims.x * dims.y; }
};

template <class T>
class Volume {
 public:
  using value_type = T;

  Volume() = default;
  explicit Volume(Dims dims, Vec3 spacing_um = {1.0, 1.0, 1.0}, T fill = T{}) : spacing_um(spacing_um), dims_(dims) {
    if (dims.x < 0 || dims.y < 0 || dims.z < 0) throw std::invalid_argument("Volume: negative dimension");
    voxels_.assign(static_cast<std::size_t>(dims.count()), fill);
  }

  // A volume over voxels it does not own, used in place (the Python module's NumPy arrays):
  // `voxels` holds dims.count() elements, x fastest, and outlives the volume and its moves.
  // Copies of it own their voxels; storage() throws (there is no vector to hand out).
  static Volume borrowing(T* voxels, Dims dims, Vec3 spacing_um = {1.0, 1.0, 1.0}) {
    if (dims.x < 0 || dims.y < 0 || dims.z < 0) throw std::invalid_argument("Volume: negative dimension");
    Volume v;
    v.spacing_um = spacing_um;
    v.dims_ = dims;
    v.borrowed_ = voxels;
    return v;
  }
  Volume(const Volume& o)
      : spacing_um(o.spacing_um),
        origin_um(o.origin_um),
        provenance(o.provenance),
        dims_(o.dims_),
        voxels_(o.borrowed_ ? std::vector<T>(o.borrowed_, o.borrowed_ + o.size()) : o.voxels_) {}
  Volume& operator=(const Volume& o) {
    if (this != &o) *this = Volume(o);
    return *this;
  }
  Volume(Volume&&) noexcept = default;
  Volume& operator=(Volume&&) noexcept = default;
  bool borrowed() const { return borrowed_ != nullptr; }

  const Dims& dims() const { return dims_; }
  index_t size() const { return dims_.count(); }
  bool empty() const { return borrowed_ ? size() == 0 : voxels_.empty(); }
  T* data() { return borrowed_ ? borrowed_ : voxels_.data(); }
  const T* data() const { return borrowed_ ? borrowed_ : voxels_.data(); }
  std::vector<T>& storage() { return owned_storage(); }
  const std::vector<T>& storage() const { return const_cast<Volume*>(this)->owned_storage(); }

  index_t index(index_t x, index_t y, index_t z) const { return x + dims_.x * (y + dims_.y * z); }
  T& operator()(index_t x, index_t y, index_t z) { return data()[index(x, y, z)]; }
  const T& operator()(index_t x, index_t y, index_t z) const { return data()[index(x, y, z)]; }
  T& operator[](index_t i) { return data()[i]; }
  const T& operator[](index_t i) const { return data()[i]; }

  VolumeView<T> view() { return {data(), dims_, dims_.x, dims_.x * dims_.y}; }
  VolumeView<const T> view() const { return {data(), dims_, dims_.x, dims_.x * dims_.y}; }

  // Zero-copy window; throws std::out_of_range when the box leaves the volume.
  VolumeView<T> crop_view(const Box& b) {
    check_box(b);
    return {&(*this)(b.min[0], b.min[1], b.min[2]), {b.size[0], b.size[1], b.size[2]}, dims_.x, dims_.x * dims_.y};
  }
  VolumeView<const T> crop_view(const Box& b) const {
    check_box(b);
    return {&(*this)(b.min[0], b.min[1], b.min[2]), {b.size[0], b.size[1], b.size[2]}, dims_.x, dims_.x * dims_.y};
  }

  // Contiguous copy of a region; origin moves with it, spacing and provenance are kept.
  Volume crop(const Box& b) const {
    auto v = crop_view(b);
    Volume out = like(v.dims);
    for (index_t i = 0; i < 3; ++i) out.origin_um[i] = origin_um[i] + b.min[i] * spacing_um[i];
    for (index_t z = 0; z < v.dims.z; ++z)
      for (index_t y = 0; y < v.dims.y; ++y) std::copy_n(&v(0, y, z), v.dims.x, &out(0, y, z));
    return out;
  }

  // A new volume of other dims with this one's spacing, origin and provenance.
  template <class U = T>
  Volume<U> like(Dims d, U fill = U{}) const {
    Volume<U> out(d, spacing_um, fill);
    out.origin_um = origin_um;
    out.provenance = provenance;
    return out;
  }

  // Moves the voxels out into a volume of their own (same dims, spacing, origin, provenance) and
  // leaves this one with its dims and metadata but no voxels (data() is null): for the last
  // reader of a large volume, which may then overwrite or free them. Throws on a borrowed volume.
  Volume release_voxels() {
    Volume out = like(Dims{});
    out.dims_ = dims_;
    out.voxels_ = std::move(owned_storage());
    voxels_ = std::vector<T>();
    return out;
  }

  Vec3 spacing_um{1.0, 1.0, 1.0};
  Vec3 origin_um{0.0, 0.0, 0.0};
  Provenance provenance;

 private:
  void check_box(const Box& b) const {
    for (int a = 0; a < 3; ++a)
      if (b.min[a] < 0 || b.size[a] < 0 || b.min[a] + b.size[a] > dims_[a])
        throw std::out_of_range("crop box outside volume " + to_string(dims_));
  }

  std::vector<T>& owned_storage() {
    if (borrowed_) throw std::logic_error("Volume::storage(): a borrowed volume has no vector storage (use data())");
    return voxels_;
  }

  Dims dims_;
  std::vector<T> voxels_;
  T* borrowed_ = nullptr;  // set: the voxels live elsewhere (borrowing()); voxels_ is empty
};

// Phase labels (integers) plus the table that names them and gives their roles.
struct LabelVolume : Volume<std::uint8_t> {
  LabelVolume() = default;
  LabelVolume(Volume<std::uint8_t> v, PhaseTable table)
      : Volume<std::uint8_t>(std::move(v)), phases(std::move(table)) {}
  PhaseTable phases;
};

// A volume of any supported element type, as readers return it.
using AnyVolume = std::variant<Volume<std::uint8_t>, Volume<std::uint16_t>, Volume<std::int16_t>, Volume<std::uint32_t>,
                               Volume<float>>;

DType dtype_of(const AnyVolume& v);
const Dims& dims_of(const AnyVolume& v);
Vec3& spacing_of(AnyVolume& v);
const Vec3& spacing_of(const AnyVolume& v);
Provenance& provenance_of(AnyVolume& v);
const Provenance& provenance_of(const AnyVolume& v);

// Converting views (copies): grey values as float, or integer labels as u8
// (throws InputError naming the first voxel whose value is not an integer in 0..255).
Volume<float> to_float(const AnyVolume& v);
Volume<std::uint8_t> to_labels_u8(const AnyVolume& v);
// The same, taking the volume: a u8 volume is moved, not copied, so a caller that is done with
// the file as read holds one copy of the labels, not two.
Volume<std::uint8_t> to_labels_u8(AnyVolume&& v);

}  // namespace vp
