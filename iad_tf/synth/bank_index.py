"""The note bank on disk: its index (one CSV row per cut), ``bank.json`` and cached audio.

::

    BANK/index.csv                     one row per cut (columns: INDEX_COLUMNS)
    BANK/bank.json                     config, source songs, files {path: sha256}, report,
                                       fingerprint, version
    BANK/report.md                     the per-instrument coverage table and skipped cuts
    BANK/audio/<Instrument>/<song>.flac  the aligned stem of that song (16-bit FLAC at the
                                       bank's sample rate), trimmed to its kept cuts

A cut is ``file[offset_s : offset_s + duration_s + tail_s]``: the note (or chord, or drum
hit) and its release tail up to the next onset. ``pitches`` is space-separated MIDI numbers
(one for a note or drum hit, several for a chord); ``velocity`` is empty where the notes came
from the onsets ARFF (no velocity there); ``solo`` is 1 when no other note of the
instrument sounds during the cut (a clean single note).
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iad_tf.fileio import read_json, write_text

INDEX_FILE = "index.csv"
BANK_JSON = "bank.json"
REPORT_FILE = "report.md"
AUDIO_DIR = "audio"
KINDS: tuple[str, ...] = ("note", "chord", "drum")
INDEX_COLUMNS: tuple[str, ...] = (
    "instrument", "kind", "pitches", "velocity", "onset_s", "duration_s", "tail_s",
    "song", "role", "solo", "rms_db", "file", "offset_s",
)


class BankError(ValueError):
    """A missing or malformed bank; the message names the file."""


@dataclass(frozen=True)
class Cut:
    """One index row."""

    instrument: str
    kind: str  # note | chord | drum
    pitches: tuple[int, ...]
    velocity: int | None
    onset_s: float  # in the source song
    duration_s: float
    tail_s: float
    song: str
    role: str
    solo: bool
    rms_db: float
    file: str  # relative to the bank root
    offset_s: float  # in ``file``

    def to_row(self) -> list[str]:
        return [
            self.instrument, self.kind, " ".join(map(str, self.pitches)),
            "" if self.velocity is None else str(self.velocity),
            f"{self.onset_s:.6f}", f"{self.duration_s:.6f}", f"{self.tail_s:.6f}",
            self.song, self.role, "1" if self.solo else "0", f"{self.rms_db:.1f}",
            self.file, f"{self.offset_s:.6f}",
        ]

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Cut:
        return cls(
            instrument=row["instrument"], kind=row["kind"],
            pitches=tuple(int(p) for p in row["pitches"].split()),
            velocity=int(row["velocity"]) if row["velocity"] else None,
            onset_s=float(row["onset_s"]), duration_s=float(row["duration_s"]),
            tail_s=float(row["tail_s"]), song=row["song"], role=row["role"],
            solo=row["solo"] == "1", rms_db=float(row["rms_db"]), file=row["file"],
            offset_s=float(row["offset_s"]),
        )


def index_text(cuts: Sequence[Cut]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(INDEX_COLUMNS)
    for c in cuts:
        w.writerow(c.to_row())
    return buf.getvalue()


def write_index(path: str | Path, cuts: Sequence[Cut]) -> None:
    write_text(path, index_text(cuts))


def read_index(path: str | Path) -> list[Cut]:
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != INDEX_COLUMNS:
                raise BankError(f"{path}: header is not {','.join(INDEX_COLUMNS)}")
            return [Cut.from_row(r) for r in reader]
    except FileNotFoundError:
        raise BankError(f"{path}: no such file (not a note bank? build one with `iad-tf bank`)") from None
    except (KeyError, ValueError) as exc:
        if isinstance(exc, BankError):
            raise
        raise BankError(f"{path}: malformed row ({exc})") from None


@dataclass(frozen=True, eq=False)
class Bank:
    """A loaded bank: its root, meta (bank.json) and cuts (hashed by identity)."""

    root: Path
    meta: dict
    cuts: tuple[Cut, ...]

    @property
    def sample_rate(self) -> int:
        return int(self.meta["config"]["sample_rate"])

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    @property
    def songs(self) -> list[str]:
        return sorted({c.song for c in self.cuts})

    def instruments(self, songs: set[str] | None = None) -> tuple[str, ...]:
        """Instruments with at least one cut (from ``songs`` only, when given), sorted."""
        return tuple(sorted({c.instrument for c in self.cuts if songs is None or c.song in songs}))

    def segment(self, file: str, start: int, frames: int) -> np.ndarray:
        """float32 (<= frames,) samples ``start:start + frames`` of a bank audio file, read by
        seeking (a worker never holds the whole bank in memory)."""
        import soundfile as sf

        path = self.root / file
        try:
            with sf.SoundFile(str(path)) as f:
                f.seek(max(0, min(start, f.frames)))
                return f.read(frames, dtype="float32", always_2d=False)
        except Exception as exc:  # noqa: BLE001 - one line naming the file
            raise BankError(f"{path}: cannot read bank audio ({exc})") from None


@functools.lru_cache(maxsize=8)
def load_bank(root: str | Path) -> Bank:
    """Read ``root``'s bank.json and index.csv (cached per process)."""
    root = Path(root)
    try:
        meta = read_json(root / BANK_JSON)
    except FileNotFoundError:
        raise BankError(f"{root / BANK_JSON}: no such file (not a note bank? build one with `iad-tf bank`)") from None
    except (OSError, ValueError) as exc:
        raise BankError(f"{root / BANK_JSON}: cannot read ({exc})") from None
    if "fingerprint" not in meta or "config" not in meta:
        raise BankError(f"{root / BANK_JSON}: lacks 'fingerprint'/'config' (an unfinished bank?)")
    cuts = read_index(root / INDEX_FILE)
    if not cuts:
        raise BankError(f"{root / INDEX_FILE}: the bank holds no cuts")
    return Bank(root, meta, tuple(cuts))
