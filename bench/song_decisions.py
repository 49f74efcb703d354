"""Song-level presence learned from out-of-fold predictions vs the tuned presence gate.

    python bench/song_decisions.py --run NAME=DIR [--run NAME=DIR ...]
                                   [--out bench/results/song_decisions.json]

Issue 18 item 4: the bass choice and the piano trio are song-level questions. Today's decoder
(``presence_bass_required``) keeps an instrument when the mean of its top N seconds of frame
probabilities reaches one tuned threshold, and exactly one bass, ranked by a tuned pooling.
The learned alternative here: a class-agnostic logistic regression on each (song, instrument)
pair's pooled scores (log-odds of the mean of its top 1 / 3 / 10 / 30 s and of the whole song,
and the fraction of frames >= 0.5) predicts whether the instrument plays in the song; a
presence threshold on its probability, exactly one bass (the most probable), and the frame
threshold are tuned on the tuning folds by the same objective as the decoder's.

Both are cross-fitted the same way (fold f's songs are decided with a regression and thresholds
fitted on the other folds' OOF predictions only) and scored on the same pooled frames, per
finished ``iad-tf cv`` run (its ``fold-K/oof.npz``). Nothing is trained beyond the regression.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Pooled scores of one (song, instrument): top-seconds means, then the fraction >= 0.5.
POOL_SECONDS: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 600.0)
FEATURE_SETS: dict[str, tuple[int, ...]] = {
    "all six": (0, 1, 2, 3, 4, 5),
    "top 1 s, top 30 s, whole song": (0, 3, 4),
    "top 30 s only": (3,),
}
TAU_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def song_features(probs: np.ndarray, frame_seconds: float) -> np.ndarray:
    """(C, 6): log-odds of the top-seconds means (:data:`POOL_SECONDS`) and the fraction of
    frames >= 0.5 of one song's probabilities (frames, C)."""
    from iad_tf.postprocess import presence_scores

    cols = []
    for s in POOL_SECONDS:
        p = np.clip(presence_scores(probs, max(1, int(round(s / frame_seconds)))), 1e-4, 1 - 1e-4)
        cols.append(np.log(p / (1 - p)))
    cols.append((probs >= 0.5).mean(axis=0))
    return np.stack(cols, axis=1)


def crossfit_learned(tracks: Sequence[Any], counts: Sequence[Any], fold_of: dict[str, int],
                     classes: Sequence[str], frame_seconds: float, median_window: int,
                     features: tuple[int, ...]) -> list[np.ndarray]:
    """Cross-fitted decisions (frames, C) per track with the learned presence (``counts``: the
    tracks' :func:`iad_tf.evaluation.cv_report.song_counts`)."""
    from sklearn.linear_model import LogisticRegression

    from iad_tf.config import AAM_BASS
    from iad_tf.evaluation.cv_report import THRESHOLD_GRID, tuning_objective
    from iad_tf.postprocess import Presence, decide, gate

    basses = (tuple(list(classes).index(c) for c in AAM_BASS if c in classes),)
    x = [song_features(t.probs, frame_seconds)[:, features] for t in tracks]
    y = [(t.labels.max(axis=0) > 0).astype(int) for t in tracks]
    out: list[np.ndarray] = [np.empty(0)] * len(tracks)
    for f in sorted(set(fold_of.values())):
        tune = [i for i, t in enumerate(tracks) if fold_of[t.track_id] != f]
        reg = LogisticRegression(C=1.0, max_iter=2000).fit(
            np.concatenate([x[i] for i in tune]), np.concatenate([y[i] for i in tune]))
        prob = {i: reg.predict_proba(x[i])[:, 1] for i in range(len(tracks))}
        tp = np.stack([counts[i].tp for i in tune])
        fp = np.stack([counts[i].fp for i in tune])
        pos = np.stack([counts[i].pos for i in tune]).sum(axis=0)
        best: tuple[float, int, float] | None = None
        for tau in TAU_GRID:
            pres = Presence(float(tau), 1.0, basses, None, True)
            g = np.stack([pres.present_from_scores(prob[i]) for i in tune]).astype(np.int64)
            obj = tuning_objective(np.einsum("sc,stc->tc", g, tp), np.einsum("sc,stc->tc", g, fp), pos)
            j = int(obj.argmax())
            if best is None or obj[j] > best[0] + 1e-12:
                best = (float(obj[j]), j, float(tau))
        assert best is not None
        _, j, tau = best
        pres = Presence(tau, 1.0, basses, None, True)
        for i, t in enumerate(tracks):
            if fold_of[t.track_id] == f:
                out[i] = gate(decide(t.probs, THRESHOLD_GRID[j], median_window), pres.present_from_scores(prob[i]))
    return out


