#include "metrics/phase_fractions.h"

#include <string>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"

namespace vp {

std::array<index_t, 256> count_labels(const Volume<std::uint8_t>& labels) {
  using Counts = std::array<index_t, 256>;
  const std::uint8_t* data = labels.data();
  // Integer sums are associative, so the result does not depend on how TBB splits the range.
  return tbb::parallel_reduce(
      tbb::blocked_range<index_t>(0, labels.size(), 1 << 16), Counts{},
      [data](const tbb::blocked_range<index_t>& r, Counts counts) {
        for (index_t i = r.begin(); i < r.end(); ++i) ++counts[data[i]];
        return counts;
      },
      [](Counts a, const Counts& b) {
        for (std::size_t l = 0; l < a.size(); ++l) a[l] += b[l];
        return a;
      });
}

namespace {

[[noreturn]] void throw_unnamed_label(const LabelVolume& labels, int label, index_t count) {
  const std::uint8_t* data = labels.data();
  index_t first = 0;
  while (data[first] != label) ++first;
  const Dims& d = labels.dims();
  const index_t x = first % d.x, y = (first / d.x) % d.y, z = first / (d.x * d.y);
  std::string known;
  for (const auto& p : labels.phases.phases())
    known += (known.empty() ? "" : ", ") + p.name + "=" + std::to_string(p.label);
  const std::string file = labels.provenance.path.empty() ? "label volume" : labels.provenance.path;
  throw InputError(file + ": label " + std::to_string(label) + " occurs in " + std::to_string(count) +
                   " voxels (first at x=" + std::to_string(x) + ", y=" + std::to_string(y) +
                   ", z=" + std::to_string(z) + ") but the phase table does not name it; expected only " +
                   (known.empty() ? "(empty table)" : known) + " — add it to `phases`");
}

}  // namespace

namespace {
double ratio(index_t n, index_t total) { return total > 0 ? static_cast<double>(n) / static_cast<double>(total) : 0.0; }
}  // namespace

PhaseFractions phase_fractions(const LabelVolume& labels) {
  const auto counts = count_labels(labels);
  for (int l = 0; l < 256; ++l)
    if (counts[l] > 0 && !labels.phases.by_label(l)) throw_unnamed_label(labels, l, counts[l]);
  return phase_fractions(counts, labels.size(), labels.phases);
}

PhaseFractions phase_fractions(const std::array<index_t, 256>& counts, index_t total, const PhaseTable& table) {
  for (int l = 0; l < 256; ++l)
    if (counts[static_cast<std::size_t>(l)] > 0 && !table.by_label(l))
      throw InputError("label " + std::to_string(l) + " occurs in " +
                       std::to_string(counts[static_cast<std::size_t>(l)]) +
                       " voxels but the phase table does not name it");
  PhaseFractions out;
  out.total = total;
  for (const auto& p : table.phases()) {
    const index_t n = counts[static_cast<std::size_t>(p.label)];
    out.phases.push_back({p.name, p.label, p.role, n, ratio(n, out.total)});
  }
  return out;
}

double PhaseFractions::role_fraction(Role role) const {
  index_t n = 0;  // sum counts, not fractions, so the result is one exact division
  for (const auto& p : phases)
    if (p.role == role) n += p.voxels;
  return ratio(n, total);
}

double porosity(const PhaseFractions& fractions) {
  return fractions.role_fraction(Role::pore) + fractions.role_fraction(Role::crack);
}

double porosity(const LabelVolume& labels) { return porosity(phase_fractions(labels)); }

Volume<std::uint8_t> phase_mask(const Volume<std::uint8_t>& label_volume, const std::vector<int>& labels) {
  std::array<std::uint8_t, 256> member{};
  for (int l : labels) {
    if (l < 0 || l > 255) throw InputError("phase mask: label " + std::to_string(l) + " is not in 0..255");
    member[static_cast<std::size_t>(l)] = 1;
  }
  Volume<std::uint8_t> mask = label_volume.like<std::uint8_t>(label_volume.dims());
  const std::uint8_t* in = label_volume.data();
  std::uint8_t* out = mask.data();
  tbb::parallel_for(tbb::blocked_range<index_t>(0, label_volume.size(), 1 << 16),
                    [&](const tbb::blocked_range<index_t>& r) {
                      for (index_t i = r.begin(); i < r.end(); ++i) out[i] = member[in[i]];
                    });
  return mask;
}

}  // namespace vp
