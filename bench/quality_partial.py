"""Recipes compared on the folds every run has finished: out-of-fold scores of a subset of
a cross-validation's folds, each run beside the same folds of a baseline run.

    python bench/quality_partial.py --baseline DIR --run NAME=DIR [--run NAME=DIR ...]
                                    [--folds 1,2] [--out bench/results/quality_partial.json]

When machine time allows only part of each recipe's ``iad-tf cv`` (cv resumes fold by fold,
so a run stopped after fold k can be completed later), this scores the finished folds: pooled
OOF mAP over the instruments present in those folds' songs, the mAP over the instruments that
play in >= 2 of the baseline's songs (all folds: "heard elsewhere"), frame micro / macro F1 at
0.5, and per-class AP. Every number is from the saved ``fold-K/oof.npz`` files; nothing is
trained or tuned. Fewer songs than a full cross-validation: the spread between seeds is larger,
say so when quoting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def fold_predictions(run: Path, folds: list[int]) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Pooled (labels (N, C), probs (N, C)), the classes and the track ids of ``folds``."""
    from iad_tf.evaluation.predictions import load_predictions

    ys, ps, ids = [], [], []
    classes: list[str] = []
    for k in folds:
        tracks, classes = load_predictions(run / f"fold-{k}" / "oof.npz")
        for t in tracks:
            ys.append(t.labels)
            ps.append(t.probs)
            ids.append(t.track_id)
    return np.concatenate(ys), np.concatenate(ps), classes, ids


def finished_folds(run: Path) -> list[int]:
    return sorted(int(p.parent.name.split("-")[1]) for p in run.glob("fold-*/oof.npz"))


def songs_per_class(run: Path) -> np.ndarray:
    """(C,) number of songs of every finished fold of ``run`` in which each class plays."""
    from iad_tf.evaluation.predictions import load_predictions

    counts = None
    for k in finished_folds(run):
        tracks, _ = load_predictions(run / f"fold-{k}" / "oof.npz")
        for t in tracks:
            here = (t.labels.max(axis=0) > 0).astype(int)
            counts = here if counts is None else counts + here
    assert counts is not None
    return counts


def score(y: np.ndarray, p: np.ndarray, classes: list[str], heard: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score

    from iad_tf.metrics import f1_from_counts

    present = np.flatnonzero(y.sum(axis=0) > 0)
    ap = {classes[i]: float(average_precision_score(y[:, i], p[:, i])) for i in present}
    d = p >= 0.5
    yb = y.astype(bool)
    tp, fp, fn = (d & yb).sum(0), (d & ~yb).sum(0), (~d & yb).sum(0)
    per_class = f1_from_counts(tp, fp, fn)
    micro = float(f1_from_counts(np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()]))[0])
    return {
        "map": float(np.mean(list(ap.values()))),
        "map_in_2plus_songs": float(np.mean([ap[classes[i]] for i in present if heard[i] >= 2])),
        "f1_micro_at_0.5": micro,
        "f1_macro_at_0.5": float(np.mean(per_class[present])),
        "ap_per_class": {k: round(v, 4) for k, v in ap.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="a finished cv run dir (all folds)")
    ap.add_argument("--baseline-name", default="baseline")
    ap.add_argument("--run", action="append", default=[], help="NAME=DIR of a (partly) finished cv run")
    ap.add_argument("--folds", default=None, help="folds to score, e.g. 1,2 (default: those every run finished)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quality_partial.json")
    args = ap.parse_args()
    from results_io import write_result

    runs = dict(item.split("=", 1) for item in args.run)
    runs = {name: Path(d) for name, d in runs.items()}
    if args.folds:
        folds = [int(k) for k in args.folds.split(",")]
    else:
        common = set(finished_folds(args.baseline))
        for d in runs.values():
            common &= set(finished_folds(d))
        folds = sorted(common)
    if not folds:
        raise SystemExit("no fold finished by every run")
    heard = songs_per_class(args.baseline)
    result: dict[str, Any] = {"folds": folds, "baseline": args.baseline_name, "recipes": {}}
    ids_ref = None
    for name, d in {args.baseline_name: args.baseline, **runs}.items():
        y, p, classes, ids = fold_predictions(d, folds)
        if ids_ref is None:
            ids_ref = ids
        elif sorted(ids) != sorted(ids_ref):
            raise SystemExit(f"{d}: folds {folds} hold other songs than the baseline's")
        result["recipes"][name] = {"run_dir": d.name, **score(y, p, classes, heard)}
        r = result["recipes"][name]
        print(f"{name:28s} mAP {r['map']:.3f}  mAP(>=2 songs) {r['map_in_2plus_songs']:.3f}  "
              f"micro/macro@0.5 {r['f1_micro_at_0.5']:.3f}/{r['f1_macro_at_0.5']:.3f}")
    result["songs"] = sorted(ids_ref or [])
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
