"""``build-records --runner beam``: the same build as :mod:`iad_tf.data.build` as Apache Beam
pipelines, so it runs unchanged on a laptop (DirectRunner) or a Flink/Spark/Dataflow cluster
(``--beam-options "--runner=FlinkRunner ..."``).

Two pipelines on the same runner (every step is the local path's own function, no second
implementation)::

    1. discovery: Create(glob patterns of every root, from dataset.listing_patterns)
         -> fileio.MatchAll (Beam's file systems: local, s3://, gs://) -> Reshuffle
         -> Map(path, size, audio-header seconds of each mix when sharding by size)
         -> one JSON list in OUT/.beam-<id>/listing.json
       driver: dataset.discover(roots, listings) pairs mixes and annotations (the local
         runner's discovery, fed the matched files instead of its own listing), assign_split,
         shard counts per split (from the header durations)
    2. build: Create(tracks as URL dicts + split) -> Reshuffle
      -> ParDo(cached_track: fingerprint, reuse OUT/.work/<id>.npz or process + cache it;
               to_record -> Schema.encode, track_summary)
           main output (split, record bytes, summary) | "skipped" (bad tracks)
           | "origin" ("reused" or "computed" per track)
      -> Partition by split -> WriteToTFRecord per split (fixed shard count,
         ``<split>-00000-of-0000N.tfrecord``)
      -> Flatten(written shard names) -> Map(count_and_hash)
      -> summaries, skipped entries, origin counts and shard counts/hashes as JSON lists in
         ``OUT/.beam-<id>/``

Why two pipelines: ``WriteToTFRecord`` needs its shard count when the pipeline is
constructed, and that count depends on how many usable tracks each split holds (and, with
auto sharding, their durations), which only the listing tells. The discovery pipeline is
small (one match per pattern, one header read per mix) and runs where the build runs, so
on a cluster the listing goes through the cluster's file systems (a multi-process
DirectRunner runs it on threads: it waits on I/O, and starting worker processes for it
cost ~3.5 s on 8 tracks, measured, for nothing); the driver then reads
only JSON lines back, plus each root's ``sources.json``/``generator.json`` (one small file
per root, through :mod:`iad_tf.storage`).

Resumable like the local build, with the same cache: a worker (not the driver) computes a
track's :func:`~iad_tf.data.build.fingerprint`, reuses ``OUT/.work/<track_id>.npz`` when it
matches, else processes the track and saves it atomically (:func:`~iad_tf.data.build.cached_track`,
the local pool's own step). A rerun after a failed or killed pipeline recomputes only the
tracks not yet cached; a build interrupted under one runner resumes under the other. Stale
leftovers of our own interrupted runs (``OUT/.beam-<12 hex>/`` side folders and the
``OUT/beam-temp-<split>-<32 hex>/`` folders of our WriteToTFRecord) are removed at start.
``manifest.json`` is written last; ``OUT/.work`` is deleted after it unless ``keep_cache``.

Each written shard is counted and hashed inside the pipeline (a step after the write), so
the driver assembles the manifest from small JSON lists with
:func:`iad_tf.data.build.assemble_manifest` (statistics accumulated in track-id order, so
they equal the local build's to the last bit). Records hold the same tracks, arrays and
splits as the local build; which shard a track lands in is Beam's choice.

Other differences from the local runner: a split whose tracks were skipped may keep an
empty shard; roots must be on a file system Beam has (local, ``gs://``, ``s3://``; not
fsspec's ``memory://``). Roots and ``out`` may be URLs: workers read audio and the cache
through :mod:`iad_tf.storage` (fsspec) and write shards through Beam's own file systems
(``apache-beam[gcp,aws]``; ``--s3_endpoint_url`` and friends in ``--beam-options``); local
paths must be mounted at the same path on every worker. Workers need iad-tf installed.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from iad_tf.aam.dataset import (
    Track,
    check_root,
    listed_rel,
    listing_patterns,
    mix_track_id,
    root_generators,
)
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.data.build import (
    BuildError,
    BuildOptions,
    BuildResult,
    TrackJob,
    _clear_outputs,
    assemble_manifest,
    cached_track,
    check_options,
    check_outcome,
    plan_tracks,
    prepare_work,
    shards_for_split,
    to_record,
    track_summary,
)
from iad_tf.data.records import SPLITS, aux_fields, record_schema
from tfrecords_tools import Schema
from tfrecords_tools.writer import shard_name

SKIPPED_TAG = "skipped"
ORIGIN_TAG = "origin"
#: Folders our own runs leave under OUT when interrupted: side folders and WriteToTFRecord's
#: temporary folders (``beam-temp-<file prefix>-<uuid1 hex>``); removed at the next start.
LEFTOVER_RE = re.compile(r"^(\.beam-[0-9a-f]{12}|beam-temp-(train|val|test)-[0-9a-f]{32})$")
SHARD_TEMPLATE = "-SSSSS-of-NNNNN"  # with suffix ".tfrecord": train-00000-of-00004.tfrecord
INSTALL_HINT = "apache-beam is not installed: pip install 'iad-tf[beam]'"


def import_beam() -> Any:
    """``apache_beam``, or :class:`BuildError` with the install command."""
    try:
        import apache_beam as beam
    except ImportError as exc:
        raise BuildError(f"--runner beam: {INSTALL_HINT} ({exc})") from None
    return beam


def parse_beam_options(text: str | None) -> list[str]:
    """``--beam-options`` text -> argv list (shell quoting rules)."""
    try:
        return shlex.split(text or "")
    except ValueError as exc:
        raise BuildError(f"--beam-options: cannot parse {text!r} ({exc})") from None


def default_beam_args(workers: int) -> list[str]:
    """DirectRunner flags when no ``--beam-options`` are given: ``workers`` processes, worker
    logs at WARNING (the SDK harness logs every bundle at INFO)."""
    if workers <= 1:
        return ["--runner=DirectRunner"]
    return [
        "--runner=DirectRunner", f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing",
        "--default_sdk_harness_log_level=WARNING",
    ]


def audio_seconds(path: str) -> float:
    """Duration of an audio file from its header (0.0 when unreadable: the build reports it)."""
    import soundfile as sf

    from iad_tf import storage

    try:
        if storage.is_remote(path):
            with storage.open_file(path) as fh:
                info = sf.info(fh)
        else:
            info = sf.info(path)
        return info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - librosa/audioread fallback (as load_audio)
        try:
            import librosa

            return float(librosa.get_duration(path=path))
        except Exception:  # noqa: BLE001
            return 0.0


class ListedFile:
    """(A discovery step) one matched file -> ``{"path", "seconds"}``; ``seconds`` is the
    header duration of a mix when ``headers`` (auto sharding), else ``None``."""

    def __init__(self, headers: bool) -> None:
        self.headers = headers

    def __call__(self, meta: Any) -> dict[str, Any]:
        from apache_beam.io.filesystems import FileSystems

        is_mix = mix_track_id(FileSystems.split(meta.path)[1]) is not None
        return {"path": meta.path, "seconds": audio_seconds(meta.path) if self.headers and is_mix else None}


def root_listings(roots: Sequence[Any], rows: list[dict[str, Any]]) -> list[list[str]]:
    """Each root's listing (paths relative to it, as :func:`iad_tf.aam.dataset.discover`
    takes them) from the matched ``rows``; a file may belong to several roots."""
    paths = sorted({r["path"] for r in rows})
    out: list[list[str]] = []
    for root in roots:
        prefix = str(root).rstrip("/") + "/"
        out.append([p[len(prefix):] for p in paths if p.startswith(prefix) and listed_rel(p[len(prefix):])])
    return out


def plan_shards(
    usable: list[Track], split_of: dict[str, str], opts: BuildOptions, cfg: FeatureConfig, n_classes: int,
    seconds: dict[str, float],
) -> dict[str, int]:
    """Fixed shard count of every non-empty split (same rule as the local build);
    ``seconds``: {audio path: header duration} from the discovery pipeline."""
    out: dict[str, int] = {}
    for split in SPLITS:
        tracks = [t for t in usable if split_of[t.track_id] == split]
        if not tracks:
            continue
        n_frames = 0 if opts.shards_per_split else sum(
            cfg.n_frames_for(int((seconds.get(str(t.audio)) or 0.0) * cfg.sample_rate)) for t in tracks)
        out[split] = shards_for_split(opts, len(tracks), n_frames, cfg, n_classes)
    return out


class ProcessTrack:
    """One (track as URLs, split) -> (split, serialized record, summary), plus ``"reused"`` or
    ``"computed"`` on the ``"origin"`` side output; or a skipped entry on the ``"skipped"``
    side output. The cache step is :func:`~iad_tf.data.build.cached_track` (``work``: the
    ``OUT/.work`` URL). A picklable callable for ``beam.FlatMap``."""

    def __init__(self, cfg: FeatureConfig, labels: str, classes: tuple[str, ...], overrun_s: float,
                 work: str) -> None:
        self.cfg, self.labels, self.classes, self.overrun_s = cfg, labels, classes, overrun_s
        self.work = work
        self.schema: Schema = record_schema(cfg, len(classes), aux=aux_fields(labels))

    def __call__(self, item: tuple[dict[str, Any], str]) -> Iterator[Any]:
        from apache_beam.pvalue import TaggedOutput

        from iad_tf import storage

        urls, split = item
        job = TrackJob(Track.from_urls(urls), self.cfg, self.labels, self.classes, self.overrun_s,
                       storage.to_path(self.work))
        arrays, problem, reused = cached_track(job)
        if arrays is None:
            yield TaggedOutput(SKIPPED_TAG, problem)
            return
        yield TaggedOutput(ORIGIN_TAG, "reused" if reused else "computed")
        rec = to_record(arrays, split)  # mel float16 (frames, n_mels), labels uint8 (frames, C)
        summary = track_summary({**rec, "audio": arrays["audio"], "duration_s": arrays["duration_s"],
                                 "sources": arrays["sources"]})
        yield split, self.schema.encode(rec), summary


def _split_index(element: tuple[str, bytes, dict[str, Any]], n: int) -> int:
    return SPLITS.index(element[0])


def _record_bytes(element: tuple[str, bytes, dict[str, Any]]) -> bytes:
    return element[1]


def _summary(element: tuple[str, bytes, dict[str, Any]]) -> dict[str, Any]:
    return element[2]


def _flag(beam_args: Sequence[str], name: str, default: str) -> str:
    """The value of ``--name=value`` in ``beam_args`` (the last one), else ``default``."""
    return next((a.split("=", 1)[1] for a in reversed(beam_args) if a.startswith(f"--{name}=")), default)


def _local_workers(beam_args: Sequence[str]) -> bool:
    """True when the SDK workers run on this machine: the DirectRunner, or a LOOPBACK
    environment (the workers are this process, dialled back by a local job service)."""
    if _flag(beam_args, "runner", "DirectRunner") in ("DirectRunner", "direct"):
        return True
    return _flag(beam_args, "environment_type", "").upper() == "LOOPBACK"


@contextlib.contextmanager
def loopback_grpc(beam_args: Sequence[str]) -> Iterator[None]:
    """For a run whose workers are local, bind Beam's gRPC servers to 127.0.0.1.

    The portable DirectRunner (``--direct_running_mode=multi_processing``) serves its SDK
    worker processes over gRPC control/data/state/logging servers that
    ``apache_beam.runners.portability.fn_api_runner.worker_handlers.GrpcServer`` binds to
    ``[::]:0``, every interface, though its workers are local processes dialling ``localhost``;
    a portable run with ``--environment_type=LOOPBACK`` serves its in-process worker pool the
    same way (``worker_pool_main``) and tells the job service to dial ``localhost``.
    Within this block ``grpc.server`` returns servers whose ``[::]:`` bindings become
    ``127.0.0.1:``; other runners (a cluster) are left alone."""
    if not _local_workers(beam_args):
        yield
        return
    import grpc

    real = grpc.server

    def loopback_server(*args: Any, **kwargs: Any) -> Any:
        server = real(*args, **kwargs)
        add = server.add_insecure_port
        server.add_insecure_port = lambda address: add(re.sub(r"^\[::\]:", "127.0.0.1:", address))
        return server

    grpc.server = loopback_server
    try:
        yield
    finally:
        grpc.server = real


def discovery_args(beam_args: Sequence[str]) -> list[str]:
    """The discovery pipeline's flags: the build's, except that a multi-process DirectRunner
    runs it on threads (listing and header reads wait on I/O; worker processes would only add
    their start-up)."""
    args = list(beam_args)
    if _flag(args, "runner", "DirectRunner") in ("DirectRunner", "direct") and \
            _flag(args, "direct_running_mode", "in_memory") == "multi_processing":
        args = [a for a in args if not a.startswith("--direct_running_mode=")]
        args.append("--direct_running_mode=multi_threading")
    return args


def run_discovery(beam_args: Sequence[str], patterns: list[str], headers: bool, side_dir: Any) -> None:
    """The discovery pipeline: match ``patterns`` (``fileio.MatchAll``) and write the matched
    files (with header durations when ``headers``) to ``side_dir/listing.json``."""
    beam = import_beam()
    from apache_beam.io import fileio
    from apache_beam.options.pipeline_options import PipelineOptions

    args = discovery_args(beam_args)
    with loopback_grpc(args), beam.Pipeline(options=PipelineOptions(args)) as p:
        files = (
            p
            | "Patterns" >> beam.Create(patterns)
            | "Match" >> fileio.MatchAll()
            | "Reshuffle" >> beam.Reshuffle()
            | "Describe" >> beam.Map(ListedFile(headers))
        )
        _save_side(beam, files, "listing", side_dir)


def run_pipeline(
    beam_args: Sequence[str],
    items: list[tuple[dict[str, Any], str]],
    body: ProcessTrack,
    out: Path,
    shard_counts: dict[str, int],
    side_dir: Path,
) -> None:
    """Build and run the pipeline; blocks until it finishes (raises on failure)."""
    beam = import_beam()
    from apache_beam.io.tfrecordio import WriteToTFRecord
    from apache_beam.options.pipeline_options import PipelineOptions

    with loopback_grpc(beam_args), beam.Pipeline(options=PipelineOptions(list(beam_args))) as p:
        results = (
            p
            | "ListTracks" >> beam.Create(items)
            | "Reshuffle" >> beam.Reshuffle()
            | "ProcessTrack" >> beam.FlatMap(body).with_outputs(SKIPPED_TAG, ORIGIN_TAG, main="records")
        )
        records = results.records
        parts = records | "BySplit" >> beam.Partition(_split_index, len(SPLITS))
        written = []
        for k, split in enumerate(SPLITS):
            if split not in shard_counts:
                continue
            written.append(
                parts[k]
                | f"Bytes[{split}]" >> beam.Map(_record_bytes)
                | f"Write[{split}]" >> WriteToTFRecord(
                    str(out / split), file_name_suffix=".tfrecord",
                    num_shards=shard_counts[split], shard_name_template=SHARD_TEMPLATE,
                )
            )
        shard_rows = (  # each shard counted and hashed by a worker once written: the driver reads none
            written
            | "Shards" >> beam.Flatten()
            | "CountAndHash" >> beam.Map(_shard_info)
        )
        _save_side(beam, shard_rows, "shards", side_dir)
        _save_side(beam, records | "Summaries" >> beam.Map(_summary), "summaries", side_dir)
        _save_side(beam, results[SKIPPED_TAG], "skipped", side_dir)
        _save_side(beam, results[ORIGIN_TAG] | "CountOrigins" >> beam.combiners.Count.PerElement(),
                   "origins", side_dir)


def _save_side(beam: Any, rows: Any, name: str, side_dir: Any) -> None:
    """Collect the small JSON-able ``rows`` into one list and write it, from a worker, to
    ``side_dir/<name>.json`` through the storage layer (one whole upload; Beam's text sink
    would write an empty file for an empty collection, which S3 refuses as a multipart upload
    of no parts)."""
    (rows | f"Collect[{name}]" >> beam.combiners.ToList()
          | f"Save[{name}]" >> beam.Map(_save_json, str(side_dir / f"{name}.json")))


def _save_json(rows: list[Any], path: str) -> None:
    from iad_tf import storage

    with storage.atomic_write(storage.to_path(path)) as tmp:
        tmp.write_text(json.dumps(rows), encoding="utf-8")


def _read_side(side_dir: Any, name: str) -> list[Any]:
    path = side_dir / f"{name}.json"
    if not path.is_file():
        raise BuildError(f"{path}: the pipeline finished but did not write it")
    return json.loads(path.read_text(encoding="utf-8"))


def _shard_info(path: str) -> dict[str, Any]:
    """(A pipeline step) one written shard -> ``{"name", "records", "sha256"}``."""
    from apache_beam.io.filesystems import FileSystems

    info = count_and_hash(path, open_file=lambda p: FileSystems.open(
        p, compression_type="uncompressed"))
    return {"name": FileSystems.split(path)[1], **info}


def count_and_hash(path: Any, chunk: int = 1 << 20, open_file: Any = None) -> dict[str, Any]:
    """``{"records": n, "sha256": hex}`` of one TFRecord file in a single pass, without
    TensorFlow: walks the framing (uint64 length, 4-byte CRC, data, 4-byte CRC); a truncated
    file raises :class:`BuildError`. CRCs are left to ``tfrecords-tools verify``.
    ``open_file(path)``: how to open it (default: the builtin ``open``, binary)."""
    import hashlib
    import struct

    sha = hashlib.sha256()
    n = 0
    with (open_file(path) if open_file else open(path, "rb")) as fh:
        while header := fh.read(12):
            if len(header) < 12:
                raise BuildError(f"{path}: truncated record header after {n} record(s)")
            sha.update(header)
            left = struct.unpack("<Q", header[:8])[0] + 4
            while left:
                block = fh.read(min(left, chunk))
                if not block:
                    raise BuildError(f"{path}: truncated record {n}")
                sha.update(block)
                left -= len(block)
            n += 1
    return {"records": n, "sha256": sha.hexdigest()}


def shard_infos(out: Path, side_dir: Path, shard_counts: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``{shard name: {"records", "sha256"}}`` of the written shards, in split order, as the
    pipeline counted and hashed them (``side_dir/shards*.jsonl``)."""
    found = {r.pop("name"): r for r in _read_side(side_dir, "shards")}
    info: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        for k in range(shard_counts.get(split, 0)):
            name = shard_name(split, k, shard_counts[split])
            if name not in found:
                raise BuildError(f"{out / name}: the pipeline finished but did not write this shard")
            info[name] = found[name]
    return info


