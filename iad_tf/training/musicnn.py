"""musicnn (Pons and Serra 2019) in Keras 3: its pretrained front and mid end under our detector.

The architecture follows the original ``musicnn/models.py`` (``build_musicnn`` with the
'7774timbraltemporal' front end, ``num_filt_midend=64``, ``num_units_backend=200``):

* input (batch, frames, 96) ``log10(1 + 10000 S)`` mel (feature config ``musicnn``) ->
  batch normalisation (one channel);
* front end, five branches, each conv (ReLU) -> batch norm -> max over all frequencies:
  two *timbral* ones (7 frames x 38 / 67 mel bands, 204 filters, time zero-padded by 3) and
  three *temporal* ones (128 / 64 / 32 frames x 1 band, 51 filters, 'same' padding);
  concatenated: (batch, frames, 561);
* mid end: three 1-D convolutions over time (7 frames, 64 filters, ReLU, batch norm), the
  second and third with residual connections; the front-end output and the three mid-end
  outputs concatenated: (batch, frames, 753), one feature vector per input frame;
* back end (only for the tagger, :func:`build_musicnn_tagger`): max and mean over time,
  interleaved (753 x 2 -> 1506, the original's ``flatten(concat([max, mean], 2))``), batch
  norm, dense 200 (ReLU), batch norm, dense to the 50 tags.

Weights come from the converted checkpoints in :mod:`iad_tf.pretrained`;
:func:`assign_musicnn_weights` maps them by name through :data:`LAYER_TABLE`, checks every
shape and that every checkpoint variable is used exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import layers

from iad_tf.training.config import ModelConfig

N_MELS = 96
PREFIX = "musicnn_"
TIMBRAL: tuple[tuple[int, int], ...] = ((7, int(0.4 * N_MELS)), (7, int(0.7 * N_MELS)))
TEMPORAL: tuple[int, ...] = (128, 64, 32)
TIMBRAL_FILTERS, TEMPORAL_FILTERS = int(1.6 * 128), int(1.6 * 32)  # 204, 51
MID_FILTERS, MID_BLOCKS, MID_KERNEL = 64, 3, 7
BACK_UNITS, N_TAGS = 200, 50
FEATURE_DIM = (
    len(TIMBRAL) * TIMBRAL_FILTERS + len(TEMPORAL) * TEMPORAL_FILTERS + MID_BLOCKS * MID_FILTERS
)

#: (our layer name, checkpoint scope, part): the checkpoint's scopes in creation order of
#: the original graph. Weights per kind: conv/dense (kernel, bias), batch norm (gamma, beta,
#: moving_mean, moving_variance).
LAYER_TABLE: tuple[tuple[str, str, str], ...] = (
    ("musicnn_input_bn", "batch_normalization", "front"),
    ("musicnn_timbral0_conv", "conv2d", "front"),
    ("musicnn_timbral0_bn", "batch_normalization_1", "front"),
    ("musicnn_timbral1_conv", "conv2d_1", "front"),
    ("musicnn_timbral1_bn", "batch_normalization_2", "front"),
    ("musicnn_temporal0_conv", "conv2d_2", "front"),
    ("musicnn_temporal0_bn", "batch_normalization_3", "front"),
    ("musicnn_temporal1_conv", "conv2d_3", "front"),
    ("musicnn_temporal1_bn", "batch_normalization_4", "front"),
    ("musicnn_temporal2_conv", "conv2d_4", "front"),
    ("musicnn_temporal2_bn", "batch_normalization_5", "front"),
    ("musicnn_mid0_conv", "conv2d_5", "mid"),
    ("musicnn_mid0_bn", "batch_normalization_6", "mid"),
    ("musicnn_mid1_conv", "conv2d_6", "mid"),
    ("musicnn_mid1_bn", "batch_normalization_7", "mid"),
    ("musicnn_mid2_conv", "conv2d_7", "mid"),
    ("musicnn_mid2_bn", "batch_normalization_8", "mid"),
    ("musicnn_back_pool_bn", "batch_normalization_9", "back"),
    ("musicnn_back_dense", "dense", "back"),
    ("musicnn_back_dense_bn", "batch_normalization_10", "back"),
    ("musicnn_back_logits", "dense_1", "back"),
)
_BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
_KERNEL_WEIGHTS = ("kernel", "bias")


class WeightsError(ValueError):
    """Pretrained weights that do not fit the architecture (names the variable and problem)."""


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=1e-3, name=name)  # tf.compat.v1.layers defaults


def musicnn_frame_features(x: keras.KerasTensor) -> keras.KerasTensor:
    """Front + mid end: (batch, frames, 96) -> (batch, frames, 753) frame-level features."""
    img = layers.Reshape((-1, N_MELS, 1), name="musicnn_to_image")(x)  # (b, T, 96, 1)
    img = _bn("musicnn_input_bn")(img)
    branches = []
    for i, (kt, kf) in enumerate(TIMBRAL):
        h = layers.ZeroPadding2D(((kt // 2, kt // 2), (0, 0)), name=f"musicnn_timbral{i}_pad")(img)
        h = layers.Conv2D(
            TIMBRAL_FILTERS, (kt, kf), activation="relu", name=f"musicnn_timbral{i}_conv"
        )(h)  # (b, T, 96 - kf + 1, 204)
        branches.append(_pool_frequency(_bn(f"musicnn_timbral{i}_bn")(h), f"musicnn_timbral{i}"))
    for i, kt in enumerate(TEMPORAL):
        h = layers.Conv2D(
            TEMPORAL_FILTERS,
            (kt, 1),
            padding="same",
            activation="relu",
            name=f"musicnn_temporal{i}_conv",
        )(img)  # (b, T, 96, 51)
        branches.append(_pool_frequency(_bn(f"musicnn_temporal{i}_bn")(h), f"musicnn_temporal{i}"))
    front = layers.Concatenate(axis=-1, name="musicnn_front")(branches)  # (b, T, 561)
    outputs, h = [front], front
    for i in range(MID_BLOCKS):
        c = layers.Conv1D(
            MID_FILTERS, MID_KERNEL, padding="same", activation="relu", name=f"musicnn_mid{i}_conv"
        )(h)
        c = _bn(f"musicnn_mid{i}_bn")(c)  # (b, T, 64)
        h = c if i == 0 else layers.Add(name=f"musicnn_mid{i}_residual")([c, h])
        outputs.append(h)
    return layers.Concatenate(axis=-1, name="musicnn_features")(outputs)  # (b, T, 753)


def _pool_frequency(h: keras.KerasTensor, prefix: str) -> keras.KerasTensor:
    """(b, T, F, C) -> (b, T, C): max over all frequency bins."""
    bins, channels = int(h.shape[2]), int(h.shape[3])
    h = layers.MaxPooling2D((1, bins), name=f"{prefix}_pool")(h)  # (b, T, 1, C)
    return layers.Reshape((-1, channels), name=f"{prefix}_squeeze")(h)


def build_musicnn_tagger(weights: str = "mtt", frames: int | None = None) -> keras.Model:
    """The whole pretrained tagger: mel (batch, frames, 96) -> tag probabilities (batch, 50)."""
    model = build_musicnn_tagger_bare(frames)
    assign_musicnn_weights(model, load_weights(weights), parts=("front", "mid", "back"))
    return model


def build_musicnn_tagger_bare(frames: int | None = None) -> keras.Model:
    """The tagger's architecture with fresh weights (see :func:`build_musicnn_tagger`)."""
    from keras import ops

    inp = keras.Input(shape=(frames, N_MELS), name="mel")
    feats = musicnn_frame_features(inp)  # (b, T, 753)
    pooled = ops.stack([ops.max(feats, axis=1), ops.mean(feats, axis=1)], axis=-1)  # (b, 753, 2)
    pooled = layers.Flatten(name="musicnn_back_pool")(pooled)  # (b, 1506): max_0, mean_0, ...
    h = _bn("musicnn_back_pool_bn")(pooled)
    h = layers.Dense(BACK_UNITS, activation="relu", name="musicnn_back_dense")(h)
    h = _bn("musicnn_back_dense_bn")(h)
    out = layers.Dense(N_TAGS, activation="sigmoid", name="musicnn_back_logits")(h)
    return keras.Model(inp, out, name="musicnn_tagger")


