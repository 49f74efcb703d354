"""Where one 256-frame window's time goes in LiteRT (1 thread), and what wider/cheaper CRNNs cost.

    python bench/tflite_profile.py [--rounds 30] [--out bench/results/train_speed.json]

LiteRT's Python interpreter has no per-op profiler, so the CRNN is cut into prefixes (the model
up to conv block 0, 1, 2, the BiGRU, the output layer), each converted on its own the way
``iad-tf export`` converts (fixed-shape serving SavedModel -> ``iad_tf.export.tflite.convert``,
float32 and dynamic range); the difference of two neighbouring prefixes is that part's cost.
The shipped file is timed beside them (same windows, same rounds), so the rebuilt default
architecture (random weights: the time does not depend on the values) can be checked against
it. Then whole variants of ``ModelConfig`` (more filters, a larger GRU, separable
convolutions): per-window ms and file sizes, float32 and dynamic.

Timing: every model of a table is called in turn, round after round (load changes hit all
alike); reported are the median wall ms and the median CPU ms (``time.thread_time``: with one
thread, the compute a window needs, far less sensitive to the machine's other jobs).
Writes the ``tflite_profile`` key of bench/results/train_speed.json (the rest is kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results" / "train_speed.json"
SHIPPED = REPO / "saved_models" / "iad_tf_crnn.tflite"
WINDOW = 256
#: Prefix name -> the layer whose output ends it (build_crnn's layer names).
PREFIXES: dict[str, str] = {
    "conv0": "conv0_pool",
    "conv1": "conv1_pool",
    "conv2": "conv2_pool",
    "bigru": "bigru",
    "dense": "logits",
}
#: Variant name -> ModelConfig overrides (the default CRNN is the shipped architecture).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "separable": {"conv_kind": "separable"},
    "filters_x1.5": {"conv_blocks": ((24, 4), (48, 4), (96, 2))},
    "filters_x2": {"conv_blocks": ((32, 4), (64, 4), (128, 2))},
    "gru_96": {"gru_units": 96},
    "gru_128": {"gru_units": 128},
    "separable_filters_x2_gru_96": {"conv_kind": "separable",
                                    "conv_blocks": ((32, 4), (64, 4), (128, 2)), "gru_units": 96},
}
#: Variants exported with the GRU unrolled (a change of the export, not of the model).
UNROLLED: tuple[str, ...] = ("default_gru_unrolled", "filters_x2_gru_96_unrolled")
VARIANTS["default_gru_unrolled"] = {}
VARIANTS["filters_x2_gru_96_unrolled"] = {"conv_blocks": ((32, 4), (64, 4), (128, 2)), "gru_units": 96}
MODES: tuple[str, ...] = ("float32", "dynamic")
SHIPPED_BYTES_MAX = 1 << 20  # issue 18: the shipped dynamic-range file stays < 1 MB


def with_unrolled_gru(model: Any) -> Any:
    """A copy of ``model`` whose GRUs are unrolled (``unroll=True``: no WHILE loop in TFLite,
    the same weights and numbers); the stream export unrolls its GRU the same way."""
    import keras

    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "Bidirectional":
            for key in ("layer", "backward_layer"):
                layer["config"][key]["config"]["unroll"] = True
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def to_tflite(model: Any, mode: str, tmp: Path) -> bytes:
    """``model`` (fixed input (1, WINDOW, n_mels)) -> TFLite bytes, as ``iad-tf export`` does."""
    from iad_tf.export.serving import write_fixed_saved_model
    from iad_tf.export.tflite import convert

    saved = write_fixed_saved_model(model, tmp / f"sm-{mode}-{time.monotonic_ns()}")
    return convert(saved, mode)


class Runner:
    """One LiteRT interpreter, 1 thread, called with the ``mel`` window."""

    def __init__(self, content: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=content, num_threads=1)
        self.run = self.interpreter.get_signature_runner()
        self.ops = sorted(d["op_name"] for d in self.interpreter._get_ops_details())

    def __call__(self, x: np.ndarray) -> None:
        self.run(mel=x)


def time_round_robin(runners: dict[str, Runner], x: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    for r in runners.values():
        r(x)  # warm-up
    wall: dict[str, list[float]] = {k: [] for k in runners}
    cpu: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for k, r in runners.items():
            c0, t0 = time.thread_time(), time.perf_counter()
            r(x)
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.thread_time() - c0)
    return {k: {"wall_ms": round(1000 * statistics.median(wall[k]), 3),
                "cpu_ms": round(1000 * statistics.median(cpu[k]), 3)} for k in runners}


def op_counts(ops: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for o in ops:
        out[o] = out.get(o, 0) + 1
    return out


def profile(rounds: int) -> dict[str, Any]:
    import keras

    from iad_tf.training.config import ModelConfig
    from iad_tf.training.models import build_crnn, with_fixed_input

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(-40.0, 15.0, size=(1, WINDOW, 128)).astype(np.float32)
    out: dict[str, Any] = {"window_frames": WINDOW, "threads": 1, "rounds": rounds,
                           "loadavg_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="tflite-profile-") as tmpdir:
        tmp = Path(tmpdir)
        # 1. prefixes of the default CRNN
        full = with_fixed_input(build_crnn(ModelConfig()), WINDOW, 1)
        runners: dict[str, Runner] = {"shipped_dynamic": Runner(SHIPPED.read_bytes())}
        sizes = {"shipped_dynamic": SHIPPED.stat().st_size}
        for mode in MODES:
            for name, layer in PREFIXES.items():
                sub = keras.Model(full.inputs[0], full.get_layer(layer).output)
                content = to_tflite(sub, mode, tmp)
                runners[f"{mode}:{name}"] = Runner(content)
                sizes[f"{mode}:{name}"] = len(content)
        times = time_round_robin(runners, x, rounds)
        parts: dict[str, Any] = {}
        for mode in MODES:
            prev = {"wall_ms": 0.0, "cpu_ms": 0.0}
            rows = {}
            for name in PREFIXES:
                t = times[f"{mode}:{name}"]
                rows[name] = {k: round(t[k] - prev[k], 3) for k in ("wall_ms", "cpu_ms")}
                prev = t
            total = times[f"{mode}:dense"]["cpu_ms"]
            for r in rows.values():
                r["cpu_share"] = round(r["cpu_ms"] / total, 3) if total > 0 else None
            parts[mode] = {"parts": rows, "whole": times[f"{mode}:dense"],
                           "ops": op_counts(runners[f"{mode}:dense"].ops),
                           "bytes": sizes[f"{mode}:dense"]}
        out["default_crnn_by_part"] = parts
        out["shipped"] = {"path": str(SHIPPED.relative_to(REPO)), "bytes": sizes["shipped_dynamic"],
                          **times["shipped_dynamic"], "ops": op_counts(runners["shipped_dynamic"].ops)}
        out["part_notes"] = ("part = prefix up to it minus the previous prefix; conv<i> = conv + BN + "
                             "ReLU + pool of block i (conv0 includes the standardisation), bigru = "
                             "reshape + BiGRU, dense = the output layer")
        # 2. whole variants
        runners = {"shipped_dynamic": runners["shipped_dynamic"]}
        info: dict[str, Any] = {}
        for vname, over in VARIANTS.items():
            try:
                cfg = dataclasses.replace(ModelConfig(), **over)
            except TypeError as exc:  # a field this tree does not have
                info[vname] = {"skipped": str(exc)}
                continue
            model = with_fixed_input(build_crnn(cfg), WINDOW, 1)
            if vname in UNROLLED:
                model = with_unrolled_gru(model)
            info[vname] = {"config": {k: v for k, v in cfg.to_dict().items() if k in over},
                           "parameters": int(model.count_params())}
            for mode in MODES:
                content = to_tflite(model, mode, tmp)
                runners[f"{vname}:{mode}"] = Runner(content)
                info[vname][f"{mode}_bytes"] = len(content)
        times = time_round_robin(runners, x, rounds)
        ship_cpu = times["shipped_dynamic"]["cpu_ms"]
        for vname, row in info.items():
            for mode in MODES:
                if f"{vname}:{mode}" in times:
                    row[mode] = times[f"{vname}:{mode}"]
            if "dynamic" in row:
                row["dynamic_cpu_vs_shipped"] = round(row["dynamic"]["cpu_ms"] / ship_cpu, 2)
                row["fits_budget"] = (row["dynamic_bytes"] < SHIPPED_BYTES_MAX
                                      and row["dynamic_cpu_vs_shipped"] <= 1.2)
        out["variants"] = info
        out["variants_shipped_reference"] = times["shipped_dynamic"]
        out["budget"] = {"dynamic_bytes_lt": SHIPPED_BYTES_MAX, "time_vs_shipped_le": 1.2}
    out["loadavg_end"] = os.getloadavg()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = profile(args.rounds)
    print(json.dumps(result, indent=1))
    from results_io import write_result

    from iad_tf.fileio import read_json

    data = read_json(args.out) if args.out.is_file() else {}
    write_result(args.out, {**data, "tflite_profile": result})
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
