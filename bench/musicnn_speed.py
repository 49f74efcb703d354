"""Speed and size of musicnn_crnn (pretrained musicnn front end + GRU head) under `predict`.

Runs bench/predict.py for ``--model-name musicnn_crnn`` (or ``--run`` a trained musicnn_crnn
run): ``iad-tf predict --threads 1`` end to end on a ~3-minute AAM mix, per-stage times, the
same windows through float / quantised TFLite and Keras, and file sizes; then records whether
the issue-14 bars hold: at least 100x real time end to end on one thread and a TFLite model
under 5 MB. The real-time factor is given on wall time and on the predict process's CPU
time (user + system; one thread): on a shared machine the wall time also counts waiting.

    python bench/musicnn_speed.py [--run RUN] [--repeats 3]
Results -> bench/results/musicnn.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "musicnn.json"
MIN_RTF, MAX_MB = 100.0, 5.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--window-frames", type=int, default=256)
    ap.add_argument(
        "--no-crnn", action="store_true", help="skip the default CRNN measured alongside"
    )
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import predict as bench_predict

    def run(model_name: str, out: Path, run_dir: Path | None) -> dict:
        argv = ["--model-name", model_name, "--out", str(out), "--repeats", str(args.repeats)]
        argv += ["--window-frames", str(args.window_frames)]
        argv += ["--run", str(run_dir)] if run_dir is not None else []
        sys.argv = [sys.argv[0], *argv]
        bench_predict.main()
        return json.loads(out.read_text())

    result = run("musicnn_crnn", RESULTS, args.run)
    if not args.no_crnn:  # the shipped architecture under the same machine load, for scale
        crnn = run("crnn", RESULTS.with_name("musicnn_crnn_baseline.tmp.json"), None)
        RESULTS.with_name("musicnn_crnn_baseline.tmp.json").unlink()
        result["crnn_same_session"] = {
            k: crnn[k]
            for k in ("end_to_end_cli_1_thread", "same_windows_1_thread", "load_average_start_end")
        }
    result.pop("target_rtf", None)
    bars = {}
    for name, e2e in result["end_to_end_cli_1_thread"].items():
        size_mb = result["sizes_bytes"][f"tflite_{name}"] / 1e6
        bars[name] = {
            "rtf_best": e2e["rtf_best"],
            "rtf_cpu_best": e2e["rtf_cpu_best"],
            "size_mb": round(size_mb, 2),
            "rtf_at_least_100": e2e["rtf_best"] >= MIN_RTF,
            "rtf_cpu_at_least_100": e2e["rtf_cpu_best"] >= MIN_RTF,
            "size_under_5_mb": size_mb < MAX_MB,
        }
    result["issue14_bars"] = {"min_rtf": MIN_RTF, "max_mb": MAX_MB, "models": bars}
    from results_io import write_result

    write_result(RESULTS, result)
    print(json.dumps(result["issue14_bars"], indent=2))


if __name__ == "__main__":
    main()
