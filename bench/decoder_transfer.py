"""Does the decoder transfer between training runs? Two questions on finished cv runs' OOF.

    python bench/decoder_transfer.py --run NAME=DIR --run NAME=DIR [...]
                                     [--out bench/results/decoder_transfer.json]

Issue 18, item 4 (song-level decisions). Two seeds of one recipe gave the same ranking (OOF
mAP 0.330 / 0.335) but very different gated decisions (micro-F1 0.616 / 0.505 at the same
cross-fitted mode), so the presence gate is what varies between training runs. The shipped
model is one more run, whose own OOF predictions no decoder ever sees. Per run X and mode:

* ``own``: X's fold f decided by a decoder tuned on X's other folds (what ``iad-tf cv`` does);
* ``others``: tuned on the OTHER runs' OOF of the songs outside f (leave-run-out: the shipped
  model's situation);
* ``all``: tuned on every run's OOF of the songs outside f;
* ``relative`` / ``relative_top3`` (``own`` tuning): the gate on each song's pooled scores
  divided by the song's highest score / by the mean of its top three (clipped to 1), a
  calibration-free gate.

Every decoder is tuned with :func:`iad_tf.evaluation.cv_report.tune_decoder` on the songs
outside the fold it decides (cross-fitted). The runs must share their song folds.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from song_decisions import OOFRun, load_oof_run, runs_args, summary  # noqa: E402

MODES: tuple[str, ...] = ("presence", "presence_one_bass", "presence_bass_required")
POOLS: tuple[str, ...] = ("own", "others", "all")


def relative(scores: np.ndarray) -> np.ndarray:
    """A song's pooled scores (C,) over its highest one."""
    return scores / max(float(scores.max()), 1e-6)


def relative_top3(scores: np.ndarray) -> np.ndarray:
    """A song's pooled scores (C,) over the mean of its three highest, clipped to 1."""
    return np.minimum(scores / max(float(np.sort(scores)[-3:].mean()), 1e-6), 1.0)


SCORE_MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relative": relative, "relative_top3": relative_top3}


def crossfit(target: OOFRun, pool: Sequence[OOFRun], mode: str, median_window: int,
             score_map: Callable[[np.ndarray], np.ndarray] | None = None) -> list[np.ndarray]:
    """Decisions per track of ``target``: fold f decided by the decoder of ``mode`` tuned on
    the songs outside f of every run in ``pool`` (their pooled scores passed through
    ``score_map`` first, and the same map applied when deciding)."""
    from iad_tf.evaluation.cv_report import tune_decoder
    from iad_tf.postprocess import decide, gate

    def mapped(c: Any) -> Any:
        if score_map is None:
            return c
        return dataclasses.replace(c, scores={k: score_map(v) for k, v in c.scores.items()})

    out: list[np.ndarray] = [np.empty(0)] * len(target.tracks)
    for f in sorted(set(target.fold_of.values())):
        songs = [mapped(r.counts[i]) for r in pool for i, t in enumerate(r.tracks)
                 if r.fold_of[t.track_id] != f]
        dec = tune_decoder(songs, mode, median_window, target.classes)
        for i, t in enumerate(target.tracks):
            if target.fold_of[t.track_id] != f:
                continue
            d = decide(t.probs, dec.thresholds, dec.median_window)
            if dec.presence is not None:
                p, c = dec.presence, mapped(target.counts[i])
                gs = None if p.one_of_seconds is None else c.scores[p.one_of_seconds]
                d = gate(d, p.present_from_scores(c.scores[p.seconds], gs))
            out[i] = d
    return out


def main() -> None:
    args = runs_args(__doc__, "decoder_transfer.json")
    from results_io import write_result

    named = [item.split("=", 1) for item in args.run]
    if len(named) < 2:
        raise SystemExit("give at least two runs (--run NAME=DIR twice)")
    runs = {name: load_oof_run(Path(d), args.median_window) for name, d in named}
    dirs = {name: Path(d).name for name, d in named}
    folds = {n: sorted(r.fold_of.items()) for n, r in runs.items()}
    if len({tuple(v) for v in folds.values()}) != 1:
        raise SystemExit("the runs do not share their song folds")
    result: dict[str, Any] = {"median_window": args.median_window, "modes": list(MODES), "runs": {}}
    for name, run in runs.items():
        row: dict[str, Any] = {"run_dir": dirs[name], "songs": len(run.tracks)}
        pools = {"own": [run], "others": [r for n, r in runs.items() if n != name],
                 "all": list(runs.values())}
        for mode in MODES:
            for pool in POOLS:
                row[f"{mode} {pool}"] = summary(run.tracks, crossfit(
                    run, pools[pool], mode, args.median_window))
            for label, fn in SCORE_MAPS.items():
                row[f"{mode} {label}"] = summary(run.tracks, crossfit(
                    run, [run], mode, args.median_window, fn))
        result["runs"][name] = row
        print(name, {k: v["f1_micro"] for k, v in row.items() if isinstance(v, dict)}, flush=True)
    result["means"] = {
        key: {m: round(float(np.mean([r[key][m] for r in result["runs"].values()])), 4)
              for m in ("f1_micro", "f1_macro", "instruments_ratio")}
        for key in next(iter(result["runs"].values())) if key.startswith(MODES)}
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
