"""Checks of exported artifacts against the Keras model (numpy; no TensorFlow here).

* probability parity: max |p_artifact - p_keras| on the same windows <= ``atol``;
* decision quality: frame micro-F1 on validation tracks (windows stitched exactly as
  ``predict`` does, then per-class thresholds and median smoothing) within ``tolerance`` of
  the Keras model's, with the song-level presence gate decided on the Keras model's
  probabilities (the gate's flips are counted and reported, not scored: see
  :func:`decision_metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from iad_tf.inference.windows import make_windows, stitch
from iad_tf.metrics import F1_MICRO, frame_metrics
from iad_tf.postprocess import Presence, decide, gate

#: (N, W, n_mels) windows -> (N, W, C) probabilities.
WindowFn = Callable[[np.ndarray], np.ndarray]
#: (track id, mel (frames, n_mels), labels (frames, C)).
Track = tuple[str, np.ndarray, np.ndarray]


class ExportCheckError(RuntimeError):
    """An exported artifact disagrees with the Keras model beyond the allowed bound."""


@dataclass(frozen=True)
class Check:
    """One comparison: ``value`` against ``bound`` (``passed`` when value <= bound)."""

    artifact: str
    measure: str
    value: float
    bound: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.value) and self.value <= self.bound)

    def line(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.artifact}: {self.measure} = {self.value:.3g} (bound {self.bound:g}) {verdict}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def parity(artifact: str, reference: np.ndarray, probs: np.ndarray, atol: float) -> Check:
    """Max absolute difference of probabilities (same shape) against ``atol``."""
    if reference.shape != probs.shape:
        return Check(
            artifact,
            "max |dp|",
            float("inf"),
            atol,
            f"shape {probs.shape} != reference {reference.shape}",
        )
    diff = np.abs(probs.astype(np.float64) - reference.astype(np.float64))
    return Check(
        artifact,
        "max |dp|",
        float(diff.max()),
        atol,
        f"mean {diff.mean():.2g} over {diff.size} values",
    )


def split_windows(tracks: Sequence[Track], window: int, hop: int, pad_value: float) -> np.ndarray:
    """All windows (N, window, n_mels) of ``tracks`` as :func:`make_windows` cuts them."""
    return np.concatenate([make_windows(mel, window, hop, pad_value)[0] for _, mel, _ in tracks])


def track_probs(
    tracks: Sequence[Track], run: WindowFn, window: int, hop: int, pad_value: float
) -> list[np.ndarray]:
    """Per-track stitched probabilities (frames, C) from windows run through ``run``."""
    out = []
    for _, mel, _ in tracks:
        windows, starts = make_windows(mel, window, hop, pad_value)
        out.append(stitch(run(windows), starts, mel.shape[0], hop))
    return out


def decision_metrics(
    probs: Sequence[np.ndarray],
    tracks: Sequence[Track],
    thresholds: np.ndarray,
    median_window: int,
    presence: Presence | None = None,
    frame_seconds: float = 0.0,
    presence_probs: Sequence[np.ndarray] | None = None,
) -> dict[str, float]:
    """:func:`~iad_tf.metrics.frame_metrics` of the decisions predict makes (thresholds,
    median filter, per-track presence gate) over all frames.

    ``presence_probs`` (the reference model's probabilities of the same tracks): the gate
    decides each song's instruments on these instead, so an artifact is judged on its frame
    decisions. On a few validation songs one song-level score a hair from the gate's
    threshold (0.6739 vs 0.6754 at 0.675) would otherwise flip a whole instrument of a song
    and decide the check by itself; the flips are counted by :func:`presence_flips`."""
    gate_on = presence_probs if presence_probs is not None else probs
    pred = []
    for p, g in zip(probs, gate_on, strict=True):
        dec = decide(p, thresholds, median_window)
        if presence is not None:
            dec = gate(dec, presence.present(g, frame_seconds))
        pred.append(dec)
    truth = np.concatenate([labels for _, _, labels in tracks])
    return frame_metrics(truth, np.concatenate(pred))


def presence_flips(
    probs: Sequence[np.ndarray], ref_probs: Sequence[np.ndarray], presence: Presence | None,
    frame_seconds: float,
) -> int:
    """Song x instrument presence decisions on which ``probs`` and ``ref_probs`` disagree."""
    if presence is None:
        return 0
    return int(sum(
        np.sum(presence.present(p, frame_seconds) != presence.present(r, frame_seconds))
        for p, r in zip(probs, ref_probs, strict=True)))


def f1_check(
    artifact: str, reference: dict[str, float], found: dict[str, float], tolerance: float,
    note: str = "",
) -> Check:
    """|micro-F1(artifact) - micro-F1(Keras)| against ``tolerance``; ``note`` joins the detail."""
    gap = abs(found[F1_MICRO] - reference[F1_MICRO])
    return Check(
        artifact,
        "|d micro-F1|",
        float(gap),
        tolerance,
        f"micro-F1 {found[F1_MICRO]:.4f} vs Keras {reference[F1_MICRO]:.4f}" + (f"; {note}" if note else ""),
    )


def raise_failed(checks: Sequence[Check], context: str) -> None:
    """:class:`ExportCheckError` listing every failed check with its numbers."""
    failed = [c for c in checks if not c.passed]
    if failed:
        raise ExportCheckError(f"{context}: " + "; ".join(c.line() for c in failed))
