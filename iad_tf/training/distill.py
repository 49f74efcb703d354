"""Knowledge distillation: train one model towards the mean of several teachers.

An ensemble of independently trained models ranks unheard songs better than any one of them
(on the sample, the mean of two seeds' probabilities: OOF mAP 0.334 vs 0.315 / 0.314), but
costs a forward pass per member in ``predict``. Distillation moves part of that into one model
of the usual size: each training track's frame targets become

    (1 - w) * labels + w * mean(teacher probabilities)

with ``w`` = ``TrainConfig.distill_weight``. The teachers' probabilities are computed once, on
whole clean tracks, before training; the student then sees the usual windows, mixing and
augmentation of those targets (mixing unites the soft targets by their maximum, as it does
hard labels). The loss is the same weighted BCE: it accepts targets in [0, 1].

A teacher must have been trained without the songs the student is scored on: ``iad-tf cv``
therefore takes teacher *cross-validation* runs and gives fold k's student fold k's teachers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SoftTargets:
    """The teachers' mean probabilities of every track of one split, float16 (frames, C)."""

    by_track: Mapping[str, np.ndarray]
    teachers: tuple[str, ...]


def require_both(teachers: Sequence[Any], weight: float) -> None:
    """``ValueError`` unless teachers and a distill weight > 0 are given together."""
    if bool(teachers) != (weight > 0):
        raise ValueError(
            "distillation needs both teacher runs (--teacher) and a distill weight > 0 "
            f"(--distill-weight); got {len(teachers)} teacher(s), weight {weight}")


def check_teachers(teacher_runs: Sequence[str | Path], classes: Sequence[str]) -> None:
    """Before any work: every teacher is a finished run predicting ``classes`` (the student's,
    in order); ``ValueError`` naming the first that is not."""
    from iad_tf.evaluation.inference import open_run

    for run_dir in teacher_runs:
        run = open_run(run_dir)  # names a missing folder, config or model
        if tuple(run.classes) != tuple(classes):
            raise ValueError(f"teacher {run_dir}: predicts other classes than these records "
                             f"({len(run.classes)} vs {len(classes)}, or in another order)")


def teacher_targets(
    teacher_runs: Sequence[str | Path], records_dir: str | Path, split: str = "train",
    progress: bool = True,
) -> SoftTargets:
    """Mean sigmoid probabilities of ``teacher_runs`` (run directories) over ``split`` of
    ``records_dir``; ``ValueError`` naming the run when one is unusable (no model, other
    features or classes than the records)."""
    from iad_tf.evaluation.inference import open_run, predict_split

    if not teacher_runs:
        raise ValueError("distillation needs at least one teacher run")
    total: dict[str, np.ndarray] = {}
    for run_dir in teacher_runs:
        try:
            run = open_run(run_dir)
            preds = predict_split(run, records_dir, split, progress=progress)
        except ValueError as exc:
            raise ValueError(f"teacher {run_dir}: {exc}") from exc
        for p in preds:
            if p.track_id in total:
                total[p.track_id] += p.probs
            else:
                total[p.track_id] = p.probs.astype(np.float32)
    n = float(len(teacher_runs))
    return SoftTargets(
        {tid: (s / n).astype(np.float16) for tid, s in total.items()},
        tuple(str(Path(r)) for r in teacher_runs),
    )


def soft_lookup(targets: SoftTargets, track_ids: Sequence[str], n_frames: Sequence[int]) -> Any:
    """Map fn for :func:`iad_tf.training.pipeline.read_tracks`' raw records: the record's soft
    targets float32 (frames, C), looked up by ``track_id`` in one in-graph table.

    Every track of ``track_ids`` must have targets of its ``n_frames`` (``ValueError`` naming
    the first that does not): a record can never be trained with another's targets."""
    import tensorflow as tf

    arrays = []
    for tid, n in zip(track_ids, n_frames, strict=True):
        soft = targets.by_track.get(tid)
        if soft is None:
            raise ValueError(f"the teachers gave no targets for track {tid!r}")
        if soft.shape[0] != n:
            raise ValueError(f"track {tid!r}: teacher targets hold {soft.shape[0]} frames, "
                             f"the records {n}")
        arrays.append(soft)
    if not arrays:
        raise ValueError("no tracks to distil")
    lengths = np.asarray(n_frames, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(track_ids)), tf.range(len(arrays), dtype=tf.int64)),
        default_value=-1,
    )
    flat = tf.constant(np.concatenate(arrays, axis=0))
    starts_t, lengths_t = tf.constant(starts), tf.constant(lengths)

    def fn(track_id: Any) -> Any:
        i = table.lookup(track_id)
        tf.debugging.assert_non_negative(i, message="a record without teacher targets")
        return tf.cast(flat[starts_t[i]:starts_t[i] + lengths_t[i]], tf.float32)

    return fn


def blend(weight: float, n_classes: int) -> Any:
    """Map fn on a track dict holding ``soft``: its first ``n_classes`` label columns become
    ``(1 - weight) * labels + weight * soft`` (later columns, e.g. a pitch roll, are kept);
    ``soft`` is dropped."""
    import tensorflow as tf

    def fn(ex: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in ex.items() if k != "soft"}
        labels = ex["labels"]
        mixed = (1.0 - weight) * labels[:, :n_classes] + weight * ex["soft"]
        out["labels"] = tf.concat([mixed, labels[:, n_classes:]], axis=-1)
        return out

    return fn
