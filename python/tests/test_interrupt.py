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
