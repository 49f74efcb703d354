"""``iad-tf evaluate``, ``iad-tf plot`` and ``iad-tf compare``: thin wrappers over
:mod:`iad_tf.evaluation`. TensorFlow is imported only inside ``evaluate``'s body."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from iad_tf.cli.options import F, check_writable, records_option
from iad_tf.cli.paths import IN_ANY, OUT_DIR, OUT_FILE, RUN_DIR, local_records, staged
from iad_tf.postprocess import MAX_MEDIAN_WINDOW


def _run_option(f: F) -> F:
    return click.option(
        "--run", "run_dir", type=RUN_DIR, required=True,
        help="Run directory written by fit (config.json, model.keras; a path or a URL).",
    )(f)


def _out_option(f: F) -> F:
    return click.option(
        "--out", "out_dir", type=OUT_DIR, default=None,
        help="Where metrics.json, predictions.npz, confusion.csv and plots/ go [default: the run].",
    )(f)


@click.command()
@_run_option
@records_option
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option("--median-window", type=click.IntRange(min=1, max=MAX_MEDIAN_WINDOW), default=None,
              help="Median filter (odd number of frames; 1 = off) [default: 5, or the window of "
                   "the run's thresholds.json when scoring with it].")
@click.option("--tune/--no-tune", default=None,
              help="Tune per-instrument thresholds on the val split and save thresholds.json "
                   "(--no-tune uses an existing thresholds.json, if any) [default: tune when "
                   "the run has no thresholds.json, else score with it].")
@click.option("--overwrite", is_flag=True,
              help="With --tune: replace the run's existing thresholds.json (without it, "
                   "evaluate refuses: that file may be a cv decoder that export ships).")
@click.option("--threshold-mode", type=click.Choice(["per-class", "global"]), default="per-class",
              show_default=True,
              help="per-class: one threshold per instrument maximising its F1; global: one "
                   "threshold for all maximising micro-F1 (robust when val has few tracks).")
@_out_option
@click.option("--max-rolls", type=click.IntRange(min=0), default=12, show_default=True,
              help="Per-track piano rolls to draw.")
@click.option("--no-plots", is_flag=True, help="Skip the pictures.")
def evaluate(run_dir: Any, records_dir: str, split: str, median_window: int | None,
             tune: bool | None, overwrite: bool, threshold_mode: str, out_dir: Any,
             max_rolls: int, no_plots: bool) -> None:
    """Score a trained run on a records split: metrics.json, confusions, pictures."""
    check_writable(out_dir or run_dir, "--out" if out_dir else "--run")
    from iad_tf.evaluation.evaluate import evaluate_run
    from iad_tf.evaluation.report import render_report

    try:
        with staged(run_dir) as run, staged(out_dir) as out:
            result = evaluate_run(run.local, local_records(records_dir), split, median_window, tune,
                                  out.local if out else None, threshold_mode=threshold_mode,
                                  plots=not no_plots, max_rolls=max_rolls, log=click.echo,
                                  overwrite_thresholds=overwrite)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(render_report(result.report))
    click.echo("\nwrote:")
    for f in result.files:
        click.echo(f"  {(out or run).shown(f)}")


@click.command()
@_run_option
@_out_option
@click.option("--max-rolls", type=click.IntRange(min=0), default=12, show_default=True,
              help="Per-track piano rolls to draw.")
def plot(run_dir: Any, out_dir: Any, max_rolls: int) -> None:
    """Draw an evaluated run's pictures from its saved outputs (no re-evaluation)."""
    check_writable(out_dir or run_dir, "--out" if out_dir else "--run")
    from iad_tf.evaluation.evaluate import draw_plots

    try:
        with staged(run_dir) as run, staged(out_dir) as out:
            files = draw_plots(run.local, out.local if out else None, max_rolls=max_rolls)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(f"{run_dir}: cannot draw ({exc}); run `iad-tf evaluate` first") from exc
    for f in files:
        click.echo((out or run).shown(f))


@click.command()
@click.argument("runs", nargs=-1, required=True, type=IN_ANY)
@click.option("--markdown", "markdown_file", type=OUT_FILE,
              default=None, help="Also write the comparison as Markdown to this file.")
@click.option("--setting", default="headline", show_default=True,
              type=click.Choice(["headline", "flat", "flat_median", "tuned", "tuned_median"]),
              help="Decision setting to compare (headline: tuned + median when available).")
def compare(runs: tuple[Any, ...], markdown_file: Any, setting: str) -> None:
    """Evaluated runs side by side (from their metrics.json and config.json)."""
    from iad_tf import storage
    from iad_tf.evaluation.compare import load_run_summary, per_instrument_rows, render_compare
    from iad_tf.evaluation.tables import markdown_table, text_table

    if markdown_file is not None:
        check_writable(markdown_file.parent, "--markdown")
    try:
        with contextlib.ExitStack() as stack:
            summaries = [load_run_summary(stack.enter_context(staged(r)).local) for r in runs]
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(render_compare(summaries, setting))
    headers, rows = per_instrument_rows(summaries)
    click.echo("")
    click.echo(text_table(headers, rows, title="Per-instrument F1 (headline setting):"))
    if markdown_file is not None:
        md = ("## Runs\n\n" + render_compare(summaries, setting, markdown=True)
              + "\n\n## Per-instrument F1 (headline setting)\n\n" + markdown_table(headers, rows) + "\n")
        with storage.atomic_write(markdown_file) as tmp:
            tmp.write_text(md, encoding="utf-8")
        click.echo(f"\nwrote {markdown_file}")
