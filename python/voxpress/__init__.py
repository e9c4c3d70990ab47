"""voxpress from Python: NumPy arrays in, the CLI's numbers out.

Every function calls the same compiled code as the ``voxpress`` command of the same name and
returns the keys of its ``--json`` output.

Axis convention (read this first)
---------------------------------
A volume is a 3-D NumPy array indexed ``[z, y, x]`` -- the order tifffile, imageio and napari use
for a stack of slices (z is the slice / TIFF page). In memory that is voxpress's own x-fastest
layout, so arrays are never transposed. Axis *names* keep their meaning: ``axis="z"`` is NumPy
axis 0, ``axis="x"`` is NumPy axis 2. Triples are in voxpress's (x, y, z) order, as in every
JSON output: ``spacing_um=(sx, sy, sz)``, ``origin``, and ``dims`` in the results.

Arrays in, arrays out
---------------------
* Label volumes are ``uint8`` (0..255). Another integer (or integral float) dtype is converted
  with a :class:`CopyWarning`; values outside 0..255 or fractional values raise
  :class:`InputError`.
* Grey volumes are ``uint8``, ``uint16``, ``int16``, ``uint32`` or ``float32``; ``float64`` is
  converted to ``float32`` with a :class:`CopyWarning`; other dtypes are refused.
* A non-C-contiguous array is copied with a :class:`CopyWarning`; a 2-D array is refused
  (a slice ``s`` becomes a volume as ``s[np.newaxis]``).
* Arrays returned (``vp.read``, ``vp.segment``) own the C++ memory they were computed in: no
  copy is made on the way out.

Long calls release the GIL, take ``progress=callable(fraction)`` and stop on Ctrl-C
(``KeyboardInterrupt``). Bad input raises :class:`InputError` (a ``ValueError``) with the CLI's
message; a computation that cannot give a trustworthy number raises :class:`ComputeError`.
"""

import csv as _csv
import glob as _glob
import json as _json
import math as _math
import os as _os
import warnings as _warnings

import numpy as _np

from . import _voxpress
from ._voxpress import ComputeError, InputError

__all__ = [
    "Volume", "RunResult", "InputError", "ComputeError", "CopyWarning",
    "read", "info", "segment", "measure", "solve", "cracks", "phantom", "run", "load_run",
]
__version__ = _voxpress.version

METRICS_CSV_COLUMNS = ("sample", "series", "pressure_MPa", "stage", "metric", "phase", "axis", "value", "unit")


class CopyWarning(UserWarning):
    """An input array was copied (converted dtype or made C-contiguous) before voxpress used it."""


class Volume:
    """A volume read by :func:`read` or made by :func:`segment`: ``array`` indexed [z, y, x]
    plus ``spacing_um`` (x, y, z, in µm), ``origin`` (x, y, z, in µm) and ``provenance``
    (path, sha256, format, spacing_source). ``np.asarray(volume)`` gives the array without a copy.
    Every function that takes an array also takes a Volume and then uses its spacing."""

    def __init__(self, array, spacing_um=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), provenance=None):
        self.array = array
        self.spacing_um = tuple(float(s) for s in spacing_um)
        self.origin = tuple(float(o) for o in origin)
        self.provenance = dict(provenance or {})

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    def __getitem__(self, index):
        return self.array[index]

    def __repr__(self):
        return (f"voxpress.Volume(shape [z, y, x] = {self.array.shape}, dtype={self.array.dtype}, "
                f"spacing_um (x, y, z) = {self.spacing_um}, path={self.provenance.get('path')!r})")


