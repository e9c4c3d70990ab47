// Tortuosity factors of the third-party volumes in VP_REAL_DATA_DIR against the reference
// values of MANIFEST.md ("Tortuosity factors in voxpress's conventions": Dirichlet on the
// sample faces, L = N voxels, ε over the whole image; TauFactor / PuMA), within 0.5 %.
// Manifest arrays are numpy (z, y, x): numpy axis 0 (TIFF page) is our z, axis 2 our x.
// Skipped when the data folder is absent.
#include <gtest/gtest.h>

#include <filesystem>

#include "filters/io/volume_io.h"
#include "metrics/transport/conductivity_solve.h"

namespace vp {
namespace {

namespace fs = std::filesystem;

std::string real_file(const std::string& name) { return (fs::path(VP_REAL_DATA_DIR) / name).string(); }

// Reads a real volume as u8 labels, or skips the test saying why.
#define LOAD_OR_SKIP(var, name)                                                    \
  Volume<std::uint8_t> var;                                                        \
  do {                                                                             \
    const std::string path_ = real_file(name);                                     \
    if (!fs::exists(path_)) GTEST_SKIP() << path_ << " absent (VP_REAL_DATA_DIR)"; \
    ReadOptions o_;                                                                \
    o_.path = path_;                                                               \
    o_.hash = false;                                                               \
    var = to_labels_u8(read_volume(o_).volume);                                    \
    var.spacing_um = {1, 1, 1};                                                    \
  } while (0)

ConductivityTable labels_in(int lo, int hi) {
  ConductivityTable t{};
  for (int l = lo; l <= hi; ++l) t[static_cast<std::size_t>(l)] = 1.0;
  return t;
}

void expect_tau(const Volume<std::uint8_t>& v, const ConductivityTable& k, int axis, double reference,
                double porosity) {
  TransportOptions o;
  o.axis = axis;
  const TransportResult r = solve_transport(v, k, o);
  EXPECT_EQ(r.status, "ok");
  EXPECT_NEAR(r.conducting_fraction, porosity, 5e-6);
  EXPECT_NEAR(r.tau, reference, 0.005 * reference) << "axis " << axis_name(axis);
  // Tighter than the contract's 0.5 %: what we actually reach (documented in docs/transport.md).
  EXPECT_NEAR(r.tau, reference, 0.001 * reference) << "axis " << axis_name(axis);
  std::cout << "    tau_" << axis_name(axis) << " = " << r.tau << " (reference " << reference << ", " << r.iterations
            << " iterations, " << r.seconds << " s)\n";
}

TEST(TransportReal, TaufactorElectrodePoreAlongPages) {
  LOAD_OR_SKIP(v, "taufactor_electrode.tiff");
  ASSERT_EQ(v.dims(), (Dims{256, 256, 256}));
  // Pore = label 0; TauFactor's "x" is numpy axis 0, our z. One axis only: 256³ is the big one.
  expect_tau(v, labels_in(0, 0), 2, 2.0772, 0.449917);
}

TEST(TransportReal, PumaFiberformVoid) {
  LOAD_OR_SKIP(v, "puma_100_fiberform.tif");
  const ConductivityTable pores = labels_in(0, 89);  // void = grey 0..89
  expect_tau(v, pores, 2, 1.1830, 0.83286);
  expect_tau(v, pores, 1, 1.1336, 0.83286);
  expect_tau(v, pores, 0, 1.312885, 0.83286);
}

TEST(TransportReal, LeopardSandstonePore) {
  const std::string path = real_file("porespy_image_Leopard_slice100.npy");
  if (!fs::exists(path)) GTEST_SKIP() << path << " absent (VP_REAL_DATA_DIR)";
  Volume<std::uint8_t> v;
  try {
    ReadOptions o;
    o.path = path;
    o.hash = false;
    v = to_labels_u8(read_volume(o).volume);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "the .npy reader cannot read it yet: " << e.what();
  }
  expect_tau(v, labels_in(1, 1), 2, 4.4994, 0.262235);
  expect_tau(v, labels_in(1, 1), 1, 13.246, 0.262235);
  expect_tau(v, labels_in(1, 1), 0, 3.5907, 0.262235);
}

TEST(TransportReal, OpenImpalaBlobs1Bit) {
  LOAD_OR_SKIP(v, "openimpala_SampleData_2Phase_stack_3d_1bit.tif");
  expect_tau(v, labels_in(1, 1), 2, 3.1662, 0.398309);
  expect_tau(v, labels_in(1, 1), 1, 3.0987, 0.398309);
  expect_tau(v, labels_in(1, 1), 0, 3.1560, 0.398309);
}

}  // namespace
}  // namespace vp
