"""``iad-tf evaluate``, ``iad-tf plot`` and ``iad-tf compare``: thin wrappers over
:mod:`iad_tf.evaluation`. TensorFlow is imported only inside ``evaluate``'s body."""

from __future__ import annotations

from pathlib import Path

import click

from iad_tf.cli.options import F, check_writable, records_option
from iad_tf.postprocess import MAX_MEDIAN_WINDOW


def _run_option(f: F) -> F:
    return click.option(
        "--run", "run_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
        help="Run directory written by fit (config.json, model.keras).",
    )(f)


def _out_option(f: F) -> F:
    return click.option(
        "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Where metrics.json, predictions.npz, confusion.csv and plots/ go [default: the run].",
    )(f)


@click.command()
@_run_option
@records_option
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option("--median-window", type=click.IntRange(min=1, max=MAX_MEDIAN_WINDOW), default=None,
              help="Median filter (odd number of frames; 1 = off) [default: 5, or the window of "
                   "the run's thresholds.json with --no-tune].")
@click.option("--tune/--no-tune", default=True, show_default=True,
              help="Tune per-instrument thresholds on the val split and save thresholds.json "
                   "(--no-tune uses an existing thresholds.json, if any).")
@click.option("--threshold-mode", type=click.Choice(["per-class", "global"]), default="per-class",
              show_default=True,
              help="per-class: one threshold per instrument maximising its F1; global: one "
                   "threshold for all maximising micro-F1 (robust when val has few tracks).")
@_out_option
@click.option("--max-rolls", type=click.IntRange(min=0), default=12, show_default=True,
              help="Per-track piano rolls to draw.")
@click.option("--no-plots", is_flag=True, help="Skip the pictures.")
def evaluate(run_dir: Path, records_dir: str, split: str, median_window: int | None, tune: bool,
             threshold_mode: str, out_dir: Path | None, max_rolls: int, no_plots: bool) -> None:
    """Score a trained run on a records split: metrics.json, confusions, pictures."""
    check_writable(out_dir or run_dir, "--out" if out_dir else "--run")
    from iad_tf.evaluation.evaluate import evaluate_run
    from iad_tf.evaluation.report import render_report

    try:
        result = evaluate_run(run_dir, records_dir, split, median_window, tune, out_dir,
                              threshold_mode=threshold_mode, plots=not no_plots, max_rolls=max_rolls, log=click.echo)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(render_report(result.report))
    click.echo("\nwrote:")
    for f in result.files:
        click.echo(f"  {f}")


@click.command()
@_run_option
@_out_option
@click.option("--max-rolls", type=click.IntRange(min=0), default=12, show_default=True,
              help="Per-track piano rolls to draw.")
def plot(run_dir: Path, out_dir: Path | None, max_rolls: int) -> None:
    """Draw an evaluated run's pictures from its saved outputs (no re-evaluation)."""
    check_writable(out_dir or run_dir, "--out" if out_dir else "--run")
    from iad_tf.evaluation.evaluate import draw_plots

    try:
        files = draw_plots(run_dir, out_dir, max_rolls=max_rolls)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(f"{run_dir}: cannot draw ({exc}); run `iad-tf evaluate` first") from exc
    for f in files:
        click.echo(str(f))


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the comparison as Markdown to this file.")
@click.option("--setting", default="headline", show_default=True,
              type=click.Choice(["headline", "flat", "flat_median", "tuned", "tuned_median"]),
              help="Decision setting to compare (headline: tuned + median when available).")
def compare(runs: tuple[Path, ...], markdown_file: Path | None, setting: str) -> None:
    """Evaluated runs side by side (from their metrics.json and config.json)."""
    from iad_tf.evaluation.compare import load_run_summary, per_instrument_rows, render_compare
    from iad_tf.evaluation.tables import markdown_table, text_table
    from iad_tf.fileio import write_text

    if markdown_file is not None:
        check_writable(markdown_file.parent, "--markdown")
    try:
        summaries = [load_run_summary(r) for r in runs]
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(render_compare(summaries, setting))
    headers, rows = per_instrument_rows(summaries)
    click.echo("")
    click.echo(text_table(headers, rows, title="Per-instrument F1 (headline setting):"))
    if markdown_file is not None:
        md = ("## Runs\n\n" + render_compare(summaries, setting, markdown=True)
              + "\n\n## Per-instrument F1 (headline setting)\n\n" + markdown_table(headers, rows) + "\n")
        write_text(markdown_file, md)
        click.echo(f"\nwrote {markdown_file}")
