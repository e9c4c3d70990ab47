#include "pipeline/mpi/slab_sample.h"

#include <dlfcn.h>

#include <filesystem>

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

// The PETSc engine module beside this voxpress binary, loaded once.
const PetscEngine& petsc_engine() {
  static const PetscEngine* engine = [] {
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::string path = (exe.parent_path() / kPetscEngineModule).string();
    void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    const char* why = module ? nullptr : dlerror();
    auto* entry = module ? reinterpret_cast<const PetscEngine* (*)()>(dlsym(module, kPetscEngineEntry)) : nullptr;
    if (!entry)
      throw InputError("engine petsc: cannot load the PETSc engine module " + path + " (" +
                       (why ? why : "no entry point " + std::string(kPetscEngineEntry)) +
                       "); build it beside voxpress with `ninja voxpress_petsc` (cmake -DVP_MPI=ON)");
    return entry();
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
