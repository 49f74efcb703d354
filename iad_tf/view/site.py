"""The set of files the page may fetch: a flat map ``url path -> Resource``, built once.

Both the server (:mod:`iad_tf.view.server`, which serves exactly these paths and nothing
else) and the static export (:mod:`iad_tf.view.export`) use it. Paths are fixed names
chosen here (``model.tflite``, ``p/0/probs.f32``...), never file names from a request. TF-free.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.inference.embedded import EmbeddedMetadataError, read_embedded_file
from iad_tf.inference.variants import MEL, WAVEFORM
from iad_tf.view.assets import check_vendor, static_dir

#: Content types the page needs that ``mimetypes`` may not know.
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
          ".tflite": "application/octet-stream", ".json": "application/json",
          ".f32": "application/octet-stream", ".u8": "application/octet-stream",
          ".arff": "text/plain"}


class ViewError(ValueError):
    """A model, prediction or truth file ``view`` cannot use; one line naming the file."""


@dataclass(frozen=True)
class Resource:
    """A file on disk (``path``) or bytes made here (``data``), with its content type."""

    content_type: str
    path: Path | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else Path(self.path).read_bytes()  # type: ignore[arg-type]

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else Path(self.path).stat().st_size  # type: ignore[arg-type]


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def file_resource(path: Path) -> Resource:
    return Resource(content_type(path.name), path=path)


def json_resource(value: Any) -> Resource:
    return Resource("application/json", data=json.dumps(value).encode("utf-8"))


# ------------------------------------------------------------------------------- the model
def model_candidates(model: Path) -> list[Path]:
    """The files tried for ``model``, best first: its waveform-in variants when ``model`` is a
    log-mel model's path (quantised, then float32; one file holds front end and metadata),
    then ``model`` itself."""
    stem = model.name.removesuffix(".tflite")
    if stem.endswith(WAVEFORM.suffix) or WAVEFORM.suffix + "_" in stem:
        return [model]
    return [WAVEFORM.path(model.parent, stem, "dynamic"), WAVEFORM.path(model.parent, stem), model]


def choose_model(model: Path, prefer_waveform: bool = True) -> tuple[Path, dict[str, Any]]:
    """(path, embedded metadata) of the model the page runs: the waveform-in variant beside
    ``model`` when one exists (``prefer_waveform``), else ``model``. ViewError without
    embedded metadata (the page reads nothing else)."""
    tried = model_candidates(model) if prefer_waveform else [model]
    path = next((p for p in tried if p.is_file()), None)
    if path is None:
        raise ViewError(f"{model}: no such model file")
    try:
        meta = read_embedded_file(path)
    except (EmbeddedMetadataError, OSError) as exc:
        raise ViewError(f"{path}: {exc}") from exc
    if meta is None:
        raise ViewError(
            f"{path}: no embedded iad_tf_metadata; re-export it with `iad-tf export` "
            "(the page reads the metadata from the model file itself)"
        )
    return path, meta


def variant_name(path: Path) -> str:
    stem = path.name.removesuffix(".tflite")
    return WAVEFORM.name if WAVEFORM.suffix in stem else MEL.name


# ------------------------------------------------------------------- what predict wrote
@dataclass(frozen=True)
class Prediction:
    """One song written by ``iad-tf predict``: ``<name>.json`` and ``<name>.npz``."""

    name: str
    json_path: Path
    npz_path: Path


def find_predictions(paths: list[Path]) -> list[Prediction]:
    """Predict outputs under ``paths`` (folders searched recursively, or ``.json`` files);
    ViewError naming a path that holds none."""
    out: list[Prediction] = []
    for p in paths:
        if p.is_dir():
            found = [
                Prediction(str(j.relative_to(p).with_suffix("")), j, j.with_suffix(".npz"))
                for j in sorted(p.rglob("*.json"))
                if j.with_suffix(".npz").is_file() and _is_prediction(j)
            ]
            if not found:
                raise ViewError(f"{p}: no predictions (<name>.json + <name>.npz from iad-tf predict)")
            out.extend(found)
        elif p.is_file() and p.suffix == ".json" and p.with_suffix(".npz").is_file():
            if not _is_prediction(p):
                raise ViewError(f"{p}: not a prediction written by iad-tf predict")
            out.append(Prediction(p.stem, p, p.with_suffix(".npz")))
        else:
            raise ViewError(f"{p}: not a folder or .json written by iad-tf predict")
    return out


def _is_prediction(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and {"segments", "instruments", "frame_seconds"} <= doc.keys()


def truth_bytes(arff: Path, times: np.ndarray, classes: list[str]) -> bytes:
    """uint8 (frames, C) truth roll of an onsets ARFF on the frame ``times``, as bytes."""
    from iad_tf.aam.arff import ArffError, read_onsets
    from iad_tf.aam.labels import LabelError, onset_roll

    try:
        roll = onset_roll(read_onsets(arff), times, classes, str(arff))
    except (ArffError, LabelError, OSError) as exc:
        msg = str(exc)
        raise ViewError(msg if str(arff) in msg else f"{arff}: {msg}") from exc
    return np.ascontiguousarray(roll, dtype=np.uint8).tobytes()


def prediction_resources(i: int, pred: Prediction, truth: Path | None) -> tuple[dict[str, Any], dict[str, Resource]]:
    """(session entry, resources) of one prediction, under ``p/<i>/``."""
    doc = json.loads(pred.json_path.read_text(encoding="utf-8"))
    try:
        with np.load(pred.npz_path) as z:
            probs = np.asarray(z["probs"], dtype="<f4")  # (frames, C)
            decisions = np.asarray(z["decisions"], dtype=np.uint8)  # (frames, C)
            classes = [str(c) for c in z["classes"]]
            times = np.asarray(z["times"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise ViewError(f"{pred.npz_path}: not a predict .npz ({exc})") from exc
    base = f"p/{i}/"
    song = {
        "classes": classes,
        "frame_seconds": doc["frame_seconds"],
        "duration_s": doc.get("duration_s", probs.shape[0] * doc["frame_seconds"]),
        "instruments": doc["instruments"],
        "segments": doc["segments"],
    }
    res = {
        base + "song.json": json_resource(song),
        base + "probs.f32": Resource("application/octet-stream", data=probs.tobytes()),
        base + "decisions.u8": Resource("application/octet-stream", data=decisions.tobytes()),
    }
    entry: dict[str, Any] = {
        "name": pred.name,
        "json": base + "song.json",
        "probs": base + "probs.f32",
        "decisions": base + "decisions.u8",
        "audio": None,
        "truth": None,
    }
    audio = Path(str(doc.get("file", "")))
    if doc.get("file") and audio.is_file():
        entry["audio"] = base + "audio" + audio.suffix.lower()
        res[entry["audio"]] = file_resource(audio)
    if truth is not None:
        entry["truth"] = base + "truth.u8"
        res[entry["truth"]] = Resource("application/octet-stream", data=truth_bytes(truth, times, classes))
    return entry, res


# ------------------------------------------------------------------------------ the site
def page_resources(root: Path | None = None) -> dict[str, Resource]:
    """The page's own files (``static/``, vendor included), by their relative path."""
    root = root or static_dir()
    check_vendor(root)
    return {
        f.relative_to(root).as_posix(): file_resource(f)
        for f in sorted(root.rglob("*"))
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)
    }


