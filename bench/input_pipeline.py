"""Input pipeline vs model: can the tf.data pipeline keep a CRNN busy?

In one run, for each batching regime (whole tracks, windows):
  * examples/s and frames/s the training input pipeline alone delivers (batches of 2, with
    oversampling and SpecAugment as in training), and
  * training steps/s (and examples/s) of the default CRNN consuming the same pipeline,
and the time of one CRNN training epoch (steps_per_epoch steps) on the records.
Target: pipeline >= 5x the model's consumption. Results -> bench/results/input_pipeline.json.

    python bench/input_pipeline.py --records bench/work/sample-records
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "input_pipeline.json"


def time_pipeline(dataset, steps: int) -> tuple[float, int]:
    """Seconds to pull ``steps`` batches (after a warm-up batch) and the frames they held."""
    it = iter(dataset)
    next(it)
    frames = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, mask = next(it)
        frames += int(mask.numpy().sum())
    return time.perf_counter() - t0, frames


def time_training(model, dataset, steps: int) -> float:
    """Seconds for ``steps`` training steps after a compile/warm-up of 2 steps."""
    model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    t0 = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default=str(REPO / "bench" / "work" / "sample-records"))
    ap.add_argument("--pipeline-steps", type=int, default=200)
    ap.add_argument("--model-steps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras
    import tensorflow as tf

    from iad_tf.training.config import ModelConfig, TrainConfig
    from iad_tf.training.losses import MaskedWeightedBCE, pos_weight_from_manifest
    from iad_tf.training.models import build_model
    from iad_tf.training.pipeline import plan_resampling, train_dataset
    from iad_tf.training.records_info import open_records

    keras.utils.set_random_seed(0)
    info = open_records(args.records)
    base = TrainConfig()
    plan = plan_resampling(info, base)
    results: dict = {
        "records": str(Path(args.records).resolve()),
        "train_tracks": len(info.tracks("train")),
        "train_frames": int(info.manifest["frames"]["train"]),
        "batch_size": base.batch_size,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "regimes": {},
    }
    for batching in ("windows", "tracks"):
        cfg = dataclasses.replace(base, batching=batching)
        data = train_dataset(info, cfg, plan)
        p_steps = (
            args.pipeline_steps if batching == "windows" else max(10, args.pipeline_steps // 10)
        )
        p_sec, p_frames = time_pipeline(data.dataset, p_steps)
        model = build_model("crnn", ModelConfig(), info.mel_stats)
        model.compile(
            optimizer=keras.optimizers.Adam(cfg.learning_rate),
            loss=MaskedWeightedBCE(pos_weight_from_manifest(info.manifest)),
        )
        m_steps = args.model_steps if batching == "windows" else max(3, args.model_steps // 5)
        m_sec = time_training(model, data.dataset, m_steps)
        pipe_eps = p_steps * cfg.batch_size / p_sec
        model_eps = m_steps * cfg.batch_size / m_sec
        epoch_s = m_sec / m_steps * data.steps_per_epoch
        row = {
            "window_frames": cfg.window_frames(info.feature) if batching == "windows" else None,
            "pipeline_examples_per_s": round(pipe_eps, 2),
            "pipeline_frames_per_s": round(p_frames / p_sec, 1),
            "model_steps_per_s": round(m_steps / m_sec, 3),
            "model_examples_per_s": round(model_eps, 3),
            "pipeline_over_model": round(pipe_eps / model_eps, 1),
            "meets_5x_target": pipe_eps >= 5 * model_eps,
            "steps_per_epoch": data.steps_per_epoch,
            "crnn_epoch_seconds": round(epoch_s, 1),
        }
        results["regimes"][batching] = row
        print(batching, json.dumps(row))
    from results_io import write_result

    write_result(args.out, results)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
