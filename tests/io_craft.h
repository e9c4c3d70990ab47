// Files crafted byte by byte, as other tools (or attackers) write them: shared by the I/O tests
// and the fuzzing seeds (fuzz/make_seeds.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vp::craft {

// An ImageJ stack over 4 GB, in miniature: one IFD, "images=3", the planes back to back.
// `images` is the description's plane count as written (a hostile file may lie in it).
inline std::string imagej_big_stack(std::uint32_t w, std::uint32_t h, const std::string& images,
                                    const std::vector<std::uint16_t>& v) {
  const std::string desc =
      "ImageJ=1.54f\nimages=" + images + "\nslices=" + images + "\nunit=micron\nspacing=3\nloop=false\n";
  const std::uint16_t entries = 13;
  const std::uint32_t ifd = 8, res_at = ifd + 2 + entries * 12 + 4, desc_at = res_at + 8;
  const std::uint32_t data_at = desc_at + static_cast<std::uint32_t>(desc.size() + 1);
  std::string out("II*\0", 4);
  auto u16 = [&](std::uint16_t x) { out.append(reinterpret_cast<const char*>(&x), 2); };
  auto u32 = [&](std::uint32_t x) { out.append(reinterpret_cast<const char*>(&x), 4); };
  auto entry = [&](std::uint16_t tag, std::uint16_t type, std::uint32_t count, std::uint32_t value) {
    u16(tag);
    u16(type);
    u32(count);
    if (type == 3 && count == 1) {
      u16(static_cast<std::uint16_t>(value));
      u16(0);
    } else {
      u32(value);
    }
  };
  u32(ifd);
  u16(entries);
  entry(256, 4, 1, w);
  entry(257, 4, 1, h);
  entry(258, 3, 1, 16);
  entry(259, 3, 1, 1);
  entry(262, 3, 1, 1);
  entry(270, 2, static_cast<std::uint32_t>(desc.size() + 1), desc_at);
  entry(273, 4, 1, data_at);
  entry(277, 3, 1, 1);
  entry(278, 4, 1, h);
  entry(279, 4, 1, w * h * 2);
  entry(282, 5, 1, res_at);  // 2 pixels per micron = 0.5 µm, both axes
  entry(283, 5, 1, res_at);
  entry(296, 3, 1, 1);  // ResolutionUnit none; the unit is in the description
  u32(0);               // no next IFD
  u32(2);
  u32(1);
  out += desc;
  out.push_back('\0');
  for (std::uint16_t x : v) u16(x);
  return out;
}

inline std::string imagej_big_stack(std::uint32_t w, std::uint32_t h, std::uint32_t planes,
                                    const std::vector<std::uint16_t>& v) {
  return imagej_big_stack(w, h, std::to_string(planes), v);
}

}  // namespace vp::craft
