"""Live decisions and events: stream probabilities -> "Flute starts at 1.20 s (latency 0.39 s)".

:class:`LiveDecider` turns the frames a :class:`~iad_tf.inference.stream.Stream` returns into
the same decisions as the offline :func:`iad_tf.postprocess.decide` (per-class thresholds,
then a median over ``median_window`` frames, edges repeating the first/last frame), each as
soon as it is final: the median needs ``median_window // 2`` frames after a frame, which adds
to the latency. An event's latency is the audio time at which it became known minus the time
it happened. ``feed_file`` plays a file into a stream block by block, as a microphone would.
TF-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iad_tf.audio import load_audio
from iad_tf.inference.stream import Stream
from iad_tf.metrics import binarize


@dataclass(frozen=True)
class Event:
    """``instrument`` ``kind`` ("starts" | "stops") at ``time_s``, known ``latency_s`` later."""

    instrument: str
    kind: str
    time_s: float
    latency_s: float

    def line(self) -> str:
        return (
            f"{self.time_s:8.2f} s  {self.instrument:<20} {self.kind:<6} "
            f"(latency {self.latency_s:.2f} s)"
        )


class LiveDecider:
    """Frame probabilities in arrival order -> final decisions and start/stop events."""

    def __init__(
        self,
        classes: Sequence[str],
        thresholds: Sequence[float],
        median_window: int,
        frame_seconds: float,
    ) -> None:
        if median_window < 1 or median_window % 2 == 0:
            raise ValueError(f"median_window must be odd and >= 1, got {median_window}")
        self.classes = tuple(classes)
        self.thresholds = np.asarray(thresholds, dtype=np.float32)
        self.half = median_window // 2
        self.frame_seconds = frame_seconds
        self._raw = np.zeros((0, len(self.classes)), np.uint8)  # raw decisions, from _raw_start
        self._raw_start = 0
        self._n_in = 0  # frames received
        self._n_final = 0  # frames decided
        self._state = np.zeros(len(self.classes), np.uint8)
        self.decisions: list[np.ndarray] = []  # final decisions (n, C) per update

    def update(self, probs: np.ndarray, now_s: float) -> list[Event]:
        """Add the next frames' probabilities (n, C), received at audio time ``now_s``;
        return the events that became final."""
        self._raw = np.concatenate(
            [self._raw, binarize(np.asarray(probs, np.float32), self.thresholds)]
        )
        self._n_in += probs.shape[0]
        return self._decide(self._n_in - self.half, now_s)

    def finish(self, now_s: float) -> list[Event]:
        """End of the stream: decide the last frames and stop what still plays."""
        events = self._decide(self._n_in, now_s)
        end = min(self._n_in * self.frame_seconds, now_s)
        for c in np.flatnonzero(self._state):
            events.append(Event(self.classes[c], "stops", round(end, 3), max(0.0, now_s - end)))
        self._state[:] = 0
        return events

    def _decide(self, upto: int, now_s: float) -> list[Event]:
        """Final decisions for frames [n_final, upto): a median over raw frames clipped to
        [0, n_in - 1] (the offline filter's 'nearest' edges)."""
        if upto <= self._n_final or self._n_in == 0:
            return []
        t = np.arange(self._n_final, upto)
        idx = np.clip(t[:, None] + np.arange(-self.half, self.half + 1)[None, :], 0, self._n_in - 1)
        votes = self._raw[idx - self._raw_start].sum(axis=1)  # (n, C)
        dec = (votes > self.half).astype(np.uint8)
        self.decisions.append(dec)
        events = []
        prev = self._state
        for i, row in enumerate(dec):
            for c in np.flatnonzero(row != prev):
                at = t[i] * self.frame_seconds
                kind = "starts" if row[c] else "stops"
                events.append(Event(self.classes[c], kind, round(at, 3), max(0.0, now_s - at)))
            prev = row
        self._state = prev.copy()
        self._n_final = upto
        keep = max(0, self._n_final - self.half - self._raw_start)  # the next medians' past
        self._raw, self._raw_start = self._raw[keep:], self._raw_start + keep
        return events


@dataclass
class LiveReport:
    """What ``feed_file`` saw: events, final decisions (frames, C), probabilities (frames, C)."""

    events: list[Event] = field(default_factory=list)
    decisions: np.ndarray | None = None
    probs: np.ndarray | None = None
    duration_s: float = 0.0


def feed_file(
    path: str | Path,
    stream: Stream,
    median_window: int | None = None,
    block_samples: int = 1024,
    on_event: Callable[[Event], None] | None = None,
) -> LiveReport:
    """Play ``path`` (decoded and resampled to the model's rate) into ``stream`` (reset
    first) in blocks of ``block_samples``; call ``on_event`` for each start/stop as it
    becomes known."""
    stream.reset()
    md = stream.model.metadata
    cfg = md.feature_config
    y = load_audio(path, cfg.sample_rate)  # (samples,)
    decider = LiveDecider(
        md.classes,
        md.thresholds,
        md.median_window if median_window is None else median_window,
        cfg.frame_seconds,
    )
    report = LiveReport(duration_s=y.shape[0] / cfg.sample_rate)
    probs = []

    def handle(events: list[Event]) -> None:
        for e in events:
            report.events.append(e)
            if on_event is not None:
                on_event(e)

    for s in range(0, y.shape[0], block_samples):
        p = stream.push(y[s : s + block_samples])
        probs.append(p)
        handle(decider.update(p, (s + min(block_samples, y.shape[0] - s)) / cfg.sample_rate))
    p = stream.flush()
    probs.append(p)
    handle(decider.update(p, report.duration_s))
    handle(decider.finish(report.duration_s))
    report.probs = np.concatenate(probs)
    report.decisions = np.concatenate(decider.decisions)
    return report
