"""Shared constants and the feature configuration: the one source of truth for both.

Everything that decides what a frame of log-mel is lives in :class:`FeatureConfig`. It is
written into every records manifest, every run directory and every exported model's
metadata, and checked for equality wherever two of them meet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

#: AAM's 31 instruments, alphabetical: the column order of every label matrix.
AAM_CLASSES: tuple[str, ...] = (
    "AcousticGuitar",
    "AltoSax",
    "Balalaika",
    "BrightPiano",
    "Cello",
    "Clarinet",
    "DoubleBassArco",
    "DoubleBassPizz",
    "Drums",
    "ElectricBass",
    "ElectricGuitarClean",
    "ElectricGuitarCrunch",
    "ElectricGuitarLead",
    "ElectricPiano",
    "Erhu",
    "Flugelhorn",
    "Flute",
    "Fujara",
    "Jinghu",
    "MorinKhuur",
    "OrganBass",
    "PanFlute",
    "Piano",
    "Shakuhachi",
    "Sitar",
    "TenorSax",
    "Trombone",
    "Trumpet",
    "Ukulele",
    "Viola",
    "Violin",
)
NUM_CLASSES: int = len(AAM_CLASSES)


#: Log compressions of the mel power ``S`` (:func:`iad_tf.audio.compress` implements them).
COMPRESSIONS: tuple[str, ...] = (
    "db",  # 10 log10(max(amin, S) / ref) (librosa power_to_db): the default front end
    "log10_1p",  # log10(1 + log_gain * S): musicnn's front end (Pons and Serra 2019)
)


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end (librosa): mono audio at ``sample_rate`` -> (frames, n_mels).

    A named configuration (TFDS ``BuilderConfig`` style): :data:`FEATURE_CONFIGS` holds the
    named ones, selected with ``build-records --features NAME``. A dict without ``name``
    (manifests, runs and models written before names existed) loads as the default config.
    Frame ``t`` is centred at ``t * hop_length / sample_rate`` seconds (librosa's
    ``frames_to_time`` with ``center=True``).
    """

    name: str = "logmel"
    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    power: float = 2.0
    ref: float = 1.0
    amin: float = 1e-10
    top_db: float | None = None
    compression: str = "db"
    log_gain: float = 10000.0  # used by compression "log10_1p" only

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"compression must be one of {', '.join(COMPRESSIONS)}, got {self.compression!r}"
            )

    @property
    def frame_seconds(self) -> float:
        """Seconds between two frames (~23.2 ms at the defaults)."""
        return self.hop_length / self.sample_rate

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def frame_times(self, n_frames: int) -> np.ndarray:
        """Times (s) of frames ``0..n_frames-1``: float64 array (n_frames,)."""
        return np.arange(n_frames, dtype=np.float64) * self.frame_seconds

    def n_frames_for(self, n_samples: int) -> int:
        """Frames librosa yields for ``n_samples`` samples (``center=True``)."""
        return 1 + n_samples // self.hop_length

    def seconds_to_frames(self, seconds: float) -> int:
        return int(round(seconds * self.frames_per_second))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature config keys: {sorted(unknown)}")
        return cls(**data)


#: The named feature configurations; the first is the default.
FEATURE_CONFIGS: dict[str, FeatureConfig] = {
    "logmel": FeatureConfig(),
    # musicnn's input (musicnn/configuration.py, extractor.batch_data): 16 kHz, n_fft 512,
    # hop 256, 96 mel bands with librosa's melspectrogram defaults (Slaney mel scale and
    # area normalisation, fmin 0, fmax sr/2, power 2), then log10(1 + 10000 S).
    "musicnn": FeatureConfig(
        name="musicnn",
        sample_rate=16000,
        n_fft=512,
        hop_length=256,
        n_mels=96,
        compression="log10_1p",
    ),
}
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURE_CONFIGS)


def named_feature_config(name: str) -> FeatureConfig:
    """The feature configuration called ``name``; ValueError listing the known names."""
    if name not in FEATURE_CONFIGS:
        raise ValueError(f"unknown feature config {name!r}; choose one of {', '.join(FEATURE_NAMES)}")
    return FEATURE_CONFIGS[name]


def feature_setup(data: dict[str, Any], where: str) -> tuple[FeatureConfig, tuple[str, ...]]:
    """(FeatureConfig, classes) from a manifest, run config or model metadata dict.

    Raises ``ValueError`` naming ``where`` when either is missing or malformed.
    """
    try:
        return FeatureConfig.from_dict(data["feature_config"]), tuple(data["classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: missing or bad feature_config/classes ({exc})") from exc


def check_compatible(
    expected: FeatureConfig,
    found: FeatureConfig,
    expected_classes: tuple[str, ...] | list[str],
    found_classes: tuple[str, ...] | list[str],
    where: str,
) -> None:
    """Raise ``ValueError`` naming every field that differs between two feature setups."""
    problems = [
        f"{k}: expected {v!r}, {where} has {found.to_dict()[k]!r}"
        for k, v in expected.to_dict().items()
        if found.to_dict()[k] != v
    ]
    if tuple(expected_classes) != tuple(found_classes):
        problems.append(
            f"classes: expected {len(expected_classes)} ({', '.join(expected_classes[:3])}...), "
            f"{where} has {len(found_classes)} ({', '.join(list(found_classes)[:3])}...)"
        )
    if problems:
        raise ValueError(f"{where} does not match: " + "; ".join(problems))
