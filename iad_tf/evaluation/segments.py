"""Segment-based metrics as the sound-event-detection community reports them (sed_eval).

Implemented from the definitions (Mesaros, Heittola & Virtanen 2016, "Metrics for polyphonic
sound event detection"; sed_eval ``SegmentBasedMetrics``):

* time is cut into fixed segments (1 s by default) per track; an instrument is *active in a
  segment* when any of its frames inside the segment is active (truth and prediction alike);
* counts are accumulated over all segments of all tracks, then
  ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, ``F1 = 2 TP / (2 TP + FP + FN)``;
* per segment ``k`` with ``FN_k`` misses and ``FP_k`` false alarms:
  ``S_k = min(FN_k, FP_k)``, ``D_k = max(0, FN_k - FP_k)``, ``I_k = max(0, FP_k - FN_k)``, and
  ``ER = (sum S + sum D + sum I) / N`` with ``N`` the number of active reference
  (segment, instrument) pairs;
* class-wise: ``F1_c`` and ``ER_c = (FN_c + FP_c) / N_c`` (no substitutions within one class),
  averaged over the classes active in the reference.

TF-free (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SEGMENT_SECONDS: float = 1.0


def segment_roll(roll: np.ndarray, frame_seconds: float, segment_seconds: float = SEGMENT_SECONDS) -> np.ndarray:
    """Segment activity uint8 (segments, C) from a frame roll (frames, C).

    Frame ``t`` (at ``t * frame_seconds``) falls into segment ``floor(t * frame_seconds /
    segment_seconds)``; a segment is active for a class when any of its frames is. The last,
    possibly partial, segment is kept.
    """
    roll = np.asarray(roll)
    if roll.ndim != 2:
        raise ValueError(f"expected a (frames, classes) roll, got shape {roll.shape}")
    n = roll.shape[0]
    if n == 0:
        return np.zeros((0, roll.shape[1]), dtype=np.uint8)
    idx = np.floor(np.arange(n) * frame_seconds / segment_seconds + 1e-9).astype(np.int64)  # (frames,)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])  # first frame of each segment
    active = np.maximum.reduceat((roll > 0).astype(np.uint8), starts, axis=0)  # (present segs, C)
    out = np.zeros((idx[-1] + 1, roll.shape[1]), dtype=np.uint8)
    out[idx[starts]] = active
    return out


@dataclass
class SegmentCounts:
    """Accumulated segment-level counts; ``add`` one track at a time."""

    n_classes: int
    tp: np.ndarray = field(init=False)  # (C,) int64
    fp: np.ndarray = field(init=False)
    fn: np.ndarray = field(init=False)
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    n_segments: int = 0

    def __post_init__(self) -> None:
        self.tp = np.zeros(self.n_classes, dtype=np.int64)
        self.fp = np.zeros(self.n_classes, dtype=np.int64)
        self.fn = np.zeros(self.n_classes, dtype=np.int64)

    def add(self, ref: np.ndarray, est: np.ndarray) -> None:
        """Add one track's segment rolls ``ref`` and ``est``, both (segments, C) 0/1."""
        if ref.shape != est.shape or ref.shape[1] != self.n_classes:
            raise ValueError(f"segment rolls differ in shape: {ref.shape} vs {est.shape}")
        r = ref.astype(bool)
        e = est.astype(bool)
        self.tp += (r & e).sum(axis=0)
        fp_k = (~r & e)  # (segments, C)
        fn_k = (r & ~e)
        self.fp += fp_k.sum(axis=0)
        self.fn += fn_k.sum(axis=0)
        fp_seg = fp_k.sum(axis=1)  # (segments,)
        fn_seg = fn_k.sum(axis=1)
        self.substitutions += int(np.minimum(fn_seg, fp_seg).sum())
        self.deletions += int(np.maximum(0, fn_seg - fp_seg).sum())
        self.insertions += int(np.maximum(0, fp_seg - fn_seg).sum())
        self.n_segments += ref.shape[0]

    def add_frames(
        self, truth: np.ndarray, pred: np.ndarray, frame_seconds: float,
        segment_seconds: float = SEGMENT_SECONDS,
    ) -> None:
        """Add one track given frame rolls (frames, C) of truth and decisions."""
        self.add(segment_roll(truth, frame_seconds, segment_seconds),
                 segment_roll(pred, frame_seconds, segment_seconds))

    def metrics(self) -> dict[str, float | int | None]:
        """Overall and class-averaged segment metrics (``None`` where undefined)."""
        tp, fp, fn = int(self.tp.sum()), int(self.fp.sum()), int(self.fn.sum())
        n_ref = tp + fn
        s, d, i = self.substitutions, self.deletions, self.insertions

        def ratio(a: float, b: float) -> float | None:
            return float(a / b) if b > 0 else None

        present = (self.tp + self.fn) > 0  # (C,) classes active in the reference
        f1_c = 2 * self.tp / np.maximum(2 * self.tp + self.fp + self.fn, 1)
        er_c = (self.fn + self.fp) / np.maximum(self.tp + self.fn, 1)
        return {
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, n_ref),
            "error_rate": ratio(s + d + i, n_ref),
            "substitution_rate": ratio(s, n_ref),
            "deletion_rate": ratio(d, n_ref),
            "insertion_rate": ratio(i, n_ref),
            "f1_classwise": float(f1_c[present].mean()) if present.any() else None,
            "error_rate_classwise": float(er_c[present].mean()) if present.any() else None,
            "n_segments": self.n_segments,
            "n_reference": n_ref,
        }


def segment_metrics(
    tracks: list[tuple[np.ndarray, np.ndarray]], frame_seconds: float,
    segment_seconds: float = SEGMENT_SECONDS,
) -> dict[str, float | int | None]:
    """Segment metrics over tracks given as (truth (frames, C), decisions (frames, C)) pairs."""
    if not tracks:
        raise ValueError("no tracks to evaluate")
    counts = SegmentCounts(tracks[0][0].shape[1])
    for truth, pred in tracks:
        counts.add_frames(truth, pred, frame_seconds, segment_seconds)
    return counts.metrics()
