"""A record schema used by both the writer and the parser.

Each feature is one of:

* ``bytes``: a single byte string;
* ``int64`` / ``float``: a single scalar;
* ``tensor``: a numpy array stored as raw little-endian bytes of ``dtype``, with ``shape``
  where at most one dimension is ``None`` (inferred from the byte count at parse time).

Encoding is pure Python (no TensorFlow import, see :mod:`tfrecords_tools.wire`); parsing is available both
in-graph for tf.data (:meth:`Schema.parse`) and eagerly to numpy (:meth:`Schema.decode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tfrecords_tools import wire

Kind = Literal["bytes", "int64", "float", "tensor"]
_TF_DTYPES = {"float16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool"}


class SchemaError(ValueError):
    """A record that does not fit its schema; the message names the feature."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: Kind
    dtype: str = ""
    shape: tuple[int | None, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("bytes", "int64", "float", "tensor"):
            raise SchemaError(f"{self.name}: unknown kind {self.kind!r}")
        if self.kind == "tensor":
            if self.dtype not in _TF_DTYPES:
                raise SchemaError(f"{self.name}: unsupported tensor dtype {self.dtype!r}")
            if sum(d is None for d in self.shape) > 1:
                raise SchemaError(f"{self.name}: at most one dimension may be None")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FeatureSpec:
        return cls(d["name"], d["kind"], d.get("dtype", ""), tuple(d.get("shape", ())))


@dataclass(frozen=True)
class Schema:
    features: tuple[FeatureSpec, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise SchemaError(f"duplicate feature names in {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def __getitem__(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.features]

    @classmethod
    def from_json(cls, items: list[Mapping[str, Any]]) -> Schema:
        return cls(tuple(FeatureSpec.from_json(d) for d in items))

    # ------------------------------------------------------------------ encoding
    def encode(self, values: Mapping[str, Any]) -> bytes:
        """Serialise one record (a dict with exactly the schema's keys) to Example bytes.

        Pure Python (:mod:`tfrecords_tools.wire`): writing needs no TensorFlow import.
        """
        missing = set(self.names) - set(values)
        extra = set(values) - set(self.names)
        if missing or extra:
            raise SchemaError(f"record keys differ from schema: missing {sorted(missing)}, extra {sorted(extra)}")
        feats = []
        for spec in self.features:
            v = values[spec.name]
            if spec.kind == "bytes":
                b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
                feats.append((spec.name, wire.bytes_feature([b])))
            elif spec.kind == "int64":
                feats.append((spec.name, wire.int64_feature([int(v)])))
            elif spec.kind == "float":
                feats.append((spec.name, wire.float_feature([float(v)])))
            else:
                arr = np.asarray(v)
                self._check_shape(spec, arr.shape)
                raw = np.ascontiguousarray(arr, dtype=np.dtype(spec.dtype).newbyteorder("<")).tobytes()
                feats.append((spec.name, wire.bytes_feature([raw])))
        return wire.example(feats)

    @staticmethod
    def _check_shape(spec: FeatureSpec, shape: tuple[int, ...]) -> None:
        if len(shape) != len(spec.shape) or any(
            want is not None and want != got for want, got in zip(spec.shape, shape, strict=True)
        ):
            raise SchemaError(f"{spec.name}: shape {shape} does not fit schema shape {spec.shape}")

    # ------------------------------------------------------------------ decoding (numpy)
    def decode(self, serialized: bytes) -> dict[str, Any]:
        """Parse one record eagerly: tensors as numpy arrays, bytes as ``bytes``."""
        from tensorflow.core.example import example_pb2

        ex = example_pb2.Example.FromString(serialized)
        out: dict[str, Any] = {}
        for spec in self.features:
            if spec.name not in ex.features.feature:
                raise SchemaError(f"record lacks feature {spec.name!r}")
            f = ex.features.feature[spec.name]
            if spec.kind == "bytes":
                out[spec.name] = f.bytes_list.value[0]
            elif spec.kind == "int64":
                out[spec.name] = int(f.int64_list.value[0])
            elif spec.kind == "float":
                out[spec.name] = float(f.float_list.value[0])
            else:
                arr = np.frombuffer(f.bytes_list.value[0], dtype=np.dtype(spec.dtype).newbyteorder("<"))
                out[spec.name] = arr.reshape(self._resolve_shape(spec, arr.size)).astype(spec.dtype)
        return out

    @staticmethod
    def _resolve_shape(spec: FeatureSpec, size: int) -> tuple[int, ...]:
        known = int(np.prod([d for d in spec.shape if d is not None])) if spec.shape else 1
        if None not in spec.shape:
            if size != known:
                raise SchemaError(f"{spec.name}: {size} values, schema shape {spec.shape} needs {known}")
            return tuple(int(d) for d in spec.shape)  # type: ignore[arg-type]
        if known == 0 or size % known:
            raise SchemaError(f"{spec.name}: {size} values do not fit shape {spec.shape}")
        return tuple(size // known if d is None else int(d) for d in spec.shape)

    # ------------------------------------------------------------------ decoding (graph)
    def parse(self, serialized: Any) -> dict[str, Any]:
        """Parse one serialized record inside a tf.data map: a dict of tensors."""
        import tensorflow as tf

        desc = {}
        for spec in self.features:
            if spec.kind in ("bytes", "tensor"):
                desc[spec.name] = tf.io.FixedLenFeature([], tf.string)
            elif spec.kind == "int64":
                desc[spec.name] = tf.io.FixedLenFeature([], tf.int64)
            else:
                desc[spec.name] = tf.io.FixedLenFeature([], tf.float32)
        raw = tf.io.parse_single_example(serialized, desc)
        out = {}
        for spec in self.features:
            if spec.kind != "tensor":
                out[spec.name] = raw[spec.name]
                continue
            flat = tf.io.decode_raw(raw[spec.name], tf.dtypes.as_dtype(spec.dtype), little_endian=True)
            shape = [-1 if d is None else d for d in spec.shape]
            out[spec.name] = tf.reshape(flat, shape)
        return out
