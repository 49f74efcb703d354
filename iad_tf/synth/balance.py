"""Which stems each cross-song mix uses: AAM's roles, balance by construction, fold holdout.

A track takes exactly one bass, the drums or none, 1-3 chord/arpeggio stems and 1-2 melody
stems (roles from the source songs' segments 'Generator' column, :func:`stem_roles`), each
instrument at most once. The chord and melody counts are drawn at random, except that the
role whose least-heard instrument lags takes its most slots and the other not its most (melody
stems sound sparser than chord pads). Slots are filled bass first, then drums, chords, melodies; each slot
takes the candidate instrument that has met the instruments already chosen least often (pairs
counted over the sources and every track planned so far; the drums, which meet everyone, do
not count), then the one with the fewest sounding seconds so far, then a random one. So every
instrument present in the sources drifts towards a comparable share of frames and meets every
role-compatible partner (each bass with each piano and guitar). The stem of that instrument
comes from a song not yet in the track where possible, the least-used stem first, and its
excerpt starts near a random moment where it plays (:func:`excerpt_offset`).

Planning is sequential and cheap (no audio): track ``k`` draws its random numbers from
``SeedSequence([seed, k])`` and depends on the tracks before it, never on the number of
workers or of tracks asked for (``--across-songs 20`` extends ``--across-songs 10``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.aam.arff import OnsetTable
from iad_tf.aam.labels import onset_roll
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.synth.instruments import INSTRUMENTS
from iad_tf.synth.score import merge_intervals, qtime
from iad_tf.synth.stems import SongStems, stem_roles
from iad_tf.synth.timemap import Piece, pieces, place_intervals

#: Slot sizes per track (inclusive ranges) and the roles in the order slots are filled.
N_CHORDS = (1, 3)
N_MELODY = (1, 2)
SLOT_ORDER = ("bass", "drums", "chords", "melody")
#: Instruments named in the balance report's bass x keys/guitars coverage.
KEYS_AND_GUITARS = tuple(n for n in AAM_CLASSES if "Piano" in n or "Guitar" in n)


class PlanError(ValueError):
    """No track can be planned (a role with no stem); the message names the root or fold."""


@dataclass(frozen=True)
class Stem:
    """One source stem usable in a role: ``spans`` its sounding [start, end) seconds."""

    song: str
    name: str
    role: str
    path: Path
    period: float
    pitches: tuple[int, ...]
    spans: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Choice:
    """A stem placed in a track: excerpt start, gain before peak normalisation, transposition."""

    stem: Stem
    offset: float
    gain_db: float
    shift: int

    def parts(self, length: float) -> list[Piece]:
        return pieces(self.offset, self.stem.period, length)


@dataclass(frozen=True)
class TrackPlan:
    track_id: str
    fold: int | None  # the fold whose songs this track avoids (None: no holdout)
    held_out: tuple[str, ...]
    choices: tuple[Choice, ...]

    @property
    def sources(self) -> list[str]:
        """Source songs, the bass's first (the primary source), each once."""
        return list(dict.fromkeys(c.stem.song for c in self.choices))


def sounding_spans(onsets: OnsetTable, name: str) -> tuple[tuple[float, float], ...]:
    """[start, end) seconds where ``name`` has a sounding note."""
    if name not in onsets.instruments:
        return ()
    col = onsets.active()[:, onsets.instruments.index(name)]  # (events,)
    t = onsets.times
    spans = [(float(t[e]), float(t[e + 1])) for e in range(len(t) - 1) if col[e]]
    return tuple(merge_intervals(spans))


def catalog(songs: Sequence[SongStems]) -> list[Stem]:
    """Every stem of ``songs`` with its role; an instrument the segments give no known role
    takes its first role in :data:`INSTRUMENTS` (arpeggio counted as chords)."""
    out: list[Stem] = []
    for song in songs:
        roles = stem_roles(song.segments)
        period = float(song.onsets.times[-1]) if len(song.onsets.times) else 0.0
        if period <= 0:
            continue
        for name, path in sorted(song.stems.items()):
            role = roles.get(name) or INSTRUMENTS[name].roles[0].replace("arpeggio", "chords")
            k = song.onsets.instruments.index(name) if name in song.onsets.instruments else None
            pitches = () if k is None else tuple(sorted({p for row in song.onsets.notes for p, _ in row[k]}))
            out.append(Stem(song.track.track_id, name, role, path, period, pitches,
                            sounding_spans(song.onsets, name)))
    return out


def excerpt_offset(stem: Stem, length: float, rng: np.random.Generator) -> float:
    """A random excerpt start that catches the stem playing: a moment drawn uniformly over its
    sounding seconds, moved back by up to half the excerpt (wrapping at the song's end)."""
    total = sum(b - a for a, b in stem.spans)
    if total <= 0:
        t = float(rng.uniform(0.0, stem.period))
    else:
        u = float(rng.uniform(0.0, total))
        for a, b in stem.spans:
            if u < b - a:
                break
            u -= b - a
        t = a + u
    offset = qtime((t - float(rng.uniform(0.0, length / 2))) % stem.period)
    return offset if offset < stem.period else 0.0


