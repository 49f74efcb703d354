"""``iad-tf bank`` as a library: cut every note, chord and drum hit of AAM's stems into a bank.

For every song (a real AAM track with onsets and segments annotations) and every instrument
with a stem (``audio-multitracks-{flac,wav,mp3}/NNNN_<Instrument>.<ext>``):

* the notes come from ``midis/NNNN_<Instrument>.mid`` (:mod:`iad_tf.synth.bank_notes`, read
  tolerantly), or from the onsets ARFF where the MIDI is missing or unreadable;
* the stem is decoded at the bank rate. AAM renders each stem from that MIDI, so MIDI time t
  is stem time t and a cut starts at its MIDI onset (a slow attack stays inside the cut, as
  in AAM's own audio and labels). A whole-stem lag estimate was tried and dropped: onset
  envelopes put slow attacks 0.03-0.11 s late and periodic rhythms gave spurious lags up to
  0.19 s, and sounding-vs-MIDI frames are biased by release tails;
* a note is **misaligned** when no onset of its pitch in the onsets ARFF lies within
  ``onset_tolerance_s`` of its MIDI onset, and **silent** when the stem's median 20 ms RMS
  over the note is less than ``silence_margin_db`` above the stem's noise floor (the 10th percentile of its
  50 ms frame RMS where no note sounds). Bad cuts are counted per reason and never kept;
* a kept note gets a release tail up to the instrument's next onset (at most ``max_tail_s``);
  notes of chord/arpeggio instruments that start together (within ``chord_window_s``) also
  form a chord slice (kept only when all its notes are); drum hits are cuts of kind ``drum``.

Song x instrument tasks are independent and run in worker processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf import __version__
from iad_tf.aam.arff import read_onsets, read_segments
from iad_tf.aam.dataset import discover
from iad_tf.audio import load_audio
from iad_tf.config import check_finite
from iad_tf.fileio import write_json, write_text
from iad_tf.synth.bank_index import (
    AUDIO_DIR,
    BANK_JSON,
    INDEX_FILE,
    REPORT_FILE,
    Cut,
    index_text,
)
from iad_tf.synth.bank_notes import (
    CHORD_ROLES,
    NotesError,
    SourceNote,
    arff_notes,
    arff_onsets,
    instrument_roles,
    read_midi_notes,
)
from iad_tf.synth.parallel import run_tasks
from iad_tf.synth.remix import find_stems
from iad_tf.synth.writer import write_flac

DRUMS = "Drums"
FRAME_S = 0.05  # frame of the stem's RMS envelope (noise floor)
SILENCE_FRAME_S = 0.02


@dataclass(frozen=True)
class BankConfig:
    """Everything that decides the bank's contents (saved in bank.json)."""

    sample_rate: int = 22050
    max_tail_s: float = 1.0
    onset_tolerance_s: float = 0.02
    silence_margin_db: float = 10.0
    chord_window_s: float = 0.005
    min_duration_s: float = 0.02

    def __post_init__(self) -> None:
        check_finite(self)
        if self.sample_rate not in (22050, 44100):
            raise ValueError("bank sample rate must be 22050 or 44100")
        if self.max_tail_s < 0 or self.onset_tolerance_s <= 0:
            raise ValueError("the tail cap and the onset tolerance must be positive")


@dataclass(frozen=True)
class StemTask:
    song: str
    instrument: str
    stem: str
    midi: str | None
    onsets: str
    roles: tuple[str, ...]
    cfg: BankConfig
    out: str


def _db(x: float) -> float:
    return float(20 * np.log10(max(x, 1e-12)))


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0


