"""Place an excerpt of a song's stem in a new track: crop or loop, and move its annotations
the same way (onsets, segments, beats, MIDI notes), optionally transposed.

An excerpt starts ``offset`` seconds into the song and runs for ``length`` seconds; past the
song's end (its ``period``: the time of the onsets file's final row) it wraps to the song's
start (a loop). It is a list of :class:`Piece` s: output ``[start, end)`` reads the source
from ``src``. Every time is rounded to the microsecond grid AAM's ARFF files print, so labels
read back equal the ones computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iad_tf.aam.arff import Beat, NoteList, OnsetTable, Segment
from iad_tf.synth.score import Note, qtime


@dataclass(frozen=True)
class Piece:
    """Output seconds ``[start, end)`` play the source from ``src`` on."""

    start: float
    end: float
    src: float

    def to_out(self, t: float) -> float:
        return qtime(self.start + t - self.src)

    @property
    def src_end(self) -> float:
        return self.src + (self.end - self.start)


def pieces(offset: float, period: float, length: float) -> list[Piece]:
    """The excerpt ``[offset, offset + length)`` of a song ``period`` seconds long, looped."""
    if period <= 0 or length <= 0 or not 0 <= offset < period:
        raise ValueError(f"bad excerpt: offset {offset}, period {period}, length {length}")
    out: list[Piece] = []
    t, s = 0.0, qtime(offset)
    while t < length - 1e-9:
        n = min(period - s, length - t)
        end = qtime(t + n)
        out.append(Piece(t, end, s))
        t, s = end, 0.0
    return out


def transpose(cell: NoteList, shift: int) -> NoteList:
    return tuple((p + shift, s) for p, s in cell)


def column(table: OnsetTable, name: str) -> list[tuple[float, NoteList]]:
    """One instrument's (time, notes) rows; all empty when it has no column."""
    if name not in table.instruments:
        return [(float(t), ()) for t in table.times]
    k = table.instruments.index(name)
    return [(float(t), row[k]) for t, row in zip(table.times, table.notes, strict=True)]


def place_column(
    col: Sequence[tuple[float, NoteList]], parts: Sequence[Piece], shift: int = 0
) -> list[tuple[float, NoteList]]:
    """A column's events moved into output time. Each piece opens with the notes sounding at
    its source start (``+`` kept only where a note starts exactly there)."""
    times = np.array([t for t, _ in col])
    out: list[tuple[float, NoteList]] = []
    for p in parts:
        k = int(np.searchsorted(times, p.src, side="right")) - 1
        if k >= 0:
            t0, cell = col[k]
            opening = cell if t0 == p.src else tuple((q, False) for q, _ in cell)
        else:
            opening = ()
        out.append((p.start, transpose(opening, shift)))
        for t, cell in col[k + 1:]:
            if t >= p.src_end:
                break
            if t > p.src:
                out.append((p.to_out(t), transpose(cell, shift)))
    return out


def merge_columns(
    columns: dict[str, list[tuple[float, NoteList]]],
    instruments: Sequence[str],
    length: float,
    relation: str,
) -> OnsetTable:
    """One onsets table from placed columns: a row at every time any column changes, each
    column holding its latest notes (``+`` only at its own event times), and AAM's final
    all-silent row at ``length``."""
    end = qtime(length)
    times = sorted({t for col in columns.values() for t, _ in col if t < end} | {0.0, end})
    rows: list[list[NoteList]] = [[() for _ in instruments] for _ in times]
    for name, col in columns.items():
        k = instruments.index(name)
        events = {t: cell for t, cell in col if t < end}  # a later event at the same time wins
        current: NoteList = ()
        for e, t in enumerate(times[:-1]):
            if t in events:
                current = events[t]
                rows[e][k] = current
            else:
                rows[e][k] = tuple((q, False) for q, _ in current)
    return OnsetTable(tuple(instruments), np.array(times, dtype=np.float64),
                      [tuple(r) for r in rows], relation=relation)


