"""``iad-tf remix --across-songs N``: new tracks from whole stems of different AAM songs.

Each track ``x0001``, ``x0002``, ... (planned by :mod:`iad_tf.synth.balance`: one bass, drums
or none, 1-3 chord/arpeggio, 1-2 melody stems, balanced across instruments and pairs) plays
every chosen stem from a random offset for ``duration`` seconds (cropped, or looped at the end
of its song), with a random gain and optionally transposed by up to ``pitch_shift``
semitones (librosa's phase vocoder; labels and MIDI shifted too, never past the class's
pitch range). With ``holdout_folds`` K, track k avoids every song of fold ``k mod K``
(:func:`iad_tf.evaluation.folds.folds_of_songs` over the root's real songs: the folds
``iad-tf cv --folds K`` forms over the same songs), so each track trains in at least one fold.

Written per track, in AAM's layout (mix last, so its presence marks a finished track):

* stems ``audio-multitracks-flac/<id>_<Instrument>.flac`` as mixed (gain applied), and the
  mix ``audio-mixes-flac/<id>_mix.flac`` = their sum, peak-normalised to -1 dBFS like
  ``iad-tf remix``;
* ``<id>_onsets.arff``: each stem's own onsets moved with it (exact: the labels of every
  frame are the source's at the matching source time);
* ``<id>_segments.arff``: a part boundary wherever a stem's source part changes; each part
  lists the stems their source part lists, with their generators. Approximate: mark, tempo
  and key are the reference stem's (the drums, else the bass), although the other stems come
  from songs with other tempi and keys;
* ``<id>_beatinfo.arff``: the reference stem's beats and chords (approximate likewise);
* ``midis/<id>_<Instrument>.mid`` where the source has one (notes moved and transposed).

The root holds ``generator.json`` (:mod:`iad_tf.synth.generation`), ``sources.json``
({id: [every source song]}, written before any track), ``remixes.json`` (per track: fold,
held-out songs, and per stem its song, file, role, offset, gain and shift) and
``balance.json`` (:func:`iad_tf.synth.balance.balance_report`). One seed gives the same bytes
whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.aam.arff import Beat, OnsetTable, Segment, read_beatinfo, read_onsets
from iad_tf.aam.dataset import REMIXES_FILE, SOURCES_FILE, discover_root
from iad_tf.config import AAM_CLASSES, check_finite
from iad_tf.evaluation.folds import folds_of_songs
from iad_tf.synth.balance import (
    Balancer,
    Choice,
    PlanError,
    TrackPlan,
    balance_report,
    catalog,
    check_shift,
)
from iad_tf.synth.generation import claim
from iad_tf.synth.instruments import ROLES
from iad_tf.synth.parallel import run_tasks
from iad_tf.synth.remix import check_gains, merge_json, peak_normalise
from iad_tf.synth.render import DEFAULT_SAMPLE_RATE, SAMPLE_RATES
from iad_tf.synth.score import Note, qtime
from iad_tf.synth.stems import RemixError, SongStems, load_stem, song_stems
from iad_tf.synth.timemap import (
    column,
    merge_columns,
    place_beats,
    place_column,
    place_notes,
    place_segments,
)
from iad_tf.synth.writer import (
    MIDI_DIR,
    mix_path,
    stem_path,
    write_annotations,
    write_flac,
    write_json,
    write_midi,
)

BALANCE_FILE = "balance.json"
GENERATOR = "remix-across"


@dataclass(frozen=True)
class AcrossConfig:
    """Everything that decides the cross-song tracks (saved in generator.json)."""

    tracks: int = 8
    seed: int = 0
    duration: float = 60.0
    holdout_folds: int = 0  # 0: no holdout
    pitch_shift: int = 0
    min_gain_db: float = -3.0
    max_gain_db: float = 3.0
    drums_probability: float = 0.85
    sample_rate: int = DEFAULT_SAMPLE_RATE

    def __post_init__(self) -> None:
        check_finite(self)
        if self.tracks < 1:
            raise ValueError("--across-songs must be at least 1")
        if not (np.isfinite(self.duration) and self.duration >= 1.0):
            raise ValueError(f"duration must be a finite number of seconds >= 1, not {self.duration}")
        if self.holdout_folds == 1 or self.holdout_folds < 0:
            raise ValueError(f"--holdout-folds must be 0 (none) or at least 2, not {self.holdout_folds}")
        if not 0 <= self.pitch_shift <= 12:
            raise ValueError(f"--pitch-shift must lie in 0..12 semitones, not {self.pitch_shift}")
        check_gains(self.min_gain_db, self.max_gain_db)
        if not 0.0 <= self.drums_probability <= 1.0:
            raise ValueError("drums probability must lie in [0, 1]")
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample rate must be one of {SAMPLE_RATES}")


def track_id(k: int) -> str:
    """Id of cross-song track ``k`` (1-based): ``x0001``."""
    return f"x{k:04d}"


def _rng(seed: int, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed % (1 << 63), 1, k]))


def source_songs(aam_root: Path) -> tuple[list[SongStems], list[str]]:
    """The root's real songs with usable stems, and skipped lines (one per unusable song)."""
    found, problems = discover_root(aam_root)
    skipped = [f"{p.track}: {p.reason}" for p in problems]
    songs = []
    for t in found:
        if t.sources != (t.track_id,):
            continue  # a generated track: its stems are not a song's own
        try:
            songs.append(song_stems(t))
        except RemixError as exc:
            skipped.append(str(exc))
    return songs, skipped


