"""Streaming export of a ``crnn_stream`` model: ``<name>_stream.tflite`` (float32) and the first
full-integer form that converts, runs and keeps micro-F1 within ``f1_tolerance`` of Keras:
``<name>_stream_int8.tflite`` or else ``<name>_stream_int16x8.tflite`` (16-bit activations),
each with a sidecar, plus ``<name>_stream_export.json`` (every check and every attempt).

The file runs one chunk: ``mel`` (1, chunk_frames, n_mels) and the states ``state_<name>``
(conv time buffers, GRU state; zeros at the start) -> ``probs`` (1, chunk_frames, C) and
``next_state_<name>``. The GRU is unrolled over the chunk, so there is no WHILE loop (the
int8 converter crashes on those). Check: the float file run chunk by chunk over validation
tracks equals the whole-sequence Keras model within ``float_atol`` (1e-5), else the export
fails with the numbers. Input is mel frames; a waveform-in stream would put the front end
layer before ``mel`` and carry its sample buffer as one more state.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.config import FeatureConfig
from iad_tf.export.checks import (
    Check,
    Track,
    decision_metrics,
    f1_check,
    parity,
    raise_failed,
)
from iad_tf.export.serving import keras_probs
from iad_tf.export.tflite import ConversionError, convert, convert_isolated
from iad_tf.fileio import write_json
from iad_tf.inference.metadata import INPUT_NAME, OUTPUT_NAME, SIGNATURE_KEY, ModelMetadata
from iad_tf.inference.stream import (
    load_stream_model,
    pad_to_chunks,
    state_input,
    state_output,
    stream_info,
)
from iad_tf.inference.windows import silence_db

STREAM_SUFFIX = "_stream"
#: Full-integer forms tried in turn: int8 activations, then 16-bit activations (int16x8: int8
#: weights, ~the same size; measured 3.6 ms instead of 0.2 ms per chunk, far closer to float).
STREAM_QUANT_MODES: tuple[str, ...] = ("int8", "int16x8")
#: 16 frames = 0.37 s of audio per chunk at the default features (the issue's <= 0.5 s).
DEFAULT_CHUNK_FRAMES = 16


@dataclass(frozen=True)
class StreamSettings:
    """Chunk size, check bounds and whether to try the full-integer forms."""

    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    float_atol: float = 1e-5
    quantize: bool = True
    #: Benchmarks: try every full-integer mode, keep rejected files as ``*_rejected.tflite``.
    try_all_modes: bool = False
    f1_tolerance: float = 0.02
    representative_chunks: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {self.chunk_frames}")


@dataclass
class StreamExportResult:
    """Paths written and every check made."""

    float_model: Path
    quantized_model: Path | None
    report: Path
    checks: list[Check] = field(default_factory=list)
    quant_attempts: list[dict[str, Any]] = field(default_factory=list)


def stream_step_model(
    model: Any, model_config: Any, mel_stats: Mapping[str, Sequence[float]] | None, chunk: int
) -> Any:
    """The one-chunk form (:func:`~iad_tf.training.models.build_crnn_stream_step`) of a trained
    ``crnn_stream`` ``model``, its weights copied layer by layer (same names)."""
    from iad_tf.training.models import build_crnn_stream_step

    step = build_crnn_stream_step(model_config, mel_stats, chunk)
    for layer in step.layers:
        if layer.weights:
            try:
                layer.set_weights(model.get_layer(layer.name).get_weights())
            except ValueError as exc:
                raise ValueError(
                    f"model is not a crnn_stream of this config: layer {layer.name!r} ({exc})"
                ) from exc
    return step


def write_stream_saved_model(step: Any, path: Path, state_names: Sequence[str]) -> Path:
    """SavedModel of ``step`` with signature ``serving_default``: ``mel`` + ``state_<n>`` ->
    ``probs`` (sigmoid) + ``next_state_<n>``, all at their fixed shapes (the converter's input)."""
    import keras
    import tensorflow as tf
    from keras.export import ExportArchive

    specs = [tf.TensorSpec(tuple(step.inputs[0].shape), tf.float32, name=INPUT_NAME)] + [
        tf.TensorSpec(tuple(t.shape), tf.float32, name=state_input(n))
        for n, t in zip(state_names, step.inputs[1:], strict=True)
    ]
    archive = ExportArchive()
    archive.track(step)

    def serve(mel: Any, *states: Any) -> dict[str, Any]:
        out = step([mel, *states], training=False)
        return {
            OUTPUT_NAME: keras.activations.sigmoid(out["logits"]),
            **{state_output(n): out[n] for n in state_names},
        }

    archive.add_endpoint(SIGNATURE_KEY, serve, input_signature=specs)
    archive.write_out(str(path), verbose=False)
    return path


def representative_chunks(
    step: Any, tracks: Sequence[Track], state_names: Sequence[str], n: int, pad: float, seed: int
) -> dict[str, np.ndarray]:
    """``n`` calibration samples {input name: (n, ...)}: chunks of ``tracks`` with the states
    the Keras step model really reaches there (run from zero states), drawn seeded from the
    first ``4 n / len(tracks)`` chunks of each track (the step model runs eagerly: bounded)."""
    chunk = int(step.inputs[0].shape[1])
    per_track = max(1, -(-4 * n // max(1, len(tracks))))
    rows: dict[str, list[np.ndarray]] = {INPUT_NAME: []} | {state_input(s): [] for s in state_names}
    for _, mel, _ in tracks:
        x = pad_to_chunks(mel[: per_track * chunk], chunk, pad)
        states = [np.zeros(tuple(t.shape), np.float32) for t in step.inputs[1:]]
        for s in range(0, x.shape[0], chunk):
            rows[INPUT_NAME].append(x[None, s : s + chunk])
            for name, v in zip(state_names, states, strict=True):
                rows[state_input(name)].append(v)
            out = step([x[None, s : s + chunk], *states], training=False)
            states = [np.asarray(out[name]) for name in state_names]
    total = len(rows[INPUT_NAME])
    pick = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    return {k: np.concatenate([v[i] for i in pick]) for k, v in rows.items()}


def stream_probs_files(model_path: str, mels_npz: str, out_npz: str) -> None:
    """Child side of :func:`run_isolated`: every log-mel in ``mels_npz`` run chunk by chunk
    through the stream model, probabilities saved to ``out_npz`` under the same keys."""
    model = load_stream_model(model_path)
    with np.load(mels_npz) as mels:
        np.savez(out_npz, **{k: model.run_frames(mels[k]) for k in mels.files})


def run_isolated(path: Path, mels: list[np.ndarray], timeout_s: float = 600.0) -> list[np.ndarray]:
    """Stream probabilities of each log-mel from a fresh child process: a quantised file can
    abort the LiteRT interpreter (seen: SIGABRT on an int8 GRU with all-zero recurrent
    weights), which must not take the export down. ``RuntimeError`` when the child fails."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="iad-tf-stream-") as tmp:
        src, dst = Path(tmp) / "mels.npz", Path(tmp) / "probs.npz"
        np.savez(src, **{f"t{i}": m for i, m in enumerate(mels)})
        code = (
            "import sys; from iad_tf.export.stream import stream_probs_files; "
            "stream_probs_files(*sys.argv[1:])"
        )
        cmd = [sys.executable, "-c", code, str(path), str(src), str(dst)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"{path.name}: running it timed out after {timeout_s:.0f} s"
            ) from exc
        if proc.returncode != 0 or not dst.is_file():
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
            raise RuntimeError(
                f"{path.name}: the LiteRT interpreter failed running it ({how}: {tail})"
            )
        with np.load(dst) as out:
            return [out[f"t{i}"] for i in range(len(mels))]


def export_stream(
    model: Any,
    out_dir: str | Path,
    *,
    model_config: Any,
    mel_stats: Mapping[str, Sequence[float]] | None,
    feature: FeatureConfig,
    classes: Sequence[str],
    val_tracks: Sequence[Track],
    calibration_tracks: Sequence[Track],
    thresholds: np.ndarray,
    median_window: int,
    name: str,
    settings: StreamSettings = StreamSettings(),
    info: dict[str, Any] | None = None,
    progress: Any = None,
) -> StreamExportResult:
    """Export the streaming form of ``model`` (a trained crnn_stream) into ``out_dir``.

    Raises :class:`~iad_tf.export.checks.ExportCheckError` with the numbers when the float
    file run chunk by chunk differs from the whole-sequence Keras model by more than
    ``settings.float_atol``; a full-integer file that does not convert, crashes or loses more
    than ``settings.f1_tolerance`` micro-F1 is left out and the attempt recorded.
    """
    from iad_tf.export.pipeline import _move_into, _ops_check, _versions
    from iad_tf.training.models import stream_state_names, stream_state_shapes

    say = progress or (lambda msg: None)
    info = info or {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    k, pad = settings.chunk_frames, silence_db(feature)
    names = stream_state_names(model_config)
    thr = np.asarray(thresholds, dtype=np.float64)
    base = ModelMetadata(
        classes=tuple(classes),
        thresholds=tuple(round(float(t), 4) for t in thr),
        median_window=int(median_window),
        feature_config=feature,
        window_frames=k,
        hop_frames=k,
        version=_versions(),
        training_data=info.get("training_data", {}),
        model={**info.get("model", {}), "form": "stream (one chunk + explicit state)"},
        stream=stream_info(feature, k, stream_state_shapes(model_config)),
    )
    stem = f"{name}{STREAM_SUFFIX}"
    stage = Path(tempfile.mkdtemp(prefix=f".{stem}.export-", dir=out_dir))
    try:
        say(f"stream: Keras whole-sequence reference on {len(val_tracks)} validation tracks")
        ref = [keras_probs(model, mel[None])[0] for _, mel, _ in val_tracks]  # (frames, C) each
        ref_metrics = decision_metrics(ref, val_tracks, thr, median_window)
        step = stream_step_model(model, model_config, mel_stats, k)
        fixed_dir = write_stream_saved_model(step, stage / "stream_saved_model", names)

        say(f"stream: TFLite float32, chunks of {k} frames")
        float_path = stage / f"{stem}.tflite"
        float_path.write_bytes(convert(fixed_dir, "float32"))
        replace(base, quantization={"mode": "float32"}).write(float_path.with_suffix(".json"))
        float_model = load_stream_model(float_path)
        got = [float_model.run_frames(mel) for _, mel, _ in val_tracks]
        checks = [
            _ops_check(float_path),
            parity(
                "stream float32 (chunked vs whole sequence)",
                np.concatenate(ref),
                np.concatenate(got),
                settings.float_atol,
            ),
        ]
        raise_failed(checks, "stream export check failed")
        validation = {
            "tracks": [t for t, _, _ in val_tracks],
            "keras_whole_sequence": ref_metrics,
            "tflite_stream_float32": decision_metrics(got, val_tracks, thr, median_window),
        }

        quant_path, attempts = None, []
        if settings.quantize:
            rep = representative_chunks(
                step, calibration_tracks, names, settings.representative_chunks, pad, settings.seed
            )
            for mode in STREAM_QUANT_MODES:  # the first mode that runs and keeps F1 wins
                say(f"stream: TFLite {mode} (full integer)")
                path = stage / f"{stem}_{mode}.tflite"
                attempt, qchecks, metrics = _quantized(
                    fixed_dir, path, mode, rep, base, val_tracks, ref, ref_metrics, settings
                )
                attempts.append(attempt)
                if metrics is not None:
                    validation[f"tflite_stream_{mode}"] = metrics
                if attempt["ok"] and quant_path is None:
                    quant_path, checks = path, checks + qchecks
                if quant_path is not None and not settings.try_all_modes:
                    break
        shutil.rmtree(fixed_dir)
        quant_mode = quant_path.stem.rsplit("_", 1)[-1] if quant_path is not None else None
        for path, mode in ((float_path, "float32"), (quant_path, quant_mode)):
            if path is not None:
                quant = {"mode": mode, "attempts": attempts}
                replace(base, quantization=quant, validation=validation).write(
                    path.with_suffix(".json")
                )
        report = stage / f"{stem}_export.json"
        write_json(
            report,
            {
                "settings": asdict(settings),
                "stream": base.stream,
                "checks": [c.to_dict() for c in checks],
                "quantization_attempts": attempts,
                "validation": validation,
                "sizes_bytes": {p.name: p.stat().st_size for p in stage.glob("*.tflite")},
            },
        )
        moved = _move_into(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return StreamExportResult(
        float_model=moved[float_path.name],
        quantized_model=moved[quant_path.name] if quant_path is not None else None,
        report=moved[report.name],
        checks=checks,
        quant_attempts=attempts,
    )


def _quantized(
    fixed_dir: Path,
    path: Path,
    mode: str,
    rep: dict[str, np.ndarray],
    base: ModelMetadata,
    val_tracks: Sequence[Track],
    ref: Sequence[np.ndarray],
    ref_metrics: dict[str, float],
    s: StreamSettings,
) -> tuple[dict[str, Any], list[Check], dict[str, float] | None]:
    """Convert, reload (in a child process) and check one full-integer file; (attempt, checks,
    metrics). A file that fails is deleted."""
    from iad_tf.export.pipeline import _ops_check

    try:
        path.write_bytes(convert_isolated(fixed_dir, mode, rep, dense_per_channel=False))
        replace(base, quantization={"mode": mode}).write(path.with_suffix(".json"))
        got = run_isolated(path, [mel for _, mel, _ in val_tracks])
    except (ConversionError, RuntimeError) as exc:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
        return {"mode": mode, "ok": False, "reason": str(exc)}, [], None
    thr = np.asarray(base.thresholds, dtype=np.float64)
    metrics = decision_metrics(got, val_tracks, thr, base.median_window)
    dp = parity(f"stream {mode}", np.concatenate(ref), np.concatenate(got), 1.0)
    checks = [_ops_check(path), f1_check(f"stream {mode}", ref_metrics, metrics, s.f1_tolerance)]
    ok = all(c.passed for c in checks)
    attempt = {
        "mode": mode,
        "ok": ok,
        "reason": "; ".join(c.line() for c in checks),
        "max_abs_dp_vs_keras": dp.value,
        "bytes": path.stat().st_size,
    }
    if not ok:
        if s.try_all_modes:
            path.rename(path.with_name(f"{path.stem}_rejected.tflite"))
            path.with_suffix(".json").rename(path.with_name(f"{path.stem}_rejected.json"))
        else:
            path.unlink()
            path.with_suffix(".json").unlink()
    return attempt, checks, metrics
