// `mpirun -np N voxpress cracks VOLUME --crack-ids IDS` against one process (measure_cracks on the
// whole volume): crack count and volume fraction, crack-network count, largest network fraction
// and percolation per axis must be bit-identical at 1, 2 and 4 ranks, on a case whose networks
// and z-percolation join only across slab faces (13 slices: 4 ranks cut 4 + 3 + 3 + 3, 2 ranks
// 7 + 6). Detection under N > 1 is refused, naming --crack-ids.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "filters/io/volume_io.h"
#include "mpi_harness.h"

namespace vp {
namespace {

namespace fs = std::filesystem;
using testing::run_mpi;
using testing::run_voxpress;

const char* const kRoles = " --labels pore=0,se=1 --roles pore=pore,se=electrolyte --host se --void pore";

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("vp_mpi_cracks_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// SE host with cracks (pore voxels with a crack id) and void that is no crack:
//  crack 1: sheet at z = 2 (x 2..12, y 2..12), 121 voxels, rank 0's slab at 4 ranks;
//  crack 2: sheet at z = 8 (x 0..19, y 2..12), 220 voxels, spans x;
//  a void chain of diagonal steps (x + 1, z + 1) from crack 1's corner to crack 2, crossing the
//    slab faces at z 3|4 and 6|7: one network with 26-connectivity, none with 6;
//  a staircase at y = 14 of four pieces, each 3 voxels wide in x, z 0..3 | 4..6 | 7..9 | 10..12,
//    touching the next only along an edge across a slab face: the z faces join only with 26,
//    only across slabs. Crack 3 = pieces 1 and 3 (21 voxels), crack 4 = pieces 2 and 4 (18);
//  a pore pocket holding no crack (x 15..18, y 0..1, z 0..1).
std::string write_case(const fs::path& dir) {
  const Dims d{20, 16, 13};
  const Vec3 h{0.5, 0.5, 0.7};
  Volume<std::uint8_t> labels(d, h);
  Volume<std::uint32_t> ids(d, h);
  for (index_t i = 0; i < labels.size(); ++i) labels[i] = 1;
  auto crack = [&](index_t x, index_t y, index_t z, std::uint32_t id) {
    labels(x, y, z) = 0;
    ids(x, y, z) = id;
  };
  for (index_t y = 2; y <= 12; ++y)
    for (index_t x = 0; x < d.x; ++x) {
      if (x >= 2 && x <= 12) crack(x, y, 2, 1);
      crack(x, y, 8, 2);
    }
  for (index_t k = 1; k <= 5; ++k) labels(12 + k, 12, 2 + k) = 0;
  const index_t piece_z[5] = {0, 4, 7, 10, 13};
  for (int piece = 0; piece < 4; ++piece)
    for (index_t z = piece_z[piece]; z < piece_z[piece + 1]; ++z)
      for (index_t x = 2 + 3 * piece; x < 5 + 3 * piece; ++x) crack(x, 14, z, piece % 2 == 0 ? 3 : 4);
  for (index_t z = 0; z <= 1; ++z)
    for (index_t y = 0; y <= 1; ++y)
      for (index_t x = 15; x <= 18; ++x) labels(x, y, z) = 0;
  write_volume(labels, (dir / "labels.tif").string());
  write_volume(ids, (dir / "ids.tif").string());
  return "'" + (dir / "labels.tif").string() + "' --crack-ids '" + (dir / "ids.tif").string() + "'";
}

// One process, then 1, 2 and 4 ranks: the same rows and keys, value for value.
nlohmann::json expect_ranks_agree(const std::string& args, const fs::path& dir) {
  const auto one = run_voxpress("cracks " + args + " --json", dir);
  EXPECT_EQ(one.code, 0) << one.err;
  if (one.code != 0) return {};
  const auto ref = nlohmann::json::parse(one.out);
  EXPECT_FALSE(ref["rows"].empty());
  for (int ranks : {1, 2, 4}) {
    const auto r = run_mpi(ranks, "cracks " + args + " --json", dir);
    EXPECT_EQ(r.code, 0) << ranks << " ranks: " << r.err;
    if (r.code != 0) continue;
    auto got = nlohmann::json::parse(r.out);
    EXPECT_EQ(got["ranks"], ranks);
    got.erase("ranks");
    EXPECT_EQ(got, ref) << ranks << " ranks";
  }
  return ref;
}

TEST(MpiCracks, NetworksAndPercolationJoinAcrossSlabs) {
  const auto dir = scratch("networks");
  const std::string args = write_case(dir) + kRoles;
  const double crack_voxels = 121 + 220 + 21 + 18;

  const auto c26 = expect_ranks_agree(args + " --connectivity 26", dir);
  ASSERT_FALSE(c26.is_null());
  EXPECT_EQ(c26["crack_count"], 4);
  EXPECT_EQ(c26["network_count"], 2);  // {1, chain, 2} and the staircase {3, 4}
  EXPECT_NEAR(c26["largest_network_fraction"].get<double>(), (121 + 220) / crack_voxels, 1e-12);
  EXPECT_EQ(c26["percolates"], (nlohmann::json{{"x", true}, {"y", false}, {"z", true}}));
  EXPECT_EQ(c26["percolating_voxels"]["z"], 39);

  const auto c6 = expect_ranks_agree(args + " --connectivity 6", dir);
  ASSERT_FALSE(c6.is_null());
  EXPECT_EQ(c6["network_count"], 4);  // 1, 2, and the pieces holding the first voxels of 3 and 4
  EXPECT_NEAR(c6["largest_network_fraction"].get<double>(), 220 / crack_voxels, 1e-12);
  EXPECT_EQ(c6["percolates"], (nlohmann::json{{"x", true}, {"y", false}, {"z", false}}));
}

TEST(MpiCracks, DetectionOnSlabsIsRefused) {
  const auto dir = scratch("refuse");
  const std::string args = write_case(dir);
  const std::string labels = args.substr(0, args.find(" --crack-ids"));
  const auto r = run_mpi(2, "cracks " + labels + kRoles, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--crack-ids"), std::string::npos) << r.err;
  const auto grey = run_mpi(2, "cracks " + args + kRoles + " --grey " + labels, dir);
  EXPECT_EQ(grey.code, 2);
  EXPECT_NE(grey.err.find("--grey"), std::string::npos) << grey.err;
}

}  // namespace
}  // namespace vp