def plan_tracks(songs: list[SongStems], cfg: AcrossConfig, root: Path) -> list[TrackPlan]:
    """Tracks 1..cfg.tracks, planned in order (see :mod:`iad_tf.synth.balance`)."""
    stems = catalog(songs)
    real = sorted(s.track.track_id for s in songs)
    try:
        folds = folds_of_songs(real, cfg.holdout_folds) if cfg.holdout_folds else []
    except ValueError as exc:
        raise PlanError(f"{root}: {exc}") from None
    balancer = Balancer(stems)
    plans = []
    for k in range(1, cfg.tracks + 1):
        fold = (k - 1) % cfg.holdout_folds if folds else None
        held = tuple(folds[fold]) if fold is not None else ()
        pool = [s for s in stems if s.song not in held]
        tid = track_id(k)
        try:
            choices = balancer.plan(tid, _rng(cfg.seed, k), pool, cfg.duration,
                                    (cfg.min_gain_db, cfg.max_gain_db), cfg.pitch_shift, cfg.drums_probability)
        except PlanError as exc:
            where = f" outside fold {fold + 1} ({', '.join(held)})" if held else ""
            raise PlanError(f"{root}: {exc} in the songs{where}") from None
        plans.append(TrackPlan(tid, fold, held, tuple(choices)))
    return plans


def _excerpt(y: np.ndarray, choice: Choice, length: float, sr: int) -> np.ndarray:
    """The stem's excerpt float32 (round(length * sr),): looped at the song's period."""
    period_n = int(round(choice.stem.period * sr))
    y = np.pad(y[:period_n], (0, max(0, period_n - len(y))))  # silence past the stem is annotated silent
    out = [y[int(round(p.src * sr)): int(round(p.src * sr)) + int(round(p.end * sr)) - int(round(p.start * sr))]
           for p in choice.parts(length)]
    z = np.concatenate(out)
    n = int(round(length * sr))
    z = np.pad(z[:n], (0, max(0, n - len(z))))
    if choice.shift:
        import librosa

        z = librosa.effects.pitch_shift(z, sr=sr, n_steps=choice.shift, res_type="soxr_hq")
    return z.astype(np.float32)


_KEY_SIGNATURE = b"\xff\x59\x02"  # MIDI meta event: key signature (sharps/flats, mode)


def _midi_notes(path: Path) -> list[Note] | None:
    """The notes of a source MIDI file, or ``None`` when it cannot be parsed (the track then
    has no MIDI for that stem). Some AAM files carry key signatures with more than 7 sharps,
    which mido rejects; they are set to C before parsing (notes are unaffected)."""
    import io
    import warnings

    import pretty_midi

    data = bytearray(path.read_bytes())
    at = data.find(_KEY_SIGNATURE)
    while at >= 0 and at + 4 < len(data):
        if not -7 <= (data[at + 3] ^ 0x80) - 0x80 <= 7:  # signed byte: sharps (+) / flats (-)
            data[at + 3] = 0
        at = data.find(_KEY_SIGNATURE, at + 3)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(io.BytesIO(bytes(data)))
    except Exception:  # noqa: BLE001 - any parse failure: MIDI is optional here
        return None
    return [Note(n.pitch, n.start, n.end, n.velocity) for inst in pm.instruments for n in inst.notes]


def annotations(
    plan: TrackPlan, songs: dict[str, SongStems], length: float
) -> tuple[OnsetTable, list[Segment], list[Beat]]:
    """(onsets table, segments, beats) of a planned track (see the module docstring)."""
    columns = {c.stem.name: place_column(column(songs[c.stem.song].onsets, c.stem.name), c.parts(length), c.shift)
               for c in plan.choices}
    table = merge_columns(columns, AAM_CLASSES, length, f"Onset events in {plan.track_id}")
    ref = next((c for c in plan.choices if c.stem.role == "drums"), plan.choices[0])
    order = sorted((c.stem.name for c in plan.choices),
                   key=lambda n: ROLES.index(next(c.stem.role for c in plan.choices if c.stem.name == n)))
    segments = place_segments({c.stem.name: (songs[c.stem.song].segments, c.parts(length)) for c in plan.choices},
                              ref.stem.name, order, length)
    ref_song = songs[ref.stem.song].track
    beats = place_beats(read_beatinfo(ref_song.beatinfo), ref.parts(length)) if ref_song.beatinfo else []
    return table, segments, beats


