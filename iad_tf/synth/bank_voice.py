"""Render a composed song's stems from a note bank (``iad-tf synth --voices bank:DIR``).

* **Pitches**: every note is first moved (by octaves, else to the nearest reachable pitch)
  into the pitches the bank can play for its instrument: a recorded pitch +- ``max_shift``
  semitones (:func:`fit_song`; the annotations are written from the fitted song). A note is
  then played from a recorded cut of the nearest pitch, resampled by ``2**(shift/12)``.
  Drum keys map to a recorded key of the same drum (kick, snare, hi-hat, tom, cymbal).
* **Durations**: a cut is truncated at the note's end with a ``FADE_S`` release fade; a
  sustained instrument (one that does not decay) loops the middle of a too-short cut with
  crossfades; a decaying one prefers cuts at least as long as the note, and where none is,
  the note ends where its cut does (:func:`as_rendered`: the annotations follow the audio).
* **Chords**: notes of one instrument starting together are played from a chord slice with
  the same intervals (shifted by at most ``max_shift``) where the bank has one, else note by note.
* **Velocity** -> gain ``velocity / recorded velocity`` (64 where unknown).

Only cuts from ``songs`` are used; :attr:`BankVoice.used` collects the songs actually used.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from iad_tf.synth.bank_index import Bank, Cut
from iad_tf.synth.instruments import INSTRUMENTS
from iad_tf.synth.score import Note, Song, qtime

FADE_S = 0.03  # release fade after a truncated note
LOOP_XFADE_S = 0.02
SHORT_TOLERANCE_S = 0.001
DEFAULT_VELOCITY = 64
#: GM drum keys grouped by drum; a missing key is replaced by one of its group.
DRUM_GROUPS: tuple[tuple[int, ...], ...] = (
    (36, 35), (38, 40, 37, 39), (42, 44, 46), (46, 42, 44), (45, 47, 43, 41, 48, 50),
    (50, 48, 47, 45, 43, 41), (51, 59, 53, 49, 57, 52, 55), (49, 57, 55, 52, 51, 59),
)


@functools.lru_cache(maxsize=64)
def _cuts_of(bank: Bank, instrument: str, songs: frozenset[str]) -> tuple[Cut, ...]:
    return tuple(c for c in bank.cuts if c.instrument == instrument and c.song in songs)


@functools.lru_cache(maxsize=64)
def _by_shape(bank: Bank, instrument: str, songs: frozenset[str]) -> dict[tuple[int, ...], dict[int, list[Cut]]]:
    """{interval shape (pitches - lowest): {lowest pitch: cuts}}; a single note's shape is (0,)."""
    out: dict[tuple[int, ...], dict[int, list[Cut]]] = {}
    for c in _cuts_of(bank, instrument, songs):
        shape = tuple(p - c.pitches[0] for p in c.pitches)
        out.setdefault(shape, {}).setdefault(c.pitches[0], []).append(c)
    return out


def recorded_pitches(bank: Bank, instrument: str, songs: frozenset[str]) -> np.ndarray:
    """Sorted unique pitches of single-note (or drum) cuts of ``instrument`` from ``songs``."""
    return np.array(sorted({c.pitches[0] for c in _cuts_of(bank, instrument, songs) if c.kind != "chord"}), dtype=int)


def reachable(recorded: np.ndarray, max_shift: int) -> np.ndarray:
    """Pitches within ``max_shift`` semitones of a recorded one, sorted."""
    return np.array(sorted({int(p) + s for p in recorded for s in range(-max_shift, max_shift + 1)}), dtype=int)


def fit_pitch(p: int, ok: np.ndarray) -> int:
    """``p`` moved by whole octaves into ``ok`` (the closest such), else the nearest of ``ok``."""
    octaves = [p + 12 * k for k in range(-6, 7) if np.any(ok == p + 12 * k)]
    if octaves:
        return min(octaves, key=lambda q: (abs(q - p), q))
    return int(ok[np.argmin(np.abs(ok - p))])


