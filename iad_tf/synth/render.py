"""Render a song's stems with a General MIDI soundfont (tinysoundfont) and mix them.

Sample rate: 44.1 kHz by default, AAM's own rate, so synthetic and real tracks take the same
path through build-records (decode, resample to the feature rate). 22.05 kHz (the feature
rate) renders about twice as fast and skips the resampling; both are accepted.

Each stem is rendered alone on a fresh synthesizer (so stems are independent and
deterministic), summed to mono, then gated by its annotation: the gain is 1 wherever the
instrument has a sounding note and falls to 0 over ``RELEASE_S`` after its last note ends.
Soundfont release tails would otherwise ring on where the annotation says silent. Stems are
levelled (RMS over their active samples), the mix is their sum, and stems and mix share one
scale factor that puts the loudest of them at ``PEAK_DBFS``: the mix never clips and still
equals the sum of the written stems.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from iad_tf.synth.instruments import INSTRUMENTS
from iad_tf.synth.score import Note, Song

SAMPLE_RATES: tuple[int, ...] = (44100, 22050)
DEFAULT_SAMPLE_RATE = 44100
RELEASE_S = 0.02  # gate fade after an instrument's last sounding note
PEAK_DBFS = -1.0
CONTROL_BLOCK = 128  # samples between pitch-wheel updates for vibrato and slides
SLIDE_S = 0.08  # glide time into a note for instruments with ``slide``
VIBRATO_ONSET_S = 0.2  # vibrato depth ramps up over this time after a note starts
PITCH_BEND_RANGE = 2.0  # semitones, the GM default


class SynthUnavailable(RuntimeError):
    """tinysoundfont is not installed."""


def require_tinysoundfont():  # noqa: ANN201 - returns the module
    """Import tinysoundfont or raise :class:`SynthUnavailable` saying how to install it."""
    try:
        import tinysoundfont
    except ImportError as exc:
        raise SynthUnavailable(
            "rendering needs tinysoundfont: pip install --no-deps tinysoundfont "
            "(--no-deps: its pyaudio dependency is only for live playback)"
        ) from exc
    return tinysoundfont


def default_soundfont() -> Path:
    """The small GM soundfont shipped inside pretty_midi (TimGM6mb.sf2)."""
    import pretty_midi

    return Path(os.path.dirname(pretty_midi.__file__)) / "TimGM6mb.sf2"


@functools.lru_cache(maxsize=4)
def soundfont_bytes(path: str) -> bytes:
    """The soundfont file's bytes (read once per process)."""
    return Path(path).read_bytes()


def check_soundfont(path: str | Path) -> Path:
    """Load ``path`` once to fail early with a clear message; returns the path."""
    tsf = require_tinysoundfont()
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such soundfont file")
    try:
        synth = tsf.Synth(samplerate=DEFAULT_SAMPLE_RATE)
        sid = synth.sfload(soundfont_bytes(str(path)))
        synth.program_select(0, sid, 0, 0)
    except Exception as exc:  # noqa: BLE001 - any loader error is a bad file
        raise ValueError(f"{path}: cannot load as a soundfont ({exc})") from exc
    return path


def gate(intervals: list[tuple[float, float]], n_samples: int, sr: int) -> np.ndarray:
    """float32 (n_samples,): 1 inside the intervals, a cosine fade of RELEASE_S after each."""
    g = np.zeros(n_samples, dtype=np.float32)
    n_rel = max(1, int(round(RELEASE_S * sr)))
    fade = (0.5 + 0.5 * np.cos(np.pi * np.arange(1, n_rel + 1) / n_rel)).astype(np.float32)
    for a, b in intervals:
        i0, i1 = int(round(a * sr)), min(int(round(b * sr)), n_samples)
        g[i0:i1] = 1.0
        tail = g[i1 : i1 + n_rel]
        np.maximum(tail, fade[: len(tail)], out=tail)
    return g


def _bend_curve(notes: tuple[Note, ...], times: np.ndarray, depth: float, rate: float, slide: float) -> np.ndarray:
    """Pitch offset in semitones at ``times`` (blocks,) for a monophonic line."""
    starts = np.array([n.start for n in notes])
    idx = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(notes) - 1)
    since = np.maximum(times - starts[idx], 0.0)
    offset = depth * np.sin(2 * np.pi * rate * since) * np.minimum(since / VIBRATO_ONSET_S, 1.0)
    if slide:
        offset -= slide * np.maximum(1.0 - since / SLIDE_S, 0.0)
    return offset


