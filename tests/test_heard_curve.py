"""bench/heard_curve.py: each (fold, instrument) point counts the other folds' songs holding
the instrument, its AP is on the fold's own frames, and the groups average them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iad_tf.config import AAM_CLASSES
from iad_tf.evaluation.predictions import TrackPrediction, save_predictions

REPO = Path(__file__).resolve().parents[1]
A, B, C = 0, 1, 2  # class indices used below
T = 100


def _song(tid: str, plays: dict[int, slice], noise: dict[int, float]) -> TrackPrediction:
    labels = np.zeros((T, len(AAM_CLASSES)), dtype=np.uint8)
    for c, span in plays.items():
        labels[span, c] = 1
    probs = labels.astype(np.float32) * 0.9 + 0.05  # every playing instrument ranked perfectly ...
    for c, p in noise.items():
        probs[:, c] = p  # ... except these: one constant score, AP = the share of positive frames
    return TrackPrediction(tid, probs, labels)


def _run(root: Path, folds: int = 3) -> Path:
    """Fold 1: A and B (B unranked); fold 2: A; fold 3: A and C (C unranked)."""
    songs = {
        1: [_song("s1", {A: slice(0, 50), B: slice(0, 20)}, {B: 0.5})],
        2: [_song("s2", {A: slice(10, 60)}, {})],
        3: [_song("s3", {A: slice(0, 30), C: slice(50, 90)}, {C: 0.5})],
    }
    for k in range(1, folds + 1):
        save_predictions(root / f"fold-{k}" / "oof.npz", songs[k], AAM_CLASSES)
    (root / "cv.json").write_text(json.dumps({"folds": [["s1"], ["s2"], ["s3"]]}))
    return root


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "bench/heard_curve.py"), *args], capture_output=True, text=True)


def test_points_count_the_songs_heard_and_groups_average_them(tmp_path: Path) -> None:
    out = tmp_path / "hc.json"
    res = _bench("--run", f"r={_run(tmp_path / 'run')}", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    d = json.loads(out.read_text())
    pts = {(p["fold"], p["instrument"]): p for p in d["runs"]["r"]["points"]}
    a, b, c = (AAM_CLASSES[i] for i in (A, B, C))
    assert set(pts) == {(1, a), (1, b), (2, a), (3, a), (3, c)}
    assert [pts[(k, a)]["heard_songs"] for k in (1, 2, 3)] == [2, 2, 2]
    assert pts[(1, b)]["heard_songs"] == 0 and pts[(3, c)]["heard_songs"] == 0
    assert all(pts[(k, a)]["ap"] == pytest.approx(1.0) for k in (1, 2, 3))
    assert pts[(1, b)]["ap"] == pytest.approx(0.2) and pts[(1, b)]["prevalence"] == pytest.approx(0.2)
    assert pts[(3, c)]["ap"] == pytest.approx(0.4)
    curve = d["runs"]["r"]["curve"]
    assert set(curve) == {"0", "2"}
    assert curve["0"]["points"] == 2 and curve["0"]["mean_ap"] == pytest.approx(0.3)
    assert curve["2"] == {"points": 3, "mean_ap": 1.0, "mean_prevalence": pytest.approx((0.5 + 0.5 + 0.3) / 3, abs=1e-4),
                          "instruments": [a]}
    assert d["pooled"] == curve


def test_an_unfinished_run_is_refused(tmp_path: Path) -> None:
    res = _bench("--run", f"r={_run(tmp_path / 'run', folds=2)}", "--out", str(tmp_path / "x.json"))
    assert res.returncode != 0 and "not every fold is finished" in res.stderr
    assert not (tmp_path / "x.json").exists()
