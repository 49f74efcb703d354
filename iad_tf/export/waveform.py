"""The waveform-in export: the trained model behind the in-graph :class:`LogMel` front end.

``<name>_waveform.tflite`` (float32) and ``<name>_waveform_dynamic.tflite`` take one window of
mono float32 audio at the model's rate with its centring context, ``audio`` (1,
(W - 1) * hop + n_fft), and return ``probs`` (1, W, C) and the front end's ``mel`` (1, W,
n_mels) (for checking an app's feed). The quantised form is dynamic-range only: full-integer
int8 and float16 quantise the power spectrum (tens of dB, resp. ~0.7 dB of error when probed),
while dynamic-range leaves the front end, which has no weight matrix, in float.

Checks, on a deterministic check signal (noise and tones at several levels, a near-silent
part and digital silence) fed window by window as ``predict`` feeds songs: every frame's
``mel`` within ``mel_atol_db`` of :func:`iad_tf.audio.logmel`; ``probs`` within ``float_atol``
(float) / ``quant_atol`` (quantised) of the two-step path (the mel model on ``logmel``); builtin
ops only. A failed check fails the export with its numbers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.audio import logmel
from iad_tf.config import FeatureConfig
from iad_tf.export.checks import Check, parity, raise_failed
from iad_tf.export.tflite import convert, non_builtin_ops, op_names
from iad_tf.inference.litert import LiteRTModel
from iad_tf.inference.litert import load_model as load_tflite
from iad_tf.inference.metadata import SIGNATURE_KEY, ModelMetadata
from iad_tf.inference.variants import WAVEFORM, window_samples
from iad_tf.inference.waveform import padded_song, run_audio_windows
from iad_tf.inference.windows import make_windows, silence_db

#: Quantised form of the waveform model (see the module docstring).
WAVEFORM_QUANT = "dynamic"
#: Output of the waveform model's signature holding its in-graph log-mel.
MEL_OUTPUT = "mel"


def waveform_serving_model(model: Any, feature: FeatureConfig, window_frames: int) -> Any:
    """Keras model ``audio`` (1, window_samples) -> {``probs`` (1, W, C), ``mel`` (1, W,
    n_mels)}: :class:`LogMel` then ``model`` (mel -> logits) with a sigmoid; weights shared."""
    import keras

    from iad_tf.export.frontend import LogMel
    from iad_tf.export.serving import serving_model

    serving = serving_model(model, window_frames)  # mel (1, W, n_mels) -> probs
    audio = keras.Input(
        batch_shape=(1, window_samples(window_frames, feature)), name=WAVEFORM.input_name
    )
    mel = LogMel(feature.to_dict(), name="logmel")(audio)  # (1, W, n_mels)
    return keras.Model(audio, {"probs": serving(mel), MEL_OUTPUT: mel}, name="waveform")


def write_waveform_saved_model(wave: Any, path: Path) -> Path:
    """SavedModel of :func:`waveform_serving_model` at its fixed shape (converter input)."""
    import tensorflow as tf
    from keras.export import ExportArchive

    archive = ExportArchive()
    archive.track(wave)
    shape = tuple(int(d) for d in wave.inputs[0].shape)

    def serve(audio: Any) -> dict[str, Any]:
        return dict(wave(audio, training=False))

    archive.add_endpoint(
        SIGNATURE_KEY,
        serve,
        input_signature=[tf.TensorSpec(shape, tf.float32, name=WAVEFORM.input_name)],
    )
    archive.write_out(str(path), verbose=False)
    return path


def check_signal(cfg: FeatureConfig, frames: int, seed: int = 0) -> np.ndarray:
    """Deterministic mono float32 audio of ``frames`` frames: loud noise, tones with
    vibrato, a near-silent stretch (-80 dBFS noise) and digital silence, in quarters."""
    n = (frames - 1) * cfg.hop_length
    t = np.arange(n) / cfg.sample_rate
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.float64)
    q = n // 4
    y[:q] = 0.3 * rng.standard_normal(q)
    tones = sum(
        np.sin(2 * np.pi * f * t[q : 2 * q] + 3 * np.sin(2 * np.pi * 5 * t[q : 2 * q]))
        for f in (110.0, 440.0, 1661.0, 5000.0)
    )
    y[q : 2 * q] = 0.2 * tones + 0.01 * rng.standard_normal(q)
    y[2 * q : 3 * q] = 1e-4 * rng.standard_normal(q)
    return y.astype(np.float32)  # last quarter: digital silence


def reference(
    two_step: LiteRTModel, y: np.ndarray, cfg: FeatureConfig, window: int, hop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Two-step path on ``y``: (log-mel windows (N, W, n_mels), probs (N, W, C))."""
    windows, _ = make_windows(logmel(y, cfg), window, hop, silence_db(cfg))
    return windows, two_step.run_windows(windows)


