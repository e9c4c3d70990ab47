// Phantoms: YAML spec, thread-count independence, file bytes, composite options.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <tbb/global_control.h>

#include "core/error.h"
#include "filters/io/volume_io.h"
#include "phantoms/geometry.h"
#include "phantoms/phantom.h"
#include "phantoms/phantom_spec.h"

using namespace vp;
using namespace vp::phantom;
namespace fs = std::filesystem;

namespace {

CompositeSpec tiny_spec() {
  CompositeSpec s;
  s.dims = {40, 40, 40};
  s.spacing_um = {0.5, 0.5, 0.5};
  s.seed = 11;
  s.am_radius_vox = 5;
  s.am_radius_min_vox = 3;
  s.am_radius_max_vox = 8;
  s.se_radius_vox = 2;
  s.cracks.se_radius_um = 5;
  s.cracks.onset_MPa = 100;
  return s;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string error_of(const std::string& yaml) {
  try {
    phantom_job_from_yaml(YAML::Load(yaml), "spec.yaml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PhantomSpec, ReadsEveryKeyAndKeepsDefaultsForTheRest) {
  const PhantomJob job = phantom_job_from_yaml(YAML::Load(R"(
size: [32, 24, 16]
spacing_um: [0.4, 0.4, 0.8]
seed: 5
pressures_MPa: [20, 200]
fractions: {am: 0.5, se: 0.4, binder: 0.1}
am_particles: {radius_vox: 6, radius_min_vox: 4, radius_max_vox: 9, grains: 4}
compaction: {heckel_k: 0.01, heckel_A: 1.0}
cracks: {onset_MPa: 150, se_count: 2, se_normal: [1, 0, 0]}
imaging: {noise: poisson, snr: 5, blur_sigma_vox: [1, 1, 0.5], attenuation: {am: 0.9}}
)"),
                                               "spec.yaml");
  const CompositeSpec& c = job.composite;
  EXPECT_EQ(c.dims, (Dims{32, 24, 16}));
  EXPECT_EQ(c.spacing_um, (Vec3{0.4, 0.4, 0.8}));
  EXPECT_EQ(c.seed, 5u);
  EXPECT_EQ(c.pressures_MPa, (std::vector<double>{20, 200}));
  EXPECT_EQ(c.binder_fraction, 0.1);
  EXPECT_EQ(c.grains, 4);
  EXPECT_EQ(c.compaction.heckel_k, 0.01);
  EXPECT_EQ(c.cracks.onset_MPa, 150);
  EXPECT_EQ(c.cracks.se_normal, (Vec3{1, 0, 0}));
  EXPECT_EQ(c.cracks.am_count, CrackSpec{}.am_count);  // default kept
  EXPECT_EQ(job.imaging.noise, NoiseModel::poisson);
  EXPECT_EQ(job.imaging.attenuation.at("am"), 0.9);
  EXPECT_EQ(job.imaging.attenuation.at("se"), ImagingSpec{}.attenuation.at("se"));
  EXPECT_EQ(job.imaging.blur_sigma_vox, (Vec3{1, 1, 0.5}));
  EXPECT_EQ(job.imaging.seed, 5u);  // follows the phantom seed
  EXPECT_FALSE(job.fib_sem);
}

TEST(PhantomSpec, FibSemModalityDefaultsToNanometreVoxels) {
  const PhantomJob job = phantom_job_from_yaml(YAML::Load("modality: fib-sem\n"), "spec.yaml");
  EXPECT_TRUE(job.fib_sem);
  EXPECT_EQ(job.composite.spacing_um, kFibSemSpacingUm);
}

TEST(PhantomSpec, ErrorsNameFileLineColumnAndKey) {
  const std::string unknown = error_of("size: 32\ncracks:\n  se_cuont: 3\n");
  EXPECT_NE(unknown.find("spec.yaml:3:3"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("cracks.se_cuont"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("se_count"), std::string::npos) << unknown;  // did you mean
  const std::string type = error_of("seed: many\n");
  EXPECT_NE(type.find("spec.yaml:1:7"), std::string::npos) << type;
  EXPECT_NE(type.find("seed"), std::string::npos) << type;
  EXPECT_NE(error_of("size: [1, 2]\n").find("size"), std::string::npos);
  EXPECT_NE(error_of("imaging: {noise: speckle}\n").find("imaging.noise"), std::string::npos);
  EXPECT_NE(error_of("imaging: {attenuation: {carbon: 1}}\n").find("imaging.attenuation.carbon"), std::string::npos);
  EXPECT_NE(error_of("am_particles: {radius_vox: 20}\n").find("radius_min_vox ≤ radius_vox ≤ radius_max_vox"),
            std::string::npos);
}

TEST(PhantomDeterminism, ResultsDoNotDependOnTheThreadCount) {
  const CompositeSpec s = tiny_spec();
  Phantom one, many;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
    one = generate_composite(s, 150);
  }
  many = generate_composite(s, 150);
  EXPECT_EQ(one.labels.storage(), many.labels.storage());
  EXPECT_EQ(one.particles.storage(), many.particles.storage());
  EXPECT_EQ(one.truth.to_json().dump(), many.truth.to_json().dump());
  ImagingSpec im;
  Volume<std::uint16_t> g1;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
    g1 = ct_image(one.labels, im);
  }
  EXPECT_EQ(g1.storage(), ct_image(many.labels, im).storage());
}

TEST(PhantomDeterminism, WrittenTiffsAreByteIdenticalAndReadBack) {
  const fs::path dir = fs::temp_directory_path() / ("vp_phantoms_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const Phantom ph = generate_composite(tiny_spec(), 150);
  const auto grey = ct_image(ph.labels, ImagingSpec{});
  for (const char* name : {"a", "b"}) {
    write_volume(grey, (dir / (std::string(name) + ".tif")).string());
    write_volume(static_cast<const Volume<std::uint8_t>&>(ph.labels),
                 (dir / (std::string(name) + "_labels.tif")).string());
  }
  EXPECT_EQ(file_bytes(dir / "a.tif"), file_bytes(dir / "b.tif"));
  EXPECT_EQ(file_bytes(dir / "a_labels.tif"), file_bytes(dir / "b_labels.tif"));
  ReadOptions ro;
  ro.path = (dir / "a_labels.tif").string();
  const auto back = std::get<Volume<std::uint8_t>>(read_volume(ro).volume);
  EXPECT_EQ(back.storage(), ph.labels.storage());
  fs::remove_all(dir);
}

TEST(PhantomComposite, BinderPhaseAndFixedPorosityWithoutCompaction) {
  CompositeSpec s = tiny_spec();
  s.binder_fraction = 0.08;
  s.compaction.enabled = false;
  s.pore_fraction = 0.15;
  s.cracks_enabled = false;
  const Phantom ph = generate_composite(s, 0);
  ASSERT_NE(ph.labels.phases.by_name("binder"), nullptr);
  EXPECT_EQ(ph.labels.phases.single(Role::binder).label, kBinder);
  EXPECT_GT(ph.truth.voxel_count.at("binder"), 0);
  EXPECT_LE(std::fabs(ph.truth.voxel_count.at("pore") - 0.15 * ph.labels.size()), 1.0);
  double sum = 0;
  for (const auto& [name, f] : ph.truth.volume_fraction) sum += f;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  EXPECT_TRUE(ph.truth.interface_area_um2.count("am|binder"));
  EXPECT_EQ(ph.truth.z_scale, 1.0);
}

TEST(PhantomComposite, ContactFollowsTheSteeredLawAndParticlesArePolydisperse) {
  const CompositeSpec s = tiny_spec();
  const Phantom ph = generate_composite(s, 50);
  EXPECT_NEAR(ph.truth.contact_area_fraction, target_contact_fraction(s.compaction, 50), 2e-3);
  double rmin = 1e9, rmax = 0;
  int ellipsoids = 0, poly = 0;
  for (const auto& p : ph.truth.particles) {
    ASSERT_EQ(p.phase, "am");
    const double r = std::cbrt(p.semi_axes_um[0] * p.semi_axes_um[1] * p.semi_axes_um[2]);
    rmin = std::min(rmin, r), rmax = std::max(rmax, r);
    ellipsoids += p.semi_axes_um[0] != p.semi_axes_um[2];
    poly += p.grains > 0;
    EXPECT_NEAR(p.volume_um3, 4.0 / 3.0 * kPi * r * r * r, 1e-9 * p.volume_um3);
  }
  EXPECT_GT(rmax / rmin, 1.5);
  EXPECT_GT(ellipsoids, 0);
  EXPECT_GT(poly, 0);
  // Particle ids: every AM voxel carries the id of a listed AM particle.
  for (index_t i = 0; i < ph.labels.size(); ++i)
    if (ph.labels[i] == kActive) {
      ASSERT_GE(ph.particles[i], 1u);
      ASSERT_LE(ph.particles[i], ph.truth.particles.back().id);
    }
}

TEST(PhantomComposite, SeCrackNormalsStayWithinTheTilt) {
  CompositeSpec s = tiny_spec();
  s.cracks.se_tilt_deg = 10;
  s.cracks.se_normal = {1, 0, 0};
  const Phantom ph = generate_composite(s, s.cracks.full_pressure_MPa);
  int se = 0;
  for (const auto& c : ph.truth.cracks)
    if (c.host == "se") {
      ++se;
      EXPECT_GE(std::fabs(c.normal[0]), std::cos(10 * kPi / 180) - 1e-12);
    }
  EXPECT_EQ(se, s.cracks.se_count);
}
