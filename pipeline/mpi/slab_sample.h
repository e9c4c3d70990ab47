// The sample context of a distributed command on one MPI rank: its z-slab of the label volume
// (filters/io/slab_read.h), named by the same phase table on every rank.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/stage.h"
#include "metrics/transport/conductivity_solve.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/mpi/mpi_session.h"

namespace vp {

struct SlabSample {
  SampleContext ctx;                // labels = this rank's slab, ctx.slab = the cut
  std::vector<int> labels_present;  // labels present anywhere in the volume
  nlohmann::json input;             // path, sha256, format, dims (whole volume), spacing_um
};

// Collective. A rank that cannot read its slab stops every rank with an InputError naming the
// file and that slab's z-range (on_all_ranks). The SHA-256 of the file is computed by rank 0
// (streamed, never held) for the provenance of the result.
SlabSample read_slab_sample(const MpiWorld& world, const VolumeArgs& volume, const std::string& labels_flag,
                            const std::string& roles_flag);

// The transport stage's `engine: petsc`: the PETSc solve over ctx.slab's ranks, or on this
// process alone (MPI_COMM_SELF) when `labels` is the whole volume, in the PETSc engine module
// (metrics/transport/petsc/petsc_engine.h) loaded on the first call; InputError naming the
// module's path when it cannot be loaded.
TransportResult solve_transport_engine_petsc(const Volume<std::uint8_t>& labels, const std::optional<ZSlabLayout>& slab,
                                             const ConductivityTable& conductivity, const TransportOptions& options);

}  // namespace vp
