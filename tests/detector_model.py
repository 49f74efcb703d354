"""A hand-wired 'tone detector' exported with the real exporter, for the predict tests.

Two classes listen to the mel bins of their own sine tone: ``logit = gain * (mean dB of
those bins - midpoint)``, where the midpoint lies halfway between the tone's level and
silence; every other class has a large negative bias. So the model's true activity is known
exactly from the audio, which lets the tests check windows, stitching, thresholds, segments
and files end to end without training anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from iad_tf.audio import logmel
from iad_tf.config import AAM_CLASSES, FeatureConfig

FEATURE = FeatureConfig()
#: class name -> tone frequency (Hz)
TONES: dict[str, float] = {"Flute": 1760.0, "ElectricBass": 110.0}
AMPLITUDE = 0.3
WINDOW_FRAMES = 64
FADE_S = 0.005
WRITE_SR = 44100  # a different rate from the model's, so predict has to resample


def tone(freq: float, seconds: float, sr: int = WRITE_SR) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (AMPLITUDE * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def song(
    activity: dict[str, list[tuple[float, float]]], seconds: float, sr: int = WRITE_SR
) -> np.ndarray:
    """Mono song (samples,): each class's tone sounds during its (start_s, end_s) spans."""
    y = np.zeros(int(round(seconds * sr)), dtype=np.float32)
    t = np.arange(y.size) / sr
    for name, spans in activity.items():
        for a, b in spans:
            gate = np.clip(np.minimum(t - a, b - t) / FADE_S, 0.0, 1.0)  # 5 ms fades: no clicks
            y += (gate * tone(TONES[name], seconds, sr)).astype(np.float32)
    return y


def write_song(
    path: Path, activity: dict[str, list[tuple[float, float]]], seconds: float, stereo: bool = True
) -> Path:
    y = song(activity, seconds)
    data = np.stack([y, y], axis=1) if stereo else y
    sf.write(path, data, WRITE_SR)
    return path


def build_detector() -> object:
    """Keras functional model ``mel`` (batch, frames, 128) -> ``logits`` (batch, frames, 31)."""
    import keras

    kernel = np.zeros((FEATURE.n_mels, len(AAM_CLASSES)), dtype=np.float32)
    bias = np.full(len(AAM_CLASSES), -30.0, dtype=np.float32)
    silence = logmel(np.zeros(FEATURE.sample_rate, np.float32), FEATURE).mean()
    for name, freq in TONES.items():
        mel = logmel(tone(freq, 1.0, FEATURE.sample_rate), FEATURE)[5:-5].mean(axis=0)  # (128,)
        bins = np.flatnonzero(mel > mel.max() - 6.0)
        level = mel[bins].mean()
        c = AAM_CLASSES.index(name)
        gain = 10.0 / (level - silence)
        kernel[bins, c] = gain / len(bins)
        bias[c] = -gain * (level + silence) / 2.0
    inp = keras.Input((None, FEATURE.n_mels), name="mel")
    out = keras.layers.Dense(len(AAM_CLASSES), name="logits")(inp)
    model = keras.Model(inp, out, name="detector")
    model.get_layer("logits").set_weights([kernel, bias])
    return model


def export_detector(out_dir: Path, name: str = "detector", median_window: int = 1) -> Path:
    """Export :func:`build_detector` with :func:`iad_tf.export.pipeline.export_model`;
    return the float ``.tflite`` path."""
    from iad_tf.export.pipeline import ExportSettings, export_model
    from iad_tf.training.models import with_fixed_input  # noqa: F401  (export uses it)

    model = build_detector()
    activity = {"Flute": [(0.5, 2.0)], "ElectricBass": [(1.5, 3.0)]}
    y = song(activity, 3.5, FEATURE.sample_rate)
    mel = logmel(y, FEATURE)
    labels = np.zeros((mel.shape[0], len(AAM_CLASSES)), np.uint8)
    times = FEATURE.frame_times(mel.shape[0])
    for name_, spans in activity.items():
        for a, b in spans:
            labels[(times >= a) & (times < b), AAM_CLASSES.index(name_)] = 1
    res = export_model(
        model,
        out_dir,
        feature=FEATURE,
        classes=AAM_CLASSES,
        val_tracks=[("song", mel, labels)],
        representative=None,
        median_window=median_window,
        settings=ExportSettings(
            window_frames=WINDOW_FRAMES, hop_frames=48, quantize="none", name=name
        ),
        info={"model": {"architecture": "hand-wired tone detector (tests)"}},
    )
    return res.float_model
