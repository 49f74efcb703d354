"""Song-level folds for cross-validation. TF-free.

A *song* is a source id (``manifest["tracks"][id]["source_id"]``): an AAM track and every
remix made from its stems share it. Folds are formed over the songs that have a real track
(track id == source id), so remixes always follow their source: a fold's held-out songs are
predicted from their real mixes, their remixes are left out of that fold entirely (their stems
are the held-out audio), and every other track trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iad_tf.data.splits import hash_unit


def generated_roots(manifest: Mapping[str, Any]) -> list[str]:
    """The build's input roots made by a generator (``manifest["generators"]``: root ->
    generator.json, ``None`` for a real AAM root), without trailing slashes."""
    return [str(root).rstrip("/") for root, gen in (manifest.get("generators") or {}).items() if gen]


def real_songs(manifest: Mapping[str, Any]) -> list[str]:
    """Source ids that have a real track (track id == source id, audio not under a generated
    root: a song generated from no real song, e.g. ``synth`` with a soundfont, is its own
    source but never a held-out song; it trains in every fold), sorted."""
    tracks = manifest.get("tracks", {})
    generated = tuple(f"{root}/" for root in generated_roots(manifest))
    return sorted(
        t for t, meta in tracks.items()
        if meta.get("source_id", t) == t and not (generated and str(meta.get("audio", "")).startswith(generated))
    )


def song_folds(manifest: Mapping[str, Any], k: int) -> list[list[str]]:
    """``k`` folds of the manifest's real songs (:func:`folds_of_songs`)."""
    return folds_of_songs(real_songs(manifest), k)


def folds_of_songs(songs: list[str], k: int) -> list[list[str]]:
    """``k`` folds of ``songs``: ordered by a stable hash of the song id, dealt round-robin.

    Deterministic for a given set of songs; fold sizes differ by at most one. The data
    engine uses it too, so data generated "for fold i" (from the other folds' songs only)
    matches the folds ``iad-tf cv`` forms over the same songs.
    """
    songs = sorted(set(songs))
    if k < 2:
        raise ValueError(f"--folds must be at least 2, got {k}")
    if len(songs) < k:
        raise ValueError(
            f"{len(songs)} real songs cannot fill {k} folds (each fold holds out at least one)"
        )
    ordered = sorted(songs, key=lambda s: (hash_unit(s), s))
    return [sorted(ordered[i::k]) for i in range(k)]


def fold_split_map(manifest: Mapping[str, Any], held_out: list[str]) -> dict[str, str | None]:
    """{track_id: split} for one fold: held-out real songs -> ``val``; any other track holding
    a held-out song's audio (a remix, a cross-song mix, a song rendered from its notes: any of
    its ``sources``) -> None (left out); every other track (other real songs, their remixes,
    songs generated from no real song) -> ``train``."""
    out: dict[str, str | None] = {}
    held = set(held_out)
    for tid, meta in manifest.get("tracks", {}).items():
        source = meta.get("source_id", tid)
        sources = set(meta.get("sources") or [source])
        if sources & held:
            out[tid] = "val" if tid == source else None
        else:
            out[tid] = "train"
    return out
