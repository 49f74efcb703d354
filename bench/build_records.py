"""Benchmark: ``iad-tf build-records --workers 2`` vs a naive serial loop on the AAM sample.

Not a unit test. Arms, each run end to end as its own subprocess (interpreter start and
imports included, as a user would run them), interleaved round by round so that load from
other processes on the machine hits both arms alike:

* ``naive``: for each track ``librosa.load(sr=22050)`` + ``melspectrogram`` +
  ``power_to_db`` + ``np.save`` (the same features, no labels, no records);
* ``build_w1`` / ``build_w2``: ``python -m iad_tf build-records --workers 1|2`` into a fresh
  directory (decode, log-mel, labels, cache, shards, checksums, manifest).

CPU time (user + sys of the arm's process tree) is reported beside wall time: on a machine
shared with other jobs it shows the work each arm does independently of the contention.
Peak memory is the largest resident set of any process of the arm
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` measured in a wrapper process).

``--repeat K`` runs every arm on K copies of each track (symlinks under new ids) to show
how the fixed costs (interpreter start, imports, fork server) amortise on larger inputs.

Usage: ``python bench/build_records.py [--aam-root DIR] [--rounds 3] [--repeat 1]``; writes
``bench/results/build_records.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "aam-sample"

NAIVE = r"""
import glob, os, sys
import librosa, numpy as np
root, out = sys.argv[1], sys.argv[2]
for p in sorted(glob.glob(os.path.join(root, "audio-mixes-mp3", "*_mix.mp3"))):
    y, sr = librosa.load(p, sr=22050)
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128)
    np.save(os.path.join(out, os.path.basename(p) + ".npy"),
            librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None))
"""

# Runs one command, reports wall time and the peak RSS of its process tree (KiB on Linux).
# It is a child subreaper (Linux prctl), so processes orphaned by the arm (a multiprocessing
# fork server and its workers) are reparented to it and reaped: their CPU time and memory count.
WRAPPER = r"""
import ctypes, json, os, resource, subprocess, sys, time
try:
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
while True:  # reap orphaned descendants (they exit once the arm's main process is gone)
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mb": ru.ru_maxrss / 1024}))
"""


def repeated_root(src: Path, dest: Path, k: int) -> Path:
    """An AAM root with ``k`` symlinked copies of every track of ``src`` (ids ``<id>r<j>``)."""
    for sub in ("audio-mixes-mp3", "annotations"):
        (dest / sub).mkdir(parents=True)
        for p in sorted((src / sub).iterdir()):
            tid, rest = p.name.split("_", 1)
            for j in range(k):
                (dest / sub / f"{tid}r{j}_{rest}").symlink_to(p.resolve())
    return dest


def run_arm(cmd: list[str]) -> dict:
    res = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["rc"] != 0:
        raise RuntimeError(f"{cmd} exited with {out['rc']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aam-root", type=Path, default=Path(os.environ.get("IAD_TF_AAM_SAMPLE", DEFAULT_ROOT)))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1, help="copies of each track (symlinked, new ids)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "build_records.json")
    args = ap.parse_args()
    if not list((args.aam_root / "audio-mixes-mp3").glob("*_mix.mp3")):
        sys.exit(f"{args.aam_root}: no audio-mixes-mp3/*_mix.mp3")

    arms = ("naive", "build_w1", "build_w2")
    runs: dict[str, list[dict]] = {a: [] for a in arms}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        if args.repeat > 1:
            args.aam_root = repeated_root(args.aam_root, Path(tmp) / "aam", args.repeat)
        n_tracks = len(list((args.aam_root / "audio-mixes-mp3").glob("*_mix.mp3")))
        for r in range(args.rounds):
            order = arms if r % 2 == 0 else tuple(reversed(arms))
            for arm in order:
                dest = Path(tmp) / f"{arm}-{r}"
                if arm == "naive":
                    dest.mkdir()
                    cmd = [sys.executable, "-c", NAIVE, str(args.aam_root), str(dest)]
                else:
                    workers = arm[-1]
                    cmd = [sys.executable, "-m", "iad_tf", "build-records", "--aam-root", str(args.aam_root),
                           "--out", str(dest), "--workers", workers]
                res = run_arm(cmd)
                res["tracks_per_s"] = n_tracks / res["wall_s"]
                runs[arm].append(res)
                print(f"round {r}: {arm:9s} {res['wall_s']:6.2f} s  {res['tracks_per_s']:5.2f} tracks/s  "
                      f"cpu {res['cpu_s']:6.2f} s  peak {res['peak_rss_mb']:7.1f} MB  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                shutil.rmtree(dest, ignore_errors=True)

    summary = {
        arm: {
            "median_wall_s": statistics.median(x["wall_s"] for x in rs),
            "median_tracks_per_s": statistics.median(x["tracks_per_s"] for x in rs),
            "median_cpu_s": statistics.median(x["cpu_s"] for x in rs),
            "peak_rss_mb": max(x["peak_rss_mb"] for x in rs),
        }
        for arm, rs in runs.items()
    }
    per_round = [
        runs["build_w2"][r]["tracks_per_s"] / runs["naive"][r]["tracks_per_s"] for r in range(args.rounds)
    ]
    result = {
        "what": "end-to-end wall time on the AAM sample, each arm a fresh subprocess, arms interleaved",
        "tracks": n_tracks,
        "repeat": args.repeat,
        "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_at_end": os.getloadavg()},
        "summary": summary,
        "speedup_w2_vs_naive_median": summary["build_w2"]["median_tracks_per_s"] / summary["naive"]["median_tracks_per_s"],
        "speedup_w2_vs_naive_per_round": per_round,
        "speedup_w2_vs_w1_median": summary["build_w2"]["median_tracks_per_s"] / summary["build_w1"]["median_tracks_per_s"],
        "target": 1.7,
        "runs": runs,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    from results_io import write_result

    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("summary", "speedup_w2_vs_naive_median",
                                             "speedup_w2_vs_naive_per_round", "speedup_w2_vs_w1_median")}, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
