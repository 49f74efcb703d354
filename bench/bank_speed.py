"""Benchmark: note bank build time and rendering throughput of ``synth --voices bank:DIR``.

Not a unit test. In-process (imports excluded):

* ``bank``: :func:`iad_tf.synth.bank.build_bank` on every song of the AAM sample (12 songs,
  decoding every mp3 stem), ``--workers`` 1 and 2;
* ``render``: :func:`iad_tf.synth.corpus.synthesize` of ``--tracks`` songs of ``--duration``
  seconds from that bank (compose, cut selection, pitch shift, levels, FLAC/ARFF/MIDI writing)
  at 22050 Hz, workers 1 and 2: rendered seconds of audio per wall second.

CPU time (this process and its reaped workers) is reported beside wall time, and the load
average at the start of each arm: the machine is shared, so wall times depend on other jobs.

Usage: ``python bench/bank_speed.py [--aam-root DIR] [--tracks 8] [--duration 30]``; writes
``bench/results/bank_speed.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_ROOT = REPO.parent / "shared" / "aam-sample"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu()
    out = fn()
    return out, {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(_cpu() - c0, 2),
                 "load_1min_at_start": round(load, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aam-root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--tracks", type=int, default=8)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "bank_speed.json")
    args = ap.parse_args()

    from iad_tf.synth.bank import BankConfig, build_bank
    from iad_tf.synth.corpus import SynthConfig, synthesize

    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                              "bank": {}, "render": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for w in (1, 2):
            meta, t = timed(lambda w=w: build_bank([args.aam_root], Path(tmp) / f"bank{w}", BankConfig(), workers=w))
            stem_s = sum(r["seconds"] for r in meta["report"]["instruments"].values())
            result["bank"][f"workers_{w}"] = {**t, "songs": len(meta["songs"]), "cuts": meta["report"]["cuts"],
                                              "seconds_of_notes": round(stem_s, 1)}
        bank = Path(tmp) / "bank1"
        for w in (1, 2):
            cfg = SynthConfig(tracks=args.tracks, seed=0, duration=args.duration, sample_rate=22050,
                              voices=f"bank:{bank}")
            _res, t = timed(lambda w=w, cfg=cfg: synthesize(Path(tmp) / f"songs{w}", cfg, workers=w))
            audio_s = args.tracks * args.duration
            result["render"][f"workers_{w}"] = {**t, "tracks": args.tracks, "audio_s": audio_s,
                                                "audio_s_per_wall_s": round(audio_s / t["wall_s"], 1)}
    from results_io import write_result

    write_result(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
