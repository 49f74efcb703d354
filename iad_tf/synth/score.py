"""A composed song as data: notes per instrument, song parts and beats, and its annotations.

Times are seconds, already rounded to the 6 decimals AAM's ARFF files carry (see
:func:`qtime`), so the annotation written to disk and read back gives exactly the same
activations as the note schedule here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iad_tf.aam.arff import Beat, NoteList, OnsetTable, Segment
from iad_tf.config import AAM_CLASSES


def qtime(t: float) -> float:
    """Round a time to the microsecond grid the ARFF files print (the same double as read)."""
    return float(f"{t:.6f}")


@dataclass(frozen=True)
class Note:
    """One note: MIDI ``pitch`` sounding over ``[start, end)`` seconds, ``velocity`` 1-127."""

    pitch: int
    start: float
    end: float
    velocity: int


@dataclass(frozen=True)
class Song:
    """A whole song: what each instrument plays, the song parts and the beat grid.

    ``notes[name]`` is sorted by (start, pitch); ``segments`` ends with AAM's 'end' row at
    ``duration``.
    """

    track_id: str
    duration: float
    notes: dict[str, tuple[Note, ...]]
    segments: tuple[Segment, ...]
    beats: tuple[Beat, ...]

    @property
    def instruments(self) -> tuple[str, ...]:
        """Instruments with at least one note, alphabetical (AAM's column order)."""
        return tuple(n for n in AAM_CLASSES if self.notes.get(n))

    def intervals(self, name: str) -> list[tuple[float, float]]:
        """Merged [start, end) intervals where ``name`` has at least one sounding note."""
        return merge_intervals([(n.start, n.end) for n in self.notes.get(name, ())])


def merge_intervals(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of half-open intervals, sorted; touching intervals join."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def onset_table(song: Song, classes: Sequence[str] = AAM_CLASSES) -> OnsetTable:
    """The song's onsets annotation as AAM writes it.

    One row at every time a note starts or ends (any instrument); per instrument the sorted
    pitches sounding from then on, ``+`` for notes starting there; ``()`` while silent.
    """
    times = sorted({t for ns in song.notes.values() for n in ns for t in (n.start, n.end)})
    rows: list[tuple[NoteList, ...]] = []
    per_inst = [song.notes.get(name, ()) for name in classes]
    starts = [np.array([n.start for n in ns]) for ns in per_inst]
    ends = [np.array([n.end for n in ns]) for ns in per_inst]
    for t in times:
        row = []
        for ns, s, e in zip(per_inst, starts, ends, strict=True):
            if not ns:
                row.append(())
                continue
            idx = np.flatnonzero((s <= t) & (t < e))
            cell = sorted((ns[k].pitch, ns[k].start == t) for k in idx)
            row.append(tuple(cell))
        rows.append(tuple(row))
    return OnsetTable(
        tuple(classes), np.array(times, dtype=np.float64), rows, relation=f"Onset events in {song.track_id}"
    )


def schedule_roll(song: Song, frame_times: np.ndarray, classes: Sequence[str] = AAM_CLASSES) -> np.ndarray:
    """Ground truth straight from the notes: uint8 (frames, len(classes)), 1 where a note sounds."""
    roll = np.zeros((len(frame_times), len(classes)), dtype=np.uint8)
    for k, name in enumerate(classes):
        for a, b in song.intervals(name):
            roll[(frame_times >= a) & (frame_times < b), k] = 1
    return roll
