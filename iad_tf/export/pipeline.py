"""Export in one chain: Keras model -> SavedModel + TFLite float32 + quantised TFLite ->
reload each -> check against Keras -> waveform-in models (:mod:`iad_tf.export.waveform`) ->
metadata sidecars, also embedded in every ``.tflite`` -> move into place.

Files written to ``out_dir`` for ``name``:
``<name>.tflite`` + ``<name>.json`` (float32), ``<name>_<mode>.tflite`` + ``.json``
(quantised), ``<name>_waveform.tflite`` and ``<name>_waveform_dynamic.tflite`` (+ ``.json``;
log-mel in the graph), ``<name>_saved_model/`` and ``<name>_export.json`` (every check with
its numbers). Everything is staged in a temporary folder and moved only when all checks pass.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.config import FeatureConfig
from iad_tf.export.checks import (
    Check,
    ExportCheckError,
    Track,
    decision_metrics,
    f1_check,
    parity,
    presence_flips,
    raise_failed,
    split_windows,
    track_probs,
)
from iad_tf.export.serving import (
    keras_probs,
    saved_model_probs,
    serving_model,
    write_fixed_saved_model,
    write_saved_model,
)
from iad_tf.export.tflite import (
    FALLBACK,
    ConversionError,
    convert,
    convert_isolated,
    non_builtin_ops,
    op_names,
)
from iad_tf.export.waveform import WAVEFORM_QUANT, export_waveform
from iad_tf.fileio import read_json, write_json
from iad_tf.inference.embedded import embed_metadata, read_embedded_file
from iad_tf.inference.litert import load_model as load_tflite
from iad_tf.inference.metadata import ModelMetadata
from iad_tf.inference.variants import VARIANTS, WAVEFORM
from iad_tf.inference.windows import silence_db

QUANTIZE_CHOICES: tuple[str, ...] = ("int8", "dynamic", "float16", "none")
#: Why a recurrent model may not end up int8 (recorded in the metadata).
RECURRENT_NOTE = (
    "recurrent layers (GRU) run as a WHILE loop; full-integer calibration of such loops is "
    "fragile in the TFLite converter, so dynamic-range (int8 weights, float activations) or "
    "float16 is the fallback"
)


@dataclass(frozen=True)
class ExportSettings:
    """How to export: window/hop (frames), quantisation and the check bounds."""

    window_frames: int = 256
    hop_frames: int = 192
    quantize: str = "int8"
    name: str = "model"
    float_atol: float = 1e-4
    f1_tolerance: float = 0.02
    representative_windows: int = 64
    max_val_tracks: int = 8
    seed: int = 0
    #: Forms to write (:data:`iad_tf.inference.variants.VARIANTS`); ``mel`` always.
    variants: tuple[str, ...] = ("mel", "waveform")

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"quantize must be one of {QUANTIZE_CHOICES}, got {self.quantize!r}")
        if "mel" not in self.variants or not set(self.variants) <= set(VARIANTS):
            raise ValueError(f"variants must include 'mel' and lie in {sorted(VARIANTS)}")
        if self.window_frames < 8 or not 1 <= self.hop_frames <= self.window_frames:
            raise ValueError(
                f"need window_frames >= 8 and 1 <= hop_frames <= window_frames "
                f"(got {self.window_frames}, {self.hop_frames})"
            )


@dataclass
class ExportResult:
    """Paths written and every check made."""

    float_model: Path
    quantized_model: Path | None
    saved_model: Path
    report: Path
    checks: list[Check] = field(default_factory=list)
    quantization: dict[str, Any] = field(default_factory=dict)
    waveform_models: list[Path] = field(default_factory=list)
    #: crnn_stream runs: the streaming export (:class:`iad_tf.export.stream.StreamExportResult`).
    stream: Any = None


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from iad_tf import __version__

    return {"iad_tf": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def export_model(
    model: Any,
    out_dir: str | Path,
    *,
    feature: FeatureConfig,
    classes: Sequence[str],
    val_tracks: Sequence[Track],
    representative: np.ndarray | None,
    thresholds: np.ndarray | None = None,
    median_window: int = 1,
    presence: dict[str, Any] | None = None,
    settings: ExportSettings = ExportSettings(),
    info: dict[str, Any] | None = None,
    progress: Any = None,
) -> ExportResult:
    """Export a Keras model (``mel`` -> ``logits``) and check every artifact.

    ``val_tracks``: (id, mel (frames, n_mels), labels (frames, C)) for the checks;
    ``representative``: windows (N, window_frames, n_mels) for int8 calibration;
    ``info``: ``training_data``, ``validation`` and ``model`` entries for the metadata.
    Raises :class:`ExportCheckError` (with the numbers) when a check fails.
    """
    say = progress or (lambda msg: None)
    info = info or {}
    if not val_tracks:
        raise ValueError("export needs validation tracks for its checks")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = settings
    c = len(classes)
    thr = np.full(c, 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    pad = silence_db(feature)
    W, H = s.window_frames, s.hop_frames  # noqa: N806
    windows = split_windows(val_tracks, W, H, pad)  # (N, W, n_mels)
    base = ModelMetadata(
        classes=tuple(classes),
        thresholds=tuple(round(float(t), 4) for t in thr),
        median_window=int(median_window),
        presence=dict(presence or {}),
        feature_config=feature,
        window_frames=W,
        hop_frames=H,
        version=_versions(),
        training_data=info.get("training_data", {}),
        model={
            **info.get("model", {}),
            "exported": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    )
    stage = Path(tempfile.mkdtemp(prefix=f".{s.name}.export-", dir=out_dir))
    try:
        checks: list[Check] = []
        say(f"Keras reference on {windows.shape[0]} windows of {len(val_tracks)} validation tracks")
        ref_windows = keras_probs(model, windows)  # (N, W, C)
        ref_probs = track_probs(val_tracks, lambda w: keras_probs(model, w), W, H, pad)
        ref_metrics = decision_metrics(
            ref_probs,
            val_tracks,
            thr,
            median_window,
            base.presence_gate,
            feature.frame_seconds,
        )

        say("SavedModel")
        sm_path = write_saved_model(model, stage / f"{s.name}_saved_model")
        checks.append(
            parity("saved_model", ref_windows, saved_model_probs(sm_path, windows), s.float_atol)
        )
        _, mel0, _ = val_tracks[0]
        whole = mel0[None, : min(mel0.shape[0], 4 * W)]  # (1, frames, n_mels): any length
        checks.append(
            parity(
                "saved_model (whole track)",
                keras_probs(model, whole),
                saved_model_probs(sm_path, whole),
                s.float_atol,
            )
        )

        say("TFLite float32")
        serving = serving_model(model, W)
        fixed_dir = stage / "fixed_saved_model"
        write_fixed_saved_model(serving, fixed_dir)
        float_path = stage / f"{s.name}.tflite"
        float_path.write_bytes(convert(fixed_dir, "float32"))
        float_md = replace(base, quantization={"mode": "float32"})
        float_md.write(float_path.with_suffix(".json"))
        checks.append(_ops_check(float_path))
        float_model = load_tflite(float_path)
        checks.append(
            parity("tflite float32", ref_windows, float_model.run_windows(windows), s.float_atol)
        )
        raise_failed(checks, "export check failed")
        float_metrics = decision_metrics(
            track_probs(val_tracks, float_model.run_windows, W, H, pad),
            val_tracks,
            thr,
            median_window,
            base.presence_gate,
            feature.frame_seconds,
        )

        quant_path, quant_info, quant_metrics = (
            None,
            {"mode": "none", "requested": s.quantize},
            None,
        )
        if s.quantize != "none":
            quant_path, quant_info, quant_metrics, qchecks = _quantize(
                fixed_dir,
                stage,
                base,
                val_tracks,
                representative,
                ref_metrics,
                ref_probs,
                thr,
                median_window,
                s,
                say,
                recurrent=is_recurrent(model),
            )
            checks += qchecks

        validation = {
            "split": "val",
            "tracks": [t for t, _, _ in val_tracks],
            "frames": int(sum(m.shape[0] for _, m, _ in val_tracks)),
            "keras": ref_metrics,
            "tflite_float32": float_metrics,
            **({f"tflite_{quant_info['mode']}": quant_metrics} if quant_metrics else {}),
            **({"evaluate": info["validation"]} if info.get("validation") else {}),
        }
        replace(float_md, validation=validation).write(float_path.with_suffix(".json"))
        if quant_path is not None:
            replace(base, quantization=quant_info, validation=validation).write(
                quant_path.with_suffix(".json")
            )
        wave_paths: list[Path] = []
        if WAVEFORM.name in s.variants:
            two_step = {"float32": float_model}
            if quant_path is not None:
                two_step[quant_info["mode"]] = load_tflite(quant_path)
            if s.quantize != "none" and WAVEFORM_QUANT not in two_step:
                # The quantised waveform model is dynamic-range; its two-step reference is the
                # mel model in that mode (not shipped), whose micro-F1 is checked like the others.
                say(f"TFLite {WAVEFORM_QUANT} (two-step reference of the waveform model)")
                ref_path = fixed_dir / f"reference_{WAVEFORM_QUANT}.tflite"
                ref_path.write_bytes(convert(fixed_dir, WAVEFORM_QUANT))
                base.write(ref_path.with_suffix(".json"))
                two_step[WAVEFORM_QUANT] = load_tflite(ref_path)
                ref_q = decision_metrics(
                    track_probs(val_tracks, two_step[WAVEFORM_QUANT].run_windows, W, H, pad),
                    val_tracks,
                    thr,
                    median_window,
                )
                checks.append(
                    f1_check(
                        f"waveform {WAVEFORM_QUANT} classifier", ref_metrics, ref_q, s.f1_tolerance
                    )
                )
            wave_paths, wave_checks = export_waveform(
                model,
                stage,
                s.name,
                replace(base, validation=validation),
                two_step,
                quantize=s.quantize != "none",
                float_atol=s.float_atol,
                say=say,
            )
            checks += wave_checks
        shutil.rmtree(fixed_dir)
        checks += embed_sidecars(stage)
        raise_failed(checks, "export check failed")
        report_path = stage / f"{s.name}_export.json"
        write_json(
            report_path,
            {
                "settings": asdict(s),
                "checks": [ch.to_dict() for ch in checks],
                "quantization": quant_info,
                "validation": validation,
                "sizes_bytes": {p.name: p.stat().st_size for p in stage.glob("*.tflite")},
            },
        )
        moved = _move_into(stage, out_dir, stale=_other_quantized(out_dir, s.name, quant_path))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return ExportResult(
        float_model=moved[float_path.name],
        quantized_model=moved[quant_path.name] if quant_path is not None else None,
        saved_model=moved[sm_path.name],
        report=moved[report_path.name],
        checks=checks,
        quantization=quant_info,
        waveform_models=[moved[p.name] for p in wave_paths],
    )


def embed_sidecars(stage: Path) -> list[Check]:
    """Embed each ``<stem>.json`` in ``stage`` into its ``<stem>.tflite`` and check that the
    file alone then loads with exactly that metadata (one check per model)."""
    checks = []
    for path in sorted(stage.glob("*.tflite")):
        meta = read_json(path.with_suffix(".json"))
        path.write_bytes(embed_metadata(path.read_bytes(), meta))
        found = read_embedded_file(path)
        loaded = load_tflite(path)
        same = found == meta and not loaded.notes
        detail = "file carries the sidecar's metadata" if same else "; ".join(loaded.notes)
        checks.append(
            Check(path.name, "embedded metadata != sidecar", float(not same), 0.0, detail)
        )
    return checks


def is_recurrent(model: Any) -> bool:
    """True if ``model`` holds a recurrent layer (GRU/LSTM/RNN, also inside Bidirectional)."""
    recurrent = ("GRU", "LSTM", "SimpleRNN", "RNN", "Bidirectional")
    return any(
        type(layer).__name__ in recurrent or (hasattr(layer, "layers") and is_recurrent(layer))
        for layer in model.layers
    )


def _ops_check(path: Path) -> Check:
    bad = non_builtin_ops(op_names(path))
    return Check(
        path.name, "non-builtin ops", float(len(bad)), 0.0, ", ".join(bad) or "builtin ops only"
    )


def _quantize(
    fixed_dir: Path,
    stage: Path,
    base: ModelMetadata,
    val_tracks: Sequence[Track],
    representative: np.ndarray | None,
    ref_metrics: dict[str, float],
    ref_probs: Sequence[np.ndarray],
    thr: np.ndarray,
    median_window: int,
    s: ExportSettings,
    say: Any,
    recurrent: bool = False,
) -> tuple[Path, dict[str, Any], dict[str, float], list[Check]]:
    """Try the fallback chain from ``s.quantize``; the first mode that converts and keeps
    micro-F1 within the bound wins. Raises :class:`ExportCheckError` if none does."""
    attempts: list[dict[str, Any]] = []
    pad = silence_db(base.feature_config)
    for mode in FALLBACK[s.quantize]:
        say(f"TFLite {mode}")
        path = stage / f"{s.name}_{mode}.tflite"
        try:
            data = (
                convert_isolated(fixed_dir, mode, representative)
                if mode == "int8"
                else convert(fixed_dir, mode)
            )
        except ConversionError as exc:
            attempts.append({"mode": mode, "ok": False, "reason": str(exc)})
            continue
        path.write_bytes(data)
        replace(base, quantization={"mode": mode}).write(path.with_suffix(".json"))
        ops = _ops_check(path)
        model = load_tflite(path)
        got = track_probs(val_tracks, model.run_windows, s.window_frames, s.hop_frames, pad)
        gate_args = (base.presence_gate, base.feature_config.frame_seconds)
        metrics = decision_metrics(got, val_tracks, thr, median_window, *gate_args)
        judged = decision_metrics(got, val_tracks, thr, median_window, *gate_args, presence_probs=ref_probs)
        flips = presence_flips(got, ref_probs, *gate_args)
        check = f1_check(f"tflite {mode}", ref_metrics, judged, s.f1_tolerance,
                         note=f"gate on Keras probabilities; {flips} song-level presence flip(s)")
        if check.passed and ops.passed:
            attempts.append({"mode": mode, "ok": True, "reason": check.line()})
            reason = (
                "requested"
                if mode == s.quantize
                else f"fallback from {s.quantize}: "
                + "; ".join(f"{a['mode']}: {a['reason']}" for a in attempts[:-1])
            )
            note = RECURRENT_NOTE if recurrent and mode != s.quantize else ""
            info = {
                "mode": mode,
                "requested": s.quantize,
                "why": reason,
                "note": note,
                "attempts": attempts,
            }
            return path, info, metrics, [ops, check]
        attempts.append(
            {"mode": mode, "ok": False, "reason": check.line() if not check.passed else ops.line()}
        )
        path.unlink()
        path.with_suffix(".json").unlink()
    raise ExportCheckError(
        "quantised export failed in every mode: "
        + "; ".join(f"{a['mode']}: {a['reason']}" for a in attempts)
    )


def _other_quantized(out_dir: Path, name: str, kept: Path | None) -> list[Path]:
    """Quantised files of an earlier export of ``name`` that this export does not replace
    (e.g. ``model_int8.*`` when re-exporting with ``--quantize none``)."""
    modes = [m for m in QUANTIZE_CHOICES if m != "none"]
    files = [out_dir / f"{name}_{m}{ext}" for m in modes for ext in (".tflite", ".json")]
    keep = set() if kept is None else {kept.name, kept.with_suffix(".json").name}
    return [f for f in files if f.name not in keep and f.is_file()]


def _move_into(stage: Path, out_dir: Path, stale: Sequence[Path] = ()) -> dict[str, Path]:
    """Move every entry of ``stage`` into ``out_dir`` (replacing) and remove ``stale`` files
    of the export being replaced, so the folder holds one export; return name -> new path."""
    for f in stale:
        f.unlink(missing_ok=True)
    moved = {}
    for p in sorted(stage.iterdir()):
        target = out_dir / p.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        p.rename(target)
        moved[p.name] = target
    return moved
