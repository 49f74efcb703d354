"""MaskedWeightedBCE against a numpy reference; padding contributes nothing; serialization."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from iad_tf.training.losses import MaskedWeightedBCE, pos_weight_from_manifest

C = 31


def reference(y: np.ndarray, x: np.ndarray, mask: np.ndarray | None, w: np.ndarray | None) -> float:
    """Textbook float64 BCE with pos_weight: mean over classes, then over real frames."""
    x = x.astype(np.float64)
    w = np.ones(x.shape[-1]) if w is None else w.astype(np.float64)
    sig = 1.0 / (1.0 + np.exp(-x))
    elem = -(w * y * np.log(sig) + (1 - y) * np.log(1 - sig))  # (B, T, C)
    frame = elem.mean(axis=-1)  # (B, T)
    return float(frame.mean() if mask is None else frame[mask.astype(bool)].mean())


def random_batch(seed: int, b: int = 3, t: int = 40) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (b, t, C)).astype(np.float32)
    labels = (rng.random((b, t, C)) < 0.3).astype(np.float32)
    lengths = rng.integers(5, t + 1, b)
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.float32)  # (B, T)
    pos_weight = rng.uniform(0.5, 20, C).astype(np.float32)
    return logits, labels, mask, pos_weight


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_equals_numpy_reference(seed: int, weighted: bool) -> None:
    logits, labels, mask, pw = random_batch(seed)
    w = pw if weighted else None
    loss = MaskedWeightedBCE(None if w is None else w.tolist())
    got = float(loss(labels, logits, sample_weight=mask))
    np.testing.assert_allclose(got, reference(labels, logits, mask, w), rtol=1e-5)
    # without a mask: plain mean over all frames
    np.testing.assert_allclose(
        float(loss(labels, logits)), reference(labels, logits, None, w), rtol=1e-5
    )


def test_loss_matches_tensorflow_weighted_cross_entropy() -> None:
    logits, labels, mask, pw = random_batch(5)
    tf_elem = tf.nn.weighted_cross_entropy_with_logits(
        labels, logits, pos_weight=pw
    ).numpy()  # (B, T, C)
    want = tf_elem.mean(axis=-1)[mask.astype(bool)].mean()
    got = float(MaskedWeightedBCE(pw.tolist())(labels, logits, sample_weight=mask))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_stable_for_extreme_logits() -> None:
    logits = np.array([[[80.0, -80.0] + [0.0] * (C - 2)]], dtype=np.float32)  # (1, 1, C)
    labels = np.zeros_like(logits)
    labels[0, 0, 1] = 1.0  # confidently wrong on class 1, wrong on class 0
    got = float(MaskedWeightedBCE()(labels, logits))
    want = (80.0 + 80.0 + (C - 2) * np.log(2.0)) / C
    assert np.isfinite(got)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_garbage_in_padded_frames_changes_nothing() -> None:
    logits, labels, mask, pw = random_batch(3)
    loss = MaskedWeightedBCE(pw.tolist())
    pad = ~mask.astype(bool)
    assert pad.any()
    g_logits, g_labels = logits.copy(), labels.copy()
    g_logits[pad] = np.random.default_rng(9).normal(0, 1e4, (int(pad.sum()), C))
    g_logits[0, -1, 0] = np.nan if pad[0, -1] else g_logits[0, -1, 0]
    g_labels[pad] = 1.0
    clean = float(loss(labels, logits, sample_weight=mask))
    dirty = float(loss(g_labels, g_logits, sample_weight=mask))
    assert clean == pytest.approx(dirty, rel=1e-6)

    def grad(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            val = loss(y, xt, sample_weight=mask)
        return tape.gradient(val, xt).numpy()

    g_clean, g_dirty = grad(logits, labels), grad(g_logits, g_labels)
    np.testing.assert_allclose(g_clean, g_dirty, rtol=1e-6, atol=1e-9)
    assert np.all(g_dirty[pad] == 0)


def test_serialization_round_trip() -> None:
    logits, labels, mask, pw = random_batch(4)
    loss = MaskedWeightedBCE(pw.tolist())
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MaskedWeightedBCE)
    assert restored.pos_weight == pytest.approx(pw.tolist())
    assert float(restored(labels, logits, sample_weight=mask)) == pytest.approx(
        float(loss(labels, logits, sample_weight=mask)), rel=1e-6
    )


def test_pos_weight_from_manifest() -> None:
    classes = ["a", "b", "c", "d"]
    manifest = {
        "classes": classes,
        "frames": {"train": 1000},
        "class_active_frames": {"train": {"a": 100, "b": 0, "c": 900, "d": 1}},
    }
    got = pos_weight_from_manifest(manifest, lo=1.0, hi=50.0)
    # a: 900/100 = 9; b: never active -> lo; c: 100/900 < 1 -> lo; d: 999 -> clipped to hi
    assert got == pytest.approx([9.0, 1.0, 1.0, 50.0])


def test_auxiliary_columns_add_their_weighted_mean() -> None:
    """aux_columns K: the last K columns are the auxiliary head's: per frame the class mean
    (pos-weighted) plus aux_weight x the plain mean over the K columns; serializable."""
    logits, labels, mask, pw = random_batch(6)
    rng = np.random.default_rng(7)
    aux_x = rng.normal(0, 3, (*logits.shape[:2], 88)).astype(np.float32)
    aux_y = (rng.random(aux_x.shape) < 0.05).astype(np.float32)
    both_x, both_y = np.concatenate([logits, aux_x], -1), np.concatenate([labels, aux_y], -1)
    loss = MaskedWeightedBCE(pw.tolist(), aux_columns=88, aux_weight=0.5)
    want = reference(labels, logits, mask, pw) + 0.5 * reference(aux_y, aux_x, mask, None)
    np.testing.assert_allclose(float(loss(both_y, both_x, sample_weight=mask)), want, rtol=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (restored.aux_columns, restored.aux_weight) == (88, 0.5)
    np.testing.assert_allclose(float(restored(both_y, both_x, sample_weight=mask)), want, rtol=1e-5)
    # weight 0: the auxiliary columns change nothing
    zero = MaskedWeightedBCE(pw.tolist(), aux_columns=88, aux_weight=0.0)
    np.testing.assert_allclose(float(zero(both_y, both_x, sample_weight=mask)),
                               reference(labels, logits, mask, pw), rtol=1e-5)
