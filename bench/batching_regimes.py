"""Whole tracks vs random windows: CRNN validation F1 after the same training wall time.

Trains the default CRNN with each ``--batching`` for ``--minutes`` (stopping at the first
epoch end past the budget), and records steps/s, epochs done and the best validation metrics.
Results -> bench/results/batching_regimes.json; run dirs under ``--runs``.

    python bench/batching_regimes.py --records bench/work/sample-records --minutes 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "batching_regimes.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default=str(REPO / "bench" / "work" / "sample-records"))
    ap.add_argument("--runs", type=Path, default=REPO / "bench" / "work" / "regimes")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument(
        "--only",
        choices=["tracks", "windows"],
        help="Run one regime (results merged into the file).",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras

    from iad_tf.training.config import TrainConfig
    from iad_tf.training.fit import fit

    class TimeBudget(keras.callbacks.Callback):
        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds, self.t0, self.steps = seconds, 0.0, 0

        def on_train_begin(self, logs=None) -> None:
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None) -> None:
            self.steps += 1

        def on_epoch_end(self, epoch, logs=None) -> None:
            if time.perf_counter() - self.t0 > self.seconds:
                self.model.stop_training = True

    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results.update({"records": str(Path(args.records).resolve()), "minutes": args.minutes})
    results.setdefault("regimes", {})
    for batching in [args.only] if args.only else ["windows", "tracks"]:
        run_dir = args.runs / f"crnn-{batching}"
        shutil.rmtree(run_dir, ignore_errors=True)
        budget = TimeBudget(args.minutes * 60)
        cfg = dataclasses.replace(TrainConfig(), batching=batching, epochs=1000, patience=1000)
        t0 = time.perf_counter()
        res = fit(args.records, run_dir, "crnn", cfg, verbose=0, extra_callbacks=[budget])
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        train_s = sum(r["time_s"] for r in rows)
        results["regimes"][batching] = {
            "run_dir": str(run_dir),
            "epochs": res.epochs_run,
            "steps": budget.steps,
            "wall_seconds": round(wall, 1),
            "steps_per_s_incl_validation": round(budget.steps / train_s, 3),
            "best_epoch": res.best_epoch,
            "best": {k: round(v, 4) for k, v in res.best.items() if k.startswith("val_")},
            "last": {k: round(v, 4) for k, v in rows[-1].items() if k.startswith("val_")},
        }
        print(batching, json.dumps(results["regimes"][batching]))
    from results_io import write_result

    write_result(args.out, results)


if __name__ == "__main__":
    main()
