"""Keras functional model builders: input ``mel`` (batch, frames, n_mels) raw dB log-mel ->
output ``logits`` (batch, frames, n_classes), for any number of frames.

Every model starts with a Normalization layer holding the training set's per-mel-bin mean
and variance (``mel_stats`` from the records manifest), so evaluate, export and predict feed
raw dB and never need the statistics separately.

For TFLite export, :func:`with_fixed_input` rebuilds a trained model with a fixed input shape
(e.g. (1, 256, 128)) and copies its weights: a Bidirectional GRU converts to builtin ops only
with a static time axis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
from keras import layers

from iad_tf.config import FeatureConfig, check_compatible, named_feature_config
from iad_tf.training import layers as iad_layers  # noqa: F401  (registers custom layers)
from iad_tf.training.config import MODEL_NAMES, ModelConfig
from iad_tf.training.musicnn import build_musicnn_crnn

INPUT_NAME = "mel"
OUTPUT_NAME = "logits"
#: The auxiliary heads of multi-task training are named "<target>_logits" (e.g. "pitch_logits";
#: never in a saved model).
AUX_HEAD_SUFFIX = "_logits"


def _inputs(cfg: ModelConfig, frames: int | None, batch_size: int | None) -> keras.KerasTensor:
    return keras.Input(shape=(frames, cfg.n_mels), batch_size=batch_size, name=INPUT_NAME)


def _standardize(
    x: keras.KerasTensor, cfg: ModelConfig, mel_stats: Mapping[str, Sequence[float]] | None
) -> keras.KerasTensor:
    """Per-mel-bin (x - mean) / std with the training statistics (identity if None)."""
    if mel_stats is None:
        mean, var = np.zeros(cfg.n_mels), np.ones(cfg.n_mels)
    else:
        mean = np.asarray(mel_stats["mean"], dtype=np.float64)
        var = np.asarray(mel_stats["std"], dtype=np.float64) ** 2
        if mean.shape != (cfg.n_mels,) or var.shape != (cfg.n_mels,):
            raise ValueError(
                f"mel_stats must hold {cfg.n_mels} means and stds, got {mean.shape}, {var.shape}"
            )
    return layers.Normalization(
        axis=-1, mean=mean.tolist(), variance=var.tolist(), name="standardize"
    )(x)


def _conv_front_end(
    x: keras.KerasTensor, cfg: ModelConfig, blocks: tuple[tuple[int, int], ...], prefix: str
) -> keras.KerasTensor:
    """(batch, frames, n_mels) -> (batch, frames, bins * filters): 3x3 convs pooling frequency only."""
    h = layers.Reshape((-1, cfg.n_mels, 1), name=f"{prefix}_to_image")(x)  # (b, T, F, 1)
    for i, (filters, pool) in enumerate(blocks):
        if cfg.conv_kind == "separable":  # depthwise 3x3 + pointwise 1x1
            h = layers.SeparableConv2D(
                filters, 3, padding="same", use_bias=False, name=f"{prefix}{i}_conv"
            )(h)
        else:
            h = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{prefix}{i}_conv")(h)
        h = layers.BatchNormalization(name=f"{prefix}{i}_bn")(h)
        h = layers.ReLU(name=f"{prefix}{i}_relu")(h)
        h = layers.MaxPooling2D((1, pool), name=f"{prefix}{i}_pool")(h)  # (b, T, F / pool, filters)
    bins = cfg.conv_out_bins(blocks)
    return layers.Reshape((-1, bins * blocks[-1][0]), name=f"{prefix}_to_sequence")(
        h
    )  # (b, T, bins * c)


def build_mlp(
    cfg: ModelConfig,
    mel_stats: Mapping[str, Sequence[float]] | None = None,
    frames: int | None = None,
    batch_size: int | None = None,
) -> keras.Model:
    """Frame-wise MLP. The first layer sees ``2 * mlp_context + 1`` frames (a Conv1D over time,
    i.e. a dense layer on stacked neighbouring frames); the others see one frame."""
    inp = _inputs(cfg, frames, batch_size)
    h = _standardize(inp, cfg, mel_stats)
    for i, units in enumerate(cfg.mlp_units):
        if i == 0 and cfg.mlp_context > 0:
            h = layers.Conv1D(
                units,
                2 * cfg.mlp_context + 1,
                padding="same",
                activation="relu",
                name="dense0_context",
            )(h)
        else:
            h = layers.Dense(units, activation="relu", name=f"dense{i}")(h)
        h = layers.Dropout(cfg.dropout, name=f"dropout{i}")(h)
    out = layers.Dense(cfg.n_classes, name=OUTPUT_NAME)(h)  # (b, T, C)
    return keras.Model(inp, out, name="mlp")


def build_crnn(
    cfg: ModelConfig,
    mel_stats: Mapping[str, Sequence[float]] | None = None,
    frames: int | None = None,
    batch_size: int | None = None,
) -> keras.Model:
    """Conv blocks (frequency pooling only) -> Bidirectional GRU -> per-frame Dense."""
    inp = _inputs(cfg, frames, batch_size)
    h = _standardize(inp, cfg, mel_stats)
    h = _conv_front_end(h, cfg, cfg.conv_blocks, "conv")
    h = layers.Dropout(cfg.dropout, name="conv_dropout")(h)
    h = layers.Bidirectional(layers.GRU(cfg.gru_units, return_sequences=True), name="bigru")(
        h
    )  # (b, T, 2u)
    h = layers.Dropout(cfg.dropout, name="gru_dropout")(h)
    out = layers.Dense(cfg.n_classes, name=OUTPUT_NAME)(h)  # (b, T, C)
    return keras.Model(inp, out, name="crnn")


def build_attention(
    cfg: ModelConfig,
    mel_stats: Mapping[str, Sequence[float]] | None = None,
    frames: int | None = None,
    batch_size: int | None = None,
) -> keras.Model:
    """Conv front end -> projection + sinusoidal positions -> block transformer encoders -> Dense."""
    inp = _inputs(cfg, frames, batch_size)
    h = _standardize(inp, cfg, mel_stats)
    h = _conv_front_end(h, cfg, cfg.attn_conv_blocks, "conv")
    h = layers.Dense(cfg.attn_dim, name="project")(h)  # (b, T, d)
    h = iad_layers.SinusoidalPositionalEncoding(name="positions")(h)
    h = layers.Dropout(cfg.dropout, name="input_dropout")(h)
    for i in range(cfg.attn_layers):
        h = iad_layers.BlockTransformerEncoder(
            cfg.attn_dim,
            cfg.attn_heads,
            cfg.attn_ff,
            cfg.attn_block_frames,
            cfg.dropout,
            name=f"encoder{i}",
        )(h)
    out = layers.Dense(cfg.n_classes, name=OUTPUT_NAME)(h)  # (b, T, C)
    return keras.Model(inp, out, name="attention")


#: Past frames each causal 3x3 convolution of ``crnn_stream`` sees besides the current one.
CAUSAL_CONTEXT = 2
#: Names of the streaming state tensors: one time buffer per conv block, then the GRU state.
STATE_GRU = "gru"


def stream_state_names(cfg: ModelConfig) -> tuple[str, ...]:
    """``("conv0", ..., "conv<n-1>", "gru")``: the states of :func:`build_crnn_stream_step`."""
    return (*(f"conv{i}" for i in range(len(cfg.conv_blocks))), STATE_GRU)


def stream_state_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Per state, its shape without the batch axis: conv ``i`` keeps the last
    :data:`CAUSAL_CONTEXT` frames of its input (ctx, bins_i, channels_i); the GRU (units,)."""
    shapes: dict[str, tuple[int, ...]] = {}
    bins, channels = cfg.n_mels, 1
    for i, (filters, pool) in enumerate(cfg.conv_blocks):
        shapes[f"conv{i}"] = (CAUSAL_CONTEXT, bins, channels)
        bins, channels = bins // pool, filters
    shapes[STATE_GRU] = (cfg.gru_units,)
    return shapes


