"""Where the shipped default model lives: one function resolves it.

The repository's ``saved_models/`` directory is linked into the package as
``iad_tf/default_model`` (a symlink, packaged through ``[tool.setuptools.package-data]``), so
an installed wheel carries the model inside ``iad_tf``. In a source checkout where the link
is missing (e.g. a Windows clone without symlinks), ``<repo>/saved_models`` is used.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from iad_tf.inference.metadata import ModelError, sidecar_path

#: File name of the shipped default model (its metadata is ``iad_tf_crnn.json``).
DEFAULT_MODEL_NAME = "iad_tf_crnn.tflite"
#: Package-relative folder holding it.
PACKAGE_DIR = "default_model"


def default_model_candidates() -> list[Path]:
    """Places searched, in order: the packaged copy, then ``<repo>/saved_models``."""
    packaged = Path(str(resources.files("iad_tf") / PACKAGE_DIR / DEFAULT_MODEL_NAME))
    repo = Path(__file__).resolve().parents[2] / "saved_models" / DEFAULT_MODEL_NAME
    return [packaged, repo] if packaged != repo else [packaged]


def default_model_path() -> Path:
    """Path of the default ``.tflite`` (with its sidecar); :class:`ModelError` if absent."""
    candidates = default_model_candidates()
    for path in candidates:
        if path.is_file() and sidecar_path(path).is_file():
            return path
    where = ", ".join(str(p) for p in candidates)
    raise ModelError(
        f"no default model found (looked for {DEFAULT_MODEL_NAME} and its .json in: {where}); "
        "pass --model FILE, or export one with `iad-tf export --run RUN --out saved_models "
        "--name iad_tf_crnn`"
    )