class RunResult:
    """A finished batch run (:func:`run`) or one read back from its folder (:func:`load_run`).

    ``rows``: metrics.csv as a list of dicts with its columns (values and pressures as float);
    ``metrics``: metrics.json as a dict; ``exit_code``: the CLI's (0, or 4 when anything failed)."""

    def __init__(self, run_dir, rows, metrics, exit_code, failed_samples, failed_report_stages):
        self.run_dir = run_dir
        self.rows = rows
        self.metrics = metrics
        self.exit_code = exit_code
        self.failed_samples = failed_samples
        self.failed_report_stages = failed_report_stages

    @property
    def ok(self):
        return self.exit_code == 0

    def table(self, metric, phase=None, axis=None):
        """{sample: value} of one metric (optionally one phase / axis), in the run's order."""
        return {r["sample"]: r["value"] for r in self.rows
                if r["metric"] == metric and (phase is None or r["phase"] == phase)
                and (axis is None or r["axis"] == axis)}

    def __repr__(self):
        return (f"voxpress.RunResult(run_dir={self.run_dir!r}, rows={len(self.rows)}, "
                f"exit_code={self.exit_code})")


# ---- argument handling -------------------------------------------------------------------------

def _spacing(spacing_um, volume, name="spacing_um"):
    """(x, y, z) in µm from a number, a triple, or the Volume's own; refuses non-positive sizes."""
    if spacing_um is None:
        spacing_um = volume.spacing_um if isinstance(volume, Volume) else (1.0, 1.0, 1.0)
    if _np.isscalar(spacing_um):
        spacing_um = (spacing_um,) * 3
    try:
        s = tuple(float(v) for v in spacing_um)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number or (sx, sy, sz) in µm; got {spacing_um!r}") from None
    if len(s) != 3:
        raise InputError(f"{name}: expected a number or (sx, sy, sz) in µm; got {len(s)} numbers")
    if not all(v > 0 and _math.isfinite(v) for v in s):
        raise InputError(f"{name} {s}: voxel sizes must be positive and finite, in µm (x, y, z)")
    return s


def _volume_array(arr, name):
    if isinstance(arr, Volume):
        arr = arr.array
    if not isinstance(arr, _np.ndarray):
        arr = _np.asarray(arr)
    if arr.ndim != 3:
        raise InputError(f"{name}: expected a 3-D array indexed [z, y, x]; got a {arr.ndim}-D array of shape "
                         f"{arr.shape} (a single slice s becomes a volume as s[np.newaxis])")
    return arr


def _contiguous(arr, name):
    if not arr.flags.c_contiguous:
        _warnings.warn(f"{name}: not C-contiguous, copied (pass np.ascontiguousarray({name}) to avoid the copy)",
                       CopyWarning, stacklevel=4)
        arr = _np.ascontiguousarray(arr)
    return arr


def _labels_array(arr, name="labels"):
    """A C-contiguous uint8 [z, y, x] array of phase labels: uint8 as is, other integral dtypes
    checked (0..255, integers) and converted with a warning."""
    arr = _volume_array(arr, name)
    if arr.dtype != _np.uint8:
        if arr.dtype.kind not in "biuf":
            raise InputError(f"{name}: dtype {arr.dtype} cannot hold phase labels; expected uint8 (0..255)")
        if arr.size:
            bad = (arr < 0) | (arr > 255)
            if arr.dtype.kind == "f":
                bad |= arr != _np.floor(arr)
            if bad.any():
                z, y, x = (int(i) for i in _np.argwhere(bad)[0])
                raise InputError(f"{name}: voxel ({x}, {y}, {z}) holds {arr[z, y, x]}; expected an integer label "
                                 f"0..255 (phase labels are uint8)")
        _warnings.warn(f"{name}: dtype {arr.dtype} converted to uint8 labels (a copy; pass "
                       f"{name}.astype(np.uint8) to avoid it)", CopyWarning, stacklevel=3)
        arr = arr.astype(_np.uint8, order="C")
    return _contiguous(arr, name)


_GREY_DTYPES = (_np.uint8, _np.uint16, _np.int16, _np.uint32, _np.float32)


