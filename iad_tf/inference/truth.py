"""Score one song's prediction against its annotation (``predict --truth``). TF-free.

The truth is an AAM onsets ARFF (``<id>_onsets.arff``): it passes build-records' checks
(complete, not running past the audio, ending near the audio's end: the annotation belongs to
this song) and frame labels are built exactly as ``build-records`` builds them
(:func:`iad_tf.aam.labels.onset_roll`) on the model's frame grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.aam.arff import ArffError, read_onsets
from iad_tf.aam.labels import (
    LabelError,
    check_annotation_fits,
    check_onsets_complete,
    onset_roll,
)
from iad_tf.config import FeatureConfig
from iad_tf.metrics import f1_from_counts


def truth_roll(
    path: str | Path,
    n_frames: int,
    cfg: FeatureConfig,
    classes: Sequence[str],
    duration_s: float,
    audio_name: str = "the audio",
) -> np.ndarray:
    """uint8 (n_frames, C) activations of the onsets ARFF ``path`` for a song of
    ``duration_s`` seconds; ValueError naming it when it fails build-records' checks."""
    try:
        table = read_onsets(path)
        if len(table.times) == 0:
            raise LabelError(f"{path}: no onset events")
        check_annotation_fits(float(table.times[-1]), duration_s, str(path), audio_name)
        check_onsets_complete(table, duration_s, where=str(path))
        return onset_roll(table, cfg.frame_times(n_frames), classes, str(path))
    except (ArffError, LabelError, OSError) as exc:
        msg = str(exc)
        raise ValueError(msg if str(path) in msg else f"{path}: {msg}") from exc


def score_song(decisions: np.ndarray, truth: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Frame micro-F1 (all classes), macro-F1 (classes present in the truth) and the
    instruments predicted vs present."""
    d, t = decisions.astype(bool), truth.astype(bool)
    tp, fp, fn = (d & t).sum(0), (d & ~t).sum(0), (~d & t).sum(0)
    present = t.any(0)
    predicted = d.any(0)
    f1 = f1_from_counts(tp, fp, fn)
    return {
        "f1_micro": round(float(f1_from_counts(tp.sum(), fp.sum(), fn.sum())), 4),
        "f1_macro": round(float(f1[present].mean()), 4) if present.any() else None,
        "instruments_present": [classes[c] for c in np.flatnonzero(present)],
        "instruments_predicted": [classes[c] for c in np.flatnonzero(predicted)],
        "missed": [classes[c] for c in np.flatnonzero(present & ~predicted)],
        "false_alarms": [classes[c] for c in np.flatnonzero(predicted & ~present)],
    }