def _causal_crnn(
    cfg: ModelConfig,
    mel_stats: Mapping[str, Sequence[float]] | None,
    inp: keras.KerasTensor,
    states: Mapping[str, keras.KerasTensor] | None,
    chunk_frames: int | None,
) -> tuple[keras.KerasTensor, dict[str, keras.KerasTensor]]:
    """The causal CRNN on ``inp`` (b, T, n_mels) -> (logits (b, T, C), new states).

    ``states is None``: the whole sequence, the past of frame 0 zero-padded (training).
    Otherwise one chunk of ``chunk_frames`` frames continuing from ``states`` (streaming):
    each conv prepends its buffer instead of the zeros, so both wirings compute the same
    numbers, and the weights (same layer names) are interchangeable.
    """
    if cfg.conv_kind != "standard":
        raise ValueError(f"crnn_stream has standard causal convolutions only, got conv_kind {cfg.conv_kind!r}")
    new: dict[str, keras.KerasTensor] = {}
    h = _standardize(inp, cfg, mel_stats)
    h = layers.Reshape((-1, cfg.n_mels, 1), name="causal_to_image")(h)  # (b, T, F, 1)
    for i, (filters, pool) in enumerate(cfg.conv_blocks):
        if states is None:
            h = layers.ZeroPadding2D(((CAUSAL_CONTEXT, 0), (1, 1)), name=f"causal{i}_pad")(h)
        else:
            h = layers.Concatenate(axis=1, name=f"causal{i}_buffer")([states[f"conv{i}"], h])
            new[f"conv{i}"] = layers.Cropping2D(
                ((chunk_frames, 0), (0, 0)), name=f"causal{i}_keep"
            )(h)  # (b, ctx, F_i, c_i): the last frames, the next chunk's past
            h = layers.ZeroPadding2D(((0, 0), (1, 1)), name=f"causal{i}_pad")(h)
        h = layers.Conv2D(filters, 3, padding="valid", use_bias=False, name=f"causal{i}_conv")(
            h
        )  # (b, T, F_i, filters): time causal, frequency 'same'
        h = layers.BatchNormalization(name=f"causal{i}_bn")(h)
        h = layers.ReLU(name=f"causal{i}_relu")(h)
        h = layers.MaxPooling2D((1, pool), name=f"causal{i}_pool")(h)  # (b, T, F_i / pool, filters)
    bins = cfg.conv_out_bins(cfg.conv_blocks)
    h = layers.Reshape((-1, bins * cfg.conv_blocks[-1][0]), name="causal_to_sequence")(h)
    h = layers.Dropout(cfg.dropout, name="conv_dropout")(h)
    stream = states is not None
    gru = layers.GRU(
        cfg.gru_units, return_sequences=True, return_state=stream, unroll=stream, name="gru"
    )
    if stream:
        h, new[STATE_GRU] = gru(h, initial_state=states[STATE_GRU])
    else:
        h = gru(h)  # (b, T, u)
    h = layers.Dropout(cfg.dropout, name="gru_dropout")(h)
    return layers.Dense(cfg.n_classes, name=OUTPUT_NAME)(h), new  # (b, T, C)


