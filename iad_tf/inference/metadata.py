"""The metadata that travels with an exported model: a sidecar ``<stem>.json`` beside
``<stem>.tflite``. Written by :mod:`iad_tf.export`, read and checked by :mod:`iad_tf.inference`.

TF-free.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iad_tf.config import FeatureConfig
from iad_tf.fileio import read_text, write_json
from iad_tf.postprocess import Presence, threshold_problem

#: Format tag of the sidecar; bumped when a key changes meaning.
METADATA_FORMAT = "iad-tf-model/1"
#: Names in the TFLite ``serving_default`` signature.
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "mel"
OUTPUT_NAME = "probs"


class ModelError(ValueError):
    """A model file or its metadata cannot be used; the message names the file and problem."""


def sidecar_path(model_path: str | Path) -> Path:
    """``<stem>.json`` beside ``<stem>.tflite``."""
    return Path(model_path).with_suffix(".json")


@dataclass(frozen=True)
class ModelMetadata:
    """Everything needed to turn a song into decisions with an exported model.

    ``thresholds`` (C,) per-class decision thresholds, in ``classes`` order; ``median_window``
    (odd, frames) smooths the decisions; the model runs on windows of ``window_frames`` frames
    starting every ``hop_frames`` frames. ``presence`` ({"threshold", "seconds"}, or empty
    for none) is the song-level presence gate (:class:`iad_tf.postprocess.Presence`) applied
    after the frame decisions.
    """

    classes: tuple[str, ...]
    thresholds: tuple[float, ...]
    median_window: int
    feature_config: FeatureConfig
    window_frames: int
    hop_frames: int
    version: dict[str, str] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    presence: dict[str, Any] = field(default_factory=dict)
    #: Streaming models only (``<stem>_stream.tflite``): chunk_frames, state shapes, latency.
    stream: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        problems = []
        if len(self.thresholds) != len(self.classes):
            problems.append(f"{len(self.thresholds)} thresholds for {len(self.classes)} classes")
        bad = threshold_problem(self.classes, self.thresholds)
        if bad:
            problems.append(bad)
        if self.median_window < 1 or self.median_window % 2 == 0:
            problems.append(f"median_window must be odd and >= 1, got {self.median_window}")
        if self.window_frames < 1 or not 1 <= self.hop_frames <= self.window_frames:
            problems.append(
                f"need 1 <= hop_frames ({self.hop_frames}) <= window_frames ({self.window_frames})"
            )
        try:
            Presence.from_dict(self.presence, self.classes)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def presence_gate(self) -> Presence | None:
        """The song-level presence gate, or None when the model has none."""
        return Presence.from_dict(self.presence, self.classes)

    def to_dict(self) -> dict[str, Any]:
        d = {"format": METADATA_FORMAT}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.to_dict() if isinstance(v, FeatureConfig) else v
        d["classes"] = list(self.classes)
        d["thresholds"] = list(self.thresholds)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """Parse a sidecar dict; ``ValueError`` naming missing or bad keys."""
        if not isinstance(data, dict):
            raise ValueError("metadata must be a JSON object")
        if data.get("format") != METADATA_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {METADATA_FORMAT!r}")
        required = (
            "classes",
            "thresholds",
            "median_window",
            "feature_config",
            "window_frames",
            "hop_frames",
        )
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"missing keys {missing}")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            kwargs["feature_config"] = FeatureConfig.from_dict(data["feature_config"])
            kwargs["median_window"] = int(data["median_window"])
            kwargs["window_frames"] = int(data["window_frames"])
            kwargs["hop_frames"] = int(data["hop_frames"])
            kwargs["presence"] = dict(data.get("presence") or {})
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from exc

    def write(self, path: str | Path) -> Path:
        """Write as JSON atomically (temporary name, then rename)."""
        return write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> ModelMetadata:
        """Read a sidecar; :class:`ModelError` naming the file when missing, corrupt or invalid."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(
                f"{path}: model metadata not found (export writes it beside the .tflite)"
            )
        try:
            data = json.loads(read_text(path))
        except ValueError as exc:
            raise ModelError(f"{path}: model metadata is not valid JSON ({exc})") from exc
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ModelError(f"{path}: bad model metadata: {exc}") from exc
