"""Model builders: shapes for any frame count, names, standardisation, serialization,
fixed-shape rebuild, locality of the MLP context and of block attention, TFLite builtins."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from iad_tf.training.config import MODEL_NAMES, ModelConfig
from iad_tf.training.layers import BlockTransformerEncoder
from iad_tf.training.models import REQUIRED_FEATURES, build_model, with_fixed_input

SMALL = ModelConfig(
    mlp_units=(32, 16),
    conv_blocks=((4, 4), (8, 4)),
    gru_units=8,
    attn_conv_blocks=((4, 4), (8, 4)),
    attn_dim=16,
    attn_heads=2,
    attn_ff=32,
    attn_block_frames=32,
)
#: Models on the default 128-band log-mel (musicnn_crnn: tests/test_musicnn.py).
LOGMEL_MODELS = tuple(n for n in MODEL_NAMES if n not in REQUIRED_FEATURES)
STATS = {"mean": np.linspace(-70, -30, 128).tolist(), "std": np.linspace(4, 12, 128).tolist()}


def mel(frames: int, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(-50, 10, (batch, frames, 128)).astype(np.float32)


@pytest.fixture(scope="module")
def models() -> dict[str, keras.Model]:
    keras.utils.set_random_seed(0)
    return {name: build_model(name, SMALL, STATS) for name in LOGMEL_MODELS}


@pytest.mark.parametrize("name", LOGMEL_MODELS)
def test_shapes_and_names_for_any_frame_count(models: dict[str, keras.Model], name: str) -> None:
    m = models[name]
    assert m.inputs[0].name == "mel"
    assert m.output_names == ["logits"]
    for frames in (1, 37, 70):  # 70 > attn_block_frames: several attention blocks
        out = np.asarray(m(mel(frames), training=False))
        assert out.shape == (2, frames, 31)
        assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", LOGMEL_MODELS)
def test_first_layer_standardises_with_training_stats(
    models: dict[str, keras.Model], name: str
) -> None:
    layer = models[name].get_layer("standardize")
    x = mel(5)
    want = (x - np.array(STATS["mean"])) / np.array(STATS["std"])
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", LOGMEL_MODELS)
def test_save_load_round_trip(models: dict[str, keras.Model], name: str, tmp_path: Path) -> None:
    m = models[name]
    path = tmp_path / f"{name}.keras"
    m.save(path)
    loaded = keras.models.load_model(path)
    x = mel(45)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(m(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", LOGMEL_MODELS)
def test_fixed_input_rebuild_gives_same_outputs(models: dict[str, keras.Model], name: str) -> None:
    fixed = with_fixed_input(models[name], frames=64, batch_size=1)
    assert tuple(fixed.inputs[0].shape) == (1, 64, 128)
    x = mel(64, batch=1, seed=3)
    np.testing.assert_allclose(
        np.asarray(fixed(x)), np.asarray(models[name](x)), rtol=1e-5, atol=1e-5
    )


def test_mlp_context_is_local() -> None:
    m = build_model("mlp", ModelConfig(mlp_units=(16,), mlp_context=2), STATS)
    x = mel(30, batch=1)
    y = x.copy()
    y[0, 20] += 25.0  # change one frame
    diff = np.abs(np.asarray(m(y)) - np.asarray(m(x))).max(axis=-1)[0]  # (30,)
    changed = np.flatnonzero(diff > 1e-6)
    assert changed.min() >= 18 and changed.max() <= 22 and 20 in changed


def test_block_attention_stays_inside_blocks_and_ignores_padding() -> None:
    layer = BlockTransformerEncoder(dim=8, heads=2, ff=16, block_frames=16, dropout=0.0)
    x = (
        np.random.default_rng(1).normal(size=(2, 40, 8)).astype(np.float32)
    )  # blocks 0-15, 16-31, 32-39 (+pad)
    full = np.asarray(layer(x))
    # the last, padded block gives the same result as running it alone (padding masked out)
    np.testing.assert_allclose(full[:, 32:], np.asarray(layer(x[:, 32:])), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(full[:, 16:32], np.asarray(layer(x[:, 16:32])), rtol=1e-5, atol=1e-5)


def test_crnn_converts_to_builtin_tflite_under_5mb() -> None:
    crnn = build_model("crnn", ModelConfig(), STATS)  # the shipped size
    fixed = with_fixed_input(crnn, frames=256, batch_size=1)
    conv = tf.lite.TFLiteConverter.from_keras_model(fixed)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    blob = conv.convert()
    assert len(blob) < 5_000_000


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="unknown model 'transformer'.*mlp, crnn, attention"):
        build_model("transformer", SMALL)


def test_separable_conv_front_end(tmp_path: Path) -> None:
    """conv_kind="separable": depthwise 3x3 + pointwise 1x1 in every block (fewer weights,
    same shapes); saves and reloads; crnn_stream refuses it instead of ignoring it."""
    import dataclasses

    sep = dataclasses.replace(SMALL, conv_kind="separable")
    keras.utils.set_random_seed(0)
    std_model, sep_model = build_model("crnn", SMALL, STATS), build_model("crnn", sep, STATS)
    conv1 = sep_model.get_layer("conv1_conv")
    assert isinstance(conv1, keras.layers.SeparableConv2D)
    # block 1 (4 -> 8 channels): 3*3*4 depthwise + 4*8 pointwise instead of 3*3*4*8
    assert conv1.count_params() == 3 * 3 * 4 + 4 * 8
    assert std_model.get_layer("conv1_conv").count_params() == 3 * 3 * 4 * 8
    x = mel(37)
    out = np.asarray(sep_model(x, training=False))
    assert out.shape == (2, 37, 31) and np.all(np.isfinite(out))
    sep_model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(again(x, training=False)), out, atol=1e-6)
    with pytest.raises(ValueError, match="conv_kind"):
        build_model("crnn_stream", sep, STATS)
    with pytest.raises(ValueError, match="conv_kind"):
        ModelConfig(conv_kind="dilated")
