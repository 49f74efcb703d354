"""Model metadata inside the ``.tflite`` itself: one file is all a device needs.

The whole sidecar dict (:meth:`ModelMetadata.to_dict`, UTF-8 JSON) is stored as a TFLite
flatbuffer metadata entry named :data:`METADATA_NAME` (``Model.metadata[i].name`` pointing at
a ``Model.buffers`` entry), the place the TFLite schema reserves for it; an app reads it with
any flatbuffer library (or LiteRT's metadata API) and parses the JSON.

Reading and writing use ``ai_edge_litert``'s generated schema and ``flatbuffers`` (both come
with ``ai-edge-litert``): TF-free, so ``predict`` and ``--ship`` work from the light install.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

#: Name of the metadata entry holding the sidecar JSON.
METADATA_NAME = "iad_tf_metadata"
_IDENTIFIER = b"TFL3"


class EmbeddedMetadataError(ValueError):
    """The file is not a TFLite flatbuffer, or its embedded metadata is not valid JSON."""


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_embedded(data: bytes) -> dict[str, Any] | None:
    """The metadata dict embedded in TFLite bytes ``data``, or ``None`` if there is none.

    Raises :class:`EmbeddedMetadataError` for bytes that are not a TFLite model (also a
    truncated one: its tables point past the end) or an entry that is not a JSON object.
    """
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise EmbeddedMetadataError("not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        return _find_metadata(data)
    except (struct.error, IndexError):
        raise EmbeddedMetadataError(
            f"truncated or corrupt: its tables point past the end of its {len(data)} bytes"
        ) from None


def _find_metadata(data: bytes) -> dict[str, Any] | None:
    schema = _schema()
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if (entry.Name() or b"").decode("utf-8", "replace") != METADATA_NAME:
            continue
        buf = model.Buffers(entry.Buffer())
        if buf is None:
            raise EmbeddedMetadataError(f"metadata {METADATA_NAME!r} points at a missing buffer")
        raw = buf.DataAsNumpy() if buf.DataLength() else b""
        if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = data[buf.Offset() : buf.Offset() + buf.Size()]
        try:
            value = json.loads(bytes(raw).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EmbeddedMetadataError(f"embedded {METADATA_NAME!r} is not JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise EmbeddedMetadataError(f"embedded {METADATA_NAME!r} is not a JSON object")
        return value
    return None


def read_embedded_file(path: str | Path) -> dict[str, Any] | None:
    """:func:`read_embedded` of the file at ``path``."""
    return read_embedded(Path(path).read_bytes())


def embed_metadata(data: bytes, metadata: dict[str, Any] | None) -> bytes:
    """TFLite bytes ``data`` with ``metadata`` (a JSON-able dict) embedded as
    :data:`METADATA_NAME`, replacing an earlier entry of that name (``None``: only remove
    it). The graph, its buffers and signatures are unchanged."""
    import flatbuffers
    import numpy as np

    schema = _schema()
    read_embedded(data)  # raises for bytes that are not a TFLite model
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    model.buffers = model.buffers or []
    model.metadata = [m for m in (model.metadata or []) if _name(m) != METADATA_NAME]
    payload = np.zeros(0, np.uint8)
    if metadata is not None:
        payload = np.frombuffer(json.dumps(metadata, sort_keys=True).encode("utf-8"), np.uint8)
        buffer = schema.BufferT()
        buffer.data = payload
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    builder = flatbuffers.Builder(len(data) + payload.size + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def _name(entry: Any) -> str:
    name = entry.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")
