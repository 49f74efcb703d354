"""Algorithmic songs in AAM's style: parts with their own tempo, key and band, four roles.

A song is a sequence of parts (marks A, B, C, ...). Each part has a tempo, a key, a chord
progression and an instrument for some of the roles melody, chords (held or strummed pads),
arpeggio, bass line and drums, as AAM's generators (MelodyBow, ChordPadsRanged,
ChordArpeggios, BassLine, RhythmSimpleGrooves) do. A part is composed once and repeats
wherever its mark recurs. Every random choice comes from the ``numpy.random.Generator``
passed in, so a (seed, track) pair always gives the same song.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iad_tf.aam.arff import Beat, Segment
from iad_tf.synth import instruments as gm
from iad_tf.synth.instruments import GENERATORS, INSTRUMENTS, ROLES, instruments_for
from iad_tf.synth.score import Note, Song, qtime

PITCH_NAMES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SCALES: dict[str, tuple[int, ...]] = {"maj": (0, 2, 4, 5, 7, 9, 11), "min": (0, 2, 3, 5, 7, 8, 10)}
#: Diatonic progressions as 0-based scale degrees (no diminished triads), one chord per span.
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "maj": ((0, 4, 5, 3), (0, 3, 4, 0), (5, 3, 0, 4), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 0, 4)),
    "min": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4)),
}
#: Chance that a part has each role.
ROLE_PROBABILITY: dict[str, float] = {
    "melody": 0.85, "chords": 0.9, "arpeggio": 0.35, "bass": 0.8, "drums": 0.75,
}
COUNTER_MELODY_PROBABILITY = 0.5
#: Chance that a role keeps the previous part's instrument.
REUSE_PROBABILITY = 0.4
TEMPO_RANGE: tuple[int, int] = (60, 170)
#: Longest a note of a decaying (plucked, struck) instrument is held before re-striking.
MAX_DECAY_HOLD_S = 1.2
STEPS_PER_BEAT = 4  # the 16th-note grid every event sits on


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class 0-11
    pcs: tuple[int, int, int]  # root, third, fifth pitch classes
    name: str  # AAM style: 'A#min'


@dataclass(frozen=True)
class PartPlan:
    """One song part: everything but the timeline position. Note times are in beats."""

    mark: str
    tempo: int
    key: str
    bars: int
    chords: tuple[Chord, ...]  # one per chord span
    beats_per_chord: int
    cast: tuple[tuple[str, str], ...]  # (role, instrument) in ROLES order
    notes: dict[str, tuple[tuple[int, float, float, int], ...]]  # name -> (pitch, b0, b1, vel)

    @property
    def beats(self) -> int:
        return self.bars * 4

    @property
    def seconds(self) -> float:
        return self.beats * 60.0 / self.tempo

    def chord_at(self, beat: float) -> Chord:
        return self.chords[int(beat // self.beats_per_chord) % len(self.chords)]


def _triad(tonic: int, mode: str, degree: int) -> Chord:
    scale = SCALES[mode]
    pcs = tuple((tonic + scale[(degree + k) % 7]) % 12 for k in (0, 2, 4))
    third = (pcs[1] - pcs[0]) % 12
    quality = "maj" if third == 4 else "min"
    return Chord(pcs[0], pcs, f"{PITCH_NAMES[pcs[0]]}{quality}")  # type: ignore[arg-type]


def _window(rng: np.random.Generator, low: int, high: int, width: int) -> tuple[int, int]:
    """A pitch window of ``width`` semitones placed at random inside [low, high]."""
    width = min(width, high - low)
    lo = int(rng.integers(low, high - width + 1))
    return lo, lo + width


def _pitches_in(pcs: tuple[int, ...] | list[int], lo: int, hi: int) -> list[int]:
    return [p for p in range(lo, hi + 1) if p % 12 in pcs]


def _hold(inst: gm.Instrument, beats: float, tempo: int) -> float:
    """Cap a note of a decaying instrument at MAX_DECAY_HOLD_S (in beats)."""
    if not inst.decays:
        return beats
    return min(beats, MAX_DECAY_HOLD_S * tempo / 60.0)


# --------------------------------------------------------------------------- roles


def _melody(rng, inst, tonic, mode, plan_chords, bpc, beats, tempo):
    lo, hi = _window(rng, inst.low, inst.high, 16)
    scale = _pitches_in([(tonic + s) % 12 for s in SCALES[mode]], lo, hi)
    idx = len(scale) // 2
    steps = beats * STEPS_PER_BEAT
    pos = 0
    out = []
    while pos < steps:
        dur = int(rng.choice([2, 2, 4, 4, 4, 6, 8]))
        dur = min(dur, steps - pos)
        if rng.random() < 0.15:
            pos += dur
            continue
        idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, len(scale) - 1))
        pitch = scale[idx]
        if pos % STEPS_PER_BEAT == 0 and rng.random() < 0.5:
            chord = plan_chords[int(pos / STEPS_PER_BEAT // bpc) % len(plan_chords)]
            tones = _pitches_in(chord.pcs, lo, hi)
            pitch = min(tones, key=lambda p: (abs(p - pitch), p))
            idx = int(np.argmin([abs(p - pitch) for p in scale]))
        b0 = pos / STEPS_PER_BEAT
        b1 = b0 + _hold(inst, dur / STEPS_PER_BEAT, tempo)
        out.append((pitch, b0, b1, int(rng.integers(85, 111))))
        pos += dur
    return out


def _voicing(chord: Chord, lo: int, hi: int, center: int) -> list[int]:
    """Closest chord tones to ``center`` inside [lo, hi], one per pitch class."""
    out = []
    for pc in chord.pcs:
        cands = _pitches_in([pc], lo, hi)
        out.append(min(cands, key=lambda p: (abs(p - center), p)))
    return sorted(set(out))


def _chords(rng, inst, chords, bpc, beats, tempo):
    lo, hi = _window(rng, inst.low, inst.high, 14)
    center = (lo + hi) // 2
    if inst.decays:
        strum = rng.choice([1.0, 2.0, 0.5]) if tempo < 140 else rng.choice([1.0, 2.0])
    else:
        strum = float(rng.choice([bpc, bpc / 2])) if bpc >= 2 else float(bpc)
    out = []
    b = 0.0
    while b < beats:
        chord = chords[int(b // bpc) % len(chords)]
        span = min(strum, beats - b, (b // bpc + 1) * bpc - b)
        vel = int(rng.integers(65, 91))
        for p in _voicing(chord, lo, hi, center):
            out.append((p, b, b + _hold(inst, span, tempo), vel))
        b += span
    return out


def _arpeggio(rng, inst, chords, bpc, beats, tempo):
    lo, hi = _window(rng, inst.low, inst.high, 19)
    step = 0.25 if tempo < 110 and rng.random() < 0.5 else 0.5
    shape = rng.choice(["up", "down", "updown"])
    out = []
    b = 0.0
    k = 0
    while b < beats - 1e-9:
        chord = chords[int(b // bpc) % len(chords)]
        tones = _pitches_in(chord.pcs, lo, hi)
        if shape == "down":
            tones = tones[::-1]
        elif shape == "updown" and len(tones) > 2:
            tones = tones + tones[-2:0:-1]
        out.append((tones[k % len(tones)], b, b + step, int(rng.integers(70, 96))))
        b += step
        k += 1
    return out


def _bass(rng, inst, chords, bpc, beats, tempo):
    lo, hi = _window(rng, inst.low, min(inst.high, inst.low + 24), 17)
    style = rng.choice(["whole", "half", "quarters", "eighths"])
    step = {"whole": float(bpc), "half": 2.0, "quarters": 1.0, "eighths": 0.5}[str(style)]
    step = min(step, float(bpc))
    out = []
    b = 0.0
    k = 0
    while b < beats - 1e-9:
        chord = chords[int(b // bpc) % len(chords)]
        roots = _pitches_in([chord.root], lo, hi)
        fifths = _pitches_in([chord.pcs[2]], lo, hi)
        pitch = roots[0]
        if style in ("half", "quarters") and k % 2 == 1 and fifths and rng.random() < 0.6:
            pitch = fifths[0]
        span = min(step, beats - b)
        out.append((pitch, b, b + _hold(inst, span, tempo), int(rng.integers(85, 106))))
        b += span
        k += 1
    return out


def _drums(rng, beats, tempo):
    """A simple groove: kick, snare on 2 and 4, ride or open hi-hat on every 8th (or 16th).

    Each hit lasts one time-keeping step, so the drums are active throughout the groove, as
    AAM annotates them. The time keeper is a ringing cymbal: GM kits' closed hi-hat and kick
    die away within ~0.1 s, which would leave the annotated drums silent between hits.
    """
    hat_step = 1 if tempo <= 110 and rng.random() < 0.5 else 2  # in 16ths
    hat = gm.RIDE if rng.random() < 0.6 else gm.OPEN_HAT
    kicks = [(0, 8), (0, 6, 8), (0, 8, 10), (0, 3, 8, 11), (0, 4, 8, 12)][int(rng.integers(0, 5))]
    snares = (4, 12)
    pedal = rng.random() < 0.4
    fill = rng.random() < 0.3
    bars = beats // 4
    out = []
    for bar in range(bars):
        for s in range(0, 16, hat_step):
            hits = []
            last_bar_fill = fill and bar == bars - 1 and s >= 12
            if s in kicks:
                hits.append((gm.KICK, int(rng.integers(100, 116))))
            if s in snares and not last_bar_fill:
                hits.append((gm.SNARE, int(rng.integers(95, 111))))
            if last_bar_fill:
                hits.append((gm.HIGH_TOM if s < 14 else gm.LOW_TOM, int(rng.integers(90, 111))))
            elif bar == 0 and s == 0 and rng.random() < 0.5:
                hits.append((gm.CRASH, int(rng.integers(90, 106))))
            else:
                hits.append((hat, int(rng.integers(70, 91))))
            if pedal and s in snares:
                hits.append((gm.PEDAL_HAT, int(rng.integers(70, 86))))
            b0 = (bar * 16 + s) / STEPS_PER_BEAT
            for pitch, vel in sorted(set(hits)):
                out.append((pitch, b0, b0 + hat_step / STEPS_PER_BEAT, vel))
    return out


# --------------------------------------------------------------------------- parts


def _cast(
    rng: np.random.Generator, pool: tuple[str, ...], previous: dict[str, str] | None
) -> list[tuple[str, str]]:
    """(role, instrument) pairs in ROLES order; never one instrument twice in a part.

    Sometimes a second melody instrument plays a counter-melody (sixteen instruments share
    the melody role, so without it they would be rare next to the four bass instruments).
    """
    cast: list[tuple[str, str]] = []
    used: set[str] = set()
    for role in ROLES:
        n_inst = 1
        if rng.random() >= ROLE_PROBABILITY[role]:
            continue
        if role == "melody" and rng.random() < COUNTER_MELODY_PROBABILITY:
            n_inst = 2
        for k in range(n_inst):
            cands = [n for n in instruments_for(role, pool) if n not in used]
            if not cands:
                break
            if k == 0 and previous and previous.get(role) in cands and rng.random() < REUSE_PROBABILITY:
                name = previous[role]
            else:
                name = str(rng.choice(cands))
            cast.append((role, name))
            used.add(name)
    if not cast:  # every part plays something
        options = [(r, n) for r in ROLES for n in instruments_for(r, pool)]
        cast.append(options[int(rng.integers(0, len(options)))])
    return cast


def plan_part(
    rng: np.random.Generator,
    mark: str,
    pool: tuple[str, ...],
    bars: int,
    tempo: int,
    key: tuple[int, str],
    previous: dict[str, str] | None,
) -> PartPlan:
    """Compose one part: chords, band and every note (times in beats from the part start)."""
    tonic, mode = key
    prog = PROGRESSIONS[mode][int(rng.integers(0, len(PROGRESSIONS[mode])))]
    chords = tuple(_triad(tonic, mode, d) for d in prog)
    bpc = int(rng.choice([4, 2])) if bars >= 2 else 2
    beats = bars * 4
    cast = _cast(rng, pool, previous)
    notes: dict[str, tuple[tuple[int, float, float, int], ...]] = {}
    for role, name in cast:
        inst = INSTRUMENTS[name]
        if role == "melody":
            ev = _melody(rng, inst, tonic, mode, chords, bpc, beats, tempo)
        elif role == "chords":
            ev = _chords(rng, inst, chords, bpc, beats, tempo)
        elif role == "arpeggio":
            ev = _arpeggio(rng, inst, chords, bpc, beats, tempo)
        elif role == "bass":
            ev = _bass(rng, inst, chords, bpc, beats, tempo)
        else:
            ev = _drums(rng, beats, tempo)
        for p, *_ in ev:
            assert inst.low <= p <= inst.high, f"{name} note {p} outside {inst.low}-{inst.high}"
        notes[name] = tuple(ev)
    return PartPlan(
        mark=mark,
        tempo=tempo,
        key=f"{PITCH_NAMES[tonic]}{mode}",
        bars=bars,
        chords=chords,
        beats_per_chord=bpc,
        cast=tuple(cast),
        notes=notes,
    )


def _form(rng: np.random.Generator, marks: list[str], n: int) -> list[str]:
    """A sequence of ``n`` part marks starting with A, favouring repeats and unused parts."""
    seq = [marks[0]]
    while len(seq) < n:
        unused = [m for m in marks if m not in seq]
        r = rng.random()
        if r < 0.3:
            seq.append(seq[-1])
        elif unused and r < 0.75:
            seq.append(unused[0])
        else:
            seq.append(str(rng.choice(marks)))
    return seq


def compose(
    track_id: str,
    rng: np.random.Generator,
    duration: float,
    pool: tuple[str, ...] = tuple(INSTRUMENTS),
) -> Song:
    """A song of exactly ``duration`` seconds using only instruments from ``pool``."""
    if duration <= 0:
        raise ValueError("duration must be positive")
    pool = tuple(sorted(pool))
    if not pool:
        raise ValueError("the instrument pool is empty")
    n_parts = int(rng.integers(2, 6))
    marks = [chr(ord("A") + k) for k in range(n_parts)]
    bar_choices = [2, 4] if duration < 30 else [4, 8]
    base_tempo = int(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1))
    base_key = (int(rng.integers(0, 12)), str(rng.choice(["maj", "min"])))
    plans: dict[str, PartPlan] = {}
    previous: dict[str, str] | None = None
    for m in marks:
        tempo = base_tempo if rng.random() < 0.6 else int(rng.integers(*TEMPO_RANGE))
        key = base_key
        if rng.random() < 0.4:
            key = ((base_key[0] + int(rng.choice([0, 5, 7, 2, 10]))) % 12, str(rng.choice(["maj", "min"])))
        bars = int(rng.choice(bar_choices))
        plans[m] = plan_part(rng, m, pool, bars, tempo, key, previous)
        previous = {}
        for role, name in plans[m].cast:
            previous.setdefault(role, name)
    # enough occurrences to fill the duration (parts are at least 2 bars at 170 bpm)
    n_occ = int(np.ceil(duration / min(p.seconds for p in plans.values()))) + 1
    form = _form(rng, marks, n_occ)
    end = qtime(duration)
    notes: dict[str, list[Note]] = {}
    segments: list[Segment] = []
    beats: list[Beat] = []
    t0 = 0.0
    bar_count = 0
    for mark in form:
        if qtime(t0) >= end:
            break
        plan = plans[mark]
        spb = 60.0 / plan.tempo
        names = tuple(n for _, n in plan.cast)
        gens = tuple(GENERATORS[r] for r, _ in plan.cast)
        segments.append(Segment(qtime(t0), plan.mark, plan.tempo, plan.key, names, gens))
        for b in range(plan.beats):
            tb = qtime(t0 + b * spb)
            if tb >= end:
                break
            beats.append(Beat(tb, bar_count + b // 4 + 1, b % 4 + 1, plan.chord_at(b).name))
        for name, evs in plan.notes.items():
            for pitch, b0, b1, vel in evs:
                s, e = qtime(t0 + b0 * spb), min(qtime(t0 + b1 * spb), end)
                if e - s >= 0.02:  # drop slivers cut by the song end
                    notes.setdefault(name, []).append(Note(pitch, s, e, vel))
        bar_count += plan.bars
        t0 += plan.seconds
    segments.append(Segment(end, "end", 0, "", (), ()))
    return Song(
        track_id=track_id,
        duration=end,
        notes={k: tuple(sorted(v, key=lambda n: (n.start, n.pitch))) for k, v in sorted(notes.items())},
        segments=tuple(segments),
        beats=tuple(beats),
    )
