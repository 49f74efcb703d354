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


def _as_path(records_dir: Any) -> Any:
    """A path object: strings become :class:`Path`; path objects of other libraries (a URL
    path with the pathlib API, e.g. ``upath.UPath``) are used as they are."""
    return Path(records_dir) if isinstance(records_dir, str | os.PathLike) and not hasattr(
        records_dir, "fs") else records_dir


def read_manifest(records_dir: Any) -> dict[str, Any]:
    path = _as_path(records_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{records_dir}: no {MANIFEST} (not a records directory?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def write_manifest(records_dir: Any, manifest: dict[str, Any]) -> Any:
    """Write ``manifest.json`` atomically (temporary name, then rename; in an object store
    one upload of the whole text, visible only when complete)."""
    path = _as_path(records_dir) / MANIFEST
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    if not isinstance(path, Path) or hasattr(path, "fs"):
        with path.open("w", encoding="utf-8") as fh:
            fh.write(text)
        return path
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


class ShardError(ValueError):
    """A shard that is missing, unlisted or unreadable; the message names it and points to
    ``tfrecords-tools verify``. ``records``: records read before the fault; ``reason``: the
    short cause."""

    def __init__(self, message: str, records: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.records, self.reason = records, reason or message


def _verify_hint(records_dir: str | Path) -> str:
    return f"check the directory with `tfrecords-tools verify {records_dir}`"


def shard_files(records_dir: str | Path, prefix: str | None = None) -> list[Path]:
    """Shard-named files on disk in ``records_dir`` (optionally only ``prefix-*``), sorted.

    What is on disk, for checks (``verify``); readers use :func:`listed_shards`."""
    out = []
    for p in sorted(Path(records_dir).glob("*.tfrecord")):
        m = SHARD_RE.match(p.name)
        if m and (prefix is None or m.group("prefix") == prefix):
            out.append(p)
    return out


def listed_shards(
    records_dir: str | Path, manifest: dict[str, Any], prefix: str | None = None
) -> list[Path]:
    """Exactly the shards ``manifest["shards"]`` lists (optionally only ``prefix-*``), sorted.

    The manifest is the one list of shards: a listed shard missing on disk, or a shard file
    on disk the manifest does not list (a leftover of another build), raises
    :class:`ShardError` naming it."""
    root = Path(records_dir)
    listed = manifest.get("shards")
    if not isinstance(listed, dict):
        raise ShardError(f"{root / MANIFEST}: no 'shards' table (not written by a records build?)")

    def wanted(name: str) -> bool:
        m = SHARD_RE.match(name)
        return prefix is None or (m is not None and m.group("prefix") == prefix)

    names = sorted(n for n in listed if wanted(n))
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise ShardError(f"{root / missing[0]}: listed in {MANIFEST} but missing; {_verify_hint(root)}")
    extra = [p for p in shard_files(root, prefix) if p.name not in listed]
    if extra:
        raise ShardError(
            f"{extra[0]}: shard not listed in {MANIFEST} (left from another build?); remove it "
            f"or rebuild; {_verify_hint(root)}"
        )
    return [root / n for n in names]


def short_tf_error(exc: BaseException) -> str:
    """TensorFlow's error text without the op decoration: 'corrupted record at 12'."""
    message = str(exc).strip()
    text = re.sub(r"\{\{.*?\}\}", "", message.splitlines()[0] if message else "")
    return re.sub(r"\s*\[Op:.*$", "", text).strip() or type(exc).__name__


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
    """Yield raw serialized records of one shard (CRC-checked by TensorFlow).

    A corrupt or truncated shard raises :class:`ShardError` naming it (``.records``: the
    records read before the fault, ``.reason``: TensorFlow's short message)."""
    import tensorflow as tf

    n = 0
    try:
        for rec in tf.data.TFRecordDataset(str(path)):
            yield rec.numpy()
            n += 1
    except tf.errors.OpError as exc:
        reason = f"{type(exc).__name__}: {short_tf_error(exc)}"
        raise ShardError(
            f"{path}: corrupt shard, unreadable after {n} record(s) ({reason}); "
            f"{_verify_hint(Path(path).parent)}", n, reason
        ) from None
