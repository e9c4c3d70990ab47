#include "metrics/transport/conductivity_solve.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"
#include "core/progress.h"
#include "metrics/face_connectivity.h"
#include "metrics/transport/multigrid.h"

namespace vp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr index_t kGrain = 1 << 14;  // fixed reduction blocks: sums independent of thread count

// Σ over the carrying voxels of f(k, acc) → acc, in fixed blocks of the whole grid (kGrain
// voxels, carrying or not): the order of addition of whole-grid vectors whose other entries
// are 0, so the sums are those of the whole-grid solve, bit for bit, at any thread count.
template <class F>
double carrying_sum(const transport::FineLevel& fine, F&& f) {
  return tbb::parallel_deterministic_reduce(
      tbb::blocked_range<index_t>(0, fine.grid.count(), kGrain), 0.0,
      [&](const tbb::blocked_range<index_t>& r, double acc) {
        const index_t end = transport::carrying_before(fine, r.end());
        for (index_t k = transport::carrying_before(fine, r.begin()); k < end; ++k) acc = f(k, acc);
        return acc;
      },
      [](double x, double y) { return x + y; });
}

double dot(const transport::FineLevel& fine, const float* a, const float* b) {
  return carrying_sum(fine, [&](index_t k, double acc) { return acc + static_cast<double>(a[k]) * b[k]; });
}

// x += α p, r −= α q; returns ‖r‖².
double update_solution(const transport::FineLevel& fine, double alpha, const float* p, const float* q, double* x,
                       float* r) {
  const float alpha_f = static_cast<float>(alpha);
  return carrying_sum(fine, [&](index_t i, double acc) {
    x[i] += alpha * p[i];
    r[i] -= alpha_f * q[i];
    return acc + static_cast<double>(r[i]) * r[i];
  });
}

void check_inputs(const Volume<std::uint8_t>& labels, const ConductivityTable& k, const TransportOptions& o) {
  if (o.axis < 0 || o.axis > 2)
    throw InputError("transport: axis " + std::to_string(o.axis) + " is not 0 (x), 1 (y) or 2 (z)");
  if (labels.dims().empty()) throw InputError("transport: empty volume " + to_string(labels.dims()));
  for (int l = 0; l < 256; ++l)
    if (!std::isfinite(k[l]) || k[l] < 0)
      throw InputError("transport: conductivity of label " + std::to_string(l) + " is " + std::to_string(k[l]) +
                       "; expected a finite number ≥ 0");
  if (!(o.tolerance > 0)) throw InputError("transport: tolerance must be > 0");
  if (!(o.flux_balance > 0)) throw InputError("transport: flux_balance must be > 0");
  if (o.max_iterations < 1) throw InputError("transport: max_iterations must be ≥ 1");
  for (double s : labels.spacing_um)
    if (!(s > 0) || !std::isfinite(s)) throw InputError("transport: voxel spacing must be positive");
}

constexpr double kUnknownProgress = std::numeric_limits<double>::quiet_NaN();

// Progress of CG as the fraction of the way, in decades, from residual 1 down to the tolerance.
double convergence_progress(double relative_residual, double tolerance) {
  if (!(relative_residual > 0) || !(tolerance < 1)) return 1.0;
  return std::clamp(std::log10(relative_residual) / std::log10(tolerance), 0.0, 1.0);
}

std::array<index_t, 256> histogram(const Volume<std::uint8_t>& labels) {
  using H = std::array<index_t, 256>;
  return tbb::parallel_deterministic_reduce(
      tbb::blocked_range<index_t>(0, labels.size(), 1 << 16), H{},
      [&](const tbb::blocked_range<index_t>& r, H h) {
        for (index_t i = r.begin(); i < r.end(); ++i) ++h[labels[i]];
        return h;
      },
      [](H a, const H& b) {
        for (int l = 0; l < 256; ++l) a[l] += b[l];
        return a;
      });
}