def allowed_shifts(stem: Stem, k: int) -> list[int]:
    """Transpositions in [-k, k] keeping every sounding pitch in the class's range (0 is always
    allowed: the recording as it is); none for the drums (their notes are drum keys)."""
    if stem.role == "drums" or INSTRUMENTS[stem.name].is_drums or not stem.pitches:
        return [0]
    inst = INSTRUMENTS[stem.name]
    lo, hi = stem.pitches[0], stem.pitches[-1]
    return [s for s in range(-k, k + 1) if s == 0 or (inst.low <= lo + s and hi + s <= inst.high)]


def check_shift(stem: Stem, shift: int) -> None:
    """Refuse a transposition that leaves the class's pitch range (``ValueError``)."""
    if shift and shift not in allowed_shifts(stem, abs(shift)):
        inst = INSTRUMENTS[stem.name]
        raise ValueError(
            f"{stem.path}: a shift of {shift:+d} semitones moves {stem.name} pitches "
            f"{stem.pitches[0]}-{stem.pitches[-1]} out of its range {inst.low}-{inst.high}")


class Balancer:
    """The running counts the planner balances: sounding seconds per instrument, meetings per
    instrument pair, uses per stem (all starting from the sources themselves)."""

    def __init__(self, stems: Sequence[Stem]) -> None:
        self.stems = list(stems)
        self.seconds: Counter[str] = Counter()
        self.pairs: Counter[frozenset[str]] = Counter()
        self.uses: Counter[tuple[str, str]] = Counter()
        by_song: dict[str, list[str]] = {}
        for s in self.stems:
            self.seconds[s.name] += sum(b - a for a, b in s.spans)
            by_song.setdefault(s.song, []).append(s.name)
        for names in by_song.values():
            self._meet(names)

    def _meet(self, names: Sequence[str]) -> None:
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if a != b:
                    self.pairs[frozenset((a, b))] += 1

    def _pick_name(self, role: str, pool: list[Stem], chosen: list[str], rng: np.random.Generator) -> str | None:
        names = sorted({s.name for s in pool if s.role == role} - set(chosen))
        if not names:
            return None
        ties = rng.random(len(names))
        partners = [c for c in chosen if not INSTRUMENTS[c].is_drums]

        def key(k: int) -> tuple[float, float, float]:
            n = names[k]
            return (sum(self.pairs[frozenset((n, c))] for c in partners), self.seconds[n], ties[k])

        return names[min(range(len(names)), key=key)]

    def _pick_stem(self, role: str, name: str, pool: list[Stem], songs: set[str], rng: np.random.Generator) -> Stem:
        cands = [s for s in pool if s.role == role and s.name == name]
        ties = rng.random(len(cands))
        k = min(range(len(cands)), key=lambda i: (cands[i].song in songs, self.uses[(cands[i].song, name)], ties[i]))
        return cands[k]

    def plan(
        self,
        track_id: str,
        rng: np.random.Generator,
        pool: list[Stem],
        length: float,
        gains_db: tuple[float, float],
        max_shift: int,
        drums_probability: float,
    ) -> list[Choice]:
        """The stems of one track drawn from ``pool``; updates the counts."""
        slots = {
            "bass": 1,
            "drums": int(rng.random() < drums_probability),
            "chords": int(rng.integers(N_CHORDS[0], N_CHORDS[1] + 1)),
            "melody": int(rng.integers(N_MELODY[0], N_MELODY[1] + 1)),
        }
        # the role whose least-heard instrument lags gets its most slots, the other not its most
        lag = {r: min((self.seconds[s.name] for s in pool if s.role == r), default=np.inf)
               for r in ("chords", "melody")}
        behind = min(lag, key=lambda r: (lag[r], r))
        ahead = "melody" if behind == "chords" else "chords"
        sizes = {"chords": N_CHORDS, "melody": N_MELODY}
        slots[behind] = sizes[behind][1]
        slots[ahead] = min(slots[ahead], max(sizes[ahead][1] - 1, sizes[ahead][0]))
        chosen: list[str] = []
        choices: list[Choice] = []
        for role in SLOT_ORDER:
            for _ in range(slots[role]):
                name = self._pick_name(role, pool, chosen, rng)
                if name is None:
                    break
                stem = self._pick_stem(role, name, pool, {c.stem.song for c in choices}, rng)
                offset = excerpt_offset(stem, length, rng)
                gain = float(rng.uniform(*gains_db))
                shift = int(rng.choice(allowed_shifts(stem, max_shift)))
                choices.append(Choice(stem, offset, gain, shift))
                chosen.append(name)
        for role in ("bass", "chords", "melody"):
            if not any(c.stem.role == role for c in choices):
                raise PlanError(f"{track_id}: no {role} stem to draw from")
        for c in choices:
            self.seconds[c.stem.name] += sum(b - a for a, b in place_intervals(c.stem.spans, c.parts(length)))
            self.uses[(c.stem.song, c.stem.name)] += 1
        self._meet(chosen)
        return choices


