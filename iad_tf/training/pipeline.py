"""tf.data input pipeline for training and validation.

    shards -> read_dataset (interleave + schema parse) -> float32 + per-frame mask
      train: shuffle -> repeat -> rejection_resample by rarest instrument
             -> [windows: random-phase fixed windows, shuffled] -> SpecAugment -> batch
      val:   whole tracks, one per batch (no padding at all)
    -> prefetch

Elements are ``(mel, labels, mask)``: mel float32 (batch, frames, n_mels) raw dB, labels
float32 (batch, frames, C), mask float32 (batch, frames) 1 for real frames, 0 for padding;
Keras passes the mask to the loss as ``sample_weight``. Standardisation is not done here: the
model's first layer holds the training statistics.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from iad_tf.config import FeatureConfig
from iad_tf.data.records import AUX_FIELDS, PITCH_FIELD, ROLES_FIELD
from iad_tf.training.config import TrainConfig
from iad_tf.training.distill import SoftTargets, blend, require_both, soft_lookup
from iad_tf.training.records_info import (
    RecordsInfo,
    class_distribution,
    key_weights,
    rarest_keys,
    resampling_dists,
)
from tfrecords_tools.reader import read_dataset

log = logging.getLogger(__name__)


#: The option and the roll of each auxiliary target, for messages.
_AUX_WHAT = {PITCH_FIELD: ("--aux-pitch-weight", "pitch roll"), ROLES_FIELD: ("--aux-role-weight", "role roll")}


def require_aux(info: RecordsInfo, field: str) -> None:
    """``ValueError`` naming the manifest when the records do not hold the auxiliary target
    ``field`` (a key of :data:`iad_tf.data.records.AUX_FIELDS`)."""
    if field not in info.aux_fields:
        option, what = _AUX_WHAT[field]
        raise ValueError(
            f"{info.manifest_path}: these records hold no {what}; the auxiliary {field} head "
            f"({option}) needs records built with `build-records --labels onsets+{field}`")


def read_tracks(
    info: RecordsInfo, split: str, deterministic: bool = True, aux: str | None = None,
    soft: SoftTargets | None = None,
) -> Any:
    """Dataset of dicts {mel float32 (T, n_mels), labels float32 (T, C), mask float32 (T,)}.

    ``aux`` (a key of :data:`iad_tf.data.records.AUX_FIELDS`, e.g. "pitch"): the labels are the
    class labels followed by that auxiliary target, e.g. (T, C + 88) for the pitch roll (the
    targets of a model with that auxiliary head); every step after this one (windows,
    mixing: labels united, SpecAugment) treats the wider labels alike.
    ``soft``: teachers' targets of the split's tracks, added as ``soft`` float32 (T, C)
    (:func:`iad_tf.training.distill.blend` folds them into the labels)."""
    import tensorflow as tf

    if aux is not None:
        require_aux(info, aux)
    lookup = None
    if soft is not None:
        lookup = soft_lookup(soft, info.tracks(split), info.n_frames(split))

    def prepare(ex: dict[str, Any]) -> dict[str, Any]:
        mel = tf.cast(ex["mel"], tf.float32)
        labels = tf.cast(ex["labels"], tf.float32)
        if aux is not None:
            labels = tf.concat([labels, tf.cast(ex[aux], tf.float32)], axis=-1)
        out = {
            "mel": mel,
            "labels": labels,
            "mask": tf.ones(tf.shape(mel)[:1], tf.float32),
        }
        if lookup is not None:
            out["soft"] = lookup(ex["track_id"])
        return out

    ds = read_dataset(info.shards(split), info.schema, deterministic=deterministic)
    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def to_tuple(ex: dict[str, Any]) -> tuple[Any, Any, Any]:
    return ex["mel"], ex["labels"], ex["mask"]


# ------------------------------------------------------------------ oversampling
@dataclass(frozen=True)
class Resampling:
    """Rejection-resampling plan: key distributions and the class distribution it yields."""

    track_counts: np.ndarray  # (C,) train tracks per class
    initial: np.ndarray  # (C + 1,) key distribution of the train tracks
    target: np.ndarray  # (C + 1,)
    before: np.ndarray  # (C,) fraction of drawn tracks holding each class, no resampling
    after: np.ndarray  # (C,) the same with resampling

    @property
    def active(self) -> bool:
        return not np.allclose(self.initial, self.target)

    def report(self, classes: tuple[str, ...]) -> dict[str, Any]:
        return {
            c: {
                "train_tracks": int(n),
                "drawn_before": round(float(b), 4),
                "drawn_after": round(float(a), 4),
            }
            for c, n, b, a in zip(classes, self.track_counts, self.before, self.after, strict=True)
        }


def track_activity(info: RecordsInfo, split: str = "train") -> np.ndarray:
    """bool (N, C): which classes are active anywhere in each track of ``split``."""
    import tensorflow as tf

    ds = read_tracks(info, split).map(lambda ex: tf.reduce_max(ex["labels"], axis=0) > 0)
    rows = [a.numpy() for a in ds]
    return np.stack(rows) if rows else np.zeros((0, len(info.classes)), dtype=bool)


def plan_resampling(
    info: RecordsInfo, cfg: TrainConfig, active: np.ndarray | None = None
) -> Resampling:
    """Key each train track by its rarest instrument; rare keys get ``oversample_factor``."""
    counts = info.class_track_counts("train")
    active = track_activity(info, "train") if active is None else active
    n_keys = len(info.classes) + 1
    keys = rarest_keys(active, counts)
    weights = key_weights(counts, cfg.rare_threshold, cfg.oversample_factor)
    init, target = resampling_dists(keys, weights, n_keys)
    with np.errstate(invalid="ignore", divide="ignore"):
        track_w = (target / np.where(init > 0, init, 1.0))[keys]
    plan = Resampling(
        counts, init, target, class_distribution(active), class_distribution(active, track_w)
    )
    rare = [c for c, n in zip(info.classes, counts, strict=True) if 0 < n < cfg.rare_threshold]
    log.info(
        "oversampling: %d rare classes (< %d train tracks): %s; factor %g; resampling %s",
        len(rare),
        cfg.rare_threshold,
        ", ".join(rare) or "none",
        cfg.oversample_factor,
        "on" if plan.active else "off (nothing to change)",
    )
    for c, row in plan.report(info.classes).items():
        if row["train_tracks"]:
            log.info(
                "  %-20s tracks %3d  drawn %.3f -> %.3f",
                c,
                row["train_tracks"],
                row["drawn_before"],
                row["drawn_after"],
            )
    return plan


def rarest_key_fn(track_counts: np.ndarray) -> Any:
    """Graph version of :func:`rarest_keys` for one element: dict -> int32 key in [0, C]."""
    import tensorflow as tf

    counts = tf.constant(track_counts, tf.int64)
    n_classes = int(track_counts.shape[0])
    big = tf.constant(np.iinfo(np.int64).max, tf.int64)

    def key(ex: dict[str, Any]) -> Any:
        present = tf.reduce_max(ex["labels"], axis=0) > 0  # (C,)
        k = tf.argmin(tf.where(present, counts, big), output_type=tf.int32)
        return tf.where(tf.reduce_any(present), k, tf.constant(n_classes, tf.int32))

    return key


def oversample(
    ds: Any, key_fn: Any, initial: np.ndarray, target: np.ndarray, seed: int | None
) -> Any:
    """``Dataset.rejection_resample`` drawing keys with ``target`` instead of ``initial``.

    ``ds`` must repeat (rejection only drops elements; drawing rare ones more often means
    drawing common ones less often from an endless stream).
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # TF divides by the zeros of unused keys
        out = ds.rejection_resample(
            key_fn,
            target_dist=target.astype(np.float32),
            initial_dist=initial.astype(np.float32),
            seed=seed,
        )
    return out.map(lambda _key, ex: ex)


