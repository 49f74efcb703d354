"""Side-by-side cost of two exported models in ``iad-tf predict``: the shipped default and a
candidate, on the same mix, interleaved in one run (the machine's speed drifts 2-4x between
days, so only a ratio measured together means anything). Issue 18's bar: a new default may
cost at most 1.2x the current one's predict time, and its dynamic-range file stays < 1 MB.

    python bench/ship_speed.py CANDIDATE.tflite [--baseline saved_models/iad_tf_crnn.tflite]
                               [--track MIX] [--repeats 5] [--name ship_speed]

``--name`` writes bench/results/NAME.json: a candidate architecture's cost measured before it is
trained (any weights cost the same) goes beside the shipped model's own ``ship_speed.json``.

Each run is a fresh ``iad-tf predict TRACK --model M --threads 1`` process (wall time, start-up
included). Results -> bench/results/ship_speed.json (file names only, no machine paths).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SAMPLE = Path(os.environ.get("IAD_TF_AAM_SAMPLE", REPO.parent / "shared" / "aam-sample"))


def predict_seconds(model: Path, track: Path, out: Path) -> float:
    cmd = [sys.executable, "-m", "iad_tf", "predict", str(track), "--model", str(model),
           "--threads", "1", "--out", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--baseline", type=Path, default=REPO / "saved_models" / "iad_tf_crnn.tflite")
    ap.add_argument("--track", type=Path, default=SAMPLE / "audio-mixes-mp3" / "1941_mix.mp3")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--name", default="ship_speed", help="results file name (without .json)")
    args = ap.parse_args()
    for p in (args.candidate, args.baseline, args.track):
        if not p.is_file():
            sys.exit(f"{p}: no such file")
    times: dict[str, list[float]] = {"baseline": [], "candidate": []}
    with tempfile.TemporaryDirectory() as tmp:
        predict_seconds(args.baseline, args.track, Path(tmp) / "warm")  # disk cache, imports
        for r in range(args.repeats):
            order = ("baseline", "candidate") if r % 2 == 0 else ("candidate", "baseline")
            for name in order:
                model = args.baseline if name == "baseline" else args.candidate
                times[name].append(predict_seconds(model, args.track, Path(tmp) / f"{name}{r}"))
    result = {
        "track": args.track.name,
        "repeats": args.repeats,
        "load_average": os.getloadavg()[0],
        **{name: {"file": (args.baseline if name == "baseline" else args.candidate).name,
                  "bytes": (args.baseline if name == "baseline" else args.candidate).stat().st_size,
                  "best_s": round(min(t), 3), "median_s": round(statistics.median(t), 3),
                  "runs_s": [round(x, 3) for x in t]} for name, t in times.items()},
    }
    result["ratio_best"] = round(result["candidate"]["best_s"] / result["baseline"]["best_s"], 3)
    result["ratio_median"] = round(result["candidate"]["median_s"] / result["baseline"]["median_s"], 3)
    from results_io import write_result

    write_result(args.out / f"{args.name}.json", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
