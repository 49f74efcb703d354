"""On a device: the waveform-in model's sizes and speed next to the two-step path, and the
light install (base dependencies only) next to the full one.

* export (``iad-tf export``'s chain) of ``--run DIR`` or, by default, the default CRNN
  architecture with untrained weights (same sizes and cost per window as a trained one):
  the mel models (float32 + quantised) and the waveform models (float32 + dynamic-range);
  sizes of every ``.tflite`` and the export's own checks (log-mel dB, probability parity);
* end-to-end ``iad-tf predict TRACK --threads 1`` (fresh process: start-up, decode, resample,
  front end, LiteRT windows, post-processing, files) on a ~3-minute AAM mix, two-step vs
  waveform side by side, runs interleaved (the machine is shared), best and median; and the
  same in-process after a warm-up (no start-up);
* light install: a fresh venv with ``pip install .`` (base dependencies only; pip's cache
  and the local wheel mirror make it fast), its size on disk, and ``iad-tf predict`` run
  from it on the shipped model and the waveform model; the full install's size is the sum
  of the files of the base + ``train`` distributions (with everything they require) in this
  environment.

    python bench/on_device.py [--run RUN] [--track FILE] [--repeats 3] [--skip-venv]
Results -> bench/results/on_device.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict import SAMPLE_TRACK, build_model, dir_size, export_bench_model, make_track  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "on_device.json"


def predict_cli(python: Path | str, track: Path, model: Path | None, out: Path) -> float:
    """Wall seconds of ``python -m iad_tf predict TRACK [--model M] --threads 1``."""
    cmd = [str(python), "-m", "iad_tf", "predict", str(track), "--threads", "1", "--out", str(out)]
    cmd += ["--model", str(model)] if model is not None else []
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"predict failed ({' '.join(cmd)}): {proc.stderr[-1500:]}")
    return wall


def summary(walls: list[float], duration: float) -> dict[str, Any]:
    return {
        "wall_s": [round(x, 3) for x in walls],
        "best_s": round(min(walls), 3),
        "median_s": round(statistics.median(walls), 3),
        "rtf_best": round(duration / min(walls), 1),
        "rtf_median": round(duration / statistics.median(walls), 1),
    }


def in_process_s(track: Path, model_path: Path, repeats: int) -> float:
    """Best seconds of :func:`predict_audio` (decode to segments) after a warm-up run."""
    from iad_tf.inference.litert import load_model
    from iad_tf.inference.predict import predict_audio

    model = load_model(model_path, threads=1)
    predict_audio(track, model)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        predict_audio(track, model)
        best = min(best, time.perf_counter() - t)
    return best


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def closure(names: list[str]) -> set[str]:
    """Distributions ``names`` and everything they require (no extras), as installed here."""
    todo, seen = [_dist_name(n) for n in names], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [_dist_name(r) for r in reqs if "extra ==" not in r]
    return seen


def installed_bytes(dists: set[str]) -> int:
    """Bytes on disk of the files of installed distributions ``dists``."""
    total = 0
    for name in dists:
        for f in metadata.distribution(name).files or []:
            p = Path(f.locate())
            if p.is_file():
                total += p.stat().st_size
    return total


def light_venv(tmp: Path, track: Path, wave_model: Path) -> dict[str, Any]:
    """Fresh venv, ``pip install REPO`` (base only), size, and predict from it."""
    venv = tmp / "light-venv"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(REPO)], capture_output=True, text=True
    )
    if pip.returncode != 0:
        return {"ok": False, "error": pip.stderr[-1500:]}
    install_s = time.perf_counter() - t
    freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    heavy = [
        m
        for m in ("tensorflow", "keras", "librosa", "sklearn", "scipy", "matplotlib")
        if (site / m).exists()
    ]
    out = tmp / "light-out"
    out.mkdir()
    return {
        "ok": True,
        "install_s": round(install_s, 1),
        "venv_bytes": dir_size(venv),
        "site_packages_bytes": dir_size(site),
        # one line per distribution; a local install (``name @ file:///...``) names no folder
        "packages": [re.sub(r" @ file://\S+$", " @ local checkout", line) for line in freeze.stdout.splitlines()],
        "training_stack_present": heavy,
        "predict_shipped_model_wall_s": round(predict_cli(py, track, None, out), 2),
        "predict_waveform_model_wall_s": round(predict_cli(py, track, wave_model, out), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="Trained run (default: untrained CRNN).")
    ap.add_argument("--track", type=Path, default=None, help="Audio (default: a 3-minute AAM mix).")
    ap.add_argument("--window-frames", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-venv", action="store_true", help="Skip the fresh light venv.")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    load_start = os.getloadavg()

    from iad_tf.audio import file_logmel

    with tempfile.TemporaryDirectory(prefix="iad-tf-on-device-") as tmp_s:
        tmp = Path(tmp_s)
        track = args.track or (
            SAMPLE_TRACK if SAMPLE_TRACK.is_file() else make_track(tmp / "song.wav")
        )
        model, model_info, feature = build_model(args.run)
        mel, duration = file_logmel(track, feature)
        res = export_bench_model(
            model, model_info, feature, mel, tmp / "export", args.window_frames, "m"
        )
        qmode = res.quantization["mode"]
        wave_float, wave_q = res.waveform_models
        models = {
            "two_step_float32": res.float_model,
            f"two_step_{qmode}": res.quantized_model,
            "waveform_float32": wave_float,
            "waveform_dynamic": wave_q,
        }
        sizes = {k: p.stat().st_size for k, p in models.items()}
        report = json.loads(res.report.read_text())
        wave_checks = [c for c in report["checks"] if "waveform" in c["artifact"]]

        print("end to end, interleaved (fresh process, 1 thread) ...", flush=True)
        walls: dict[str, list[float]] = {k: [] for k in models}
        for _ in range(args.repeats):
            for name, path in models.items():
                walls[name].append(predict_cli(sys.executable, track, path, tmp / "pred"))
        e2e = {k: summary(v, duration) for k, v in walls.items()}
        print("in process, warm ...", flush=True)
        warm = {k: round(in_process_s(track, p, args.repeats), 3) for k, p in models.items()}

        light = {"skipped": True} if args.skip_venv else light_venv(tmp, track, wave_q)

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = closure(deps["dependencies"])
    full = closure(deps["dependencies"] + deps["optional-dependencies"]["train"])
    ratio = {
        "float32": e2e["waveform_float32"]["best_s"] / e2e["two_step_float32"]["best_s"],
        "quantised": e2e["waveform_dynamic"]["best_s"] / e2e[f"two_step_{qmode}"]["best_s"],
    }
    warm_ratio = {
        "float32": warm["waveform_float32"] / warm["two_step_float32"],
        "quantised": warm["waveform_dynamic"] / warm[f"two_step_{qmode}"],
    }
    result = {
        "track": str(track),
        "duration_s": round(duration, 2),
        "model": model_info,
        "window_frames": args.window_frames,
        "hop_frames": 3 * args.window_frames // 4,
        "two_step_quantization": qmode,
        "sizes_bytes": sizes,
        "target_waveform_quantised_bytes": 1024 * 1024,
        "waveform_export_checks": wave_checks,
        "end_to_end_cli_1_thread": e2e,
        "waveform_over_two_step_wall_best": {k: round(v, 3) for k, v in ratio.items()},
        "in_process_warm_s": warm,
        "waveform_over_two_step_in_process": {k: round(v, 3) for k, v in warm_ratio.items()},
        "target_ratio_max": 1.10,
        "install": {
            "light_venv": light,
            "base_dists_here": sorted(base),
            "base_dists_bytes_here": installed_bytes(base),
            "full_dists_bytes_here": installed_bytes(full),
            "full_is": "base + [train] extra, with everything they require",
        },
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }
    from results_io import write_result

    write_result(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "install"}, indent=2))
    print(json.dumps({k: v for k, v in result["install"].items() if k != "base_dists_here"}))


if __name__ == "__main__":
    main()
