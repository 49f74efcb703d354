"""Training throughput of the CRNN at the cv recipe, side by side with a base commit.

    python bench/train_speed.py [--records DIR] [--base a96460c] [--repeats 3] [--steps 20]

The recipe is bench/quality.py's (``--model crnn``, batch 8, 6 s windows, mix_prob 0.5,
SpecAugment on, pos_weight <= 3, oversampling as in ``fit``). Every arm runs in a child process
of its own (``--child``): the base arm with PYTHONPATH on a worktree of the base commit, the
others on this tree with one setting changed. Arms are interleaved round by round (the machine
is shared: the medians over rounds, with the load average of each round, are the numbers).

Per child: ``model.fit`` on the real input pipeline for ``warmup + steps`` steps; the time of
the last ``steps`` steps (after compile and warm-up) gives windows/s; the mean loss of the last
steps says whether training goes the same way. An equality check (``--check``) runs three
optimizer steps from the same initial weights on the same fixed batch (dropout 0, so the step
is deterministic) in every arm and compares the losses with the base's.

A step-time profile (``--parts N``, one child on this tree; ``--parts-only`` re-runs just it)
trains sub-models on a fixed batch, alternating step by step: the conv front end (+ a dense
head), the BiGRU (+ dense, with an input projection so that the gradient flows into its input),
the whole CRNN, each with and without XLA; the BiGRU and the CRNN with the GRU unrolled (same
numbers, no while loop); the CRNN with separable convolutions (a different model, for the
capacity choice); and the recipe's CRNN on the pipeline vs a fixed batch of 8 and of 16.

Results -> bench/results/train_speed.json (``tflite_profile`` is added by
bench/tflite_profile.py and kept when this script rewrites the file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "train_speed.json"
WORK = REPO / "bench" / "work"
DEFAULT_RECORDS = WORK / "sample-records"
BASE_COMMIT = "a96460c"

#: The cv recipe of bench/quality.py (TrainConfig fields; the rest are TrainConfig defaults).
RECIPE: dict[str, Any] = {
    "batch_size": 8,
    "learning_rate": 1e-3,
    "pos_weight_max": 3.0,
    "mix_prob": 0.5,
    "augment": True,
    "batching": "windows",
    "window_seconds": 6.0,
    "checkpoint": "last",
}

#: Arm name -> (tree: "base" or "head", child options). "head" = this tree's defaults.
ARMS: dict[str, tuple[str, list[str]]] = {
    "base": ("base", []),
    "head": ("head", []),
    "jit_compile": ("head", ["--jit"]),
    "steps_per_execution_4": ("head", ["--steps-per-execution", "4"]),
    "threads_intra1_inter2": ("head", ["--intra", "1", "--inter", "2"]),
    "threads_intra2_inter1": ("head", ["--intra", "2", "--inter", "1"]),
    "onednn_off": ("head", ["--onednn", "0"]),
}


# ----------------------------------------------------------------------------- child side
def _setup_tf(args: argparse.Namespace) -> Any:
    """Thread settings must precede any TensorFlow op."""
    import tensorflow as tf

    if args.intra:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    if args.inter:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    return tf


def _recipe(info: Any) -> Any:
    import dataclasses

    from iad_tf.training.config import TrainConfig

    return dataclasses.replace(TrainConfig(), **RECIPE)


def _compiled_model(info: Any, train_cfg: Any, args: argparse.Namespace, dropout: float | None = None) -> Any:
    """The CRNN compiled as ``fit`` compiles it (optimizer, loss), plus the arm's setting."""
    import dataclasses

    from iad_tf.training.config import ModelConfig
    from iad_tf.training.losses import MaskedWeightedBCE, pos_weight_from_manifest
    from iad_tf.training.models import build_model
    from iad_tf.training.optimizers import make_optimizer

    model_cfg = ModelConfig(n_mels=info.feature.n_mels, n_classes=len(info.classes))
    if dropout is not None:
        model_cfg = dataclasses.replace(model_cfg, dropout=dropout)
    model = build_model("crnn", model_cfg, info.mel_stats)
    pos_weight = pos_weight_from_manifest(
        info.manifest, train_cfg.pos_weight_min, train_cfg.pos_weight_max
    )
    extra: dict[str, Any] = {}
    if args.jit:
        extra["jit_compile"] = True
    if args.steps_per_execution > 1:
        extra["steps_per_execution"] = args.steps_per_execution
    model.compile(
        optimizer=make_optimizer(train_cfg, model, use_ema=train_cfg.ema,
                                 ema_momentum=train_cfg.ema_momentum),
        loss=MaskedWeightedBCE(pos_weight),
        **extra,
    )
    return model


