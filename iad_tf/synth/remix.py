"""``iad-tf remix`` as a library: new mixes of real AAM songs from their stems.

For every source track with stems (``<root>/audio-multitracks-{flac,wav,mp3,ogg}/
<id>_<Instrument>.<ext>``) and annotations, ``per_track`` remixes ``<id>r01``, ``<id>r02``, ...:

* a random subset of the instruments is dropped: between 1 and n-1 of the n stems, so at
  least one instrument always plays (a one-stem song is only re-gained);
* every kept stem gets a random gain, uniform in [min_gain_db, max_gain_db]; then all gains
  shift by one common amount that puts the mix peak at -1 dBFS (AAM's own mixes are
  peak-normalised). The recorded gains are the ones applied, so
  mix == sum(10**(gain/20) * stem) up to 16-bit quantisation;
* the annotations are the source's with the dropped instruments silent: their onsets cells
  become ``[]`` and they leave the segments' instrument (and generator) lists; the beats are
  copied; the kept instruments' MIDI files are copied.

The output root holds ``sources.json`` ({remix id: [source song ids]}), which build-records
uses to put every remix in its source's split, and ``remixes.json`` (kept, dropped, gains).
Remix ``r`` of a track draws from ``SeedSequence([seed, hash(track id), r])``: the same
bytes for a seed whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf import fileio
from iad_tf.aam.arff import (
    OnsetTable,
    read_beatinfo,
)
from iad_tf.aam.dataset import REMIXES_FILE, SOURCES_FILE, Track, discover_root
from iad_tf.config import check_finite
from iad_tf.synth.generation import claim
from iad_tf.synth.parallel import run_tasks
from iad_tf.synth.render import DEFAULT_SAMPLE_RATE, PEAK_DBFS, SAMPLE_RATES
from iad_tf.synth.stems import RemixError, find_stems, load_stem, song_stems  # noqa: F401 (re-exported)
from iad_tf.synth.writer import (
    MIDI_DIR,
    STEMS_DIR,
    mix_path,
    write_annotations,
    write_flac,
    write_json,
)


@dataclass(frozen=True)
class RemixConfig:
    per_track: int = 4
    seed: int = 0
    min_gain_db: float = -3.0
    max_gain_db: float = 3.0
    sample_rate: int = DEFAULT_SAMPLE_RATE
    stems: bool = False  # also write the gained kept stems

    def __post_init__(self) -> None:
        check_finite(self)
        if self.per_track < 1:
            raise ValueError("per_track must be at least 1")
        check_gains(self.min_gain_db, self.max_gain_db)
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample rate must be one of {SAMPLE_RATES}")


def check_gains(min_gain_db: float, max_gain_db: float) -> None:
    """Finite gains, min <= max (``ValueError`` otherwise)."""
    if not (np.isfinite(min_gain_db) and np.isfinite(max_gain_db)):
        raise ValueError(f"gains must be finite numbers (got {min_gain_db}, {max_gain_db} dB)")
    if min_gain_db > max_gain_db:
        raise ValueError(f"min gain {min_gain_db} dB exceeds max gain {max_gain_db} dB")


def remix_id(track_id: str, r: int) -> str:
    """Id of remix ``r`` (1-based) of ``track_id``: ``0080r01``."""
    return f"{track_id}r{r:02d}"


def _rng(seed: int, track_id: str, r: int) -> np.random.Generator:
    h = int(hashlib.sha256(track_id.encode("utf-8")).hexdigest()[:15], 16)
    return np.random.default_rng(np.random.SeedSequence([seed % (1 << 63), h, r]))


def choose(
    names: list[str], rng: np.random.Generator, min_gain_db: float, max_gain_db: float
) -> tuple[list[str], dict[str, float]]:
    """(dropped instruments, {kept instrument: gain dB}) for one remix."""
    n = len(names)
    n_drop = int(rng.integers(1, n)) if n >= 2 else 0
    dropped = sorted(str(x) for x in rng.choice(names, size=n_drop, replace=False)) if n_drop else []
    kept = [x for x in names if x not in dropped]
    gains = rng.uniform(min_gain_db, max_gain_db, size=len(kept))
    return dropped, {k: float(g) for k, g in zip(kept, gains, strict=True)}


def peak_normalise(audio: dict[str, np.ndarray], gains: dict[str, float]) -> tuple[np.ndarray, dict[str, float]]:
    """(mix float64 (samples,), gains dB as applied): the gained sum of ``audio[name]`` for the
    names in ``gains``, all gains shifted by one amount that puts the mix peak at -1 dBFS (AAM's
    own mixes are peak-normalised); so mix == sum(10**(gain/20) * stem)."""
    mix = np.zeros_like(audio[next(iter(gains))], dtype=np.float64)
    for name, g in gains.items():
        mix += audio[name].astype(np.float64) * 10 ** (g / 20)
    peak = float(np.max(np.abs(mix)))
    if peak > 0:
        shift = 20 * np.log10(10 ** (PEAK_DBFS / 20) / peak)
        gains = {k: g + shift for k, g in gains.items()}
        mix *= 10 ** (shift / 20)
    return mix, gains


def silence(table: OnsetTable, dropped: list[str], track_id: str) -> OnsetTable:
    """The onsets table with ``dropped`` instruments' cells emptied, relation renamed."""
    cols = {k for k, name in enumerate(table.instruments) if name in dropped}
    rows = [tuple(() if k in cols else cell for k, cell in enumerate(row)) for row in table.notes]
    return OnsetTable(table.instruments, table.times, rows, relation=f"Onset events in {track_id}")


