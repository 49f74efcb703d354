"""Sharded TFRecord writing: temporary names while open, renamed when complete.

No TensorFlow import: records are framed by :mod:`tfrecords_tools.wire`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfrecords_tools.schema import Schema
from tfrecords_tools.wire import RecordFileWriter

TMP_SUFFIX = ".tmp"


def shard_name(prefix: str, index: int, count: int) -> str:
    """``train-00003-of-00016.tfrecord``."""
    return f"{prefix}-{index:05d}-of-{count:05d}.tfrecord"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class ShardedWriter:
    """Write records of one ``schema`` into ``num_shards`` shards named ``prefix-*``.

    Records go round-robin (or to an explicit shard). Files are written as
    ``<name>.tmp`` and only renamed by :meth:`close`, so an interrupted writer never leaves a
    file that looks complete. ``close`` returns ``{shard_name: {"records": n, "sha256": hex}}``.
    """

    def __init__(self, out_dir: str | Path, prefix: str, num_shards: int, schema: Schema) -> None:
        if num_shards < 1:
            raise ValueError("num_shards must be >= 1")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.names = [shard_name(prefix, i, num_shards) for i in range(num_shards)]
        self._writers = [RecordFileWriter(self.out_dir / (n + TMP_SUFFIX)) for n in self.names]
        self._counts = [0] * num_shards
        self._next = 0
        self._closed = False

    def write(self, values: Mapping[str, Any], shard: int | None = None) -> None:
        k = self._next % len(self._writers) if shard is None else shard
        self._next += 1
        self._writers[k].write(self.schema.encode(values))
        self._counts[k] += 1

    def abort(self) -> None:
        """Close and delete the temporary files."""
        for w, n in zip(self._writers, self.names, strict=True):
            w.close()
            (self.out_dir / (n + TMP_SUFFIX)).unlink(missing_ok=True)
        self._closed = True

    def close(self) -> dict[str, dict[str, Any]]:
        info: dict[str, dict[str, Any]] = {}
        for w, n, c in zip(self._writers, self.names, self._counts, strict=True):
            w.close()
            tmp = self.out_dir / (n + TMP_SUFFIX)
            final = self.out_dir / n
            info[n] = {"records": c, "sha256": w.hexdigest()}
            tmp.replace(final)
        self._closed = True
        return info

    def __enter__(self) -> ShardedWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self._closed:
            if exc_type is None:
                self.close()
            else:
                self.abort()
