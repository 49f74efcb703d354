"""``build-records --runner beam``: the same build as :mod:`iad_tf.data.build` as an Apache
Beam pipeline, so it runs unchanged on a laptop (DirectRunner) or a Flink/Spark/Dataflow
cluster (``--beam-options "--runner=FlinkRunner ..."``).

Pipeline (every per-track step is the local path's own function, no second implementation)::

    Create(tracks + split, from plan_tracks) -> Reshuffle
      -> ParDo(try_process_track -> to_record -> Schema.encode, track_summary)
           main output (split, record bytes, summary) | side output "skipped" (bad tracks)
      -> Partition by split -> WriteToTFRecord per split (fixed shard count,
         ``<split>-00000-of-0000N.tfrecord``)
      -> Flatten(written shard names) -> Map(count_and_hash)
      -> summaries, skipped entries and shard counts/hashes as JSON lists in ``OUT/.beam-<id>/``

Each written shard is counted and hashed inside the pipeline (a step after the write), so
the driver reads only small JSON lines back and assembles the manifest with :func:`iad_tf.data.build.assemble_manifest` (statistics accumulated in
track-id order, so they equal the local build's to the last bit). Records hold the same
tracks, arrays and splits as the local build; which shard a track lands in is Beam's choice.

Differences from the local runner: no per-track cache (a failed pipeline is rerun whole;
cluster runners retry failed work items themselves); with auto sharding the shard count is
fixed before the pipeline runs, from the audio durations in the file headers; a split whose
tracks were skipped may keep an empty shard. Roots and ``out`` may be URLs: workers read
audio through :mod:`iad_tf.storage` (fsspec) and write shards through Beam's own file
systems (``apache-beam[gcp,aws]``; ``--s3_endpoint_url`` and friends in ``--beam-options``);
local paths must be mounted at the same path on every worker. Workers need iad-tf installed.
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

from iad_tf.aam.dataset import Track, root_generators
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.data.build import (
    BuildError,
    BuildOptions,
    BuildResult,
    _clear_outputs,
    assemble_manifest,
    check_outcome,
    plan_tracks,
    shards_for_split,
    to_record,
    track_summary,
    try_process_track,
)
from iad_tf.data.records import SPLITS, record_schema
from tfrecords_tools import Schema
from tfrecords_tools.writer import shard_name

SKIPPED_TAG = "skipped"
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


def estimated_frames(track: Track, cfg: FeatureConfig) -> int:
    """Frames the track will have, from its audio header (0 when unreadable: the worker reports it)."""
    import soundfile as sf

    from iad_tf import storage

    try:
        if storage.is_remote(track.audio):
            with storage.open_file(track.audio) as fh:
                info = sf.info(fh)
        else:
            info = sf.info(str(track.audio))
        seconds = info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - librosa/audioread fallback (as load_audio)
        try:
            import librosa

            seconds = float(librosa.get_duration(path=str(track.audio)))
        except Exception:  # noqa: BLE001
            return 0
    return cfg.n_frames_for(int(seconds * cfg.sample_rate))


def plan_shards(
    usable: list[Track], split_of: dict[str, str], opts: BuildOptions, cfg: FeatureConfig, n_classes: int
) -> dict[str, int]:
    """Fixed shard count of every non-empty split (same rule as the local build)."""
    out: dict[str, int] = {}
    for split in SPLITS:
        tracks = [t for t in usable if split_of[t.track_id] == split]
        if not tracks:
            continue
        n_frames = 0 if opts.shards_per_split else sum(estimated_frames(t, cfg) for t in tracks)
        out[split] = shards_for_split(opts, len(tracks), n_frames, cfg, n_classes)
    return out


class ProcessTrack:
    """One (track, split) -> (split, serialized record, summary), or a skipped entry on the
    ``"skipped"`` side output. A picklable callable for ``beam.FlatMap``."""

    def __init__(self, cfg: FeatureConfig, labels: str, classes: tuple[str, ...], overrun_s: float) -> None:
        self.cfg, self.labels, self.classes, self.overrun_s = cfg, labels, classes, overrun_s
        self.schema: Schema = record_schema(cfg, len(classes))

    def __call__(self, item: tuple[Track, str]) -> Iterator[Any]:
        from apache_beam.pvalue import TaggedOutput

        track, split = item
        arrays, problem = try_process_track(track, self.cfg, self.labels, self.classes, self.overrun_s)
        if arrays is None:
            yield TaggedOutput(SKIPPED_TAG, problem)
            return
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


@contextlib.contextmanager
def loopback_grpc(beam_args: Sequence[str]) -> Iterator[None]:
    """For a local DirectRunner run, bind Beam's gRPC servers to 127.0.0.1.

    The portable DirectRunner (``--direct_running_mode=multi_processing``) serves its SDK
    worker processes over gRPC control/data/state/logging servers that
    ``apache_beam.runners.portability.fn_api_runner.worker_handlers.GrpcServer`` binds to
    ``[::]:0``, every interface, though its workers are local processes dialling ``localhost``.
    Within this block ``grpc.server`` returns servers whose ``[::]:`` bindings become
    ``127.0.0.1:``; other runners (a cluster) are left alone."""
    runner = next((a.split("=", 1)[1] for a in beam_args if a.startswith("--runner=")), "DirectRunner")
    if runner not in ("DirectRunner", "direct"):
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


def run_pipeline(
    beam_args: Sequence[str],
    items: list[tuple[Track, str]],
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
            | "ProcessTrack" >> beam.FlatMap(body).with_outputs(SKIPPED_TAG, main="records")
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


def _read_side(side_dir: Any, name: str) -> list[dict[str, Any]]:
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


def build_records_beam(
    roots: Sequence[str | Path],
    out_dir: str | Path,
    options: BuildOptions | None = None,
    cfg: FeatureConfig | None = None,
    beam_args: Sequence[str] | None = None,
) -> BuildResult:
    """Build ``out_dir`` from AAM ``roots`` with a Beam pipeline (see the module docstring).

    ``beam_args``: pipeline flags (``--runner=...``); default: DirectRunner with
    ``options.workers`` processes. Raises :class:`BuildError` as the local build does.
    """
    from iad_tf import storage

    opts = options or BuildOptions()
    cfg = cfg or FeatureConfig()
    classes = tuple(AAM_CLASSES)
    import_beam()
    args = list(beam_args) if beam_args else default_beam_args(opts.workers)
    usable, split_of, skipped = plan_tracks(roots, opts)
    if not usable:
        check_outcome(0, skipped, roots, opts.strict)

    out = storage.to_path(out_dir)
    storage.check_bucket(out)
    with storage.errors(out):
        out.mkdir(parents=True, exist_ok=True)
        if out.exists():
            _clear_outputs(out)
    shard_counts = plan_shards(usable, split_of, opts, cfg, len(classes))
    side_dir = out / f".beam-{uuid.uuid4().hex[:12]}"
    items = [(t, split_of[t.track_id]) for t in usable]
    body = ProcessTrack(cfg, opts.labels, classes, opts.overrun_s)
    try:
        try:
            run_pipeline(args, items, body, out, shard_counts, side_dir)
        except Exception as exc:  # noqa: BLE001 - runner errors come in many types
            first = (str(exc).strip().splitlines() or [""])[0][:500]
            raise BuildError(f"beam pipeline failed ({' '.join(args)}): {type(exc).__name__}: {first}") from exc
        if storage.is_remote(out):  # written by Beam's own file system: list afresh
            out.fs.invalidate_cache()
        summaries = _read_side(side_dir, "summaries")
        skipped = sorted(skipped + _read_side(side_dir, "skipped"), key=lambda p: (p["track"], p["file"]))
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

    manifest_path = write_manifest(out, manifest)
    return BuildResult(out, manifest_path, manifest, computed=len(summaries), reused=0, skipped=skipped)
