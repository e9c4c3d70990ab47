#!/usr/bin/python3
"""Scaling of `mpirun -np N voxpress measure` and `... solve --engine petsc` (issue 16), and the
agreement of the PETSc engine with the native solve on the real volumes.

  /usr/bin/python3 scripts/bench_mpi.py VOXPRESS scaling [--ranks 1,2,4] CASE...
  /usr/bin/python3 scripts/bench_mpi.py VOXPRESS agreement [--ranks 1,2,4] [--real DIR] [VOLUME...]

A CASE is NAME=PATH|MEASURE_ARGS|SOLVE_ARGS (SOLVE_ARGS empty: measure only). Every rank runs
under /usr/bin/time, so the table gives the wall time (slowest rank), the CPU time (user + sys,
all ranks) and the peak resident memory of the largest rank. Halo bytes are counted from the
z-cut, not measured: per CG iteration of the fine level, each interior slab face moves one plane
of doubles each way (2 · nx·ny · 8 B), what PETSc's DMDA ghost update sends for a star stencil;
the AMG levels' halos and the 2–3 allreduces per iteration come on top. For measure, the whole
command's plane exchanges (label planes for the Crofton / Euler halos, int64 cluster-id planes for
the slab-face joins) are listed; the per-cluster gathers to rank 0 come on top.
mpirun runs with --oversubscribe: more ranks than the machine's cores share them.
"""
import json
import os
import subprocess
import sys
import tempfile

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]


def run_ranks(voxpress, ranks, args, workdir):
    """Runs voxpress ARGS on `ranks` ranks; returns (rc, stdout, stderr, per-rank (wall, cpu, rss_kib))."""
    wrapper = ('exec /usr/bin/time -f "%e %U %S %M" -o "' + workdir +
               '/time.${OMPI_COMM_WORLD_RANK:-0}" "$0" "$@"')
    for f in os.listdir(workdir):
        if f.startswith("time."):
            os.remove(os.path.join(workdir, f))
    cmd = MPIRUN + ["-np", str(ranks), "sh", "-c", wrapper, voxpress] + args
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    per_rank = []
    for r in range(ranks):
        with open(os.path.join(workdir, "time." + str(r))) as f:
            last = f.read().strip().splitlines()[-1].split()
        per_rank.append((float(last[0]), float(last[1]) + float(last[2]), int(last[3])))
    return p.returncode, p.stdout, p.stderr, per_rank