def waveform_checks(
    path: Path,
    y: np.ndarray,
    ref_mel: np.ndarray,
    ref_probs: np.ndarray,
    probs_atol: float,
    mel_atol_db: float,
    against: str,
) -> list[Check]:
    """Builtin ops, log-mel and probability parity of the waveform model at ``path``."""
    bad = non_builtin_ops(op_names(path))
    ops = Check(path.name, "non-builtin ops", float(len(bad)), 0.0, ", ".join(bad) or "builtin")
    model = load_tflite(path)
    md = model.metadata
    padded, starts, _ = padded_song(y, md.feature_config, md.window_frames, md.hop_frames)
    mel = run_audio_windows(model, padded, starts, MEL_OUTPUT)  # (N, W, n_mels)
    probs = run_audio_windows(model, padded, starts)  # (N, W, C)
    mel_check = parity(f"{path.name} log-mel", ref_mel, mel, mel_atol_db)
    mel_check = replace(mel_check, measure="max |d dB| vs logmel")
    prob_check = parity(path.name, ref_probs, probs, probs_atol)
    prob_check = replace(prob_check, detail=f"vs two-step {against}; {prob_check.detail}")
    return [ops, mel_check, prob_check]


def export_waveform(
    model: Any,
    stage: Path,
    name: str,
    base: ModelMetadata,
    two_step: dict[str, LiteRTModel],
    *,
    quantize: bool,
    float_atol: float,
    quant_atol: float = 0.01,
    mel_atol_db: float = 0.05,
    say: Any = None,
) -> tuple[list[Path], list[Check]]:
    """Write and check the waveform models in ``stage``; return (paths, checks).

    ``two_step``: loaded mel models by quantisation mode (``float32``, and
    :data:`WAVEFORM_QUANT` when ``quantize``): each waveform model is compared with the
    two-step model of its own mode, so the check measures the front end, not the classifier's
    quantisation (checked on its own by micro-F1). Raises :class:`ExportCheckError` with the
    numbers on failure.
    """
    import shutil

    say = say or (lambda msg: None)
    cfg, W, H = base.feature_config, base.window_frames, base.hop_frames  # noqa: N806
    y = check_signal(cfg, 2 * W + H)
    sm_dir = stage / "waveform_fixed_saved_model"
    write_waveform_saved_model(waveform_serving_model(model, cfg, W), sm_dir)
    modes = ["float32"] + ([WAVEFORM_QUANT] if quantize else [])
    paths: list[Path] = []
    checks: list[Check] = []
    try:
        for mode in modes:
            say(f"TFLite waveform {mode}")
            path = WAVEFORM.path(stage, name, mode)
            path.write_bytes(convert(sm_dir, mode))
            replace(base, quantization={"mode": mode, "front_end": "in-graph LogMel"}).write(
                path.with_suffix(".json")
            )
            against = mode
            ref_mel, ref_probs = reference(two_step[against], y, cfg, W, H)
            atol = float_atol if mode == "float32" else quant_atol
            checks += waveform_checks(path, y, ref_mel, ref_probs, atol, mel_atol_db, against)
            paths.append(path)
        raise_failed(checks, "waveform export check failed")
    finally:
        shutil.rmtree(sm_dir, ignore_errors=True)
    return paths, checks
