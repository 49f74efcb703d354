"""``iad-tf synth`` as a library: N synthetic songs in AAM's layout, parallel over tracks.

Track ``k`` (1-based) is named ``s%04d`` (``s0001``: never an AAM id) and draws every random
choice from ``SeedSequence([seed, k])``, so the corpus is the same bytes for a seed whatever
the number of workers, and ``--tracks 20`` extends ``--tracks 10`` with the same first ten.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.config import AAM_CLASSES, check_finite
from iad_tf.synth import DEFAULT_PREFIX, PREFIX_PATTERN
from iad_tf.synth.bank_songs import (
    DEFAULT_MAX_SHIFT,
    GENERATOR_NAME,
    SOUNDFONT_VOICES,
    bank_dir,
    bank_generation,
    check_voices,
    render_from_bank,
    write_planned_sources,
    write_provenance,
)
from iad_tf.synth.composer import compose
from iad_tf.synth.generation import claim
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
from iad_tf.synth.writer import mix_path, write_json, write_song

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
    voices: str = SOUNDFONT_VOICES  # or "bank:DIR" (iad_tf.synth.bank_songs)
    max_shift: int = DEFAULT_MAX_SHIFT  # bank voices: largest pitch shift of a recorded note
    holdout_folds: int = 0  # bank voices: track k draws no notes from fold (k-1) mod K
    #: Track ids are ``<prefix>0001``, ...: distinct prefixes let generations of the same
    #: kind share one build (``build-records`` refuses a track id found in two roots).
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_finite(self)
        if self.tracks < 1:
            raise ValueError("tracks must be at least 1")
        if not re.fullmatch(PREFIX_PATTERN, self.prefix):
            raise ValueError(f"track id prefix must be 1-8 lowercase letters, got {self.prefix!r}")
        if self.duration < 1.0:
            raise ValueError("duration must be at least 1 second")
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample rate must be one of {SAMPLE_RATES}")
        unknown = set(self.instruments) - set(AAM_CLASSES)
        if unknown or not self.instruments:
            raise ValueError(f"bad instrument selection: {sorted(unknown) or 'empty'}")
        check_voices(self.voices, self.max_shift, self.holdout_folds)

    def soundfont_path(self) -> Path:
        return Path(self.soundfont) if self.soundfont else default_soundfont()


def track_id(k: int, prefix: str = DEFAULT_PREFIX) -> str:
    """Id of synthetic track ``k`` (1-based): ``s0001`` (``prefix`` + 4 digits)."""
    return f"{prefix}{k:04d}"


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


def make_song(cfg: SynthConfig, k: int, pool: tuple[str, ...] | None = None) -> tuple[Song, dict[str, float]]:
    """Compose track ``k`` (from ``pool``, default the configured instruments) and choose its
    stem levels (no audio)."""
    rng = track_rng(cfg.seed, k)
    song = compose(track_id(k, cfg.prefix), rng, cfg.duration, pool or cfg.instruments)
    return song, stem_levels(song, rng)


def synth_track(task: tuple[SynthConfig, int, str]) -> dict[str, Any]:
    """Compose, render and write track ``k`` under ``out``; returns a summary dict. A track
    whose mix exists (written last) was finished by an earlier run of this generation
    (:func:`iad_tf.synth.generation.claim`): it is composed again for its summary, not
    rendered (``kept``)."""
    cfg, k, out = task
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if bank_dir(cfg.voices):  # rendered again on a rerun: its sources come from the render
        song, stems, mix, extra = render_from_bank(cfg, k, make_song)
        kept = False
        write_song(out, song, stems, mix, cfg.sample_rate)
    else:
        song, levels = make_song(cfg, k)
        kept = mix_path(out, song.track_id).is_file()
        if not kept:
            stems, mix = render_song(song, cfg.sample_rate, cfg.soundfont_path(), levels)
            write_song(out, song, stems, mix, cfg.sample_rate)
    return {
        "track_id": song.track_id,
        "duration_s": song.duration,
        "instruments": list(song.instruments),
        "parts": [s.mark for s in song.segments[:-1]],
        **extra,
        "elapsed_s": time.perf_counter() - t0,
        "kept": kept,
    }


def synthesize(out: str | Path, cfg: SynthConfig, workers: int = 1) -> list[dict[str, Any]]:
    """Write ``cfg.tracks`` songs under ``out`` (AAM layout) plus ``synth.json``.

    Refuses (``GenerationError``) a folder holding another generation's files.
    Returns the per-track summaries (with wall time ``elapsed_s`` and ``kept`` (finished by an
    earlier run), not saved so the output stays byte-identical for a seed).
    """
    if not bank_dir(cfg.voices):
        check_soundfont(cfg.soundfont_path())
    out = Path(out)
    config = dataclasses.asdict(cfg)
    config["instruments"] = list(cfg.instruments)
    config["soundfont"] = "" if bank_dir(cfg.voices) else cfg.soundfont_path().name
    config.update(bank_generation(cfg))
    generator = GENERATOR_NAME if bank_dir(cfg.voices) else "synth"
    n = claim(out, generator, config, cfg.seed, added_defaults={"prefix": DEFAULT_PREFIX})["config"]["tracks"]  # a shorter rerun keeps them all
    config["tracks"] = n
    write_planned_sources(out, cfg, [track_id(k, cfg.prefix) for k in range(1, n + 1)])
    tasks = [(cfg, k, str(out)) for k in range(1, n + 1)]
    results = run_tasks(synth_track, tasks, workers, desc="synth")
    write_provenance(out, cfg, results)
    skip = ("track_id", "elapsed_s", "kept", "rendered")
    write_json(
        out / MANIFEST,
        {
            "config": config,
            "tracks": {r["track_id"]: {k: v for k, v in r.items() if k not in skip} for r in results},
        },
    )
    return results