def dims_of(voxpress, path, extra):
    out = subprocess.run([voxpress, "info", path] + extra, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("dims"):
            parts = line.split()
            return int(parts[1]), int(parts[3]), int(parts[5])
    raise SystemExit("cannot read dims of " + path)


def measure_plane_exchanges(nx, ny, ranks, phases, axes=3):
    """Bytes of the plane exchanges of the default slab metrics (see pipeline/mpi/slab_measure.cpp):
    label halos (interfaces, TPB, contact, one mask per phase), 1 B a voxel, both ways per face;
    cluster-id planes (per phase: the mask, its complement, one per axis), 8 B, one way per face."""
    faces = ranks - 1
    halos = (3 + phases) * 2 * faces * nx * ny
    joins = phases * (2 + axes) * faces * nx * ny * 8
    return halos + joins


def scaling(voxpress, ranks_list, cases):
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for case in cases:
            name, rest = case.split("=", 1)
            path, margs, sargs = (rest.split("|") + ["", ""])[:3]
            nx, ny, nz = dims_of(voxpress, path, [])
            for op, args in (("measure", margs), ("solve petsc", sargs)):
                if op == "solve petsc" and not args:
                    continue
                for n in ranks_list:
                    cmd = ["measure", path] + margs.split() + ["--json"] if op == "measure" else \
                        ["solve", path] + sargs.split() + ["--engine", "petsc", "--json"]
                    rc, out, err, per = run_ranks(voxpress, n, cmd, work)
                    iters, halo = "-", "-"
                    if rc == 0 and op.startswith("solve"):
                        res = json.loads(out)
                        axis = next(k for k in ("z", "y", "x") if k in res)
                        iters = str(res[axis].get("iterations", "-"))
                        halo = fmt_bytes(2 * (n - 1) * nx * ny * 8) + "/it"
                    elif rc == 0:
                        phases = len({r["phase"] for r in json.loads(out)["rows"] if r["metric"] == "volume_fraction"})
                        halo = fmt_bytes(measure_plane_exchanges(nx, ny, n, phases)) + " total"
                    wall = max(w for w, _, _ in per)
                    cpu = sum(c for _, c, _ in per)
                    rss = max(m for _, _, m in per) / 1024.0
                    rows.append((name, "%dx%dx%d" % (nx, ny, nz), op, n, iters, wall, cpu, rss,
                                 rss * 1024 * 1024 / (nx * ny * nz / n), halo, rc))
                    print_row(rows[-1], flush=True)
    return rows


def fmt_bytes(b):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return ("%.0f %s" % (b, unit)) if unit == "B" else ("%.1f %s" % (b, unit))
        b /= 1024.0


HEADER = ("| case | dims | command | ranks | iterations | wall s | CPU s (all ranks) | peak RSS / rank MiB "
          "| B/voxel of a rank's slab | halo bytes | exit |\n|---|---|---|---|---|---|---|---|---|---|---|")


def print_row(r, flush=False):
    print("| %s | %s | %s | %d | %s | %.1f | %.1f | %.0f | %.1f | %s | %d |" % r, flush=flush)


AGREEMENT = [
    ("taufactor_electrode.tiff", [], "--phase 0", "z"),
    ("puma_100_fiberform.tif", [], "--phase 0-89", "z"),
    ("porespy_image_Leopard_slice100.npy", [], "--phase 1", "z"),
    ("porespy_test_berea.zip", ["--dims", "200,200,200", "--dtype", "uint8", "--format", "raw"], "--phase 0", "z"),
    ("matbox_nmc-1-cal_generatedCBD_bridge.tif", [], "--phase 0", "z"),
    ("openimpala_SampleData_2Phase_stack_3d_1bit.tif", [], "--phase 1", "z"),
    ("taufactor_500_benchmark.tif", [], "--phase 255", "z"),
]


def agreement(voxpress, ranks_list, real, only):
    print("| volume | axis | native τ | native it | ranks | petsc τ | petsc it | |Δσ|/σ | petsc wall s | CPU s "
          "| peak RSS / rank MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for name, read_args, phase, axis in AGREEMENT:
            if only and name not in only:
                continue
            path = os.path.join(real, name)
            if not os.path.exists(path):
                print("| %s | skipped: not in %s |" % (name, real), flush=True)
                continue
            if name.endswith(".zip"):
                raw = os.path.join(work, "volume.raw")
                with open(raw, "wb") as f:
                    subprocess.run(["unzip", "-p", path], stdout=f, check=True)
                path = raw
            args = [path] + read_args + phase.split() + ["--axis", axis, "--tol", "1e-10", "--json"]
            nat = subprocess.run([voxpress, "solve"] + args + ["--threads", "2"], capture_output=True, text=True)
            if nat.returncode != 0:
                print("| %s | native failed: %s |" % (name, nat.stderr.strip()[-200:]), flush=True)
                continue
            n = json.loads(nat.stdout)[axis]
            for r in ranks_list:
                rc, out, err, per = run_ranks(voxpress, r, ["solve"] + args + ["--engine", "petsc"], work)
                if rc != 0:
                    print("| %s | %s | | | %d | failed (exit %d): %s |" % (name, axis, r, rc, err.strip()[-200:]), flush=True)
                    continue
                p = json.loads(out)[axis]
                rel = abs(p["sigma_eff"] - n["sigma_eff"]) / n["sigma_eff"]
                print("| %s | %s | %.8f | %s | %d | %.8f | %s | %.1e | %.1f | %.1f | %.0f |" %
                      (name, axis, n["tau"], n["iterations"], r, p["tau"], p["iterations"], rel,
                       max(w for w, _, _ in per), sum(c for _, c, _ in per),
                       max(m for _, _, m in per) / 1024.0), flush=True)


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    voxpress, mode, rest = os.path.abspath(argv[1]), argv[2], argv[3:]
    ranks = [1, 2, 4]  # issue 16 accepts agreement at 1, 2 and 4 ranks
    real = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "real")
    while rest and rest[0].startswith("--"):
        if rest[0] == "--ranks":
            ranks = [int(r) for r in rest[1].split(",")]
        elif rest[0] == "--real":
            real = rest[1]
        rest = rest[2:]
    print("mpirun %s; %d CPU cores here (more ranks than cores share them)" % (" ".join(MPIRUN[1:]), os.cpu_count()))
    if mode == "scaling":
        print(HEADER, flush=True)
        scaling(voxpress, ranks, rest)
    elif mode == "agreement":
        agreement(voxpress, ranks, real, rest)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
