"""Shared constants and the feature configuration: the one source of truth for both.

Everything that decides what a frame of log-mel is lives in :class:`FeatureConfig`. It is
written into every records manifest, every run directory and every exported model's
metadata, and checked for equality wherever two of them meet.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

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
#: AAM's piano instruments (a song may hold several; the detector confuses them).
AAM_PIANOS: tuple[str, ...] = ("BrightPiano", "ElectricPiano", "Piano")
#: Groups whose confusions the cross-validation report lists (song-level and frame-level).
CONFUSION_GROUPS: dict[str, tuple[str, ...]] = {"basses": AAM_BASS, "pianos": AAM_PIANOS}


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

    def __post_init__(self) -> None:
        check_finite(self)
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"compression must be one of {', '.join(COMPRESSIONS)}, got {self.compression!r}"
            )
        positive = ("sample_rate", "n_fft", "hop_length", "n_mels", "power", "ref", "amin")
        bad = [f"{k} = {getattr(self, k)!r}" for k in positive if not getattr(self, k) > 0]
        if bad:
            raise ValueError(f"feature config: {', '.join(bad)}: must be > 0")
        if self.fmin < 0 or (self.fmax is not None and self.fmax <= self.fmin):
            raise ValueError(f"feature config: need 0 <= fmin < fmax, got {self.fmin}, {self.fmax}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "feature config") -> FeatureConfig:
        return cls(**checked_fields(cls, data, where))


def _describe(tp: Any) -> str:
    """How an error message names a field type: 'an integer', 'a list of integers'..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        inner = args[0]
        return "a list of integers" if inner is int else f"a list of {_describe(inner)} rows"
    if origin is tuple:
        return "[" + ", ".join(_describe(a).removeprefix("an ").removeprefix("a ") for a in args) + "]"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             type(None): "none (omit the key)"}
    return names.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against the field type ``tp`` (ints widen to floats, lists to tuples);
    ``ValueError`` naming ``key`` and the expected type otherwise. Bools are never numbers."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    ok: bool
    if origin is Literal:
        ok = value in args and not isinstance(value, bool)
    elif origin in (typing.Union, types.UnionType):
        for a in args:
            try:
                return _coerce(value, a, key)
            except ValueError:
                continue
        ok = False
    elif origin is tuple:
        ok = isinstance(value, list | tuple)
        if ok:
            items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
            try:
                if len(items) == len(value):
                    return tuple(_coerce(v, t, key) for v, t in zip(value, items, strict=True))
            except ValueError:
                pass
            ok = False
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ValueError(f"{key}: expected a finite number, got {value}")
        if ok:
            return float(value)
    elif tp is type(None):
        ok = value is None
    else:
        ok = isinstance(value, tp) and (tp is bool or not isinstance(value, bool))
    if not ok:
        raise ValueError(f"{key}: expected {_describe(tp)}, got {value!r}")
    return value


def check_finite(cfg: Any) -> None:
    """``ValueError`` naming the first field of dataclass ``cfg`` holding inf or NaN (alone or
    in a tuple): every config's ``__post_init__`` calls it, so no source lets one through."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        items = value if isinstance(value, tuple) else (value,)
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v}")


def checked_fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    """``data`` (from TOML or JSON) checked against the fields of dataclass ``cls``: no unknown
    key, each value of its field's type. Raises ``ValueError`` naming ``where`` and the key."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a table of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    return {k: _coerce(v, hints[k], f"{where} {k}") for k, v in data.items()}


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