def child_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Steady-state training steps on the real pipeline (windows/s) and their losses."""
    tf = _setup_tf(args)
    import keras

    from iad_tf.training.pipeline import plan_resampling, train_dataset
    from iad_tf.training.records_info import open_records

    keras.utils.set_random_seed(0)
    info = open_records(args.records)
    cfg = _recipe(info)
    data = train_dataset(info, cfg, plan_resampling(info, cfg))
    ds = data.dataset
    if args.fixed_batch:  # the pipeline out of the loop: one batch, repeated
        ds = tf.data.Dataset.from_tensors(next(iter(ds))).repeat()
    model = _compiled_model(info, cfg, args)
    stamps: list[float] = []
    cpu: list[float] = []
    losses: list[float] = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())  # all threads of this process (model + tf.data)
            losses.append(float((logs or {}).get("loss", float("nan"))))

    spe = max(1, args.steps_per_execution)
    total = args.warmup + args.steps
    t0 = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=total, verbose=0, shuffle=False, callbacks=[Stamp()])
    # With steps_per_execution k the callback fires once per k steps.
    n_calls = args.steps // spe
    step_s = (stamps[-1] - stamps[-1 - n_calls]) / (n_calls * spe)
    return {
        "first_call_s": round(stamps[0] - t0, 2),
        "step_s": round(step_s, 4),
        "cpu_s_per_step": round((cpu[-1] - cpu[-1 - n_calls]) / (n_calls * spe), 4),
        "windows_per_s": round(cfg.batch_size / step_s, 2),
        "steady_steps": n_calls * spe,
        # Keras's running mean of the training loss over all the run's steps
        "loss_mean": round(float(losses[-1]), 4),
        "loadavg": os.getloadavg(),
    }


def child_check(args: argparse.Namespace) -> dict[str, Any]:
    """Three optimizer steps on one fixed batch from the same weights (dropout 0): losses."""
    _setup_tf(args)
    import keras
    import numpy as np

    from iad_tf.training.records_info import open_records

    keras.utils.set_random_seed(0)
    info = open_records(args.records)
    cfg = _recipe(info)
    model = _compiled_model(info, cfg, args, dropout=0.0)
    batch = np.load(args.check)
    init = Path(str(args.check).replace(".npz", ".weights.h5"))
    if init.is_file():
        model.load_weights(init)
    else:
        model.save_weights(init)
    x, y, m = batch["mel"], batch["labels"], batch["mask"]
    before = float(model.evaluate(x, y, sample_weight=m, batch_size=len(x), verbose=0))
    losses = [float(model.train_on_batch(x, y, sample_weight=m)) for _ in range(3)]
    after = float(model.evaluate(x, y, sample_weight=m, batch_size=len(x), verbose=0))
    return {"loss_before": before, "train_losses": losses, "loss_after": after}


def _time_alternating(fns: dict[str, Any], rounds: int) -> dict[str, float]:
    """Median ms per call of each fn, calling them in turn (load changes hit all alike)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: round(1000 * statistics.median(v), 1) for k, v in times.items()}


