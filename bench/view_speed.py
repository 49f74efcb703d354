"""`iad-tf view`: in-browser time for a 3-minute song next to `predict` on the same machine,
and how far the page's answer is from predict's.

For each model (``--model``, repeatable; default: the model `iad-tf view` picks, i.e. the
waveform-in variant beside the shipped model when one ships, else the shipped log-mel model)
and the same ~3-minute AAM mix, interleaved ``--repeats`` times (the machine is shared):

* browser (LiteRT.js on ``--threads`` threads, 1 by default like predict's): Debian's headless chromium (Playwright) on the page served by `iad-tf view`; the
  page's own clock from the file pick to the finished roll data (decode + resample at the
  model's rate, log-mel in JS for a log-mel model, LiteRT.js WASM windows, stitching,
  thresholds, median window, presence gate), of which the model's share; the first analysis
  of a page (WASM warm-up) is counted;
* predict: `predict_audio` in process after a warm-up (decode, resample, log-mel, LiteRT
  windows, post-processing; the work the page does) and `iad-tf predict` in a fresh process;
* the answer: instrument lists equal?, frame decisions equal (fraction of frame x class
  cells, and of frames whose 31 decisions all agree), probability difference (max, p99, mean).

    python bench/view_speed.py [--model FILE ...] [--track FILE] [--repeats 3] [--screenshot PNG]
Results -> bench/results/view_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from predict import SAMPLE_TRACK  # noqa: E402

from tests.view.harness import CHROMIUM, browser_missing, open_page  # noqa: E402

RESULTS = REPO / "bench" / "results" / "view_speed.json"


def predict_times(track: Path, model: Path, repeats: int) -> tuple[list[float], Any]:
    from iad_tf.inference.litert import load_model
    from iad_tf.inference.predict import predict_audio

    m = load_model(model, threads=1)
    pred = predict_audio(track, m)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        pred = predict_audio(track, m)
        times.append(time.perf_counter() - t)
    return times, pred


def cli_time(track: Path, model: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "iad_tf", "predict", str(track), "--model", str(model),
                        "--out", out, "--threads", "1"], check=True, capture_output=True)
        return time.perf_counter() - t


def compare(page_result: dict[str, Any], pred: Any) -> dict[str, Any]:
    frames = page_result["frames"]
    dec = np.asarray(page_result["decisions"], np.uint8).reshape(frames, -1)
    probs = np.asarray(page_result["probs"], np.float32).reshape(frames, -1)
    d = np.abs(probs - pred.probs)
    same = dec == pred.decisions
    return {
        "frames": frames,
        "decision_cells_equal": round(float(same.mean()), 5),
        "frames_all_equal": round(float(same.all(axis=1).mean()), 5),
        "prob_diff_max": round(float(d.max()), 5),
        "prob_diff_p99": round(float(np.quantile(d, 0.99)), 5),
        "prob_diff_mean": round(float(d.mean()), 6),
    }


def bench_model(
    model: Path, track: Path, repeats: int, screenshot: Path | None, threads: int
) -> dict[str, Any]:
    from iad_tf.view.site import build_site, choose_model

    path, _ = choose_model(model)
    browser: list[dict[str, float]] = []
    predict_s: list[float] = []
    fresh_s: list[float] = []
    answer: dict[str, Any] = {}
    for r in range(repeats):
        with open_page(build_site(model), f"?threads={threads}") as page:
            assert page.analyse(track) == "done", page.message()
            used_threads = page.page.evaluate("iadView.threads")
            res = page.result(arrays=(r == 0))
            browser.append({k.replace("_ms", "_s"): round(float(res["timing"][k]) / 1000, 3)
                            for k in ("total_ms", "model_ms", "logmel_ms", "decode_ms", "decide_ms")})
            if r == 0:
                names = page.instruments()
                if screenshot is not None:
                    page.page.evaluate("document.getElementById('player').currentTime = 60")
                    page.page.wait_for_timeout(300)
                    page.page.mouse.move(600, 330)
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.page.screenshot(path=str(screenshot), full_page=True)
                variant = res["variant"]
                first = res
        times, pred = predict_times(track, path, 1)
        predict_s += times
        fresh_s.append(cli_time(track, path))
        if r == 0:
            answer = compare(first, pred)
            answer["instruments_equal"] = names == [i["instrument"] for i in pred.instruments]
            answer["instruments"] = names
    best_browser = min(b["total_s"] for b in browser)
    return {
        "model": path.name,
        "variant": variant,
        "browser_threads": used_threads,
        "browser_s": browser,
        "browser_best_s": best_browser,
        "predict_in_process_s": [round(t, 3) for t in predict_s],
        "predict_in_process_best_s": round(min(predict_s), 3),
        "predict_fresh_process_s": [round(t, 3) for t in fresh_s],
        "ratio_browser_to_predict_in_process": round(best_browser / min(predict_s), 2),
        "ratio_browser_to_predict_fresh_process": round(best_browser / min(fresh_s), 2),
        "answer": answer,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", default=None)
    ap.add_argument("--track", type=Path, default=SAMPLE_TRACK)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1,
                    help="LiteRT.js threads in the page (predict runs 1) [default: 1]")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    why = browser_missing()
    if why:
        sys.exit(f"cannot run the browser: {why}")
    from iad_tf.audio import load_audio
    from iad_tf.inference.default_model import default_model_path

    models = args.model or [default_model_path()]
    seconds = load_audio(args.track, 22050).shape[0] / 22050
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    results = {
        "track": args.track.name,
        "track_seconds": round(seconds, 1),
        "repeats": args.repeats,
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform(),
                    "chromium": chromium, "load_avg_at_start": __import__("os").getloadavg()},
        "models": [
            bench_model(m, args.track, args.repeats, args.screenshot if i == 0 else None, args.threads)
            for i, m in enumerate(models)
        ],
    }
    from results_io import write_result

    write_result(args.out, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