def summary(tracks: Sequence[Any], decisions: Sequence[np.ndarray]) -> dict[str, float]:
    from iad_tf.evaluation.cv_report import score_decisions
    from iad_tf.metrics import F1_MACRO, F1_MICRO

    sc = score_decisions(tracks, decisions)
    return {"f1_micro": round(float(sc[F1_MICRO]), 4), "f1_macro": round(float(sc[F1_MACRO]), 4),
            "instruments_ratio": round(float(sc["instruments_ratio"]), 4)}


def runs_args(doc: str | None, results_name: str) -> argparse.Namespace:
    """The command line of a bench script over finished cv runs: ``--run NAME=DIR`` (repeated),
    ``--median-window``, ``--out`` (default ``bench/results/<results_name>``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="NAME=DIR of a finished cv run")
    ap.add_argument("--median-window", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / results_name)
    return ap.parse_args()


@dataclass
class OOFRun:
    """A finished cv run's out-of-fold predictions, their folds, per-song tuning counts
    (:func:`iad_tf.evaluation.cv_report.song_counts`), classes and frame seconds."""

    tracks: list[Any]
    fold_of: dict[str, int]
    counts: list[Any]
    classes: list[str]
    frame_seconds: float


def load_oof_run(run_dir: Path, median_window: int) -> OOFRun:
    from quality_partial import load_folds

    from iad_tf.config import FeatureConfig
    from iad_tf.evaluation.cv_report import song_counts
    from iad_tf.training.config import read_run_config

    by_fold, classes = load_folds(run_dir)
    if len(by_fold) < 2:
        raise SystemExit(f"{run_dir}: fewer than 2 finished folds")
    tracks = [t for k in sorted(by_fold) for t in by_fold[k]]
    first = run_dir / f"fold-{min(by_fold)}" / "run"
    fs = FeatureConfig.from_dict(read_run_config(first)["feature_config"]).frame_seconds
    fold_of = {t.track_id: k for k in by_fold for t in by_fold[k]}
    counts = [song_counts(t, fs, median_window) for t in tracks]  # once per run
    return OOFRun(tracks, fold_of, counts, classes, fs)


def main() -> None:
    args = runs_args(__doc__, "song_decisions.json")
    from results_io import write_result

    from iad_tf.evaluation.cv_report import crossfit_decisions

    result: dict[str, Any] = {"median_window": args.median_window,
                              "feature_sets": {k: [_feature_name(i) for i in v] for k, v in FEATURE_SETS.items()},
                              "runs": {}}
    for name, d in (item.split("=", 1) for item in args.run):
        r = load_oof_run(Path(d), args.median_window)
        tuned, _ = crossfit_decisions(r.tracks, r.counts, r.fold_of, "presence_bass_required",
                                      r.frame_seconds, args.median_window, r.classes)
        row: dict[str, Any] = {"run_dir": Path(d).name, "songs": len(r.tracks),
                               "tuned_gate": summary(r.tracks, tuned)}
        for fs, idx in FEATURE_SETS.items():
            row[f"learned: {fs}"] = summary(r.tracks, crossfit_learned(
                r.tracks, r.counts, r.fold_of, r.classes, r.frame_seconds, args.median_window, idx))
        result["runs"][name] = row
        for k, v in row.items():
            if isinstance(v, dict):
                print(f"{name:24s} {k:40s} micro {v['f1_micro']:.3f} macro {v['f1_macro']:.3f} "
                      f"ratio {v['instruments_ratio']:.2f}")
    write_result(args.out, result)
    print(f"wrote {args.out}")


def _feature_name(i: int) -> str:
    return f"log-odds of the top {POOL_SECONDS[i]:g} s" if i < len(POOL_SECONDS) else "fraction of frames >= 0.5"


if __name__ == "__main__":
    main()
