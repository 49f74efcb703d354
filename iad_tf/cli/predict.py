"""``iad-tf predict``: which instrument plays when, per song, with the exported TFLite model.

TF-free: LiteRT, numpy, soundfile/soxr and the numpy log-mel front end only.
"""

from __future__ import annotations

from pathlib import Path

import click

from iad_tf.cli.options import check_writable
from iad_tf.cli.paths import StoragePath, local_file, staged
from iad_tf.storage import to_path


def _odd_window(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    from iad_tf.postprocess import MAX_MEDIAN_WINDOW

    if value is not None and (value < 1 or value % 2 == 0 or value > MAX_MEDIAN_WINDOW):
        raise click.BadParameter(
            f"must be an odd number from 1 to {MAX_MEDIAN_WINDOW}, got {value}"
        )
    return value


def _check_model_path(model_path: str) -> None:
    """A Keras model or SavedModel is not what predict runs: say how to get a .tflite."""
    p = to_path(model_path)
    if p.suffix.lower() in (".keras", ".h5") or p.is_dir():
        raise click.UsageError(
            f"--model {model_path}: a Keras/TensorFlow model; predict runs an exported .tflite. "
            "Export it first: `iad-tf export --run RUN_DIR --out EXPORT_DIR`, then pass "
            "--model EXPORT_DIR/model.tflite"
        )


@click.command()
@click.argument("paths", nargs=-1, required=True, type=StoragePath(as_str=True))
@click.option(
    "--model",
    "model_path",
    type=StoragePath(as_str=True),
    default=None,
    help="Exported .tflite (mel or waveform model; metadata embedded, or its .json beside "
    "it). Default: the shipped model.",
)
@click.option(
    "--out",
    "out_dir",
    type=StoragePath(file_okay=False, as_str=True),
    default="predictions",
    show_default=True,
    help="Output folder (a path or a URL).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
    help="Segment file format.",
)
@click.option("--plot", is_flag=True, help="Also write a piano-roll PNG per song.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace outputs an earlier run left in --out. Without it a song whose outputs "
    "exist is skipped (named on stderr, exit code 1) and its files are left as they are.",
)
@click.option(
    "--median-window",
    type=int,
    default=None,
    callback=_odd_window,
    help="Median smoothing window in frames (odd). Default: the model's.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="LiteRT interpreter threads.",
)
@click.option(
    "--truth",
    type=StoragePath(dir_okay=False, as_str=True),
    default=None,
    help="AAM onsets ARFF of the (single) song: score the prediction against it (frame "
    "F1, instruments missed and falsely detected) and draw truth vs prediction with --plot.",
)
@click.option(
    "--stream",
    is_flag=True,
    help="Live mode: feed each file in 46 ms blocks through a streaming model "
    "(<stem>_stream.tflite) and print each instrument as it starts and stops, with its "
    "latency. Writes no files.",
)
def predict(
    paths: tuple[str, ...],
    model_path: str | None,
    out_dir: str,
    fmt: str,
    plot: bool,
    overwrite: bool,
    median_window: int | None,
    threads: int,
    truth: str | None,
    stream: bool,
) -> None:
    """Detect instruments in audio files or folders (mp3/flac/wav/ogg, searched recursively).

    Writes per song: segments (<name>.json or .csv), frame probabilities (<name>.npz) and with
    --plot a piano roll (<name>.png). Unreadable files, and songs whose outputs an earlier
    run left in --out (unless --overwrite), are reported and skipped; the exit code is 1 if
    any failed.
    """
    if stream:
        from iad_tf.cli.predict_stream import predict_stream

        if truth is not None:
            raise click.UsageError("--truth scores a whole-song prediction; drop --stream")
        if model_path is None:
            raise click.UsageError(
                "--stream needs --model <stem>_stream.tflite (a crnn_stream export)"
            )
        predict_stream(paths, model_path, median_window, threads)
        return
    from iad_tf.inference.default_model import default_model_path
    from iad_tf.inference.litert import load_model
    from iad_tf.inference.metadata import ModelError
    from iad_tf.inference.predict import predict_paths

    if truth is not None:
        if len(paths) != 1 or not to_path(paths[0]).is_file():
            raise click.UsageError("--truth scores one song: give exactly one audio file")
        if not to_path(truth).is_file():
            raise click.UsageError(f"--truth {truth}: no such file")
    if model_path is not None:
        _check_model_path(model_path)
    check_writable(out_dir)
    with local_file(model_path) as local_model, local_file(truth) as local_truth:
        try:
            model = load_model(local_model or default_model_path(), threads=threads)
        except ModelError as exc:
            raise click.ClickException(str(exc)) from None
        for note in model.notes:
            click.echo(f"note: {note}", err=True)
        with staged(out_dir, download=False) as out:
            Path(out.local).mkdir(parents=True, exist_ok=True)  # an error here: one line, not per song
            report = predict_paths(
                paths,
                model,
                out.local,
                fmt=fmt,
                plot=plot,  # type: ignore[arg-type]
                median_window=median_window,
                truth=local_truth,
                overwrite=overwrite,
                final_dir=out.dest,
            )
    n_ok, n_bad = len(report.results), len(report.failures)
    if n_ok:
        click.echo(f"{n_ok} song(s) written to {out_dir}/")
    if n_bad:  # each failure was printed once as it happened ("skipped ...")
        raise click.ClickException(f"{n_bad} path(s) failed, {n_ok} succeeded")
