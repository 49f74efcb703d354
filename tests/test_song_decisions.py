"""bench/song_decisions.py: its tuned-gate column reproduces ``iad-tf cv``'s cross-fitted
``presence_bass_required`` scores; the learned presence finds the instruments when the
pooled scores separate them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from iad_tf.config import AAM_BASS, AAM_CLASSES, FeatureConfig
from iad_tf.evaluation.cv_report import cv_report
from iad_tf.evaluation.predictions import TrackPrediction, save_predictions
from iad_tf.fileio import write_json

REPO = Path(__file__).resolve().parents[1]
C = len(AAM_CLASSES)


def _song(song: str, rng: np.random.Generator) -> TrackPrediction:
    frames = 800
    labels = np.zeros((frames, C), dtype=np.uint8)
    playing = rng.choice([c for c in range(C) if AAM_CLASSES[c] not in AAM_BASS], 4, replace=False)
    bass = AAM_CLASSES.index(AAM_BASS[int(rng.integers(len(AAM_BASS)))])
    for c in [*playing, bass]:
        start = int(rng.integers(0, 300))
        labels[start : start + 400, c] = 1
    # players: high probabilities on their frames; others: low noise with short bursts
    probs = rng.random((frames, C)).astype(np.float32) * 0.25
    probs[labels == 1] = 0.55 + 0.4 * rng.random(int(labels.sum()))
    return TrackPrediction(song, probs, labels)


def _run(root: Path) -> tuple[Path, dict[str, int], list[TrackPrediction]]:
    rng = np.random.default_rng(3)
    fold_of, tracks = {}, []
    for k in (1, 2, 3):
        songs = [_song(f"{k}{j:03d}", rng) for j in range(3)]
        save_predictions(root / f"fold-{k}" / "oof.npz", songs, AAM_CLASSES)
        fold_of.update({t.track_id: k for t in songs})
        tracks += songs
    write_json(root / "fold-1" / "run" / "config.json", {"feature_config": FeatureConfig().to_dict()})
    return root, fold_of, tracks


def test_tuned_column_equals_cv_and_learned_presence_finds_the_players(tmp_path: Path) -> None:
    run, fold_of, tracks = _run(tmp_path / "run")
    out = tmp_path / "sd.json"
    res = subprocess.run([sys.executable, str(REPO / "bench/song_decisions.py"), "--run", f"r={run}",
                          "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    row = json.loads(out.read_text())["runs"]["r"]
    rep = cv_report(tracks, AAM_CLASSES, fold_of, FeatureConfig().frame_seconds, 5)
    want = rep["settings"]["presence_bass_required"]["pooled"]
    assert abs(row["tuned_gate"]["f1_micro"] - want["f1_micro"]) < 1e-4
    assert abs(row["tuned_gate"]["f1_macro"] - want["f1_macro"]) < 1e-4
    learned = row["learned: all six"]
    # the pooled scores separate players from the rest: every instrument found, none added
    assert learned["instruments_ratio"] == 1.0 and learned["f1_micro"] > 0.99
