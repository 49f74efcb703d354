"""What training needs to know about a records directory, checked before anything trains.

Reads the manifest once (``tfrecords_tools.reader``), verifies that the records fit the
expected feature config, classes and schema, that the needed splits have tracks and shards,
and derives the class statistics used for class weighting and oversampling. TF-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.config import (
    AAM_CLASSES,
    FeatureConfig,
    check_compatible,
    feature_setup,
    named_feature_config,
)
from iad_tf.data.records import record_schema, schema_aux_fields
from tfrecords_tools.reader import MANIFEST, listed_shards, read_manifest
from tfrecords_tools.schema import Schema

REQUIRED_KEYS: tuple[str, ...] = (
    "schema",
    "feature_config",
    "classes",
    "splits",
    "tracks",
    "class_track_counts",
    "class_active_frames",
    "frames",
    "mel_stats",
)


@dataclass(frozen=True)
class RecordsInfo:
    """A checked records directory: manifest, schema, feature config and classes."""

    records_dir: Path
    manifest: dict[str, Any]
    schema: Schema
    feature: FeatureConfig
    classes: tuple[str, ...]

    @property
    def manifest_path(self) -> Path:
        return self.records_dir / MANIFEST

    @property
    def aux_fields(self) -> tuple[str, ...]:
        """The auxiliary targets the records hold (``build-records --labels onsets+pitch``:
        ``("pitch",)``; ``onsets+roles``: ``("roles",)``)."""
        return schema_aux_fields(self.schema)

    def tracks(self, split: str) -> list[str]:
        return list(self.manifest["splits"].get(split, []))

    def shards(self, split: str) -> list[Path]:
        """The shards of ``split`` the manifest lists (ShardError if one is missing/extra)."""
        return listed_shards(self.records_dir, self.manifest, prefix=split)

    def n_frames(self, split: str) -> list[int]:
        """Frames of each track of ``split`` (manifest order)."""
        return [int(self.manifest["tracks"][t]["n_frames"]) for t in self.tracks(split)]

    @property
    def mel_stats(self) -> dict[str, list[float]]:
        """Training per-mel-bin statistics {"mean": [n_mels], "std": [n_mels]}."""
        stats = self.manifest["mel_stats"]["train"]
        return {"mean": [float(v) for v in stats["mean"]], "std": [float(v) for v in stats["std"]]}

    def class_track_counts(self, split: str = "train") -> np.ndarray:
        """int64 (C,): tracks of ``split`` in which each class is active."""
        counts = self.manifest["class_track_counts"].get(split, {})
        return np.array([int(counts.get(c, 0)) for c in self.classes], dtype=np.int64)


def open_records(
    records_dir: str | Path,
    expected_feature: FeatureConfig | None = None,
    expected_classes: Sequence[str] = AAM_CLASSES,
    splits: Sequence[str] = ("train", "val"),
) -> RecordsInfo:
    """Check ``records_dir`` for training and return its :class:`RecordsInfo`.

    The records' feature config must equal ``expected_feature`` or, when None, the named
    configuration (:data:`iad_tf.config.FEATURE_CONFIGS`) whose name it carries.

    Raises ``ValueError`` (``FileNotFoundError`` for a missing directory/manifest) with a
    one-line message naming the directory or manifest and the problem.
    """
    records_dir = Path(records_dir)
    if not records_dir.is_dir():
        raise FileNotFoundError(
            f"{records_dir}: records directory does not exist (run `iad-tf build-records`)"
        )
    manifest = read_manifest(records_dir)
    where = str(records_dir / MANIFEST)
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{where}: missing keys {missing} (records from an older build-records?)")
    feature, classes = feature_setup(manifest, where)
    if expected_feature is None:  # the records' named config, as build-records defines it
        try:
            expected_feature = named_feature_config(feature.name)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    check_compatible(expected_feature, feature, tuple(expected_classes), classes, where)
    schema = Schema.from_json(manifest["schema"])
    if schema != record_schema(feature, len(classes), aux=schema_aux_fields(schema)):
        raise ValueError(f"{where}: record schema differs from iad_tf.data.records.record_schema")
    info = RecordsInfo(records_dir, manifest, schema, feature, classes)
    for split in splits:
        if not info.tracks(split):
            raise ValueError(
                f"{where}: split {split!r} has no tracks; training needs train and val tracks"
            )
        if not info.shards(split):
            raise ValueError(f"{where}: lists no {split}-*.tfrecord shards")
    if "train" in splits:
        stats = manifest["mel_stats"].get("train") or {}
        if len(stats.get("mean", [])) != feature.n_mels or len(stats.get("std", [])) != feature.n_mels:
            raise ValueError(f"{where}: mel_stats.train must hold {feature.n_mels} means and stds")
    return info


# ------------------------------------------------------------------ oversampling statistics
def rarest_keys(active: np.ndarray, track_counts: np.ndarray) -> np.ndarray:
    """Key of each track: its rarest active class (fewest train tracks), C if none is active.

    ``active`` bool (N, C) per track; ``track_counts`` (C,) -> int64 (N,) in [0, C].
    Ties go to the lowest class index (as ``argmin`` does in the graph version).
    """
    n_classes = active.shape[1]
    big = np.iinfo(np.int64).max
    masked = np.where(active, track_counts[None, :], big)  # (N, C)
    keys = masked.argmin(axis=1)
    keys[~active.any(axis=1)] = n_classes
    return keys.astype(np.int64)


def key_weights(track_counts: np.ndarray, rare_threshold: int, factor: float) -> np.ndarray:
    """Relative draw weight of each key (C + 1,): ``factor`` for rare classes, else 1."""
    rare = np.concatenate([track_counts < rare_threshold, [False]])
    return np.where(rare, float(factor), 1.0)


def resampling_dists(
    keys: np.ndarray, weights: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray]:
    """(initial, target) key distributions (n_keys,): target ∝ initial * weight."""
    init = np.bincount(keys, minlength=n_keys).astype(np.float64)
    init /= init.sum()
    target = init * weights
    target /= target.sum()
    return init, target


def class_distribution(active: np.ndarray, track_weights: np.ndarray | None = None) -> np.ndarray:
    """Expected fraction of drawn tracks holding each class (C,), tracks drawn ∝ weights."""
    w = (
        np.ones(active.shape[0])
        if track_weights is None
        else np.asarray(track_weights, dtype=np.float64)
    )
    return (active.astype(np.float64) * w[:, None]).sum(axis=0) / w.sum()
