"""Model and training configuration: frozen dataclasses, TOML loading, CLI overrides.

A TOML file (``iad-tf fit --config FILE``) may hold three tables::

    [model]            # ModelConfig fields, e.g. gru_units = 96
    conv_blocks = [[16, 4], [32, 4], [64, 2]]
    [train]            # TrainConfig fields, e.g. epochs = 30
    batching = "windows"
    [feature]          # FeatureConfig the records must have been built with (default: the
    n_mels = 128       # named config the records carry, build-records --features NAME)

Command-line options then override single fields (``dataclasses.replace``). The resolved
configs are written to ``<run_dir>/config.json`` next to the model.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from iad_tf.config import NUM_CLASSES, FeatureConfig, check_finite, checked_fields
from iad_tf.fileio import read_json, read_text
from iad_tf.pretrained import MUSICNN_WEIGHTS

MODEL_NAMES: tuple[str, ...] = ("mlp", "crnn", "attention", "crnn_stream", "musicnn_crnn")
Batching = Literal["tracks", "windows"]
ClassWeighting = Literal["none", "pos_weight"]
Checkpoint = Literal["best", "last"]
LRSchedule = Literal["constant", "cosine"]
ConvKind = Literal["standard", "separable"]
CONV_KINDS: tuple[str, ...] = ("standard", "separable")
CONFIG_JSON = "config.json"


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the three architectures (one table, each builder reads its own fields).

    ``conv_blocks``: one ``(filters, freq_pool)`` row per convolution block of the CRNN and
    of the attention model's front end; blocks pool along frequency only, so the time
    resolution (one output per input frame) is kept.
    """

    n_mels: int = 128
    n_classes: int = NUM_CLASSES
    dropout: float = 0.2
    # MLP: frame-wise dense layers; the first sees ``2 * mlp_context + 1`` frames.
    mlp_units: tuple[int, ...] = (256, 128)
    mlp_context: int = 2
    # CRNN: conv blocks -> bidirectional GRU -> per-frame dense.
    conv_blocks: tuple[tuple[int, int], ...] = ((16, 4), (32, 4), (64, 2))
    #: "standard" 3x3 convolutions or "separable" (a 3x3 depthwise then a 1x1 pointwise
    #: convolution: ~1/9 of the multiply-adds of a wide block) in the conv front end of
    #: crnn and attention (crnn_stream's causal convolutions are standard only). Measured
    #: (bench/results/train_speed.json): in LiteRT the convs are ~1 of ~8 ms per window (the
    #: BiGRU is the rest), so separable saves ~nothing there; a TF CPU training step got slower
    #: (397 vs 292 ms, batch 8). Its use is wider blocks at a smaller file, not speed.
    conv_kind: ConvKind = "standard"
    gru_units: int = 64
    # Attention: conv front end -> positional encoding -> encoder layers over time.
    attn_conv_blocks: tuple[tuple[int, int], ...] = ((16, 4), (32, 4), (32, 2))
    attn_dim: int = 64
    attn_heads: int = 4
    attn_layers: int = 2
    attn_ff: int = 128
    #: Self-attention works inside blocks of this many frames (memory stays bounded for
    #: whole 3-minute tracks; frames of neighbouring blocks meet through the conv front end).
    attn_block_frames: int = 256
    # musicnn_crnn: pretrained musicnn front + mid end ("mtt" MagnaTagATune or "msd" Million
    # Song Dataset weights), frozen but for the last ``musicnn_finetune_blocks`` (0-3) mid-end
    # convolutions (trained at ``TrainConfig.finetune_lr_scale`` x the learning rate); then a
    # bidirectional GRU of ``gru_units`` and a per-frame dense layer.
    musicnn_weights: str = "mtt"
    musicnn_finetune_blocks: int = 0

    def __post_init__(self) -> None:
        check_finite(self)
        if self.conv_kind not in CONV_KINDS:
            raise ValueError(f"conv_kind must be one of {CONV_KINDS}, got {self.conv_kind!r}")
        if self.musicnn_weights not in MUSICNN_WEIGHTS:
            raise ValueError(
                f"musicnn_weights must be one of {MUSICNN_WEIGHTS}, got {self.musicnn_weights!r}"
            )
        if not 0 <= self.musicnn_finetune_blocks <= 3:
            raise ValueError(
                f"musicnn_finetune_blocks must be in 0..3, got {self.musicnn_finetune_blocks}"
            )
        for name in ("conv_blocks", "attn_conv_blocks"):
            rows = tuple(tuple(int(v) for v in r) for r in getattr(self, name))
            if any(len(r) != 2 or r[0] < 1 or r[1] < 1 for r in rows):
                raise ValueError(f"{name}: rows must be (filters >= 1, freq_pool >= 1), got {rows}")
            object.__setattr__(self, name, rows)
        object.__setattr__(self, "mlp_units", tuple(int(u) for u in self.mlp_units))
        _at_least(self, 1, "n_mels", "n_classes", "gru_units", "attn_dim", "attn_heads",
                  "attn_layers", "attn_ff", "attn_block_frames")
        _at_least(self, 0, "mlp_context")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.mlp_units or min(self.mlp_units) < 1:
            raise ValueError(f"mlp_units must be a non-empty list of sizes >= 1, got {self.mlp_units}")
        if self.attn_dim % self.attn_heads:
            raise ValueError(
                f"attn_dim {self.attn_dim} is not divisible by attn_heads {self.attn_heads}"
            )

    def conv_out_bins(self, blocks: tuple[tuple[int, int], ...]) -> int:
        """Mel bins left after the frequency pooling of ``blocks``."""
        bins = self.n_mels
        for _, pool in blocks:
            bins //= pool
        if bins < 1:
            raise ValueError(f"conv blocks {blocks} pool {self.n_mels} mel bins away")
        return bins

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data, "model")