# ---------------------------------------------------------------------------- report


def class_frames(tables: Sequence[tuple[OnsetTable, float]], cfg: FeatureConfig | None = None) -> dict[str, int]:
    """Active frames per class over (onsets, seconds) tracks, at the feature frame rate."""
    cfg = cfg or FeatureConfig()
    total = np.zeros(len(AAM_CLASSES), dtype=np.int64)
    for table, seconds in tables:
        times = cfg.frame_times(cfg.seconds_to_frames(seconds))  # (frames,)
        total += onset_roll(table, times, AAM_CLASSES).sum(axis=0, dtype=np.int64)
    return {c: int(v) for c, v in zip(AAM_CLASSES, total, strict=True)}


def compatible_pairs(stems: Sequence[Stem]) -> list[tuple[str, str]]:
    """Instrument pairs (present in the sources) that may meet in one track: any two except
    two basses (one bass per track); the drums are one instrument."""
    roles: dict[str, set[str]] = {}
    for s in stems:
        roles.setdefault(s.name, set()).add(s.role)
    names = sorted(roles)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if not (roles[a] == {"bass"} and roles[b] == {"bass"})]


def coverage(pairs: Sequence[tuple[str, str]], groups: Sequence[Sequence[str]]) -> dict[str, object]:
    """How many of ``pairs`` meet in at least one of ``groups`` (instrument sets)."""
    met = {frozenset((a, b)) for g in groups for i, a in enumerate(g) for b in g[i + 1:]}
    missing = [f"{a}+{b}" for a, b in pairs if frozenset((a, b)) not in met]
    return {"pairs": len(pairs), "covered": len(pairs) - len(missing), "missing": missing}


def balance_report(
    stems: Sequence[Stem],
    sources: Sequence[tuple[OnsetTable, float]],
    generated: Sequence[tuple[OnsetTable, float]],
    source_groups: Sequence[Sequence[str]],
    generated_groups: Sequence[Sequence[str]],
) -> dict[str, object]:
    """Frames per class before (sources) and after (sources + generated) and the pair
    coverage of both (all role-compatible pairs; each bass with each piano and guitar)."""
    before = class_frames(sources)
    gen = class_frames(generated)
    after = {c: before[c] + gen[c] for c in AAM_CLASSES}
    pairs = compatible_pairs(stems)
    present = {s.name for s in stems}
    basses = sorted({s.name for s in stems if s.role == "bass"})
    bass_kg = [(b, k) for b in basses for k in KEYS_AND_GUITARS if k in present and k != b]
    bass_kg = [tuple(sorted(p)) for p in bass_kg]

    def spread(frames: dict[str, int]) -> dict[str, float]:
        v = np.array([frames[c] for c in sorted(present) if c != "Drums"], dtype=np.float64)
        return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max()),
                "max_over_min": float(v.max() / max(v.min(), 1.0))} if len(v) else {}

    return {
        "frames_before": before,
        "frames_after": after,
        "frames_spread_before": spread(before),
        "frames_spread_after": spread(after),
        "pairs_before": coverage(pairs, source_groups),
        "pairs_after": coverage(pairs, list(source_groups) + list(generated_groups)),
        "bass_x_keys_guitars_before": coverage(bass_kg, source_groups),
        "bass_x_keys_guitars_after": coverage(bass_kg, list(source_groups) + list(generated_groups)),
    }


def format_report(report: dict[str, Any]) -> str:
    """The balance report as text: frames per present class before -> after, pair coverage."""
    before, after = report["frames_before"], report["frames_after"]
    lines = [f"{'class':<22}{'frames before':>14}{'after':>10}"]
    lines += [f"{c:<22}{before[c]:>14}{after[c]:>10}" for c in AAM_CLASSES if before[c] or after[c]]
    for key, label in (("frames_spread", "non-drum frames max/min"),):
        b, a = report[f"{key}_before"], report[f"{key}_after"]
        if b and a:
            lines.append(f"{label}: {b['max_over_min']:.1f} before, {a['max_over_min']:.1f} after")
    for key, label in (("pairs", "role-compatible pairs met"), ("bass_x_keys_guitars", "bass x piano/guitar pairs met")):
        b, a = report[f"{key}_before"], report[f"{key}_after"]
        lines.append(f"{label}: {b['covered']}/{b['pairs']} before, {a['covered']}/{a['pairs']} after")
    return "\n".join(lines)
