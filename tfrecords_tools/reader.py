"""Reading: shard discovery, manifest access and a tf.data reader returning dicts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tfrecords_tools.schema import Schema

MANIFEST = "manifest.json"
SHARD_RE = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")


def read_manifest(records_dir: str | Path) -> dict[str, Any]:
    path = Path(records_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{records_dir}: no {MANIFEST} (not a records directory?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def write_manifest(records_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically (temporary name, then rename)."""
    path = Path(records_dir) / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def shard_files(records_dir: str | Path, prefix: str | None = None) -> list[Path]:
    """Complete shards in ``records_dir`` (optionally only ``prefix-*``), sorted by name."""
    out = []
    for p in sorted(Path(records_dir).glob("*.tfrecord")):
        m = SHARD_RE.match(p.name)
        if m and (prefix is None or m.group("prefix") == prefix):
            out.append(p)
    return out


def read_dataset(
    files: list[str | Path],
    schema: Schema,
    cycle_length: int | None = None,
    deterministic: bool = True,
) -> Any:
    """tf.data pipeline: shard list -> interleave(TFRecordDataset) -> map(parse): dicts.

    Corrupt data raises (no ``ignore_errors``): a DataLossError names the shard.
    """
    import tensorflow as tf

    if not files:
        raise FileNotFoundError("no TFRecord shards to read")
    names = tf.data.Dataset.from_tensor_slices([str(f) for f in files])
    ds = names.interleave(
        tf.data.TFRecordDataset,
        cycle_length=cycle_length or min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    return ds.map(schema.parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def iter_records(path: str | Path) -> Any:
    """Yield raw serialized records of one shard (CRC-checked by TensorFlow)."""
    import tensorflow as tf

    for rec in tf.data.TFRecordDataset(str(path)):
        yield rec.numpy()
