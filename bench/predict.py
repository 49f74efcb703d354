"""Inference speed: real-time factor of ``iad-tf predict`` end to end, and quantised TFLite vs
float TFLite vs Keras on the same windows, plus model sizes.

* end to end: ``iad-tf predict TRACK --threads 1`` in a fresh process (start-up, imports,
  decode, resample, log-mel, LiteRT windows, stitching, thresholds, segments, files written),
  best and median of ``--repeats`` runs, and the same command on a 1-second file (the fixed
  start-up cost: Python, numpy, librosa/scipy imports, model load); and in-process per stage
  after a warm-up (decode + resample, log-mel, TFLite windows, post-processing, files);
* the same windows of the track through the float and quantised TFLite models (1 thread) and
  Keras ``predict`` (TensorFlow limited to 1 thread), with the max probability difference;
* sizes of the exported files.

The model: ``--run DIR`` (a trained run, exported here) or, by default, the default CRNN
architecture with untrained weights (same cost per window). The track: a ~3-minute AAM mix
from the sample, or a generated 3-minute song when the sample is absent.

    python bench/predict.py [--run RUN] [--track FILE]
Results -> bench/results/predict.json.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "predict.json"
SAMPLE_TRACK = REPO.parent / "shared" / "aam-sample" / "audio-mixes-mp3" / "1941_mix.mp3"  # 181 s


def dir_size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def make_track(path: Path, seconds: float = 180.0, sr: int = 44100) -> Path:
    """A generated 3-minute stereo song (tones switching on and off plus noise)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.02 * rng.standard_normal(t.size)
    for f0 in (110.0, 220.0, 440.0, 880.0, 1760.0):
        gate = (np.sin(2 * np.pi * t / rng.uniform(5, 20) + rng.uniform(0, 6)) > 0).astype(
            np.float64
        )
        y += 0.1 * gate * np.sin(2 * np.pi * f0 * t)
    sf.write(path, np.stack([y, y], 1).astype(np.float32), sr)
    return path


def build_model(run: Path | None, name: str = "crnn") -> tuple[object, dict, object]:
    """(Keras model mel -> logits, description, its FeatureConfig)."""
    from iad_tf.config import FEATURE_CONFIGS

    if run is not None:
        from iad_tf.evaluation.inference import load_model, open_run

        info = open_run(run)
        described = {"source": f"run {run}", "architecture": info.model_name}
        return load_model(info), described, info.feature
    from iad_tf.training.config import ModelConfig
    from iad_tf.training.models import REQUIRED_FEATURES
    from iad_tf.training.models import build_model as build

    feature = FEATURE_CONFIGS[REQUIRED_FEATURES.get(name, "logmel")]
    cfg = ModelConfig(n_mels=feature.n_mels)
    return (
        build(name, cfg),
        {
            "source": f"default {name} architecture, untrained weights"
            + (" (pretrained musicnn front end)" if name == "musicnn_crnn" else ""),
            "architecture": name,
            "config": cfg.to_dict(),
        },
        feature,
    )


def export_bench_model(
    model: object, model_info: dict, feature: object, mel: np.ndarray, out: Path, window: int,
    name: str,
) -> object:
    """Export ``model`` for timing (float32 + int8 fallback chain): the song's own log-mel as
    the check and calibration data, labels all zero (timing only)."""
    from iad_tf.config import AAM_CLASSES
    from iad_tf.export.pipeline import ExportSettings, export_model
    from iad_tf.inference.windows import make_windows, silence_db

    hop = 3 * window // 4
    labels = np.zeros((mel.shape[0], len(AAM_CLASSES)), np.uint8)  # timing only
    print(f"exporting ({model_info['source']}) ...", flush=True)
    return export_model(
        model,
        out,
        feature=feature,
        classes=AAM_CLASSES,
        val_tracks=[("bench", mel, labels)],
        representative=make_windows(mel, window, hop, silence_db(feature))[0][:32],
        settings=ExportSettings(window_frames=window, hop_frames=hop, quantize="int8", name=name),
        info={"model": model_info},
    )


