#include "metrics/transport/petsc/petsc_solve.h"

#include <petscdmda.h>
#include <petscksp.h>

#include <array>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "metrics/mpi/slab_clusters.h"

namespace vp {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void check(PetscErrorCode code, const char* what) {
  if (code != 0)
    throw ComputeError(std::string("PETSc: ") + what + " failed (PETSc error " + std::to_string(code) + ")");
}
#define VP_PETSC(call) check((call), #call)

// Owners of PETSc objects, destroyed on every path out (exceptions included).
struct DmOwner {
  DM dm = nullptr;
  ~DmOwner() { DMDestroy(&dm); }
};
struct VecOwner {
  Vec v = nullptr;
  ~VecOwner() { VecDestroy(&v); }
};

// The ghosted (local) DMDA vector of a per-voxel value of this rank's slab, with the neighbours'
// planes filled in. value(x, y, z) in slab coordinates, called in voxel order (x fastest).
template <class Value>
void ghosted(DM da, Value&& value, VecOwner& local) {
  PetscInt xs, ys, zs, xm, ym, zm;
  VP_PETSC(DMDAGetCorners(da, &xs, &ys, &zs, &xm, &ym, &zm));
  VecOwner global;
  VP_PETSC(DMCreateGlobalVector(da, &global.v));
  PetscScalar*** a;
  VP_PETSC(DMDAVecGetArray(da, global.v, &a));
  for (PetscInt z = 0; z < zm; ++z)
    for (PetscInt y = 0; y < ym; ++y)
      for (PetscInt x = 0; x < xm; ++x) a[zs + z][ys + y][xs + x] = value(x, y, z);
  VP_PETSC(DMDAVecRestoreArray(da, global.v, &a));
  VP_PETSC(DMCreateLocalVector(da, &local.v));
  VP_PETSC(DMGlobalToLocalBegin(da, global.v, INSERT_VALUES, local.v));
  VP_PETSC(DMGlobalToLocalEnd(da, global.v, INSERT_VALUES, local.v));
}
struct MatOwner {
  Mat m = nullptr;
  ~MatOwner() { MatDestroy(&m); }
};
struct KspOwner {
  KSP k = nullptr;
  ~KspOwner() { KSPDestroy(&k); }
};

// Sets a PETSc option unless PETSC_OPTIONS (or an earlier call) already did: our defaults, the
// user's choice first.
void default_option(const char* name, const char* value) {
  PetscBool set = PETSC_FALSE;
  VP_PETSC(PetscOptionsHasName(nullptr, nullptr, name, &set));
  if (!set) VP_PETSC(PetscOptionsSetValue(nullptr, name, value));
}

void check_inputs(const Volume<std::uint8_t>& slab, const ZSlabLayout& layout, const ConductivityTable& conductivity,
                  const TransportOptions& o, const std::string& preconditioner) {
  if (o.axis < 0 || o.axis > 2) throw InputError("transport: axis " + std::to_string(o.axis) + " is not 0, 1 or 2");
  if (!(o.tolerance > 0)) throw InputError("transport: tolerance must be > 0");
  if (!(o.flux_balance > 0)) throw InputError("transport: flux_balance must be > 0");
  if (o.max_iterations < 1) throw InputError("transport: max_iterations must be ≥ 1");
  if (o.keep_fields)
    throw InputError(
        "transport: the petsc engine writes no field volumes (write_fields / --out fields: use engine native)");
  for (int l = 0; l < 256; ++l)
    if (!std::isfinite(conductivity[l]) || conductivity[l] < 0)
      throw InputError("transport: conductivity of label " + std::to_string(l) + " must be finite and ≥ 0");
  if (layout.global.empty()) throw InputError("transport: empty volume");
  if (!(slab.dims() == layout.local()))
    throw InputError("transport: rank " + std::to_string(layout.rank) + " holds " + to_string(slab.dims()) +
                     " voxels, its slab is " + to_string(layout.local()));
  if (static_cast<std::uint64_t>(layout.global.count()) > static_cast<std::uint64_t>(PETSC_MAX_INT))
    throw InputError("transport: " + to_string(layout.global) +
                     " voxels exceed this PETSc build's 32-bit indices (2^31 − 1 unknowns); use a PETSc configured "
                     "--with-64-bit-indices");
  if (preconditioner != "hypre" && preconditioner != "gamg")
    throw InputError("transport: preconditioner '" + preconditioner + "': expected hypre or gamg");
}

}  // namespace