def build_musicnn_crnn(
    cfg: ModelConfig,
    mel_stats: Mapping[str, Sequence[float]] | None = None,
    frames: int | None = None,
    batch_size: int | None = None,
) -> keras.Model:
    """Pretrained musicnn front + mid end -> Bidirectional GRU -> per-frame Dense.

    Input ``mel`` (batch, frames, 96) raw ``log10(1 + 10000 S)`` (records built with
    ``--features musicnn``); ``mel_stats`` is not used: musicnn's own input batch norm
    standardises. The pretrained layers are frozen except the last
    ``cfg.musicnn_finetune_blocks`` mid-end convolutions (their batch norms stay frozen).
    """
    del mel_stats
    if cfg.n_mels != N_MELS:
        raise ValueError(
            f"musicnn_crnn needs {N_MELS} mel bands (records built with --features musicnn), "
            f"got {cfg.n_mels}"
        )
    inp = keras.Input(shape=(frames, N_MELS), batch_size=batch_size, name="mel")
    h = musicnn_frame_features(inp)  # (b, T, 753)
    h = layers.Dropout(cfg.dropout, name="features_dropout")(h)
    h = layers.Bidirectional(layers.GRU(cfg.gru_units, return_sequences=True), name="bigru")(
        h
    )  # (b, T, 2u)
    h = layers.Dropout(cfg.dropout, name="gru_dropout")(h)
    out = layers.Dense(cfg.n_classes, name="logits")(h)  # (b, T, C)
    model = keras.Model(inp, out, name="musicnn_crnn")
    assign_musicnn_weights(model, load_weights(cfg.musicnn_weights), parts=("front", "mid"))
    tuned = {
        f"musicnn_mid{i}_conv" for i in range(MID_BLOCKS - cfg.musicnn_finetune_blocks, MID_BLOCKS)
    }
    for layer in model.layers:
        if layer.name.startswith(PREFIX):
            layer.trainable = layer.name in tuned
    return model