// Conjugate gradients preconditioned by mg, with restarts: each restart recomputes the
// residual in double from the double potentials, so the float vectors only ever carry a
// correction (iterative refinement). Updates x and out's residual, flux_balance, iterations
// and status; returns the electrode currents of the final x.
transport::FaceCurrents restarted_cg(const transport::FineLevel& fine, transport::Multigrid& mg, double* x,
                                     const TransportOptions& options, TransportResult& out) {
  const index_t n = fine.carrying();
  transport::FaceCurrents currents;
  // r is written by the true residual, q by the preconditioner, p by the copy from q: all in parallel.
  transport::VoxelVector<float> r(static_cast<std::size_t>(n)), p(static_cast<std::size_t>(n)),
      q(static_cast<std::size_t>(n));

  constexpr double kInnerReduction = 1e-4;
  for (;;) {
    double b2 = 0;
    const double r2 = transport::true_residual(fine, x, r.data(), &b2);
    const double b_norm = std::sqrt(b2);
    out.residual = b_norm > 0 ? std::sqrt(r2) / b_norm : 0.0;
    currents = transport::electrode_currents(fine, x);
    out.flux_balance = currents.in != 0 ? std::abs(currents.in - currents.out) / std::abs(currents.in) : kInf;
    if (out.residual <= options.tolerance && out.flux_balance <= options.flux_balance) {
      out.status = "ok";
      break;
    }
    if (out.iterations >= options.max_iterations) {
      out.status = "not_converged";
      break;
    }
    double target = kInnerReduction * std::sqrt(r2);
    if (out.residual > options.tolerance) target = std::max(target, 0.5 * options.tolerance * b_norm);
    mg.precondition(r.data(), q.data());
    tbb::parallel_for(tbb::blocked_range<index_t>(0, n, 1 << 16), [&](const tbb::blocked_range<index_t>& rg) {
      std::copy(q.begin() + rg.begin(), q.begin() + rg.end(), p.begin() + rg.begin());
    });
    double rz = dot(fine, r.data(), q.data());
    const long iterations_before = out.iterations;
    while (out.iterations < options.max_iterations) {
      mg.apply(p.data(), q.data());
      const double pq = dot(fine, p.data(), q.data());
      if (!(pq > 0) || !(rz > 0)) break;  // converged to rounding: restart from the true residual
      const double alpha = rz / pq;
      const double rr = update_solution(fine, alpha, p.data(), q.data(), x, r.data());
      ++out.iterations;
      progress_point(convergence_progress(std::sqrt(rr) / b_norm, options.tolerance));
      if (std::sqrt(rr) <= target) break;
      mg.precondition(r.data(), q.data());
      const double rz_next = dot(fine, r.data(), q.data());
      const float beta = static_cast<float>(rz_next / rz);
      rz = rz_next;
      float* pp = p.data();
      const float* zz = q.data();
      tbb::parallel_for(tbb::blocked_range<index_t>(0, n, 1 << 16), [&](const tbb::blocked_range<index_t>& rg) {
        for (index_t i = rg.begin(); i < rg.end(); ++i) pp[i] = zz[i] + beta * pp[i];
      });
    }
    if (out.iterations == iterations_before) {  // no step possible: rounding floor reached
      out.status =
          out.residual <= options.tolerance && out.flux_balance <= options.flux_balance ? "ok" : "not_converged";
      break;
    }
  }
  return currents;
}

}  // namespace

void set_sample_geometry(TransportResult& out, const Dims& dims, const Vec3& spacing_um, int axis) {
  const int a = (axis + 1) % 3, b = (axis + 2) % 3;
  out.length_um = static_cast<double>(dims[axis]) * spacing_um[axis];
  out.area_um2 = static_cast<double>(dims[a]) * spacing_um[a] * static_cast<double>(dims[b]) * spacing_um[b];
}

