"""Masked, class-weighted binary cross-entropy on logits (registered, serializable).

Per element, with logit ``x``, label ``y`` and the class's positive weight ``w``::

    l = w * y * softplus(-x) + (1 - y) * softplus(x)
      = -[w * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))]

which is PyTorch's ``BCEWithLogitsLoss(pos_weight=w)`` written with softplus, stable for any
finite logit.

**Masking**: the per-frame mask travels as Keras's ``sample_weight`` (batch, frames) with 1 for
real and 0 for padded frames (the pipeline yields ``(mel, labels, mask)``). The loss is the
mean over classes and over real frames: ``sum(mask * mean_c(l)) / sum(mask)`` (Keras reduction
``"mean_with_sample_weight"``), so the value does not depend on how much padding a batch holds.
Logits and labels of padded frames are replaced by zeros before the loss is computed, so
anything in them (even NaN) contributes nothing, neither to the value nor to the gradient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="iad_tf")
class MaskedWeightedBCE(keras.losses.Loss):
    """``y_true`` (batch, frames, C) in {0, 1}, ``y_pred`` logits (batch, frames, C),
    ``sample_weight`` mask (batch, frames) -> scalar. ``pos_weight``: C floats or None (all 1)."""

    def __init__(
        self,
        pos_weight: Sequence[float] | None = None,
        name: str = "masked_weighted_bce",
        reduction: str = "mean_with_sample_weight",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.pos_weight = None if pos_weight is None else [float(w) for w in pos_weight]

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if sample_weight is not None:
            y_pred = ops.convert_to_tensor(y_pred)
            keep = ops.cast(sample_weight, "float32") > 0  # (batch, frames)
            keep = ops.expand_dims(keep, -1)  # (batch, frames, 1)
            y_pred = ops.where(keep, y_pred, ops.zeros_like(y_pred))
            y_true = ops.where(keep, ops.cast(y_true, y_pred.dtype), ops.zeros_like(y_pred))
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-frame loss (batch, frames): the element losses averaged over classes."""
        y_true = ops.cast(y_true, y_pred.dtype)
        pos = ops.softplus(-y_pred)  # -log(sigmoid(x))
        neg = ops.softplus(y_pred)  # -log(1 - sigmoid(x))
        if self.pos_weight is not None:
            w = ops.convert_to_tensor(
                np.asarray(self.pos_weight, dtype=np.float32), dtype=y_pred.dtype
            )
            pos = pos * w
        return ops.mean(y_true * pos + (1.0 - y_true) * neg, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pos_weight": self.pos_weight}


def pos_weight_from_manifest(
    manifest: Mapping[str, Any], lo: float = 1.0, hi: float = 50.0, split: str = "train"
) -> list[float]:
    """Per-class neg/pos frame ratio of ``split``, clipped to [lo, hi]: list of C floats.

    Uses ``class_active_frames[split]`` and ``frames[split]``; a class with no active frame
    gets ``lo`` (its positive term never occurs, so its weight does not matter).
    """
    classes = manifest["classes"]
    total = float(manifest["frames"][split])
    active = manifest["class_active_frames"][split]
    out = []
    for c in classes:
        pos = float(active.get(c, 0))
        out.append(lo if pos <= 0 else float(np.clip((total - pos) / pos, lo, hi)))
    return out