def child_parts(args: argparse.Namespace) -> dict[str, Any]:
    """Where a training step's time goes: sub-models on a fixed batch, with/without XLA."""
    import dataclasses

    tf = _setup_tf(args)
    import keras
    import numpy as np
    from keras import layers

    from iad_tf.training.config import ModelConfig
    from iad_tf.training.models import _conv_front_end, build_crnn
    from iad_tf.training.pipeline import plan_resampling, train_dataset
    from iad_tf.training.records_info import open_records

    keras.utils.set_random_seed(0)
    info = open_records(args.records)
    cfg = _recipe(info)
    model_cfg = ModelConfig(n_mels=info.feature.n_mels, n_classes=len(info.classes))
    frames = cfg.window_frames(info.feature)
    seq = model_cfg.conv_out_bins(model_cfg.conv_blocks) * model_cfg.conv_blocks[-1][0]
    rng = np.random.default_rng(0)
    b = cfg.batch_size
    y = (rng.random((b, frames, model_cfg.n_classes)) < 0.2).astype("float32")

    def conv() -> tuple[Any, Any]:
        inp = keras.Input((frames, model_cfg.n_mels))
        h = _conv_front_end(inp, model_cfg, model_cfg.conv_blocks, "conv")
        return keras.Model(inp, layers.Dense(model_cfg.n_classes)(h)), rng.normal(
            size=(b, frames, model_cfg.n_mels)).astype("float32")

    def gru(unroll: bool = False) -> tuple[Any, Any]:
        inp = keras.Input((frames, seq))
        h = layers.Dense(seq)(inp)  # so the GRU's input gradient is computed, as in the CRNN
        h = layers.Bidirectional(
            layers.GRU(model_cfg.gru_units, return_sequences=True, unroll=unroll))(h)
        return keras.Model(inp, layers.Dense(model_cfg.n_classes)(h)), rng.normal(
            size=(b, frames, seq)).astype("float32")

    def full(cfg: Any = model_cfg, unroll: bool = False) -> tuple[Any, Any]:
        model = build_crnn(cfg, info.mel_stats)
        if unroll:
            from tflite_profile import with_unrolled_gru  # bench/, this script's folder

            model = with_unrolled_gru(model)
        return model, rng.normal(-40, 15, size=(b, frames, cfg.n_mels)).astype("float32")

    def dense_head() -> tuple[Any, Any]:
        inp = keras.Input((frames, seq))
        return keras.Model(inp, layers.Dense(model_cfg.n_classes)(inp)), rng.normal(
            size=(b, frames, seq)).astype("float32")

    steps: dict[str, Any] = {}
    forwards: dict[str, Any] = {}
    separable = dataclasses.replace(model_cfg, conv_kind="separable") if hasattr(
        model_cfg, "conv_kind") else None
    table: list[tuple[str, Any, tuple[bool, ...]]] = [
        ("conv", conv, (False, True)),
        ("bigru", gru, (False, True)),
        ("bigru_unrolled", lambda: gru(unroll=True), (False,)),
        ("dense_head", dense_head, (False,)),
        ("crnn", full, (False, True)),
        ("crnn_gru_unrolled", lambda: full(unroll=True), (False,)),
    ]
    if separable is not None:  # a different model (not equal numbers): for the capacity choice
        table.append(("crnn_separable_convs", lambda: full(separable), (False,)))
    for name, make, jits in table:
        for jit in jits:
            model, x = make()
            model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True),
                          jit_compile=jit)
            key = f"{name}{'_xla' if jit else ''}"
            for _ in range(2):
                model.train_on_batch(x, y)
            steps[key] = (lambda m=model, x=x: m.train_on_batch(x, y))
            fwd = tf.function(lambda a, m=model: m(a, training=False), jit_compile=jit)
            fwd(x)
            forwards[key] = (lambda f=fwd, x=x: f(x).numpy())
    # the CRNN as trained (fit's loss and pipeline) vs the same on one fixed batch
    data = train_dataset(info, cfg, plan_resampling(info, cfg))
    it = iter(data.dataset)
    fixed = next(it)
    recipe_model = _compiled_model(info, cfg, args)
    recipe_model.train_on_batch(*fixed[:2], sample_weight=fixed[2])
    def pipeline_step() -> None:
        mel, labels, mask = next(it)
        recipe_model.train_on_batch(mel, labels, sample_weight=mask)

    big = tuple(np.concatenate([np.asarray(t), np.asarray(t)]) for t in fixed)  # batch 16
    recipe_model.train_on_batch(big[0], big[1], sample_weight=big[2])

    pipe_steps = {
        "crnn_recipe_batch16_fixed_batch": lambda: recipe_model.train_on_batch(
            big[0], big[1], sample_weight=big[2]),
        "crnn_recipe_pipeline": pipeline_step,
        "crnn_recipe_fixed_batch": lambda: recipe_model.train_on_batch(
            fixed[0], fixed[1], sample_weight=fixed[2]),
        "pipeline_next_batch": lambda: next(it),
    }
    load0 = os.getloadavg()
    out = {
        "train_step_ms": _time_alternating(steps, args.steps),
        "forward_ms": _time_alternating(forwards, args.steps),
        "recipe_step_ms": _time_alternating(pipe_steps, args.steps),
        "loadavg": [load0, os.getloadavg()],
    }
    return out


