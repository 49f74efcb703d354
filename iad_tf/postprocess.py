"""Frame decisions from probabilities: per-class thresholds, median smoothing and the
song-level presence gate.

TF-free (numpy only), shared by evaluate, cross-validation, export checks and predict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iad_tf.metrics import binarize

#: Longest median window accepted from a user (frames; 1001 frames ~ 23 s at the defaults).
#: Longer windows smooth away everything shorter than half a song and take seconds per track.
MAX_MEDIAN_WINDOW = 1001
#: ``Presence.one_of_seconds`` that ranks group members by their whole-song mean (AAM songs
#: last under 10 minutes).
WHOLE_SONG_S = 600.0


def median_filter_decisions(decisions: np.ndarray, window: int) -> np.ndarray:
    """Median-filter binary decisions (frames, C) along time with an odd ``window`` (frames).

    ``window <= 1`` returns the input unchanged. For 0/1 data the median is a majority vote
    over the window; edges are padded by repeating the first/last frame.
    """
    if window <= 1 or decisions.shape[0] == 0:
        return decisions.astype(np.uint8)
    if window % 2 == 0:
        raise ValueError(f"median window must be odd, got {window}")
    d = decisions.astype(np.int64)
    half = window // 2
    padded = np.concatenate([np.repeat(d[:1], half, axis=0), d, np.repeat(d[-1:], half, axis=0)])
    csum = np.concatenate([np.zeros((1, d.shape[1]), np.int64), np.cumsum(padded, axis=0)])
    votes = csum[window:] - csum[:-window]  # (frames, C): ones inside each window
    return (votes > half).astype(np.uint8)  # majority = median of 0/1 (no scipy: light install)


def decide(
    probs: np.ndarray, thresholds: np.ndarray | float = 0.5, median_window: int = 1
) -> np.ndarray:
    """uint8 decisions (frames, C) from probabilities (frames, C): threshold, then smooth."""
    return median_filter_decisions(binarize(probs, thresholds), median_window)


# ------------------------------------------------------------------ song-level presence
def presence_scores(probs: np.ndarray, top_frames: int) -> np.ndarray:
    """Song-level presence score per class (C,): the mean of the ``top_frames`` highest
    frame probabilities of the song (frames, C).

    A multiple-instance pooling between max (``top_frames=1``: one confident frame decides)
    and mean (every frame): an instrument that really plays holds high probabilities for a
    while; a false alarm is a scatter of short bursts. Songs shorter than ``top_frames`` use
    all their frames.
    """
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2:
        raise ValueError(f"probs must be (frames, classes), got {p.shape}")
    if p.shape[0] == 0:
        return np.zeros(p.shape[1], dtype=np.float32)
    k = int(min(max(1, top_frames), p.shape[0]))
    top = np.partition(p, p.shape[0] - k, axis=0)[p.shape[0] - k :]  # (k, C)
    return top.mean(axis=0)


@dataclass(frozen=True)
class Presence:
    """Song-level presence gate: a class is present in a song when its
    :func:`presence_scores` (mean of its top ``seconds`` of frame probabilities) reaches
    ``threshold``; of each group in ``one_of`` (class indices) only the present member with
    the highest score is kept (AAM songs hold exactly one bass instrument, for instance).
    Frame decisions of absent classes are cleared; those of present classes are left exactly
    as they are.

    Group members are ranked by the mean of their top ``one_of_seconds`` of probabilities
    (``None``: the gate's own score; :data:`WHOLE_SONG_S` ranks by the whole-song mean, which
    favours the instrument that plays throughout, as a bass does). With ``one_of_required``
    each group always keeps exactly one member (the best ranked), even below the threshold:
    every AAM song has exactly one bass instrument."""

    threshold: float
    seconds: float
    one_of: tuple[tuple[int, ...], ...] = ()
    one_of_seconds: float | None = None
    one_of_required: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"presence threshold must lie in [0, 1], got {self.threshold}")
        if not 0 < self.seconds < float("inf"):
            raise ValueError(f"presence seconds must be > 0 and finite, got {self.seconds}")
        if self.one_of_seconds is not None and not 0 < self.one_of_seconds < float("inf"):
            raise ValueError(
                f"presence one_of_seconds must be > 0 and finite, got {self.one_of_seconds}")
        object.__setattr__(self, "one_of", tuple(tuple(int(c) for c in g) for g in self.one_of))

    def top_frames(self, frame_seconds: float) -> int:
        return max(1, int(round(self.seconds / frame_seconds)))

    def scores(self, probs: np.ndarray, frame_seconds: float) -> np.ndarray:
        """(C,) presence scores of one song's probabilities (frames, C)."""
        return presence_scores(probs, self.top_frames(frame_seconds))

    def group_scores(self, probs: np.ndarray, frame_seconds: float) -> np.ndarray | None:
        """(C,) scores that rank the members of a ``one_of`` group (None: the gate's own)."""
        if self.one_of_seconds is None or not self.one_of:
            return None
        k = max(1, int(round(self.one_of_seconds / frame_seconds)))
        return presence_scores(probs, k)

    def present(self, probs: np.ndarray, frame_seconds: float) -> np.ndarray:
        """bool (C,): which classes the song holds."""
        return self.present_from_scores(
            self.scores(probs, frame_seconds), self.group_scores(probs, frame_seconds))

    def present_from_scores(
        self, scores: np.ndarray, group_scores: np.ndarray | None = None
    ) -> np.ndarray:
        """bool (C,) from the gate's scores (C,) and, where ``one_of_seconds`` is set, the
        group-ranking scores (C,)."""
        scores = np.asarray(scores)
        rank = scores if group_scores is None else np.asarray(group_scores)
        present = scores >= self.threshold
        for group in self.one_of:
            idx = np.asarray(group, dtype=np.int64)
            if self.one_of_required or present[idx].sum() > 1:
                pool = present[idx] if present[idx].any() and not self.one_of_required else None
                ranked = rank[idx] if pool is None else np.where(pool, rank[idx], -np.inf)
                best = idx[int(np.argmax(ranked))]
                present[idx] = False
                present[best] = True
        return present

    def to_dict(self, classes: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON form; ``one_of`` by class name when ``classes`` are given."""
        out: dict[str, Any] = {"threshold": float(self.threshold), "seconds": float(self.seconds)}
        if self.one_of:
            out["one_of"] = [
                [classes[c] if classes is not None else c for c in g] for g in self.one_of
            ]
            if self.one_of_seconds is not None:
                out["one_of_seconds"] = float(self.one_of_seconds)
            if self.one_of_required:
                out["one_of_required"] = True
        return out

    @classmethod
    def from_dict(
        cls, data: dict[str, Any] | None, classes: Sequence[str] | None = None
    ) -> Presence | None:
        """None for an empty/None dict (no gating); ValueError naming bad keys or classes."""
        if not data:
            return None
        try:
            groups = []
            for g in data.get("one_of", []) or []:
                groups.append(
                    tuple(c if isinstance(c, int) else _class_index(classes, c) for c in g)
                )
            group_s = data.get("one_of_seconds")
            required = data.get("one_of_required", False)
            if not isinstance(required, bool):
                raise ValueError(f"presence.one_of_required must be true or false, got {required!r}")
            return cls(float(data["threshold"]), float(data["seconds"]), tuple(groups),
                       None if group_s is None else float(group_s), required)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"presence must hold threshold and seconds, got {data!r}") from exc


def _class_index(classes: Sequence[str] | None, name: str) -> int:
    if classes is None or name not in classes:
        raise ValueError(f"presence.one_of names an unknown class {name!r}")
    return list(classes).index(name)


def gate(decisions: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Decisions (frames, C) with the columns of absent classes (``present`` (C,) False)
    cleared; present classes' frames are returned unchanged."""
    keep = np.asarray(present, dtype=bool)
    if keep.shape != (decisions.shape[1],):
        raise ValueError(f"present must be ({decisions.shape[1]},), got {keep.shape}")
    return (decisions * keep[None, :]).astype(np.uint8)


def decide_song(
    probs: np.ndarray,
    thresholds: np.ndarray | float,
    median_window: int,
    presence: Presence | None,
    frame_seconds: float,
) -> tuple[np.ndarray, np.ndarray]:
    """A whole song's decisions (frames, C) and presence (C,) bool: threshold, smooth, then
    gate by song-level presence (``presence=None``: every class counts as present)."""
    dec = decide(probs, thresholds, median_window)
    if presence is None:
        return dec, np.ones(dec.shape[1], dtype=bool)
    present = presence.present(probs, frame_seconds)
    return gate(dec, present), present


def threshold_problem(classes: Sequence[str], thresholds: Sequence[float]) -> str | None:
    """"threshold of <class> is <t>; ..." for the first threshold outside [0, 1] (or not
    finite), else None. One check for thresholds.json and model metadata."""
    for name, t in zip(classes, thresholds, strict=False):
        if not (0.0 <= float(t) <= 1.0):  # NaN fails too
            return f"threshold of {name} is {float(t):g}; thresholds lie in [0, 1]"
    return None
