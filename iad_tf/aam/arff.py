"""Read and write AAM's ARFF annotation files exactly as the dataset ships them.

Three kinds, all with a header of ``@RELATION`` / ``@ATTRIBUTE`` lines:

* ``NNNN_onsets.arff``: one row per event time; per instrument a quoted list of the MIDI
  notes sounding from that time on, ``+`` marking a note that starts there: ``'[+60,64]'``.
  The instrument columns come from the header (``'Onset events of <Instrument>'``).
* ``NNNN_segments.arff``: song parts (start, mark, tempo, key, instruments, generators).
* ``NNNN_beatinfo.arff``: beats (time, bar, quarter, chord); AAM writes no ``@DATA`` line.

The writers produce byte-for-byte the same style, so synthetic and real AAM read alike.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iad_tf.fileio import read_text, write_text
from iad_tf.storage import to_path

ONSET_ATTR_PREFIX = "Onset events of "
_ATTR_RE = re.compile(r"^@ATTRIBUTE\s+'([^']*)'\s+(\S+)\s*$", re.IGNORECASE)

#: One instrument's cell: (MIDI pitch, starts here) pairs, in file order.
NoteList = tuple[tuple[int, bool], ...]


class ArffError(ValueError):
    """A malformed ARFF file; the message names the file and line."""


@dataclass(frozen=True)
class OnsetTable:
    """Onset events: ``times`` (events,) seconds; ``notes[e][i]`` the NoteList of instrument i."""

    instruments: tuple[str, ...]
    times: np.ndarray
    notes: list[tuple[NoteList, ...]]
    relation: str = ""

    def active(self) -> np.ndarray:
        """Bool (events, instruments): the instrument has at least one sounding note."""
        return np.array(
            [[len(cell) > 0 for cell in row] for row in self.notes], dtype=bool
        ).reshape(len(self.notes), len(self.instruments))


@dataclass(frozen=True)
class Segment:
    start: float
    mark: str
    tempo: float
    key: str
    instruments: tuple[str, ...]
    generators: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Beat:
    time: float
    bar: int
    quarter: int
    chord: str


# ---------------------------------------------------------------------------- reading


def _read_lines(path: Path) -> list[str]:
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise ArffError(f"{path}: no such file") from None
    except ValueError as exc:
        raise ArffError(str(exc)) from None
    except OSError as exc:
        raise ArffError(f"{path}: cannot read ({exc})") from exc
    if not text.strip():
        raise ArffError(f"{path}: file is empty")
    return text.splitlines()


def _parse(path: Path) -> tuple[str, list[tuple[str, str]], list[tuple[int, list[str]]]]:
    """Split an ARFF file into (relation, [(attribute, type)], [(line_no, fields)])."""
    lines = _read_lines(path)
    relation = ""
    attrs: list[tuple[str, str]] = []
    rows: list[tuple[int, list[str]]] = []
    for no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        upper = line[:10].upper()
        if upper.startswith("@RELATION"):
            relation = line[len("@RELATION") :].strip().strip("'")
        elif upper.startswith("@ATTRIBUTE"):
            m = _ATTR_RE.match(line)
            if not m:
                raise ArffError(f"{path}:{no}: cannot parse attribute line {line!r}")
            attrs.append((m.group(1), m.group(2).upper()))
        elif upper.startswith("@DATA"):
            continue
        elif line.startswith("@"):
            raise ArffError(f"{path}:{no}: unknown header line {line!r}")
        else:
            if not attrs:
                raise ArffError(f"{path}:{no}: data before any @ATTRIBUTE line")
            fields = next(csv.reader([line], quotechar="'", skipinitialspace=False))
            if len(fields) != len(attrs):
                raise ArffError(
                    f"{path}:{no}: row has {len(fields)} fields, header declares {len(attrs)}"
                )
            rows.append((no, fields))
    if not attrs:
        raise ArffError(f"{path}: no @ATTRIBUTE lines (not an ARFF file?)")
    return relation, attrs, rows


def _float(path: Path, no: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ArffError(f"{path}:{no}: {text!r} is not a number") from None
    if not np.isfinite(value):
        raise ArffError(f"{path}:{no}: {text!r} is not a finite number")
    return value


def parse_note_list(text: str) -> NoteList:
    """``'[+60,64]'`` (quotes already stripped) -> ((60, True), (64, False))."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError(f"note list {text!r} is not bracketed")
    body = text[1:-1].strip()
    if not body:
        return ()
    out = []
    for tok in body.split(","):
        tok = tok.strip()
        start = tok.startswith("+")
        out.append((int(tok[1:] if start else tok), start))
    return tuple(out)


def _parse_name_list(text: str) -> tuple[str, ...]:
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ValueError(f"list {text!r} is not bracketed")
    return tuple(s.strip() for s in body[1:-1].split(",") if s.strip())


