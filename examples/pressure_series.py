#!/usr/bin/env python3
"""The bundled pressure series from Python: segment, measure and solve each step, plot porosity,
AM–SE contact fraction and the electrolyte's tortuosity factor against pressure.

    PYTHONPATH=build/python /usr/bin/python3 examples/pressure_series.py --out series.png

Every number is the one `voxpress segment / measure / solve` gives for the same volume.
"""
import argparse
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

import voxpress as vp  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
PHASES = {"pore": 0, "se": 1, "am": 2}
ROLES = {"pore": "pore", "se": "electrolyte", "am": "active"}


def pressure_series(folder):
    """(name, pressure in MPa, grey path) for each <name>.tif with a <name>.truth.json beside it."""
    steps = []
    for truth in sorted(folder.glob("*.truth.json")):
        name = truth.name[: -len(".truth.json")]
        steps.append((name, json.loads(truth.read_text())["pressure_MPa"], folder / f"{name}.tif"))
    return sorted(steps, key=lambda s: s[1])


def analyse(grey_path):
    grey = vp.read(grey_path)  # uint16 [z, y, x], spacing from the file (0.5 µm)
    # The demo's calibrated segmentation (configs/demo.yaml): thresholds midway between the
    # phases' grey levels, then an opening of the SE that removes the blur's false SE rim.
    labels, seg = vp.segment(grey, method="threshold", thresholds=[1104, 1111.6], open=0.75, cleanup_label=1)
    rows = vp.measure(labels, metrics=["porosity", "contact_area_fraction"], labels=PHASES, roles=ROLES)
    value = {r["metric"]: r["value"] for r in rows if r["metric"] in ("porosity", "contact_area_fraction")}
    solved = vp.solve(labels, phase="se", labels=PHASES, roles=ROLES, axis="z")  # z: pressing axis, NumPy axis 0
    return value["porosity"], value["contact_area_fraction"], solved["z"]["tau"], seg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=pathlib.Path, default=HERE.parent / "data_samples" / "series")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("pressure_series.png"))
    args = ap.parse_args(argv)

    pressures, porosity, contact, tau = [], [], [], []
    for name, pressure, grey_path in pressure_series(args.data):
        p, c, t, _ = analyse(grey_path)
        print(f"{name}: {pressure:6g} MPa  porosity {p:.4f}  contact fraction {c:.4f}  tau_z(se) {t:.4f}")
        pressures.append(pressure)
        porosity.append(p)
        contact.append(c)
        tau.append(t if t is not None else float("inf"))
    if not pressures:
        sys.exit(f"{args.data}: no <name>.truth.json / <name>.tif pairs")

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    for ax, values, label in zip(axes, (porosity, contact, tau),
                                 ("porosity", "AM–SE contact area fraction", "τ of the SE along z")):
        ax.plot(pressures, values, "o-")
        ax.set_xlabel("applied pressure (MPa)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{args.data.name}: voxpress {vp.__version__} from Python")
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
