"""``make bench``: run every benchmark in bench/ and write BENCHMARKS.md from their results.

Benchmarks run on purpose, never inside the unit tests. Each script writes its own JSON under
bench/results/; this runner prepares the shared inputs (records of the 12-track AAM sample,
found through $IAD_TF_AAM_SAMPLE or ../shared/aam-sample), runs the scripts one after the
other (never side by side: the machine has 2 cores) and renders the table.

    python bench/run_all.py [--only NAME ...] [--render-only]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
WORK = BENCH / "work"
SAMPLE_RECORDS = WORK / "sample-records"


def find_sample() -> Path:
    env = os.environ.get("IAD_TF_AAM_SAMPLE")
    for c in ([Path(env)] if env else []) + [REPO.parent / "shared" / "aam-sample"]:
        if (c / "annotations").is_dir():
            return c
    sys.exit("bench needs the AAM sample: set IAD_TF_AAM_SAMPLE or place it at ../shared/aam-sample")


def run(cmd: list[str]) -> float:
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.perf_counter() - t0


def ensure_sample_records(sample: Path) -> None:
    if (SAMPLE_RECORDS / "manifest.json").is_file():
        return
    run([sys.executable, "-m", "iad_tf", "build-records", "--aam-root", str(sample),
         "--out", str(SAMPLE_RECORDS), "--workers", "2"])


def scripts(sample: Path) -> dict[str, list[str]]:
    py = sys.executable
    out = {
        "build_records": [py, "bench/build_records.py", "--aam-root", str(sample)],
        "input_pipeline": [py, "bench/input_pipeline.py", "--records", str(SAMPLE_RECORDS)],
        "batching_regimes": [py, "bench/batching_regimes.py", "--records", str(SAMPLE_RECORDS),
                             "--runs", str(WORK / "regimes"), "--minutes", "3"],
        "train_speed": [py, "bench/train_speed.py", "--records", str(SAMPLE_RECORDS)],
        # writes the tflite_profile key of train_speed.json (after train_speed, which keeps it)
        "tflite_profile": [py, "bench/tflite_profile.py"],
        "predict": [py, "bench/predict.py"],
        "predict_memory": [py, "bench/predict_memory.py"],
        # ~1 h on 2 cores: 4-fold song-level CV of the shipped recipe (issue 12 targets)
        "quality": [py, "bench/quality.py", "--name", "base"],
        "on_device": [py, "bench/on_device.py"],
    }
    if (BENCH / "beam_vs_local.py").is_file():
        out["beam_vs_local"] = [py, "bench/beam_vs_local.py", "--aam-root", str(sample)]
    return out


# ---------------------------------------------------------------------------- rendering
def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _r(x: Any, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def render_build_records(d: dict[str, Any]) -> list[str]:
    s = d["summary"]
    rows = [f"| {arm} | {_r(v['median_wall_s'], 1)} s | {_r(v['median_tracks_per_s'])} | "
            f"{_r(v['median_cpu_s'], 1)} s | {_r(v['peak_rss_mb'], 0)} MB |" for arm, v in s.items()]
    ratio = d["speedup_w2_vs_naive_median"]
    return [
        f"{d['tracks']} tracks, {d.get('rounds', 1)} interleaved rounds, load average at end "
        f"{_r(d['machine']['loadavg_at_end'][0])}.",
        "", "| arm | median wall | tracks/s | CPU | peak memory |", "|---|---|---|---|---|", *rows, "",
        f"**build-records --workers 2 vs naive serial loop: {ratio:.2f}x** "
        f"(target >= {d['target']}x: {'met' if ratio >= d['target'] else 'NOT met'}).",
    ]


def render_input_pipeline(d: dict[str, Any]) -> list[str]:
    rows = [f"| {k} | {_r(v['pipeline_examples_per_s'], 1)} | {_r(v['model_examples_per_s'], 2)} | "
            f"{_r(v['pipeline_over_model'], 1)}x | {_r(v['crnn_epoch_seconds'], 1)} s |"
            for k, v in d["regimes"].items()]
    return [
        f"Batch {d['batch_size']}, {d['train_tracks']} train tracks ({d['train_frames']} frames).", "",
        "| regime | pipeline examples/s | CRNN train examples/s | ratio (target >= 5x) | CRNN epoch |",
        "|---|---|---|---|---|", *rows,
    ]


def render_batching(d: dict[str, Any]) -> list[str]:
    rows = [f"| {k} | {v['epochs']} | {v['steps']} | {_r(v['best']['val_f1_macro'], 3)} | "
            f"{_r(v['best']['val_f1_micro'], 3)} |" for k, v in d["regimes"].items()]
    return [f"Same wall-clock budget ({d['minutes']} min) per regime, CRNN, batch 2.", "",
            "| regime | epochs | steps | best val F1 macro | its val F1 micro |", "|---|---|---|---|---|", *rows]


def render_predict(d: dict[str, Any]) -> list[str]:
    e2e = d["end_to_end_cli_1_thread"]
    w = d["same_windows_1_thread"]
    sizes = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in d["sizes_bytes"].items())
    lines = [f"Track {Path(d['track']).name} ({d['duration_s']:.0f} s), model: {d['model']['source']}; "
             f"quantised mode: {d['quantization']['mode']}.", "",
             "| model | end-to-end wall (best / median) | real-time factor (best / median) |", "|---|---|---|"]
    lines += [f"| {k} | {_r(v['best_s'])} / {_r(v['median_s'])} s | {_r(v['rtf_best'], 0)}x / "
              f"{_r(v['rtf_median'], 0)}x |" for k, v in e2e.items()]
    lines += ["", f"Target >= {d['target_rtf']}x real time on one thread. In-process, warm: "
              + ", ".join(f"{k} {v:.0f}x" for k, v in d.get("in_process_warm_rtf", {}).items()) + ".", "",
              "| same windows, 1 thread | ms / window | max abs diff vs Keras |", "|---|---|---|"]
    for k in ("tflite_float32", "tflite_dynamic", "tflite_int8", "tflite_float16"):
        if f"{k}_ms_per_window" in w:
            lines.append(f"| {k} | {_r(w[f'{k}_ms_per_window'])} | {w.get(f'{k}_max_abs_diff_vs_keras', 0):.2e} |")
    for k in ("keras_predict_batch1", "keras_predict_batch32"):
        if f"{k}_ms_per_window" in w:
            lines.append(f"| {k} | {_r(w[f'{k}_ms_per_window'])} | 0 |")
    lines += ["", f"Sizes: {sizes}."]
    return lines


def render_predict_memory(d: dict[str, Any]) -> list[str]:
    rows = [f"| {r['code']} | {r['minutes']:g} min | {_r(r['peak_rss_mb'], 0)} MB | {_r(r['wall_s'], 1)} s | "
            f"{_r(r.get('cpu_s'), 1)} s | {_r(r['rtf'], 0)}x |" for r in d["runs"]]
    t = d["three_minutes"]
    rtf = ", ".join(f"{k} {_r(t[k]['rtf_best'], 0)}x wall / {_r(t[k]['rtf_cpu_best'], 0)}x CPU"
                    for k in ("new", "old") if k in t)
    old = f"; old = commit {d['old_ref']}" if d.get("old_ref") else ""
    return [f"`{d['command']}` on the mix tiled to each length ({d['input_format']}){old}; load average "
            f"{d['load_average_start_end']} on {d['cpus']} cores (shared, noisy: wall times vary).", "",
            "| code | input | peak RSS | wall | CPU | real-time factor |", "|---|---|---|---|---|---|", *rows, "",
            f"Peak RSS target < {_r(d['target_peak_rss_mb'], 0)} MB: {'met' if d['target_met'] else 'NOT met'}; "
            f"growth over the lengths {_r(d['growth_mb_new'], 0)} MB. 3-minute track, best of "
            f"{len(t['new']['wall_s'])}, interleaved: {rtf}."]


def render_beam(d: dict[str, Any]) -> list[str]:
    rows = [f"| {k} | {_r(v['median_wall_s'])} s | {_r(v['min_wall_s'])} s | {_r(v['median_tracks_per_s'])} |"
            for k, v in d["summary"].items()]
    return [f"{d['tracks']} tracks, {d['rounds']} interleaved rounds; Beam flags `{d['beam_flags']}`.", "",
            "| arm | median wall | min wall | tracks/s |", "|---|---|---|---|", *rows, "",
            f"Beam / local wall time: {d['median_ratio_per_round']:.2f}x (median of rounds); manifests "
            f"equal on: {', '.join(d.get('manifests_equal', []))}."]


def render_train_speed(d: dict[str, Any]) -> list[str]:
    lines = [f"Recipe {json.dumps(d['recipe'])}; base = commit {d['base_commit']}; each arm a child "
             f"process, {len(d['rounds'])} interleaved rounds of {d['steps_timed']} steady steps (after "
             f"{d['warmup_steps']} warm-up steps); load average {_r(d['rounds'][0]['loadavg_start'][0], 1)} "
             f"at start, {_r(d['loadavg_end'][0], 1)} at end on {d['machine']['cpus']} cores (shared: noisy).",
             "", "| arm | windows/s (median) | per round | vs base | CPU s per step (base / arm) | "
             "mean loss of the run | max loss diff vs base (3 steps, same weights) |",
             "|---|---|---|---|---|---|---|"]
    base_cpu = d["summary"].get("base", {}).get("median_cpu_s_per_step")
    for k, v in d["summary"].items():
        cpu = v.get("median_cpu_s_per_step")
        ratio = f" ({base_cpu / cpu:.2f}x)" if base_cpu and cpu else ""
        lines.append(f"| {k} | {_r(v['median_windows_per_s'])} | {', '.join(_r(x) for x in v['windows_per_s'])} | "
                     f"{_r(v.get('speedup_vs_base'))}x | {_r(cpu, 3)}{ratio} | "
                     f"{_r(v.get('median_loss_mean'), 3)} | "
                     f"{d['equality_check'][k]['max_abs_diff_vs_base']:.1e} |")
    lines += ["", "`head` is this tree with the base's training code (no training setting changed): its "
              "distance from `base` is the noise of the wall-clock numbers; CPU seconds per step (all "
              "threads of the process) are the steadier measure on a shared machine."]
    prof = d.get("step_profile")
    if prof:
        t = prof["train_step_ms"]
        lines += ["", "Where a training step goes (fixed batch of 8 x 258 frames, median ms, sub-models "
                  "alternated step by step): " + ", ".join(f"{k} {v:.0f}" for k, v in t.items())
                  + "; pipeline: " + ", ".join(f"{k} {v:.1f}" for k, v in prof["recipe_step_ms"].items()) + "."]
    tp = d.get("tflite_profile")
    if tp:
        lines += ["", f"LiteRT, 1 thread, one {tp['window_frames']}-frame window (`bench/tflite_profile.py`; "
                  "CPU ms = thread time, robust to load): by part of the default CRNN (prefix differences)", "",
                  "| part | float32 CPU ms | dynamic CPU ms |", "|---|---|---|"]
        parts = tp["default_crnn_by_part"]
        for name in parts["float32"]["parts"]:
            lines.append(f"| {name} | {_r(parts['float32']['parts'][name]['cpu_ms'])} | "
                         f"{_r(parts['dynamic']['parts'][name]['cpu_ms'])} |")
        lines += ["", f"Shipped file ({tp['shipped']['bytes'] / 1e6:.2f} MB): {_r(tp['shipped']['cpu_ms'])} CPU ms "
                  f"per window timed beside the parts, {_r(tp['variants_shipped_reference']['cpu_ms'])} beside "
                  "the variants (the reference of their 'vs shipped'; variants have random weights: the time "
                  "and the file size do not depend on the values; `_unrolled`: the GRU exported without a "
                  "WHILE loop).", "", "| variant | parameters | dynamic MB | dynamic CPU ms | vs shipped | "
                  "float32 MB | float32 CPU ms | fits (< 1 MB, <= 1.2x) |", "|---|---|---|---|---|---|---|---|"]
        for name, v in tp["variants"].items():
            if "dynamic" not in v:
                continue
            lines.append(f"| {name} | {v['parameters']} | {v['dynamic_bytes'] / 1e6:.2f} | "
                         f"{_r(v['dynamic']['cpu_ms'])} | {_r(v['dynamic_cpu_vs_shipped'])}x | "
                         f"{v['float32_bytes'] / 1e6:.2f} | {_r(v['float32']['cpu_ms'])} | "
                         f"{'yes' if v['fits_budget'] else 'no'} |")
    return lines


def render_generic(d: dict[str, Any]) -> list[str]:
    return ["```json", json.dumps(d, indent=1)[:3000], "```"]


def render_ship_speed(d: dict[str, Any]) -> list[str]:
    rows = [f"| {k} | {d[k]['file']} | {d[k]['bytes']:,} | {d[k]['best_s']} | {d[k]['median_s']} |"
            for k in ("baseline", "candidate")]
    return [f"{d['track']}, {d['repeats']} interleaved fresh-process runs each, 1 thread, load "
            f"average {_r(d['load_average'])}.", "",
            "| model | file | bytes | best s | median s |", "|---|---|---|---|---|", *rows, "",
            f"**candidate / baseline: {d['ratio_best']}x best, {d['ratio_median']}x median** (bar: <= 1.2x)"]


def render_quality(d: dict[str, Any]) -> list[str]:
    lines = ["Budget: 4 song-level folds, each training the recipe on ~9 songs + their remixes "
             "(and generated tracks none of whose sources it holds out); recipes compared at "
             "equal optimizer steps (`--steps-per-epoch`). `bench/quality.py --from-run DIR` "
             "re-scores a finished `iad-tf cv` run from its saved out-of-fold predictions.", "",
             f"Shipped: `{d.get('shipped', 'n/a')}`.", ""]
    for name, r in d.items():
        if not isinstance(r, dict):
            continue  # the "shipped" key
        ch = r["settings"][r["decoder_mode"]]
        met = r["targets_met_by_decoder_mode"]
        lines += [
            f"Recipe `{name}`: {json.dumps(r['recipe'])}; {len(r['songs'])} songs in "
            f"{len(r['folds'])} song-level folds; wall {_r(r['wall_s'], 0)} s; mAP {r['map']:.3f}.",
            "",
            "| decisions | F1 micro | F1 macro | instruments predicted / present |",
            "|---|---|---|---|",
        ]
        for k, v in r["settings"].items():
            lines.append(f"| {k} | {v['f1_micro']:.3f} | {v['f1_macro']:.3f} | "
                         f"{v['instruments_predicted']:.1f} / {v['instruments_present']:.1f} |")
        verdict = ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in met.items())
        lines += ["", f"Decisions the cv chose ({r['decoder_mode']}, cross-fitted): micro "
                  f"{ch['f1_micro']:.3f}, macro {ch['f1_macro']:.3f}, instruments "
                  f"{ch['instruments_ratio']:.2f}x present; targets {json.dumps(r['targets'])}: "
                  f"{verdict}.", ""]
    return lines


def render_quality_partial(d: dict[str, Any]) -> list[str]:
    lines = [f"Folds {d['folds']} only ({len(d['songs'])} songs: {', '.join(d['songs'])}), each recipe "
             f"beside the same folds of `{d['baseline']}`; pooled out-of-fold, F1 at 0.5 (no decoder).", "",
             "| recipe (run) | mAP | mAP, instruments in >= 2 songs | F1 micro / macro at 0.5 |",
             "|---|---|---|---|"]
    for name, r in d["recipes"].items():
        lines.append(f"| {name} ({r['run_dir']}) | {r['map']:.3f} | {r['map_in_2plus_songs']:.3f} | "
                     f"{r['f1_micro_at_0.5']:.3f} / {r['f1_macro_at_0.5']:.3f} |")
    return lines


def render_song_decisions(d: dict[str, Any]) -> list[str]:
    cols = [k for k in next(iter(d["runs"].values())) if k.startswith(("tuned", "learned"))]
    lines = ["Cross-fitted song-level presence on each run's out-of-fold predictions: the tuned gate "
             "(`presence_bass_required`, as `iad-tf cv`) vs a logistic regression on pooled scores; "
             "F1 micro / macro (instruments predicted / present).", "",
             "| run | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, r in d["runs"].items():
        cells = [f"{r[c]['f1_micro']:.3f} / {r[c]['f1_macro']:.3f} ({r[c]['instruments_ratio']:.2f}x)"
                 for c in cols]
        lines.append(f"| {name} ({r['run_dir']}) | " + " | ".join(cells) + " |")
    return lines


def render_decoder_transfer(d: dict[str, Any]) -> list[str]:
    runs = d["runs"]
    lines = ["Cross-fitted decisions of each run's out-of-fold predictions, F1 micro / macro "
             "(instruments predicted / present), per decoder source: `own` = tuned on the run's "
             "other folds (as `iad-tf cv`), `others` = on the other runs' OOF (leave-run-out, the "
             "shipped model's situation), `all` = every run's; `relative` / `relative_top3` = the "
             "gate on song-relative scores. Under each table: the runs where `others` >= `own` (micro).", ""]
    for mode in d["modes"]:
        cols = [k for k in d["means"] if k.startswith(f"{mode} ") and k.split(" ", 1)[0] == mode]
        lines += [f"Mode `{mode}`:", "", "| run | " + " | ".join(c.split(" ", 1)[1] for c in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for name, r in [*runs.items(), ("**mean**", d["means"])]:
            cells = [f"{r[c]['f1_micro']:.3f} / {r[c]['f1_macro']:.3f} ({r[c]['instruments_ratio']:.2f}x)"
                     for c in cols]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        wins = sum(r[f"{mode} others"]["f1_micro"] >= r[f"{mode} own"]["f1_micro"] for r in runs.values())
        lines += ["", f"`others` >= `own` in {wins} of {len(runs)} runs.", ""]
    return lines


def render_heard_curve(d: dict[str, Any]) -> list[str]:
    lines = [d["what"] + ". One point per (fold, instrument present in its held-out songs); mean AP "
             "(mean chance level) and points per group of real songs heard.", "",
             "| run | " + " | ".join(f"heard in {g}" for g in d["pooled"]) + " |",
             "|---|" + "---|" * len(d["pooled"])]
    for name, r in [*d["runs"].items(), ("**all runs**", {"curve": d["pooled"]})]:
        cells = [(f"{r['curve'][g]['mean_ap']:.3f} ({r['curve'][g]['mean_prevalence']:.3f}), "
                  f"{r['curve'][g]['points']}") if g in r["curve"] else "" for g in d["pooled"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


RENDERERS: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "build_records": ("build-records vs a naive serial loop (12 sample tracks)", render_build_records),
    "input_pipeline": ("Input pipeline vs CRNN training", render_input_pipeline),
    "batching_regimes": ("Whole tracks vs fixed windows", render_batching),
    "train_speed": ("Training throughput of the cv recipe (CRNN) vs the base commit; TFLite per-part "
                    "profile", render_train_speed),
    "predict": ("Inference: `iad-tf predict` end to end, TFLite vs Keras, sizes", render_predict),
    "beam_vs_local": ("Apache Beam DirectRunner vs the local pool", render_beam),
    "predict_memory": ("`iad-tf predict` memory on 10/60/180-minute recordings", render_predict_memory),
    "quality": ("Quality: song-level cross-validation on the 12 sample songs", render_quality),
    "quality_partial_s10": ("Quality: session 10's arms on folds 1-2 (the GM-soundfont arm stopped there by its rule)",
                            render_quality_partial),
    "heard_curve": ("Quality: AP on unheard songs by the number of training songs that hold the instrument",
                    render_heard_curve),
    "quality_partial": ("Quality: recipes on the folds every run finished (machine time)",
                        render_quality_partial),
    "quality_partial_3folds": ("Quality: EMA weights on folds 1-3 (fold 4 unfinished) beside the other arms",
                               render_quality_partial),
    "quality_partial_4folds": ("Quality: two seeds of the shipped recipe and their mean, all 4 folds",
                               render_quality_partial),
    "quality_partial_ema_seeds": ("Quality: two seeds each of the plain and the EMA recipe, and their means, "
                                  "all 4 folds", render_quality_partial),
    "quality_partial_s8": ("Quality: the EMA recipe's runs (2 seeds, bank shifts +-6, GRU 96) and means of "
                           "4 and 6 runs' probabilities, all 4 folds", render_quality_partial),
    "quality_partial_gru96_seeds": ("Quality: the EMA + GRU 96 confirmation, seed 1 on the folds it finished "
                                    "(session 8)", render_quality_partial),
    "decoder_transfer": ("Song-level decisions: a decoder tuned on other training runs, and a "
                         "song-relative gate (`bench/decoder_transfer.py`)", render_decoder_transfer),
    "song_decisions": ("Song-level decisions learned from OOF predictions vs the tuned gate "
                       "(`bench/song_decisions.py`)", render_song_decisions),
    "on_device": ("On a device: waveform-in vs two-step model, light vs full install", render_generic),
    "ship_speed": ("A new default model vs the previous one: `predict` side by side (run by hand: "
                   "`bench/ship_speed.py CANDIDATE`)", render_ship_speed),
    "ship_speed_gru96_untrained": ("Capacity candidate before training: wide CRNN + GRU 96 vs the shipped "
                                   "model in `predict` (`--name ship_speed_gru96_untrained`)", render_ship_speed),
    "ship_speed_gru128_untrained": ("Capacity candidate before training: wide CRNN + GRU 128 vs the shipped "
                                    "model in `predict` (`--name ship_speed_gru128_untrained`)", render_ship_speed),
}


def script_of(name: str) -> str:
    """The bench script that writes results ``name``: the longest ``bench/*.py`` stem that is
    ``name`` or a prefix of it followed by ``_`` (``quality_partial_s8`` -> ``quality_partial``,
    ``ship_speed_gru96_untrained`` -> ``ship_speed``), so a new variant needs no table entry."""
    stems = [p.stem for p in BENCH.glob("*.py")]
    return max((s for s in stems if name == s or name.startswith(s + "_")), key=len, default=name)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("tensorflow", "keras", "numpy", "librosa", "ai-edge-litert", "apache-beam"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def render(times: dict[str, float]) -> str:
    lines = ["# Benchmarks", "",
             "Written by `make bench` (bench/run_all.py) from bench/results/*.json; every number below "
             "was measured by the script named, ratios side by side in one run.", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
             f"- load average when rendered: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()), ""]
    for name, (title, fn) in RENDERERS.items():
        d = _load(name)
        lines += [f"## {title}", "", f"Script: `bench/{script_of(name)}.py`; results: `bench/results/{name}.json`"
                  + (f"; ran {times[name]:.0f} s in this run." if name in times else "."), ""]
        try:
            lines += fn(d) if d is not None else ["Not run yet."]
        except (KeyError, TypeError) as exc:
            lines += [f"(results file has an unexpected layout: {exc})"]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="run only these benchmarks")
    ap.add_argument("--render-only", action="store_true", help="just rewrite BENCHMARKS.md")
    args = ap.parse_args()
    times: dict[str, float] = {}
    if not args.render_only:
        sample = find_sample()
        ensure_sample_records(sample)
        for name, cmd in scripts(sample).items():
            if args.only and name not in args.only:
                continue
            if name == "beam_vs_local" and importlib.util.find_spec("apache_beam") is None:
                print("skipping beam_vs_local: apache-beam is not installed (pip install 'iad-tf[beam]')")
                continue
            times[name] = run(cmd)
    (REPO / "BENCHMARKS.md").write_text(render(times) + "\n", encoding="utf-8")
    print(f"wrote {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
