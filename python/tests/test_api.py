"""voxpress from Python returns the CLI's numbers under the CLI's --json keys."""
import json
import math
import warnings

import numpy as np
import pytest
import tifffile

import voxpress as vp
from conftest import SOURCE_DIR, assert_same, cli, cli_json, json_value

PHASES = {"pore": 0, "se": 1, "am": 2}
PHASES_FLAG = "pore=0,se=1,am=2"


def test_read_gives_tifffile_order_and_file_metadata(series):
    path = series / "p010_labels.tif"
    vol = vp.read(path)
    ref = tifffile.imread(path)
    assert vol.array.shape == ref.shape  # [z, y, x]
    assert vol.array.dtype == np.uint8
    assert np.array_equal(vol.array, ref)
    info = cli_json("info", path)
    assert list(vol.spacing_um) == info["spacing_um"]
    assert vol.provenance["sha256"] == info["sha256"]
    assert info["dims"] == [ref.shape[2], ref.shape[1], ref.shape[0]]  # CLI dims are (x, y, z)


def test_read_returns_an_array_over_cpp_memory(series):
    vol = vp.read(series / "p010.tif")
    a = vol.array
    assert not a.flags.owndata and a.base is not None  # owned by the C++ volume through a capsule
    assert a.flags.c_contiguous and a.flags.writeable
    del vol
    assert int(a[0, 0, 0]) == int(tifffile.imread(series / "p010.tif")[0, 0, 0])  # still alive


def test_info_of_file_and_of_array_equal_cli(series):
    path = series / "p050.tif"
    ref = cli_json("info", path)
    assert_same(vp.info(path), ref)
    from_array = vp.info(vp.read(path))
    assert from_array["format"] == "array" and from_array["spacing_source"] == "argument"
    assert_same(from_array, {k: v for k, v in ref.items() if k not in ("format", "spacing_source")})


def test_measure_rows_equal_cli_and_carry_metrics_csv_columns(series):
    path = series / "p125_labels.tif"
    ref = cli_json("measure", path, "--labels", PHASES_FLAG)["rows"]
    rows = vp.measure(vp.read(path), labels=PHASES, name="p125", pressure_MPa=125)
    assert len(rows) == len(ref)
    for r, c in zip(rows, ref):
        assert set(vp.METRICS_CSV_COLUMNS) <= set(r)
        assert (r["stage"], r["metric"], r["phase"], r["axis"], r["unit"]) == \
            (c["stage"], c["metric"], c["phase"], c["axis"], c["unit"])
        assert json_value(r["value"]) == c["value"], r
        assert r["sample"] == "p125" and r["pressure_MPa"] == 125.0


def test_measure_takes_metric_lists_and_role_maps(series):
    path = series / "p250_labels.tif"
    ref = cli_json("measure", path, "--labels", PHASES_FLAG, "--roles", "se=electrolyte,am=active",
                   "--metrics", "porosity,contact_area_fraction")["rows"]
    rows = vp.measure(tifffile.imread(path), metrics=["porosity", "contact_area_fraction"], labels=PHASES,
                      roles={"se": "electrolyte", "am": "active"}, spacing_um=0.5)
    assert [json_value(r["value"]) for r in rows] == [c["value"] for c in ref]


def test_solve_axis_z_is_numpy_axis_0_and_equals_cli_on_the_same_tiff(series):
    path = series / "p370_labels.tif"
    ref = cli_json("solve", path, "--phase", "se", "--labels", PHASES_FLAG, "--axis", "z")
    arr = tifffile.imread(path)
    py = vp.solve(arr, phase="se", labels=PHASES, axis="z", spacing_um=0.5)
    assert_same(py, ref)
    assert py["z"]["tau"] == ref["z"]["tau"] and py["z"]["sigma_eff"] == ref["z"]["sigma_eff"]
    assert py["input"]["dims"] == [arr.shape[2], arr.shape[1], arr.shape[0]]


def test_solve_all_axes_with_conductivities_equals_cli(series):
    path = series / "p010_labels.tif"
    ref = cli_json("solve", path, "--cond", "se=1,am=0.25", "--labels", PHASES_FLAG, "--axis", "all",
                   "--periodic", "--tol", "1e-7")
    py = vp.solve(vp.read(path), cond={"se": 1, "am": 0.25}, labels=PHASES, axis="all", periodic=True, tol=1e-7)
    assert_same(py, ref)