def read_onsets(path: str | Path) -> OnsetTable:
    """Parse an ``_onsets.arff`` file. Raises :class:`ArffError` naming file and line."""
    path = to_path(path)
    relation, attrs, rows = _parse(path)
    if attrs[0][1] != "NUMERIC":
        raise ArffError(f"{path}: first attribute must be the numeric onset time")
    instruments = []
    for name, _typ in attrs[1:]:
        if not name.startswith(ONSET_ATTR_PREFIX):
            raise ArffError(f"{path}: attribute {name!r} is not an 'Onset events of' column")
        instruments.append(name[len(ONSET_ATTR_PREFIX) :])
    times = np.empty(len(rows), dtype=np.float64)
    notes: list[tuple[NoteList, ...]] = []
    for k, (no, fields) in enumerate(rows):
        times[k] = _float(path, no, fields[0])
        try:
            notes.append(tuple(parse_note_list(f) for f in fields[1:]))
        except ValueError as exc:
            raise ArffError(f"{path}:{no}: {exc}") from None
    if len(times) > 1 and np.any(np.diff(times) < 0):
        raise ArffError(f"{path}: onset times are not sorted")
    return OnsetTable(tuple(instruments), times, notes, relation)


def read_segments(path: str | Path) -> list[Segment]:
    """Parse a ``_segments.arff`` file into its song parts (the final 'end' row included)."""
    path = to_path(path)
    _relation, attrs, rows = _parse(path)
    if len(attrs) < 5:
        raise ArffError(f"{path}: expected at least 5 segment attributes, found {len(attrs)}")
    out = []
    for no, f in rows:
        try:
            out.append(
                Segment(
                    start=_float(path, no, f[0]),
                    mark=f[1],
                    tempo=_float(path, no, f[2]),
                    key=f[3],
                    instruments=_parse_name_list(f[4]),
                    generators=_parse_name_list(f[5]) if len(f) > 5 else (),
                )
            )
        except ValueError as exc:
            raise ArffError(f"{path}:{no}: {exc}") from None
    return out


def read_beatinfo(path: str | Path) -> list[Beat]:
    """Parse a ``_beatinfo.arff`` file (AAM writes it without an ``@DATA`` line)."""
    path = to_path(path)
    _relation, attrs, rows = _parse(path)
    if len(attrs) != 4:
        raise ArffError(f"{path}: expected 4 beat attributes, found {len(attrs)}")
    try:
        return [
            Beat(_float(path, no, f[0]), int(f[1]), int(f[2]), f[3]) for no, f in rows
        ]
    except ValueError as exc:
        raise ArffError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------- writing


def _fmt_time(t: float) -> str:
    """AAM prints times like Java floats: '0.0', '0.184049', '17.66871', '0.36809817'.

    A time that is the value of a float32's shortest repr (every time read from an AAM file)
    is printed as that repr; other times with 6 decimals.
    """
    s32 = np.format_float_positional(np.float32(t), unique=True, trim="0")
    if float(s32) == t:
        return s32
    s = f"{t:.6f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def format_note_list(notes: NoteList) -> str:
    return "'[" + ",".join(("+" if s else "") + str(p) for p, s in notes) + "]'"


def _header(relation: str, attributes: Sequence[tuple[str, str]], data: bool) -> Iterator[str]:
    yield f"@RELATION '{relation}'"
    yield ""
    for name, typ in attributes:
        yield f"@ATTRIBUTE '{name}' {typ}"
    yield ""
    if data:
        yield "@DATA"


def _write(path: Path, lines: Iterator[str]) -> None:
    """Write atomically: a temporary name, then rename."""
    write_text(path, "\n".join(lines) + "\n")


def write_onsets(path: str | Path, table: OnsetTable) -> None:
    attrs = [("Onset time in seconds", "NUMERIC")] + [
        (ONSET_ATTR_PREFIX + name, "STRING") for name in table.instruments
    ]

    def lines() -> Iterator[str]:
        yield from _header(table.relation, attrs, data=True)
        for t, row in zip(table.times, table.notes, strict=True):
            yield ",".join([_fmt_time(float(t))] + [format_note_list(c) for c in row])

    _write(Path(path), lines())


def write_segments(path: str | Path, segments: Sequence[Segment], relation: str) -> None:
    attrs = [
        ("Start time in seconds", "NUMERIC"),
        ("Mark", "STRING"),
        ("Tempo", "NUMERIC"),
        ("Key", "STRING"),
        ("Instruments", "STRING"),
        ("Generator", "STRING"),
    ]

    def lines() -> Iterator[str]:
        yield from _header(relation, attrs, data=True)
        for s in segments:
            tempo = str(int(s.tempo)) if float(s.tempo).is_integer() else str(s.tempo)
            yield (
                f"{_fmt_time(s.start)},'{s.mark}',{tempo},'{s.key}',"
                f"'[{','.join(s.instruments)}]','[{','.join(s.generators)}]'"
            )

    _write(Path(path), lines())


def write_beatinfo(path: str | Path, beats: Sequence[Beat], relation: str) -> None:
    attrs = [
        ("Start time in seconds", "NUMERIC"),
        ("Bar count", "NUMERIC"),
        ("Quarter count", "NUMERIC"),
        ("Chord name", "STRING"),
    ]

    def lines() -> Iterator[str]:
        yield from _header(relation, attrs, data=False)
        for b in beats:
            yield f"{_fmt_time(b.time)},{b.bar},{b.quarter},'{b.chord}'"

    _write(Path(path), lines())
