#include "pipeline/mpi/slab_sample.h"

#include <dlfcn.h>

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/hash.h"
#include "core/json_util.h"
#include "filters/io/slab_read.h"
#include "metrics/transport/petsc/petsc_engine.h"

namespace vp {

SlabSample read_slab_sample(const MpiWorld& world, const VolumeArgs& volume, const std::string& labels_flag,
                            const std::string& roles_flag) {
  SlabSample out;
  SlabRead slab;
  on_all_ranks(world, [&] { slab = read_z_slab(read_options(volume), world.size, world.rank); });
  Volume<std::uint8_t> voxels;
  on_all_ranks(world, [&] {
    voxels = to_labels_u8(slab.read.volume);
    if (!volume.spacing.empty()) voxels.spacing_um = parse_spacing(volume.spacing);
  });
  slab.read.volume = AnyVolume{};

  int present[256] = {};
  for (index_t i = 0; i < voxels.size(); ++i) present[voxels[i]] = 1;
  MPI_Allreduce(MPI_IN_PLACE, present, 256, MPI_INT, MPI_MAX, world.comm);
  for (int l = 0; l < 256; ++l)
    if (present[l]) out.labels_present.push_back(l);

  PhaseTable table;
  on_all_ranks(world, [&] { table = phase_table_from_flags(labels_flag, roles_flag, out.labels_present); });
  std::string sha;
  on_all_ranks(world, [&] {
    if (world.rank == 0 && std::filesystem::is_regular_file(volume.path)) sha = sha256_file(volume.path);
  });
  const std::string path = std::filesystem::absolute(volume.path).lexically_normal().string();
  out.input = {{"path", path},
               {"sha256", sha.empty() ? nlohmann::json(nullptr) : nlohmann::json(sha)},
               {"format", slab.read.format},
               {"dims", to_json(slab.layout.global)},
               {"spacing_um", to_json(voxels.spacing_um)}};
  out.ctx.sample.name = path;
  out.ctx.sample.path = path;
  out.ctx.sample.spacing_um = voxels.spacing_um;
  out.ctx.labels = LabelVolume(std::move(voxels), std::move(table));
  out.ctx.slab = slab.layout;
  return out;
}

namespace {

// Where the PETSc engine module may be: beside the binary or shared object that holds this code
// (voxpress itself, or the Python module), then the build folder it was built in.
std::vector<std::filesystem::path> petsc_engine_candidates() {
  std::vector<std::filesystem::path> out;
  Dl_info self{};
  if (dladdr(reinterpret_cast<const void*>(&petsc_engine_candidates), &self) && self.dli_fname) {
    std::error_code ec;
    const std::filesystem::path object = std::filesystem::canonical(self.dli_fname, ec);
    if (!ec) out.push_back(object.parent_path() / kPetscEngineModule);
  }
#ifdef VP_PETSC_MODULE_DIR
  out.push_back(std::filesystem::path(VP_PETSC_MODULE_DIR) / kPetscEngineModule);
#endif
  return out;
}

// The PETSc engine module, loaded once.
const PetscEngine& petsc_engine() {
  static const PetscEngine* engine = [] {
    std::string tried;
    for (const std::filesystem::path& path : petsc_engine_candidates()) {
      void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      const char* why = module ? nullptr : dlerror();
      auto* entry = module ? reinterpret_cast<const PetscEngine* (*)()>(dlsym(module, kPetscEngineEntry)) : nullptr;
      if (entry) return entry();
      tried += (tried.empty() ? "" : "; ") + path.string() + " (" +
               (why ? why : "no entry point " + std::string(kPetscEngineEntry)) + ")";
    }
    throw InputError("engine petsc: cannot load the PETSc engine module: " + tried +
                     "; build it beside voxpress with `ninja voxpress_petsc` (cmake -DVP_MPI=ON)");
  }();
  return *engine;
}

}  // namespace

TransportResult solve_transport_engine_petsc(const Volume<std::uint8_t>& labels, const std::optional<ZSlabLayout>& slab,
                                             const ConductivityTable& conductivity, const TransportOptions& options) {
  const MpiWorld& world = mpi_world();
  const PetscEngine& engine = petsc_engine();
  if (slab) return engine.solve(labels, *slab, conductivity, options, world.comm);
  return engine.solve(labels, even_z_slabs(labels.dims(), 1, 0), conductivity, options, MPI_COMM_SELF);
}

}  // namespace vp