def build_crnn_stream(
    cfg: ModelConfig,
    mel_stats: Mapping[str, Sequence[float]] | None = None,
    frames: int | None = None,
    batch_size: int | None = None,
) -> keras.Model:
    """Causal CRNN: conv blocks that see only the current and :data:`CAUSAL_CONTEXT` past
    frames (frequency pooling only) -> unidirectional GRU -> per-frame Dense. Frame t's
    output depends on frames <= t only (no look-ahead), so it can run on a live stream
    (:func:`build_crnn_stream_step`)."""
    inp = _inputs(cfg, frames, batch_size)
    out, _ = _causal_crnn(cfg, mel_stats, inp, None, None)
    return keras.Model(inp, out, name="crnn_stream")


def build_crnn_stream_step(
    cfg: ModelConfig, mel_stats: Mapping[str, Sequence[float]] | None, chunk_frames: int
) -> keras.Model:
    """One streaming step of :func:`build_crnn_stream` (same layer names, so its weights load
    by name): inputs ``mel`` (1, chunk_frames, n_mels) and the states of
    :func:`stream_state_shapes` (1, ...) named ``state_<name>``, outputs ``{"logits": (1, chunk_frames, C), <state>:
    new state}``. The GRU is unrolled over the chunk (no WHILE loop: converts to int8)."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    inp = _inputs(cfg, chunk_frames, 1)
    states = {
        name: keras.Input(shape=shape, batch_size=1, name=f"state_{name}")
        for name, shape in stream_state_shapes(cfg).items()
    }
    out, new = _causal_crnn(cfg, mel_stats, inp, states, chunk_frames)
    return keras.Model([inp, *states.values()], {OUTPUT_NAME: out, **new}, name="crnn_stream_step")


def with_aux_head(model: keras.Model, target: str, columns: int) -> keras.Model:
    """The model multi-task training fits: ``model``'s input -> its class logits followed by
    ``columns`` logits of the auxiliary ``target`` (e.g. "pitch", 88 keys), (batch, frames,
    C + columns). The head is a Dense on the features ``model``'s logits layer sees; every
    other layer is ``model``'s own (shared weights), so training this one trains ``model``,
    which stays the instrument head alone."""
    feats = model.get_layer(OUTPUT_NAME).input  # (b, T, features)
    head = layers.Dense(columns, name=f"{target}{AUX_HEAD_SUFFIX}")(feats)  # (b, T, columns)
    out = layers.Concatenate(axis=-1, name=f"logits_and_{target}")([model.output, head])
    return keras.Model(model.input, out, name=f"{model.name}_with_{target}")


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "mlp": build_mlp,
    "crnn": build_crnn,
    "attention": build_attention,
    "crnn_stream": build_crnn_stream,
}
BUILDERS["musicnn_crnn"] = build_musicnn_crnn
assert tuple(BUILDERS) == MODEL_NAMES


def check_model_name(name: str) -> None:
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


#: Models that only work on one named feature configuration (iad_tf.config.FEATURE_CONFIGS).
REQUIRED_FEATURES: dict[str, str] = {"musicnn_crnn": "musicnn"}


def check_model_features(name: str, feature: FeatureConfig, where: str) -> None:
    """ValueError naming ``where`` when model ``name`` cannot use records of ``feature``."""
    required = REQUIRED_FEATURES.get(name)
    if required is None:
        return
    try:
        check_compatible(named_feature_config(required), feature, (), (), where)
    except ValueError as exc:
        raise ValueError(
            f"model {name} needs records built with `build-records --features {required}`: {exc}"
        ) from exc


def build_model(
    name: str,
    cfg: ModelConfig,
    mel_stats: Mapping[str, Sequence[float]] | None = None,
    frames: int | None = None,
    batch_size: int | None = None,
) -> keras.Model:
    """Build ``name`` in {mlp, crnn, attention}; ``frames``/``batch_size`` fix the input shape."""
    check_model_name(name)
    return BUILDERS[name](cfg, mel_stats=mel_stats, frames=frames, batch_size=batch_size)


def with_fixed_input(model: keras.Model, frames: int, batch_size: int = 1) -> keras.Model:
    """A copy of ``model`` whose input is fixed to (batch_size, frames, n_mels), same weights.

    Works on any functional model from this module (also one loaded from ``model.keras``):
    the input layer's shape in the model's config is replaced and the weights copied.
    """
    config = model.get_config()
    inputs = [layer for layer in config["layers"] if layer["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise ValueError(f"expected one input layer, found {len(inputs)}")
    n_mels = inputs[0]["config"]["batch_shape"][-1]
    inputs[0]["config"]["batch_shape"] = [batch_size, frames, n_mels]
    fixed = keras.Model.from_config(config)
    fixed.set_weights(model.get_weights())
    return fixed