def clear_leftovers(out: Any) -> None:
    """Remove what our own interrupted runs left in ``out`` (:data:`LEFTOVER_RE`)."""
    from iad_tf import storage

    for p in [p for p in out.iterdir() if LEFTOVER_RE.match(p.name)]:
        storage.remove_tree(p)


def build_records_beam(
    roots: Sequence[str | Path],
    out_dir: str | Path,
    options: BuildOptions | None = None,
    cfg: FeatureConfig | None = None,
    beam_args: Sequence[str] | None = None,
) -> BuildResult:
    """Build ``out_dir`` from AAM ``roots`` with Beam pipelines (see the module docstring).

    ``beam_args``: pipeline flags (``--runner=...``); default: DirectRunner with
    ``options.workers`` processes. Raises :class:`BuildError` as the local build does.
    """
    from iad_tf import storage

    opts = options or BuildOptions()
    cfg = cfg or FeatureConfig()
    classes = tuple(AAM_CLASSES)
    import_beam()
    args = list(beam_args) if beam_args else default_beam_args(opts.workers)
    check_options(opts)
    root_paths = [check_root(r) for r in roots]

    out = storage.to_path(out_dir)
    storage.check_bucket(out)
    with storage.errors(out):
        out.mkdir(parents=True, exist_ok=True)
        if out.exists():  # an object store has no empty folders
            clear_leftovers(out)
            _clear_outputs(out)
    work = prepare_work(out)
    side_dir = out / f".beam-{uuid.uuid4().hex[:12]}"
    try:
        listed = _run(run_discovery, args, side_dir, "listing",
                      [f"{str(r).rstrip('/')}/{pat}" for r in root_paths for pat in listing_patterns()],
                      not opts.shards_per_split, side_dir)
        usable, split_of, skipped = plan_tracks(roots, opts, root_listings(root_paths, listed))
        if not usable:
            check_outcome(0, skipped, roots, opts.strict)
        seconds = {r["path"]: r["seconds"] for r in listed if r["seconds"] is not None}
        shard_counts = plan_shards(usable, split_of, opts, cfg, len(classes), seconds)
        items = [(t.to_urls(), split_of[t.track_id]) for t in usable]
        body = ProcessTrack(cfg, opts.labels, classes, opts.overrun_s, str(work))
        summaries = _run(run_pipeline, args, side_dir, "summaries", items, body, out, shard_counts, side_dir)
        if storage.is_remote(out):  # written by Beam's own file system: list afresh
            out.fs.invalidate_cache()
        skipped = sorted(skipped + _read_side(side_dir, "skipped"), key=lambda p: (p["track"], p["file"]))
        origins = dict(_read_side(side_dir, "origins"))
        try:
            check_outcome(len(summaries), skipped, roots, opts.strict)
        except BuildError:
            _clear_outputs(out)
            raise
        shards = shard_infos(out, side_dir, shard_counts)
    finally:
        storage.remove_tree(side_dir)
    manifest = assemble_manifest(summaries, shards, skipped, cfg, classes, opts.labels, root_generators(roots))
    from tfrecords_tools.reader import write_manifest

    manifest_path = write_manifest(out, manifest)  # last: the commit marker
    if not opts.keep_cache:
        storage.remove_tree(work)
    return BuildResult(out, manifest_path, manifest, computed=origins.get("computed", 0),
                       reused=origins.get("reused", 0), skipped=skipped)


def _run(pipeline: Any, args: list[str], side_dir: Any, read: str, *rest: Any) -> list[Any]:
    """Run ``pipeline(args, *rest)``; a failure is one :class:`BuildError` line naming the
    runner flags. Returns the side list ``read`` the pipeline wrote."""
    try:
        pipeline(args, *rest)
    except Exception as exc:  # noqa: BLE001 - runner errors come in many types
        first = (str(exc).strip().splitlines() or [""])[0][:500]
        raise BuildError(f"beam pipeline failed ({' '.join(args)}): {type(exc).__name__}: {first}") from exc
    return _read_side(side_dir, read)
