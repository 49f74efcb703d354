"""What a run, a cv run and an export consumed, and the checks every consumer makes on it.

A records fingerprint (``inputs`` in a run's ``config.json``, a cv run's ``cv.json`` and an
exported model's metadata): the manifest's sha256, label mode, feature config, a hash of each
split's track ids and the train split's source songs. :func:`describe_diff` names the fields
where two settings differ (a resume refusal names them, not "a different train"). TF-free.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iad_tf.storage import is_url

MANIFEST = "manifest.json"
#: The key holding the fingerprint in config.json, cv.json and the model metadata.
INPUTS_KEY = "inputs"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def records_fingerprint(records_dir: str | Path) -> dict[str, Any]:
    """The fingerprint of the records in ``records_dir`` (its manifest.json)."""
    path = Path(records_dir) / MANIFEST
    raw = path.read_bytes()
    manifest = json.loads(raw.decode("utf-8-sig"))
    splits = manifest.get("splits", {})
    tracks = manifest.get("tracks", {})
    return {
        "manifest_sha256": _sha256(raw),
        "labels": manifest.get("labels"),
        "feature_config": manifest.get("feature_config"),
        "splits_sha256": {
            s: _sha256("\n".join(sorted(ids)).encode()) for s, ids in sorted(splits.items())
        },
        "train_sources": sorted(
            {str(tracks.get(t, {}).get("source_id") or t) for t in splits.get("train", [])}
        ),
    }


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def describe_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``["train.epochs (20 -> 30)", ...]``: every leaf where ``old`` and ``new`` differ.
    Keys ``old`` lacks are ignored (settings added since, used at their defaults)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k, v in old.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            out += describe_diff(v, new.get(k), key) if k in new else [f"{key} (gone)"]
        return out
    if old == new:
        return []
    if isinstance(old, list) and isinstance(new, list) and len(old) > 8:
        return [f"{prefix} ({len(old)} -> {len(new)} entries, or different ones)"]
    return [f"{prefix} ({_short(old)} -> {_short(new)})"]


def as_named_now(old: dict[str, Any], name: str, local: str | Path) -> dict[str, Any]:
    """``old`` settings (a run's config.json, a cv's cv.json) with a ``records_dir`` that
    names the records read from ``local`` as an older version did (that local folder, as
    given or resolved: the cache folder of a URL before runs named the URL) renamed to
    ``name``, so an unfinished run of that version still resumes."""
    was = old.get("records_dir")
    if was is not None and was != name and was in (str(local), str(Path(local).resolve())):
        return {**old, "records_dir": name}
    return old


def check_same_inputs(old: dict[str, Any] | None, new: dict[str, Any], where: str) -> None:
    """ValueError naming the fields when the records changed since ``old`` was recorded."""
    if old is None:
        return  # recorded before fingerprints existed
    diff = describe_diff({k: v for k, v in old.items() if k != "train_sources"}, new)
    if diff:
        raise ValueError(
            f"{where}: the records changed since this run started ({'; '.join(diff)}); "
            "rebuild them as before or choose a new --run-dir"
        )


def trained_inputs(run_config: dict[str, Any]) -> dict[str, Any] | None:
    """A run's fingerprint; for a run from before fingerprints, that of its records_dir
    where it still exists (else None)."""
    if isinstance(run_config.get(INPUTS_KEY), dict):
        return run_config[INPUTS_KEY]
    name = str(run_config.get("records_dir") or "")
    if not name or is_url(name):  # runs trained from a URL always carry their fingerprint
        return None
    records = Path(name)
    if (records / MANIFEST).is_file():
        try:
            return records_fingerprint(records)
        except (OSError, ValueError):
            return None
    return None


def check_labels(run_inputs: dict[str, Any] | None, manifest: dict[str, Any], where: str) -> None:
    """ValueError when the records' label mode is not the one the run was trained on."""
    trained = (run_inputs or {}).get("labels")
    found = manifest.get("labels")
    if trained and found and trained != found:
        raise ValueError(
            f"{where}: holds {found!r} labels but the run was trained on {trained!r} labels; "
            f"score it on records built with --labels {trained}"
        )


def heard_tracks(
    run_inputs: dict[str, Any] | None, manifest: dict[str, Any], split: str
) -> list[str]:
    """Tracks of ``split`` whose source song the run trained on (scores on them are
    optimistic)."""
    heard = set((run_inputs or {}).get("train_sources") or [])
    tracks = manifest.get("tracks", {})
    ids: Sequence[str] = manifest.get("splits", {}).get(split, [])
    return [t for t in ids if t in heard or str(tracks.get(t, {}).get("source_id")) in heard]


def run_progress(run_dir: str | Path, run_config: dict[str, Any]) -> dict[str, Any]:
    """``{"epochs_done", "epochs_asked", "finished"}`` of a fit run directory (finished: its
    resume state ``backup/`` is gone: all epochs ran or early stopping ended it)."""
    run_dir = Path(run_dir)
    jsonl = run_dir / "metrics.jsonl"
    done = 0
    if jsonl.is_file():
        done = sum(1 for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip())
    asked = int((run_config.get("train") or {}).get("epochs", 0))
    return {"epochs_done": done, "epochs_asked": asked,
            "finished": not (run_dir / "backup").is_dir()}