def render_stem(name: str, notes: tuple[Note, ...], n_samples: int, sr: int, soundfont: str | Path) -> np.ndarray:
    """One instrument's notes -> mono float32 (n_samples,), not yet gated or levelled."""
    tsf = require_tinysoundfont()
    inst = INSTRUMENTS[name]
    synth = tsf.Synth(samplerate=sr)
    sid = synth.sfload(soundfont_bytes(str(soundfont)))
    ch = inst.channel
    synth.program_select(ch, sid, inst.bank, inst.program, is_drums=inst.is_drums)
    # (sample, order, pitch, velocity): note-offs (order 0) before note-ons at the same sample
    events = sorted(
        [(int(round(n.end * sr)), 0, n.pitch, 0) for n in notes]
        + [(int(round(n.start * sr)), 1, n.pitch, n.velocity) for n in notes]
    )
    modulated = bool(inst.vibrato_semitones or inst.slide)
    cuts = {e[0] for e in events if e[0] < n_samples}
    if modulated:
        cuts |= set(range(0, n_samples, CONTROL_BLOCK))
    cuts = sorted(cuts | {n_samples})
    bends = None
    if modulated and notes:
        times = np.array(cuts[:-1], dtype=np.float64) / sr
        offs = _bend_curve(notes, times, inst.vibrato_semitones, inst.vibrato_hz, inst.slide)
        bends = np.clip(np.round(8192 + offs / PITCH_BEND_RANGE * 8192), 0, 16383).astype(int)
    buf = bytearray(n_samples * 2 * 4)  # stereo float32
    view = memoryview(buf)
    k = 0
    pos = 0
    for j, cut in enumerate(cuts):
        if cut > pos:
            synth.generate(cut - pos, buffer=view[pos * 8 : cut * 8])
            pos = cut
        while k < len(events) and events[k][0] <= pos:
            _, order, pitch, vel = events[k]
            if order == 0:
                synth.noteoff(ch, pitch)
            else:
                synth.noteon(ch, pitch, vel)
            k += 1
        if bends is not None and j < len(bends):
            synth.pitchbend(ch, int(bends[j]))
    stereo = np.frombuffer(buf, dtype=np.float32).reshape(n_samples, 2)
    return stereo.mean(axis=1)


def level_db(y: np.ndarray, mask: np.ndarray) -> float:
    """RMS in dBFS of ``y`` over the samples where ``mask`` is set (-inf if none)."""
    sel = y[mask]
    if sel.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(sel, dtype=np.float64))))
    return 20 * np.log10(max(rms, 1e-12))


#: Renders one instrument's notes: (name, notes, n_samples, sr) -> float32 (n_samples,).
StemRenderer = Callable[[str, tuple[Note, ...], int, int], np.ndarray]


def render_song(
    song: Song,
    sr: int,
    soundfont: str | Path | None,
    levels_db: Mapping[str, float],
    stem_fn: StemRenderer | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All stems and their mix: ({name: float32 (samples,)}, float32 (samples,)).

    ``levels_db[name]`` is the RMS level (dBFS, before the common peak normalisation) each
    stem is brought to over its active samples. ``stem_fn`` renders a stem (e.g. from a note
    bank); by default the GM ``soundfont`` plays it.
    """
    if stem_fn is None:
        stem_fn = functools.partial(render_stem, soundfont=soundfont)
    n = int(np.ceil(song.duration * sr))
    stems: dict[str, np.ndarray] = {}
    for name in song.instruments:
        g = gate(song.intervals(name), n, sr)
        y = stem_fn(name, song.notes[name], n, sr) * g
        cur = level_db(y, g >= 1.0)
        if np.isfinite(cur) and cur > -120:
            y = y * np.float32(10 ** ((levels_db[name] - cur) / 20))
        stems[name] = y.astype(np.float32)
    mix = np.sum(list(stems.values()), axis=0, dtype=np.float64) if stems else np.zeros(n)
    peak = max([float(np.max(np.abs(mix)))] + [float(np.max(np.abs(s))) for s in stems.values()])
    scale = 10 ** (PEAK_DBFS / 20) / peak if peak > 0 else 1.0
    stems = {k: (v * scale).astype(np.float32) for k, v in stems.items()}
    mix = np.sum(list(stems.values()), axis=0, dtype=np.float64) if stems else np.zeros(n)
    return stems, mix.astype(np.float32)
