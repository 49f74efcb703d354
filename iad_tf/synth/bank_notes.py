"""The notes of one AAM instrument in one song, for the note bank: from its MIDI file (read
tolerantly) or, where that fails, from the onsets ARFF; and the song role of each instrument.

AAM writes one MIDI file per instrument (``midis/NNNN_<Instrument>.mid``, all velocities 64
in the sample). Some carry a key signature mido cannot decode (8-11 sharps: 7 of the sample's
83 files); such meta events are neutralised (set to C major) before parsing, which changes no
note. The onsets ARFF holds the same pitches and times but no velocity (``velocity=None``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iad_tf.aam.arff import OnsetTable, Segment


class NotesError(ValueError):
    """A MIDI file that cannot be read even tolerantly; the message names it."""


@dataclass(frozen=True)
class SourceNote:
    """One note as the source song plays it: ``[start, end)`` seconds; velocity None = unknown."""

    pitch: int
    start: float
    end: float
    velocity: int | None


#: A segments 'Generator' name -> the composer's role (AAM's generators by prefix).
ROLE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("Melody", "melody"),
    ("ChordPads", "chords"),
    ("ChordArpeggio", "arpeggio"),
    ("Arpeggio", "arpeggio"),
    ("Bass", "bass"),
    ("Rhythm", "drums"),
)
#: Roles whose notes are also cut as chord slices.
CHORD_ROLES: frozenset[str] = frozenset({"chords", "arpeggio"})


def role_of_generator(generator: str) -> str:
    """``'ChordPadsRanged'`` -> ``'chords'``; an unknown generator -> ``'melody'``."""
    for prefix, role in ROLE_PREFIXES:
        if generator.startswith(prefix):
            return role
    return "melody"


def instrument_roles(segments: Sequence[Segment]) -> dict[str, set[str]]:
    """{instrument: every role it plays in the song} from the segments' Generator column."""
    out: dict[str, set[str]] = {}
    for seg in segments:
        for name, gen in zip(seg.instruments, seg.generators, strict=False):
            out.setdefault(name, set()).add(role_of_generator(gen))
    return out


def _neutralise_key_signatures(data: bytes) -> tuple[bytes, int]:
    """Set every undecodable key signature meta event (FF 59 02 sf mi, |sf| > 7) to C major.

    Walks the track chunks event by event, so only real meta events are touched.
    """
    buf = bytearray(data)
    fixed = 0
    pos = 14  # after the MThd chunk
    while pos + 8 <= len(buf):
        size = int.from_bytes(buf[pos + 4 : pos + 8], "big")
        if buf[pos : pos + 4] == b"MTrk":
            fixed += _fix_track(buf, pos + 8, min(pos + 8 + size, len(buf)))
        pos += 8 + size
    return bytes(buf), fixed


def _varlen(buf: bytearray, i: int) -> tuple[int, int]:
    value = 0
    while i < len(buf):
        b = buf[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            break
    return value, i


def _fix_track(buf: bytearray, i: int, end: int) -> int:
    fixed = 0
    status = 0
    while i < end:
        _delta, i = _varlen(buf, i)
        if i >= end:
            break
        if buf[i] >= 0x80:
            status = buf[i]
            i += 1
        if status == 0xFF:
            kind = buf[i]
            length, j = _varlen(buf, i + 1)
            if kind == 0x59 and length == 2:
                sf = buf[j] - 256 if buf[j] > 127 else buf[j]
                if not -7 <= sf <= 7:
                    buf[j] = 0
                    fixed += 1
            i = j + length
            status = 0
        elif status in (0xF0, 0xF7):
            length, j = _varlen(buf, i)
            i = j + length
            status = 0
        else:
            i += 1 if (status & 0xF0) in (0xC0, 0xD0) else 2
    return fixed


def read_midi_notes(path: str | Path) -> tuple[list[SourceNote], int]:
    """(notes sorted by (start, pitch), number of key signatures neutralised) of a MIDI file.

    Raises :class:`NotesError` naming the file when it cannot be parsed.
    """
    import mido

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotesError(f"{path}: cannot read ({exc})") from None
    fixed = 0
    try:
        mid = mido.MidiFile(file=io.BytesIO(data))
    except mido.KeySignatureError:
        data, fixed = _neutralise_key_signatures(data)
        try:
            mid = mido.MidiFile(file=io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - any parser error: one line naming the file
            raise NotesError(f"{path}: cannot parse MIDI ({exc})") from None
    except Exception as exc:  # noqa: BLE001
        raise NotesError(f"{path}: cannot parse MIDI ({exc})") from None
    t = 0.0
    open_notes: dict[int, list[tuple[float, int]]] = {}
    notes: list[SourceNote] = []
    for msg in mid:  # merged tracks, delta times in seconds
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault(msg.note, []).append((t, msg.velocity))
        elif msg.type in ("note_off", "note_on") and open_notes.get(msg.note):
            start, vel = open_notes[msg.note].pop(0)
            if t > start:
                notes.append(SourceNote(msg.note, start, t, vel))
    return sorted(notes, key=lambda n: (n.start, n.pitch)), fixed


def arff_notes(table: OnsetTable, instrument: str) -> list[SourceNote]:
    """The notes of ``instrument`` in an onsets table (velocity unknown), sorted by (start, pitch).

    A note starts where its pitch is marked ``+`` (or first appears) and ends at the first
    later event where the pitch is absent or starts again.
    """
    col = table.instruments.index(instrument)
    sounding: dict[int, float] = {}
    notes: list[SourceNote] = []
    for t, row in zip(table.times, table.notes, strict=True):
        cell = dict(row[col])  # pitch -> starts here
        for p in list(sounding):
            if p not in cell or cell[p]:
                notes.append(SourceNote(p, sounding.pop(p), float(t), None))
        for p in cell:
            if p not in sounding:
                sounding[p] = float(t)
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def arff_onsets(table: OnsetTable, instrument: str) -> dict[int, list[float]]:
    """{pitch: sorted onset times} of ``instrument`` in an onsets table."""
    out: dict[int, list[float]] = {}
    for n in arff_notes(table, instrument):
        out.setdefault(n.pitch, []).append(n.start)
    return out