@dataclass(frozen=True)
class TrainConfig:
    """Everything about one training run except the model sizes."""

    epochs: int = 50
    batch_size: int = 2
    learning_rate: float = 1e-3
    #: "constant": Adam at ``learning_rate`` throughout; "cosine": decayed along a half cosine
    #: from ``learning_rate`` to 0 over the run's epochs x steps per epoch (a function of
    #: the optimizer's step count, so a resumed run continues on the same curve).
    lr_schedule: LRSchedule = "constant"
    #: "tracks": whole tracks, padded_batch + per-frame mask (the original study);
    #: "windows": random fixed-length windows of ``window_seconds`` (default: measured on the
    #: 12-track sample, the CRNN trains ~9x more frames/s on windows, since a GRU over ~7000
    #: frames is a long sequential loop, and reached a higher val F1 in the same 4 minutes;
    #: see bench/batching_regimes.py).
    batching: Batching = "windows"
    #: Optimizer steps per epoch; 0 = one pass over the training windows (or tracks). Fixing it
    #: compares recipes with different amounts of data at equal training steps.
    steps_per_epoch: int = 0
    window_seconds: float = 6.0
    #: Instruments active in fewer train tracks than this are rare ...
    rare_threshold: int = 5
    #: ... and tracks holding one are drawn this many times as often (1 = no resampling).
    oversample_factor: float = 4.0
    class_weighting: ClassWeighting = "pos_weight"
    #: pos_weight = neg/pos frames of each class in train, clipped to this range. The cap of 3
    #: is measured: on 2 held-out sample songs, caps of 50 and 10 made the model cry wolf on
    #: absent instruments (val micro-F1 0.36-0.41 vs 0.49 at 3; README "Results on the sample").
    pos_weight_min: float = 1.0
    pos_weight_max: float = 3.0
    augment: bool = True
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bins: int = 16
    #: Cross-track mixing (windows only): with this probability a training window is summed
    #: (in the power domain) with a window of another track, labels united. AAM's songs are
    #: few; mixing shows each instrument in new company, so the model cannot lean on
    #: which instruments a song happens to combine.
    mix_prob: float = 0.5
    #: The added window is attenuated by a uniform random 0..mix_gain_db dB.
    mix_gain_db: float = 6.0
    #: Timbre augmentation (windows only, each window on its own, before mixing, so the two
    #: sources of a mixed window differ): a random spectral tilt of up to +-eq_tilt_db dB
    #: across the mel bins, a random gain of up to +-gain_db dB, and a shift of up to
    #: +-mel_shift_bins mel bins (a small pitch/formant shift). 0 turns each off.
    eq_tilt_db: float = 0.0
    gain_db: float = 0.0
    mel_shift_bins: int = 0
    #: Multi-task training: > 0 adds an auxiliary head predicting each frame's multi-pitch
    #: roll (88 keys, records built with ``--labels onsets+pitch``) from the features the
    #: instrument head sees, its masked BCE weighted by this in the loss. Training only: the
    #: saved model (and every export) has the instrument head alone.
    aux_pitch_weight: float = 0.0
    #: The same with the role roll (AAM's five song roles, melody / chords / arpeggio / bass /
    #: drums, sounding in each frame; records built with ``--labels onsets+roles``). At most one
    #: auxiliary head per run.
    aux_role_weight: float = 0.0
    #: Knowledge distillation: > 0 trains towards (1 - w) * labels + w * the mean probability
    #: of teacher runs (``fit --teacher``, ``cv --teacher``; :mod:`iad_tf.training.distill`).
    distill_weight: float = 0.0
    #: Decision threshold of the validation metrics logged while training.
    threshold: float = 0.5
    patience: int = 10
    #: Which weights ``model.keras`` keeps: "best" (the epoch with the best ``val_f1_macro``)
    #: or "last" (the final weights; cross-validation uses it so that no choice is made on
    #: the held-out songs).
    checkpoint: Checkpoint = "best"
    #: Keep an exponential moving average of the weights (Adam ``use_ema``) and use it as the
    #: model's weights; smooths the epoch-to-epoch swings of small-data training.
    ema: bool = False
    ema_momentum: float = 0.99
    #: Learning rate multiplier of fine-tuned pretrained layers (musicnn_crnn).
    finetune_lr_scale: float = 0.1
    shuffle_buffer: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        check_finite(self)
        if self.batching not in ("tracks", "windows"):
            raise ValueError(f"batching must be 'tracks' or 'windows', got {self.batching!r}")
        if self.class_weighting not in ("none", "pos_weight"):
            raise ValueError(
                f"class_weighting must be 'none' or 'pos_weight', got {self.class_weighting!r}"
            )
        _at_least(self, 1, "epochs", "batch_size", "rare_threshold", "shuffle_buffer", "patience")
        _at_least(self, 0, "steps_per_epoch", "time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins",
                  "mix_gain_db")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 0 < self.pos_weight_min <= self.pos_weight_max:
            raise ValueError(
                f"need 0 < pos_weight_min <= pos_weight_max, got {self.pos_weight_min}, "
                f"{self.pos_weight_max}")
        if self.learning_rate <= 0 or self.window_seconds <= 0:
            raise ValueError("learning_rate and window_seconds must be > 0")
        if not 0.0 < self.finetune_lr_scale <= 1.0:
            raise ValueError(f"finetune_lr_scale must be in (0, 1], got {self.finetune_lr_scale}")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise ValueError(f"mix_prob must be in [0, 1], got {self.mix_prob}")
        if self.aux_pitch_weight < 0 or self.aux_role_weight < 0:
            raise ValueError("aux_pitch_weight and aux_role_weight must be >= 0, got "
                             f"{self.aux_pitch_weight}, {self.aux_role_weight}")
        if self.aux_pitch_weight > 0 and self.aux_role_weight > 0:
            raise ValueError("one auxiliary head per run: aux_pitch_weight or aux_role_weight, not both")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if self.eq_tilt_db < 0 or self.gain_db < 0 or self.mel_shift_bins < 0:
            raise ValueError("eq_tilt_db, gain_db and mel_shift_bins must be >= 0")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.checkpoint not in ("best", "last"):
            raise ValueError(f"checkpoint must be 'best' or 'last', got {self.checkpoint!r}")
        if not 0.0 < self.ema_momentum < 1.0:
            raise ValueError(f"ema_momentum must be in (0, 1), got {self.ema_momentum}")
        if self.oversample_factor < 1:
            raise ValueError(f"oversample_factor must be >= 1, got {self.oversample_factor}")

    @property
    def aux_head(self) -> tuple[str, float] | None:
        """The auxiliary head this recipe trains: (its target's record key, its loss weight),
        or ``None``."""
        from iad_tf.data.records import PITCH_FIELD, ROLES_FIELD

        if self.aux_pitch_weight > 0:
            return PITCH_FIELD, self.aux_pitch_weight
        if self.aux_role_weight > 0:
            return ROLES_FIELD, self.aux_role_weight
        return None

    def window_frames(self, feature: FeatureConfig) -> int:
        """Frames per training window (``batching="windows"``)."""
        return max(1, feature.seconds_to_frames(self.window_seconds))

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data, "train")


