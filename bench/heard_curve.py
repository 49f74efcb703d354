"""How good is an instrument on unheard songs, by how many training songs it was heard in?

    python bench/heard_curve.py --run NAME=DIR [--run NAME=DIR ...]
                                [--out bench/results/heard_curve.json]

Issue 18's targets are out-of-fold scores on the 12 sample songs. For every finished cv run,
fold f and instrument c present in f's held-out songs, this pairs c's average precision on the
fold's held-out frames (pooled over its songs) with the number of real songs of the OTHER folds
that hold c: the real songs whose recordings fold f's model heard (its remixes and generated
songs come only from those songs' stems, by construction of the folds' provenance). Frames of
absent instruments count as negatives, as in the pooled OOF mAP. Each (fold, instrument) is one
point; groups by the number of songs heard give the dose-response curve: what one, two or more
heard songs are worth on songs never heard. Chance level of AP is the share of positive frames
(``prevalence``), reported beside it. Every run must hold all its folds (all songs predicted
once).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quality_partial import load_folds  # noqa: E402
from results_io import write_result  # noqa: E402

#: Groups of "real songs heard" (inclusive bounds), in the order reported.
GROUPS: tuple[tuple[str, int, int], ...] = (
    ("0", 0, 0), ("1", 1, 1), ("2", 2, 2), ("3-4", 3, 4), ("5+", 5, 10**6))


def group_of(n: int) -> str:
    return next(name for name, lo, hi in GROUPS if lo <= n <= hi)


def points(folds: dict[int, list[Any]], classes: list[str]) -> list[dict[str, Any]]:
    """One point per (fold, instrument present in the fold's held-out songs): its AP on the
    fold's frames, its prevalence there, and the number of other folds' songs holding it."""
    from sklearn.metrics import average_precision_score

    present = {k: [t.labels.max(axis=0) > 0 for t in tracks] for k, tracks in folds.items()}  # per song (C,)
    out = []
    for k, tracks in sorted(folds.items()):
        heard = sum((p.astype(int) for j in folds if j != k for p in present[j]), np.zeros(len(classes), int))
        y = np.concatenate([t.labels for t in tracks])  # (frames, C)
        p = np.concatenate([t.probs for t in tracks])
        for c in np.flatnonzero(y.sum(axis=0) > 0):
            out.append({
                "fold": int(k), "instrument": classes[c], "heard_songs": int(heard[c]),
                "held_out_songs": int(sum(s[c] for s in present[k])),
                "ap": float(average_precision_score(y[:, c], p[:, c])),
                "prevalence": float(y[:, c].mean()),
            })
    return out


def curve(pts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per group of songs heard: number of points, mean AP, mean chance level, instruments."""
    out: dict[str, dict[str, Any]] = {}
    for name, _, _ in GROUPS:
        members = [p for p in pts if group_of(p["heard_songs"]) == name]
        if members:
            out[name] = {
                "points": len(members),
                "mean_ap": round(float(np.mean([p["ap"] for p in members])), 4),
                "mean_prevalence": round(float(np.mean([p["prevalence"] for p in members])), 4),
                "instruments": sorted({p["instrument"] for p in members}),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="NAME=DIR of a finished cv run")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "heard_curve.json")
    args = ap.parse_args()
    runs: dict[str, Any] = {}
    all_points: list[dict[str, Any]] = []
    for spec in args.run:
        name, _, path = spec.partition("=")
        folds, classes = load_folds(Path(path))
        expected = json.loads((Path(path) / "cv.json").read_text()).get("folds")
        if not folds or (expected is not None and len(folds) != len(expected)):
            raise SystemExit(f"{path}: not every fold is finished")
        pts = points(folds, classes)
        runs[name] = {"run_dir": Path(path).name, "curve": curve(pts), "points": pts}
        all_points += pts
        print(name, json.dumps({g: (v["points"], v["mean_ap"], v["mean_prevalence"])
                                for g, v in runs[name]["curve"].items()}))
    result = {
        "what": "AP of an instrument on a fold's held-out songs by the number of real training songs "
                "(other folds) that hold it; chance level = prevalence",
        "runs": runs,
        "pooled": curve(all_points),
    }
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
