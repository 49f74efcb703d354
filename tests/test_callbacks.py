"""The masked validation metrics equal scikit-learn's on the same predictions; padding is
ignored; the NaN guard names epoch and step; a resumed run knows its best score."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score, f1_score, hamming_loss, jaccard_score

from iad_tf.training.callbacks import (
    MaskedValidationMetrics,
    NaNGuard,
    TrainingDiverged,
    best_so_far,
)
from iad_tf.training.losses import MaskedWeightedBCE

C = 31


def framewise_model(seed: int = 0) -> keras.Model:
    """A per-frame model (no mixing over time): padded frames cannot touch real ones."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, 128), name="mel")
    out = keras.layers.Dense(C, name="logits")(inp)
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss=MaskedWeightedBCE())
    return model


def val_batches(
    seed: int, garbage: bool = False
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    junk = np.random.default_rng(seed + 100)  # garbage from its own stream: same real frames
    batches = []
    for t in (50, 80, 33):
        mel = rng.normal(0, 1, (2, t, 128)).astype(np.float32)
        labels = (rng.random((2, t, C)) < 0.3).astype(np.float32)
        mask = np.ones((2, t), np.float32)
        mask[1, t // 2 :] = 0  # second track half padding
        if garbage:
            pad = mask == 0
            mel[pad] = junk.normal(0, 1e3, (int(pad.sum()), 128))
            labels[pad] = 1.0
        else:
            mel[mask == 0] = 0.0
            labels[mask == 0] = 0.0
        batches.append((mel, labels, mask))
    return batches


def as_dataset(batches: list) -> tf.data.Dataset:
    return tf.data.Dataset.from_generator(
        lambda: iter(batches),
        output_signature=(
            tf.TensorSpec((None, None, 128), tf.float32),
            tf.TensorSpec((None, None, C), tf.float32),
            tf.TensorSpec((None, None), tf.float32),
        ),
    )


def test_metrics_equal_sklearn_on_real_frames() -> None:
    model = framewise_model()
    batches = val_batches(0)
    cb = MaskedValidationMetrics(as_dataset(batches), threshold=0.5)
    cb.set_model(model)
    logs: dict = {}
    cb.on_epoch_end(0, logs)

    ys, ps, raw = [], [], []
    for mel, labels, mask in batches:
        probs = 1 / (1 + np.exp(-np.asarray(model.predict_on_batch(mel))))
        keep = mask.astype(bool)
        ys.append(labels[keep].astype(int))
        ps.append((probs[keep] >= 0.5).astype(int))
        raw.append(probs[keep])
    y, p = np.concatenate(ys), np.concatenate(ps)
    present = np.flatnonzero(y.sum(axis=0) > 0)
    # mAP: sklearn's macro average precision over the classes present, on probabilities
    assert logs["val_map"] == pytest.approx(average_precision_score(
        y[:, present], np.concatenate(raw)[:, present], average="macro"), rel=1e-5)
    assert logs["val_f1_macro"] == pytest.approx(
        f1_score(y, p, labels=present, average="macro", zero_division=0)
    )
    assert logs["val_f1_micro"] == pytest.approx(f1_score(y, p, average="micro", zero_division=0))
    assert logs["val_f1_weighted"] == pytest.approx(
        f1_score(y, p, average="weighted", zero_division=0)
    )
    assert logs["val_hamming_loss"] == pytest.approx(hamming_loss(y, p))
    assert logs["val_jaccard_samples"] == pytest.approx(
        jaccard_score(y, p, average="samples", zero_division=1.0)
    )
    assert 0.05 < logs["val_f1_micro"] < 0.95  # a real, non-degenerate comparison

    # val_loss: the model's masked loss averaged over real frames
    losses = [
        (float(model.loss(lab, model.predict_on_batch(m), sample_weight=k)), k.sum())
        for m, lab, k in batches
    ]
    want = sum(v * w for v, w in losses) / sum(w for _, w in losses)
    assert logs["val_loss"] == pytest.approx(want, rel=1e-5)


def test_garbage_in_padded_frames_changes_no_metric() -> None:
    model = framewise_model(1)
    logs_clean: dict = {}
    logs_dirty: dict = {}
    for batches, logs in ((val_batches(3), logs_clean), (val_batches(3, garbage=True), logs_dirty)):
        cb = MaskedValidationMetrics(as_dataset(batches))
        cb.set_model(model)
        cb.on_epoch_end(0, logs)
    assert logs_clean == pytest.approx(logs_dirty, rel=1e-6)


def test_nan_loss_stops_naming_epoch_and_step() -> None:
    model = framewise_model()
    mel = np.zeros((4, 10, 128), np.float32)
    mel[2, 3, 5] = np.nan  # the second batch of 2 carries a NaN in a real frame
    labels = np.zeros((4, 10, C), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((mel, labels, np.ones((4, 10), np.float32))).batch(2)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 2"):
        model.fit(ds, epochs=2, callbacks=[NaNGuard()], verbose=0, shuffle=False)


def test_best_so_far_reads_metrics_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    assert best_so_far(path) is None
    path.write_text(
        "".join(
            json.dumps({"epoch": i + 1, "val_f1_macro": v}) + "\n"
            for i, v in enumerate([0.2, 0.5, 0.4])
        )
    )
    assert best_so_far(path) == 0.5
