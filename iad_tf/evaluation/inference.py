"""Run a trained Keras run over a records split, track by track (shared by evaluate and
threshold tuning).

The model (``run_dir/model.keras``) takes ``mel`` raw dB (batch, frames, n_mels) and returns
``logits`` (batch, frames, C) for any number of frames; whole tracks are fed one at a time
(or in ``chunk_frames`` pieces when memory demands). TensorFlow/Keras are imported inside
the functions.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.config import FeatureConfig, check_compatible, feature_setup
from iad_tf.evaluation.predictions import TrackPrediction

MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class RunInfo:
    """What evaluation needs from a run directory (``config.json`` + ``model.keras``)."""

    run_dir: Path
    config: dict[str, Any]
    feature: FeatureConfig
    classes: list[str]

    @property
    def model_path(self) -> Path:
        return self.run_dir / MODEL_FILE

    @property
    def model_name(self) -> str:
        return str(self.config.get("model_name", "?"))


def open_run(run_dir: str | Path, need_model: bool = True) -> RunInfo:
    """Read a run directory; ``ValueError`` naming the missing/bad file."""
    from iad_tf.training.config import read_run_config

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir}: no such run directory")
    cfg = read_run_config(run_dir)
    feature, classes = feature_setup(cfg, str(run_dir / "config.json"))
    info = RunInfo(run_dir, cfg, feature, list(classes))
    if need_model and not info.model_path.is_file():
        raise ValueError(f"{run_dir}: no {MODEL_FILE} (training did not finish or wrong directory)")
    return info


def check_records(run: RunInfo, records_dir: str | Path) -> dict[str, Any]:
    """The records manifest, after checking its features and classes match the model's."""
    from tfrecords_tools.reader import read_manifest

    manifest = read_manifest(records_dir)
    found, found_classes = feature_setup(manifest, f"{records_dir}/manifest.json")
    check_compatible(run.feature, found, run.classes, found_classes,
                     where=f"records {records_dir} (vs model {run.run_dir})")
    return manifest


def split_track_ids(manifest: dict[str, Any], records_dir: str | Path, split: str) -> list[str]:
    """Track ids of ``split``; ``ValueError`` when the split is empty or unknown."""
    ids = list(manifest.get("splits", {}).get(split, []))
    if not ids:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in manifest.get("splits", {}).items())
        raise ValueError(f"records {records_dir}: split {split!r} is empty (tracks per split: {sizes or 'none'})")
    return ids


def iter_split(records_dir: str | Path, split: str, manifest: dict[str, Any]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(track_id, mel float32 (frames, n_mels), labels uint8 (frames, C)) per record of ``split``."""
    from tfrecords_tools.reader import iter_records, listed_shards
    from tfrecords_tools.schema import Schema

    schema = Schema.from_json(manifest["schema"])
    shards = listed_shards(records_dir, manifest, prefix=split)
    if not shards:
        raise ValueError(f"records {records_dir}: the manifest lists no {split}-*.tfrecord shards")
    for shard in shards:
        for raw in iter_records(shard):
            rec = schema.decode(raw)
            yield (rec["track_id"].decode("utf-8"), rec["mel"].astype(np.float32),
                   rec["labels"].astype(np.uint8))


def load_model(run: RunInfo) -> Any:
    """The run's Keras model (custom objects registered by importing the training modules)."""
    import keras

    from iad_tf.training import layers, losses  # noqa: F401  (register custom objects)

    if not zipfile.is_zipfile(run.model_path):  # Keras says "File not found" for a bad file
        raise ValueError(
            f"{run.model_path}: not a valid .keras model file (corrupt, truncated or another "
            "format); retrain with `iad-tf fit` or restore it from a copy"
        )
    try:
        return keras.saving.load_model(run.model_path, compile=False)
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad model file
        raise ValueError(f"{run.model_path}: cannot load the model ({exc})") from exc


Predictor = Callable[[np.ndarray], np.ndarray]


def make_predictor(model: Any, n_mels: int) -> Predictor:
    """``mel`` (frames, n_mels) -> logits (frames, C) through one traced ``tf.function``.

    The input signature has a free frame axis, so tracks of any length share one graph
    (eager calls run recurrent layers step by step in Python: ~10x slower).
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, None, n_mels), tf.float32)])
    def run(x: Any) -> Any:
        out = model(x, training=False)  # (1, frames, C)
        return out["logits"] if isinstance(out, dict) else out

    return lambda mel: run(tf.convert_to_tensor(mel[None], tf.float32)).numpy()[0]


def track_probs(predict: Predictor, mel: np.ndarray, chunk_frames: int | None = None) -> np.ndarray:
    """Sigmoid probabilities float32 (frames, C) of one track's mel (frames, n_mels)."""
    from scipy.special import expit

    n = mel.shape[0]
    step = chunk_frames or n
    parts = [predict(mel[start:start + step]) for start in range(0, n, step)]
    return expit(np.concatenate(parts).astype(np.float32))


def predict_split(
    run: RunInfo, records_dir: str | Path, split: str, model: Any | None = None,
    chunk_frames: int | None = None, progress: bool = True,
) -> list[TrackPrediction]:
    """Probabilities and labels of every track of ``split`` (records checked against the run)."""
    from tqdm import tqdm

    manifest = check_records(run, records_dir)
    ids = split_track_ids(manifest, records_dir, split)
    model = model if model is not None else load_model(run)
    predict = make_predictor(model, run.feature.n_mels)
    out = []
    for tid, mel, labels in tqdm(iter_split(records_dir, split, manifest), total=len(ids),
                                 desc=f"predicting {split}", unit="track", disable=None if progress else True):
        out.append(TrackPrediction(tid, track_probs(predict, mel, chunk_frames), labels))
    if not out:
        raise ValueError(f"records {records_dir}: split {split!r} holds no records")
    return out
