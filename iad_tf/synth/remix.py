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

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf import fileio
from iad_tf.aam.arff import (
    ArffError,
    OnsetTable,
    Segment,
    read_beatinfo,
    read_onsets,
    read_segments,
)
from iad_tf.aam.dataset import REMIXES_FILE, SOURCES_FILE, Track, discover_root
from iad_tf.audio import AUDIO_EXTENSIONS, load_audio
from iad_tf.config import AAM_CLASSES, check_finite
from iad_tf.synth.parallel import run_tasks
from iad_tf.synth.render import DEFAULT_SAMPLE_RATE, PEAK_DBFS, SAMPLE_RATES
from iad_tf.synth.writer import (
    MIDI_DIR,
    STEMS_DIR,
    mix_path,
    write_annotations,
    write_flac,
    write_json,
)

_STEM_DIRS = tuple(f"audio-multitracks-{ext.lstrip('.')}" for ext in (".flac", ".wav", ".mp3", ".ogg"))


class RemixError(ValueError):
    """A source track that cannot be remixed; the message names the file."""


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
        if self.min_gain_db > self.max_gain_db:
            raise ValueError(f"min gain {self.min_gain_db} dB exceeds max gain {self.max_gain_db} dB")
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample rate must be one of {SAMPLE_RATES}")


def find_stems(root: str | Path, track_id: str) -> dict[str, Path]:
    """{instrument: stem file} of a track (a lossless format wins over mp3)."""
    out: dict[str, Path] = {}
    pattern = re.compile(rf"^{re.escape(track_id)}_(.+)$")
    for d in _STEM_DIRS:
        folder = Path(root) / d
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob(f"{track_id}_*")):
            m = pattern.match(p.stem)
            if m and p.suffix.lower() in AUDIO_EXTENSIONS and m.group(1) != "mix":
                out.setdefault(m.group(1), p)
    return out


def missing_stems(onsets: OnsetTable, segments: list[Segment], stems: dict[str, Path]) -> list[str]:
    """Instruments the annotations say play (a sounding note or a segment) but with no stem.

    A remix of such a track would label them active with no audio (a partial download)."""
    sounding = {name for name, on in zip(onsets.instruments, onsets.active().any(axis=0), strict=True) if on}
    sounding |= {i for s in segments for i in s.instruments}
    return sorted(sounding - set(stems))


def _missing_reason(track: Track, lacking: list[str]) -> str:
    return (f"{track.track_id}: annotated instrument(s) {', '.join(lacking)} have no stem in "
            f"{track.root}/audio-multitracks-*/ (partial download?); not remixed")


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


def silence(table: OnsetTable, dropped: list[str], track_id: str) -> OnsetTable:
    """The onsets table with ``dropped`` instruments' cells emptied, relation renamed."""
    cols = {k for k, name in enumerate(table.instruments) if name in dropped}
    rows = [tuple(() if k in cols else cell for k, cell in enumerate(row)) for row in table.notes]
    return OnsetTable(table.instruments, table.times, rows, relation=f"Onset events in {track_id}")


def _stem_audio(stems: dict[str, Path], sr: int) -> dict[str, np.ndarray]:
    """Decoded stems, zero-padded to the longest: {name: float32 (samples,)}."""
    audio = {name: load_audio(p, sr) for name, p in sorted(stems.items())}
    n = max(len(y) for y in audio.values())
    return {k: np.pad(y, (0, n - len(y))) for k, y in audio.items()}


def remix_track(task: tuple[Track, str, RemixConfig, str]) -> dict[str, dict[str, Any]]:
    """All remixes of one source track; returns {remix id: record for remixes.json}."""
    track, source_ids, cfg, out = task
    stems = find_stems(track.root, track.track_id)
    unknown = sorted(set(stems) - set(AAM_CLASSES))
    if unknown:
        raise RemixError(f"{stems[unknown[0]]}: unknown instrument {unknown[0]!r} in stem name")
    if track.onsets is None:
        raise RemixError(f"{track.expected_annotation('onsets')}: no onsets annotation")
    onsets = read_onsets(track.onsets)
    segments = read_segments(track.segments) if track.segments else []
    lacking = missing_stems(onsets, segments, stems)
    if lacking:
        raise RemixError(_missing_reason(track, lacking))
    beats = read_beatinfo(track.beatinfo) if track.beatinfo else []
    audio = _stem_audio(stems, cfg.sample_rate)
    names = sorted(audio)
    records: dict[str, dict[str, Any]] = {}
    for r in range(1, cfg.per_track + 1):
        rid = remix_id(track.track_id, r)
        dropped, gains = choose(names, _rng(cfg.seed, track.track_id, r), cfg.min_gain_db, cfg.max_gain_db)
        mix = np.zeros_like(next(iter(audio.values())), dtype=np.float64)
        for name, g in gains.items():
            mix += audio[name].astype(np.float64) * 10 ** (g / 20)
        peak = float(np.max(np.abs(mix)))
        limit = 10 ** (PEAK_DBFS / 20)
        if peak > 0:
            shift = 20 * np.log10(limit / peak)
            gains = {k: g + shift for k, g in gains.items()}
            mix *= 10 ** (shift / 20)
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


def _merge_json(path: Path, new: dict[str, Any]) -> dict[str, Any]:
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
    ``remixes.json`` in ``out`` are merged with any earlier run's.
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
        stems = find_stems(aam_root, t.track_id)
        if not stems:
            skipped.append(f"{t.track_id}: no stems in {aam_root}/audio-multitracks-*/")
        elif t.onsets is None:
            skipped.append(f"{t.track_id}: no onsets annotation {t.expected_annotation('onsets')}")
        else:
            try:
                lacking = missing_stems(
                    read_onsets(t.onsets), read_segments(t.segments) if t.segments else [], stems)
            except ArffError as exc:
                skipped.append(f"{t.track_id}: {exc}")
                continue
            if lacking:
                skipped.append(_missing_reason(t, lacking))
            else:
                tasks.append((t, list(t.sources), cfg, str(out)))
    if not tasks:
        raise RemixError(f"{aam_root}: no track with stems and onsets to remix")
    out.mkdir(parents=True, exist_ok=True)
    # Every remix's source entry lands before any of its files: a track in the folder never
    # lacks its entry (build-records refuses one that does), even if this run dies midway.
    planned = {remix_id(t.track_id, r): src for t, src, _, _ in tasks for r in range(1, cfg.per_track + 1)}
    write_json(out / SOURCES_FILE, _merge_json(out / SOURCES_FILE, planned))
    records: dict[str, dict[str, Any]] = {}
    for rec in run_tasks(remix_track, tasks, workers, desc="remix"):
        records.update(rec)
    write_json(out / REMIXES_FILE, _merge_json(out / REMIXES_FILE, records))
    return records, skipped