def frame_rms(y: np.ndarray, hop: int) -> np.ndarray:
    """RMS of consecutive ``hop``-sample frames of ``y``: float64 (len(y) // hop,)."""
    n = len(y) // hop
    return np.sqrt(np.mean(np.square(y[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))


def noise_floor_db(y: np.ndarray, sr: int, notes: Sequence[SourceNote]) -> float:
    """10th percentile of the 50 ms frame RMS (dBFS) over frames where no note sounds."""
    hop = int(FRAME_S * sr)
    frames = frame_rms(y, hop)
    n = len(frames)
    if n == 0:
        return -120.0
    busy = np.zeros(n, dtype=bool)
    for nt in notes:
        busy[int(nt.start * sr) // hop : int(np.ceil(nt.end * sr / hop)) + 1] = True
    quiet = frames[~busy] if np.any(~busy) else frames
    return max(_db(float(np.percentile(quiet, 10))), -120.0)


def median_frame_db(y: np.ndarray, sr: int) -> float:
    """Median RMS (dBFS) of the 20 ms frames of ``y``: a stem silenced over most of a note
    reads near its floor even where a neighbouring note's edge leaks in."""
    frames = frame_rms(y, int(SILENCE_FRAME_S * sr))
    if frames.size == 0:
        return _db(_rms(y))
    return _db(float(np.median(frames)))


def _near(times: list[float] | None, t: float, tol: float) -> bool:
    if not times:
        return False
    arr = np.asarray(times)
    return bool(np.min(np.abs(arr - t)) <= tol)


def _tails(starts: np.ndarray, ends: np.ndarray, cap: float) -> np.ndarray:
    """Release tail of each note: up to the instrument's next onset after it ends, capped."""
    order = np.sort(starts)
    nxt = np.searchsorted(order, ends, side="left")
    nxt_t = np.where(nxt < len(order), order[np.minimum(nxt, len(order) - 1)], ends + cap)
    return np.clip(nxt_t - ends, 0.0, cap)


def cut_stem(task: StemTask) -> dict[str, Any]:
    """Cuts of one song's instrument: {"cuts": [Cut], "skipped": Counter, "info": {...}}."""
    cfg = task.cfg
    sr = cfg.sample_rate
    table = read_onsets(task.onsets)
    notes: list[SourceNote] = []
    source = "arff"
    fixed = 0
    if task.midi:
        try:
            notes, fixed = read_midi_notes(task.midi)
            source = "midi"
        except NotesError:
            notes = []
    if source == "arff" and task.instrument in table.instruments:
        notes = arff_notes(table, task.instrument)
    arff_on = arff_onsets(table, task.instrument) if task.instrument in table.instruments else {}
    info: dict[str, Any] = {"song": task.song, "instrument": task.instrument, "notes_from": source,
                            "key_signatures_fixed": fixed}
    skipped: Counter[str] = Counter()
    if not notes:
        return {"cuts": [], "skipped": skipped, "info": info}
    y = load_audio(task.stem, sr)
    floor = noise_floor_db(y, sr, notes)
    info["noise_floor_db"] = round(floor, 1)
    kind = "drum" if task.instrument == DRUMS else "note"
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    tails = _tails(starts, ends, cfg.max_tail_s)
    role = ",".join(sorted(task.roles)) or ("drums" if kind == "drum" else "melody")
    good: list[tuple[SourceNote, float, float]] = []  # (note, tail, rms_db)
    bad_at: set[int] = set()
    for k, nt in enumerate(notes):
        i0, i1 = int(round(nt.start * sr)), int(round(nt.end * sr))
        level = _db(_rms(y[i0:i1]))
        if nt.end - nt.start < cfg.min_duration_s:
            reason = "too_short"
        elif not _near(arff_on.get(nt.pitch), nt.start, cfg.onset_tolerance_s):
            reason = "misaligned"
        elif i1 > len(y) or median_frame_db(y[i0:i1], sr) < floor + cfg.silence_margin_db:
            reason = "silent"
        else:
            good.append((nt, float(tails[k]), level))
            continue
        skipped[reason] += 1
        bad_at.add(k)
    cut_specs: list[tuple[str, tuple[int, ...], SourceNote, float, float, bool]] = []
    for k, (nt, tail, level) in enumerate(good):
        others = [o for j, (o, _t, _l) in enumerate(good) if j != k and o.start < nt.end + tail and o.end > nt.start]
        cut_specs.append((kind, (nt.pitch,), nt, tail, level, not others))
    if kind == "note" and CHORD_ROLES & set(task.roles):
        cut_specs += _chords(notes, tails, bad_at, y, sr, cfg, skipped)
    if not cut_specs:
        return {"cuts": [], "skipped": skipped, "info": info}
    t0 = min(s[2].start for s in cut_specs)
    t1 = max(s[2].end + s[3] for s in cut_specs)
    rel = f"{AUDIO_DIR}/{task.instrument}/{task.song}.flac"
    seg = y[int(round(t0 * sr)) : int(round(t1 * sr))]
    write_flac(Path(task.out) / rel, seg, sr)
    cuts = [
        Cut(task.instrument, k, pitches, nt.velocity, round(nt.start, 6), round(nt.end - nt.start, 6),
            round(tail, 6), task.song, role, solo, level, rel, round(nt.start - t0, 6))
        for k, pitches, nt, tail, level, solo in cut_specs
    ]
    return {"cuts": cuts, "skipped": skipped, "info": info}


def _chords(
    notes: list[SourceNote], tails: np.ndarray, bad_at: set[int], y: np.ndarray, sr: int,
    cfg: BankConfig, skipped: Counter[str],
) -> list[tuple[str, tuple[int, ...], SourceNote, float, float, bool]]:
    """Chord slices: notes starting together (>= 2); bad when any of its notes is bad."""
    out = []
    k = 0
    while k < len(notes):
        j = k + 1
        while j < len(notes) and notes[j].start - notes[k].start <= cfg.chord_window_s:
            j += 1
        if j - k >= 2:
            members = range(k, j)
            if bad_at & set(members):
                skipped["chord_with_bad_note"] += 1
            else:
                start = notes[k].start
                end = min(notes[i].end for i in members)
                tail = float(min(tails[i] for i in members))
                nt = SourceNote(notes[k].pitch, start, end, notes[k].velocity)
                level = _db(_rms(y[int(round(start * sr)) : int(round(end * sr))]))
                pitches = tuple(sorted({notes[i].pitch for i in members}))
                if len(pitches) >= 2:
                    out.append(("chord", pitches, nt, tail, level, True))
        k = j
    return out


def plan_tasks(roots: Sequence[str | Path], out: str | Path, cfg: BankConfig,
               songs: Sequence[str] | None = None) -> tuple[list[StemTask], list[str]]:
    """One task per (song, instrument with a stem); and one-line notes on tracks left out."""
    tracks, problems = discover(roots)
    notes = [f"{p.track}: {p.reason}" for p in problems]
    tasks: list[StemTask] = []
    wanted = set(songs) if songs else None
    for t in tracks:
        if wanted is not None and t.track_id not in wanted:
            continue
        if t.sources != (t.track_id,):
            notes.append(f"{t.track_id}: a generated track (sources.json), not a real song; left out")
            continue
        if t.onsets is None or t.segments is None:
            notes.append(f"{t.track_id}: no onsets/segments annotation; left out")
            continue
        stems = find_stems(t.root, t.track_id)
        if not stems:
            notes.append(f"{t.track_id}: no stems in {t.root}/audio-multitracks-*/; left out")
            continue
        roles = instrument_roles(read_segments(t.segments))
        for inst, stem in sorted(stems.items()):
            midi = t.root / "midis" / f"{t.track_id}_{inst}.mid"
            tasks.append(StemTask(t.track_id, inst, str(stem), str(midi) if midi.is_file() else None,
                                  str(t.onsets), tuple(sorted(roles.get(inst, ()))), cfg, str(out)))
    return tasks, notes


def coverage(cuts: Sequence[Cut]) -> dict[str, dict[str, Any]]:
    """Per instrument: notes, chords, drum hits, pitch range, seconds (of notes/hits), songs."""
    out: dict[str, dict[str, Any]] = {}
    for c in cuts:
        row = out.setdefault(c.instrument, {"notes": 0, "chords": 0, "drums": 0, "low": 999, "high": -1,
                                            "seconds": 0.0, "songs": set()})
        row[{"note": "notes", "chord": "chords", "drum": "drums"}[c.kind]] += 1
        if c.kind != "chord":
            row["seconds"] += c.duration_s
        row["low"] = min(row["low"], *c.pitches)
        row["high"] = max(row["high"], *c.pitches)
        row["songs"].add(c.song)
    return {k: {**v, "seconds": round(v["seconds"], 1), "songs": sorted(v["songs"])} for k, v in sorted(out.items())}


def coverage_markdown(cov: dict[str, dict[str, Any]], skipped: dict[str, int]) -> str:
    """The coverage table (README and report.md) and the skipped cuts per reason."""
    lines = ["| instrument | notes | chords | drum hits | pitch range | seconds | songs |",
             "|---|---:|---:|---:|---|---:|---|"]
    for name, r in cov.items():
        lines.append(f"| {name} | {r['notes']} | {r['chords']} | {r['drums']} | {r['low']}-{r['high']} | "
                     f"{r['seconds']:.0f} | {len(r['songs'])} ({' '.join(r['songs'])}) |")
    skip = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none"
    return "\n".join(lines) + f"\n\nSkipped cuts: {skip}.\n"


def build_bank(roots: Sequence[str | Path], out: str | Path, cfg: BankConfig, workers: int = 1,
               songs: Sequence[str] | None = None) -> dict[str, Any]:
    """Write the bank under ``out``; returns bank.json's content (plus ``elapsed_s``, ``notes``)."""
    out = Path(out)
    t0 = time.perf_counter()
    tasks, notes = plan_tasks(roots, out, cfg, songs)
    if not tasks:
        raise ValueError(f"no song with stems and annotations under {', '.join(map(str, roots))}")
    out.mkdir(parents=True, exist_ok=True)
    results = run_tasks(cut_stem, tasks, workers, desc="bank", unit="stem")
    cuts = sorted((c for r in results for c in r["cuts"]),
                  key=lambda c: (c.instrument, c.song, c.onset_s, c.kind, c.pitches))
    skipped: Counter[str] = Counter()
    for r in results:
        skipped.update(r["skipped"])
    text = index_text(cuts)
    files = {}
    for rel in sorted({c.file for c in cuts}):
        files[rel] = hashlib.sha256((out / rel).read_bytes()).hexdigest()
    fingerprint = hashlib.sha256((text + "".join(f"{k}:{v}\n" for k, v in files.items())).encode()).hexdigest()[:16]
    cov = coverage(cuts)
    meta = {
        "config": dataclasses.asdict(cfg),
        "songs": sorted({t.song for t in tasks}),
        "stems": [r["info"] for r in results],
        "files": files,
        "report": {"instruments": cov, "skipped": dict(sorted(skipped.items())), "cuts": len(cuts)},
        "fingerprint": fingerprint,
        "version": __version__,
    }
    write_text(out / INDEX_FILE, text)
    write_text(out / REPORT_FILE, f"# Note bank {fingerprint}\n\n" + coverage_markdown(cov, dict(skipped)))
    write_json(out / BANK_JSON, meta, sort_keys=True)  # last: its presence marks a finished bank
    return {**meta, "elapsed_s": time.perf_counter() - t0, "notes": notes}