def drum_key(key: int, recorded: np.ndarray) -> int:
    """A recorded drum key for GM ``key``: itself, else one of its drum group, else the nearest."""
    have = set(recorded.tolist())
    if key in have:
        return key
    for group in DRUM_GROUPS:
        if group[0] == key or key in group:
            for k in group:
                if k in have:
                    return k
    return int(recorded[np.argmin(np.abs(recorded - key))])


def fit_song(song: Song, bank: Bank, songs: frozenset[str], max_shift: int) -> Song:
    """``song`` with every pitch playable from the bank (duplicates at one time dropped)."""
    notes: dict[str, tuple[Note, ...]] = {}
    for name, ns in song.notes.items():
        rec = recorded_pitches(bank, name, songs)
        if rec.size == 0:
            raise ValueError(f"the bank has no {name} notes from songs {sorted(songs)}")
        if INSTRUMENTS[name].is_drums:
            mapped = [dataclasses.replace(n, pitch=drum_key(n.pitch, rec)) for n in ns]
        else:
            ok = reachable(rec, max_shift)
            mapped = [dataclasses.replace(n, pitch=fit_pitch(n.pitch, ok)) for n in ns]
        seen: set[tuple[int, float]] = set()
        unique = []
        for n in sorted(mapped, key=lambda n: (n.start, n.pitch, -n.end)):
            if (n.pitch, n.start) not in seen:
                seen.add((n.pitch, n.start))
                unique.append(n)
        notes[name] = tuple(unique)
    return dataclasses.replace(song, notes=notes)


def _loop(seg: np.ndarray, n_needed: int, xf: int) -> np.ndarray:
    """Extend ``seg`` to ``n_needed`` samples by repeating its middle (30-90 %) with crossfades."""
    a, b = int(0.3 * len(seg)), int(0.9 * len(seg))
    if b - a <= 2 * xf:
        return seg
    body = seg[a:b]
    parts = [seg[:b].astype(np.float64)]
    total = b
    ramp = np.linspace(0.0, 1.0, xf)
    while total < n_needed:
        last = parts[-1]
        last[-xf:] = last[-xf:] * (1 - ramp) + body[:xf] * ramp
        parts.append(body[xf:].astype(np.float64))
        total += len(body) - xf
    return np.concatenate(parts)