def _grey_array(arr, name="grey"):
    arr = _volume_array(arr, name)
    if arr.dtype == _np.float64:
        _warnings.warn(f"{name}: float64 converted to float32 (a copy; pass {name}.astype(np.float32) to avoid it)",
                       CopyWarning, stacklevel=3)
        arr = arr.astype(_np.float32, order="C")
    elif arr.dtype == _np.bool_:
        arr = arr.astype(_np.uint8, order="C")
    elif not any(arr.dtype == t for t in _GREY_DTYPES):
        raise InputError(f"{name}: dtype {arr.dtype} is not a voxpress volume type; expected uint8, uint16, int16, "
                         f"uint32 or float32 (convert with {name}.astype(np.float32))")
    return _contiguous(arr, name)


def _assignments(value, name):
    """{'pore': 0, 'se': 1} or 'pore=0,se=1' -> 'pore=0,se=1' (the CLI's flag syntax)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    raise InputError(f"{name}: expected a dict {{NAME: VALUE}} or 'NAME=VALUE,...'; got {value!r}")


def _names(value):
    """'am', 2, ['pore', 'se'] -> 'am' / '2' / 'pore,se'."""
    if value is None:
        return ""
    if isinstance(value, (str, int, _np.integer)):
        return str(value)
    return ",".join(str(v) for v in value)


def _name_of(volume, name):
    if name is not None:
        return str(name)
    if isinstance(volume, Volume) and volume.provenance.get("path"):
        return volume.provenance["path"]
    return "array"


# ---- the functions -----------------------------------------------------------------------------

def read(path, format="auto", dims=None, dtype=None, endian="little", offset=0, dataset=None, spacing_um=None):
    """Reads a volume file (TIFF stack, folder or glob of slices, MHA/MHD, NRRD, NIfTI, raw, HDF5,
    npy) as ``voxpress read`` does: returns a :class:`Volume` whose array is indexed [z, y, x].

    Reader options are the CLI's flags: ``dims=(nx, ny, nz)`` and ``dtype`` for raw, ``endian``,
    ``offset`` (header bytes), ``dataset`` (HDF5), ``spacing_um`` (overrides the file's)."""
    spacing = "" if spacing_um is None else ",".join(repr(v) for v in _spacing(spacing_um, None))
    dims_text = "" if dims is None else ",".join(str(int(d)) for d in dims)
    arr, sp, origin, prov = _voxpress.read(str(path), format, dims_text, dtype or "", endian, int(offset),
                                           dataset or "", spacing)
    return Volume(arr, sp, origin, prov)


def info(volume, spacing_um=None, name=None, **reader_options):
    """``voxpress info --json``: dims, dtype, spacing, value range, percentiles, distinct values.
    ``volume`` is a path (read with ``reader_options`` as in :func:`read`), a Volume or an array."""
    if isinstance(volume, (str, _os.PathLike)):
        o = dict(format="auto", dims=None, dtype=None, endian="little", offset=0, dataset=None)
        unknown = set(reader_options) - set(o)
        if unknown:
            raise InputError(f"info: unknown reader option(s) {sorted(unknown)}; expected {sorted(o)} or spacing_um")
        o.update(reader_options)
        spacing = "" if spacing_um is None else ",".join(repr(v) for v in _spacing(spacing_um, None))
        dims_text = "" if o["dims"] is None else ",".join(str(int(d)) for d in o["dims"])
        return _voxpress.info_file(str(volume), o["format"], dims_text, o["dtype"] or "", o["endian"],
                                   int(o["offset"]), o["dataset"] or "", spacing)
    if reader_options:
        raise InputError(f"info: reader options {sorted(reader_options)} apply to a path, not to an array")
    given = spacing_um is not None or isinstance(volume, Volume)
    return _voxpress.info_array(_grey_array(volume, "volume"), _spacing(spacing_um, volume), given,
                                _name_of(volume, name))


# The preprocess stage's parameters, which vp.segment takes: read from the stage's declaration
# (pipeline/stages/segment_stages.cpp), the list `voxpress stages --json` prints.
_PREPROCESS_PARAMS = frozenset(_voxpress.stage_param_names("preprocess"))
# The segment stage's, likewise (all but `phases`: the function returns class indices).
_SEGMENT_PARAMS = frozenset(_voxpress.stage_param_names("segment")) - {"phases", "method"}
# Its removed keys: passed on, so that the stage's check says why each went.
_SEGMENT_REMOVED = frozenset(_voxpress.stage_removed_param_names("segment"))


def segment(grey, method=None, spacing_um=None, name=None, progress=None, **options):
    """``voxpress segment`` on an array: preprocess, segment, clean up. Returns
    ``(labels, info)``: a :class:`Volume` of uint8 labels [z, y, x] (0 = darkest class) and the
    command's ``--json`` summary.

    ``method``: auto (default; forest when ``model=`` is given), otsu, multi-otsu, gmm, kmeans,
    threshold, hysteresis, forest (with ``model=`` a forest saved by ``voxpress segment
    --model-out``). Other options are the command's flags with underscores: every parameter of the
    segment stage (classes, thresholds, bins, connectivity, model, psf_sigma, thin_pores,
    end_members: K ascending grey values as a list or an earlier ``segment --json`` file), of the
    preprocess stage under its YAML name (crop (x0, y0, z0, nx, ny, nz), bin, rings, cupping,
    denoise, median_radius, bilateral_sigma, diffusion_iterations, nlmeans_patch_radius (or
    nlmeans_patch), normalise, percentiles, ...; ``voxpress stages``), and the clean-up flags
    min_island, fill_holes, open, close, cleanup_label."""
    known = {"nlmeans_patch", "min_island", "fill_holes", "open", "close", "cleanup_label"} | _SEGMENT_PARAMS | \
        _PREPROCESS_PARAMS
    unknown = set(options) - known - _SEGMENT_REMOVED
    if unknown:
        raise InputError(f"segment: unknown option(s) {sorted(unknown)}; expected one of {sorted(known)}")
    o = dict(options)
    if method is not None:
        o["method"] = method
    for key in ("thresholds", "percentiles", "crop", "centre", "deconvolve_sigma_vox"):
        if key in o and o[key] is not None:
            o[key] = [float(v) if key != "crop" else int(v) for v in o[key]]
    if o.get("model") is not None:
        o["model"] = str(o["model"])
    if o.get("end_members") is not None:  # grey values as the CLI takes them, or a file's path
        v = o["end_members"]
        o["end_members"] = str(v) if isinstance(v, (str, _os.PathLike)) else ",".join(str(x) for x in v)
    arr = _grey_array(grey)
    labels, summary, sp, origin = _voxpress.segment(arr, _spacing(spacing_um, grey), _name_of(grey, name), o,
                                                    progress)
    prov = {"path": None, "sha256": None, "format": "array", "spacing_source": "argument"}
    return Volume(labels, sp, origin, prov), summary


def measure(volume, metrics=None, labels=None, roles=None, spacing_um=None, particles=None, connectivity=0,
            name=None, series="", pressure_MPa=None, progress=None):
    """``voxpress measure`` on a label array: a list of rows, one dict per number, with the
    columns of metrics.csv (sample, series, pressure_MPa, stage, metric, phase, axis, value,
    unit). ``value`` is a float (inf / nan where metrics.csv writes them).

    ``metrics``: metric or stage names (list or comma string; default: all that apply).
    ``volume``: the label array [z, y, x] (or Volume); ``labels``: phase names as the CLI's
    --labels, {NAME: LABEL} or 'pore=0,se=1,am=2' (default: phase<N> per label present);
    ``roles``: {NAME: ROLE} or 'se=electrolyte,am=active'; ``particles``: uint32 ids, same shape."""
    arr = _labels_array(volume, "volume")
    ids = None if particles is None else _contiguous(_particle_array(particles), "particles")
    rows = _voxpress.measure(arr, _spacing(spacing_um, volume), _assignments(labels, "labels"),
                             _assignments(roles, "roles"), _name_of(volume, name), _names(metrics),
                             int(connectivity), ids, progress)
    sample = _name_of(volume, name)
    pressure = float("nan") if pressure_MPa is None else float(pressure_MPa)
    return [dict(sample=sample, series=series, pressure_MPa=pressure, **r) for r in rows]


def solve(volume, phase=None, cond=None, axis="z", spacing_um=None, periodic=False, tol=None, flux_balance=None,
          max_iterations=None, unit="1", labels=None, roles=None, out=None, threads=0, name=None, progress=None):
    """``voxpress solve --json`` on a label array: effective conductivity, tortuosity factor and
    MacMullin number per axis. Returns a dict with the CLI's keys (input, phase, conductivities,
    conductivity_unit, settings, and one object per solved axis: sigma_eff, tau, macmullin,
    porosity, porosity_percolating, status, iterations, residual, ...; non-finite numbers are None
    as JSON writes null).

    ``phase``: conducting phase(s), conductivity 1 (name, label, list, or 'A-B' ranges);
    ``cond``: {NAME_OR_LABEL: conductivity} instead. ``axis``: 'x', 'y', 'z' (NumPy axis 0) or
    'all'. ``tol``, ``flux_balance``, ``max_iterations``: None takes the transport stage's default
    (``voxpress stages transport``). ``labels``/``roles``: phase names and roles as in :func:`measure`. A not-converged
    axis has status 'not_converged' (the CLI then exits 3)."""
    if phase is None and cond is None:
        raise InputError("solve: name the conducting phase(s): phase=LABEL or [LABEL, ...], or cond={LABEL: VALUE}")
    if isinstance(cond, dict):
        cond = ",".join(f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in cond.items())
    request = _voxpress.SolveRequest()
    request.phase = _names(phase)
    request.cond = cond or ""
    request.axis = str(axis)
    params = {"periodic": "true" if periodic else "false"}
    for key, value in (("tol", tol), ("flux_balance", flux_balance), ("max_iterations", max_iterations)):
        if value is not None:
            params[key] = repr(int(value)) if key == "max_iterations" else repr(float(value))
    request.params = params
    request.unit = str(unit)
    request.out_dir = "" if out is None else str(out)
    request.threads = int(threads)
    arr = _labels_array(volume, "volume")
    return _voxpress.solve(arr, _spacing(spacing_um, volume), _assignments(labels, "labels"),
                           _assignments(roles, "roles"), _name_of(volume, name), request, progress)


def cracks(volume, host="electrolyte", void="pore", grey=None, particles=None, pressing_axis="z", spacing_um=None,
           labels=None, roles=None, use_grey=True, max_aperture=None, min_aspect=None, min_voxels=None,
           sheet_threshold=None, connectivity=None, out=None, name=None, progress=None):
    """``voxpress cracks --json`` on a label array: crack count, volume fraction, surface density,
    apertures, orientation, networks, percolation per axis, and ``rows`` (the metric rows).
    ``labels``/``roles``: phase names and roles as in :func:`measure`."""
    request = _voxpress.CracksRequest()
    request.host = _names(host)
    request.void_phases = _names(void)
    request.use_grey = bool(use_grey)
    request.params = {key: repr(value) for key, value in
                      (("max_aperture", max_aperture), ("min_aspect", min_aspect), ("min_voxels", min_voxels),
                       ("sheet_threshold", sheet_threshold), ("connectivity", connectivity)) if value is not None}
    request.out_dir = "" if out is None else str(out)
    arr = _labels_array(volume, "volume")
    g = None if grey is None else _grey_array(grey)
    ids = None if particles is None else _contiguous(_particle_array(particles), "particles")
    return _voxpress.cracks(arr, _spacing(spacing_um, volume), _assignments(labels, "labels"),
                            _assignments(roles, "roles"), _name_of(volume, name), g, ids, str(pressing_axis),
                            request, progress)


def phantom(out, **options):
    """``voxpress phantom --out OUT``: a synthetic pressure series with exact ground truth,
    written to ``out`` by the same code (same seed, same bytes). Options are the command's flags
    with underscores (spec, seed, size, spacing, pressures, snr, blur, noise, cupping, rings,
    curtains, fib_sem, prefix, format, ids, slices, threads); lists are comma-joined.

    Returns {"out", "series_yaml", "samples": [{"name", "grey", "labels", "truth"}]}, with each
    sample's ground truth (<name>.truth.json) as a dict."""
    args = ["--out", str(out)]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    rc = _voxpress.run_command("phantom", args)
    if rc != 0:
        raise ComputeError(f"phantom: the command exited with code {rc}")
    samples = []
    for truth_path in sorted(_glob.glob(_os.path.join(str(out), "*.truth.json"))):
        stem = truth_path[: -len(".truth.json")]
        with open(truth_path) as f:
            truth = _json.load(f)
        grey = next((p for p in (stem + ".tif", stem + ".mha") if _os.path.exists(p)), None)
        lab = next((p for p in (stem + "_labels.tif", stem + "_labels.mha") if _os.path.exists(p)), None)
        samples.append({"name": _os.path.basename(stem), "grey": grey, "labels": lab, "truth": truth})
    return {"out": str(out), "series_yaml": _os.path.join(str(out), "series.yaml"), "samples": samples}


def run(config_path, out=None, jobs=0, only=None, max_memory=None, quiet=True, progress=None, resume=False,
        force=False):
    """``voxpress run CONFIG``: runs a YAML batch (each sample in its own worker process, a
    failing sample recorded and the batch going on) and returns its :class:`RunResult`
    (metrics.csv and metrics.json read back). ``quiet=False`` prints progress on stderr as the
    CLI does; ``progress(fraction)`` is called as samples finish. Ctrl-C stops the batch: its
    running workers are killed and the finished samples stay in the run folder; ``resume=True``
    (``voxpress run --resume``) then runs only what is missing or changed. ``force=True`` writes
    into a non-empty folder that is not a run folder (``--force``)."""
    r = _voxpress.run(str(config_path), "" if out is None else str(out), int(jobs),
                      [] if only is None else [str(s) for s in ([only] if isinstance(only, str) else only)],
                      "" if max_memory is None else str(max_memory), bool(quiet), progress, bool(resume),
                      bool(force))
    result = load_run(r["run_dir"])
    result.exit_code = r["exit_code"]
    result.failed_samples = r["failed_samples"]
    result.failed_report_stages = r["failed_report_stages"]
    return result


def load_run(run_dir):
    """Reads a run folder written by ``voxpress run``: metrics.csv (rows as dicts, numbers as
    float) and metrics.json."""
    run_dir = str(run_dir)
    csv_path = _os.path.join(run_dir, "metrics.csv")
    json_path = _os.path.join(run_dir, "metrics.json")
    for p in (csv_path, json_path):
        if not _os.path.exists(p):
            raise InputError(f"{p}: not found; expected a run folder written by voxpress run")
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for r in _csv.DictReader(f):
            r = dict(r)
            for key in ("pressure_MPa", "value"):
                r[key] = float(r[key]) if r.get(key) not in (None, "") else float("nan")
            rows.append(r)
    with open(json_path, encoding="utf-8") as f:
        metrics = _json.load(f)
    samples = metrics.get("samples", [])
    failed = sum(1 for s in samples if not s.get("ok", True))
    failed_report = sum(1 for s in metrics.get("report_stages", []) if not s.get("ok", True))
    return RunResult(run_dir, rows, metrics, 4 if failed + failed_report else 0, failed, failed_report)


def _particle_array(arr):
    arr = _volume_array(arr, "particles")
    if arr.dtype != _np.uint32:
        if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 2**32 - 1)):
            raise InputError(f"particles: dtype {arr.dtype}; expected non-negative integer particle ids (uint32)")
        _warnings.warn(f"particles: dtype {arr.dtype} converted to uint32 (a copy)", CopyWarning, stacklevel=3)
        arr = arr.astype(_np.uint32, order="C")
    return arr
