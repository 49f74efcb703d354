"""build-records: AAM roots -> sharded TFRecords + ``manifest.json`` (see docs/ARCHITECTURE.md).

Three stages:

1. **Per track** (:func:`process_track`, pure: :class:`Track` -> arrays, no I/O besides
   reading the track's own files, so a Beam ``Map`` can call it as is): decode + log-mel
   (``iad_tf.audio``), activation roll (``iad_tf.aam.labels``), sanity checks. Bad input
   raises :class:`TrackError` with a one-line reason naming the file.
2. **Cache** (worker processes): each finished track is written atomically to
   ``OUT/.work/<track_id>.npz`` (temporary name, then rename) together with a fingerprint of
   its inputs and the feature setup. A rerun after an interruption reuses every cache file
   whose fingerprint still matches, so each track is computed once and never half-written.
   The worker checks and fills the cache itself (:func:`cached_track`): the Beam runner's
   workers run the same step on the same folder, so either runner resumes the other.
3. **Assembly** (main process): old shards and the old manifest are removed, shards are
   written per split from the cache in track-id order (one track in memory at a time; the
   writer renames a shard only when complete), statistics are accumulated on the way, and
   ``manifest.json`` is written last. Only then is ``OUT/.work`` deleted, so the directory
   is either complete (manifest present) or resumable.

Memory stays bounded: workers hold one track each; the parent only small summaries.

Roots and ``out_dir`` may be URLs (:mod:`iad_tf.storage`): audio is streamed from the store
into the decoder, the cache lives in ``OUT/.work/`` in the store (a rerun anywhere resumes),
each split's shards are written to a local temporary folder and uploaded when complete, and
``manifest.json`` is uploaded last (a reader trusts nothing without it).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf import storage
from iad_tf.aam.arff import ArffError, OnsetTable, read_onsets, read_segments
from iad_tf.aam.dataset import Problem, Track, discover, root_generators
from iad_tf.aam.labels import (
    DEFAULT_OVERRUN_S,
    MAX_END_GAP_S,
    LabelError,
    check_annotation_fits,
    check_onsets_complete,
    check_segments_complete,
    onset_roll,
    pitch_roll,
    role_roll,
    segment_roll,
)
from iad_tf.audio import AudioError, file_logmel
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.data.records import (
    AUX_FIELDS,
    LABEL_MODES,
    PITCH_FIELD,
    ROLES_FIELD,
    SPLITS,
    annotation_kind,
    aux_fields,
    record_schema,
)
from iad_tf.data.splits import assign_split, check_fractions, read_split_file
from tfrecords_tools import Schema

WORK_DIR = ".work"
#: Auto sharding aims at shards of about this many bytes of tensor data.
TARGET_SHARD_BYTES = 128 << 20
#: Test hook: seconds each worker sleeps after caching a track (to interrupt a build).
DELAY_ENV = "IAD_TF_BUILD_DELAY_S"
_VERSION_PACKAGES = ("iad-tf", "numpy", "librosa", "soundfile", "soxr", "tensorflow", "scipy")


class TrackError(ValueError):
    """A track that cannot be used; ``file`` is the offending file, ``str()`` the reason."""

    def __init__(self, file: str | Path, reason: str) -> None:
        super().__init__(reason)
        self.file = str(file)


class BuildError(RuntimeError):
    """The build cannot produce a usable records directory (nothing usable, --strict, ...)."""


@dataclass(frozen=True)
class BuildOptions:
    """Everything besides the inputs that decides what build-records writes."""

    labels: str = "onsets"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_file: Path | None = None
    shards_per_split: int | None = None  # None: auto (about TARGET_SHARD_BYTES per shard)
    workers: int = 1
    strict: bool = False
    overrun_s: float = DEFAULT_OVERRUN_S
    keep_cache: bool = False
    progress: bool = True


@dataclass
class BuildResult:
    """What a build wrote: the manifest (as written) and where."""

    out_dir: storage.AnyPath
    manifest_path: storage.AnyPath
    manifest: dict[str, Any]
    computed: int = 0  # tracks computed in this run (the rest came from the cache)
    reused: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)


# ----------------------------------------------------------------------------- per track


def process_track(
    track: Track,
    cfg: FeatureConfig,
    labels: str = "onsets",
    classes: Sequence[str] = AAM_CLASSES,
    overrun_s: float = DEFAULT_OVERRUN_S,
) -> dict[str, Any]:
    """One track -> arrays. Pure: reads only the track's files, writes nothing.

    Returns ``{"track_id", "source_id", "audio": str, "duration_s": float,
    "mel": float32 (frames, n_mels) dB, "labels": uint8 (frames, len(classes))}``, plus
    ``"pitch"`` uint8 (frames, 88) for ``labels="onsets+pitch"``, ``"roles"`` uint8 (frames, 5)
    for ``labels="onsets+roles"`` (which also reads the segments ARFF).
    Raises :class:`TrackError` (file + one-line reason) for any unusable input.
    """
    if labels not in LABEL_MODES:
        raise ValueError(f"labels must be one of {LABEL_MODES}, not {labels!r}")
    kind = annotation_kind(labels)
    ann = track.annotation(kind)
    if ann is None:
        missing = track.expected_annotation(kind)
        raise TrackError(missing, f"{missing}: missing {kind} annotation")
    try:
        if kind == "onsets":
            table = read_onsets(ann)
            ann_end = float(table.times[-1]) if len(table.times) else 0.0
            if len(table.times) == 0:
                raise TrackError(ann, f"{ann}: no onset events")
        else:
            segments = read_segments(ann)
            if not segments:
                raise TrackError(ann, f"{ann}: no segments")
            ann_end = max(s.start for s in segments)
    except ArffError as exc:
        raise TrackError(ann, str(exc)) from None
    try:
        mel, duration = file_logmel(track.audio, cfg)  # (frames, n_mels)
    except AudioError as exc:
        raise TrackError(track.audio, str(exc)) from None
    try:
        check_annotation_fits(ann_end, duration, str(ann), track.audio.name, overrun_s)
    except LabelError as exc:
        raise TrackError(ann, str(exc)) from None
    times = cfg.frame_times(mel.shape[0])  # (frames,)
    try:
        if kind == "onsets":
            check_onsets_complete(table, duration, where=str(ann))
            roll = onset_roll(table, times, classes, where=str(ann))
        else:
            check_segments_complete(segments, duration, where=str(ann))
            roll = segment_roll(segments, times, classes, where=str(ann))
    except LabelError as exc:
        raise TrackError(ann, str(exc)) from None
    if not np.all(np.isfinite(mel)):
        raise TrackError(track.audio, f"{track.audio}: log-mel holds non-finite values")
    out = {
        "track_id": track.track_id,
        "source_id": track.source_id,
        "sources": list(track.sources),
        "audio": str(track.audio),
        "duration_s": float(duration),
        "mel": mel,
        "labels": roll,
    }
    if PITCH_FIELD in aux_fields(labels):
        out[PITCH_FIELD] = pitch_roll(table, times)
    if ROLES_FIELD in aux_fields(labels):
        out[ROLES_FIELD] = _roles(track, table, times)
    return out


def _roles(track: Track, table: OnsetTable, times: np.ndarray) -> np.ndarray:
    """The role roll of ``track`` (onsets ``table`` already read): reads its segments ARFF."""
    ann = track.annotation("segments")
    if ann is None:
        missing = track.expected_annotation("segments")
        raise TrackError(missing, f"{missing}: missing segments annotation (--labels onsets+roles reads it)")
    try:
        return role_roll(table, read_segments(ann), times, where=str(ann))
    except (ArffError, LabelError) as exc:
        raise TrackError(ann, str(exc)) from None


def _aux(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """The auxiliary targets among ``arrays``, as uint8."""
    return {k: np.asarray(arrays[k], dtype=np.uint8) for k in AUX_FIELDS if k in arrays}


def to_record(arrays: dict[str, Any], split: str) -> dict[str, Any]:
    """:func:`process_track` output + split -> a dict with exactly the record schema's keys."""
    mel = np.asarray(arrays["mel"]).astype(np.float16)  # (frames, n_mels)
    return {
        "track_id": arrays["track_id"],
        "source_id": arrays["source_id"],
        "split": split,
        "n_frames": int(mel.shape[0]),
        "mel": mel,
        "labels": np.asarray(arrays["labels"], dtype=np.uint8),  # (frames, n_classes)
        **_aux(arrays),
    }


