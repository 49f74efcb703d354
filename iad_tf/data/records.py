"""The TFRecord schema of iad-tf: one record per track (or remix).

Keys: ``track_id``, ``source_id`` (the original AAM track a remix comes from; equal to
``track_id`` otherwise), ``split``, ``n_frames``, ``mel`` float16 (frames, n_mels) in dB,
``labels`` uint8 (frames, n_classes) multi-hot activations.
"""

from __future__ import annotations

from iad_tf.config import NUM_CLASSES, FeatureConfig
from tfrecords_tools import FeatureSpec, Schema

SPLITS: tuple[str, ...] = ("train", "val", "test")


def record_schema(cfg: FeatureConfig | None = None, n_classes: int = NUM_CLASSES) -> Schema:
    """The schema for records of ``cfg.n_mels`` mel bins and ``n_classes`` classes."""
    cfg = cfg or FeatureConfig()
    return Schema(
        (
            FeatureSpec("track_id", "bytes"),
            FeatureSpec("source_id", "bytes"),
            FeatureSpec("split", "bytes"),
            FeatureSpec("n_frames", "int64"),
            FeatureSpec("mel", "tensor", "float16", (None, cfg.n_mels)),
            FeatureSpec("labels", "tensor", "uint8", (None, n_classes)),
        )
    )
