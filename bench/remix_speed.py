"""Benchmark: ``iad-tf remix --across-songs`` throughput on the AAM sample, workers 1 and 2.

Not a unit test. Each arm renders the same planned tracks (same seed) into a fresh folder in
its own subprocess (imports included), arms interleaved round by round so that load from other
processes hits them alike. Reported per arm: wall seconds, CPU seconds of the process tree,
and rendered seconds of audio per wall second (the number the data engine is sized by) and per
CPU second (what it costs independently of other load on a shared machine). The
``pitch`` arm adds ``--pitch-shift 2`` (a phase-vocoder transposition of most stems).

Usage: ``python bench/remix_speed.py [--aam-root DIR] [--tracks 8] [--duration 30]
[--rounds 2]``; writes ``bench/results/remix_speed.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "aam-sample"
ARMS: dict[str, list[str]] = {
    "workers_1": ["--workers", "1"],
    "workers_2": ["--workers", "2"],
    "workers_2_pitch_shift_2": ["--workers", "2", "--pitch-shift", "2"],
}


def run_arm(root: Path, out: Path, tracks: int, duration: float, extra: list[str]) -> dict[str, float]:
    """One ``iad-tf remix --across-songs`` run: wall and CPU seconds (children)."""
    cmd = [sys.executable, "-m", "iad_tf", "remix", "--aam-root", str(root), "--out", str(out),
           "--across-songs", str(tracks), "--duration", str(duration), "--seed", "0", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aam-root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--tracks", type=int, default=8)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "remix_speed.json")
    args = ap.parse_args()
    audio_s = args.tracks * args.duration
    runs: dict[str, list[dict[str, float]]] = {a: [] for a in ARMS}
    load = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for arm, extra in ARMS.items():
                out = Path(tmp) / f"{arm}-{r}"
                load.append(os.getloadavg()[0])
                runs[arm].append(run_arm(args.aam_root, out, args.tracks, args.duration, extra))
                shutil.rmtree(out, ignore_errors=True)
    result = {
        "what": "iad-tf remix --across-songs on the AAM sample (mp3 stems, 44.1 kHz FLAC out), "
                "seconds of audio rendered per wall second, process start and imports included",
        "tracks": args.tracks,
        "duration_s": args.duration,
        "audio_s_per_run": audio_s,
        "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_1min_during": [round(x, 2) for x in load]},
        "arms": {
            arm: {
                "wall_s": [round(x["wall_s"], 2) for x in rs],
                "cpu_s": [round(x["cpu_s"], 2) for x in rs],
                "audio_s_per_wall_s_median": round(audio_s / statistics.median(x["wall_s"] for x in rs), 2),
                "audio_s_per_cpu_s_median": round(audio_s / statistics.median(x["cpu_s"] for x in rs), 2),
            }
            for arm, rs in runs.items()
        },
    }
    from results_io import write_result

    write_result(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
