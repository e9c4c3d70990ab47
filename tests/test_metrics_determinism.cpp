// The metrics give bit-identical results with one thread and with all threads.
#include <gtest/gtest.h>

#include <random>

#include <tbb/global_control.h>
#include <tbb/info.h>

#include "metrics/connectivity.h"
#include "metrics/distance_transform.h"
#include "metrics/fraction_profiles.h"
#include "metrics/geometric_tortuosity.h"
#include "metrics/interfaces.h"
#include "metrics/local_thickness.h"
#include "metrics/rev.h"

using namespace vp;

namespace {

LabelVolume random_three_phase() {
  // Blobs: smoothed random field thresholded into three phases (48 planes: several z-slabs).
  Volume<std::uint8_t> v({40, 36, 48}, {0.5, 0.6, 0.7});
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> f(static_cast<std::size_t>(v.size()));
  for (auto& x : f) x = u(rng);
  for (int pass = 0; pass < 3; ++pass)
    for (index_t i = 1; i + 1 < v.size(); ++i) f[i] = (f[i - 1] + f[i] + f[i + 1]) / 3;
  for (index_t i = 0; i < v.size(); ++i) v[i] = f[i] < 0.45 ? 0 : f[i] < 0.55 ? 1 : 2;
  return LabelVolume(std::move(v),
                     PhaseTable({{"pore", 0, Role::pore}, {"se", 1, Role::electrolyte}, {"am", 2, Role::active}}));
}

struct Snapshot {
  std::vector<double> areas;
  std::vector<float> edt, lt;
  std::vector<std::uint32_t> clusters;
  double tortuosity = 0;
  std::vector<double> rev;
};

Snapshot measure_all(const LabelVolume& lv) {
  Snapshot s;
  for (const auto& p : interface_areas(lv).pairs) s.areas.insert(s.areas.end(), {p.area_um2, p.facecount_um2});
  Volume<std::uint8_t> pore(lv.dims(), lv.spacing_um);
  for (index_t i = 0; i < lv.size(); ++i) pore[i] = lv[i] == 0;
  s.edt = distance_transform(pore).storage();
  s.lt = local_thickness(pore).storage();
  s.clusters = label_clusters(pore, 26).ids.storage();
  s.tortuosity = geometric_tortuosity(pore, {2, 26, false}).mean;
  for (const auto& r : rev_study(lv)) s.rev.insert(s.rev.end(), {r.value, r.uncertainty});
  return s;
}

}  // namespace

TEST(Determinism, OneThreadEqualsAllThreads) {
  const LabelVolume lv = random_three_phase();
  Snapshot many = measure_all(lv);
  Snapshot one;
  {
    tbb::global_control only_one(tbb::global_control::max_allowed_parallelism, 1);
    one = measure_all(lv);
  }
  EXPECT_EQ(one.areas, many.areas);
  EXPECT_EQ(one.edt, many.edt);
  EXPECT_EQ(one.lt, many.lt);
  EXPECT_EQ(one.clusters, many.clusters);
  EXPECT_EQ(one.tortuosity, many.tortuosity);
  EXPECT_EQ(one.rev, many.rev);
}
