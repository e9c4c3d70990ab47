// Metrics against phantom ground truth: the capped AM sphere (exact contact fraction) and
// separated spheres (analytic interface area), with isotropic and anisotropic spacing.
#include <gtest/gtest.h>

#include <cmath>

#include "metrics/interfaces.h"
#include "phantoms/phantom.h"

using namespace vp;

TEST(PhantomTruth, CappedSphereContactFraction) {
  for (double angle : {90.0, 60.0, 120.0}) {
    phantom::CappedSphereSpec spec;
    spec.cap_angle_deg = angle;
    const phantom::Phantom ph = phantom::capped_sphere(spec);
    const ContactArea c = contact_area(ph.labels);
    const double exact = (1 - std::cos(angle * M_PI / 180)) / 2;
    EXPECT_NEAR(c.fraction, exact, 0.02) << "cap " << angle << "°";
    if (ph.truth.contact_area_fraction >= 0) {
      EXPECT_NEAR(ph.truth.contact_area_fraction, exact, 0.02);
    }
    EXPECT_NEAR(c.am_surface_um2 / (4 * M_PI * spec.radius_um * spec.radius_um), 1.0, 0.02);
  }
}

TEST(PhantomTruth, SeparatedSpheresInterfaceArea) {
  for (Vec3 spacing : {Vec3{1, 1, 1}, Vec3{1, 1, 1.5}}) {
    phantom::SpheresSpec spec;
    spec.dims = {64, 64, spacing[2] > 1 ? 43 : 64};
    spec.spacing_um = spacing;
    spec.count = 3;
    spec.radius_min_um = 10;
    spec.radius_max_um = 13;
    const phantom::Phantom ph = phantom::separated_spheres(spec);
    const InterfaceAreas a = interface_areas(ph.labels);
    const double truth = ph.truth.interface_area_um2.at("pore|am");
    EXPECT_NEAR(a.area(phantom::kPore, phantom::kActive) / truth, 1.0, 0.02) << "spacing z " << spacing[2];
  }
}
