"""A tiny AAM-format folder for tests: tone 'songs' whose annotations are exact.

Each instrument is a sine at its own pitch, switched on and off at event times; the onsets
ARFF lists the sounding note while it plays and '[]' while silent, as AAM writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from iad_tf.aam.arff import Beat, OnsetTable, Segment, write_beatinfo, write_onsets, write_segments
from iad_tf.aam.roles import GENERATORS
from iad_tf.config import AAM_CLASSES

SR = 44100


def _write_annotations(
    ann: Path, tid: str, times: np.ndarray, rows: list[tuple], names: tuple[str, ...],
    generators: tuple[str, ...], end: float, seconds: float,
) -> None:
    """The three ARFF files of a tiny song: its onsets, one part 'A' until ``end``, beats."""
    write_onsets(ann / f"{tid}_onsets.arff",
                 OnsetTable(AAM_CLASSES, times, rows, relation=f"Onset events in {tid}"))
    write_segments(
        ann / f"{tid}_segments.arff",
        [Segment(0.0, "A", 120, "Cmaj", names, generators), Segment(end, "end", 0, "", (), ())],
        relation=f"Segment information of {tid}",
    )
    write_beatinfo(
        ann / f"{tid}_beatinfo.arff",
        [Beat(float(b) * 0.5, b // 4 + 1, b % 4 + 1, "Cmaj") for b in range(int(seconds * 2))],
        relation=f"Beat information of {tid}",
    )


def make_tiny_aam(
    root: Path,
    n_tracks: int = 4,
    seconds: float = 6.0,
    seed: int = 0,
    instruments_per_track: int = 3,
    fmt: str = "flac",
    layout: str = "aam",
) -> Path:
    """Write ``n_tracks`` tracks under ``root`` and return it.

    ``layout="aam"`` puts mixes in ``audio-mixes-<fmt>/`` as the dataset ships;
    ``layout="flat"`` puts them beside the annotations.
    """
    rng = np.random.default_rng(seed)
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    mix_dir = root / f"audio-mixes-{fmt}" if layout == "aam" else ann
    mix_dir.mkdir(parents=True, exist_ok=True)
    n = int(seconds * SR)
    for k in range(n_tracks):
        tid = f"{k + 1:04d}"
        chosen = sorted(rng.choice(len(AAM_CLASSES), size=instruments_per_track, replace=False))
        step = 0.25  # seconds between events
        times = np.round(np.arange(0.0, seconds - 0.5, step), 6)
        on = rng.random((len(times), len(chosen))) < 0.6  # (events, chosen)
        on[-1] = False  # everything ends silent
        y = np.zeros(n, dtype=np.float64)
        t = np.arange(n) / SR
        rows = []
        for e, t0 in enumerate(times):
            row: list[tuple] = [()] * len(AAM_CLASSES)
            for j, c in enumerate(chosen):
                if on[e, j]:
                    pitch = 48 + 7 * j + c % 5
                    starts = e == 0 or not on[e - 1, j]
                    row[c] = ((pitch, starts),)
                    t1 = times[e + 1] if e + 1 < len(times) else seconds
                    seg = (t >= t0) & (t < t1)
                    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
                    y[seg] += 0.2 * np.sin(2 * np.pi * f0 * t[seg])
            rows.append(tuple(row))
        names = tuple(AAM_CLASSES[c] for c in chosen)
        roles = tuple(GENERATORS.values())  # the j-th instrument plays the j-th role (of 5)
        _write_annotations(ann, tid, times, rows, names, tuple(roles[j % len(roles)] for j in range(len(names))),
                           seconds, seconds)
        sf.write(mix_dir / f"{tid}_mix.{fmt}", y.astype(np.float32), SR)
    return root


#: (instrument, role generator, MIDI pitch) pools of the tiny stem songs: every song takes one
#: bass, the drums, one or two chord instruments and one melody instrument.
_BASSES = (("DoubleBassArco", 40), ("DoubleBassPizz", 43), ("ElectricBass", 45), ("OrganBass", 38))
_CHORDS = (("Piano", 60), ("ElectricPiano", 62), ("AcousticGuitar", 57), ("ElectricGuitarClean", 64))
_MELODY = (("Flute", 76), ("Violin", 72), ("Trumpet", 70), ("AltoSax", 67))
_GEN = {"bass": "BassLine", "drums": "RhythmSimpleGrooves", "chords": "ChordPadsRanged", "melody": "MelodyBow"}


def make_tiny_stem_aam(root: Path, n_songs: int = 6, seconds: float = 6.0, seed: int = 0, sr: int = SR) -> Path:
    """``n_songs`` songs with stems (``audio-multitracks-flac/``), a mix = their sum, and exact
    annotations: each pitched instrument a sine at its one pitch, drums noise bursts, switched
    on and off on a 0.25 s grid; segments name each instrument's AAM role generator."""
    rng = np.random.default_rng(seed)
    ann = root / "annotations"
    stems_dir, mix_dir = root / "audio-multitracks-flac", root / "audio-mixes-flac"
    for d in (ann, stems_dir, mix_dir):
        d.mkdir(parents=True, exist_ok=True)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    step = 0.25
    times = np.round(np.arange(0.0, seconds - 0.5 + 1e-9, step), 6)
    for k in range(n_songs):
        tid = f"{k + 1:04d}"
        parts = [("bass", *_BASSES[k % 4]), ("drums", "Drums", 38),
                 ("chords", *_CHORDS[k % 4]), ("melody", *_MELODY[(k // 2) % 4])]
        if k % 3 == 0:
            parts.append(("chords", *_CHORDS[(k + 1) % 4]))
        rows: list[list[tuple]] = [[()] * len(AAM_CLASSES) for _ in times]
        mix = np.zeros(n, dtype=np.float64)
        for role, name, pitch in parts:
            on = rng.random(len(times)) < 0.7  # (events,)
            on[0], on[-1] = True, False
            c = AAM_CLASSES.index(name)
            y = np.zeros(n, dtype=np.float64)
            for e, t0 in enumerate(times):
                if not on[e]:
                    continue
                rows[e][c] = ((pitch, e == 0 or not on[e - 1]),)
                t1 = times[e + 1] if e + 1 < len(times) else seconds
                seg = (t >= t0) & (t < t1)
                if role == "drums":
                    y[seg] = 0.1 * rng.standard_normal(int(seg.sum()))
                else:
                    y[seg] = 0.15 * np.sin(2 * np.pi * 440.0 * 2 ** ((pitch - 69) / 12) * t[seg])
            sf.write(stems_dir / f"{tid}_{name}.flac", y.astype(np.float32), sr)
            mix += y
        _write_annotations(ann, tid, times, [tuple(r) for r in rows], tuple(p[1] for p in parts),
                           tuple(_GEN[p[0]] for p in parts), float(times[-1]), seconds)
        sf.write(mix_dir / f"{tid}_mix.flac", mix.astype(np.float32), sr)
    return root
