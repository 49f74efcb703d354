"""TFRecord files and ``tf.train.Example`` bytes written without TensorFlow.

Writing records needs neither TensorFlow's import (seconds, hundreds of MB) nor its writer:
the formats are small and fixed.

* TFRecord framing, per record: ``uint64 length``, ``uint32 masked_crc32c(length bytes)``,
  ``data``, ``uint32 masked_crc32c(data)``, all little-endian.
* ``tf.train.Example`` protobuf: ``Example{features=1: Features{feature=1: map<string,
  Feature>}}``, ``Feature{bytes_list=1 | float_list=2 | int64_list=3}``, each list a
  ``repeated value = 1`` (floats and ints packed).

CRC32C (Castagnoli) comes from google-crc32c (C, a dependency); without it a table-driven
loop compiled by numba, else pure Python (slow but correct). TensorFlow's readers check both CRCs, so
the tests read these files back with ``tf.data.TFRecordDataset``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

_POLY = 0x82F63B78  # CRC32C, reflected
_MASK_DELTA = 0xA282EAD8


def _make_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table[i] = c
    return table


_TABLE = _make_table()


def _crc32c_py(data: np.ndarray, table: np.ndarray) -> int:
    crc = 0xFFFFFFFF
    tab = table.tolist()
    for b in data.tolist():
        crc = tab[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _numba_crc():  # noqa: ANN202 - returns a compiled function or None
    """The table loop compiled by numba (~1 GB/s), if numba is importable."""
    try:
        from numba import njit
    except ImportError:  # pragma: no cover
        return None

    @njit(cache=True, nogil=True)
    def _crc32c_nb(data: np.ndarray, table: np.ndarray) -> int:  # pragma: no cover - compiled
        crc = np.uint32(0xFFFFFFFF)
        for i in range(data.shape[0]):
            crc = table[(crc ^ data[i]) & np.uint32(0xFF)] ^ (crc >> np.uint32(8))
        return crc ^ np.uint32(0xFFFFFFFF)

    return _crc32c_nb


try:  # google-crc32c (a dependency): Google's C implementation, hardware CRC32C where present
    import google_crc32c as _gcrc

    def crc32c(data: bytes | bytearray | memoryview) -> int:
        """CRC32C of ``data`` (``crc32c(b"123456789") == 0xE3069283``)."""
        return int(_gcrc.value(bytes(data)))

except ImportError:  # pragma: no cover - fallbacks: numba, else pure Python (slow, correct)
    _crc_impl = _numba_crc() or _crc32c_py

    def crc32c(data: bytes | bytearray | memoryview) -> int:
        """CRC32C of ``data`` (``crc32c(b"123456789") == 0xE3069283``)."""
        return int(_crc_impl(np.frombuffer(data, dtype=np.uint8), _TABLE))


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, the data's masked CRC."""
    header = struct.pack("<Q", len(data))
    return b"".join(
        (header, struct.pack("<I", masked_crc32c(header)), data, struct.pack("<I", masked_crc32c(data)))
    )


class CorruptRecordError(ValueError):
    """A TFRecord file whose framing or CRC is wrong (message names file and offset)."""


def iter_record_bytes(path: str | Path) -> Iterator[bytes]:
    """Yield the payload of every TFRecord in ``path``, CRC-checked, without TensorFlow.

    Raises :class:`CorruptRecordError` naming the file and byte offset on a truncated record
    or a CRC mismatch.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        offset = 0
        while True:
            header = fh.read(12)
            if not header:
                return
            if len(header) < 12:
                raise CorruptRecordError(f"{path}: truncated record header at byte {offset}")
            (length,) = struct.unpack("<Q", header[:8])
            (hcrc,) = struct.unpack("<I", header[8:])
            if hcrc != masked_crc32c(header[:8]):
                raise CorruptRecordError(f"{path}: bad length CRC at byte {offset}")
            body = fh.read(length + 4)
            if len(body) < length + 4:
                raise CorruptRecordError(f"{path}: truncated record at byte {offset}")
            data = body[:length]
            if struct.unpack("<I", body[length:])[0] != masked_crc32c(data):
                raise CorruptRecordError(f"{path}: bad data CRC in the record at byte {offset}")
            offset += 12 + length + 4
            yield data


class RecordFileWriter:
    """Append TFRecords to one file; keeps a running sha256 of everything written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        rec = frame_record(data)
        self._fh.write(rec)
        self._sha.update(rec)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()


# ----------------------------------------------------------------------------- protobuf


def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # negative int64 -> 10-byte two's complement, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def bytes_feature(values: Iterable[bytes]) -> bytes:
    """A serialized ``Feature`` holding a ``BytesList``."""
    return _field(1, b"".join(_field(1, v) for v in values))


def float_feature(values: Iterable[float]) -> bytes:
    """A serialized ``Feature`` holding a packed ``FloatList`` (float32)."""
    arr = np.asarray(list(values), dtype="<f4")
    return _field(2, _field(1, arr.tobytes()) if arr.size else b"")


def int64_feature(values: Iterable[int]) -> bytes:
    """A serialized ``Feature`` holding a packed ``Int64List``."""
    vals = [int(v) for v in values]
    return _field(3, _field(1, b"".join(_varint(v) for v in vals)) if vals else b"")


def example(features: Iterable[tuple[str, bytes]]) -> bytes:
    """A serialized ``Example`` from (name, serialized Feature) pairs."""
    entries = b"".join(_field(1, _field(1, name.encode("utf-8")) + _field(2, feat)) for name, feat in features)
    return _field(1, entries)