TransportResult solve_transport_petsc(const Volume<std::uint8_t>& slab, const ZSlabLayout& layout,
                                      const ConductivityTable& k, const TransportOptions& options, MPI_Comm comm,
                                      const std::string& preconditioner, PetscSolveStats* stats) {
  check_inputs(slab, layout, k, options, preconditioner);
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  int size = 1;
  MPI_Comm_size(comm, &size);

  const Dims g = layout.global;
  const int ax = options.axis;
  const Vec3& h = slab.spacing_um;
  const double total = static_cast<double>(g.count());

  TransportResult out;
  out.axis = ax;
  set_sample_geometry(out, g, h, ax);

  // Volume fractions over the whole image, in label order as the native solve sums them.
  std::array<std::int64_t, 256> counts{};
  for (index_t i = 0; i < slab.size(); ++i) ++counts[slab[i]];
  MPI_Allreduce(MPI_IN_PLACE, counts.data(), 256, MPI_INT64_T, MPI_SUM, comm);
  double eps_sigma = 0, conducting = 0;
  for (int l = 0; l < 256; ++l) {
    if (k[l] <= 0 || counts[l] == 0) continue;
    conducting += static_cast<double>(counts[l]);
    eps_sigma += static_cast<double>(counts[l]) / total * k[l];
    out.sigma_ref = std::max(out.sigma_ref, k[l]);
  }
  out.conducting_fraction = conducting / total;
  if (stats) {
    stats->preconditioner = preconditioner;
    stats->ranks = size;
    // One ghost plane (g.x·g.y doubles) each way across each of the size − 1 slab faces, plus the
    // wrap when z is a periodic side.
    const bool wrap_z = options.periodic && ax != 2 && size > 1;
    stats->halo_bytes_per_iteration =
        2.0 * static_cast<double>(size - 1 + (wrap_z ? 1 : 0)) * static_cast<double>(g.x * g.y) * sizeof(PetscScalar);
  }
  auto not_percolating = [&] {
    set_not_percolating(out);
    out.seconds = elapsed();
    return out;
  };
  if (conducting == 0) return not_percolating();

  // Distributed percolation pre-pass: only voxels face-connected to both electrodes conduct.
  Volume<std::uint8_t> mask(slab.dims(), slab.spacing_um);
  for (index_t i = 0; i < slab.size(); ++i) mask[i] = k[slab[i]] > 0;
  Volume<std::uint8_t> keep(slab.dims(), slab.spacing_um);
  {
    SlabClusterOptions co;
    co.connectivity = 6;
    co.axis = ax;
    co.periodic = options.periodic;
    const SlabClusters clusters = slab_clusters(mask, layout, co, comm);
    for (index_t i = 0; i < slab.size(); ++i) keep[i] = clusters.percolates(clusters.local.ids[i]);
    out.percolating_fraction = static_cast<double>(clusters.percolating) / total;
    if (clusters.percolating == 0) return not_percolating();
  }
  mask = Volume<std::uint8_t>();

  // The DMDA: the grid and its z-cut, periodic sides when asked. It carries the per-voxel fields
  // that need the neighbours' ghost planes (conductivity, unknown numbers, the potential for the
  // profile); the system itself has one unknown per carrying voxel only.
  DMBoundaryType bound[3];
  for (int a = 0; a < 3; ++a) bound[a] = options.periodic && a != ax ? DM_BOUNDARY_PERIODIC : DM_BOUNDARY_NONE;
  std::vector<PetscInt> lz(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r)
    lz[static_cast<std::size_t>(r)] = static_cast<PetscInt>(layout.z_begin[static_cast<std::size_t>(r) + 1] -
                                                            layout.z_begin[static_cast<std::size_t>(r)]);
  DmOwner da;
  VP_PETSC(DMDACreate3d(comm, bound[0], bound[1], bound[2], DMDA_STENCIL_STAR, static_cast<PetscInt>(g.x),
                        static_cast<PetscInt>(g.y), static_cast<PetscInt>(g.z), 1, 1, size, 1, 1, nullptr, nullptr,
                        lz.data(), &da.dm));
  VP_PETSC(DMSetUp(da.dm));
  PetscInt xs, ys, zs, xm, ym, zm;
  VP_PETSC(DMDAGetCorners(da.dm, &xs, &ys, &zs, &xm, &ym, &zm));
  if (zs != layout.z0() || zm != layout.slices() || xm != g.x || ym != g.y)
    throw ComputeError("PETSc: the DMDA ownership does not match the z-slab of rank " + std::to_string(layout.rank));
  auto conductivity_at = [&](PetscInt x, PetscInt y, PetscInt z) {  // slab coordinates; 0 where removed
    return keep(x, y, z) ? k[slab(x, y, z)] : 0.0;
  };

  // Unknowns: the carrying voxels only, numbered in voxel order, rank after rank. Removed voxels
  // (identity rows before) were 70 % of the rows on the 500³ benchmark and cost matrix, vector
  // and multigrid memory for nothing.
  PetscInt carrying = 0;
  for (index_t i = 0; i < slab.size(); ++i) carrying += keep[i] ? 1 : 0;
  PetscInt first = 0;
  MPI_Exscan(&carrying, &first, 1, MPIU_INT, MPI_SUM, comm);
  if (layout.rank == 0) first = 0;  // MPI_Exscan leaves rank 0's result undefined

  const std::array<PetscInt, 3> n = {static_cast<PetscInt>(g.x), static_cast<PetscInt>(g.y),
                                     static_cast<PetscInt>(g.z)};
  // Face conductance factor A_a / h_a per axis; a boundary voxel couples to its electrode by 2k·A/h.
  std::array<double, 3> face;
  for (int a = 0; a < 3; ++a) face[a] = h[(a + 1) % 3] * h[(a + 2) % 3] / h[a];
  auto harmonic = [](double a, double b) { return a > 0 && b > 0 ? 2 * a * b / (a + b) : 0.0; };

  MatOwner A;
  VecOwner b, x;
  {
    VecOwner kl, nl;
    ghosted(da.dm, conductivity_at, kl);
    PetscInt next = first;  // unknown numbers as doubles (exact below 2^53), −1 where removed
    ghosted(
        da.dm, [&](PetscInt xi, PetscInt y, PetscInt z) { return keep(xi, y, z) ? static_cast<double>(next++) : -1.0; },
        nl);
    const PetscScalar ***kap, ***num;
    VP_PETSC(DMDAVecGetArrayRead(da.dm, kl.v, &kap));
    VP_PETSC(DMDAVecGetArrayRead(da.dm, nl.v, &num));
    // Visits every carrying voxel's row: its neighbours (global unknown, conductance) and its
    // electrode coupling (diagonal part, right-hand side).
    auto for_each_row = [&](auto&& row) {
      for (PetscInt z = zs; z < zs + zm; ++z)
        for (PetscInt y = ys; y < ys + ym; ++y)
          for (PetscInt xi = xs; xi < xs + xm; ++xi) {
            const double c = kap[z][y][xi];
            if (c == 0) continue;
            PetscInt cols[7];
            PetscScalar vals[7];
            int m = 1;
            double diag = 0, rhs = 0;
            const PetscInt at[3] = {xi, y, z};
            for (int a = 0; a < 3; ++a)
              for (int s : {-1, 1}) {
                PetscInt nb[3] = {at[0], at[1], at[2]};
                nb[a] += s;
                if (nb[a] < 0 || nb[a] >= n[a]) {
                  if (a == ax) {  // the electrode, half a voxel away
                    const double gb = 2 * c * face[a];
                    diag += gb;
                    if (nb[a] < 0) rhs += gb;  // inlet at potential 1
                    continue;
                  }
                  if (bound[a] != DM_BOUNDARY_PERIODIC) continue;  // zero flux
                }
                const double gf = harmonic(c, kap[nb[2]][nb[1]][nb[0]]) * face[a];
                if (gf == 0) continue;
                diag += gf;
                cols[m] = static_cast<PetscInt>(num[nb[2]][nb[1]][nb[0]]);
                vals[m] = -gf;
                ++m;
              }
            cols[0] = static_cast<PetscInt>(num[z][y][xi]);
            vals[0] = diag;
            row(at, m, cols, vals, rhs);
          }
    };
    // Exact preallocation (couplings inside this rank's unknowns / to other ranks'), so the matrix
    // holds the nonzeros and nothing else (the DMDA's matrix stored all 7 per row, zeros too).
    std::vector<PetscInt> d_nnz(static_cast<std::size_t>(carrying)), o_nnz(static_cast<std::size_t>(carrying));
    {
      std::size_t i = 0;
      for_each_row([&](const PetscInt*, int m, const PetscInt* cols, const PetscScalar*, double) {
        PetscInt d = 0;
        for (int j = 0; j < m; ++j) d += cols[j] >= first && cols[j] < first + carrying ? 1 : 0;
        d_nnz[i] = d;
        o_nnz[i] = m - d;
        ++i;
      });
    }
    VP_PETSC(MatCreate(comm, &A.m));
    VP_PETSC(MatSetSizes(A.m, carrying, carrying, PETSC_DETERMINE, PETSC_DETERMINE));
    VP_PETSC(MatSetType(A.m, MATAIJ));
    VP_PETSC(MatXAIJSetPreallocation(A.m, 1, d_nnz.data(), o_nnz.data(), nullptr, nullptr));
    d_nnz = std::vector<PetscInt>();
    o_nnz = std::vector<PetscInt>();
    VP_PETSC(MatCreateVecs(A.m, &x.v, &b.v));
    PetscScalar *bb, *xx;
    VP_PETSC(VecGetArray(b.v, &bb));
    VP_PETSC(VecGetArray(x.v, &xx));
    {
      std::size_t i = 0;
      for_each_row([&](const PetscInt* at, int m, const PetscInt* cols, const PetscScalar* vals, double rhs) {
        VP_PETSC(MatSetValues(A.m, 1, cols, m, cols, vals, INSERT_VALUES));
        bb[i] = rhs;
        // The linear potential: exact for a uniform medium, a good start otherwise.
        xx[i] = 1.0 - (static_cast<double>(at[ax]) + 0.5) / static_cast<double>(n[ax]);
        ++i;
      });
    }
    VP_PETSC(VecRestoreArray(b.v, &bb));
    VP_PETSC(VecRestoreArray(x.v, &xx));
    VP_PETSC(DMDAVecRestoreArrayRead(da.dm, kl.v, &kap));
    VP_PETSC(DMDAVecRestoreArrayRead(da.dm, nl.v, &num));
  }
  VP_PETSC(MatAssemblyBegin(A.m, MAT_FINAL_ASSEMBLY));
  VP_PETSC(MatAssemblyEnd(A.m, MAT_FINAL_ASSEMBLY));

  // Currents through the inlet and outlet (and, for the profile, through every slice face).
  struct Currents {
    double in = 0, out = 0;
  };
  auto currents = [&]() {
    Currents cur;
    const PetscScalar* xx;
    VP_PETSC(VecGetArrayRead(x.v, &xx));
    double sums[2] = {0, 0};
    std::size_t i = 0;  // unknowns in voxel order
    for (PetscInt z = 0; z < zm; ++z)
      for (PetscInt y = 0; y < ym; ++y)
        for (PetscInt xi = 0; xi < xm; ++xi) {
          if (!keep(xi, y, z)) continue;
          const PetscInt at[3] = {xi, y, zs + z};
          const double gb = 2 * k[slab(xi, y, z)] * face[ax];
          if (at[ax] == 0) sums[0] += gb * (1.0 - xx[i]);
          if (at[ax] == n[ax] - 1) sums[1] += gb * xx[i];
          ++i;
        }
    VP_PETSC(VecRestoreArrayRead(x.v, &xx));
    MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm);
    cur.in = sums[0];
    cur.out = sums[1];
    return cur;
  };

  KspOwner ksp;
  VP_PETSC(KSPCreate(comm, &ksp.k));
  VP_PETSC(KSPSetOperators(ksp.k, A.m, A.m));
  VP_PETSC(KSPSetType(ksp.k, KSPCG));
  VP_PETSC(KSPSetNormType(ksp.k, KSP_NORM_UNPRECONDITIONED));
  VP_PETSC(KSPSetInitialGuessNonzero(ksp.k, PETSC_TRUE));
  PC pc;
  VP_PETSC(KSPGetPC(ksp.k, &pc));
  if (preconditioner == "hypre") {
    VP_PETSC(PCSetType(pc, PCHYPRE));
    VP_PETSC(PCHYPRESetType(pc, "boomeramg"));
    // hypre's recommended 3-D settings instead of PETSc's defaults (Falgout coarsening, classical
    // interpolation, threshold 0.25: dense coarse operators). taufactor_electrode 256³ pore z, tol
    // 1e-10, 1 rank: peak 4756 → 3188 MiB (297 → 199 B/voxel), 9 → 22 iterations, 76 → 61 CPU s
    // (docs/transport.md "Distributed engine"). PETSC_OPTIONS still overrides each.
    default_option("-pc_hypre_boomeramg_coarsen_type", "HMIS");
    default_option("-pc_hypre_boomeramg_interp_type", "ext+i");
    default_option("-pc_hypre_boomeramg_P_max", "4");
    default_option("-pc_hypre_boomeramg_strong_threshold", "0.5");
    default_option("-pc_hypre_boomeramg_agg_nl", "1");
  } else {
    VP_PETSC(PCSetType(pc, PCGAMG));
  }
  // PETSC_OPTIONS may still override (e.g. "-pc_hypre_boomeramg_strong_threshold 0.5").
  VP_PETSC(KSPSetFromOptions(ksp.k));

  PetscReal bnorm = 0;
  VP_PETSC(VecNorm(b.v, NORM_2, &bnorm));
  VecOwner r;
  VP_PETSC(VecDuplicate(b.v, &r.v));
  auto true_residual = [&] {
    VP_PETSC(MatResidual(A.m, b.v, x.v, r.v));
    PetscReal rn = 0;
    VP_PETSC(VecNorm(r.v, NORM_2, &rn));
    return static_cast<double>(rn) / static_cast<double>(bnorm);
  };
  Currents cur = currents();
  out.residual = true_residual();
  auto balance = [&] { return cur.in != 0 ? std::abs(cur.in - cur.out) / std::abs(cur.in) : kInf; };
  out.flux_balance = balance();
  out.status = "ok";
  double target = options.tolerance * static_cast<double>(bnorm);
  while (!(out.residual <= options.tolerance && out.flux_balance <= options.flux_balance)) {
    if (out.iterations >= options.max_iterations) {
      out.status = "not_converged";
      break;
    }
    // Tolerances on ‖b − Ax‖ itself (rtol 0): the native solve's criterion, whatever the start.
    VP_PETSC(KSPSetTolerances(ksp.k, 0.0, target, PETSC_DEFAULT,
                              static_cast<PetscInt>(options.max_iterations - out.iterations)));
    VP_PETSC(KSPSolve(ksp.k, b.v, x.v));
    PetscInt its = 0;
    VP_PETSC(KSPGetIterationNumber(ksp.k, &its));
    KSPConvergedReason reason;
    VP_PETSC(KSPGetConvergedReason(ksp.k, &reason));
    out.iterations += its;
    cur = currents();
    out.residual = true_residual();
    out.flux_balance = balance();
    if (reason < 0 && reason != KSP_DIVERGED_ITS) {
      out.status = "not_converged";  // breakdown: the numbers are not trustworthy
      break;
    }
    if (its == 0) {  // no step possible: rounding floor reached
      out.status =
          out.residual <= options.tolerance && out.flux_balance <= options.flux_balance ? "ok" : "not_converged";
      break;
    }
    target = std::min(target, out.residual * static_cast<double>(bnorm)) * 0.1;  // balance not yet met: go further
  }
  if (preconditioner == "gamg") {
    PetscInt levels = 0;
    VP_PETSC(PCMGGetLevels(pc, &levels));
    out.multigrid_levels = static_cast<int>(levels);
  }  // BoomerAMG keeps its hierarchy inside hypre; its depth is not exposed (0)
  out.flux_in = cur.in;
  out.flux_out = cur.out;
  out.sigma_eff = 0.5 * (cur.in + cur.out) * out.length_um / out.area_um2;
  out.tau = out.sigma_eff > 0 ? eps_sigma / out.sigma_eff : kInf;
  out.macmullin = out.sigma_eff > 0 ? out.sigma_ref / out.sigma_eff : kInf;

  if (options.keep_profile) {
    // Per slice along the axis: current through its inlet-side face, mean potential and count of
    // its percolating voxels; summed over the ranks. The solver's memory goes first.
    VP_PETSC(KSPDestroy(&ksp.k));
    VP_PETSC(MatDestroy(&A.m));
    VecOwner kl, xl;
    ghosted(da.dm, conductivity_at, kl);
    {
      const PetscScalar* xc;
      VP_PETSC(VecGetArrayRead(x.v, &xc));
      std::size_t i = 0;  // unknowns in voxel order
      ghosted(
          da.dm, [&](PetscInt xi, PetscInt y, PetscInt z) { return keep(xi, y, z) ? xc[i++] : 0.0; }, xl);
      VP_PETSC(VecRestoreArrayRead(x.v, &xc));
    }
    const std::size_t slices = static_cast<std::size_t>(n[ax]);
    std::vector<double> sums(3 * slices, 0.0);  // current, potential sum, count
    const PetscScalar ***kap, ***xx;
    VP_PETSC(DMDAVecGetArrayRead(da.dm, kl.v, &kap));
    VP_PETSC(DMDAVecGetArrayRead(da.dm, xl.v, &xx));
    for (PetscInt z = zs; z < zs + zm; ++z)
      for (PetscInt y = ys; y < ys + ym; ++y)
        for (PetscInt xi = xs; xi < xs + xm; ++xi) {
          const double c = kap[z][y][xi];
          if (c == 0) continue;
          const PetscInt at[3] = {xi, y, z};
          const std::size_t t = static_cast<std::size_t>(at[ax]);
          sums[slices + t] += xx[z][y][xi];
          sums[2 * slices + t] += 1;
          if (t == 0) {
            sums[0] += 2 * c * face[ax] * (1.0 - xx[z][y][xi]);
            continue;
          }
          PetscInt nb[3] = {at[0], at[1], at[2]};
          nb[ax] -= 1;
          const double gf = harmonic(c, kap[nb[2]][nb[1]][nb[0]]) * face[ax];
          if (gf > 0) sums[t] += gf * (xx[nb[2]][nb[1]][nb[0]] - xx[z][y][xi]);
        }
    VP_PETSC(DMDAVecRestoreArrayRead(da.dm, kl.v, &kap));
    VP_PETSC(DMDAVecRestoreArrayRead(da.dm, xl.v, &xx));
    MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(sums.size()), MPI_DOUBLE, MPI_SUM, comm);
    const double area_voxels = static_cast<double>(g[(ax + 1) % 3] * g[(ax + 2) % 3]);
    out.profile.resize(slices);
    for (std::size_t t = 0; t < slices; ++t) {
      ProfileSlice& s = out.profile[t];
      s.position_um = (static_cast<double>(t) + 0.5) * h[ax];
      s.current_in = sums[t];
      const double count = sums[2 * slices + t];
      s.potential_mean = count > 0 ? sums[slices + t] / count : std::numeric_limits<double>::quiet_NaN();
      s.percolating_fraction = count / area_voxels;
    }
  }
  out.seconds = elapsed();
  return out;
}

}  // namespace vp
