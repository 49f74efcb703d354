"""Benchmark: ``build-records --runner beam`` (DirectRunner, multi-processing, 2 workers) vs
the local process pool (``--workers 2``) on the AAM sample.

Not a unit test; needs the beam extra (``pip install 'iad-tf[beam]'``). Each arm runs end to
end as its own subprocess (interpreter start and imports included, as a user would run it),
arms interleaved round by round with alternating order so that load from other processes
hits both alike. After every round the two manifests are compared (all keys except the
shard checksums and package versions) to make sure both arms did the same work.

Usage: ``python bench/beam_vs_local.py [--aam-root DIR] [--rounds 3]``; writes
``bench/results/beam_vs_local.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "aam-sample"
BEAM_FLAGS = "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"
ARMS: dict[str, list[str]] = {
    "local_w2": ["--workers", "2"],
    "beam_direct_mp2": ["--runner", "beam", "--beam-options", BEAM_FLAGS],
}
SAME_KEYS = ("splits", "tracks", "frames", "class_track_counts", "class_active_frames", "mel_stats", "skipped")


def run_arm(root: Path, out: Path, extra: list[str]) -> dict[str, float]:
    """Run one build and return its wall time. (CPU time is not reported: the local pool's
    fork-server workers are not reaped by the build process, so rusage would miss them.)"""
    cmd = [sys.executable, "-m", "iad_tf", "build-records", "--aam-root", str(root), "--out", str(out), *extra]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return {"wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aam-root", type=Path, default=Path(os.environ.get("IAD_TF_AAM_SAMPLE", DEFAULT_ROOT)))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "beam_vs_local.json")
    args = ap.parse_args()
    try:
        import apache_beam
    except ImportError:
        sys.exit("apache-beam is not installed: pip install 'iad-tf[beam]'")

    runs: dict[str, list[dict[str, float]]] = {a: [] for a in ARMS}
    n_tracks = 0
    with tempfile.TemporaryDirectory(prefix="bench-beam-") as tmp:
        for r in range(args.rounds):
            order = list(ARMS) if r % 2 == 0 else list(reversed(ARMS))
            manifests = {}
            for arm in order:
                out = Path(tmp) / f"{arm}-{r}"
                runs[arm].append(run_arm(args.aam_root, out, ARMS[arm]))
                manifests[arm] = json.loads((out / "manifest.json").read_text())
                print(f"round {r + 1}: {arm:16s} {runs[arm][-1]['wall_s']:7.2f} s", file=sys.stderr)
            a, b = (manifests[k] for k in ARMS)
            diff = [k for k in SAME_KEYS if a[k] != b[k]]
            if diff:
                raise RuntimeError(f"round {r + 1}: the arms' manifests differ in {diff}")
            n_tracks = len(a["tracks"])

    med = {arm: statistics.median(x["wall_s"] for x in rs) for arm, rs in runs.items()}
    # Same-round ratios cancel most of the machine's load swings between rounds.
    per_round = [b["wall_s"] / a["wall_s"] for a, b in zip(runs["local_w2"], runs["beam_direct_mp2"], strict=True)]
    result = {
        "what": "build-records wall time on the AAM sample: Beam DirectRunner (multi_processing, "
                "2 workers) vs the local pool (2 workers); fresh subprocess per run, arms interleaved",
        "tracks": n_tracks,
        "rounds": args.rounds,
        "beam_flags": BEAM_FLAGS,
        "versions": {"apache_beam": apache_beam.__version__, "python": platform.python_version()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_at_end": list(os.getloadavg())},
        "summary": {
            arm: {"median_wall_s": med[arm], "min_wall_s": min(x["wall_s"] for x in rs),
                  "median_tracks_per_s": n_tracks / med[arm]}
            for arm, rs in runs.items()
        },
        "ratio_beam_over_local_median_wall": med["beam_direct_mp2"] / med["local_w2"],
        "ratio_per_round": per_round,
        "median_ratio_per_round": statistics.median(per_round),
        "manifests_equal": list(SAME_KEYS),
        "runs": runs,
    }
    from results_io import write_result

    write_result(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
