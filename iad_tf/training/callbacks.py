"""Training callbacks: masked validation metrics, NaN guard, per-epoch JSON lines, and the
standard set (checkpoint, early stopping, CSV, TensorBoard, backup) wired to the same names.

Order matters: :class:`MaskedValidationMetrics` comes first so that ``val_<name>`` is in the
epoch logs before the checkpoint, early stopping and loggers read them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from iad_tf.fileio import atomic_path, write_text
from iad_tf.metrics import (
    F1_MACRO,
    MAP,
    METRIC_NAMES,
    binarize,
    frame_metrics,
    mean_average_precision,
)
from iad_tf.training.checkpoints import BACKUP_DIR, save_model

log = logging.getLogger(__name__)

MONITOR = f"val_{F1_MACRO}"
VAL_LOSS = "val_loss"


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the message names epoch and step."""


def inference_fn(model: keras.Model) -> Any:
    """``model(x, training=False)`` as one tf.function for every batch size and track length
    (an eager GRU would loop over the frames in Python)."""
    import tensorflow as tf

    n_mels = int(model.input.shape[-1])
    return tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, None, n_mels), tf.float32)],
    )


def collect_predictions(
    model: keras.Model, dataset: Any, forward: Any = None, loss: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Run ``model`` over (mel, labels, mask) batches; keep real frames only.

    Returns (labels uint8 (N, C), probabilities float32 (N, C), logits float32 (N, C),
    masked loss of ``loss`` (default: the model's compiled loss) or NaN when there is none).
    ``forward``: a cached :func:`inference_fn` of ``model``.
    """
    ys, ps, zs = [], [], []
    loss_sum, weight_sum = 0.0, 0.0
    loss_fn = loss if loss is not None else getattr(model, "loss", None)
    forward = forward or inference_fn(model)
    for mel, labels, mask in dataset:
        logits = forward(mel)  # (b, T, C)
        if callable(loss_fn):
            w = float(np.sum(mask))
            loss_sum += float(loss_fn(labels, logits, sample_weight=mask)) * w
            weight_sum += w
        keep = np.asarray(mask).astype(bool)  # (b, T)
        z = np.asarray(logits)[keep]  # (n, C)
        ys.append(np.asarray(labels)[keep].astype(np.uint8))
        zs.append(z.astype(np.float32))
        ps.append((1.0 / (1.0 + np.exp(-z))).astype(np.float32))
    if not ys:
        raise ValueError("validation dataset is empty")
    loss = loss_sum / weight_sum if weight_sum else float("nan")
    return np.concatenate(ys), np.concatenate(ps), np.concatenate(zs), loss


class MaskedValidationMetrics(keras.callbacks.Callback):
    """After every epoch: predict the validation set, score real frames with
    :func:`iad_tf.metrics.frame_metrics` and add ``val_loss`` and ``val_<name>`` for every
    name in :data:`iad_tf.metrics.METRIC_NAMES` to the epoch logs.

    ``model``/``loss``: score this model (default: the one being trained) with this loss
    (default: its compiled one); multi-task training scores the instrument head alone."""

    def __init__(self, dataset: Any, threshold: float = 0.5, model: keras.Model | None = None,
                 loss: Any = None) -> None:
        super().__init__()
        self.dataset = dataset
        self.threshold = threshold
        self.scored, self.loss = model, loss
        self._forward: tuple[int, Any] | None = None

    def evaluate(self) -> dict[str, float]:
        model = self.scored or self.model
        if self._forward is None or self._forward[0] != id(model):
            self._forward = (id(model), inference_fn(model))
        y, p, _, loss = collect_predictions(model, self.dataset, self._forward[1], self.loss)
        scores = frame_metrics(y, binarize(p, self.threshold))
        return {VAL_LOSS: loss, **{f"val_{k}": scores[k] for k in METRIC_NAMES},
                f"val_{MAP}": mean_average_precision(y, p)}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs.update(self.evaluate())


class NaNGuard(keras.callbacks.Callback):
    """Stop at the first non-finite training loss with a message naming epoch and step."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise TrainingDiverged(
                f"training loss became {float(loss)} at epoch {self.epoch + 1}, step {batch + 1}; "
                "try a lower --learning-rate or check the records"
            )


class JsonLinesLogger(keras.callbacks.Callback):
    """Append one JSON object per epoch ({"epoch", "time_s", logs...}) to ``path``."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._t0 = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {"epoch": epoch + 1, "time_s": round(time.monotonic() - self._t0, 3)}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def best_so_far(metrics_jsonl: Path, key: str = MONITOR) -> float | None:
    """Best ``key`` over the epochs already logged (for a resumed run's checkpoint)."""
    if not metrics_jsonl.is_file():
        return None
    values = []
    for line in metrics_jsonl.read_text(encoding="utf-8").splitlines():
        if line.strip():
            v = json.loads(line).get(key)
            if v is not None and math.isfinite(v):
                values.append(v)
    return max(values) if values else None


class EpochLine(keras.callbacks.Callback):
    """One plain line per epoch (no progress bar, carriage returns or ANSI escapes), for
    output that is not a terminal: ``epoch 3/50 - 12.4 s - loss 0.5123 - val_f1_macro ...``."""

    def __init__(self, epochs: int, write: Any = print) -> None:
        super().__init__()
        self.epochs, self.write, self._t0 = epochs, write, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        items = [f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if np.isscalar(v)
                 or np.ndim(v) == 0]
        self.write(" - ".join([f"epoch {epoch + 1}/{self.epochs}",
                               f"{time.perf_counter() - self._t0:.1f} s", *items]))


class KeptModelCheckpoint(keras.callbacks.Callback):
    """Save the model to ``path`` after an epoch whose ``monitor`` beats the best so far
    (``save_best_only``) or after every epoch; atomically. ``model``: save this one (default:
    the model being trained)."""

    def __init__(
        self, path: Path, monitor: str, save_best_only: bool = True, best: float | None = None,
        model: keras.Model | None = None,
    ) -> None:
        super().__init__()
        self.path, self.monitor, self.save_best_only = Path(path), monitor, save_best_only
        self.best = -math.inf if best is None else best
        self.saved = model

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        better = value is not None and math.isfinite(float(value)) and float(value) > self.best
        if better:
            self.best = float(value)  # type: ignore[arg-type]
        if better or not self.save_best_only:
            save_model(self.saved or self.model, self.path)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore whose weights and epoch are each written to a temporary name
    and renamed (Keras writes both in place: a kill mid-save left an unreadable backup)."""

    def __init__(self, backup_dir: str | Path) -> None:
        super().__init__(str(backup_dir), delete_checkpoint=False)

    def _save_model(self) -> None:
        with atomic_path(self._weights_path, keep_name_end=True) as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
        write_text(
            self._training_metadata_path,
            json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}),
        )



def standard_callbacks(
    run_dir: Path,
    val_dataset: Any,
    threshold: float,
    patience: int,
    resumed_best: float | None = None,
    save_best_only: bool = True,
    model: keras.Model | None = None,
    val_loss: Any = None,
) -> list[keras.callbacks.Callback]:
    """Metrics first, then checkpoint/early stopping on ``val_f1_macro``, logs and backup.

    ``save_best_only=False`` keeps the last epoch's weights instead of the best epoch's.
    ``model``/``val_loss``: the model validation scores (with this loss) and the checkpoint
    saves, when it is not the one being trained (multi-task: the instrument head alone).

    TensorBoard logging needs the ``tensorboard`` package (TensorFlow 2.21 no longer pulls it
    in); without it the run goes on with a warning and no ``logs/``.
    """
    tensorboard: list[keras.callbacks.Callback] = []
    if importlib.util.find_spec("tensorboard") is not None:
        tensorboard.append(
            keras.callbacks.TensorBoard(
                log_dir=str(run_dir / "logs"), write_graph=False, profile_batch=0
            )
        )
    else:
        log.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
    return [
        NaNGuard(),
        MaskedValidationMetrics(val_dataset, threshold, model=model, loss=val_loss),
        KeptModelCheckpoint(
            run_dir / "model.keras", MONITOR, save_best_only,
            best=resumed_best if save_best_only else None, model=model,
        ),
        keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=patience, verbose=1),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        JsonLinesLogger(run_dir / "metrics.jsonl"),
        *tensorboard,
        AtomicBackupAndRestore(run_dir / BACKUP_DIR),  # last: after every log of the epoch
    ]