# ----------------------------------------------------------------------------- parent side
def ensure_records(records: Path) -> None:
    if (records / "manifest.json").is_file():
        return
    sys.path.insert(0, str(REPO))
    from bench.run_all import find_sample  # noqa: PLC0415

    subprocess.run([sys.executable, "-m", "iad_tf", "build-records", "--aam-root", str(find_sample()),
                    "--out", str(records), "--workers", "2"], check=True, cwd=REPO)


def ensure_base_tree(commit: str, tree: Path) -> None:
    if (tree / "iad_tf").is_dir():
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        want = subprocess.run(["git", "-C", str(REPO), "rev-parse", commit], capture_output=True,
                              text=True, check=True).stdout.strip()
        if head != want:
            sys.exit(f"{tree} is at {head[:7]}, not {commit}: remove it or pass --base-tree")
        return
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True)


def run_child(tree: Path, mode: list[str], opts: list[str], common: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if "--onednn" in opts:
        env["TF_ENABLE_ONEDNN_OPTS"] = opts[opts.index("--onednn") + 1]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *mode, *opts, *common]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"child failed: {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_fixed_batch(records: Path, path: Path) -> None:
    """One batch of the recipe's pipeline (seed 0), for the equality check."""
    import keras
    import numpy as np

    from iad_tf.training.pipeline import plan_resampling, train_dataset
    from iad_tf.training.records_info import open_records

    keras.utils.set_random_seed(0)
    info = open_records(records)
    cfg = _recipe(info)
    mel, labels, mask = next(iter(train_dataset(info, cfg, plan_resampling(info, cfg)).dataset))
    np.savez(path, mel=mel.numpy(), labels=labels.numpy(), mask=mask.numpy())