namespace {

// The solve; with own_labels (== &labels, the caller's to consume) the labels' buffer becomes the code
// volume once the percolation pass is done with it.
TransportResult solve(const Volume<std::uint8_t>& labels, Volume<std::uint8_t>* own_labels,
                      const ConductivityTable& conductivity, const TransportOptions& options) {
  check_inputs(labels, conductivity, options);
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  const Dims dims = labels.dims();
  const int ax = options.axis;
  const Vec3 h = labels.spacing_um;
  const Volume<std::uint8_t> shape = labels.like(Dims{0, 0, 0});  // spacing, origin, provenance of the fields
  const double total = static_cast<double>(dims.count());

  TransportResult out;
  out.axis = ax;
  set_sample_geometry(out, dims, h, ax);

  // Volume fractions, Σ ε_i σ_i and the reference conductivity, over the whole image.
  const auto counts = histogram(labels);
  double eps_sigma = 0, conducting = 0;
  std::vector<int> conducting_labels;
  std::map<double, std::uint8_t> code_of_value;  // equal conductivities share one code
  for (int l = 0; l < 256; ++l) {
    if (conductivity[l] <= 0 || counts[l] == 0) continue;
    conducting_labels.push_back(l);
    conducting += static_cast<double>(counts[l]);
    eps_sigma += static_cast<double>(counts[l]) / total * conductivity[l];
    out.sigma_ref = std::max(out.sigma_ref, conductivity[l]);
    code_of_value.emplace(conductivity[l], 0);
  }
  out.conducting_fraction = conducting / total;
  if (code_of_value.size() > 255) throw InputError("transport: more than 255 distinct conductivities in one volume");
  std::vector<double> code_value{0.0};
  for (auto& [value, code] : code_of_value) {
    code = static_cast<std::uint8_t>(code_value.size());
    code_value.push_back(value);
  }
  std::array<std::uint8_t, 256> code_of_label{};
  for (int l : conducting_labels) code_of_label[l] = code_of_value.at(conductivity[l]);

  auto not_percolating = [&] {
    set_not_percolating(out);
    out.seconds = elapsed();
    return out;
  };
  if (conducting_labels.empty()) return not_percolating();

  // Keep only voxels face-connected to both electrodes; the flags volume (or the labels' buffer)
  // becomes the code volume, or with one conductivity a volume of bits replaces both.
  FaceConnectivityOptions fc;
  fc.axis = ax;
  fc.connectivity = 6;
  fc.periodic = {options.periodic, options.periodic, options.periodic};
  FaceReach reach = face_reachability(labels, conducting_labels, fc);
  progress_point(kUnknownProgress);  // a cancellation point between the set-up phases
  out.percolating_fraction = static_cast<double>(reach.percolating) / total;
  if (!reach.percolates()) return not_percolating();
  const index_t n = labels.size();
  const std::uint8_t* flags = reach.flags.data();
  Volume<std::uint8_t> code;
  std::vector<std::uint64_t> code_bits;
  if (code_value.size() == 2) {  // one conductivity: the code is the percolating flag
    code_bits.resize(static_cast<std::size_t>((n + 63) / 64));
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, code_bits.size(), 1 << 10),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                        for (std::size_t w = r.begin(); w < r.end(); ++w) {
                          const auto first = static_cast<index_t>(64 * w);
                          const index_t end = std::min(first + 64, n);
                          std::uint64_t bits = 0;
                          for (index_t i = first; i < end; ++i)
                            if (FaceReach::is_percolating(flags[i]) && code_of_label[labels[i]])
                              bits |= std::uint64_t{1} << (i - first);
                          code_bits[w] = bits;
                        }
                      });
    if (own_labels) *own_labels = Volume<std::uint8_t>();
  } else {
    std::uint8_t* c = own_labels ? own_labels->data() : reach.flags.data();  // voxel i read, then written
    tbb::parallel_for(tbb::blocked_range<index_t>(0, n, 1 << 16), [&](const tbb::blocked_range<index_t>& r) {
      for (index_t i = r.begin(); i < r.end(); ++i)
        c[i] = FaceReach::is_percolating(flags[i]) ? code_of_label[labels[i]] : 0;
    });
    code = own_labels ? std::move(*own_labels) : std::move(reach.flags);
  }
  reach.flags = Volume<std::uint8_t>();  // `labels` is not read below: it may be the code now, or freed

  // Face conductance tables: G = k_f·A_a/h_a per pair of codes, electrode coupling 2k·A/h.
  transport::FineLevel fine;
  fine.grid = transport::Grid({dims.x, dims.y, dims.z}, ax, options.periodic, {h[0], h[1], h[2]});
  if (code_bits.empty()) fine.code.bytes = code.data();
  else fine.code.bits = code_bits.data();
  transport::number_carrying_voxels(fine);
  fine.no_code.assign(static_cast<std::size_t>(dims.x), 0);
  fine.codes = static_cast<int>(code_value.size());
  const double area[3] = {h[1] * h[2], h[0] * h[2], h[0] * h[1]};
  const auto pairs = static_cast<std::size_t>(fine.codes * fine.codes);
  for (int a = 0; a < 3; ++a) {
    fine.face_exact[a].assign(pairs, 0.0);
    for (int i = 1; i < fine.codes; ++i)
      for (int j = 1; j < fine.codes; ++j) {
        const double ki = code_value[i], kj = code_value[j];
        fine.face_exact[a][i * fine.codes + j] = 2 * ki * kj / (ki + kj) * area[a] / h[a];
      }
    fine.face[a].assign(fine.face_exact[a].begin(), fine.face_exact[a].end());
  }
  fine.dirichlet_exact.assign(static_cast<std::size_t>(fine.codes), 0.0);
  for (int i = 1; i < fine.codes; ++i) fine.dirichlet_exact[i] = 2 * code_value[i] * area[ax] / h[ax];
  fine.dirichlet.assign(fine.dirichlet_exact.begin(), fine.dirichlet_exact.end());

  // Initial guess: the linear potential of a uniform medium, over the carrying voxels.
  // Every entry written once, in the threads that later sweep it (first touch).
  transport::VoxelVector<double> x(static_cast<std::size_t>(fine.carrying()));
  tbb::parallel_for(tbb::blocked_range<index_t>(0, dims.y * dims.z, 64), [&](const tbb::blocked_range<index_t>& rows) {
    for (index_t row = rows.begin(); row < rows.end(); ++row) {
      const index_t at[3] = {0, row % dims.y, row / dims.y};
      index_t k = fine.row_start[static_cast<std::size_t>(row)];
      fine.code.for_each_carrying(row * dims.x, dims.x, [&](index_t i) {
        const index_t t = ax == 0 ? i : at[ax];
        x[static_cast<std::size_t>(k++)] = 1.0 - (static_cast<double>(t) + 0.5) / static_cast<double>(dims[ax]);
      });
    }
  });

  transport::Multigrid mg(fine);
  out.multigrid_levels = mg.levels();
  progress_point(kUnknownProgress);
  const transport::FaceCurrents currents = restarted_cg(fine, mg, x.data(), options, out);
  out.flux_in = currents.in;
  out.flux_out = currents.out;
  // ΔV = 1: σ_eff = I·L/A with I the mean of the inlet and outlet currents.
  out.sigma_eff = 0.5 * (currents.in + currents.out) * out.length_um / out.area_um2;
  out.tau = out.sigma_eff > 0 ? eps_sigma / out.sigma_eff : kInf;
  out.macmullin = out.sigma_eff > 0 ? out.sigma_ref / out.sigma_eff : kInf;

  if (options.keep_profile) {
    const std::vector<double> planes = transport::plane_currents(fine, x.data());
    const int b = (ax + 1) % 3, d = (ax + 2) % 3;
    out.profile.resize(static_cast<std::size_t>(dims[ax]));
    // Along x a slice is strided by n_x: sum all slices in one pass in memory order (each
    // slice still z outer, y inner: the same order of addition as the slice-by-slice loop).
    std::vector<double> x_sums;
    std::vector<index_t> x_counts;
    if (ax == 0) {
      x_sums.assign(static_cast<std::size_t>(dims.x), 0.0);
      x_counts.assign(static_cast<std::size_t>(dims.x), 0);
      for (index_t row = 0, k = 0; row < dims.y * dims.z; ++row)
        fine.code.for_each_carrying(row * dims.x, dims.x, [&](index_t i) {
          x_sums[static_cast<std::size_t>(i)] += x[static_cast<std::size_t>(k++)],
              ++x_counts[static_cast<std::size_t>(i)];
        });
    }
    for (index_t t = 0; t < dims[ax]; ++t) {
      double sum = 0;
      index_t count = 0;
      if (ax == 0) {
        sum = x_sums[static_cast<std::size_t>(t)], count = x_counts[static_cast<std::size_t>(t)];
      } else {
        const std::vector<index_t> plane = transport::plane_indices(fine, ax, t);
        for (const index_t k : plane)  // w outer, u inner
          if (k >= 0) sum += x[static_cast<std::size_t>(k)], ++count;
      }
      ProfileSlice& s = out.profile[static_cast<std::size_t>(t)];
      s.position_um = (static_cast<double>(t) + 0.5) * h[ax];
      s.current_in = planes[static_cast<std::size_t>(t)];
      s.potential_mean = count ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
      s.percolating_fraction = static_cast<double>(count) / static_cast<double>(dims[b] * dims[d]);
    }
  }
  if (options.keep_fields) {
    Volume<float> potential = shape.like<float>(dims);
    for (index_t i = 0, k = 0; i < n; ++i)
      potential[i] = fine.code[i] ? static_cast<float>(x[static_cast<std::size_t>(k++)]) : 0.0f;
    Volume<float> current = shape.like<float>(dims);
    transport::current_density(fine, x.data(), {h[0], h[1], h[2]}, current.data());
    out.potential = std::move(potential);
    out.current_density = std::move(current);
  }
  out.seconds = elapsed();
  return out;
}

}  // namespace

TransportResult solve_transport(const Volume<std::uint8_t>& labels, const ConductivityTable& conductivity,
                                const TransportOptions& options) {
  return solve(labels, nullptr, conductivity, options);
}

TransportResult solve_transport(Volume<std::uint8_t>&& labels, const ConductivityTable& conductivity,
                                const TransportOptions& options) {
  if (labels.borrowed()) return solve(labels, nullptr, conductivity, options);  // not ours to overwrite
  return solve(labels, &labels, conductivity, options);
}

}  // namespace vp
