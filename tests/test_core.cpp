#include <gtest/gtest.h>

#include "core/csv.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/params.h"
#include "core/phase_table.h"
#include "core/volume.h"

using namespace vp;

TEST(Volume, IndexOrderIsXFastest) {
  Volume<std::uint16_t> v({4, 3, 2});
  v(1, 2, 1) = 7;
  EXPECT_EQ(v[1 + 4 * (2 + 3 * 1)], 7);
  EXPECT_EQ(v.size(), 24);
}

TEST(Volume, CropViewIsZeroCopyAndCropShiftsOrigin) {
  Volume<float> v({5, 5, 5}, {0.5, 0.5, 2.0});
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  auto view = v.crop_view({{1, 2, 3}, {2, 2, 2}});
  EXPECT_EQ(&view(0, 0, 0), &v(1, 2, 3));
  view(1, 1, 1) = -1;
  EXPECT_EQ(v(2, 3, 4), -1);
  auto c = v.crop({{1, 2, 3}, {2, 2, 2}});
  EXPECT_EQ(c.dims(), (Dims{2, 2, 2}));
  EXPECT_EQ(c(0, 0, 0), v(1, 2, 3));
  EXPECT_DOUBLE_EQ(c.origin_um[2], 6.0);
  EXPECT_THROW(v.crop_view({{4, 0, 0}, {2, 1, 1}}), std::out_of_range);
}

TEST(Volume, ReleaseVoxelsMovesTheBufferAndKeepsTheMetadata) {
  Volume<std::uint8_t> v({4, 3, 2}, {0.5, 0.7, 2.0}, 3);
  v.origin_um = {1, 2, 3};
  v.provenance = {"scan.tif", "abc"};
  const std::uint8_t* buffer = v.data();
  Volume<std::uint8_t> out = v.release_voxels();
  EXPECT_EQ(out.data(), buffer);  // the same memory, not a copy
  EXPECT_EQ(out.dims(), (Dims{4, 3, 2}));
  EXPECT_EQ(out(3, 2, 1), 3);
  EXPECT_EQ(v.data(), nullptr);
  for (const auto* w : {&v, &out}) {
    EXPECT_EQ(w->dims(), (Dims{4, 3, 2}));
    EXPECT_EQ(w->spacing_um, (Vec3{0.5, 0.7, 2.0}));
    EXPECT_EQ(w->origin_um, (Vec3{1, 2, 3}));
    EXPECT_EQ(w->provenance.path, "scan.tif");
    EXPECT_EQ(w->provenance.sha256, "abc");
  }
  std::uint8_t outside[24] = {};
  auto borrowed = Volume<std::uint8_t>::borrowing(outside, {4, 3, 2});
  EXPECT_THROW(borrowed.release_voxels(), std::logic_error);
}

TEST(Volume, LabelsRejectNonIntegerVoxelNamingIt) {
  Volume<float> v({2, 2, 2});
  v(1, 0, 1) = 2.5f;
  try {
    to_labels_u8(AnyVolume(v));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("x=1, y=0, z=1"), std::string::npos) << e.what();
  }
}

TEST(Hash, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(PhaseTable, ResolvesNamesLabelsAndRoles) {
  PhaseTable t({{"pore", 0, Role::pore}, {"se", 1, Role::electrolyte}, {"am", 2, Role::active}});
  EXPECT_EQ(t.resolve("se").label, 1);
  EXPECT_EQ(t.resolve("2").name, "am");
  EXPECT_EQ(t.single(Role::active).name, "am");
  EXPECT_THROW(t.single(Role::binder), InputError);
  EXPECT_THROW(t.resolve("nmc"), InputError);
  EXPECT_THROW(PhaseTable({{"a", 1, Role::pore}, {"b", 1, Role::active}}), InputError);
}

TEST(Params, ChecksTypesBoundsChoicesAndUnknownKeys) {
  std::vector<ParamSpec> specs = {
      {"tol", ParamType::number, "relative residual", "", "1e-6", false, {}, 0.0, 1.0},
      {"method", ParamType::string, "", "", "otsu", false, {"otsu", "kmeans"}},
      {"axes", ParamType::string_list, "", "", "[z]", false, {"x", "y", "z"}},
  };
  YAML::Node n = YAML::Load("stage: x\ntol: 2\nmethod: gmmm\naxes: [x, w]\ntoll: 1\n");
  Params p(n, specs, "c.yaml", "stages[0]");
  Diagnostics d("c.yaml");
  p.check(d);
  const std::string text = d.format();
  EXPECT_NE(text.find("c.yaml:2:6: stages[0].tol: value 2 is above the maximum 1"), std::string::npos) << text;
  EXPECT_NE(text.find("stages[0].method: 'gmmm' is not one of: otsu, kmeans"), std::string::npos) << text;
  EXPECT_NE(text.find("'w' is not one of"), std::string::npos) << text;
  EXPECT_NE(text.find("c.yaml:5:1: stages[0].toll: unknown key; did you mean 'tol'?"), std::string::npos) << text;
  Params defaults(YAML::Node(), specs);
  EXPECT_DOUBLE_EQ(defaults.number("tol"), 1e-6);
  EXPECT_EQ(defaults.strings("axes"), std::vector<std::string>{"z"});
  auto cli = Params::from_strings({{"axes", "x,y"}, {"tol", "0.5"}}, specs);
  EXPECT_EQ(cli.strings("axes"), (std::vector<std::string>{"x", "y"}));
  EXPECT_DOUBLE_EQ(cli.number("tol"), 0.5);
}

TEST(Csv, QuotingFollowsRfc4180) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("am|se"), "am|se");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("µm²"), "µm²");
}

// Integer choices and exclusive bounds are generic checks, not hand-written ones per stage.
TEST(Params, IntegerChoicesAndExclusiveBounds) {
  const std::vector<vp::ParamSpec> specs = {
      vp::integer_choices(vp::param("connectivity", vp::ParamType::integer, "neighbourhood", "", "6"), {6, 18, 26}),
      vp::above(vp::param("tol", vp::ParamType::number, "tolerance", "", "1e-6"), 0.0)};
  auto problems = [&](const std::string& yaml) {
    vp::Diagnostics d("c.yaml");
    vp::Params(YAML::Load(yaml), specs, "c.yaml", "stages[0]").check(d);
    return d.format();
  };
  EXPECT_EQ(problems("{connectivity: 18, tol: 1e-9}"), "");
  EXPECT_NE(problems("{connectivity: 19}").find("stages[0].connectivity: found 19; expected 6, 18 or 26"),
            std::string::npos);
  EXPECT_NE(problems("{tol: 0}").find("stages[0].tol: value 0 is not above 0"), std::string::npos);
  EXPECT_NE(problems("{tol: -1}").find("stages[0].tol: value -1 is not above 0"), std::string::npos);
}

// Defaults taken from Options structs read as the hand-written YAML did.
TEST(Params, NumberDefaultsReadBack) {
  EXPECT_EQ(vp::number_default(1e-6), "1e-6");
  EXPECT_EQ(vp::number_default(1e-4), "1e-4");
  EXPECT_EQ(vp::number_default(1e20), "1e20");
  EXPECT_EQ(vp::number_default(0.5), "0.5");
  EXPECT_EQ(vp::number_default(1000), "1000");
  EXPECT_EQ(vp::number_list_default({1, 2, 3}), "[1, 2, 3]");
  for (double v : {1e-6, 2.5e-300, 0.1, 123456.789}) EXPECT_EQ(YAML::Load(vp::number_default(v)).as<double>(), v);
}