def place_intervals(
    spans: Sequence[tuple[float, float]], parts: Sequence[Piece]
) -> list[tuple[float, float]]:
    """Source ``[a, b)`` intervals moved into output time (cut at piece edges)."""
    out = []
    for p in parts:
        for a, b in spans:
            lo, hi = max(a, p.src), min(b, p.src_end)
            if hi > lo:
                out.append((p.to_out(lo), p.to_out(hi)))
    return sorted(out)


def segment_spans(segments: Sequence[Segment], name: str) -> list[tuple[float, float, Segment, str]]:
    """Where ``name`` is listed in the song's parts: (start, end, part, its generator)."""
    out = []
    for seg, nxt in zip(segments, segments[1:], strict=False):
        if name in seg.instruments:
            k = seg.instruments.index(name)
            gen = seg.generators[k] if k < len(seg.generators) else ""
            out.append((seg.start, nxt.start, seg, gen))
    return out


def place_segments(
    stems: dict[str, tuple[list[Segment], list[Piece]]],
    reference: str,
    order: Sequence[str],
    length: float,
) -> list[Segment]:
    """Song parts of the new track: a part boundary wherever a stem's own part changes; a
    part lists the stems whose source part lists them (with their generators, in ``order``),
    and takes its mark, tempo and key from the ``reference`` stem's source part (approximate:
    the stems come from songs with their own tempi and keys). Ends with AAM's 'end' row."""
    end = qtime(length)
    listed: dict[str, list[tuple[float, float, str]]] = {
        name: [(lo, hi, gen) for a, b, _, gen in segment_spans(segs, name) if gen
               for lo, hi in place_intervals([(a, b)], parts)]
        for name, (segs, parts) in stems.items()
    }
    ref_segs, ref_parts = stems[reference]
    ref_rows = [(lo, hi, seg) for seg, nxt in zip(ref_segs, ref_segs[1:], strict=False)
                for lo, hi in place_intervals([(seg.start, nxt.start)], ref_parts)]
    bounds = sorted({0.0, end} | {t for rows in listed.values() for lo, hi, _ in rows for t in (lo, hi) if t < end}
                    | {lo for lo, _, _ in ref_rows if lo < end})
    out: list[Segment] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        mid = (lo + hi) / 2
        ref = next((seg for a, b, seg in ref_rows if a <= mid < b), None)
        names, gens = [], []
        for name in order:
            gen = next((g for a, b, g in listed.get(name, []) if a <= mid < b), None)
            if gen is not None:
                names.append(name)
                gens.append(gen)
        seg = Segment(lo, ref.mark if ref else "A", ref.tempo if ref else 0.0, ref.key if ref else "",
                      tuple(names), tuple(gens))
        last = out[-1] if out else None
        if last and (last.mark, last.tempo, last.key, last.instruments, last.generators) == (
                seg.mark, seg.tempo, seg.key, seg.instruments, seg.generators):
            continue
        out.append(seg)
    out.append(Segment(end, "end", 0, "", (), ()))
    return out


def place_beats(beats: Sequence[Beat], parts: Sequence[Piece]) -> list[Beat]:
    """The reference stem's beats moved into output time (bar/quarter/chord as in the source)."""
    out = []
    for p in parts:
        for b in beats:
            if p.src <= b.time < p.src_end:
                out.append(Beat(p.to_out(b.time), b.bar, b.quarter, b.chord))
    return sorted(out, key=lambda b: b.time)


def place_notes(notes: Sequence[Note], parts: Sequence[Piece], shift: int = 0) -> list[Note]:
    """MIDI notes moved into output time (cut at piece edges) and transposed."""
    out = []
    for p in parts:
        for n in notes:
            lo, hi = max(n.start, p.src), min(n.end, p.src_end)
            if hi > lo:
                out.append(Note(n.pitch + shift, p.to_out(lo), p.to_out(hi), n.velocity))
    return sorted(out, key=lambda n: (n.start, n.pitch))
