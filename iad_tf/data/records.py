"""The TFRecord schema of iad-tf: one record per track (or remix).

Keys: ``track_id``, ``source_id`` (the original AAM track a remix comes from; equal to
``track_id`` otherwise), ``split``, ``n_frames``, ``mel`` float16 (frames, n_mels) in dB,
``labels`` uint8 (frames, n_classes) multi-hot activations. Records built with ``--labels
onsets+pitch`` also hold ``pitch`` uint8 (frames, 88): the multi-pitch roll of the pitched
instruments (:func:`iad_tf.aam.labels.pitch_roll`), the target of the auxiliary pitch head;
``--labels onsets+roles`` adds ``roles`` uint8 (frames, 5): which of AAM's song roles sound
(:func:`iad_tf.aam.labels.role_roll`), the target of the auxiliary role head.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.aam.labels import PITCH_KEYS
from iad_tf.aam.roles import ROLES
from iad_tf.config import NUM_CLASSES, FeatureConfig
from tfrecords_tools import FeatureSpec, Schema

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The record key of the pitch roll.
PITCH_FIELD = "pitch"
#: The record key of the role roll.
ROLES_FIELD = "roles"
#: The auxiliary targets records can hold: record key -> columns per frame (the one list of
#: them: schema, build, cache, training and the auxiliary heads all read it).
AUX_FIELDS: dict[str, int] = {PITCH_FIELD: PITCH_KEYS, ROLES_FIELD: len(ROLES)}
#: Frame labels: from the onsets ARFF, from the segments ARFF, or from the onsets ARFF plus
#: an auxiliary target (the multi-pitch roll, or the role roll, which also reads the segments).
LABEL_MODES: tuple[str, ...] = ("onsets", "segments", *(f"onsets+{f}" for f in AUX_FIELDS))


def annotation_kind(labels: str) -> str:
    """The annotation file a label mode's classes come from ("onsets" for "onsets+pitch")."""
    return labels.split("+", 1)[0]


def aux_fields(labels: str) -> tuple[str, ...]:
    """The auxiliary targets records of label mode ``labels`` hold (``()`` for plain labels)."""
    return tuple(labels.split("+")[1:])


def record_schema(
    cfg: FeatureConfig | None = None, n_classes: int = NUM_CLASSES, aux: Sequence[str] = ()
) -> Schema:
    """The schema for records of ``cfg.n_mels`` mel bins and ``n_classes`` classes, with the
    auxiliary targets ``aux`` (names of :data:`AUX_FIELDS`)."""
    cfg = cfg or FeatureConfig()
    specs = [
        FeatureSpec("track_id", "bytes"),
        FeatureSpec("source_id", "bytes"),
        FeatureSpec("split", "bytes"),
        FeatureSpec("n_frames", "int64"),
        FeatureSpec("mel", "tensor", "float16", (None, cfg.n_mels)),
        FeatureSpec("labels", "tensor", "uint8", (None, n_classes)),
    ]
    unknown = set(aux) - set(AUX_FIELDS)
    if unknown:
        raise ValueError(f"unknown auxiliary target(s) {sorted(unknown)}; known: {', '.join(AUX_FIELDS)}")
    for name in (f for f in AUX_FIELDS if f in aux):
        specs.append(FeatureSpec(name, "tensor", "uint8", (None, AUX_FIELDS[name])))
    return Schema(tuple(specs))


def schema_aux_fields(schema: Schema) -> tuple[str, ...]:
    """The auxiliary targets records of ``schema`` hold."""
    names = {spec.name for spec in schema.features}
    return tuple(f for f in AUX_FIELDS if f in names)


def load_track(records_dir: str | Path, track_id: str) -> dict[str, Any]:
    """Read one track back from a records directory.

    Returns ``{"mel": float32 (frames, n_mels) dB, "labels": uint8 (frames, n_classes) 0/1,
    "classes": list of the class names, "split": split name}`` (and each auxiliary target,
    e.g. ``"pitch"`` uint8 (frames, 88), the records hold). Only the shards of the
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
                for name in AUX_FIELDS:
                    if name in rec:
                        out[name] = rec[name].astype(np.uint8)
                return out
    raise KeyError(f"{records_dir}: track {track_id!r} listed in the manifest but not in any {split} shard")
