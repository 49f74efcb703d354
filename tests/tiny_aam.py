"""A tiny AAM-format folder for tests: tone 'songs' whose annotations are exact.

Each instrument is a sine at its own pitch, switched on and off at event times; the onsets
ARFF lists the sounding note while it plays and '[]' while silent, as AAM writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from iad_tf.aam.arff import Beat, OnsetTable, Segment, write_beatinfo, write_onsets, write_segments
from iad_tf.config import AAM_CLASSES

SR = 44100


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
        write_onsets(
            ann / f"{tid}_onsets.arff",
            OnsetTable(AAM_CLASSES, times, rows, relation=f"Onset events in {tid}"),
        )
        names = tuple(AAM_CLASSES[c] for c in chosen)
        write_segments(
            ann / f"{tid}_segments.arff",
            [Segment(0.0, "A", 120, "Cmaj", names, ("Melody",) * len(names)),
             Segment(seconds, "end", 0, "", (), ())],
            relation=f"Segment information of {tid}",
        )
        write_beatinfo(
            ann / f"{tid}_beatinfo.arff",
            [Beat(float(b) * 0.5, b // 4 + 1, b % 4 + 1, "Cmaj") for b in range(int(seconds * 2))],
            relation=f"Beat information of {tid}",
        )
        sf.write(mix_dir / f"{tid}_mix.{fmt}", y.astype(np.float32), SR)
    return root
