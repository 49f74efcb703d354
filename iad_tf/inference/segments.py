"""Frame decisions -> instrument segments (instrument, start_s, end_s, mean confidence). TF-free."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    """One stretch of time where ``instrument`` plays; ``confidence`` is its mean probability."""

    instrument: str
    start_s: float
    end_s: float
    confidence: float

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame runs where the 1-D boolean ``active`` (frames,) is true."""
    a = np.concatenate([[False], np.asarray(active, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(a.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def to_segments(
    decisions: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    frame_seconds: float,
    duration_s: float | None = None,
) -> list[Segment]:
    """Segments of decisions (frames, C) 0/1 with probabilities (frames, C), sorted by start.

    A run of frames ``[a, b)`` spans ``a * frame_seconds`` to ``b * frame_seconds`` seconds
    (clipped to ``duration_s``).
    """
    if decisions.shape != probs.shape or decisions.shape[1] != len(classes):
        raise ValueError(
            f"decisions {decisions.shape}, probs {probs.shape} and "
            f"{len(classes)} classes do not match"
        )
    out = []
    for c, name in enumerate(classes):
        for a, b in runs(decisions[:, c]):
            end = b * frame_seconds if duration_s is None else min(b * frame_seconds, duration_s)
            out.append(
                Segment(
                    name,
                    round(a * frame_seconds, 4),
                    round(end, 4),
                    round(float(probs[a:b, c].mean()), 4),
                )
            )
    out.sort(key=lambda s: (s.start_s, s.instrument))
    return out


def seconds_active(segments: Sequence[Segment]) -> dict[str, float]:
    """Total seconds per instrument, largest first."""
    total: dict[str, float] = {}
    for s in segments:
        total[s.instrument] = total.get(s.instrument, 0.0) + (s.end_s - s.start_s)
    return dict(sorted(((k, round(v, 2)) for k, v in total.items()), key=lambda kv: -kv[1]))
