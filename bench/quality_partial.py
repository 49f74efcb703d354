"""Recipes compared on the folds every run has finished: out-of-fold scores of a subset of
a cross-validation's folds, each run beside the same folds of a baseline run.

    python bench/quality_partial.py --baseline DIR --run NAME=DIR [--run NAME=DIR ...]
                                    [--ensemble NAME=DIR+DIR ...]
                                    [--folds 1,2] [--out bench/results/quality_partial.json]

When machine time allows only part of each recipe's ``iad-tf cv`` (cv resumes fold by fold,
so a run stopped after fold k can be completed later), this scores the finished folds: pooled
OOF mAP over the instruments present in those folds' songs, the mAP over the instruments that
play in >= 2 of the baseline's songs (all folds: "heard elsewhere"), frame micro / macro F1 at
0.5, and per-class AP. Every number is from the saved ``fold-K/oof.npz`` files; nothing is
trained or tuned. Fewer songs than a full cross-validation: the spread between seeds is larger,
say so when quoting.

``--ensemble NAME=DIR+DIR`` scores the mean of several runs' probabilities (e.g. two seeds of
one recipe): how much of a recipe's error is the variance of one training run. An ensemble
costs its size in ``predict`` time; it measures, it does not ship.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load_folds(run: Path) -> tuple[dict[int, list[Any]], list[str]]:
    """{fold: its OOF TrackPredictions} of every finished fold of ``run`` (each file read once),
    and the classes."""
    from iad_tf.evaluation.predictions import load_predictions

    folds: dict[int, list[Any]] = {}
    classes: list[str] = []
    for path in sorted(run.glob("fold-*/oof.npz")):
        folds[int(path.parent.name.split("-")[1])], classes = load_predictions(path)
    return folds, classes


def ensemble(runs: list[tuple[dict[int, list[Any]], list[str]]]) -> tuple[dict[int, list[Any]], list[str]]:
    """Folds of the mean probabilities of ``runs`` (same songs and labels, folds all finished)."""
    from iad_tf.evaluation.predictions import TrackPrediction

    first, classes = runs[0]
    out: dict[int, list[Any]] = {}
    for k in sorted(set.intersection(*(set(f) for f, _ in runs))):
        members = [{t.track_id: t for t in f[k]} for f, _ in runs]
        out[k] = []
        for t in first[k]:
            if any(t.track_id not in m or not np.array_equal(m[t.track_id].labels, t.labels) for m in members):
                raise SystemExit(f"ensemble: fold {k} differs between the runs at song {t.track_id}")
            out[k].append(TrackPrediction(t.track_id, np.mean([m[t.track_id].probs for m in members], axis=0),
                                          t.labels))
    return out, classes


def songs_per_class(folds: dict[int, list[Any]]) -> np.ndarray:
    """(C,) number of songs of ``folds`` in which each class plays."""
    return sum((t.labels.max(axis=0) > 0).astype(int) for tracks in folds.values() for t in tracks)


def score(tracks: list[Any], classes: list[str], heard: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score

    from iad_tf.evaluation.thresholds import class_counts
    from iad_tf.metrics import f1_from_counts

    y = np.concatenate([t.labels for t in tracks])
    p = np.concatenate([t.probs for t in tracks])
    present = np.flatnonzero(y.sum(axis=0) > 0)
    ap = {classes[i]: float(average_precision_score(y[:, i], p[:, i])) for i in present}
    tp, fp, fn = class_counts([(t.probs, t.labels) for t in tracks], 0.5)
    micro = float(f1_from_counts(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))[0])
    return {
        "map": float(np.mean(list(ap.values()))),
        "map_in_2plus_songs": float(np.mean([ap[classes[i]] for i in present if heard[i] >= 2])),
        "f1_micro_at_0.5": micro,
        "f1_macro_at_0.5": float(np.mean(f1_from_counts(tp, fp, fn)[present])),
        "ap_per_class": {k: round(v, 4) for k, v in ap.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="a finished cv run dir (all folds)")
    ap.add_argument("--baseline-name", default="baseline")
    ap.add_argument("--run", action="append", default=[], help="NAME=DIR of a (partly) finished cv run")
    ap.add_argument("--ensemble", action="append", default=[],
                    help="NAME=DIR+DIR: the mean probabilities of several runs")
    ap.add_argument("--folds", default=None, help="folds to score, e.g. 1,2 (default: those every run finished)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quality_partial.json")
    args = ap.parse_args()
    from results_io import write_result

    named = {args.baseline_name: args.baseline,
             **{name: Path(d) for name, d in (item.split("=", 1) for item in args.run)}}
    loaded = {name: load_folds(d) for name, d in named.items()}
    for name, dirs in (item.split("=", 1) for item in args.ensemble):
        paths = [Path(d) for d in dirs.split("+")]
        named[name] = Path("+".join(p.name for p in paths))
        loaded[name] = ensemble([load_folds(p) for p in paths])
    if args.folds:
        folds = [int(k) for k in args.folds.split(",")]
    else:
        folds = sorted(set.intersection(*(set(f) for f, _ in loaded.values())))
    if not folds:
        raise SystemExit("no fold finished by every run")
    heard = songs_per_class(loaded[args.baseline_name][0])
    result: dict[str, Any] = {"folds": folds, "baseline": args.baseline_name, "recipes": {}}
    ids_ref = None
    for name, (by_fold, classes) in loaded.items():
        missing = [k for k in folds if k not in by_fold]
        if missing:
            raise SystemExit(f"{named[name]}: fold(s) {missing} not finished")
        tracks = [t for k in folds for t in by_fold[k]]
        ids = sorted(t.track_id for t in tracks)
        if ids_ref is None:
            ids_ref = ids
        elif ids != ids_ref:
            raise SystemExit(f"{named[name]}: folds {folds} hold other songs than the baseline's")
        result["recipes"][name] = {"run_dir": named[name].name, **score(tracks, classes, heard)}
        r = result["recipes"][name]
        print(f"{name:28s} mAP {r['map']:.3f}  mAP(>=2 songs) {r['map_in_2plus_songs']:.3f}  "
              f"micro/macro@0.5 {r['f1_micro_at_0.5']:.3f}/{r['f1_macro_at_0.5']:.3f}")
    result["songs"] = sorted(ids_ref or [])
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