def load_weights(name: str) -> dict[str, np.ndarray]:
    """The converted checkpoint ``name`` ("mtt" or "msd") as {checkpoint variable: array}."""
    from iad_tf.pretrained import musicnn_weights_path

    with np.load(musicnn_weights_path(name)) as data:
        return {k: data[k] for k in data.files}


def assign_musicnn_weights(
    model: keras.Model, arrays: Mapping[str, np.ndarray], parts: Sequence[str]
) -> list[str]:
    """Set the weights of ``model``'s musicnn layers of ``parts`` from checkpoint ``arrays``.

    Every array must be a variable of :data:`LAYER_TABLE`; every variable of ``parts`` must be
    present with the layer's shape (a 1-D conv takes the original's (7, C, 1, F) kernel
    without its unit axis) and is used exactly once. Returns the variables used, in order.
    Raises :class:`WeightsError` naming the variable otherwise.
    """
    known = {
        f"{scope}/{w}": part
        for _, scope, part in LAYER_TABLE
        for w in (_BN_WEIGHTS if scope.startswith("batch_normalization") else _KERNEL_WEIGHTS)
    }
    unknown = sorted(set(arrays) - set(known))
    if unknown:
        raise WeightsError(f"checkpoint variables not in musicnn's layer table: {unknown}")
    used: list[str] = []
    for name, scope, part in LAYER_TABLE:
        if part not in parts:
            continue
        layer = model.get_layer(name)
        names = _BN_WEIGHTS if isinstance(layer, layers.BatchNormalization) else _KERNEL_WEIGHTS
        values = []
        for w, var in zip(names, layer.weights, strict=True):
            key = f"{scope}/{w}"
            if key not in arrays:
                raise WeightsError(f"{key}: missing from the checkpoint (needed by layer {name})")
            if key in used:
                raise WeightsError(f"{key}: used twice")
            value = np.asarray(arrays[key], dtype=np.float32)
            want = tuple(var.shape)
            if value.ndim == 4 and len(want) == 3 and value.shape[2] == 1:
                value = value[:, :, 0, :]  # 2-D conv over (time, all channels) = 1-D conv
            if value.shape != want:
                raise WeightsError(f"{key}: shape {value.shape}, layer {name} needs {want}")
            values.append(value)
            used.append(key)
        layer.set_weights(values)
    expected = sorted(k for k, p in known.items() if p in parts)
    if sorted(used) != expected:
        raise WeightsError(f"variables not used: {sorted(set(expected) - set(used))}")
    return used
