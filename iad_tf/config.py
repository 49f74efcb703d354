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

#: AAM's bass instruments. Every song of the 12-song sample holds exactly one of them, the same
#: in every part (its segments name one "BassLine" generator per song), so a song-level
#: decision may keep at most one (see iad_tf.postprocess.Presence.one_of).
AAM_BASS: tuple[str, ...] = ("DoubleBassArco", "DoubleBassPizz", "ElectricBass", "OrganBass")


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end (librosa): mono audio at ``sample_rate`` -> (frames, n_mels) dB.

    Frame ``t`` is centred at ``t * hop_length / sample_rate`` seconds (librosa's
    ``frames_to_time`` with ``center=True``).
    """

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