def time_cli(track: Path, model: Path, out: Path, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of ``repeats`` fresh ``iad-tf predict`` processes.

    With one thread the CPU time is the compute the command needs; unlike the wall time it
    hardly grows when other jobs share the machine.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iad_tf",
                "predict",
                str(track),
                "--model",
                str(model),
                "--threads",
                "1",
                "--out",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr = proc.stderr.read() if proc.stderr else ""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        walls.append(time.perf_counter() - t0)
        cpus.append(usage.ru_utime + usage.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"predict failed: {stderr[-1000:]}")
    return walls, cpus


def stage_times(track: Path, model_path: Path, out: Path) -> dict[str, float]:
    """In-process seconds per stage (second of two runs, so imports and caches are warm)."""
    from iad_tf.audio import load_audio, logmel
    from iad_tf.inference.litert import load_model
    from iad_tf.inference.predict import SongPrediction, write_outputs
    from iad_tf.inference.segments import to_segments
    from iad_tf.inference.windows import make_windows, silence_db, stitch
    from iad_tf.postprocess import decide

    model = load_model(model_path, threads=1)
    md = model.metadata
    cfg = md.feature_config
    times: dict[str, float] = {}
    for _ in range(2):
        t = time.perf_counter()
        y = load_audio(track, cfg.sample_rate)
        times["decode_resample"] = time.perf_counter() - t
        t = time.perf_counter()
        mel = logmel(y, cfg)
        times["logmel"] = time.perf_counter() - t
        t = time.perf_counter()
        windows, starts = make_windows(mel, md.window_frames, md.hop_frames, silence_db(cfg))
        probs_w = model.run_windows(windows)
        times["tflite_windows"] = time.perf_counter() - t
        t = time.perf_counter()
        probs = stitch(probs_w, starts, mel.shape[0], md.hop_frames)
        dec = decide(probs, np.asarray(md.thresholds, np.float32), md.median_window)
        segs = to_segments(dec, probs, md.classes, cfg.frame_seconds, y.size / cfg.sample_rate)
        times["stitch_decide_segments"] = time.perf_counter() - t
        t = time.perf_counter()
        write_outputs(
            SongPrediction(track, y.size / cfg.sample_rate, probs, dec, segs), model, out / "stages"
        )
        times["write_outputs"] = time.perf_counter() - t
    times["windows"] = int(windows.shape[0])
    return times


def per_window_ms(fn, windows: np.ndarray, repeats: int = 2) -> float:
    fn(windows[:1])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(windows)
        best = min(best, time.perf_counter() - t)
    return 1000.0 * best / windows.shape[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--run", type=Path, default=None, help="Trained run directory (default: untrained CRNN)."
    )
    ap.add_argument(
        "--track", type=Path, default=None, help="Audio file (default: a ~3-minute AAM mix)."
    )
    ap.add_argument(
        "--model-name", default="crnn", help="Architecture without --run (untrained weights)."
    )
    ap.add_argument("--window-frames", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    load_start = os.getloadavg()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from iad_tf.audio import file_logmel
    from iad_tf.export.serving import keras_probs
    from iad_tf.inference.litert import load_model
    from iad_tf.inference.windows import make_windows, silence_db

    with tempfile.TemporaryDirectory(prefix="iad-tf-bench-") as tmp_s:
        tmp = Path(tmp_s)
        track = args.track or (
            SAMPLE_TRACK if SAMPLE_TRACK.is_file() else make_track(tmp / "song.wav")
        )
        model, model_info, feature = build_model(args.run, args.model_name)
        mel, duration = file_logmel(track, feature)
        w = args.window_frames
        hop = 3 * w // 4
        res = export_bench_model(model, model_info, feature, mel, tmp / "export", w, "bench")
        models = {"float32": res.float_model, res.quantization["mode"]: res.quantized_model}

        print("end to end (fresh process, 1 thread) ...", flush=True)
        e2e = {}
        for name, path in models.items():
            walls, cpus = time_cli(track, path, tmp / "pred", args.repeats)
            e2e[name] = {
                "cpu_s": [round(x, 3) for x in cpus],
                "rtf_cpu_best": round(duration / min(cpus), 1),
                "wall_s": [round(x, 3) for x in walls],
                "best_s": round(min(walls), 3),
                "median_s": round(statistics.median(walls), 3),
                "rtf_best": round(duration / min(walls), 1),
                "rtf_median": round(duration / statistics.median(walls), 1),
            }
        short = tmp / "one_second.wav"
        import soundfile as sf

        sf.write(short, np.zeros(44100, np.float32), 44100)
        startup = round(
            min(
                time_cli(short, res.quantized_model or res.float_model, tmp / "p1", args.repeats)[0]
            ),
            3,
        )
        stages, warm_rtf = {}, {}
        for name, path in models.items():
            stages[name] = {k: round(v, 4) for k, v in stage_times(track, path, tmp).items()}
            warm_rtf[name] = round(
                duration / sum(v for k, v in stages[name].items() if k != "windows"), 1
            )

        print("same windows: TFLite float / quantised / Keras ...", flush=True)
        windows, _ = make_windows(mel, w, hop, silence_db(feature))
        ref = keras_probs(model, windows)
        same = {"windows": int(windows.shape[0]), "window_frames": w}
        for name, path in models.items():
            m = load_model(path, threads=1)
            same[f"tflite_{name}_ms_per_window"] = round(per_window_ms(m.run_windows, windows), 3)
            same[f"tflite_{name}_max_abs_diff_vs_keras"] = float(
                np.abs(m.run_windows(windows) - ref).max()
            )
        same["keras_predict_batch32_ms_per_window"] = round(
            per_window_ms(lambda x: model.predict(x, batch_size=32, verbose=0), windows), 3
        )
        same["keras_predict_batch1_ms_per_window"] = round(
            per_window_ms(lambda x: model.predict(x, batch_size=1, verbose=0), windows), 3
        )

        keras_file = tmp / "model.keras"
        model.save(keras_file)
        sizes = {
            "keras": keras_file.stat().st_size,
            "saved_model": dir_size(res.saved_model),
            **{f"tflite_{k}": p.stat().st_size for k, p in models.items()},
        }

    result = {
        "track": str(track),
        "duration_s": round(duration, 2),
        "model": model_info,
        "quantization": {k: res.quantization.get(k) for k in ("mode", "requested", "why")},
        "end_to_end_cli_1_thread": e2e,
        "cli_startup_s": startup,
        "in_process_warm_stages_s": stages,
        "in_process_warm_rtf": warm_rtf,
        "same_windows_1_thread": same,
        "sizes_bytes": sizes,
        "target_rtf": 200,
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }
    from results_io import write_result

    write_result(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