def render_track(task: tuple[TrackPlan, dict[str, SongStems], AcrossConfig, str]) -> dict[str, Any]:
    """Render and write one planned track; returns its remixes.json record."""
    plan, songs, cfg, out = task
    t0 = time.perf_counter()
    sr, length = cfg.sample_rate, cfg.duration
    audio: dict[str, np.ndarray] = {}
    for c in plan.choices:
        check_shift(c.stem, c.shift)
        song = songs[c.stem.song]
        y = load_stem(c.stem.path, c.stem.name, sr, song.onsets, str(song.track.onsets))
        audio[c.stem.name] = _excerpt(y, c, length, sr)
    gains = {c.stem.name: c.gain_db for c in plan.choices}
    mix, gains = peak_normalise(audio, gains)
    table, segments, beats = annotations(plan, songs, length)
    write_annotations(out, plan.track_id, table, segments, beats)
    tempo = segments[0].tempo or 120.0
    for c in plan.choices:
        name = c.stem.name
        write_flac(stem_path(out, plan.track_id, name), audio[name] * np.float32(10 ** (gains[name] / 20)), sr)
        midi = songs[c.stem.song].track.root / MIDI_DIR / f"{c.stem.song}_{name}.mid"
        notes = _midi_notes(midi) if midi.is_file() else None
        if notes is not None:
            write_midi(Path(out) / MIDI_DIR / f"{plan.track_id}_{name}.mid", name,
                       place_notes(notes, c.parts(length), c.shift), tempo)
    write_flac(mix_path(out, plan.track_id), mix.astype(np.float32), sr)
    return {
        "track_id": plan.track_id,
        "record": {
            "sources": plan.sources,
            "fold": None if plan.fold is None else plan.fold + 1,
            "held_out": list(plan.held_out),
            "duration_s": qtime(length),
            "stems": {
                c.stem.name: {
                    "song": c.stem.song,
                    "file": str(c.stem.path.relative_to(songs[c.stem.song].track.root)),
                    "role": c.stem.role,
                    "offset_s": c.offset,
                    "gain_db": round(gains[c.stem.name], 6),
                    "shift": c.shift,
                }
                for c in plan.choices
            },
        },
        "elapsed_s": time.perf_counter() - t0,
    }


@dataclass
class AcrossResult:
    """Records of all planned tracks, the balance report, skipped songs, and the seconds of
    audio rendered by this run (finished tracks of an earlier run are kept, not re-rendered)
    in ``wall_s`` seconds."""

    records: dict[str, dict[str, Any]]
    report: dict[str, Any]
    skipped: list[str]
    rendered: int
    audio_s: float
    wall_s: float


def across_corpus(aam_root: str | Path, out: str | Path, cfg: AcrossConfig, workers: int = 1) -> AcrossResult:
    """Plan, render and write ``cfg.tracks`` cross-song tracks from ``aam_root`` into ``out``.

    Raises :class:`RemixError` / :class:`PlanError` / ``GenerationError`` with one line.
    """
    t0 = time.perf_counter()
    aam_root, out = Path(aam_root), Path(out)
    if out.resolve() == aam_root.resolve():
        raise RemixError(f"{out}: the output folder must differ from the AAM root")
    songs, skipped = source_songs(aam_root)
    if len(songs) < 2:
        raise RemixError(f"{aam_root}: {len(songs)} song(s) with usable stems; cross-song mixes need 2 or more")
    plans = plan_tracks(songs, cfg, aam_root)
    held = claim(out, GENERATOR, dataclasses.asdict(cfg), cfg.seed)["config"]["tracks"]
    if held > cfg.tracks:  # the folder holds more tracks of this generation: keep them all
        plans = plan_tracks(songs, dataclasses.replace(cfg, tracks=held), aam_root)
    write_json(out / SOURCES_FILE, merge_json(out / SOURCES_FILE, {p.track_id: p.sources for p in plans}))
    by_id = {s.track.track_id: s for s in songs}
    done = merge_json(out / REMIXES_FILE, {})  # tracks a run of this generation finished
    todo = [p for p in plans if not (p.track_id in done and mix_path(out, p.track_id).is_file())]
    tasks = [(p, {s: by_id[s] for s in p.sources}, cfg, str(out)) for p in todo]
    results = run_tasks(render_track, tasks, workers, desc="remix --across-songs")
    records = {p.track_id: done[p.track_id] for p in plans if p not in todo}
    records.update({r["track_id"]: r["record"] for r in results})
    write_json(out / REMIXES_FILE, merge_json(out / REMIXES_FILE, records))
    report = _report(songs, plans, out, cfg)
    write_json(out / BALANCE_FILE, report)
    return AcrossResult(records, report, skipped, len(todo), cfg.duration * len(todo), time.perf_counter() - t0)


def _report(songs: list[SongStems], plans: list[TrackPlan], out: Path, cfg: AcrossConfig) -> dict[str, Any]:
    stems = catalog(songs)
    sources = [(s.onsets, float(s.onsets.times[-1])) for s in songs]
    generated: list[tuple[OnsetTable, float]] = [
        (read_onsets(out / "annotations" / f"{p.track_id}_onsets.arff"), cfg.duration) for p in plans]
    src_groups = [sorted(s.stems) for s in songs]
    gen_groups = [sorted(c.stem.name for c in p.choices) for p in plans]
    report = balance_report(stems, sources, generated, src_groups, gen_groups)
    return {"tracks": len(plans), "songs": sorted(s.track.track_id for s in songs), **report}
