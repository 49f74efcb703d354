"""bench/decoder_transfer.py: its `own` column reproduces ``iad-tf cv``'s cross-fitted scores,
a decoder tuned on an identical copy of a run (`others`) decides exactly as its own, and
runs with different song folds are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.evaluation.cv_report import cv_report
from tests.test_song_decisions import _run

REPO = Path(__file__).resolve().parents[1]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "bench/decoder_transfer.py"), *args],
                          capture_output=True, text=True)


def test_own_equals_cv_and_a_copy_transfers_exactly(tmp_path: Path) -> None:
    run, fold_of, tracks = _run(tmp_path / "a")
    copy = tmp_path / "b"
    shutil.copytree(run, copy)
    out = tmp_path / "dt.json"
    res = _bench("--run", f"a={run}", "--run", f"b={copy}", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    d = json.loads(out.read_text())
    rep = cv_report(tracks, AAM_CLASSES, fold_of, FeatureConfig().frame_seconds, 5)
    for mode in d["modes"]:
        want = rep["settings"][mode]["pooled"]
        row = d["runs"]["a"]
        assert abs(row[f"{mode} own"]["f1_micro"] - want["f1_micro"]) < 1e-4
        assert abs(row[f"{mode} own"]["f1_macro"] - want["f1_macro"]) < 1e-4
        assert row[f"{mode} others"] == row[f"{mode} own"] == row[f"{mode} all"]
    assert d["means"]["presence own"]["f1_micro"] == d["runs"]["a"]["presence own"]["f1_micro"]


def test_runs_with_other_folds_are_refused(tmp_path: Path) -> None:
    run, _, _ = _run(tmp_path / "a")
    other = tmp_path / "b"
    shutil.copytree(run, other)
    (other / "fold-3").rename(other / "fold-4")  # the same songs, another fold numbering
    res = _bench("--run", f"a={run}", "--run", f"b={other}", "--out", str(tmp_path / "x.json"))
    assert res.returncode != 0 and "do not share their song folds" in res.stderr
