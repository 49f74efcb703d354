"""Train/val/test assignment: a stable hash of the SOURCE track id, or an explicit split file.

Hash split: ``u = int(sha256(source_id)[:16 hex]) / 2**64`` in [0, 1); ``u < test`` -> test,
``u < test + val`` -> val, else train. It depends only on the id and the fractions, so a
track lands in the same split on every machine and run, and every remix of a song (same
source id) lands in its source's split.

Split file (``--split-file``), either

* text: one ``<id> <split>`` per line (whitespace separated; ``#`` starts a comment), or
* JSON (``.json``): ``{"train": [ids], "val": [ids], "test": [ids]}`` (the manifest's
  ``"splits"`` value can be reused as is) or ``{id: split}``.

An id may be a track id or a source id; the track id is looked up first, so listing the
AAM source songs places their remixes too. A track found in neither is skipped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from iad_tf.data.records import SPLITS
from iad_tf.fileio import read_text


class SplitError(ValueError):
    """A bad split file or fractions; the message names the file and line."""


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0):
        raise SplitError("val and test fractions must lie in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise SplitError(
            f"val ({val_fraction}) + test ({test_fraction}) fractions leave nothing for train"
        )


def hash_unit(source_id: str) -> float:
    """A number in [0, 1) from sha256 of ``source_id`` (stable across runs and machines)."""
    digest = hashlib.sha256(source_id.encode("utf-8")).hexdigest()
    return int(digest[:16], 16) / float(1 << 64)


def hash_split(source_id: str, val_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a source id."""
    u = hash_unit(source_id)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def read_split_file(path: str | Path) -> dict[str, str]:
    """Parse a split file (see module docstring) into {id: split}."""
    from iad_tf.storage import to_path

    path = to_path(path)
    try:
        text = read_text(path)
    except ValueError as exc:
        raise SplitError(str(exc)) from None
    except OSError as exc:
        raise SplitError(f"{path}: cannot read split file ({exc})") from exc
    out: dict[str, str] = {}

    def put(tid: str, split: str, where: str) -> None:
        if split not in SPLITS:
            raise SplitError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
        if tid in out and out[tid] != split:
            raise SplitError(f"{where}: {tid} listed in both {out[tid]} and {split}")
        out[tid] = split

    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SplitError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise SplitError(f"{path}: expected a JSON object")
        for key, value in data.items():
            if isinstance(value, list):
                for tid in value:
                    put(str(tid), key, str(path))
            elif isinstance(value, str):
                put(key, value, str(path))
            else:
                raise SplitError(f"{path}: value of {key!r} must be a list of ids or a split name")
        return out
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise SplitError(f"{path}:{no}: expected '<id> <split>', got {raw.strip()!r}")
        put(parts[0], parts[1], f"{path}:{no}")
    return out


def assign_split(
    track_id: str,
    source_id: str,
    split_map: dict[str, str] | None,
    val_fraction: float,
    test_fraction: float,
    sources: tuple[str, ...] = (),
) -> str | None:
    """The split of one track: from ``split_map`` (track id, then its sources) or the hash of
    its sources.

    A track with several sources (a generated mix) gets a split only when all its sources
    fall in the same one: one held-out song's audio must never train. Returns ``None`` when
    they disagree, or when a split map is given and lists neither the track nor all its
    sources.
    """
    sources = sources or (source_id,)
    if split_map is not None and track_id in split_map:
        return split_map[track_id]
    if split_map is not None:
        found = {split_map.get(s) for s in sources}
    else:
        found = {hash_split(s, val_fraction, test_fraction) for s in sources}
    return found.pop() if len(found) == 1 and None not in found else None