@dataclass
class BankVoice:
    """Plays notes from ``bank`` cuts of ``songs``; ``rng`` picks among equally good cuts."""

    bank: Bank
    songs: frozenset[str]
    max_shift: int
    rng: np.random.Generator
    used: set[str] = field(default_factory=set)
    #: {instrument: [(start, end)]} seconds where a cut actually sounds (before the fade).
    rendered: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    #: {instrument: {(start, pitch): end}} of notes whose cut ran out before the note's end.
    short: dict[str, dict[tuple[float, int], float]] = field(default_factory=dict)
    #: How notes were played: chord_slices, notes, shifted (cuts), looped, cut_short.
    stats: Counter[str] = field(default_factory=Counter)

    def _pick(self, name: str, target: Iterable[int], need_s: float, sustained: bool) -> tuple[Cut, int] | None:
        """Best cut for ``target`` pitches (a note: one): least shift, then solo, then long
        enough (a drum hit: long enough, then solo)."""
        target = tuple(sorted(target))
        by_low = _by_shape(self.bank, name, self.songs).get(tuple(p - target[0] for p in target), {})
        for shift in sorted(range(-self.max_shift, self.max_shift + 1), key=lambda s: (abs(s), s)):
            cands = by_low.get(target[0] - shift)
            if not cands:
                continue
            keys = [(not c.solo, not sustained and c.duration_s + c.tail_s < need_s) for c in cands]
            if cands[0].kind == "drum":  # another drum under a hit is still drums: length first
                keys = [(short, alone) for alone, short in keys]
            best = min(keys)
            pool = [c for c, k in zip(cands, keys, strict=True) if k == best]
            return pool[int(self.rng.integers(0, len(pool)))], shift
        return None

    def _place(self, out: np.ndarray, sr: int, cut: Cut, shift: int, start: float, dur: float,
               velocity: int, sustained: bool) -> float:
        """Add ``cut`` (shifted) at ``start`` for ``dur`` s into ``out``; seconds it sounds."""
        bsr = self.bank.sample_rate
        seg = self.bank.segment(cut.file, int(round(cut.offset_s * bsr)),
                                int(round((cut.duration_s + cut.tail_s) * bsr)))
        ratio = 2.0 ** (shift / 12.0) * bsr / sr  # source samples per output sample
        n_fade = int(FADE_S * sr)
        need = int(round(dur * sr))
        self.stats["shifted"] += shift != 0
        if sustained and (len(seg) - 1) / ratio < need + n_fade:
            self.stats["looped"] += 1
            seg = _loop(seg[: max(int(round(cut.duration_s * bsr)), 1)], int((need + n_fade) * ratio) + 2,
                        int(LOOP_XFADE_S * bsr))
        avail = int((len(seg) - 1) / ratio)
        n = min(need + n_fade, avail)
        if n <= 0:
            return 0.0
        y = np.interp(np.arange(n) * ratio, np.arange(len(seg)), seg)
        if n > need:
            m = n - need
            y[need:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, m + 1) / n_fade)
        gain = velocity / float(cut.velocity or DEFAULT_VELOCITY)
        k0 = int(round(start * sr))
        k1 = min(k0 + n, len(out))
        out[k0:k1] += gain * y[: k1 - k0]
        self.used.add(cut.song)
        return min(need, n) / sr

    def render(self, name: str, notes: tuple[Note, ...], n_samples: int, sr: int) -> np.ndarray:
        """One instrument's notes -> mono float32 (n_samples,), not yet gated or levelled."""
        out = np.zeros(n_samples, dtype=np.float64)
        sustained = not INSTRUMENTS[name].decays
        by_start: dict[float, list[Note]] = {}
        for n in notes:
            by_start.setdefault(n.start, []).append(n)
        for start, group in sorted(by_start.items()):
            dur = max(n.end for n in group) - start
            vel = int(round(np.mean([n.velocity for n in group])))
            same_end = len({n.end for n in group}) == 1
            hit = self._pick(name, [n.pitch for n in group], dur, sustained) if len(group) > 1 and same_end else None
            if hit is not None:
                self.stats["chord_slices"] += 1
                played = self._place(out, sr, hit[0], hit[1], start, dur, vel, sustained)
                for n in group:
                    self._sounded(name, n, start + played)
                continue
            for n in group:
                pick = self._pick(name, [n.pitch], n.end - n.start, sustained)
                if pick is None:
                    raise ValueError(f"{name}: no bank cut within {self.max_shift} semitones of pitch {n.pitch}")
                self.stats["notes"] += 1
                played = self._place(out, sr, pick[0], pick[1], n.start, n.end - n.start, n.velocity, sustained)
                self._sounded(name, n, n.start + played)
        return out.astype(np.float32)

    def _sounded(self, name: str, note: Note, end: float) -> None:
        """Record that ``note`` sounds until ``end`` (its own end unless the cut ran out >= 1 ms
        earlier: sample rounding is not a short cut)."""
        end = note.end if end >= note.end - SHORT_TOLERANCE_S else qtime(end)
        self.rendered.setdefault(name, []).append((note.start, end))
        if end < note.end:
            self.stats["cut_short"] += 1
            self.short.setdefault(name, {})[(note.start, note.pitch)] = end


def as_rendered(song: Song, voice: BankVoice) -> Song:
    """``song`` with every note that its cut could not fill ending where the cut ran out, so the
    annotations say exactly where each note sounds (a decaying recording shorter than the note)."""
    notes = {}
    for name, ns in song.notes.items():
        short = voice.short.get(name, {})
        kept = [dataclasses.replace(n, end=short.get((n.start, n.pitch), n.end)) for n in ns]
        notes[name] = tuple(n for n in kept if n.end > n.start)
    return dataclasses.replace(song, notes=notes)
