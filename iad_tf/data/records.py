"""The TFRecord schema of iad-tf: one record per track (or remix).

Keys: ``track_id``, ``source_id`` (the original AAM track a remix comes from; equal to
``track_id`` otherwise), ``split``, ``n_frames``, ``mel`` float16 (frames, n_mels) in dB,
``labels`` uint8 (frames, n_classes) multi-hot activations; records built with ``--labels
onsets+pitch`` also hold ``pitch`` uint8 (frames, 88): the multi-pitch roll of the pitched
instruments (:func:`iad_tf.aam.labels.pitch_roll`), the target of the auxiliary pitch head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.aam.labels import PITCH_KEYS
from iad_tf.config import NUM_CLASSES, FeatureConfig
from tfrecords_tools import FeatureSpec, Schema

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The record key of the pitch roll.
PITCH_FIELD = "pitch"
#: Frame labels: from the onsets ARFF, from the segments ARFF, or from the onsets ARFF plus the
#: multi-pitch roll (``pitch``, the auxiliary head's target).
LABEL_MODES: tuple[str, ...] = ("onsets", "segments", "onsets+pitch")


def annotation_kind(labels: str) -> str:
    """The annotation file a label mode reads ("onsets" for "onsets+pitch")."""
    return labels.split("+", 1)[0]


def has_pitch(labels: str) -> bool:
    """Whether records of label mode ``labels`` hold the pitch roll."""
    return labels.endswith("+pitch")


def record_schema(cfg: FeatureConfig | None = None, n_classes: int = NUM_CLASSES, pitch: bool = False) -> Schema:
    """The schema for records of ``cfg.n_mels`` mel bins and ``n_classes`` classes (``pitch``:
    with the pitch roll)."""
    cfg = cfg or FeatureConfig()
    specs = [
        FeatureSpec("track_id", "bytes"),
        FeatureSpec("source_id", "bytes"),
        FeatureSpec("split", "bytes"),
        FeatureSpec("n_frames", "int64"),
        FeatureSpec("mel", "tensor", "float16", (None, cfg.n_mels)),
        FeatureSpec("labels", "tensor", "uint8", (None, n_classes)),
    ]
    if pitch:
        specs.append(FeatureSpec(PITCH_FIELD, "tensor", "uint8", (None, PITCH_KEYS)))
    return Schema(tuple(specs))


def schema_has_pitch(schema: Schema) -> bool:
    """Whether records of ``schema`` hold the pitch roll."""
    return any(spec.name == PITCH_FIELD for spec in schema.features)


def load_track(records_dir: str | Path, track_id: str) -> dict[str, Any]:
    """Read one track back from a records directory.

    Returns ``{"mel": float32 (frames, n_mels) dB, "labels": uint8 (frames, n_classes) 0/1,
    "classes": list of the class names, "split": split name}`` (and ``"pitch"`` uint8
    (frames, 88) in records that hold it). Only the shards of the
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
                out = {
                    "mel": rec["mel"].astype(np.float32),
                    "labels": rec["labels"].astype(np.uint8),
                    "classes": list(manifest["classes"]),
                    "split": rec["split"].decode("utf-8"),
                }
                if PITCH_FIELD in rec:
                    out[PITCH_FIELD] = rec[PITCH_FIELD].astype(np.uint8)
                return out
    raise KeyError(f"{records_dir}: track {track_id!r} listed in the manifest but not in any {split} shard")
