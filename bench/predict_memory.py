"""Peak memory and wall time of ``iad-tf predict`` on long recordings (10, 60, 180 minutes).

Not a unit test. The inputs are built in a temporary folder by tiling a sample AAM mix
(decoded once, written block by block, so building them takes little memory): FLAC by
default. Each run is ``python -m iad_tf predict FILE --threads 1 --out DIR --model M`` in a
fresh process; its peak resident set comes from ``os.wait4`` (``ru_maxrss`` of that child),
its wall time from the clock around it and its CPU time (user + sys, from the same
``wait4``: less sensitive than wall time to other jobs on a shared machine). Target: under 500 MB for every length, flat in the
length (the per-frame probabilities, ~58 MB float32 for 3 hours, are the only part that may
grow).

``--old-ref REF`` also runs the same command on another commit of this repository
(``git archive REF`` into the temporary folder; e.g. the last commit before block-wise
predict) on the ``--old-minutes`` lengths, and times both versions on the 3-minute sample
track, interleaved (``--repeats`` each), so old and new meet under the same machine load.

    python bench/predict_memory.py [--minutes 10 60 180] [--old-ref REF] [--old-minutes 10 60]
Results -> bench/results/predict_memory.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "predict_memory.json"
SAMPLE = REPO.parent / "shared" / "aam-sample" / "audio-mixes-mp3"
DEFAULT_MIX = SAMPLE / "1941_mix.mp3"  # 181 s, 44.1 kHz mono
DEFAULT_MODEL = REPO / "saved_models" / "iad_tf_crnn.tflite"
TARGET_MB = 500.0


def build_long_file(mix: np.ndarray, sr: int, minutes: float, path: Path) -> Path:
    """Write ``minutes`` of ``mix`` (samples,) repeated end to end to ``path``, block by block."""
    import soundfile as sf

    total = int(round(minutes * 60 * sr))
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        written = 0
        while written < total:
            block = mix[: total - written]
            f.write(block)
            written += block.shape[0]
    return path


def run_predict(code: Path, audio: Path, model: Path, out: Path) -> dict[str, float]:
    """One ``iad-tf predict`` in a fresh process: wall seconds and peak RSS (MB)."""
    env = dict(os.environ, PYTHONPATH=str(code))
    cmd = [sys.executable, "-m", "iad_tf", "predict", str(audio), "--threads", "1"]
    cmd += ["--out", str(out), "--model", str(model)]
    log = out.with_name(out.name + ".stderr")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=err)
        # wait4, not wait(): it returns this child's own resource usage (ru_maxrss in KB)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"predict ({code}) failed on {audio}: {log.read_text()[-1500:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def export_ref(ref: str, dest: Path) -> Path:
    """The tree of commit ``ref`` of this repository, unpacked into ``dest``."""
    dest.mkdir(parents=True)
    archive = dest.with_suffix(".tar")
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", ref], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    return dest


def time_3min(codes: dict[str, Path], track: Path, model: Path, out: Path, repeats: int) -> dict:
    """Wall time and real-time factor of each code version on ``track``, interleaved."""
    import soundfile as sf

    duration = sf.info(str(track)).duration
    walls: dict[str, list[float]] = {k: [] for k in codes}
    cpus: dict[str, list[float]] = {k: [] for k in codes}
    rss: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(repeats):
        for name, code in codes.items():
            r = run_predict(code, track, model, out / name)
            walls[name].append(r["wall_s"])
            cpus[name].append(r["cpu_s"])
            rss[name].append(r["peak_rss_mb"])
    return {
        "track": str(track),
        "duration_s": round(duration, 2),
        **{
            name: {
                "wall_s": w,
                "best_s": min(w),
                "median_s": statistics.median(w),
                "rtf_best": round(duration / min(w), 1),
                "rtf_median": round(duration / statistics.median(w), 1),
                "cpu_s": cpus[name],
                "rtf_cpu_best": round(duration / min(cpus[name]), 1),
                "peak_rss_mb": max(rss[name]),
            }
            for name, w in walls.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="*", default=[10, 60, 180])
    ap.add_argument("--mix", type=Path, default=DEFAULT_MIX, help="audio file to tile")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--format", choices=["flac", "wav"], default="flac")
    ap.add_argument("--old-ref", default=None, help="also run this git commit (e.g. 3869ae0)")
    ap.add_argument("--old-minutes", type=float, nargs="*", default=[10, 60])
    ap.add_argument("--repeats", type=int, default=3, help="3-minute timing runs per version")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from results_io import write_result

    from iad_tf.audio import decode

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    mix, sr = decode(args.mix)
    runs = []
    with tempfile.TemporaryDirectory(prefix="iad-tf-bench-mem-") as tmp_s:
        tmp = Path(tmp_s)
        codes = {"new": REPO}
        if args.old_ref:
            codes["old"] = export_ref(args.old_ref, tmp / "old-code")
        rtf = time_3min(codes, args.mix, args.model, tmp / "pred-3min", args.repeats)
        for minutes in sorted(args.minutes):
            t = time.perf_counter()
            audio = build_long_file(mix, sr, minutes, tmp / f"long_{minutes:g}min.{args.format}")
            built = round(time.perf_counter() - t, 1)
            for name, code in codes.items():
                if name == "old" and minutes not in args.old_minutes:
                    continue
                print(f"{name}: predict {audio.name} ...", flush=True)
                r = run_predict(code, audio, args.model, tmp / f"pred-{name}")
                r["rtf"] = round(minutes * 60 / r["wall_s"], 1)
                runs.append(
                    {
                        "code": name,
                        "minutes": minutes,
                        "file_mb": round(audio.stat().st_size / 1e6, 1),
                        "build_s": built,
                        **r,
                    }
                )
                print(f"  {runs[-1]}", flush=True)
            audio.unlink()

    new = {r["minutes"]: r["peak_rss_mb"] for r in runs if r["code"] == "new"} or {0: 0.0}
    result = {
        "mix": str(args.mix),
        "sample_rate": sr,
        "input_format": f"{args.format} (mono, 16-bit, the mix tiled)",
        "model": str(args.model),
        "command": "python -m iad_tf predict FILE --threads 1 --out DIR --model MODEL",
        "old_ref": args.old_ref,
        "runs": runs,
        "peak_rss_mb_new": {f"{k:g}": v for k, v in new.items()},
        "growth_mb_new": round(max(new.values()) - min(new.values()), 1),
        "target_peak_rss_mb": TARGET_MB,
        "target_met": all(v < TARGET_MB for v in new.values()),
        "three_minutes": rtf,
        "target_rtf": 200,
        "niceness": os.nice(0),
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "machine": f"{platform.machine()}, {platform.platform()}",
        "total_s": round(time.perf_counter() - t_start, 1),
        "note": "shared machine with other jobs running: wall times (and RTF) are noisy; "
        "peak RSS is not",
    }
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
