"""examples/pressure_series.py runs on the bundled series and writes its PNG."""
import subprocess
import sys

from conftest import SOURCE_DIR


def test_pressure_series_example_writes_a_png(series, tmp_path):
    out = tmp_path / "series.png"
    p = subprocess.run([sys.executable, str(SOURCE_DIR / "examples" / "pressure_series.py"), "--data", str(series),
                        "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = [l for l in p.stdout.splitlines() if "MPa" in l]
    assert len(lines) == 5  # p010 ... p370
    porosity = [float(l.split("porosity")[1].split()[0]) for l in lines]
    assert porosity[0] > porosity[-1]  # pressing closes pores
