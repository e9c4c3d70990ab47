// Agreement with the reference values of ../shared/data/real/MANIFEST.md (TauFactor's electrode:
// volume fractions, face-count and marching-cubes surface areas, through-connectivity).
// Skips when the data are absent.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "filters/io/volume_io.h"
#include "metrics/connectivity.h"
#include "metrics/face_connectivity.h"
#include "metrics/interfaces.h"
#include "metrics/phase_fractions.h"

using namespace vp;

namespace {

const std::string kElectrode = std::string(VP_REAL_DATA_DIR) + "/taufactor_electrode.tiff";

// 0 = pore, 85 = NMC, 170 = CBD; spacing 1 so that areas come out per voxel as in TauFactor.
const LabelVolume& electrode() {
  static LabelVolume lv = [] {
    ReadOptions o;
    o.path = kElectrode;
    Volume<std::uint8_t> v = to_labels_u8(read_volume(o).volume);
    v.spacing_um = {1, 1, 1};
    return LabelVolume(std::move(v),
                       PhaseTable({{"pore", 0, Role::pore}, {"nmc", 85, Role::active}, {"cbd", 170, Role::binder}}));
  }();
  return lv;
}

}  // namespace

class TaufactorElectrode : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kElectrode)) GTEST_SKIP() << "real data absent: " << kElectrode;
  }
};

TEST_F(TaufactorElectrode, VolumeFractionsExact) {
  const auto f = phase_fractions(electrode());
  ASSERT_EQ(f.total, 256 * 256 * 256);
  EXPECT_NEAR(f.phases[0].fraction, 0.44991737604141235, 1e-12);
  EXPECT_NEAR(f.phases[1].fraction, 0.40046632289886475, 1e-12);
  EXPECT_NEAR(f.phases[2].fraction, 0.1496163010597229, 1e-12);
}

TEST_F(TaufactorElectrode, FaceCountSurfaceAreasExact) {
  const auto a = interface_areas(electrode());
  const double n = 256.0 * 256 * 256;
  EXPECT_NEAR(a.surface_facecount(0) / n, 0.30683690, 5e-9);
  EXPECT_NEAR(a.surface_facecount(85) / n, 0.14610451, 5e-9);
  EXPECT_NEAR(a.surface_facecount(170) / n, 0.34222639, 5e-9);
}

TEST_F(TaufactorElectrode, CroftonBelowMarchingCubesAndFaceCount) {
  // No ground truth exists for this surface. Unsmoothed marching cubes (TauFactor's reference)
  // and the face count both overestimate smooth surfaces (the face count by ~50 %); Crofton is
  // within 1 % on spheres (test_metrics_interfaces) but misses part of the voxel-scale roughness
  // of thin features (diagonal test lines step over one-voxel-thin staircases). Measured here:
  // Crofton / marching cubes = 0.876 (pore), 0.919 (NMC), 0.840 (CBD, the thinnest phase).
  // Asserted: Crofton below marching cubes and within 20 % of it; face count above both.
  const auto a = interface_areas(electrode());
  const double n = 256.0 * 256 * 256;
  const double mc[3] = {0.22268115, 0.10418400, 0.25399911};
  const int labels[3] = {0, 85, 170};
  for (int i = 0; i < 3; ++i) {
    double crofton = a.surface(labels[i]) / n;
    std::printf("label %3d crofton %.6f marching cubes %.6f ratio %.4f\n", labels[i], crofton, mc[i], crofton / mc[i]);
    EXPECT_LT(crofton, mc[i]) << labels[i];
    EXPECT_GT(crofton, 0.8 * mc[i]) << labels[i];
    EXPECT_GT(a.surface_facecount(labels[i]) / n, mc[i]) << labels[i];
  }
}

TEST_F(TaufactorElectrode, ThroughConnectivityAlongNumpyAxis0) {
  // numpy axis 0 = TIFF page = our z. TauFactor's fractions in through-features (4 decimals).
  struct Case {
    int connectivity;
    double pore, nmc, cbd;
  };
  for (const Case& c :
       {Case{6, 0.9989, 0.9611, 0.9740}, Case{18, 0.9995, 0.9612, 0.9915}, Case{26, 0.9996, 0.9612, 0.9936}}) {
    const double want[3] = {c.pore, c.nmc, c.cbd};
    const int labels[3] = {0, 85, 170};
    for (int i = 0; i < 3; ++i) {
      auto p = percolation(phase_mask(electrode(), {labels[i]}), 2, c.connectivity);
      EXPECT_NEAR(p.percolating_fraction, want[i], 5e-5 + 1e-12) << "label " << labels[i] << " conn " << c.connectivity;
      EXPECT_NEAR(p.percolating_fraction + p.dead_end_fraction + p.isolated_fraction, 1.0, 1e-12);
    }
  }
}
