"""Install an exported model as the shipped default (``saved_models/iad_tf_crnn.tflite``)."""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iad_tf.fileio import atomic_path, portable_paths, write_json
from iad_tf.inference.default_model import DEFAULT_MODEL_NAME
from iad_tf.inference.embedded import embed_metadata
from iad_tf.inference.litert import load_model, read_metadata
from iad_tf.inference.metadata import sidecar_path

#: Size limit of the shipped model file.
MAX_DEFAULT_BYTES = 5 * 1024 * 1024
SAVED_MODELS = Path(__file__).resolve().parents[2] / "saved_models"
#: Backups of replaced default models (a subfolder: not packaged by ``default_model/*``).
PREVIOUS_DIR = "previous"
#: Held-out scores printed when the default model is replaced.
SHIP_METRICS: tuple[str, ...] = ("f1_macro", "f1_micro")


def ship_default(
    model_path: str | Path, dest_dir: str | Path = SAVED_MODELS, echo: Callable[[str], Any] | None = None
) -> Path:
    """Copy ``model_path`` and its sidecar to ``dest_dir/iad_tf_crnn.{tflite,json}`` (after
    loading it with LiteRT and checking the size); the metadata, in the sidecar and embedded
    in the file, records where it came from.

    A model already there is first copied to ``dest_dir/previous/`` and ``echo`` receives
    its held-out metrics beside the new model's (:func:`compare_lines`)."""
    model_path = Path(model_path)
    load_model(model_path)  # the model and metadata load and agree
    size = model_path.stat().st_size
    if size > MAX_DEFAULT_BYTES:
        raise ValueError(
            f"{model_path}: {size / 2**20:.1f} MB, over the {MAX_DEFAULT_BYTES / 2**20:.0f} MB limit"
        )
    dest_dir = Path(dest_dir)
    if dest_dir == SAVED_MODELS and not (SAVED_MODELS.parent / "pyproject.toml").is_file():
        raise ValueError(
            f"{SAVED_MODELS}: not a source checkout; --ship installs into the repository's saved_models/"
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / DEFAULT_MODEL_NAME
    meta = read_metadata(model_path)[0].to_dict()  # embedded, else the sidecar
    meta.setdefault("model", {})["shipped_from"] = str(model_path.resolve())
    # published: a reader has none of the exporting machine's folders (an export keeps
    # full paths for its owner)
    meta = portable_paths(meta)
    say = echo or (lambda msg: None)
    if target.is_file() and sidecar_path(target).is_file():
        old_meta = json.loads(sidecar_path(target).read_text(encoding="utf-8"))
        backup = backup_default(target)
        for line in compare_lines(old_meta, meta):
            say(line)
        say(f"previous default kept as {backup} (restore: copy it and its .json back to {target})")
    with atomic_path(target) as tmp:
        tmp.write_bytes(embed_metadata(model_path.read_bytes(), meta))  # file == sidecar
    write_json(sidecar_path(target), meta)
    load_model(target)
    return target


def backup_default(target: Path) -> Path:
    """Copy ``target`` and its sidecar into ``<dir>/previous/`` under a time-stamped stem
    (outside the packaged files); return the backup's path."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    backup = target.parent / PREVIOUS_DIR / f"{target.stem}-{stamp}{target.suffix}"
    with atomic_path(sidecar_path(backup)) as tmp:
        shutil.copyfile(sidecar_path(target), tmp)
    with atomic_path(backup) as tmp:
        shutil.copyfile(target, tmp)
    return backup


def held_out_metrics(meta: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    """(metrics of the model's own artifact on its validation tracks, those tracks) from a
    sidecar: ``validation["tflite_<mode>"]``, else the Keras numbers; empty when absent."""
    val = meta.get("validation") or {}
    mode = (meta.get("quantization") or {}).get("mode", "float32")
    metrics = val.get(f"tflite_{mode}") or val.get("keras") or {}
    return metrics, [str(t) for t in val.get("tracks", [])]


def compare_lines(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Old vs new held-out macro/micro F1 of the default model, with a warning when the new
    one scores lower or was measured on other tracks."""
    (om, ot), (nm, nt) = held_out_metrics(old), held_out_metrics(new)

    def fmt(m: dict[str, float], tracks: list[str]) -> str:
        if not m:
            return "no held-out metrics recorded"
        scores = ", ".join(f"{k} {m[k]:.3f}" for k in SHIP_METRICS if k in m)
        return f"{scores} on {len(tracks)} val track(s) ({', '.join(tracks[:6])})"

    lines = [f"previous default: {fmt(om, ot)}", f"new default:      {fmt(nm, nt)}"]
    if om and nm and sorted(ot) != sorted(nt):
        lines.append("note: measured on different held-out tracks; not directly comparable")
    worse = [k for k in SHIP_METRICS if k in om and k in nm and nm[k] < om[k]]
    if worse:
        lines.append(f"warning: the new model scores lower on {', '.join(worse)}")
    return lines
