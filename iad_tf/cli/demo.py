"""``iad-tf demo``: the whole job on an embedded default, from nothing, in a few minutes.

A small synthetic AAM corpus (``synth``, no download) -> ``build-records`` -> ``fit`` a CRNN
for a few epochs -> ``evaluate`` -> ``export`` (TFLite) -> ``predict`` on a demo song with the
shipped default model. Each step is the same command a user would type; the demo prints it,
runs it in-process, and says where its output went.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import click

from iad_tf.cli.options import workers_option
from iad_tf.cli.paths import OUT_DIR, staged
from iad_tf.fileio import write_text


def _step(title: str, args: list[str], timings: list[tuple[str, float]]) -> None:
    """Print and run one ``iad-tf`` command in-process; stop the demo if it fails."""
    from iad_tf.cli.main import cli

    click.secho(f"\n==> {title}", bold=True)
    click.echo("    iad-tf " + " ".join(args))
    t0 = time.perf_counter()
    try:
        cli.main(args=args, prog_name="iad-tf", standalone_mode=False)
    except click.ClickException as exc:
        raise click.ClickException(f"demo step '{title}' failed: {exc.format_message()}") from None
    timings.append((title, time.perf_counter() - t0))


#: Written into every demo output folder; only a folder holding it is ever replaced.
DEMO_MARKER = ".iad-tf-demo"


#: What a demo output holds; a folder of only these with a demo_summary.json is an output
#: of a demo from before the marker existed.
_DEMO_ENTRIES = frozenset({"aam", "records", "run", "export", "predictions", "splits.txt",
                           "demo_summary.json", DEMO_MARKER})


def _made_by_demo(folder: Path) -> bool:
    if (folder / DEMO_MARKER).is_file():
        return True
    names = {p.name for p in folder.iterdir()}
    return "demo_summary.json" in names and names <= _DEMO_ENTRIES


def prepare_demo_out(out_dir: Path) -> None:
    """Make ``out_dir`` an empty demo folder, replacing it only if an earlier demo made it.

    Refuses ``/``, the home folder, the working folder or any folder holding it, and any
    non-empty folder without the demo marker: the demo never deletes what it did not create.
    """
    target = out_dir.expanduser().resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if target == Path(target.anchor) or target == cwd or target in cwd.parents or (
            target == home or target in home.parents):
        raise click.UsageError(
            f"--out {out_dir}: refusing to use the root, home or working folder (or a folder "
            "holding it) as the demo output; give a new folder such as demo-out")
    if target.exists() and any(target.iterdir()):
        if not _made_by_demo(target):
            raise click.UsageError(
                f"--out {out_dir}: folder is not empty and was not made by iad-tf demo "
                f"(no {DEMO_MARKER} marker); give a new or empty folder")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / DEMO_MARKER).write_text("made by iad-tf demo; replaced by the next demo run\n",
                                      encoding="utf-8")


def _split_file(aam_root: Path, path: Path, n_val: int = 1, n_test: int = 2) -> Path:
    """A split file for the small corpus: the last tracks go to test and val, the rest train.

    (The hash split needs more tracks than a demo has to be sure every split is non-empty.)
    """
    ids = sorted(p.name.split("_mix")[0] for p in aam_root.glob("audio-mixes-*/*_mix.*"))
    lines = []
    for k, tid in enumerate(ids):
        split = "test" if k >= len(ids) - n_test else "val" if k >= len(ids) - n_test - n_val else "train"
        lines.append(f"{tid} {split}")
    write_text(path, "\n".join(lines) + "\n")
    return path


@click.command()
@click.option("--out", "out_dir", type=OUT_DIR, default="demo-out",
              show_default=True, help="Where everything the demo makes goes (a new or empty folder, or an earlier demo's "
                   "output, which is replaced; a URL: made locally, then uploaded).")
@click.option("--tracks", type=click.IntRange(min=4), default=16, show_default=True,
              help="Synthetic songs to generate.")
@click.option("--duration", type=click.FloatRange(min=10), default=40.0, show_default=True,
              help="Seconds per song.")
@click.option("--epochs", type=click.IntRange(min=1), default=12, show_default=True, help="CRNN epochs.")
@workers_option
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out_dir: Any, tracks: int, duration: float, epochs: int, workers: int, seed: int) -> None:
    """Run the main job end to end on a small synthetic AAM corpus (no download needed)."""
    with staged(out_dir, download=False) as stage:
        _run_demo(stage.local, tracks, duration, epochs, workers, seed)


def _run_demo(out_dir: Path, tracks: int, duration: float, epochs: int, workers: int, seed: int) -> None:
    prepare_demo_out(out_dir)
    aam, records, run = out_dir / "aam", out_dir / "records", out_dir / "run"
    export_dir, preds = out_dir / "export", out_dir / "predictions"
    timings: list[tuple[str, float]] = []
    w = str(workers)

    _step("1/7 synthesise a small AAM-format corpus (sampled GM instruments)",
          ["synth", "--out", str(aam), "--tracks", str(tracks), "--duration", str(duration),
           "--seed", str(seed), "--workers", w, "--sample-rate", "22050"], timings)
    split = _split_file(aam, out_dir / "splits.txt")
    _step("2/7 build sharded TFRecords of log-mel frames + activation labels",
          ["build-records", "--aam-root", str(aam), "--out", str(records), "--split-file", str(split),
           "--workers", w], timings)
    _step(f"3/7 train a CRNN for {epochs} epochs",
          ["fit", "--model", "crnn", "--records", str(records), "--run-dir", str(run),
           "--epochs", str(epochs), "--batch-size", "4", "--patience", str(epochs),
           "--seed", str(seed)], timings)
    _step("4/7 evaluate on the test split (thresholds tuned on val), draw the pictures",
          ["evaluate", "--run", str(run), "--records", str(records), "--split", "test"], timings)
    _step("5/7 export SavedModel + TFLite (float and quantised), checked against Keras",
          ["export", "--run", str(run), "--out", str(export_dir)], timings)
    song = sorted((aam / "audio-mixes-flac").glob("*_mix.flac"))[-1]  # a test-split song
    truth = aam / "annotations" / song.name.replace("_mix.flac", "_onsets.arff")
    _step("6/7 predict a test song (never trained on) with the model just trained, vs its truth",
          ["predict", str(song), "--model", str(export_dir / "model.tflite"), "--out",
           str(preds / "demo_model"), "--plot", "--truth", str(truth)], timings)
    _step("7/7 the same song with the shipped default model (LiteRT, no TensorFlow), vs its truth",
          ["predict", str(song), "--out", str(preds / "default_model"), "--plot",
           "--truth", str(truth)], timings)
    click.echo(
        "\nWhat steps 6 and 7 show: which instruments each model hears in one synthetic song\n"
        "whose truth is known, frame F1 against it, and the pictures (green: right, red:\n"
        f"false alarm, blue: missed) in {preds}/. The demo model trained for a minute\n"
        f"on {tracks - 3} synthetic songs, in the same synthetic sound world. The shipped model\n"
        "was trained on 12 real AAM songs and has never heard these General-MIDI sounds: its\n"
        "score here measures that mismatch, NOT its accuracy on real AAM music (the model card,\n"
        "saved_models/README.md, gives its cross-validated estimate on unseen AAM songs).\n"
        f"One {duration:g}-second song is an anecdote, not a benchmark."
    )

    summary = {
        "steps": [{"step": t, "seconds": round(s, 1)} for t, s in timings],
        "outputs": {
            "corpus": str(aam), "records": str(records), "run": str(run),
            "metrics": str(run / "metrics.json"), "plots": str(run / "plots"),
            "export": str(export_dir), "predictions": str(preds),
        },
    }
    write_text(out_dir / "demo_summary.json", json.dumps(summary, indent=2) + "\n")
    click.secho("\nDemo finished.", bold=True)
    for title, secs in timings:
        click.echo(f"  {secs:7.1f} s  {title}")
    click.echo(f"Report: {run / 'metrics.json'}   pictures: {run / 'plots'}/")
    click.echo(f"TFLite models: {export_dir}/   predictions: {preds}/   summary: {out_dir / 'demo_summary.json'}")
