"""Load an exported ``.tflite`` with its sidecar metadata and run it through LiteRT.

The model is driven through its ``serving_default`` signature with named tensors
(``mel`` (1, window_frames, n_mels) -> ``probs`` (1, window_frames, C)), never through
internal tensor indices. TF-free: ``ai_edge_litert`` only.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.inference.metadata import (
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE_KEY,
    ModelError,
    ModelMetadata,
    sidecar_path,
)


@dataclass
class LiteRTModel:
    """A loaded model: ``path``, its ``metadata`` and a signature runner."""

    path: Path
    metadata: ModelMetadata
    runner: Any
    interpreter: Any

    @property
    def window_frames(self) -> int:
        return self.metadata.window_frames

    @property
    def n_mels(self) -> int:
        return self.metadata.feature_config.n_mels

    def run_window(self, mel: np.ndarray) -> np.ndarray:
        """Probabilities float32 (window_frames, C) of one window mel (window_frames, n_mels) dB."""
        x = np.ascontiguousarray(mel, dtype=np.float32)[None]  # (1, W, n_mels)
        return np.asarray(self.runner(**{INPUT_NAME: x})[OUTPUT_NAME][0], dtype=np.float32)

    def run_windows(self, windows: np.ndarray) -> np.ndarray:
        """(N, W, n_mels) -> (N, W, C), one window at a time (the model's batch size is 1)."""
        c = len(self.metadata.classes)
        out = np.empty((windows.shape[0], windows.shape[1], c), dtype=np.float32)
        for i, w in enumerate(windows):
            out[i] = self.run_window(w)
        return out


def load_model(path: str | Path, threads: int | None = None) -> LiteRTModel:
    """Load ``path`` (.tflite) and ``<stem>.json``; check that they agree.

    Raises :class:`ModelError` naming the file for a missing or corrupt model, missing or
    invalid metadata, a missing signature, or tensor shapes that contradict the metadata.
    """
    path = Path(path)
    metadata, interpreter, runner = open_signature(path, threads)
    if metadata.stream:
        raise ModelError(
            f"{path}: a streaming model (one chunk + state tensors); run it with "
            "`iad-tf predict --stream` or iad_tf.inference.stream.Stream"
        )
    check_tensors(path, metadata, runner)
    model = LiteRTModel(path, metadata, runner, interpreter)
    try:  # one silent run: delegates log on first use, and a model that cannot run fails here
        with quiet_native_stderr():
            model.run_window(
                np.zeros((metadata.window_frames, metadata.feature_config.n_mels), np.float32)
            )
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: the model does not run ({_first_line(exc)})") from exc
    return model


def open_signature(path: Path, threads: int | None) -> tuple[ModelMetadata, Any, Any]:
    """(metadata, interpreter, ``serving_default`` runner) of ``path``; :class:`ModelError`
    naming the file when the model or its metadata is missing or unusable."""
    from ai_edge_litert.interpreter import Interpreter

    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    metadata = ModelMetadata.read(sidecar_path(path))
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        signatures = interpreter.get_signature_list()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a valid TFLite model ({_first_line(exc)})") from exc
    sig = signatures.get(SIGNATURE_KEY)
    if sig is None or INPUT_NAME not in sig["inputs"] or OUTPUT_NAME not in sig["outputs"]:
        raise ModelError(
            f"{path}: needs signature {SIGNATURE_KEY!r} with input {INPUT_NAME!r} and output "
            f"{OUTPUT_NAME!r}; found {signatures}"
        )
    try:
        runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: cannot prepare the model ({_first_line(exc)})") from exc
    return metadata, interpreter, runner


def check_tensors(path: Path, metadata: ModelMetadata, runner: Any) -> None:
    """:class:`ModelError` unless input is (1, window_frames, n_mels) float32 and output
    (1, window_frames, len(classes))."""
    inp = runner.get_input_details()[INPUT_NAME]
    out = runner.get_output_details()[OUTPUT_NAME]
    want_in = (1, metadata.window_frames, metadata.feature_config.n_mels)
    want_out = (1, metadata.window_frames, len(metadata.classes))
    problems = []
    if tuple(inp["shape"]) != want_in:
        problems.append(
            f"input {INPUT_NAME} is {tuple(int(v) for v in inp['shape'])}, "
            f"metadata says {want_in} (window_frames, n_mels)"
        )
    if tuple(out["shape"]) != want_out:
        problems.append(
            f"output {OUTPUT_NAME} is {tuple(int(v) for v in out['shape'])}, "
            f"metadata says {want_out} ({len(metadata.classes)} classes)"
        )
    if np.dtype(inp["dtype"]) != np.float32 or np.dtype(out["dtype"]) != np.float32:
        problems.append(
            f"tensors must be float32 (input {np.dtype(inp['dtype'])}, "
            f"output {np.dtype(out['dtype'])})"
        )
    if problems:
        raise ModelError(
            f"{path}: model does not match its metadata {sidecar_path(path).name}: "
            + "; ".join(problems)
        )


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C++ writes to file descriptor 2 (not Python exceptions) inside the block."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to do
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
