"""``iad-tf synth`` as a library: N synthetic songs in AAM's layout, parallel over tracks.

Track ``k`` (1-based) is named ``s%04d`` (``s0001``: never an AAM id) and draws every random
choice from ``SeedSequence([seed, k])``, so the corpus is the same bytes for a seed whatever
the number of workers, and ``--tracks 20`` extends ``--tracks 10`` with the same first ten.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.config import AAM_CLASSES, check_finite
from iad_tf.synth.composer import compose
from iad_tf.synth.instruments import GENERATORS
from iad_tf.synth.parallel import run_tasks
from iad_tf.synth.render import (
    DEFAULT_SAMPLE_RATE,
    SAMPLE_RATES,
    check_soundfont,
    default_soundfont,
    render_song,
)
from iad_tf.synth.score import Song
from iad_tf.synth.writer import write_json, write_song

MANIFEST = "synth.json"
#: Stem RMS level (dBFS, before the common peak normalisation) by the first role played.
ROLE_LEVEL_DB: dict[str, float] = {
    "melody": -18.0, "chords": -22.0, "arpeggio": -22.0, "bass": -20.0, "drums": -19.0,
}
LEVEL_JITTER_DB = 2.0
_ROLE_OF_GENERATOR = {g: r for r, g in GENERATORS.items()}


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the generated corpus (saved as ``synth.json``)."""

    tracks: int = 10
    seed: int = 0
    duration: float = 60.0
    sample_rate: int = DEFAULT_SAMPLE_RATE
    soundfont: str = ""  # empty: pretty_midi's TimGM6mb.sf2
    instruments: tuple[str, ...] = AAM_CLASSES

    def __post_init__(self) -> None:
        check_finite(self)
        if self.tracks < 1:
            raise ValueError("tracks must be at least 1")
        if self.duration < 1.0:
            raise ValueError("duration must be at least 1 second")
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample rate must be one of {SAMPLE_RATES}")
        unknown = set(self.instruments) - set(AAM_CLASSES)
        if unknown or not self.instruments:
            raise ValueError(f"bad instrument selection: {sorted(unknown) or 'empty'}")

    def soundfont_path(self) -> Path:
        return Path(self.soundfont) if self.soundfont else default_soundfont()


def track_id(k: int) -> str:
    """Id of synthetic track ``k`` (1-based): ``s0001``."""
    return f"s{k:04d}"


def track_rng(seed: int, k: int) -> np.random.Generator:
    """The generator of track ``k``: independent of every other track."""
    return np.random.default_rng(np.random.SeedSequence([seed % (1 << 63), k]))


def stem_levels(song: Song, rng: np.random.Generator) -> dict[str, float]:
    """Per-instrument RMS target (dBFS): role level plus a random offset."""
    first_role: dict[str, str] = {}
    for seg in song.segments:
        for name, gen in zip(seg.instruments, seg.generators, strict=True):
            first_role.setdefault(name, _ROLE_OF_GENERATOR[gen])
    return {
        name: ROLE_LEVEL_DB[first_role.get(name, "melody")]
        + float(rng.uniform(-LEVEL_JITTER_DB, LEVEL_JITTER_DB))
        for name in song.instruments
    }


def make_song(cfg: SynthConfig, k: int) -> tuple[Song, dict[str, float]]:
    """Compose track ``k`` and choose its stem levels (no audio)."""
    rng = track_rng(cfg.seed, k)
    song = compose(track_id(k), rng, cfg.duration, cfg.instruments)
    return song, stem_levels(song, rng)


def synth_track(task: tuple[SynthConfig, int, str]) -> dict[str, Any]:
    """Compose, render and write track ``k`` under ``out``; returns a summary dict."""
    cfg, k, out = task
    t0 = time.perf_counter()
    song, levels = make_song(cfg, k)
    stems, mix = render_song(song, cfg.sample_rate, cfg.soundfont_path(), levels)
    write_song(out, song, stems, mix, cfg.sample_rate)
    return {
        "track_id": song.track_id,
        "duration_s": song.duration,
        "instruments": list(song.instruments),
        "parts": [s.mark for s in song.segments[:-1]],
        "elapsed_s": time.perf_counter() - t0,
    }


def synthesize(out: str | Path, cfg: SynthConfig, workers: int = 1) -> list[dict[str, Any]]:
    """Write ``cfg.tracks`` songs under ``out`` (AAM layout) plus ``synth.json``.

    Returns the per-track summaries (with wall time ``elapsed_s``, which is not saved so the
    output stays byte-identical for a seed).
    """
    check_soundfont(cfg.soundfont_path())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(cfg, k, str(out)) for k in range(1, cfg.tracks + 1)]
    results = run_tasks(synth_track, tasks, workers, desc="synth")
    config = dataclasses.asdict(cfg)
    config["instruments"] = list(cfg.instruments)
    config["soundfont"] = cfg.soundfont_path().name
    write_json(
        out / MANIFEST,
        {
            "config": config,
            "tracks": {r["track_id"]: {k: v for k, v in r.items() if k not in ("track_id", "elapsed_s")} for r in results},
        },
    )
    return results
