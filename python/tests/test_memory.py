"""Zero-copy in and out, proved on peak resident memory (VmHWM), not claimed.

Each measurement runs in a fresh interpreter so that peaks do not mix."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile

from conftest import VOXPRESS

N = 256  # the acceptance case: a 256³ solve


def _blobs(n, seed=3):
    """A 256³ uint8 two-phase volume that percolates along z: smoothed noise thresholded."""
    rng = np.random.default_rng(seed)
    a = rng.random((n // 8, n // 8, n // 8)).repeat(8, 0).repeat(8, 1).repeat(8, 2)
    return (a < 0.6).astype(np.uint8)


def _python_peak_kib(code):
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return {k: int(v) for k, v in (line.split("=") for line in p.stdout.split() if "=" in line)}


def _cli_peak_kib(args):
    code = f"""
    import resource, subprocess
    p = subprocess.run({[VOXPRESS, *args]!r}, capture_output=True)
    assert p.returncode == 0, p.stderr
    print("peak=%d" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """
    return _python_peak_kib(code)["peak"]


HWM = """
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""


@pytest.fixture(scope="module")
def blobs_tiff(tmp_path_factory):
    path = tmp_path_factory.mktemp("rss") / "blobs256.tif"
    tifffile.imwrite(path, _blobs(N), compression="zlib")  # no file pages in the peak
    return path


def test_solve_adds_no_more_memory_than_the_cli_s_solve(blobs_tiff):
    # What the solve adds on top of the volume held in memory, in each process: the CLI's peak
    # above `voxpress info` (the program and the volume as read), Python's above its own peak once
    # the array is loaded. The CLI hands its labels to the solve, which builds the code volume in
    # their buffer; vp.solve cannot (the array is the caller's), so it may add one array more
    # (measured: 1.48 arrays more, the CLI's peak falling ≈ 8 MiB further with its labels gone).
    # A copy of the array inside vp.solve would add another 16 MiB and fail this.
    array_kib = N ** 3 // 1024
    cli_read = _cli_peak_kib(["info", str(blobs_tiff)])
    cli_peak = _cli_peak_kib(["solve", str(blobs_tiff), "--phase", "1", "--axis", "z", "--json"])
    py = _python_peak_kib(HWM + textwrap.dedent(f"""
    import numpy as np, tifffile, voxpress as vp
    arr = tifffile.imread({str(blobs_tiff)!r})
    print("loaded=%d" % hwm())
    r = vp.solve(arr, phase=1, axis="z")
    assert r["z"]["status"] == "ok", r
    print("peak=%d" % hwm())
    """))
    cli_adds, py_adds = cli_peak - cli_read, py["peak"] - py["loaded"]
    print(f"solve adds: CLI {cli_adds} KiB, Python {py_adds} KiB (array {array_kib} KiB)")
    assert py_adds <= cli_adds + array_kib + 3 * array_kib // 4


def test_read_returns_the_volume_without_a_second_copy(blobs_tiff):
    # Reading a 16 MiB volume: if the array were copied out of the C++ volume, the peak would grow
    # by a second 16 MiB; the capsule hands over the C++ buffer instead.
    r = _python_peak_kib(HWM + textwrap.dedent(f"""
    import numpy as np, voxpress as vp
    base = hwm()
    v = vp.read({str(blobs_tiff)!r})
    after = hwm()
    assert not v.array.flags.owndata
    print("base=%d after=%d" % (base, after))
    """))
    grown = r["after"] - r["base"]
    array_kib = N ** 3 // 1024
    print(f"read: peak grew by {grown} KiB for a {array_kib} KiB volume")
    assert grown < 2 * array_kib