# ------------------------------------------------------------------ windows and augmentation
def split_windows(window: int) -> Any:
    """Map fn: a track dict -> Dataset of ``window``-frame windows at a random phase.

    A track of T >= window frames gives floor((T - offset) / window) windows, offset uniform in
    [0, min(window, T - window)]; a shorter track gives one window padded with mask 0.
    """
    import tensorflow as tf

    def fn(ex: dict[str, Any]) -> Any:
        t = tf.shape(ex["mel"])[0]
        hi = tf.minimum(window, t - window + 1)
        offset = tf.cond(
            hi > 1, lambda: tf.random.uniform((), 0, tf.maximum(hi, 1), tf.int32), lambda: 0
        )
        n = tf.maximum(1, (t - offset) // window)
        total = n * window

        def cut(x: Any) -> Any:
            x = x[offset : offset + total]
            pad = total - tf.shape(x)[0]
            paddings = tf.concat([[[0, pad]], tf.zeros([tf.rank(x) - 1, 2], tf.int32)], axis=0)
            x = tf.pad(x, paddings)
            out = tf.reshape(
                x, tf.concat([[n, window], tf.shape(x)[1:]], axis=0)
            )  # (n, window, ...)
            return tf.ensure_shape(out, [None, window, *x.shape[1:]])

        return tf.data.Dataset.from_tensor_slices({k: cut(v) for k, v in ex.items()})

    return fn


def spec_augment(cfg: TrainConfig, fill: np.ndarray, window: int) -> Any:
    """Map fn: SpecAugment on a dict's mel (T, n_mels) with tensorflow-io's time/freq masks.

    Masked cells get the training mean of their mel bin (``fill``, (n_mels,)), i.e. zero after
    the model's standardisation. ``time_masks`` masks per ``window`` frames of the example.
    """
    import tensorflow as tf

    from iad_tf._tfio import tfio_audio

    audio = tfio_audio()
    fill_t = tf.constant(fill, tf.float32)[None, :]  # (1, n_mels)

    def fn(ex: dict[str, Any]) -> dict[str, Any]:
        mel = ex["mel"]
        keep = tf.ones_like(mel)
        t = tf.shape(mel)[0]
        n_time = cfg.time_masks * tf.maximum(1, t // window)
        t_param = tf.maximum(1, tf.minimum(cfg.time_mask_frames, t // 2))
        keep = tf.while_loop(
            lambda i, k: i < n_time,
            lambda i, k: (i + 1, audio.time_mask(k, param=t_param)),
            (0, keep),
        )[1]
        f_param = max(1, min(cfg.freq_mask_bins, len(fill) // 2))
        for _ in range(cfg.freq_masks):
            keep = audio.freq_mask(keep, param=f_param)
        return {**ex, "mel": mel * keep + fill_t * (1.0 - keep)}

    return fn


def timbre_augment(cfg: TrainConfig, n_mels: int) -> Any:
    """Map fn on a window dict: random spectral tilt, gain and mel-bin shift of its mel (dB).

    tilt: + t * linspace(-1, 1, n_mels) dB, t ~ U(-eq_tilt_db, eq_tilt_db); gain ~
    U(-gain_db, gain_db) dB; shift: bins move by k ~ U{-mel_shift_bins..mel_shift_bins}
    (edge bins repeated). Labels and mask are unchanged.
    """
    import tensorflow as tf

    ramp = tf.linspace(-1.0, 1.0, n_mels)[None, :]  # (1, n_mels)
    base = tf.range(n_mels)

    def fn(ex: dict[str, Any]) -> dict[str, Any]:
        mel = ex["mel"]
        if cfg.mel_shift_bins > 0:
            k = tf.random.uniform((), -cfg.mel_shift_bins, cfg.mel_shift_bins + 1, tf.int32)
            mel = tf.gather(mel, tf.clip_by_value(base + k, 0, n_mels - 1), axis=1)
        tilt = tf.random.uniform((), -cfg.eq_tilt_db, cfg.eq_tilt_db) if cfg.eq_tilt_db else 0.0
        gain = tf.random.uniform((), -cfg.gain_db, cfg.gain_db) if cfg.gain_db else 0.0
        return {**ex, "mel": mel + tilt * ramp + gain}

    return fn


def mix_windows(cfg: TrainConfig, feature: FeatureConfig | None = None) -> Any:
    """Map fn on a pair of window dicts: with probability ``cfg.mix_prob`` their power sum.

    The features of a sum of independent sources ~ ``compress(decompress(a) + decompress(b))``
    (mel power is additive up to phase cross terms; in dB: 10 log10(10^(a/10) + 10^(b/10)));
    labels are united, the mask is the product (both real). The second window is attenuated
    by U(0, mix_gain_db) dB. ``feature`` (default: the default config) names the compression.
    """
    import tensorflow as tf

    feature = feature or FeatureConfig()
    ln10 = float(np.log(10.0))
    if feature.compression == "log10_1p":  # x = log10(1 + g S): iad_tf.audio.compress
        g = feature.log_gain

        def to_power(x: Any) -> Any:
            return (tf.exp(x * ln10) - 1.0) / g

        def from_power(p: Any) -> Any:
            return tf.math.log(1.0 + g * tf.maximum(p, 0.0)) / ln10
    else:  # "db" with ref 1 (iad_tf.audio.compress)
        amin = feature.amin

        def to_power(x: Any) -> Any:
            return tf.exp(x * (ln10 / 10.0))

        def from_power(p: Any) -> Any:
            return 10.0 * tf.math.log(tf.maximum(p, amin)) / ln10

    def fn(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        gain = tf.pow(10.0, -tf.random.uniform((), 0.0, cfg.mix_gain_db) / 10.0)
        mixed = {
            "mel": from_power(to_power(a["mel"]) + gain * to_power(b["mel"])),
            "labels": tf.maximum(a["labels"], b["labels"]),
            "mask": a["mask"] * b["mask"],
        }
        use = tf.random.uniform(()) < cfg.mix_prob
        return {k: tf.where(use, mixed[k], a[k]) for k in a}

    return fn


# ------------------------------------------------------------------ datasets
@dataclass
class TrainData:
    """The training dataset with its epoch length and the resampling it applies."""

    dataset: Any
    steps_per_epoch: int
    resampling: Resampling | None


def train_dataset(
    info: RecordsInfo,
    cfg: TrainConfig,
    resampling: Resampling | None = None,
    batch_size: int | None = None,
    soft: SoftTargets | None = None,
) -> TrainData:
    """Endless (mel, labels, mask) batches of ``cfg.batching``; epoch = one train set's worth.
    ``soft`` (needed when ``cfg.distill_weight`` > 0): the teachers' targets of the train
    tracks, blended into the labels after resampling (which keys on the hard labels)."""
    import tensorflow as tf

    require_both(soft.teachers if soft is not None else (), cfg.distill_weight)
    batch = batch_size or cfg.batch_size
    window = cfg.window_frames(info.feature)
    aux = cfg.aux_head[0] if cfg.aux_head else None
    ds = read_tracks(info, "train", aux=aux, soft=soft)
    n_tracks = len(info.tracks("train"))
    ds = ds.shuffle(
        min(n_tracks, cfg.shuffle_buffer), seed=cfg.seed, reshuffle_each_iteration=True
    ).repeat()
    if resampling is not None and resampling.active:
        ds = oversample(
            ds,
            rarest_key_fn(resampling.track_counts),
            resampling.initial,
            resampling.target,
            cfg.seed,
        )
    if soft is not None:
        ds = ds.map(blend(cfg.distill_weight, len(info.classes)), num_parallel_calls=tf.data.AUTOTUNE)
    if cfg.batching == "windows":
        ds = ds.flat_map(split_windows(window))
        if cfg.eq_tilt_db or cfg.gain_db or cfg.mel_shift_bins:
            if info.feature.compression != "db":
                raise ValueError(
                    "timbre augmentation (eq_tilt_db, gain_db, mel_shift_bins) works on dB "
                    f"log-mel features; these records use {info.feature.compression!r}"
                )
            ds = ds.map(timbre_augment(cfg, info.feature.n_mels), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.shuffle(cfg.shuffle_buffer, seed=cfg.seed + 1, reshuffle_each_iteration=True)
        if cfg.mix_prob > 0:
            # A second, independently shuffled stream of windows to mix in.
            other = ds.shuffle(cfg.shuffle_buffer, seed=cfg.seed + 2, reshuffle_each_iteration=True)
            ds = tf.data.Dataset.zip(ds, other).map(
                mix_windows(cfg, info.feature), num_parallel_calls=tf.data.AUTOTUNE
            )
        examples = sum(max(1, n // window) for n in info.n_frames("train"))
    else:
        examples = n_tracks
    if cfg.augment:
        fill = np.asarray(info.mel_stats["mean"], dtype=np.float32)
        ds = ds.map(spec_augment(cfg, fill, window), num_parallel_calls=tf.data.AUTOTUNE)
    if cfg.batching == "windows":
        ds = ds.batch(batch, drop_remainder=True)
    else:
        ds = _padded(ds, batch, info, len(info.classes) + (AUX_FIELDS[aux] if aux else 0))
    ds = ds.map(to_tuple).prefetch(tf.data.AUTOTUNE)
    steps = cfg.steps_per_epoch or max(1, math.ceil(examples / batch))
    return TrainData(ds, steps, resampling)


def _padded(ds: Any, batch: int, info: RecordsInfo, n_labels: int | None = None) -> Any:
    n_mels, n_classes = info.feature.n_mels, n_labels or len(info.classes)
    return ds.padded_batch(
        batch,
        padded_shapes={"mel": [None, n_mels], "labels": [None, n_classes], "mask": [None]},
        drop_remainder=False,
    )


def eval_dataset(info: RecordsInfo, split: str = "val", batch_size: int = 1) -> Any:
    """Whole tracks of ``split``, (mel, labels, mask) batches; padded only when batch_size > 1."""
    import tensorflow as tf

    ds = _padded(read_tracks(info, split), batch_size, info)
    return ds.map(to_tuple).prefetch(tf.data.AUTOTUNE)