def _at_least(cfg: Any, low: float, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) < low:
            raise ValueError(f"{name} must be >= {low}, got {getattr(cfg, name)}")


@dataclass(frozen=True)
class RunConfig:
    """The three configs of a run, as read from TOML and overridden by the CLI."""

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    feature: FeatureConfig | None = None  # None: the records' own named config


def _to_jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d))  # tuples -> lists


def _from_dict(cls: type, data: dict[str, Any], table: str) -> Any:
    return cls(**checked_fields(cls, data, f"[{table}]"))


def load_toml(path: str | Path) -> RunConfig:
    """Read ``[model]``, ``[train]`` and ``[feature]`` tables; raise ValueError naming the file."""
    from iad_tf.storage import to_path

    path = to_path(path)
    try:
        data = tomllib.loads(read_text(path))
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: no such config file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from exc
    extra = set(data) - {"model", "train", "feature"}
    if extra:
        raise ValueError(f"{path}: unknown tables {sorted(extra)} (allowed: model, train, feature)")
    try:
        return RunConfig(
            model=ModelConfig.from_dict(data.get("model", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
            feature=FeatureConfig.from_dict(data["feature"], "[feature]")
            if "feature" in data
            else None,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def with_overrides(cfg: Any, **overrides: Any) -> Any:
    """``dataclasses.replace`` with the overrides that are not None (unset CLI options)."""
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def run_config_dict(
    model_name: str,
    model: ModelConfig,
    train: TrainConfig,
    feature: FeatureConfig,
    classes: tuple[str, ...] | list[str],
    records_dir: str | Path,
    mel_stats: dict[str, list[float]],
    pos_weight: list[float] | None,
) -> dict[str, Any]:
    """The content of ``<run_dir>/config.json`` (``records_dir``: a URL stays the URL)."""
    from iad_tf import __version__
    from iad_tf.storage import records_name

    return {
        "model_name": model_name,
        "model": model.to_dict(),
        "train": train.to_dict(),
        "feature_config": feature.to_dict(),
        "classes": list(classes),
        "records_dir": records_name(records_dir),
        "mel_stats": mel_stats,
        "pos_weight": pos_weight,
        "window_frames": train.window_frames(feature),
        "version": __version__,
    }


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """``<run_dir>/config.json`` as a dict; ValueError naming the file when missing/bad."""
    path = Path(run_dir) / CONFIG_JSON
    if not path.is_file():
        raise ValueError(f"{run_dir}: no {CONFIG_JSON} (not a run directory?)")
    return read_json(path)
