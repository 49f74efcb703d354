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

**Auxiliary columns** (multi-task training, ``aux_columns`` K > 0): the last K columns of
labels and logits belong to an auxiliary head (the multi-pitch roll); per frame the loss is
``mean_c(l over the C class columns) + aux_weight * mean_k(l over the K columns, weight 1)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="iad_tf")
class MaskedWeightedBCE(keras.losses.Loss):
    """``y_true`` (batch, frames, C [+ K]) in {0, 1}, ``y_pred`` logits of the same shape,
    ``sample_weight`` mask (batch, frames) -> scalar. ``pos_weight``: C floats or None (all 1);
    ``aux_columns``/``aux_weight``: K trailing auxiliary columns and their weight."""

    def __init__(
        self,
        pos_weight: Sequence[float] | None = None,
        name: str = "masked_weighted_bce",
        reduction: str = "mean_with_sample_weight",
        aux_columns: int = 0,
        aux_weight: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.pos_weight = None if pos_weight is None else [float(w) for w in pos_weight]
        self.aux_columns, self.aux_weight = int(aux_columns), float(aux_weight)
        if self.aux_columns < 0 or self.aux_weight < 0:
            raise ValueError("aux_columns and aux_weight must be >= 0")

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
        aux = None
        if self.aux_columns:
            k = self.aux_columns
            aux = self._element(y_true[..., -k:], y_pred[..., -k:], None)
            y_true, y_pred = y_true[..., :-k], y_pred[..., :-k]
        main = ops.mean(self._element(y_true, y_pred, self.pos_weight), axis=-1)
        if aux is None:
            return main
        return main + self.aux_weight * ops.mean(aux, axis=-1)

    @staticmethod
    def _element(y_true: Any, y_pred: Any, pos_weight: Sequence[float] | None) -> Any:
        pos = ops.softplus(-y_pred)  # -log(sigmoid(x))
        neg = ops.softplus(y_pred)  # -log(1 - sigmoid(x))
        if pos_weight is not None:
            pos = pos * ops.convert_to_tensor(np.asarray(pos_weight, dtype=np.float32), dtype=y_pred.dtype)
        return y_true * pos + (1.0 - y_true) * neg

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pos_weight": self.pos_weight,
                "aux_columns": self.aux_columns, "aux_weight": self.aux_weight}


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
