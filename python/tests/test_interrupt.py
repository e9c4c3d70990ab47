"""Ctrl-C during a long solve returns to Python promptly with KeyboardInterrupt, and the module
stays usable. The signal is sent by a timer thread once the solve reports progress (CG running)."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import voxpress as vp
from test_memory import _blobs


def test_sigint_during_a_256_cubed_solve_raises_keyboard_interrupt():
    arr = _blobs(256)
    sent = {}
    points_after_signal = []

    def progress(done):
        if "at" in sent:
            points_after_signal.append(time.monotonic())
        elif not sent.get("armed"):
            sent["armed"] = True
            threading.Timer(0.2, lambda: (sent.__setitem__("at", time.monotonic()),
                                          os.kill(os.getpid(), signal.SIGINT))).start()

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        vp.solve(arr, phase=1, axis="z", tol=1e-12, flux_balance=1e-12, max_iterations=100000, progress=progress)
    returned = time.monotonic()
    latency = returned - sent["at"]
    print(f"SIGINT -> KeyboardInterrupt in {latency:.3f} s (solve ran {returned - start:.1f} s)")
    # The solve checks for signals at every CG iteration: it stops at the first check after the
    # signal, so no progress is reported after it.
    assert points_after_signal == []
    # Still usable afterwards.
    assert vp.solve(np.ones((4, 4, 4), np.uint8), phase=1)["z"]["status"] == "ok"


# ---- every long call, not only the solve ---------------------------------------------------------

def test_measure_reports_one_sweep_and_stops_on_sigint_between_stages(series):
    labels = vp.read(series / "p010_labels.tif")
    seen = []
    vp.measure(labels, roles={"pore": "pore", "se": "electrolyte", "am": "active"},
               labels={"pore": 0, "se": 1, "am": 2}, progress=seen.append)
    # One 0 -> 1 sweep over the whole call: stage i of n is [i/n, (i+1)/n].
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(a <= b for a, b in zip(seen, seen[1:])), seen
    assert len(set(seen)) > 3  # more than one stage reported

    after = []

    def interrupt_half_way(done):
        if after or done >= 0.5:
            after.append(done)
            if len(after) == 1:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        vp.measure(labels, labels={"pore": 0, "se": 1, "am": 2},
                   roles={"pore": "pore", "se": "electrolyte", "am": "active"}, progress=interrupt_half_way)
    # The signal is honoured at the very next checkpoint: the callback is not called again.
    assert len(after) == 1
    rows = vp.measure(labels, metrics="porosity", labels={"pore": 0, "se": 1, "am": 2}, roles={"pore": "pore"})
    assert "porosity" in {r["metric"] for r in rows}  # still usable afterwards


def test_cracks_stops_when_the_progress_callback_raises(series):
    class Stop(Exception):
        pass

    def stop(_):
        raise Stop()

    with pytest.raises(Stop):
        vp.cracks(vp.read(series / "p370_labels.tif"), labels={"pore": 0, "se": 1, "am": 2},
                  roles={"pore": "pore", "se": "electrolyte", "am": "active"}, progress=stop)


def _children_of_this_process():
    me = str(os.getpid())
    out = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                out.append(int(stat))
    return out


def _series_config(series, tmp_path):
    config = tmp_path / "run.yaml"
    text = (series / "series.yaml").read_text()
    text = text.replace("path: p", f"path: {series}/p").replace("labels: p", f"labels: {series}/p")
    config.write_text(text + "output: " + str(tmp_path / "out") +
                      "\nstages:\n  - stage: volume_fraction\n  - stage: interfaces\n  - stage: connectivity\n")
    return config


def test_run_reports_progress_and_ctrl_c_kills_its_workers_then_resume_completes(series, tmp_path):
    config = _series_config(series, tmp_path)
    seen = []
    whole = vp.run(config, out=tmp_path / "whole", jobs=1, progress=seen.append)
    assert whole.ok and seen[0] == 0.0 and seen[-1] == 1.0
    assert all(a <= b for a, b in zip(seen, seen[1:]))

    calls = []

    def interrupt_while_a_worker_runs(done):
        calls.append(done)
        if len(calls) == 2:  # the first call comes before any worker starts; the second while one runs
            assert _children_of_this_process(), "a sample worker should be running"
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        vp.run(config, out=tmp_path / "cut", jobs=1, progress=interrupt_while_a_worker_runs)
    assert len(calls) == 2
    assert _children_of_this_process() == []  # killed and reaped: no orphan, no zombie
    resumed = vp.run(config, out=tmp_path / "cut", jobs=1, resume=True)
    assert resumed.ok
    strip = lambda rows: [{k: v for k, v in r.items() if k != "path"} for r in rows]  # noqa: E731
    assert strip(resumed.rows) == strip(whole.rows)