def test_axis_names_follow_numpy_axes():
    # Conducting slabs stacked along NumPy axis 0 (z) with insulating gaps between them: current
    # flows along x and y (inside each slab) but not along z.
    arr = np.zeros((8, 10, 12), np.uint8)
    arr[::2] = 1
    r = vp.solve(arr, phase=1, axis="all")
    assert r["z"]["status"] == "not_percolating"
    assert r["x"]["status"] == "ok" and r["y"]["status"] == "ok"
    assert math.isclose(r["x"]["tau"], 1.0, rel_tol=1e-6)
    assert r["input"]["dims"] == [12, 10, 8]


def test_segment_equals_cli(series, tmp_path):
    path = series / "p010.tif"
    out = tmp_path / "labels.tif"
    ref = cli_json("segment", path, "--out", out, "--method", "multi-otsu", "--classes", "3", "--denoise", "median",
                   "--min-island", "0.5")
    labels, summary = vp.segment(vp.read(path), method="multi-otsu", classes=3, denoise="median", min_island=0.5)
    assert_same(summary, {k: v for k, v in ref.items() if k not in ("out",)})
    assert np.array_equal(labels.array, tifffile.imread(out))
    assert labels.array.dtype == np.uint8 and labels.spacing_um == (0.5, 0.5, 0.5)


def test_segment_options_are_the_preprocess_stage_parameters():
    # vp.segment's preprocess options are read from the stage's declaration, the list that
    # `voxpress stages --json` prints: a parameter added there is an option here without an edit.
    stages = {s["name"]: s for s in cli_json("stages")["stages"]}
    assert vp._PREPROCESS_PARAMS == {p["name"] for p in stages["preprocess"]["params"]}
    assert {"crop", "denoise", "nlmeans_patch_radius", "percentiles"} <= vp._PREPROCESS_PARAMS


def test_segment_takes_every_segment_stage_parameter(series, tmp_path):
    # end_members, psf_sigma and thin_pores reach the stage as the CLI's flags do: the same
    # summary as `voxpress segment --end-members ... --psf-sigma 1`.
    path = series / "p370.tif"
    ref = cli_json("segment", path, "--out", tmp_path / "l.tif", "--end-members", "6000,22000,44000", "--psf-sigma",
                   "1")
    labels, summary = vp.segment(vp.read(path), end_members=[6000, 22000, 44000], psf_sigma=1)
    assert summary["end_members_source"] == ref["end_members_source"]
    assert [c["mean"] for c in summary["classes"]] == [6000.0, 22000.0, 44000.0]
    assert_same(summary, {k: v for k, v in ref.items() if k not in ("out",)})
    assert np.array_equal(labels.array, tifffile.imread(tmp_path / "l.tif"))
    assert {"end_members", "psf_sigma", "thin_pores"} <= vp._SEGMENT_PARAMS


def test_segment_cleanup_label_outside_the_classes_is_an_input_error(series):
    with pytest.raises(vp.InputError, match="--cleanup-label 5: the segmentation has classes 0..2"):
        vp.segment(vp.read(series / "p010.tif"), method="multi-otsu", classes=3, open=0.5, cleanup_label=5)


def test_segment_removed_option_is_refused_saying_why(series):
    # As the CLI and configs: the key was removed, why, and the study that measured it; not "unknown option".
    with pytest.raises(vp.InputError, match="segment stage key 'map_relabel' was removed \\(measured, .*"
                       "docs/segmentation-studies.md"):
        vp.segment(vp.read(series / "p010.tif"), map_relabel=True)
    assert "map_relabel" not in vp._SEGMENT_PARAMS
    with pytest.raises(vp.InputError, match="segment stage key 'profile_pairing' was removed \\(measured, .*"
                       "docs/segmentation-studies.md"):
        vp.segment(vp.read(series / "p010.tif"), profile_pairing=False)
    assert "profile_pairing" not in vp._SEGMENT_PARAMS


def test_cracks_equals_cli(series):
    path = series / "p370_labels.tif"
    ref = cli_json("cracks", path, "--labels", PHASES_FLAG, "--roles", "se=electrolyte,am=active")
    py = vp.cracks(vp.read(path), labels=PHASES, roles={"se": "electrolyte", "am": "active"})
    assert_same(py, ref)


def test_phantom_writes_the_same_bytes_as_cli(tmp_path):
    a, b = tmp_path / "py", tmp_path / "cli"
    res = vp.phantom(a, size=24, pressures=[10, 200], seed=7)
    cli("phantom", "--out", b, "--size", "24", "--pressures", "10,200", "--seed", "7")
    assert [s["name"] for s in res["samples"]] == ["p010", "p200"]
    for s in res["samples"]:
        for key in ("grey", "labels"):
            name = s[key].rsplit("/", 1)[1]
            assert (a / name).read_bytes() == (b / name).read_bytes()
        assert s["truth"] == json.loads((b / f"{s['name']}.truth.json").read_text())


