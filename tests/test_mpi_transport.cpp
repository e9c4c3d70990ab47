// The PETSc/MPI engine against the native solve: the exact cases of test_transport_solve.cpp
// and the small real volumes, at 1, 2 and 4 ranks (mpirun --oversubscribe, allowed as root as
// CI runs). Each case is written to a TIFF that every rank reads its z-slab of.
#include <gtest/gtest.h>

#include <cmath>
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
using testing::write_case;

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("vp_mpi_transport_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// The native answer, then the PETSc one at 1, 2 and 4 ranks: same status, σ_eff and τ within 1e-6.
void expect_engines_agree(const std::string& volume_args, const fs::path& dir, const std::string& axis = "z") {
  const std::string args = volume_args + " --axis " + axis + " --json";
  const auto native = run_voxpress("solve " + args, dir);
  ASSERT_EQ(native.code, 0) << native.err;
  const auto n = nlohmann::json::parse(native.out)[axis];
  for (int ranks : {1, 2, 4}) {
    const auto petsc = run_mpi(ranks, "solve " + args + " --engine petsc", dir);
    ASSERT_EQ(petsc.code, 0) << ranks << " ranks: " << petsc.err;
    const auto all = nlohmann::json::parse(petsc.out);
    EXPECT_EQ(all["ranks"], ranks);
    const auto p = all[axis];
    EXPECT_EQ(p["status"], n["status"]) << ranks << " ranks";
    EXPECT_EQ(p["porosity"], n["porosity"]) << ranks << " ranks";
    EXPECT_EQ(p["porosity_percolating"], n["porosity_percolating"]) << ranks << " ranks";
    if (n["status"] != "ok") continue;
    const double s = n["sigma_eff"].get<double>();
    EXPECT_NEAR(p["sigma_eff"].get<double>(), s, 1e-6 * s) << ranks << " ranks";
    EXPECT_NEAR(p["tau"].get<double>(), n["tau"].get<double>(), 1e-6 * n["tau"].get<double>()) << ranks << " ranks";
    EXPECT_EQ(p.size(), n.size()) << "the same keys per axis";
  }
}

TEST(MpiTransport, UniformBlock) {
  const auto dir = scratch("uniform");
  expect_engines_agree(
      write_case(dir, {8, 9, 10}, [](index_t, index_t, index_t) { return 1; }) + " --phase 1 --tol 1e-10", dir);
  expect_engines_agree(write_case(dir, {8, 9, 10}, [](index_t, index_t, index_t) { return 1; }) +
                           " --phase 1 --tol 1e-10 --spacing 1,2,3.5",
                       dir, "x");
  fs::remove_all(dir);
}

TEST(MpiTransport, SeriesAndParallelHalves) {
  const auto dir = scratch("halves");
  expect_engines_agree(write_case(dir, {6, 7, 20}, [](index_t, index_t, index_t z) { return z < 10 ? 1 : 2; }) +
                           " --cond 1=10,2=1 --tol 1e-10",
                       dir);
  expect_engines_agree(write_case(dir, {20, 7, 12}, [](index_t x, index_t, index_t) { return x < 10 ? 1 : 2; }) +
                           " --cond 1=10,2=1 --tol 1e-10",
                       dir);
  fs::remove_all(dir);
}

TEST(MpiTransport, TenSeriesLayersAlongAndAcross) {
  const auto dir = scratch("layers");
  const std::string v =
      write_case(dir, {5, 5, 30}, [](index_t, index_t, index_t z) { return static_cast<int>(z / 3 + 1); });
  const std::string cond = " --cond 1=1,2=2,3=3,4=4,5=5,6=6,7=7,8=8,9=9,10=10 --tol 1e-10";
  expect_engines_agree(v + cond, dir, "z");
  expect_engines_agree(v + cond, dir, "x");
  fs::remove_all(dir);
}

TEST(MpiTransport, SlantedStrip) {
  const auto dir = scratch("slanted");
  expect_engines_agree(
      write_case(dir, {21, 21, 20},
                 [](index_t x, index_t y, index_t z) { return x >= z && x < z + 2 && y >= z && y < z + 2 ? 1 : 0; }) +
          " --phase 1 --tol 1e-10",
      dir);
  fs::remove_all(dir);
}

TEST(MpiTransport, DeadEndIsNotPercolating) {
  const auto dir = scratch("dead");
  expect_engines_agree(
      write_case(dir, {50, 50, 10}, [](index_t x, index_t y, index_t z) { return x == 25 && y == 25 && z < 8; }) +
          " --phase 1",
      dir);
  // A path with dead ends hanging off it across the slab faces: the merge must keep only the path.
  expect_engines_agree(write_case(dir, {9, 9, 12},
                                  [](index_t x, index_t y, index_t z) {
                                    return (x == 4 && y == 4) || (y == 4 && z == 6 && x > 4) ||
                                           (x == 1 && y == 1 && z < 7);
                                  }) +
                           " --phase 1 --tol 1e-10",
                       dir);
  fs::remove_all(dir);
}

TEST(MpiTransport, PeriodicWrapAcrossSlabs) {
  // Transport along x; the only path leaves the volume through the z wrap, which crosses ranks.
  const auto dir = scratch("periodic");
  expect_engines_agree(write_case(dir, {12, 3, 8},
                                  [](index_t x, index_t y, index_t z) {
                                    if (y != 1) return 0;
                                    if (x < 6) return z == 0 ? 1 : 0;
                                    if (x == 6) return z == 0 || z == 7 ? 1 : 0;
                                    return z == 7 ? 1 : 0;
                                  }) +
                           " --phase 1 --periodic --tol 1e-10",
                       dir, "x");
  fs::remove_all(dir);
}

TEST(MpiTransport, RealVolumesAgree) {
  const fs::path real = VP_REAL_DATA_DIR;
  const fs::path puma = real / "puma_100_fiberform.tif",
                 blobs = real / "openimpala_SampleData_2Phase_stack_3d_1bit.tif";
  if (!fs::exists(puma) || !fs::exists(blobs)) GTEST_SKIP() << "real volumes not in " << real;
  const auto dir = scratch("real");
  expect_engines_agree("'" + puma.string() + "' --phase 0-89 --tol 1e-10", dir);
  expect_engines_agree("'" + blobs.string() + "' --phase 1 --tol 1e-10", dir);
  fs::remove_all(dir);
}

TEST(MpiTransport, WithoutMpirunRunsOnOneRankAndSaysSo) {
  const auto dir = scratch("single");
  const auto r = run_voxpress("solve " + write_case(dir, {4, 4, 6}, [](index_t, index_t, index_t) { return 1; }) +
                                  " --phase 1 --engine petsc --json",
                              dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("without mpirun: running on 1 rank"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ranks"], 1);
  fs::remove_all(dir);
}

TEST(MpiTransport, MoreRanksThanSlicesStopsEveryRank) {
  const auto dir = scratch("ranks");
  const auto r = run_mpi(
      4,
      "solve " + write_case(dir, {4, 4, 3}, [](index_t, index_t, index_t) { return 1; }) + " --phase 1 --engine petsc",
      dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("case.tif"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fewer than the 4 MPI ranks"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vp