def parent(args: argparse.Namespace) -> None:
    records = args.records.resolve()
    ensure_records(records)
    ensure_base_tree(args.base, args.base_tree)
    trees = {"base": args.base_tree.resolve(), "head": REPO}
    arms = {k: v for k, v in ARMS.items() if not args.arms or k in args.arms}
    common = ["--records", str(records), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    out: dict[str, Any] = {
        "recipe": {"model": "crnn", **RECIPE},
        "records": records.name,  # a name: the machine path means nothing elsewhere
        "base_commit": args.base,
        "head_commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                      capture_output=True, text=True).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "steps_timed": args.steps,
        "warmup_steps": args.warmup,
        "arms": {k: {"tree": t, "options": o} for k, (t, o) in arms.items()},
    }
    # equality: same weights, same batch, three steps, every arm
    WORK.mkdir(parents=True, exist_ok=True)
    check = WORK / "train_speed_batch.npz"
    Path(str(check).replace(".npz", ".weights.h5")).unlink(missing_ok=True)
    write_fixed_batch(records, check)
    checks = {}
    for name, (tree, opts) in arms.items():
        checks[name] = run_child(trees[tree], ["--check", str(check)], opts, common)
        print("check", name, checks[name], flush=True)
    ref = checks.get("base") or next(iter(checks.values()))
    for c in checks.values():
        c["max_abs_diff_vs_base"] = max(
            abs(a - b) for a, b in zip([c["loss_before"], *c["train_losses"], c["loss_after"]],
                                       [ref["loss_before"], *ref["train_losses"], ref["loss_after"]],
                                       strict=True))
    out["equality_check"] = checks
    rounds: list[dict[str, Any]] = []
    for r in range(args.repeats):
        row = {"loadavg_start": os.getloadavg()}
        for name, (tree, opts) in arms.items():
            row[name] = run_child(trees[tree], ["--speed"], opts, common)
            print(f"round {r} {name}: {row[name]}", flush=True)
        rounds.append(row)
    out["rounds"] = rounds
    summary = {}
    for name in arms:
        wps = [row[name]["windows_per_s"] for row in rounds]
        summary[name] = {
            "median_windows_per_s": round(statistics.median(wps), 2),
            "windows_per_s": wps,
            "median_step_s": round(statistics.median(row[name]["step_s"] for row in rounds), 4),
            "median_cpu_s_per_step": round(statistics.median(row[name]["cpu_s_per_step"] for row in rounds), 4),
            "median_loss_mean": round(statistics.median(row[name]["loss_mean"] for row in rounds), 4),
            "median_first_call_s": round(statistics.median(row[name]["first_call_s"] for row in rounds), 1),
        }
    for name, s in summary.items():
        if "base" in summary:
            s["speedup_vs_base"] = round(s["median_windows_per_s"] / summary["base"]["median_windows_per_s"], 2)
            s["speedup_vs_base_per_round"] = [
                round(row[name]["windows_per_s"] / row["base"]["windows_per_s"], 2) for row in rounds]
    out["summary"] = summary
    if args.parts:
        out["step_profile"] = run_child(REPO, ["--parts-child"], [], [*common[:2], "--steps", str(args.parts)])
        print("profile", json.dumps(out["step_profile"]), flush=True)
    out["loadavg_end"] = os.getloadavg()
    save(args.out, out)


def save(path: Path, out: dict[str, Any]) -> None:
    """Write ``out``, keeping the ``tflite_profile`` that bench/tflite_profile.py wrote and the
    ``step_profile`` of an earlier run when this one did not measure it (``--parts 0``)."""
    sys.path.insert(0, str(REPO))
    from results_io import write_result

    from iad_tf.fileio import read_json

    old = read_json(path) if path.is_file() else {}
    for key in ("tflite_profile", "step_profile"):
        if key in old and key not in out:
            out[key] = old[key]
    write_result(path, out)
    print(f"written {path}")


def parts_only(args: argparse.Namespace) -> None:
    """Re-run only the step profile into the existing results file."""
    sys.path.insert(0, str(REPO))
    from iad_tf.fileio import read_json

    out = read_json(args.out)
    records = args.records.resolve()
    out["step_profile"] = run_child(REPO, ["--parts-child"], [], ["--records", str(records),
                                                                  "--steps", str(args.parts)])
    print("profile", json.dumps(out["step_profile"]), flush=True)
    save(args.out, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=Path, default=DEFAULT_RECORDS)
    ap.add_argument("--base", default=BASE_COMMIT, help="commit to compare with")
    ap.add_argument("--base-tree", type=Path, default=REPO / "bench" / "work" / "base-tree",
                    help="a worktree of --base (created when missing)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds of all arms")
    ap.add_argument("--steps", type=int, default=20, help="steady-state steps timed per child")
    ap.add_argument("--warmup", type=int, default=5, help="steps before timing (compile, warm-up)")
    ap.add_argument("--arms", nargs="*", default=None, help=f"subset of {list(ARMS)}")
    ap.add_argument("--parts", type=int, default=8, help="rounds of the step profile (0: skip)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--parts-only", action="store_true", help="re-run only the step profile")
    # child options
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--speed", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--parts-child", dest="parts_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--jit", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps-per-execution", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--intra", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--inter", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--onednn", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--fixed-batch", action="store_true", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.child:
        if args.parts_child:
            result = child_parts(args)
        elif args.check is not None:
            result = child_check(args)
        else:
            result = child_speed(args)
        print(json.dumps(result))
        return
    if args.parts_only:
        parts_only(args)
        return
    parent(args)


if __name__ == "__main__":
    main()
