// `mpirun -np N voxpress measure` against one process: every row of volume_fraction, interfaces,
// contact_area and connectivity must be bit-identical at 1, 2 and 4 ranks (mpirun --oversubscribe,
// allowed as root as CI runs), on volumes whose z-slab cuts are uneven and whose clusters only
// join across slabs. Metrics that do not merge across slabs are refused by name.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "filters/io/volume_io.h"
#include "mpi_harness.h"

namespace vp {
namespace {

namespace fs = std::filesystem;
using testing::run_mpi;
using testing::run_voxpress;

const char* const kRoles = " --labels pore=0,se=1,am=2 --roles pore=pore,se=electrolyte,am=active";
const char* const kSlabMetrics = " --metrics volume_fraction,interfaces,contact_area,connectivity";

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("vp_mpi_measure_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// Anisotropic voxels, so the merged areas are checked with unequal spacing.
std::string write_case(const fs::path& dir, Dims dims, const std::function<int(index_t, index_t, index_t)>& label) {
  return testing::write_case(dir, dims, label, {0.5, 0.5, 0.7});
}

// One process, then 1, 2 and 4 ranks: the same rows, value for value (JSON doubles round-trip).
nlohmann::json expect_ranks_agree(const std::string& args, const fs::path& dir) {
  const auto one = run_voxpress("measure " + args + " --json", dir);
  EXPECT_EQ(one.code, 0) << one.err;
  const auto rows = nlohmann::json::parse(one.out)["rows"];
  EXPECT_FALSE(rows.empty());
  for (int ranks : {1, 2, 4}) {
    const auto r = run_mpi(ranks, "measure " + args + " --json", dir);
    EXPECT_EQ(r.code, 0) << ranks << " ranks: " << r.err;
    if (r.code != 0) continue;
    const auto all = nlohmann::json::parse(r.out);
    EXPECT_EQ(all["ranks"], ranks);
    const auto& got = all["rows"];
    EXPECT_EQ(got.size(), rows.size()) << ranks << " ranks";
    for (std::size_t i = 0; i < std::min(got.size(), rows.size()); ++i)
      EXPECT_EQ(got[i], rows[i]) << ranks << " ranks, row " << i;
  }
  return rows;
}

double row_value(const nlohmann::json& rows, const std::string& metric, const std::string& phase,
                 const std::string& axis = "") {
  for (const auto& r : rows)
    if (r["metric"] == metric && r["phase"] == phase && r["axis"] == axis) return r["value"].get<double>();
  ADD_FAILURE() << "no row " << metric << " " << phase << " " << axis;
  return -1;
}

// Three phases, irregular (a fixed hash), 13 z-slices: 4 ranks cut them 4 + 3 + 3 + 3.
TEST(MpiMeasure, ThreePhasesUnevenSlabs) {
  const auto dir = scratch("three");
  const std::string vol = write_case(dir, {21, 18, 13}, [](index_t x, index_t y, index_t z) {
    const std::uint32_t h = static_cast<std::uint32_t>(x * 73856093u ^ y * 19349663u ^ z * 83492791u);
    const int smooth = static_cast<int>((x / 3 + y / 4 + z / 2) % 3);
    return (h % 7 == 0) ? static_cast<int>(h % 3) : smooth;
  });
  for (const char* conn : {" --connectivity 6", " --connectivity 26"})
    expect_ranks_agree(vol + kRoles + kSlabMetrics + conn, dir);
}

// A staircase of AM that climbs through every slab (joins across 3 slab faces at 4 ranks), an
// isolated AM block, and a U of AM whose two arms meet only in the top slab: 3 clusters, of which
// only the staircase connects the z faces; the hollow SE box encloses one pore cavity.
TEST(MpiMeasure, ClustersJoinAcrossSlabs) {
  const auto dir = scratch("clusters");
  const Dims d{24, 16, 11};
  const std::string vol = write_case(dir, d, [&](index_t x, index_t y, index_t z) {
    if (y >= 1 && y <= 2 && x == z + 1) return 2;  // staircase, 6-connected below
    if (y >= 1 && y <= 2 && x == z + 2) return 2;
    if (x >= 14 && x <= 15 && y >= 1 && y <= 3 && z >= 4 && z <= 5) return 2;  // isolated block
    if (y >= 6 && y <= 7 && z >= 3 && (x == 17 || x == 21)) return 2;          // U arms, z = 3..10
    if (y >= 6 && y <= 7 && z == 10 && x >= 17 && x <= 21) return 2;           // U bottom, top slab only
    if (x >= 3 && x <= 7 && y >= 9 && y <= 13 && z >= 2 && z <= 8)             // hollow SE box
      return (x == 5 && y == 11 && z >= 4 && z <= 6) ? 0 : 1;
    return 0;
  });
  const auto rows = expect_ranks_agree(vol + kRoles + kSlabMetrics, dir);
  EXPECT_EQ(row_value(rows, "cluster_count", "am"), 3);
  EXPECT_EQ(row_value(rows, "cluster_count", "se"), 1);
  EXPECT_GT(row_value(rows, "percolating_fraction", "am", "z"), 0);
  EXPECT_GT(row_value(rows, "dead_end_fraction", "am", "z"), 0);  // the U touches z = 10 only
  EXPECT_GT(row_value(rows, "isolated_fraction", "am", "z"), 0);  // the block
  EXPECT_EQ(row_value(rows, "cluster_count", "pore"), 2);         // outside + the cavity
}

TEST(MpiMeasure, RefusesMetricsThatDoNotMerge) {
  const auto dir = scratch("refuse");
  const std::string vol = write_case(dir, {8, 8, 6}, [](index_t x, index_t, index_t z) { return (x + z) % 3; });
  const auto r = run_mpi(2, "measure " + vol + kRoles + " --metrics interfaces,local_thickness", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("local_thickness"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("z-slabs"), std::string::npos) << r.err;
  // Without --metrics: the mergeable metrics only, the rest named on stderr.
  const auto all = run_mpi(2, "measure " + vol + kRoles + " --json", dir);
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_NE(all.err.find("local_thickness"), std::string::npos) << all.err;
  for (const auto& row : nlohmann::json::parse(all.out)["rows"])
    EXPECT_NE(row["metric"], "local_thickness_mean") << "a metric measured on a slab";
  const auto particles = run_mpi(2, "measure " + vol + kRoles + " --particles " + vol, dir);
  EXPECT_EQ(particles.code, 2);
  EXPECT_NE(particles.err.find("--particles"), std::string::npos) << particles.err;
}

}  // namespace
}  // namespace vp
