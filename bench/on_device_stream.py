"""Streaming model on a device: latency, per-chunk compute, size, chunked-vs-whole parity.

* algorithmic latency: worst case from a frame's centre until its probabilities exist (the
  front end's n_fft/2 look-ahead + waiting for the rest of the chunk; crnn_stream has no
  look-ahead of its own), target <= 0.5 s;
* per-chunk compute: one ``step`` (chunk + states) through LiteRT, 1 thread, float and int8,
  timed chunk by chunk over a real track after a warm-up, target <= 1 ms;
* the whole TF-free stream (incremental log-mel + model) on a 3-minute track pushed in
  1024-sample blocks: real-time factor;
* int8 file size, target <= 200 KB (dense weights quantised per tensor: see
  ``iad_tf.export.tflite.convert``), and its micro-F1 next to Keras on the first minute of the
  track (the export's own int8 check; with ``--run`` the track may be a training song);
* chunked vs whole sequence: max |p_TFLite chunk by chunk - p_Keras whole track| over the
  track (float), target <= 1e-5; and the int8 file's max difference.

The model: ``--run DIR`` (a trained crnn_stream run, exported here) or, by default, the
default crnn_stream architecture with untrained weights and random batch-norm statistics
(same cost per chunk and the same size). The track: the sample's 3-minute 1941 mix, or a
generated song when the sample is absent.

    python bench/on_device_stream.py [--run RUN] [--chunk-frames 16]
Results -> bench/results/on_device_stream.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results" / "on_device_stream.json"

from bench.predict import SAMPLE_TRACK, make_track  # noqa: E402

TARGETS = {"algorithmic_latency_s": 0.5, "chunk_ms": 1.0, "int8_bytes": 200_000, "max_diff": 1e-5}


def untrained_model(mel_stats: dict) -> tuple[object, object]:
    """(default-size crnn_stream with random weights and BN statistics, its ModelConfig)."""
    import keras

    from iad_tf.training.config import ModelConfig
    from iad_tf.training.models import build_crnn_stream

    keras.utils.set_random_seed(0)
    cfg = ModelConfig()
    model = build_crnn_stream(cfg, mel_stats)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.name.endswith("_bn"):
            g, b, m, v = layer.get_weights()
            layer.set_weights(
                [g, b + 0.1 * rng.standard_normal(b.shape), m, v + rng.random(v.shape)]
            )
    return model, cfg


def time_chunks(path: Path, mel: np.ndarray, warmup: int = 20) -> dict[str, float]:
    """Per-chunk wall time (ms) of ``step`` over ``mel`` chunk by chunk, LiteRT 1 thread."""
    from iad_tf.inference.stream import load_stream_model, pad_to_chunks

    model = load_stream_model(path, threads=1)
    k = model.chunk_frames
    x = pad_to_chunks(mel, k, -100.0)
    states = model.initial_states()
    for s in range(0, warmup * k, k):
        _, states = model.step(x[s : s + k], states)
    states, times = model.initial_states(), []
    for s in range(0, x.shape[0], k):
        t0 = time.perf_counter()
        _, states = model.step(x[s : s + k], states)
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "chunks": len(times),
        "median_ms": round(statistics.median(times), 4),
        "p90_ms": round(float(np.percentile(times, 90)), 4),
        "mean_ms": round(statistics.fmean(times), 4),
        "max_ms": round(max(times), 4),
    }


def time_stream(path: Path, y: np.ndarray, sr: int, block: int = 1024) -> dict[str, float]:
    """The whole TF-free Stream (log-mel + model) on ``y`` pushed in blocks: seconds and RTF."""
    from iad_tf.inference.stream import Stream

    stream = Stream(path, threads=1)
    t0 = time.perf_counter()
    n = 0
    for s in range(0, y.size, block):
        n += stream.push(y[s : s + block]).shape[0]
    n += stream.flush().shape[0]
    secs = time.perf_counter() - t0
    return {
        "block_samples": block,
        "frames": n,
        "seconds": round(secs, 3),
        "real_time_factor": round(secs / (y.size / sr), 5),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="trained crnn_stream run directory")
    ap.add_argument("--track", type=Path, default=None)
    ap.add_argument("--chunk-frames", type=int, default=16)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    from iad_tf.audio import load_audio, logmel
    from iad_tf.config import AAM_CLASSES, FeatureConfig
    from iad_tf.export.serving import keras_probs
    from iad_tf.export.stream import StreamSettings, export_stream
    from iad_tf.inference.stream import algorithmic_latency_s, load_stream_model

    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    track = args.track or (SAMPLE_TRACK if SAMPLE_TRACK.is_file() else make_track(tmp / "t.wav"))
    feature = FeatureConfig()
    y = load_audio(track, feature.sample_rate)
    mel = logmel(y, feature)  # (frames, 128)
    labels = np.zeros((mel.shape[0], len(AAM_CLASSES)), np.uint8)
    onsets = track.parent.parent / "annotations" / f"{track.stem.replace('_mix', '')}_onsets.arff"
    if onsets.is_file():  # the sample's own annotations: the int8 check's F1 means something
        from iad_tf.aam.arff import read_onsets
        from iad_tf.aam.labels import onset_roll

        labels = onset_roll(read_onsets(onsets), feature.frame_times(mel.shape[0]), AAM_CLASSES)
    settings = StreamSettings(chunk_frames=args.chunk_frames, try_all_modes=True)
    if args.run is not None:
        from iad_tf.evaluation.inference import load_model, open_run
        from iad_tf.training.config import ModelConfig

        run = open_run(args.run)
        model, cfg = load_model(run), ModelConfig.from_dict(run.config["model"])
        mel_stats, source = run.config.get("mel_stats"), f"trained run {Path(args.run).name}"
    else:
        stats = {"mean": mel.mean(axis=0).tolist(), "std": mel.std(axis=0).tolist()}
        (model, cfg), mel_stats = untrained_model(stats), stats
        source = "default crnn_stream architecture, untrained weights"
    cut = mel[: 60 * 43]  # the export's own check and calibration: the first minute
    result = export_stream(
        model,
        tmp / "out",
        model_config=cfg,
        mel_stats=mel_stats,
        feature=feature,
        classes=AAM_CLASSES,
        val_tracks=[(track.stem, cut, labels[: cut.shape[0]])],
        calibration_tracks=[(track.stem, cut, labels[: cut.shape[0]])],
        thresholds=np.full(len(AAM_CLASSES), 0.5),
        median_window=1,
        name="bench",
        settings=settings,
    )
    whole = keras_probs(model, mel[None])[0]  # (frames, C) the whole track at once
    chunked = load_stream_model(result.float_model).run_frames(mel)
    out: dict = {
        "model": source,
        "parameters": int(model.count_params()),
        "track": str(track.name),
        "track_seconds": round(y.size / feature.sample_rate, 1),
        "labels": "onsets ARFF of the track" if onsets.is_file() else "none (F1 is 0)",
        "chunk_frames": args.chunk_frames,
        "chunk_seconds": round(args.chunk_frames * feature.frame_seconds, 4),
        "algorithmic_latency_s": round(algorithmic_latency_s(feature, args.chunk_frames), 4),
        "float": {
            "bytes": result.float_model.stat().st_size,
            "max_diff_chunked_vs_whole_keras": float(np.abs(chunked - whole).max()),
            "per_chunk": time_chunks(result.float_model, mel),
            "stream_end_to_end": time_stream(result.float_model, y, feature.sample_rate),
        },
        "quantization_attempts": result.quant_attempts,
    }
    for att in result.quant_attempts:  # every full-integer form that converted and ran
        path = tmp / "out" / f"bench_stream_{att['mode']}.tflite"
        if not path.is_file():  # failed the F1 check: kept under another name (try_all_modes)
            path = path.with_name(f"{path.stem}_rejected.tflite")
        if not path.is_file():  # did not convert or run
            continue
        q = load_stream_model(path).run_frames(mel)
        out[att["mode"]] = {
            "bytes": path.stat().st_size,
            "kept": att["ok"],
            "max_diff_vs_whole_keras": float(np.abs(q - whole).max()),
            "mean_diff_vs_whole_keras": float(np.abs(q - whole).mean()),
            "decision_flips_vs_whole_keras_at_0.5": float(((q >= 0.5) != (whole >= 0.5)).mean()),
            "per_chunk": time_chunks(path, mel),
        }
    out["targets"] = {
        "algorithmic_latency_s <= 0.5": out["algorithmic_latency_s"]
        <= TARGETS["algorithmic_latency_s"],
        "per-chunk compute <= 1 ms (float, median)": out["float"]["per_chunk"]["median_ms"]
        <= TARGETS["chunk_ms"],
        "int8 <= 200 KB": any(
            a["mode"] == "int8" and a.get("bytes", 1e9) <= TARGETS["int8_bytes"]
            for a in result.quant_attempts
        ),
        "chunked == whole within 1e-5 (float)": out["float"]["max_diff_chunked_vs_whole_keras"]
        <= TARGETS["max_diff"],
    }
    out["machine"] = {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)}
    from results_io import write_result

    write_result(RESULTS, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
