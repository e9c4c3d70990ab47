"""Shared fixtures: the voxpress binary the module was built with, the CLI's --json output, and a
comparison that demands equality (only wall-clock times and file paths may differ)."""
import json
import math
import os
import subprocess
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("VP_SOURCE_DIR", Path(__file__).resolve().parents[2]))
REAL_DATA_DIR = Path(os.environ.get("VP_REAL_DATA_DIR", SOURCE_DIR.parent / "shared" / "data" / "real"))
SERIES_DIR = SOURCE_DIR / "data_samples" / "series"


def _voxpress_exe():
    exe = os.environ.get("VP_VOXPRESS_EXE")
    if exe:
        return exe
    import voxpress
    # build/python/voxpress/__init__.py -> build/voxpress
    return str(Path(voxpress.__file__).resolve().parents[2] / "voxpress")


VOXPRESS = _voxpress_exe()


def cli(*args, check=True):
    """Runs the voxpress binary; returns the CompletedProcess."""
    p = subprocess.run([VOXPRESS, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"voxpress {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p


def cli_json(*args):
    return json.loads(cli(*args, "--json").stdout)


# Keys whose values are allowed to differ between the CLI and Python: wall time, and where the
# input came from (a file for the CLI, an array for Python).
VOLATILE = {"seconds", "input", "sha256", "path"}


def assert_same(py, ref, where="result"):
    """Exact equality of two JSON-like structures, except VOLATILE keys; None == None, nan == nan."""
    if isinstance(ref, dict):
        assert isinstance(py, dict), f"{where}: {type(py).__name__} instead of a dict"
        keys = set(ref) - VOLATILE
        assert keys <= set(py), f"{where}: missing keys {sorted(keys - set(py))}"
        for k in keys:
            assert_same(py[k], ref[k], f"{where}.{k}")
    elif isinstance(ref, list):
        assert isinstance(py, list) and len(py) == len(ref), f"{where}: {py!r} != {ref!r}"
        for i, (a, b) in enumerate(zip(py, ref)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(ref, float) and isinstance(py, float) and math.isnan(ref):
        assert math.isnan(py), f"{where}: {py!r} != nan"
    else:
        assert py == ref and type(py) is type(ref) or (isinstance(ref, (int, float)) and py == ref), \
            f"{where}: Python {py!r} != CLI {ref!r}"


def json_value(v):
    """A row value as the CLI's JSON writes it: non-finite numbers as null."""
    return v if math.isfinite(v) else None


@pytest.fixture(scope="session")
def series():
    if not (SERIES_DIR / "p010_labels.tif").exists():
        pytest.skip(f"{SERIES_DIR}: bundled series missing")
    return SERIES_DIR
