"""bench/quality_partial.py: recipes scored on the folds every run finished, beside the same
folds of the baseline; numbers equal a direct sklearn computation; other songs are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from iad_tf.evaluation.predictions import TrackPrediction, save_predictions

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["A", "B", "C"]


def _run(root: Path, folds: dict[int, list[str]], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for k, songs in folds.items():
        tracks = []
        for i, song in enumerate(songs):
            labels = np.zeros((50, 3), dtype=np.uint8)
            labels[:, 0] = 1  # A everywhere
            labels[10 * i : 10 * i + 20, 1 + (int(song) % 2)] = 1  # B or C by song
            probs = np.clip(labels * 0.6 + rng.random((50, 3)) * 0.5, 0, 1).astype(np.float32)
            tracks.append(TrackPrediction(song, probs, labels))
        save_predictions(root / f"fold-{k}" / "oof.npz", tracks, CLASSES)
    return root


def test_partial_scores_match_sklearn_on_the_common_folds(tmp_path: Path) -> None:
    base = _run(tmp_path / "base", {1: ["0001", "0002"], 2: ["0003"], 3: ["0004", "0005"]}, 0)
    arm = _run(tmp_path / "arm", {1: ["0001", "0002"], 2: ["0003"]}, 1)
    out = tmp_path / "q.json"
    res = subprocess.run([sys.executable, str(REPO / "bench/quality_partial.py"), "--baseline", str(base),
                          "--run", f"arm={arm}", "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["folds"] == [1, 2] and data["songs"] == ["0001", "0002", "0003"]
    from iad_tf.evaluation.predictions import load_predictions

    y, p = [], []
    for k in (1, 2):
        for t in load_predictions(arm / f"fold-{k}" / "oof.npz")[0]:
            y.append(t.labels)
            p.append(t.probs)
    y, p = np.concatenate(y), np.concatenate(p)
    want = np.mean([average_precision_score(y[:, i], p[:, i]) for i in range(3)])
    got = data["recipes"]["arm"]
    assert abs(got["map"] - want) < 1e-6
    # every class plays in >= 2 of the baseline's 5 songs: the two means agree
    assert abs(got["map_in_2plus_songs"] - want) < 1e-6
    assert set(got["ap_per_class"]) == set(CLASSES) and 0 <= got["f1_micro_at_0.5"] <= 1

    other = _run(tmp_path / "other", {1: ["0009"], 2: ["0003"]}, 2)
    res = subprocess.run([sys.executable, str(REPO / "bench/quality_partial.py"), "--baseline", str(base),
                          "--run", f"other={other}", "--out", str(tmp_path / "x.json")],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "other songs" in res.stderr


def test_ensemble_scores_the_mean_of_the_runs_probabilities(tmp_path: Path) -> None:
    folds = {1: ["0001", "0002"], 2: ["0003"]}
    a, b = _run(tmp_path / "a", folds, 0), _run(tmp_path / "b", folds, 1)
    out = tmp_path / "q.json"
    res = subprocess.run([sys.executable, str(REPO / "bench/quality_partial.py"), "--baseline", str(a),
                          "--ensemble", f"mean={a}+{b}", "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    from iad_tf.evaluation.predictions import load_predictions

    y, p = [], []
    for k in (1, 2):
        ta, tb = load_predictions(a / f"fold-{k}" / "oof.npz")[0], load_predictions(b / f"fold-{k}" / "oof.npz")[0]
        for x, z in zip(ta, tb, strict=True):
            y.append(x.labels)
            p.append((x.probs + z.probs) / 2)
    y, p = np.concatenate(y), np.concatenate(p)
    want = np.mean([average_precision_score(y[:, i], p[:, i]) for i in range(3)])
    got = json.loads(out.read_text())["recipes"]["mean"]
    assert abs(got["map"] - want) < 1e-6 and got["run_dir"] == "a+b"

    other = _run(tmp_path / "other", {1: ["0001", "0009"], 2: ["0003"]}, 2)
    res = subprocess.run([sys.executable, str(REPO / "bench/quality_partial.py"), "--baseline", str(a),
                          "--ensemble", f"bad={a}+{other}", "--out", str(tmp_path / "x.json")],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "differs between the runs" in res.stderr
