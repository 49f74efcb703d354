"""Serving forms of a trained Keras model: probabilities instead of logits.

* :func:`serving_model`: fixed input ``mel`` (1, window_frames, n_mels) -> ``probs``
  (1, window_frames, C), for TFLite (a Bidirectional GRU converts to builtin ops only with a
  static time axis).
* :func:`write_saved_model`: a SavedModel whose ``serving_default`` signature takes ``mel``
  (batch, frames, n_mels) float32 of any batch and length and returns ``{"probs": (batch,
  frames, C)}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.inference.metadata import INPUT_NAME, OUTPUT_NAME, SIGNATURE_KEY


def serving_model(model: Any, window_frames: int) -> Any:
    """``model`` (mel -> logits, any length) rebuilt with input (1, window_frames, n_mels) and
    a sigmoid output named ``probs``; weights are copied."""
    import keras

    from iad_tf.training.models import with_fixed_input

    fixed = with_fixed_input(model, window_frames, batch_size=1)
    probs = keras.layers.Activation("sigmoid", name=OUTPUT_NAME)(fixed.outputs[0])
    return keras.Model(fixed.inputs[0], probs, name=f"{model.name}_serving")


def _write_archive(model: Any, path: Path, shape: tuple[int | None, ...], sigmoid: bool) -> Path:
    import keras
    import tensorflow as tf
    from keras.export import ExportArchive

    archive = ExportArchive()
    archive.track(model)

    def serve(mel: Any) -> dict[str, Any]:
        out = model(mel, training=False)
        return {OUTPUT_NAME: keras.activations.sigmoid(out) if sigmoid else out}

    archive.add_endpoint(
        SIGNATURE_KEY, serve, input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)]
    )
    archive.write_out(str(path), verbose=False)
    return path


def write_saved_model(model: Any, path: str | Path) -> Path:
    """SavedModel of ``model`` (logits) with signature ``serving_default``:
    ``mel`` (batch, frames, n_mels) -> ``probs`` (batch, frames, C)."""
    n_mels = int(model.inputs[0].shape[-1])
    return _write_archive(model, Path(path), (None, None, n_mels), sigmoid=True)


def write_fixed_saved_model(serving: Any, path: str | Path) -> Path:
    """SavedModel of a :func:`serving_model` (already probabilities) at its fixed shape: the
    TFLite converter's input."""
    shape = tuple(int(d) for d in serving.inputs[0].shape)
    return _write_archive(serving, Path(path), shape, sigmoid=False)


def keras_probs(model: Any, windows: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Sigmoid of ``model`` logits on windows (N, W, n_mels) -> float32 (N, W, C)."""
    from scipy.special import expit

    out = [
        np.asarray(model(windows[i : i + batch_size], training=False))
        for i in range(0, windows.shape[0], batch_size)
    ]
    return expit(np.concatenate(out).astype(np.float64)).astype(np.float32)


def saved_model_probs(path: str | Path, windows: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Reload a SavedModel and run its ``serving_default`` on (N, W, n_mels) -> (N, W, C)."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]
    out = [
        fn(**{INPUT_NAME: tf.constant(windows[i : i + batch_size])})[OUTPUT_NAME].numpy()
        for i in range(0, windows.shape[0], batch_size)
    ]
    return np.concatenate(out).astype(np.float32)
