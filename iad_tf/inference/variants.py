"""The forms an exported model comes in: one table, one path resolver. TF-free.

Every variant is the same trained model behind a different input: ``mel`` takes log-mel
windows (the app computes :func:`iad_tf.audio.logmel`), ``waveform`` takes the raw audio of
one window with its centring context and computes the log-mel in the graph
(:class:`iad_tf.export.frontend.LogMel`). A new form (e.g. a streaming model) is one more
entry here. The loader tells the variants apart by the signature's input name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iad_tf.config import FeatureConfig


@dataclass(frozen=True)
class ExportVariant:
    """``name``; ``suffix`` added to the file stem; ``input_name`` of its signature input;
    ``takes_audio``: the input is audio samples (log-mel in the graph), else log-mel frames."""

    name: str
    suffix: str
    input_name: str
    takes_audio: bool
    description: str

    def input_shape(self, cfg: FeatureConfig, window_frames: int) -> tuple[int, ...]:
        """Shape of the signature input for windows of ``window_frames`` frames."""
        if self.takes_audio:
            return (1, window_samples(window_frames, cfg))
        return (1, window_frames, cfg.n_mels)

    def path(self, out_dir: str | Path, stem: str, mode: str = "float32") -> Path:
        """``<out_dir>/<stem><suffix>[_<mode>].tflite`` (no mode suffix for float32)."""
        tail = "" if mode == "float32" else f"_{mode}"
        return Path(out_dir) / f"{stem}{self.suffix}{tail}.tflite"


MEL = ExportVariant("mel", "", "mel", False, "log-mel windows (1, W, n_mels) dB -> probs (1, W, C)")
WAVEFORM = ExportVariant(
    "waveform",
    "_waveform",
    "audio",
    True,
    "mono float32 audio at the model's rate, one window with its context "
    "(1, (W - 1) * hop + n_fft) -> probs (1, W, C) and mel (1, W, n_mels)",
)
#: name -> variant.
VARIANTS: dict[str, ExportVariant] = {v.name: v for v in (MEL, WAVEFORM)}


def window_samples(frames: int, cfg: FeatureConfig) -> int:
    """Samples of one window of ``frames`` frames with its centring context:
    ``(frames - 1) * hop + n_fft``; sample 0 lies ``n_fft // 2`` before frame 0's centre."""
    return (frames - 1) * cfg.hop_length + cfg.n_fft


def variant_for_inputs(input_names: list[str] | tuple[str, ...]) -> ExportVariant | None:
    """The variant whose signature input is among ``input_names`` (``None`` if none is)."""
    for v in VARIANTS.values():
        if v.input_name in input_names:
            return v
    return None
