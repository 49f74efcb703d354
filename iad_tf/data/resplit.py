"""Re-split an existing records directory: the same records, new train/val/test assignment.

Cross-validation needs one records directory per fold (the training pipeline, evaluation and
the manifest statistics (mel standardisation, class counts, pos_weight) all read the
manifest's splits). Re-splitting copies the records of the source directory's manifest shards
into new shards with the split field rewritten and assembles a fresh manifest with the same
function as ``build-records``, so the fold's ``mel_stats`` are the fold's training songs'
own. TF-free (records are decoded with the schema, written with the TF-free writer).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from iad_tf.config import feature_setup
from iad_tf.data.build import assemble_manifest, auto_shards, track_summary
from iad_tf.data.records import SPLITS
from tfrecords_tools import Schema


class ResplitError(ValueError):
    """A records directory that cannot be re-split (message names the directory)."""


def iter_manifest_records(
    records_dir: str | Path, manifest: Mapping[str, Any]
) -> Iterator[dict[str, Any]]:
    """Every record of the manifest's shards, decoded: dicts of the record schema's keys."""
    from tfrecords_tools.reader import listed_shards
    from tfrecords_tools.wire import iter_record_bytes

    schema = Schema.from_json(manifest["schema"])
    for shard in listed_shards(records_dir, manifest):
        for raw in iter_record_bytes(shard):
            rec = schema.decode(raw)
            rec["track_id"] = rec["track_id"].decode("utf-8")
            rec["source_id"] = rec["source_id"].decode("utf-8")
            yield rec


def resplit(
    records_dir: str | Path,
    out_dir: str | Path,
    split_of: Mapping[str, str | None],
    progress: bool = False,
) -> dict[str, Any]:
    """Write ``out_dir`` holding the records of ``records_dir`` with splits from ``split_of``.

    ``split_of``: {track_id: "train" | "val" | "test" | None}; None (or a track not listed)
    leaves the track out. Returns the new manifest (written last, atomically, so a half-made
    ``out_dir`` never looks complete).
    """
    from tqdm import tqdm

    from tfrecords_tools.reader import read_manifest, write_manifest
    from tfrecords_tools.writer import ShardedWriter

    manifest = read_manifest(records_dir)
    cfg, classes = feature_setup(manifest, f"{records_dir}/manifest.json")
    unknown = sorted(set(split_of) - set(manifest.get("tracks", {})))
    if unknown:
        raise ResplitError(f"records {records_dir}: no such tracks {', '.join(unknown[:5])}")
    bad = sorted({s for s in split_of.values() if s is not None and s not in SPLITS})
    if bad:
        raise ResplitError(f"unknown split names {bad} (use {', '.join(SPLITS)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    schema = Schema.from_json(manifest["schema"])
    tracks_meta = manifest["tracks"]
    summaries: list[dict[str, Any]] = []
    shards: dict[str, dict[str, Any]] = {}
    bytes_per_frame = cfg.n_mels * 2 + len(classes)
    writers: dict[str, ShardedWriter] = {}
    for split in SPLITS:
        ids = [t for t, sp in split_of.items() if sp == split]
        if ids:
            n_frames = sum(int(tracks_meta[t]["n_frames"]) for t in ids)
            n_shards = auto_shards(len(ids), n_frames * bytes_per_frame)
            writers[split] = ShardedWriter(out, split, n_shards, schema)
    kept = sum(1 for sp in split_of.values() if sp is not None)
    try:  # one pass over the source shards, each record to its split's writer
        recs = (
            r for r in iter_manifest_records(records_dir, manifest) if split_of.get(r["track_id"])
        )
        for rec in tqdm(recs, total=kept, desc="re-splitting", unit="track", disable=not progress):
            split = split_of[rec["track_id"]]
            rec["split"] = split
            meta = tracks_meta[rec["track_id"]]
            summaries.append(
                track_summary({**rec, "duration_s": meta["duration_s"], "audio": meta["audio"],
                               "sources": meta.get("sources")})
            )
            writers[split].write(rec)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        shards.update(w.close())
    new = assemble_manifest(
        summaries,
        shards,
        list(manifest.get("skipped", [])),
        cfg,
        tuple(classes),
        manifest.get("labels", "onsets"),
        manifest.get("generators"),
    )
    write_manifest(out, new)
    return new