def build_site(
    model: Path | None,
    predictions: list[Path] | None = None,
    truth: Path | None = None,
    prefer_waveform: bool = True,
) -> dict[str, Resource]:
    """Every file the page may fetch: its own, ``model.tflite`` (the chosen variant),
    ``session.json`` and the predictions' files. ViewError for unusable inputs."""
    site = page_resources()
    session: dict[str, Any] = {"model": None, "predictions": [], "truth": None}
    if model is not None:
        path, meta = choose_model(model, prefer_waveform)
        site["model.tflite"] = file_resource(path)
        session["model"] = {"name": path.name, "url": "model.tflite", "variant": variant_name(path)}
    preds = find_predictions(predictions or [])
    if truth is not None and len(preds) > 1:
        raise ViewError(f"--truth {truth}: one song's annotation, but {len(preds)} predictions given")
    for i, pred in enumerate(preds):
        entry, res = prediction_resources(i, pred, truth)
        session["predictions"].append(entry)
        site.update(res)
    if truth is not None and model is not None and not preds:
        from iad_tf.config import FeatureConfig

        cfg = FeatureConfig.from_dict(meta["feature_config"])
        n = _arff_frames(truth, cfg)
        site["truth.u8"] = Resource(
            "application/octet-stream", data=truth_bytes(truth, cfg.frame_times(n), list(meta["classes"]))
        )
        session["truth"] = {"url": "truth.u8", "frames": n}
    site["session.json"] = json_resource(session)
    return site


def _arff_frames(arff: Path, cfg: Any) -> int:
    """Frames up to one past the ARFF's last event (later frames keep its last state)."""
    from iad_tf.aam.arff import ArffError, read_onsets

    try:
        table = read_onsets(arff)
    except (ArffError, OSError) as exc:
        raise ViewError(str(exc) if str(arff) in str(exc) else f"{arff}: {exc}") from exc
    last = float(table.times[-1]) if len(table.times) else 0.0
    return cfg.seconds_to_frames(last) + 2