def _stem_audio(stems: dict[str, Path], sr: int, onsets: OnsetTable, where: str) -> dict[str, np.ndarray]:
    """Decoded stems, zero-padded to the longest: {name: float32 (samples,)}. A stem that
    ends before its annotated notes do is refused (:class:`RemixError` naming it)."""
    audio = {name: load_stem(p, name, sr, onsets, where) for name, p in sorted(stems.items())}
    n = max(len(y) for y in audio.values())
    return {k: np.pad(y, (0, n - len(y))) for k, y in audio.items()}


def remix_track(task: tuple[Track, str, RemixConfig, str]) -> dict[str, dict[str, Any]]:
    """All remixes of one source track; returns {remix id: record for remixes.json}."""
    track, source_ids, cfg, out = task
    song = song_stems(track)
    stems, onsets, segments = song.stems, song.onsets, song.segments
    beats = read_beatinfo(track.beatinfo) if track.beatinfo else []
    audio = _stem_audio(stems, cfg.sample_rate, onsets, str(track.onsets))
    names = sorted(audio)
    records: dict[str, dict[str, Any]] = {}
    for r in range(1, cfg.per_track + 1):
        rid = remix_id(track.track_id, r)
        dropped, gains = choose(names, _rng(cfg.seed, track.track_id, r), cfg.min_gain_db, cfg.max_gain_db)
        mix, gains = peak_normalise(audio, gains)
        segs = [
            replace(
                s,
                instruments=tuple(i for i in s.instruments if i not in dropped),
                generators=tuple(
                    g for i, g in zip(s.instruments, s.generators, strict=False) if i not in dropped
                ),
            )
            for s in segments
        ]
        write_annotations(out, rid, silence(onsets, dropped, rid), segs, beats)
        for name, g in gains.items():
            midi = track.root / MIDI_DIR / f"{track.track_id}_{name}.mid"
            if midi.is_file():
                fileio.write_bytes(Path(out) / MIDI_DIR / f"{rid}_{name}.mid", midi.read_bytes())
            if cfg.stems:
                y = audio[name] * np.float32(10 ** (g / 20))
                write_flac(Path(out) / STEMS_DIR / f"{rid}_{name}.flac", y, cfg.sample_rate)
        write_flac(mix_path(out, rid), mix.astype(np.float32), cfg.sample_rate)
        records[rid] = {
            "source": source_ids[0],
            "sources": list(source_ids),
            "source_track": track.track_id,
            "kept": sorted(gains),
            "dropped": dropped,
            "gains_db": {k: round(v, 6) for k, v in sorted(gains.items())},
            "stems": {k: str(stems[k].relative_to(track.root)) for k in sorted(gains)},
        }
    return records


def merge_json(path: Path, new: dict[str, Any]) -> dict[str, Any]:
    old: dict[str, Any] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RemixError(f"{path}: cannot read ({exc})") from exc
    return {**old, **new}


def remix_corpus(
    aam_root: str | Path, out: str | Path, cfg: RemixConfig, workers: int = 1, tracks: list[str] | None = None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Remix every source track under ``aam_root`` (or only ``tracks``) into ``out``.

    Returns ({remix id: record}, [skipped track: reason]). ``sources.json`` and
    ``remixes.json`` in ``out`` are merged with any earlier run's; a source track whose remixes
    an earlier run of this generation finished is not remixed again.
    """
    aam_root, out = Path(aam_root), Path(out)
    if out.resolve() == aam_root.resolve():
        raise RemixError(f"{out}: the output folder must differ from the AAM root")
    found, problems = discover_root(aam_root)
    skipped = [f"{p.track}: {p.reason}" for p in problems]
    if tracks is not None:
        missing = sorted(set(tracks) - {t.track_id for t in found})
        if missing:
            raise RemixError(f"{aam_root}: no track(s) {', '.join(missing)}")
        found = [t for t in found if t.track_id in set(tracks)]
    tasks = []
    for t in found:
        try:
            song_stems(t)
        except RemixError as exc:
            skipped.append(str(exc) if str(exc).startswith(t.track_id) else f"{t.track_id}: {exc}")
            continue
        tasks.append((t, list(t.sources), cfg, str(out)))
    if not tasks:
        raise RemixError(f"{aam_root}: no track with stems and onsets to remix")
    claim(out, "remix", dataclasses.asdict(cfg), cfg.seed)
    # Every remix's source entry lands before any of its files: a track in the folder never
    # lacks its entry (build-records refuses one that does), even if this run dies midway.
    planned = {remix_id(t.track_id, r): src for t, src, _, _ in tasks for r in range(1, cfg.per_track + 1)}
    write_json(out / SOURCES_FILE, merge_json(out / SOURCES_FILE, planned))
    # a source track whose remixes an earlier run of this generation finished is kept
    done = merge_json(out / REMIXES_FILE, {})
    ids = {t.track_id: [remix_id(t.track_id, r) for r in range(1, cfg.per_track + 1)] for t, _, _, _ in tasks}
    finished = {tid for tid, rids in ids.items() if all(r in done and mix_path(out, r).is_file() for r in rids)}
    records = {r: done[r] for tid in sorted(finished) for r in ids[tid]}
    for rec in run_tasks(remix_track, [t for t in tasks if t[0].track_id not in finished], workers, desc="remix"):
        records.update(rec)
    write_json(out / REMIXES_FILE, merge_json(out / REMIXES_FILE, records))
    return records, skipped
