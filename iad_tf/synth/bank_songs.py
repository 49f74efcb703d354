"""``iad-tf synth --voices bank:DIR``: the composer's songs played from a note bank.

Track ``k`` composes with the instruments the bank holds (from its allowed songs), fits its
pitches to what the bank can play (:func:`iad_tf.synth.bank_voice.fit_song`) and renders each
stem from bank cuts. With ``holdout_folds = K`` track ``k`` draws only from songs outside fold
``(k - 1) mod K`` of ``folds_of_songs(bank songs, K)``: the folds ``iad-tf cv --folds K``
forms over the same real songs, so every generated track trains in at least one fold.

Provenance written at the output root: ``sources.json`` ({track_id: [every song whose cuts
the track used]}) and ``generator.json`` ({"generator": "synth-bank", "config", "seed",
"bank": the bank's fingerprint, "version"}).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.evaluation.folds import folds_of_songs
from iad_tf.synth.bank_index import Bank, load_bank
from iad_tf.synth.bank_voice import BankVoice, as_rendered, fit_song
from iad_tf.synth.render import render_song
from iad_tf.synth.score import Song
from iad_tf.synth.writer import write_json

SOUNDFONT_VOICES = "soundfont"
BANK_PREFIX = "bank:"
#: Provisional: the final default is chosen by cross-validation (the lead's recipe runs).
DEFAULT_MAX_SHIFT = 3
MAX_SHIFT_LIMIT = 12
SOURCES_FILE = "sources.json"
GENERATOR_NAME = "synth-bank"  # iad_tf.synth.generation.GENERATOR_NAMES


def bank_dir(voices: str) -> str | None:
    """``'bank:DIR'`` -> ``'DIR'``; ``'soundfont'`` -> None."""
    return voices[len(BANK_PREFIX) :] if voices.startswith(BANK_PREFIX) else None


def check_voices(voices: str, max_shift: int, holdout_folds: int) -> None:
    """Raise ValueError (one line) for a bad voices/shift/folds combination."""
    if voices != SOUNDFONT_VOICES and not (bank_dir(voices) or "").strip():
        raise ValueError(f"--voices must be '{SOUNDFONT_VOICES}' or 'bank:DIR', got {voices!r}")
    if not 0 <= max_shift <= MAX_SHIFT_LIMIT:
        raise ValueError(f"--max-shift must be 0-{MAX_SHIFT_LIMIT} semitones, got {max_shift}")
    if holdout_folds == 1 or holdout_folds < 0:
        raise ValueError(f"--holdout-folds must be 0 (off) or at least 2, got {holdout_folds}")
    if holdout_folds and not bank_dir(voices):
        raise ValueError("--holdout-folds needs --voices bank:DIR (folds are over the bank's songs)")


def allowed_songs(bank: Bank, holdout_folds: int, k: int) -> tuple[frozenset[str], int | None, list[str]]:
    """(songs track ``k`` may use, its held-out fold or None, that fold's songs)."""
    songs = bank.songs
    if not holdout_folds:
        return frozenset(songs), None, []
    folds = folds_of_songs(songs, holdout_folds)
    fold = (k - 1) % holdout_folds
    return frozenset(songs) - set(folds[fold]), fold, folds[fold]


def voice_rng(seed: int, k: int) -> np.random.Generator:
    """Cut choices of track ``k``: independent of its composition's generator."""
    return np.random.default_rng(np.random.SeedSequence([seed % (1 << 63), k, 1]))


def render_from_bank(
    cfg: Any, k: int, make_song: Callable[..., tuple[Song, dict[str, float]]]
) -> tuple[Song, dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """Compose and render track ``k`` of a SynthConfig ``cfg`` from its bank.

    Returns (song as annotated, stems, mix, extra) with extra = {"sources", "holdout_fold",
    "held_out_songs", "bank_stats" (counts of chord slices, single notes, shifted cuts, looped
    cuts, notes cut short), "rendered" ({instrument: [(start, end)] where a cut sounds})}.
    """
    bank = load_bank(bank_dir(cfg.voices))
    songs, fold, held = allowed_songs(bank, cfg.holdout_folds, k)
    pool = tuple(sorted(set(cfg.instruments) & set(bank.instruments(songs))))
    if not pool:
        raise ValueError(f"{bank.root}: none of the chosen instruments has cuts from songs {sorted(songs)}")
    song, levels = make_song(cfg, k, pool)
    song = fit_song(song, bank, songs, cfg.max_shift)
    voice = BankVoice(bank, songs, cfg.max_shift, voice_rng(cfg.seed, k))
    stems, mix = render_song(song, cfg.sample_rate, None, levels, stem_fn=voice.render)
    song = as_rendered(song, voice)
    extra = {"sources": sorted(voice.used), "holdout_fold": fold, "held_out_songs": held,
             "bank_stats": dict(sorted(voice.stats.items())), "rendered": voice.rendered}
    return song, stems, mix, extra


def write_planned_sources(out: Path, cfg: Any, track_ids: Sequence[str]) -> None:
    """Before any track is written: sources.json listing for track ``track_ids[k - 1]`` every
    song it may use
    (a superset of what it will use), so a run that dies never leaves a generated track that
    looks like a real song; :func:`write_provenance` narrows it to the songs used."""
    root = bank_dir(cfg.voices)
    if not root:
        return
    bank = load_bank(root)
    write_json(out / SOURCES_FILE, {
        tid: sorted(allowed_songs(bank, cfg.holdout_folds, k)[0]) for k, tid in enumerate(track_ids, start=1)
    })


def bank_generation(cfg: Any) -> dict[str, Any]:
    """The bank settings that decide a bank-voiced corpus's bytes, for its generator.json
    (:func:`iad_tf.synth.generation.claim`): bank fingerprint and songs, holdout folds;
    empty for soundfont voices."""
    root = bank_dir(cfg.voices)
    if not root:
        return {}
    bank = load_bank(root)
    holdout = None
    if cfg.holdout_folds:
        holdout = {"folds": cfg.holdout_folds, "fold_songs": folds_of_songs(bank.songs, cfg.holdout_folds)}
    return {"bank": bank.fingerprint, "bank_songs": bank.songs, "holdout": holdout}


def write_provenance(out: Path, cfg: Any, results: Sequence[dict[str, Any]]) -> None:
    """sources.json of a bank-voiced corpus: the songs each track used (nothing for
    soundfont voices)."""
    if bank_dir(cfg.voices):
        write_json(out / SOURCES_FILE, {r["track_id"]: r["sources"] for r in results})
