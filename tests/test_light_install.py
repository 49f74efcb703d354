"""The light install: ``predict`` runs with only the base dependencies of pyproject.toml.

A fresh venv per test run would download and install packages (slow, network): here the
modules of every extra (TensorFlow, Keras, librosa, scikit-learn, matplotlib, ...) are made
unimportable in a child process, ``predict`` runs on the shipped model and on a waveform
model, and every third-party module it loaded must come from a base dependency (or one of
theirs). bench/on_device.py does the real thing: a fresh venv with ``pip install .``, its size,
and predict from it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np

from iad_tf.cli.main import EXTRA_FOR_MODULE
from tests.detector_model import write_song

REPO = Path(__file__).resolve().parents[1]

#: Child process: block the extras' modules, run the CLI, report the modules it loaded.
CHILD = """
import importlib.abc, json, sys
AT_START = set(sys.modules)  # interpreter start-up (site hooks), not predict's doing
BLOCKED = set(json.loads(sys.argv[1]))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from iad_tf.cli.main import cli
try:
    cli(json.loads(sys.argv[2]), standalone_mode=False)
    code = 0
except Exception as exc:
    import click
    if not isinstance(exc, click.ClickException):
        raise
    print("Error:", exc.format_message())
    code = 1
print("MODULES", json.dumps(sorted({m.split(".")[0] for m in set(sys.modules) - AT_START})))
sys.exit(code)
"""


def run_blocked(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(sorted(EXTRA_FOR_MODULE)), json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def base_closure() -> set[str]:
    """Distribution names of the base dependencies and everything they require."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    todo, seen = [_name(d) for d in deps], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in reqs if "extra ==" not in r]
    return seen


def test_predict_needs_only_the_base_install(detector_dir: Path, tmp_path: Path) -> None:
    song = write_song(tmp_path / "s.wav", {"ElectricBass": [(0.5, 1.5)]}, 2.0)
    loaded: set[str] = set()
    for model in ([], ["--model", str(detector_dir / "detector_waveform.tflite")]):
        out = tmp_path / f"out{len(model)}"
        proc = run_blocked(["predict", str(song), "--out", str(out), *model])
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert json.loads((out / "s.json").read_text())["duration_s"] == 2.0
        loaded |= set(json.loads(proc.stdout.split("MODULES", 1)[1]))
    assert "ElectricBass" in proc.stdout  # the waveform tone detector heard the bass
    dists = metadata.packages_distributions()
    third_party = {
        m for m in loaded if m in dists and m not in sys.stdlib_module_names and m != "iad_tf"
    }
    allowed = base_closure()
    outside = {m: dists[m] for m in third_party if not {_name(d) for d in dists[m]} & allowed}
    assert not outside, f"predict imported modules outside the base install: {outside}"
    assert {"numpy", "soundfile", "soxr", "ai_edge_litert"} <= third_party


def test_commands_of_an_extra_name_it(tmp_path: Path) -> None:
    proc = run_blocked(["fit", "--records", str(tmp_path), "--run-dir", str(tmp_path / "r")])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "`iad-tf fit` needs tensorflow" in proc.stdout
    assert "pip install 'iad-tf[train]'" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    song = write_song(tmp_path / "s.wav", {"Flute": [(0.2, 0.8)]}, 1.0)
    proc = run_blocked(["predict", str(song), "--out", str(tmp_path / "o"), "--plot"])
    assert proc.returncode == 1 and "pip install 'iad-tf[plot]'" in proc.stdout
    proc = run_blocked(["--help"])  # listing every command needs no extra
    assert proc.returncode == 0 and "predict" in proc.stdout and "fit" in proc.stdout


def test_median_smoothing_without_scipy_equals_scipy() -> None:
    from scipy.ndimage import median_filter

    from iad_tf.postprocess import median_filter_decisions

    rng = np.random.default_rng(0)
    for frames, window in [(1, 3), (2, 5), (7, 7), (50, 3), (301, 9), (1000, 31)]:
        d = (rng.random((frames, 4)) < rng.random(4)).astype(np.uint8)
        ref = median_filter(d, size=(window, 1), mode="nearest")
        np.testing.assert_array_equal(median_filter_decisions(d, window), ref)
