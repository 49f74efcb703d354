"""``inspect`` (what is in a records directory) and ``stats`` (per-key value statistics).

Generic: keys, kinds, dtypes and shapes come from the manifest's schema; values from the
records themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfrecords_tools.reader import iter_records, listed_shards, read_manifest
from tfrecords_tools.schema import Schema


def inspect_dir(records_dir: str | Path) -> dict[str, Any]:
    """Shards (records counted, bytes), and per key: kind, dtype, schema shape, first shape.

    Returns ``{"shards": [{"name", "records", "bytes"}], "total_records": int,
    "features": [{"name", "kind", "dtype", "shape", "example_shape"}]}``.
    """
    root = Path(records_dir)
    manifest = read_manifest(root)
    schema = Schema.from_json(manifest["schema"])
    shards = []
    first: dict[str, Any] | None = None
    for p in listed_shards(root, manifest):
        n = 0
        for raw in iter_records(p):
            if first is None:
                first = schema.decode(raw)
            n += 1
        shards.append({"name": p.name, "records": n, "bytes": p.stat().st_size})
    features = []
    for spec in schema.features:
        example = None
        if first is not None:
            v = first[spec.name]
            example = list(v.shape) if isinstance(v, np.ndarray) else []
        features.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "dtype": spec.dtype or {"bytes": "bytes", "int64": "int64", "float": "float32"}[spec.kind],
                "shape": [d for d in spec.shape],
                "example_shape": example,
            }
        )
    return {"shards": shards, "total_records": sum(s["records"] for s in shards), "features": features}


@dataclass
class _Acc:
    """Running statistics of one key over all records (float64 sums)."""

    count: int = 0  # values seen
    total: float = 0.0
    total_sq: float = 0.0
    vmin: float = np.inf
    vmax: float = -np.inf
    non_finite: int = 0
    lead_total: int = 0  # sum of the first dimension (e.g. frames) of tensors
    lead_min: int | None = None
    lead_max: int | None = None

    def add(self, v: np.ndarray) -> None:
        a = np.asarray(v, dtype=np.float64).ravel()
        finite = np.isfinite(a)
        self.non_finite += int(a.size - finite.sum())
        a = a[finite]
        if a.size:
            self.count += int(a.size)
            self.total += float(a.sum())
            self.total_sq += float(np.square(a).sum())
            self.vmin = min(self.vmin, float(a.min()))
            self.vmax = max(self.vmax, float(a.max()))

    def add_lead(self, n: int) -> None:
        self.lead_total += n
        self.lead_min = n if self.lead_min is None else min(self.lead_min, n)
        self.lead_max = n if self.lead_max is None else max(self.lead_max, n)

    def result(self) -> dict[str, Any]:
        mean = self.total / self.count if self.count else None
        std = (
            float(np.sqrt(max(self.total_sq / self.count - mean**2, 0.0))) if mean is not None else None
        )
        out: dict[str, Any] = {
            "values": self.count,
            "min": self.vmin if self.count else None,
            "max": self.vmax if self.count else None,
            "mean": mean,
            "std": std,
            "non_finite": self.non_finite,
        }
        if self.lead_min is not None:
            out.update(dim0_total=self.lead_total, dim0_min=self.lead_min, dim0_max=self.lead_max)
        return out


def stats_dir(records_dir: str | Path) -> dict[str, Any]:
    """Per-key statistics over every record of every shard.

    Tensors and numbers: values, min, max, mean, std, non-finite count; tensors also the
    total/min/max of their first dimension (e.g. frames). Bytes: number of distinct values.
    Returns ``{"records": int, "features": {name: {...}}}``.
    """
    from tqdm import tqdm

    root = Path(records_dir)
    manifest = read_manifest(root)
    schema = Schema.from_json(manifest["schema"])
    accs = {s.name: _Acc() for s in schema.features if s.kind != "bytes"}
    distinct: dict[str, set[bytes]] = {s.name: set() for s in schema.features if s.kind == "bytes"}
    n = 0
    files = listed_shards(root, manifest)
    show = None if len(files) >= 4 else True  # None: a bar only on a terminal
    for p in tqdm(files, desc="stats", unit="shard", disable=show):
        for raw in iter_records(p):
            rec = schema.decode(raw)
            n += 1
            for spec in schema.features:
                v = rec[spec.name]
                if spec.kind == "bytes":
                    distinct[spec.name].add(v)
                    continue
                accs[spec.name].add(np.asarray(v))
                if spec.kind == "tensor" and np.ndim(v) >= 1:
                    accs[spec.name].add_lead(int(np.shape(v)[0]))
    features: dict[str, Any] = {}
    for spec in schema.features:
        if spec.kind == "bytes":
            features[spec.name] = {"distinct": len(distinct[spec.name])}
        else:
            features[spec.name] = accs[spec.name].result()
    return {"records": n, "features": features}