# ----------------------------------------------------------------------------- cache


def _file_sig(path: storage.AnyPath | None) -> list[Any]:
    if path is None:
        return [None]
    return storage.signature(path)


def fingerprint(
    track: Track, cfg: FeatureConfig, labels: str, classes: Sequence[str], overrun_s: float
) -> str:
    """sha256 of everything a cached track depends on (inputs' path/size/mtime, setup)."""
    key = {
        "feature_config": cfg.to_dict(),
        "labels": labels,
        "classes": list(classes),
        "overrun_s": overrun_s,
        "max_end_gap_s": MAX_END_GAP_S,
        "audio": _file_sig(track.audio),
        "annotation": _file_sig(track.annotation(annotation_kind(labels))),
        **({"segments": _file_sig(track.annotation("segments"))} if ROLES_FIELD in aux_fields(labels) else {}),
        "source_id": track.source_id,
        "sources": list(track.sources),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _cache_path(work: storage.AnyPath, track_id: str) -> storage.AnyPath:
    return work / f"{track_id}.npz"


def save_cached(path: storage.AnyPath, arrays: dict[str, Any], fp: str) -> None:
    """Write one track's arrays atomically (temporary name, then rename). mel as float16."""
    meta = {k: arrays[k] for k in ("track_id", "source_id", "sources", "audio", "duration_s")}
    meta["n_frames"] = int(np.asarray(arrays["mel"]).shape[0])
    with storage.atomic_write(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            mel=np.asarray(arrays["mel"]).astype(np.float16),
            labels=np.asarray(arrays["labels"], dtype=np.uint8),
            **_aux(arrays),
            meta=np.array(json.dumps(meta)),
            fingerprint=np.array(fp),
        )
        fh.flush()
        os.fsync(fh.fileno())


def cached_meta(path: storage.AnyPath) -> dict[str, Any]:
    """The small metadata of a cached track (track_id, source_id, audio, duration_s, n_frames)."""
    with storage.open_file(path) as fh, np.load(fh, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


def load_cached(path: storage.AnyPath, fp: str | None = None) -> dict[str, Any] | None:
    """A cached track (mel float16), or ``None`` when absent, unreadable or stale."""
    with storage.errors(path):
        if not path.is_file():
            return None
    try:
        with storage.open_file(path) as fh, np.load(fh, allow_pickle=False) as z:
            if fp is not None and str(z["fingerprint"]) != fp:
                return None
            out: dict[str, Any] = json.loads(str(z["meta"]))
            out["mel"] = z["mel"]
            out["labels"] = z["labels"]
            for name in AUX_FIELDS:
                if name in z.files:
                    out[name] = z[name]
    except Exception:  # noqa: BLE001 - a damaged cache file is recomputed
        return None
    return out


@dataclass(frozen=True)
class TrackJob:
    """One track to build, with everything :func:`cached_track` needs (picklable)."""

    track: Track
    cfg: FeatureConfig
    labels: str
    classes: tuple[str, ...]
    overrun_s: float
    work: storage.AnyPath  # OUT/.work


def try_process_track(
    track: Track,
    cfg: FeatureConfig,
    labels: str = "onsets",
    classes: Sequence[str] = AAM_CLASSES,
    overrun_s: float = DEFAULT_OVERRUN_S,
) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """:func:`process_track` that never raises for a bad track (both runners call this).

    Returns ``(arrays, None)`` or ``(None, {"track", "file", "reason"})`` (a skipped entry).
    """
    try:
        return process_track(track, cfg, labels, classes, overrun_s), None
    except TrackError as exc:
        return None, Problem(track.track_id, exc.file, str(exc)).to_dict()
    except Exception as exc:  # noqa: BLE001 - one odd track never stops the build
        msg = f"{track.audio}: unexpected {type(exc).__name__}: {exc}".replace("\n", " ")
        return None, Problem(track.track_id, str(track.audio), msg).to_dict()


def cached_track(job: TrackJob) -> tuple[dict[str, Any] | None, dict[str, str] | None, bool]:
    """The per-track step of both runners, in a worker: the cached arrays of the track when
    ``OUT/.work/<track_id>.npz`` holds them under the current :func:`fingerprint`, else
    :func:`try_process_track` and the result cached (atomically).

    Returns ``(arrays, None, reused)`` (mel float16 when reused, float32 when computed) or
    ``(None, skipped entry, False)``.
    """
    t = job.track
    fp = fingerprint(t, job.cfg, job.labels, job.classes, job.overrun_s)
    cache = _cache_path(job.work, t.track_id)
    cached = load_cached(cache, fp)
    if cached is not None:
        return cached, None, True
    with storage.errors(cache):
        if cache.exists():  # stale or damaged
            cache.unlink()
    arrays, problem = try_process_track(t, job.cfg, job.labels, job.classes, job.overrun_s)
    if arrays is None:
        return None, problem, False
    save_cached(cache, arrays, fp)
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay > 0:
        time.sleep(delay)
    return arrays, None, False


def _run_job(job: TrackJob) -> tuple[dict[str, str] | None, bool]:
    """Worker of the local pool: (skipped entry or ``None``, reused from the cache)."""
    _, problem, reused = cached_track(job)
    return problem, reused


def _init_worker() -> None:
    """One BLAS/OpenMP thread per worker: the pool already uses every core it was given, and
    nested BLAS threads (the mel filterbank product) would oversubscribe them."""
    from threadpoolctl import threadpool_limits

    from iad_tf.workers import ignore_interrupt

    ignore_interrupt()
    threadpool_limits(limits=1)


#: Imported once by the fork server, so forked workers start with them loaded.
_PRELOAD = ["iad_tf.data.build", "iad_tf.audio", "soundfile", "soxr", "threadpoolctl"]


def _worker_context() -> multiprocessing.context.BaseContext:
    """Worker start method: never a plain fork (the parent may hold TensorFlow's threads).

    A fork server (a fresh process that imports the decoder & co once and forks each worker)
    where available, so the workers do not each pay the imports again; else spawn.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def _run_jobs(
    jobs: list[TrackJob], workers: int, progress: bool
) -> tuple[list[dict[str, str]], int]:
    """Run jobs on ``workers`` processes (inline when 1), with a progress bar.
    Returns (skipped entries, number of tracks reused from the cache)."""
    from tqdm import tqdm

    problems: list[dict[str, str]] = []
    reused = 0
    bar = tqdm(total=len(jobs), desc="tracks", unit="track", disable=None if progress and jobs else True)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                res, hit = _run_job(job)
                if res:
                    problems.append(res)
                reused += hit
                bar.update()
            return problems, reused
        ctx = _worker_context()
        with cf.ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker
        ) as pool:
            futures = {pool.submit(_run_job, job): job for job in jobs}
            try:
                for fut in cf.as_completed(futures):
                    res, hit = fut.result()
                    if res:
                        problems.append(res)
                    reused += hit
                    bar.update()
            except BaseException:
                from iad_tf.workers import stop_pool

                stop_pool(pool)
                raise
        return problems, reused
    finally:
        bar.close()


# ----------------------------------------------------------------------------- assembly


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide the records' content."""
    out = {"python": sys.version.split()[0]}
    for name in _VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def auto_shards(n_tracks: int, n_bytes: int) -> int:
    """Shards for one split: about TARGET_SHARD_BYTES each, at most one per track."""
    if n_tracks == 0:
        return 0
    return max(1, min(n_tracks, math.ceil(n_bytes / TARGET_SHARD_BYTES)))


def prepare_work(out: storage.AnyPath) -> storage.AnyPath:
    """``OUT/.work`` (the per-track cache of both runners) created, its temporary leftovers of
    an interrupted run removed; finished entries stay for :func:`cached_track` to check."""
    work = out / WORK_DIR
    with storage.errors(work):
        work.mkdir(parents=True, exist_ok=True)
        for stale in work.glob("*.tmp"):
            stale.unlink(missing_ok=True)
    return work


def _clear_outputs(out: storage.AnyPath) -> None:
    """Remove a previous manifest and every shard of a build (``<split>-NNNNN-of-NNNNN
    .tfrecord``, complete or temporary) from ``out``; other files are left alone."""
    from tfrecords_tools.reader import SHARD_RE

    manifest = out / "manifest.json"
    if manifest.exists():
        manifest.unlink()
    for p in out.iterdir():
        m = SHARD_RE.match(p.name.removesuffix(".tmp"))
        if p.is_file() and m is not None and m.group("prefix") in SPLITS:
            p.unlink()


def _write_split(
    out: storage.AnyPath,
    split: str,
    ids: list[str],
    work: storage.AnyPath,
    n_shards: int,
    schema: Schema,
    progress: bool,
    on_track: Callable[[dict[str, Any]], None],
) -> dict[str, dict[str, Any]]:
    """Write one split's shards from the cache, in ``ids`` order; ``on_track`` sees each.
    For a URL ``out`` the shards are written locally and each uploaded when complete."""
    import tempfile

    from tqdm import tqdm

    from tfrecords_tools.writer import ShardedWriter

    with tempfile.TemporaryDirectory(prefix="iad-tf-shards-") as tmp:
        stage = Path(tmp) if storage.is_remote(out) else out
        with ShardedWriter(stage, split, n_shards, schema) as writer:
            for tid in tqdm(ids, desc=f"writing {split}", unit="track", disable=None if progress else True):
                cached = load_cached(_cache_path(work, tid))
                if cached is None:
                    raise BuildError(f"{_cache_path(work, tid)}: cache file vanished or is damaged")
                cached["split"] = split
                on_track(cached)
                writer.write(to_record(cached, split))
            info = writer.close()
        if stage is not out:
            for name in info:
                storage.put_file(stage / name, out / name)
                (stage / name).unlink()
        return info


def check_options(opts: BuildOptions) -> dict[str, str] | None:
    """Check the options that decide the plan (:class:`BuildError`, ``SplitError``); returns
    the ``--split-file`` map (``None`` without one)."""
    if opts.labels not in LABEL_MODES:
        raise BuildError(f"--labels must be one of {', '.join(LABEL_MODES)}")
    check_fractions(opts.val_fraction, opts.test_fraction)
    return read_split_file(opts.split_file) if opts.split_file else None


def plan_tracks(
    roots: Sequence[str | Path], opts: BuildOptions, listings: Sequence[Sequence[str]] | None = None
) -> tuple[list[Track], dict[str, str], list[dict[str, str]]]:
    """Discover tracks and assign splits: (usable tracks, {track_id: split}, skipped entries).

    ``listings``: each root's files as :func:`iad_tf.aam.dataset.discover` takes them (the
    Beam runner lists them with ``MatchAll``); default: listed here. Checks the options first
    (:class:`BuildError`, ``SplitError``). Used by both runners.
    """
    split_map = check_options(opts)
    tracks, found_problems = discover(roots, listings)
    skipped: list[dict[str, str]] = [p.to_dict() for p in found_problems]
    split_of: dict[str, str] = {}
    usable: list[Track] = []
    for t in tracks:
        split = assign_split(t.track_id, t.source_id, split_map, opts.val_fraction,
                             opts.test_fraction, t.sources)
        if split is None:
            if len(t.sources) > 1:
                where = str(opts.split_file or t.root / "sources.json")
                why = (f"its source songs {', '.join(t.sources)} fall in different splits "
                       "(a generated track trains only where all its sources do)")
            else:
                where = str(opts.split_file)
                why = f"{opts.split_file}: lists neither track {t.track_id} nor its source {t.source_id}"
            skipped.append(Problem(t.track_id, where, why).to_dict())
            continue
        split_of[t.track_id] = split
        usable.append(t)
    return usable, split_of, skipped


def check_outcome(
    n_good: int, skipped: list[dict[str, str]], roots: Sequence[str | Path], strict: bool
) -> None:
    """Raise :class:`BuildError` when no track is usable, or on any skip with ``strict``."""
    if not n_good:
        reasons = "; ".join(p["reason"] for p in skipped[:5])
        raise BuildError(f"no usable tracks in {', '.join(map(str, roots))}" + (f" ({reasons})" if reasons else ""))
    if strict and skipped:
        lines = "\n".join(f"  {p['track']}: {p['reason']}" for p in skipped)
        raise BuildError(f"--strict: {len(skipped)} track(s) skipped (nothing written):\n{lines}")


def shards_for_split(opts: BuildOptions, n_tracks: int, n_frames: int, cfg: FeatureConfig, n_classes: int) -> int:
    """Shards of one split: ``--shards-per-split`` (at most one per track) or auto by size."""
    if opts.shards_per_split:
        return min(opts.shards_per_split, n_tracks)
    return auto_shards(n_tracks, n_frames * (cfg.n_mels * 2 + n_classes))


def build_records(
    roots: Sequence[str | Path],
    out_dir: str | Path,
    options: BuildOptions | None = None,
    cfg: FeatureConfig | None = None,
) -> BuildResult:
    """Build the records directory ``out_dir`` from AAM ``roots``. See the module docstring.

    Raises :class:`BuildError` when nothing usable remains, or on any skip with ``strict``.
    """
    opts = options or BuildOptions()
    cfg = cfg or FeatureConfig()
    classes = tuple(AAM_CLASSES)
    usable, split_of, skipped = plan_tracks(roots, opts)

    out = storage.to_path(out_dir)
    storage.check_bucket(out)
    work = prepare_work(out)
    jobs = [TrackJob(t, cfg, opts.labels, classes, opts.overrun_s, work) for t in usable]
    failed, reused = _run_jobs(jobs, opts.workers, opts.progress)
    skipped.extend(failed)
    failed_ids = {p["track"] for p in failed}
    good = [t for t in usable if t.track_id not in failed_ids]
    skipped.sort(key=lambda p: (p["track"], p["file"]))
    check_outcome(len(good), skipped, roots, opts.strict)

    manifest = _assemble(out, work, good, split_of, skipped, cfg, classes, opts, root_generators(roots))
    from tfrecords_tools.reader import write_manifest

    manifest_path = write_manifest(out, manifest)  # last: the commit marker
    if not opts.keep_cache:
        storage.remove_tree(work)
    return BuildResult(out, manifest_path, manifest, computed=len(jobs) - len(failed) - reused, reused=reused, skipped=skipped)


def track_summary(rec: dict[str, Any]) -> dict[str, Any]:
    """The small per-track numbers the manifest is assembled from (both runners).

    ``rec``: track_id, source_id, split, audio, duration_s, mel float16 (frames, n_mels),
    labels uint8 (frames, C) (a cached track or :func:`to_record` output plus metadata).
    Returns JSON-able values: ``active_frames`` [C] ints and, for train tracks only,
    ``mel_sum``/``mel_sq`` [n_mels] float64 sums over frames (``None`` otherwise).
    """
    mel, lab = np.asarray(rec["mel"]), np.asarray(rec["labels"])  # (frames, n_mels) f16, (frames, C)
    out: dict[str, Any] = {
        "track_id": rec["track_id"],
        "split": rec["split"],
        "source_id": rec["source_id"],
        "sources": list(rec.get("sources") or [rec["source_id"]]),
        "n_frames": int(mel.shape[0]),
        "duration_s": round(float(rec["duration_s"]), 6),
        "audio": rec["audio"],
        "active_frames": lab.sum(axis=0, dtype=np.int64).tolist(),  # (C,)
        "mel_sum": None,
        "mel_sq": None,
    }
    if rec["split"] == "train":
        m = mel.astype(np.float64)
        out["mel_sum"] = m.sum(axis=0).tolist()  # (n_mels,)
        out["mel_sq"] = np.square(m).sum(axis=0).tolist()
    return out


def assemble_manifest(
    summaries: list[dict[str, Any]],
    shards: dict[str, dict[str, Any]],
    skipped: list[dict[str, str]],
    cfg: FeatureConfig,
    classes: tuple[str, ...],
    labels: str,
    generators: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest (see docs/ARCHITECTURE.md) from :func:`track_summary` rows and shard info.

    ``generators``: {root: generator.json or None} of the input roots (provenance).

    Summaries are accumulated in track-id order whatever order they arrive in, so both runners
    produce the same statistics to the last bit.
    """
    n_cls = len(classes)
    rows = sorted(summaries, key=lambda r: r["track_id"])
    splits = {s: [r["track_id"] for r in rows if r["split"] == s] for s in SPLITS}
    track_counts = {s: np.zeros(n_cls, dtype=np.int64) for s in SPLITS}
    active_frames = {s: np.zeros(n_cls, dtype=np.int64) for s in SPLITS}
    frames = dict.fromkeys(SPLITS, 0)
    mel_sum = np.zeros(cfg.n_mels, dtype=np.float64)
    mel_sq = np.zeros(cfg.n_mels, dtype=np.float64)
    for r in rows:
        split = r["split"]
        per_class = np.asarray(r["active_frames"], dtype=np.int64)  # (n_cls,)
        active_frames[split] += per_class
        track_counts[split] += per_class > 0
        frames[split] += r["n_frames"]
        if split == "train":
            mel_sum += np.asarray(r["mel_sum"], dtype=np.float64)
            mel_sq += np.asarray(r["mel_sq"], dtype=np.float64)
    if frames["train"]:
        mean = mel_sum / frames["train"]
        std = np.sqrt(np.maximum(mel_sq / frames["train"] - mean**2, 0.0))
        mel_stats: dict[str, Any] = {"train": {"mean": mean.tolist(), "std": std.tolist()}}
    else:
        mel_stats = {"train": None}
    meta_keys = ("split", "source_id", "sources", "n_frames", "duration_s", "audio")
    return {
        "schema": record_schema(cfg, n_cls, aux=aux_fields(labels)).to_json(),
        "shards": shards,
        "feature_config": cfg.to_dict(),
        "classes": list(classes),
        "labels": labels,
        "splits": splits,
        "tracks": {r["track_id"]: {k: r[k] for k in meta_keys} for r in rows},
        "class_track_counts": {
            s: {c: int(v) for c, v in zip(classes, track_counts[s], strict=True)} for s in SPLITS
        },
        "class_active_frames": {
            s: {c: int(v) for c, v in zip(classes, active_frames[s], strict=True)} for s in SPLITS
        },
        "frames": frames,
        "mel_stats": mel_stats,
        "skipped": skipped,
        "generators": dict(generators or {}),
        "versions": package_versions(),
    }


def _assemble(
    out: storage.AnyPath,
    work: storage.AnyPath,
    good: list[Track],
    split_of: dict[str, str],
    skipped: list[dict[str, str]],
    cfg: FeatureConfig,
    classes: tuple[str, ...],
    opts: BuildOptions,
    generators: dict[str, Any],
) -> dict[str, Any]:
    """Write all shards from the cache and return the manifest (not yet written)."""
    splits = {s: sorted(t.track_id for t in good if split_of[t.track_id] == s) for s in SPLITS}
    summaries: list[dict[str, Any]] = []

    def on_track(rec: dict[str, Any]) -> None:
        summaries.append(track_summary(rec))

    _clear_outputs(out)
    shards: dict[str, dict[str, Any]] = {}
    schema = record_schema(cfg, len(classes), aux=aux_fields(opts.labels))
    for split in SPLITS:
        ids = splits[split]
        if not ids:
            continue
        n_frames = 0 if opts.shards_per_split else sum(cached_meta(_cache_path(work, t))["n_frames"] for t in ids)
        n = shards_for_split(opts, len(ids), n_frames, cfg, len(classes))
        shards.update(_write_split(out, split, ids, work, n, schema, opts.progress, on_track))
    return assemble_manifest(summaries, shards, skipped, cfg, classes, opts.labels, generators)
