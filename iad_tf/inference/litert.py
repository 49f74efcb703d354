"""Load an exported ``.tflite`` with its metadata and run it through LiteRT.

The model is driven through its ``serving_default`` signature with named tensors (input
``mel`` (1, window_frames, n_mels) or, for a waveform model, ``audio`` (1, samples); output
``probs`` (1, window_frames, C)), never through internal tensor indices.

Metadata: the copy embedded in the ``.tflite`` (:mod:`iad_tf.inference.embedded`) wins over
the sidecar ``<stem>.json``: it was written into the file at export and travels with it,
while a sidecar can be stale or belong to another export. When both exist and disagree, the
loaded model carries a note naming the differing keys (``predict`` prints it). A file with
only a sidecar (e.g. exported before metadata was embedded) loads from the sidecar.
TF-free: ``ai_edge_litert`` only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.fileio import read_text
from iad_tf.inference.metadata import (
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE_KEY,
    ModelError,
    ModelMetadata,
    sidecar_path,
)
from iad_tf.inference.variants import MEL, ExportVariant, variant_for_inputs


@dataclass
class LiteRTModel:
    """A loaded model: ``path``, its ``metadata`` and a signature runner."""

    path: Path
    metadata: ModelMetadata
    runner: Any
    interpreter: Any
    variant: ExportVariant = MEL
    notes: list[str] = field(default_factory=list)

    @property
    def window_frames(self) -> int:
        return self.metadata.window_frames

    @property
    def n_mels(self) -> int:
        return self.metadata.feature_config.n_mels

    def run_window(self, x: np.ndarray) -> np.ndarray:
        """Probabilities float32 (window_frames, C) of one window: mel (window_frames, n_mels)
        dB, or for a waveform model audio (window_samples,)."""
        x = np.ascontiguousarray(x, dtype=np.float32)[None]  # (1, W, n_mels) or (1, samples)
        name = self.variant.input_name
        return np.asarray(self.runner(**{name: x})[OUTPUT_NAME][0], dtype=np.float32)

    def run_windows(self, windows: np.ndarray) -> np.ndarray:
        """(N, W, n_mels) -> (N, W, C), one window at a time (the model's batch size is 1)."""
        c = len(self.metadata.classes)
        out = np.empty((windows.shape[0], windows.shape[1], c), dtype=np.float32)
        for i, w in enumerate(windows):
            out[i] = self.run_window(w)
        return out


def load_model(path: str | Path, threads: int | None = None) -> LiteRTModel:
    """Load ``path`` (.tflite) with its metadata (embedded, else ``<stem>.json``); check that
    model and metadata agree.

    Raises :class:`ModelError` naming the file for a missing or corrupt model, missing or
    invalid metadata, a missing signature, or tensor shapes that contradict the metadata.
    """
    path = Path(path)
    sig = open_signature(path, threads)
    metadata, interpreter, runner = sig.metadata, sig.interpreter, sig.runner
    if metadata.stream:
        raise ModelError(
            f"{path}: a streaming model (one chunk + state tensors); run it with "
            "`iad-tf predict --stream` or iad_tf.inference.stream.Stream"
        )
    check_tensors(path, metadata, runner, sig.variant)
    model = LiteRTModel(path, metadata, runner, interpreter, sig.variant, sig.notes)
    shape = sig.variant.input_shape(metadata.feature_config, metadata.window_frames)[1:]
    try:  # one silent run: delegates log on first use, and a model that cannot run fails here
        with quiet_native_stderr():
            model.run_window(np.zeros(shape, np.float32))
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: the model does not run ({_first_line(exc)})") from exc
    return model


@dataclass(frozen=True)
class Signature:
    """An opened model: metadata, interpreter, ``serving_default`` runner, its variant (which
    input it takes) and notes about the metadata."""

    metadata: ModelMetadata
    interpreter: Any
    runner: Any
    variant: ExportVariant
    notes: list[str]


def open_signature(path: Path, threads: int | None) -> Signature:
    """Open ``path``'s ``serving_default`` signature; :class:`ModelError` naming the file when
    the model or its metadata is missing or unusable."""
    from ai_edge_litert.interpreter import Interpreter

    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    metadata, notes = read_metadata(path)
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        signatures = interpreter.get_signature_list()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a valid TFLite model ({_first_line(exc)})") from exc
    sig = signatures.get(SIGNATURE_KEY)
    variant = variant_for_inputs(sig["inputs"]) if sig else None
    if variant is None or OUTPUT_NAME not in sig["outputs"]:
        raise ModelError(
            f"{path}: needs signature {SIGNATURE_KEY!r} with input {INPUT_NAME!r} (or "
            f"'audio') and output {OUTPUT_NAME!r}; found {signatures}"
        )
    try:
        runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: cannot prepare the model ({_first_line(exc)})") from exc
    return Signature(metadata, interpreter, runner, variant, notes)


def read_metadata(path: Path) -> tuple[ModelMetadata, list[str]]:
    """The metadata of model ``path`` and notes about it: the embedded copy when there is one
    (a note names the keys where the sidecar disagrees), else the sidecar; :class:`ModelError`
    when neither exists or the one used is invalid."""
    from iad_tf.inference.embedded import EmbeddedMetadataError, read_embedded_file

    sidecar = sidecar_path(path)
    try:
        embedded = read_embedded_file(path)
    except EmbeddedMetadataError as exc:
        raise ModelError(f"{path}: not a valid TFLite model ({exc})") from exc
    if embedded is None:
        return ModelMetadata.read(sidecar), []
    try:
        metadata = ModelMetadata.from_dict(embedded)
    except ValueError as exc:
        raise ModelError(f"{path}: bad embedded model metadata: {exc}") from exc
    if not sidecar.is_file():
        return metadata, []
    try:
        side = json.loads(read_text(sidecar))
    except ValueError:
        return metadata, [f"{sidecar}: not valid JSON; using the metadata embedded in {path.name}"]
    side = side if isinstance(side, dict) else {}
    differ = sorted(k for k in set(side) | set(embedded) if side.get(k) != embedded.get(k))
    if not differ:
        return metadata, []
    return metadata, [
        f"{sidecar} disagrees with the metadata embedded in {path.name} "
        f"(keys: {', '.join(differ)}); using the embedded metadata"
    ]


def check_tensors(
    path: Path, metadata: ModelMetadata, runner: Any, variant: ExportVariant = MEL
) -> None:
    """:class:`ModelError` unless the input is ``variant``'s shape for the metadata's window
    (float32) and the output (1, window_frames, len(classes)) float32."""
    name = variant.input_name
    inp = runner.get_input_details()[name]
    out = runner.get_output_details()[OUTPUT_NAME]
    want_in = variant.input_shape(metadata.feature_config, metadata.window_frames)
    want_out = (1, metadata.window_frames, len(metadata.classes))
    problems = []
    if tuple(inp["shape"]) != want_in:
        problems.append(
            f"input {name} is {tuple(int(v) for v in inp['shape'])}, "
            f"metadata says {want_in} ({variant.name} model, window_frames, feature config)"
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
        raise ModelError(f"{path}: model does not match its metadata: " + "; ".join(problems))


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
