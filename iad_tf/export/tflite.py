"""SavedModel (fixed shape) -> TFLite, builtin ops only, float32 or quantised.

Quantisation modes: ``int8`` (full-integer weights and activations, calibrated on
representative windows; float32 input/output), ``dynamic`` (int8 weights, float
activations), ``float16`` (float16 weights). The int8 converter calibrates by running the
model in TensorFlow's own TFLite interpreter, which can crash the whole process on a
recurrent WHILE loop (seen here with a Bidirectional GRU: SIGSEGV), so it runs in a child
process and a crash becomes an ordinary failure.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

#: Calibration data: windows (N, W, n_mels) of the ``mel`` input, or {input name: (N, ...)}.
Representative = np.ndarray | dict[str, np.ndarray] | None
QUANT_MODES: tuple[str, ...] = ("int8", "dynamic", "float16")
#: Fallback order after a failed mode (the requested mode starts the chain).
FALLBACK: dict[str, tuple[str, ...]] = {
    "int8": ("int8", "dynamic", "float16"),
    "dynamic": ("dynamic", "float16"),
    "float16": ("float16",),
}


class ConversionError(RuntimeError):
    """The TFLite converter failed (or crashed) for a model and mode."""


def convert(
    saved_model_dir: str | Path,
    mode: str = "float32",
    representative: Representative = None,
    dense_per_channel: bool = True,
) -> bytes:
    """Convert ``saved_model_dir`` (fixed-shape ``serving_default``) to TFLite bytes in ``mode``
    (float32, int8, dynamic, float16); ``representative`` (N, W, n_mels) windows, or a dict
    {input name: (N, ...)} for a model with several inputs, is needed for int8.
    ``dense_per_channel=False`` quantises dense (fully connected) weights per tensor: an
    unrolled GRU repeats its dense ops each step, and per-channel scales and zero points of
    every step's bias made an int8 stream model 258 KB instead of 179 KB (same accuracy)."""
    import tensorflow as tf

    from iad_tf.inference.metadata import INPUT_NAME, SIGNATURE_KEY

    conv = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[SIGNATURE_KEY]
    )
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Select-TF (Flex) ops
    if mode == "float32":
        pass
    elif mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode in ("int8", "int16x8"):  # int16x8: 16-bit activations, int8 weights
        if representative is None or len(representative) == 0:
            raise ConversionError(f"{mode} needs representative windows")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            if mode == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        # a dict {input name: (N, ...)} calibrates a model with several inputs (stream states)
        reps = {
            k: np.asarray(v, dtype=np.float32)
            for k, v in (
                representative.items()
                if isinstance(representative, dict)
                else [(INPUT_NAME, representative)]
            )
        }

        def gen():  # one batch-1 sample of every input per calibration step
            for i in range(len(next(iter(reps.values())))):
                yield {k: v[i : i + 1] for k, v in reps.items()}

        conv.representative_dataset = gen
        if not dense_per_channel:
            conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    else:
        raise ValueError(f"unknown mode {mode!r} (float32, {', '.join(QUANT_MODES)}, int16x8)")
    try:
        return conv.convert()
    except Exception as exc:  # noqa: BLE001 - converter errors come in many types
        raise ConversionError(
            f"{mode} conversion failed: {str(exc).strip().splitlines()[-1][:500]}"
        ) from exc


def convert_isolated(
    saved_model_dir: str | Path,
    mode: str,
    representative: Representative,
    timeout_s: float = 1800.0,
    dense_per_channel: bool = True,
) -> bytes:
    """:func:`convert` in a child process (``python -m iad_tf.export.convert_worker``): a
    converter crash raises :class:`ConversionError` instead of killing the export."""
    with tempfile.TemporaryDirectory(prefix="iad-tf-convert-") as tmp:
        out = Path(tmp) / "model.tflite"
        if isinstance(representative, dict):
            rep = Path(tmp) / "representative.npz"
            np.savez(rep, **representative)
        else:
            rep = Path(tmp) / "representative.npy"
            np.save(rep, np.zeros((0,), np.float32) if representative is None else representative)
        cmd = [
            sys.executable,
            "-m",
            "iad_tf.export.convert_worker",
            str(saved_model_dir),
            mode,
            str(rep),
            str(out),
            *([] if dense_per_channel else ["--dense-per-tensor"]),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ConversionError(f"{mode} conversion timed out after {timeout_s:.0f} s") from exc
        if proc.returncode != 0 or not out.is_file():
            if proc.returncode < 0:
                raise ConversionError(
                    f"{mode} converter crashed (signal {-proc.returncode}) while "
                    "calibrating the model"
                )
            tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or [
                "no output"
            ]
            raise ConversionError(
                f"{mode} conversion failed (exit {proc.returncode}): {tail[0][:500]}"
            )
        return out.read_bytes()


def op_names(model_path: str | Path) -> list[str]:
    """Sorted operator names in a .tflite (LiteRT's view), e.g. ['CONV_2D', 'WHILE', ...]."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model_path))
    return sorted({d["op_name"] for d in it._get_ops_details()})


def non_builtin_ops(names: list[str]) -> list[str]:
    """Operators that are Select-TF (Flex) or custom, i.e. not in the LiteRT runtime."""
    return [n for n in names if n.startswith("Flex") or n in ("CUSTOM", "FlexDelegate")]
