"""The TFRecord schema of iad-tf: one record per track (or remix).

Keys: ``track_id``, ``source_id`` (the original AAM track a remix comes from; equal to
``track_id`` otherwise), ``split``, ``n_frames``, ``mel`` float16 (frames, n_mels) in dB,
``labels`` uint8 (frames, n_classes) multi-hot activations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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


def load_track(records_dir: str | Path, track_id: str) -> dict[str, Any]:
    """Read one track back from a records directory.

    Returns ``{"mel": float32 (frames, n_mels) dB, "labels": uint8 (frames, n_classes) 0/1,
    "classes": list of the class names, "split": split name}``. Only the shards of the
    track's split (from the manifest) are scanned. Raises ``KeyError`` for an unknown track.
    """
    from tfrecords_tools.reader import iter_records, listed_shards, read_manifest

    manifest = read_manifest(records_dir)
    info = manifest.get("tracks", {}).get(track_id)
    if info is None:
        raise KeyError(f"{records_dir}: no track {track_id!r} in the manifest")
    split = info["split"]
    schema = Schema.from_json(manifest["schema"])
    want = track_id.encode("utf-8")
    for shard in listed_shards(records_dir, manifest, prefix=split):
        for raw in iter_records(shard):
            rec = schema.decode(raw)
            if rec["track_id"] == want:
                return {
                    "mel": rec["mel"].astype(np.float32),
                    "labels": rec["labels"].astype(np.uint8),
                    "classes": list(manifest["classes"]),
                    "split": rec["split"].decode("utf-8"),
                }
    raise KeyError(f"{records_dir}: track {track_id!r} listed in the manifest but not in any {split} shard")
