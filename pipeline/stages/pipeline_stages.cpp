// The foundation's stage (volume_fraction) and commands (run, validate, info, stages).
#include "core/error.h"
#include "metrics/phase_fractions.h"
#include "pipeline/catalog.h"
#if VP_MPI
#include "pipeline/mpi/slab_measure.h"
#endif

namespace vp {

// Defined in pipeline/commands/<name>_command.cpp.
Command make_run_command();
Command make_validate_command();
Command make_info_command();
Command make_stages_command();

namespace {

// The first metric of every batch: exact voxel counts over the whole (ROI-cropped) volume.
class VolumeFractionStage : public Stage {
 public:
  std::string name() const override { return "volume_fraction"; }
  std::string summary() const override {
    return "volume fraction of every phase in the phase table, and porosity of the pore-role phases";
  }
  std::vector<ParamSpec> params() const override { return {}; }
  std::vector<MetricSpec> metrics() const override {
    return {
        {"volume_fraction", "1", "phase"},
        {"porosity", "1", "phase"},
    };
  }
  unsigned needs() const override { return kLabels; }
  double bytes_per_voxel() const override { return 0.0; }  // counts in place

  void run(const Params&, SampleContext& ctx) const override {
    const LabelVolume& labels = *ctx.labels;
    PhaseFractions f;
    if (!ctx.slab) {
      f = phase_fractions(labels);
    } else {
#if VP_MPI
      // This rank's z-slab: the whole volume's counts, summed over the ranks.
      f = slab_phase_fractions(labels, *ctx.slab);
#else
      throw ComputeError("volume_fraction: this voxpress was built without MPI, it cannot measure a z-slab");
#endif
    }
    nlohmann::json voxels = nlohmann::json::object();
    for (const auto& p : f.phases) {
      ctx.add("volume_fraction", p.phase, "", p.fraction, "1");
      voxels[p.phase] = p.voxels;
    }
    for (const auto& p : f.phases)
      if (p.role == Role::pore) ctx.add("porosity", p.phase, "", p.fraction, "1");
    const Vec3& s = labels.spacing_um;
    ctx.details = {{"total_voxels", f.total},
                   {"voxels", voxels},
                   {"volume_um3", static_cast<double>(f.total) * s[0] * s[1] * s[2]}};
  }
};

}  // namespace

void register_pipeline(Registry& registry) {
  registry.add(make_run_command());
  registry.add(make_validate_command());
  registry.add(make_info_command());
  registry.add(make_stages_command());
  registry.add(std::make_unique<VolumeFractionStage>());
}

}  // namespace vp
