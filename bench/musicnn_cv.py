"""Song-level cross-validation: plain CRNN vs musicnn_crnn (MTT and MSD weights), per instrument.

Issue 14, item 4. Same songs, same folds, same training budget for every variant:

* ``crnn``: the default CRNN on ``--features logmel`` records;
* ``musicnn_mtt`` / ``musicnn_msd``: ``--model musicnn_crnn`` on ``--features musicnn``
  records, pretrained front end from the MagnaTagATune / Million Song Dataset checkpoint
  (frozen; ``--finetune-blocks N`` adds variants with the last N mid-end blocks fine-tuned).

Each variant runs ``iad-tf cv --model M --records R --folds K --run-dir DIR [fit options]``
(resumable: rerun the same command), then the per-instrument out-of-fold average precision
and the pooled F1 of each variant's ``report.json`` are gathered into one table. The two
feature configurations have different frame grids (23.2 ms vs 16 ms); each model is scored
on its own grid, over the same songs.

    python bench/musicnn_cv.py --aam-root ../shared/aam-sample [--aam-root data/remix] \\
        --folds 4 -- --epochs 30 --window-seconds 6
Results -> bench/results/musicnn_cv.json and .md; work files in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "musicnn_cv.json"


def variants(finetune_blocks: list[int]) -> list[dict[str, Any]]:
    """(name, model, feature config name, [model] TOML table) of every compared variant."""
    out = [{"name": "crnn", "model": "crnn", "features": "logmel", "model_table": {}}]
    for weights in ("mtt", "msd"):
        for n in [0, *finetune_blocks]:
            out.append(
                {
                    "name": f"musicnn_{weights}" + (f"_ft{n}" if n else ""),
                    "model": "musicnn_crnn",
                    "features": "musicnn",
                    "model_table": {"musicnn_weights": weights, "musicnn_finetune_blocks": n},
                }
            )
    return out


def iad_tf(*args: str) -> None:
    cmd = [sys.executable, "-m", "iad_tf", *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def toml_with_model(base: Path | None, model_table: dict[str, Any], out: Path) -> Path:
    """A copy of the ``--config`` TOML (if any) whose [model] table also holds ``model_table``."""
    data = tomllib.loads(base.read_text(encoding="utf-8")) if base else {}
    data.setdefault("model", {}).update(model_table)
    lines = []
    for table, values in data.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Per-instrument OOF AP and the pooled scores of one cv report.json."""
    mode = report["decoder_mode"]
    return {
        "songs": len(report["songs"]),
        "frames": report["n_frames"],
        "frame_seconds": report["frame_seconds"],
        "map": report["ranking"]["average_precision_macro"],
        "ap": {c: v["average_precision"] for c, v in report["ranking"]["per_class"].items()},
        "decoder_mode": mode,
        "pooled": {
            k: report["settings"][k]["pooled"] for k in ("flat", mode) if k in report["settings"]
        },
    }


def markdown(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    classes = sorted({c for r in results.values() for c, ap in r["ap"].items() if ap is not None})
    head = "| instrument | " + " | ".join(names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|"]
    for c in classes:
        cells = [results[n]["ap"].get(c) for n in names]
        lines.append(
            f"| {c} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in cells) + " |"
        )
    lines.append("| **mAP** | " + " | ".join(f"{results[n]['map']:.3f}" for n in names) + " |")
    for key in ("f1_micro", "f1_macro"):
        row = [results[n]["pooled"][results[n]["decoder_mode"]].get(key) for n in names]
        lines.append(
            f"| {key} (cross-fitted decoder) | "
            + " | ".join("-" if v is None else f"{v:.3f}" for v in row)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aam-root", action="append", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "musicnn_cv")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--config", type=Path, default=None, help="fit TOML shared by all variants")
    ap.add_argument("--finetune-blocks", type=int, action="append", default=[])
    ap.add_argument("--only", action="append", default=None, help="run only these variants")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("fit_options", nargs="*", help="after --: fit options for every variant")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict[str, Any]] = {}
    for v in variants(args.finetune_blocks):
        if args.only and v["name"] not in args.only:
            continue
        records = args.work / f"records_{v['features']}"
        if not (records / "manifest.json").is_file():
            roots = [a for root in args.aam_root for a in ("--aam-root", str(root))]
            iad_tf(
                "build-records", *roots, "--out", str(records), "--features", v["features"],
                "--workers", str(args.workers),
            )  # fmt: skip
        run_dir = args.work / f"cv_{v['name']}"
        config = (
            toml_with_model(args.config, v["model_table"], args.work / f"{v['name']}.toml")
            if v["model_table"] or args.config
            else None
        )
        iad_tf(
            "cv", "--model", v["model"], "--records", str(records), "--folds", str(args.folds),
            "--run-dir", str(run_dir), *(["--config", str(config)] if config else []),
            *args.fit_options,
        )  # fmt: skip
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        results[v["name"]] = {**summarise(report), "variant": v, "run_dir": str(run_dir)}

    out = {
        "folds": args.folds,
        "aam_roots": [str(r) for r in args.aam_root],
        "fit_options": args.fit_options,
        "config": str(args.config) if args.config else None,
        "results": results,
    }
    from results_io import write_result

    write_result(RESULTS, out)
    table = markdown(results)
    RESULTS.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
