"""Input pipeline: masks, windows, SpecAugment, and the rejection resampler's statistics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from iad_tf.config import AAM_CLASSES
from iad_tf.data.records import record_schema
from iad_tf.training import pipeline as P
from iad_tf.training.config import TrainConfig
from iad_tf.training.records_info import key_weights, open_records, rarest_keys, resampling_dists
from tests.records_factory import make_records
from tfrecords_tools.reader import iter_records

C = len(AAM_CLASSES)
PLAIN = TrainConfig(augment=False, mix_prob=0.0, oversample_factor=1.0, batch_size=2)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_records(tmp_path_factory.mktemp("recs"), n_frames=120, seed=1)


def written_tracks(records: Path, split: str) -> dict[str, dict]:
    """Every record of ``split`` decoded eagerly by the schema (the reference)."""
    schema = record_schema()
    out = {}
    for shard in sorted(records.glob(f"{split}-*.tfrecord")):
        for raw in iter_records(shard):
            rec = schema.decode(raw)
            out[rec["track_id"].decode()] = rec
    return out


def test_whole_tracks_padded_with_mask(records: Path) -> None:
    info = open_records(records)
    ref = written_tracks(records, "train")
    lengths = sorted(r["n_frames"] for r in ref.values())
    td = P.train_dataset(info, dataclasses.replace(PLAIN, batching="tracks"))
    assert td.steps_per_epoch == 3  # 5 tracks, batch 2
    seen = []
    for mel, labels, mask in td.dataset.take(3):
        mel, labels, mask = mel.numpy(), labels.numpy(), mask.numpy()
        assert mel.dtype == np.float32 and mel.shape[:2] == labels.shape[:2] == mask.shape
        for b in range(mask.shape[0]):
            n = int(mask[b].sum())
            assert np.all(mask[b, :n] == 1) and np.all(mask[b, n:] == 0)
            assert np.all(mel[b, n:] == 0) and np.all(labels[b, n:] == 0)
            # the real frames are a written track, exactly
            match = [
                r
                for r in ref.values()
                if r["n_frames"] == n and np.array_equal(r["mel"].astype(np.float32), mel[b, :n])
            ]
            assert len(match) == 1
            np.testing.assert_array_equal(match[0]["labels"], labels[b, :n])
            seen.append(n)
    assert len(seen) == 6 and set(seen) <= set(lengths)


def test_eval_dataset_is_whole_tracks_unpadded(records: Path) -> None:
    info = open_records(records)
    ref = written_tracks(records, "val")
    got = [(m.numpy(), k.numpy()) for m, _, k in P.eval_dataset(info, "val")]
    assert len(got) == len(ref)
    assert sorted(m.shape[1] for m, _ in got) == sorted(r["n_frames"] for r in ref.values())
    assert all(k.all() for _, k in got)


def test_windows_are_contiguous_slices_at_random_phase(tmp_path: Path) -> None:
    rec = make_records(
        tmp_path / "r", tracks={"train": [[0], [1], [2]], "val": [[0]]}, n_frames=200, seed=2
    )
    info = open_records(rec)
    ref = written_tracks(rec, "train")
    cfg = dataclasses.replace(PLAIN, batching="windows", window_seconds=1.0, batch_size=1)
    window = cfg.window_frames(info.feature)  # 43 frames
    td = P.train_dataset(info, cfg)
    assert td.steps_per_epoch == sum(r["n_frames"] // window for r in ref.values())
    offsets = set()
    for mel, labels, mask in td.dataset.take(60):
        mel, labels = mel.numpy()[0], labels.numpy()[0]
        assert mel.shape == (window, 128) and mask.numpy().all()
        hits = []
        for r in ref.values():
            full = r["mel"].astype(np.float32)
            for s in range(r["n_frames"] - window + 1):
                if np.array_equal(full[s : s + window], mel):
                    hits.append((r, s))
        assert len(hits) == 1
        r, s = hits[0]
        np.testing.assert_array_equal(r["labels"][s : s + window], labels)
        offsets.add(s % window)
    assert len(offsets) > 3  # the phase is random, not always 0


def test_short_track_gives_one_padded_window() -> None:
    ex = {"mel": tf.ones((10, 128)), "labels": tf.ones((10, C)), "mask": tf.ones((10,))}
    out = list(P.split_windows(16)(ex))
    assert len(out) == 1
    assert out[0]["mel"].shape == (16, 128)
    np.testing.assert_array_equal(out[0]["mask"].numpy(), [1] * 10 + [0] * 6)


def test_spec_augment_masks_with_training_mean() -> None:
    tf.random.set_seed(3)
    cfg = TrainConfig(time_masks=2, time_mask_frames=10, freq_masks=2, freq_mask_bins=8)
    fill = np.linspace(-80, -20, 128).astype(np.float32)
    mel = (
        np.random.default_rng(0).normal(0, 1, (100, 128)).astype(np.float32)
    )  # never equal to fill
    out = P.spec_augment(cfg, fill, window=100)({"mel": tf.constant(mel)})["mel"].numpy()
    changed = out != mel
    np.testing.assert_array_equal(out[changed], np.broadcast_to(fill, mel.shape)[changed])
    rows = changed.all(axis=1).sum()  # fully masked frames (time masks)
    cols = changed.all(axis=0).sum()  # fully masked bins (frequency masks)
    assert rows <= 2 * 9 and cols <= 2 * 7
    assert changed.any()


def test_resampler_shifts_distribution_as_configured() -> None:
    """20 tracks, 4 hold a rare class (fewer than 5 tracks): factor 4 -> rare drawn
    4 * 4 / (4 * 4 + 16) = 50% of the time instead of 20%."""
    n_tracks, rare_class, common = 20, 3, 8
    labels = np.zeros((n_tracks, 5, C), dtype=np.float32)
    labels[:, :, common] = 1.0
    labels[:4, :2, rare_class] = 1.0
    active = labels.max(axis=1) > 0
    counts = active.sum(axis=0)
    keys = rarest_keys(active, counts)
    assert set(keys[:4]) == {rare_class} and set(keys[4:]) == {common}
    init, target = resampling_dists(keys, key_weights(counts, 5, 4.0), C + 1)
    assert target[rare_class] == pytest.approx(0.5)

    ds = tf.data.Dataset.from_tensor_slices({"labels": labels, "idx": np.arange(n_tracks)})
    ds = P.oversample(
        ds.shuffle(n_tracks, seed=0).repeat(), P.rarest_key_fn(counts), init, target, seed=1
    )
    n = 4000
    idx = np.array([int(ex["idx"]) for ex in ds.take(n)])
    frac = float((idx < 4).mean())
    sd = np.sqrt(0.5 * 0.5 / n)
    assert abs(frac - 0.5) < 4 * sd, frac
    # within the common tracks, draws stay uniform
    common_counts = np.bincount(idx[idx >= 4], minlength=n_tracks)[4:]
    assert common_counts.min() > 0.6 * common_counts.mean()


def test_plan_resampling_reports_before_and_after(tmp_path: Path) -> None:
    rows = [[8, 1]] + [[8, 9]] * 5  # class 1 in one train track (rare), 8 and 9 common
    rec = make_records(tmp_path / "r", tracks={"train": rows, "val": [[8]]}, n_frames=60, seed=3)
    info = open_records(rec)
    plan = P.plan_resampling(info, TrainConfig(rare_threshold=5, oversample_factor=4.0))
    assert plan.active
    rep = plan.report(info.classes)
    assert rep[AAM_CLASSES[1]]["drawn_before"] == pytest.approx(1 / 6, abs=1e-4)
    assert rep[AAM_CLASSES[1]]["drawn_after"] == pytest.approx(4 / 9, abs=1e-4)  # 4 / (4 + 5)
    assert rep[AAM_CLASSES[8]]["drawn_after"] == pytest.approx(1.0)


def test_mix_windows_sums_power_and_unites_labels() -> None:
    rng = np.random.default_rng(0)
    a = {"mel": rng.uniform(-80, 0, (8, 4)).astype(np.float32),
         "labels": (rng.random((8, 3)) < 0.5).astype(np.float32),
         "mask": np.ones(8, np.float32)}
    b = {"mel": rng.uniform(-80, 0, (8, 4)).astype(np.float32),
         "labels": (rng.random((8, 3)) < 0.5).astype(np.float32),
         "mask": np.r_[np.ones(6), np.zeros(2)].astype(np.float32)}
    always = P.mix_windows(TrainConfig(mix_prob=1.0, mix_gain_db=1e-6))
    out = {k: v.numpy() for k, v in always({k: tf.constant(v) for k, v in a.items()},
                                          {k: tf.constant(v) for k, v in b.items()}).items()}
    want = 10 * np.log10(10 ** (a["mel"] / 10) + 10 ** (b["mel"] / 10))
    np.testing.assert_allclose(out["mel"], want, atol=1e-3)
    np.testing.assert_array_equal(out["labels"], np.maximum(a["labels"], b["labels"]))
    np.testing.assert_array_equal(out["mask"], b["mask"])
    never = P.mix_windows(TrainConfig(mix_prob=0.0))
    kept = never({k: tf.constant(v) for k, v in a.items()}, {k: tf.constant(v) for k, v in b.items()})
    np.testing.assert_array_equal(kept["mel"].numpy(), a["mel"])


def test_mix_windows_musicnn_compression_sums_power() -> None:
    from iad_tf.audio import compress, decompress
    from iad_tf.config import FEATURE_CONFIGS

    feature = FEATURE_CONFIGS["musicnn"]
    rng = np.random.default_rng(1)
    a, b = (
        {"mel": rng.uniform(0, 4, (8, 4)).astype(np.float32),
         "labels": np.zeros((8, 3), np.float32), "mask": np.ones(8, np.float32)}
        for _ in range(2)
    )
    fn = P.mix_windows(TrainConfig(mix_prob=1.0, mix_gain_db=1e-6), feature)
    out = fn({k: tf.constant(v) for k, v in a.items()}, {k: tf.constant(v) for k, v in b.items()})
    want = compress(decompress(a["mel"], feature) + decompress(b["mel"], feature), feature)
    np.testing.assert_allclose(out["mel"].numpy(), want, atol=1e-4)
    assert (out["mel"].numpy() >= np.maximum(a["mel"], b["mel"]) - 1e-4).all()


def test_steps_per_epoch_fixes_the_epoch_length(records: Path) -> None:
    """Recipes with different amounts of data are compared at equal steps: a set
    ``steps_per_epoch`` overrides the one-pass epoch, 0 keeps it."""
    info = open_records(records)
    one_pass = P.train_dataset(info, dataclasses.replace(PLAIN, batching="tracks"))
    fixed = P.train_dataset(info, dataclasses.replace(PLAIN, batching="tracks", steps_per_epoch=7))
    assert one_pass.steps_per_epoch == 3 and fixed.steps_per_epoch == 7
    assert len(list(fixed.dataset.take(7))) == 7  # the stream repeats: 7 steps exist