def test_run_and_load_run_read_metrics_csv_and_json(series, tmp_path):
    config = tmp_path / "run.yaml"
    text = (series / "series.yaml").read_text()
    text = text.replace("path: p", f"path: {series}/p").replace("labels: p", f"labels: {series}/p")
    config.write_text(text + "output: " + str(tmp_path / "out") + "\nstages:\n  - stage: volume_fraction\n")
    res = vp.run(config, out=tmp_path / "run", jobs=2, only=["p010", "p370"])
    assert res.ok and res.exit_code == 0
    assert {r["sample"] for r in res.rows} == {"p010", "p370"}
    assert set(res.rows[0]) == set(vp.METRICS_CSV_COLUMNS)
    again = vp.load_run(res.run_dir)
    assert again.rows == res.rows or all(
        (a == b) or (isinstance(a["value"], float) and math.isnan(a["value"])) for a, b in zip(again.rows, res.rows))
    assert again.metrics["samples"][0]["name"] in ("p010", "p370")
    porosity = res.table("porosity")
    assert porosity["p010"] > porosity["p370"]


def test_progress_callback_sees_the_solve_advance(series):
    seen = []
    vp.solve(vp.read(series / "p010_labels.tif"), phase=1, progress=seen.append)
    assert seen and all(0.0 <= f <= 1.0 for f in seen)
    assert seen[-1] > 0.9


def test_progress_callback_exception_stops_the_solve(series):
    class Stop(Exception):
        pass

    def stop(_):
        raise Stop()

    with pytest.raises(Stop):
        vp.solve(vp.read(series / "p010_labels.tif"), phase=1, progress=stop)


# ---- bad input: a clear Python exception naming the argument, never a crash -------------------

def test_errors_carry_the_cli_messages(series):
    path = series / "p010_labels.tif"
    p = cli("solve", path, "--phase", "nope", "--labels", PHASES_FLAG, check=False)
    assert p.returncode == 2
    with pytest.raises(vp.InputError) as e:
        vp.solve(vp.read(path), phase="nope", labels=PHASES)
    assert str(e.value) in p.stderr
    assert isinstance(e.value, ValueError)
    with pytest.raises(vp.InputError, match="no-such-file"):
        vp.read(SOURCE_DIR / "no-such-file.tif")
    with pytest.raises(vp.InputError, match="--metrics: unknown metric 'nope'"):
        vp.measure(vp.read(path), metrics="nope")


def test_not_converged_is_reported_as_the_cli_does(series):
    r = vp.solve(vp.read(series / "p010_labels.tif"), phase=1, max_iterations=1, tol=1e-12)
    assert r["z"]["status"] == "not_converged"
    assert issubclass(vp.ComputeError, RuntimeError)


def test_two_d_arrays_are_refused_with_how_to_fix():
    with pytest.raises(vp.InputError, match=r"3-D array.*np.newaxis"):
        vp.solve(np.ones((8, 8), np.uint8), phase=1)


def test_negative_spacing_is_refused():
    with pytest.raises(vp.InputError, match="spacing_um"):
        vp.solve(np.ones((4, 4, 4), np.uint8), phase=1, spacing_um=(1, -1, 1))
    with pytest.raises(vp.InputError, match="spacing_um"):
        vp.measure(np.ones((4, 4, 4), np.uint8), spacing_um=0)


def test_non_contiguous_and_wrong_dtype_arrays_are_copied_with_a_warning(series):
    arr = tifffile.imread(series / "p010_labels.tif")
    ref = vp.solve(arr, phase=1)
    with pytest.warns(vp.CopyWarning, match="C-contiguous"):
        flipped = vp.solve(np.asfortranarray(arr), phase=1)
    assert_same(flipped, ref)
    with pytest.warns(vp.CopyWarning, match="uint8"):
        wide = vp.solve(arr.astype(np.int64), phase=1)
    assert_same(wide, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vp.solve(arr, phase=1)  # the right dtype and layout: no copy, no warning


def test_labels_that_are_not_uint8_values_are_refused_naming_the_voxel():
    arr = np.zeros((2, 3, 4), np.int32)
    arr[1, 2, 3] = 300
    with pytest.raises(vp.InputError, match=r"voxel \(3, 2, 1\) holds 300"):
        vp.measure(arr)
    with pytest.raises(vp.InputError, match="float32"):
        vp.info(np.zeros((2, 2, 2), np.int64))
