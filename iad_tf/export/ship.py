"""Install an exported model as the shipped default (``saved_models/iad_tf_crnn.tflite``)."""

from __future__ import annotations

from pathlib import Path

from iad_tf.fileio import atomic_path, write_json
from iad_tf.inference.default_model import DEFAULT_MODEL_NAME
from iad_tf.inference.embedded import embed_metadata
from iad_tf.inference.litert import load_model, read_metadata
from iad_tf.inference.metadata import sidecar_path

#: Size limit of the shipped model file.
MAX_DEFAULT_BYTES = 5 * 1024 * 1024
SAVED_MODELS = Path(__file__).resolve().parents[2] / "saved_models"


def ship_default(model_path: str | Path, dest_dir: str | Path = SAVED_MODELS) -> Path:
    """Copy ``model_path`` and its sidecar to ``dest_dir/iad_tf_crnn.{tflite,json}`` (after
    loading it with LiteRT and checking the size); the metadata, in the sidecar and embedded
    in the file, records where it came from."""
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
    with atomic_path(target) as tmp:
        tmp.write_bytes(embed_metadata(model_path.read_bytes(), meta))  # file == sidecar
    write_json(sidecar_path(target), meta)
    load_model(target)
    return target
