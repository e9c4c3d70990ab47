"""On every volume of ../shared/data/real (MANIFEST.md) Python gives the CLI's --json numbers
exactly: info, volume fractions and a solve along z (NumPy axis 0). Skipped when the data is
absent. The 500³ TauFactor benchmark is read and measured but not solved (125 M voxels: minutes
per solve on the CI machine; the solve path is the one tested on the others)."""
import zipfile

import numpy as np
import pytest

import voxpress as vp
from conftest import REAL_DATA_DIR, assert_same, cli_json, json_value

# file, reader options (CLI flags / vp.read keywords), conducting phase, solve it?
CASES = [
    ("puma_100_fiberform.tif", {}, "0-89", True),
    ("porespy_image_Leopard_slice100.npy", {}, "1", True),
    ("porespy_test_berea.zip", {"format": "raw", "dims": (200, 200, 200), "dtype": "uint8"}, "0", True),
    ("taufactor_electrode.tiff", {}, "0", True),
    ("matbox_nmc-1-cal_generatedCBD_bridge.tif", {}, "0", True),
    ("openimpala_SampleData_2Phase_stack_3d_1bit.tif", {}, "1", True),
    ("taufactor_500_benchmark.tif", {}, "255", False),
]


def _flags(options):
    out = []
    for k, v in options.items():
        out += [f"--{k}", ",".join(map(str, v)) if isinstance(v, tuple) else str(v)]
    return out


@pytest.fixture
def volume_path(request, tmp_path):
    name = request.param
    path = REAL_DATA_DIR / name
    if not path.exists():
        pytest.skip(f"{path}: real data absent")
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            inner = z.namelist()[0]
            z.extract(inner, tmp_path)
        path = tmp_path / inner
    return path


@pytest.mark.parametrize("volume_path,options,phase,solve", [(c[0], c[1], c[2], c[3]) for c in CASES],
                         indirect=["volume_path"], ids=[c[0] for c in CASES])
def test_python_equals_cli_on_real_volume(volume_path, options, phase, solve):
    flags = _flags(options)
    vol = vp.read(volume_path, **options)
    assert_same(vp.info(volume_path, **options), cli_json("info", volume_path, *flags))

    ref_rows = cli_json("measure", volume_path, *flags, "--metrics", "volume_fraction")["rows"]
    rows = vp.measure(vol, metrics="volume_fraction")
    assert [(r["metric"], r["phase"], json_value(r["value"])) for r in rows] == \
        [(c["metric"], c["phase"], c["value"]) for c in ref_rows]

    if solve:
        ref = cli_json("solve", volume_path, *flags, "--phase", phase, "--axis", "z")
        py = vp.solve(vol, phase=phase, axis="z")
        assert_same(py, ref)
        assert np.isfinite(py["z"]["tau"]) == (ref["z"]["tau"] is not None)
