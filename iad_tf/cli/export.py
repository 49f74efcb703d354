"""``iad-tf export``: SavedModel + TFLite (float32 and quantised) of a run, checked."""

from __future__ import annotations

from typing import Any

import click

from iad_tf import storage
from iad_tf.cli.options import check_writable
from iad_tf.cli.paths import OUT_DIR, RUN_DIR, StoragePath, staged


def earlier_export(out_dir: Any, name: str) -> Any | None:
    """A file or folder an earlier export of ``name`` left in ``out_dir`` (a path or a URL
    path): ``<name>.tflite``/``.json``, ``<name>_*.tflite``/``.json`` (quantised, waveform,
    stream, the report) or ``<name>_saved_model``; None when there is none (or no folder)."""
    if not out_dir.exists():
        return None
    for p in sorted(out_dir.iterdir(), key=lambda q: q.name):
        stem, dot, ext = p.name.rpartition(".")
        if p.name == f"{name}_saved_model" or (
            dot and ext in ("tflite", "json") and (stem == name or stem.startswith(f"{name}_"))
        ):
            return p
    return None


@click.command()
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=RUN_DIR,
    help="Run directory written by fit (model.keras, config.json).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=OUT_DIR,
    help="Output folder (a path or a URL).",
)
@click.option(
    "--records",
    "records_dir",
    type=StoragePath(file_okay=False, as_str=True),
    default=None,
    help="Records directory (default: the one the run was trained on).",
)
@click.option(
    "--window-frames",
    type=click.IntRange(min=8),
    default=None,
    help="Fixed TFLite window in frames [default: 256 (5.9 s)]; hop is 3/4 of it.",
)
@click.option(
    "--quantize",
    type=click.Choice(["int8", "dynamic", "float16", "none"]),
    default="int8",
    show_default=True,
    help="Quantised model to add; falls back int8 -> dynamic -> float16.",
)
@click.option(
    "--name", default="model", show_default=True, help="File stem of the exported models."
)
@click.option(
    "--chunk-frames",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="crnn_stream runs: frames per chunk of <name>_stream.tflite (16 = 0.37 s).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier export of --name in --out (its models, report and, if this "
    "export makes no such file, its other quantised model). Without it the export refuses.",
)
@click.option(
    "--ship",
    is_flag=True,
    help="Also install the quantised model (float if none) as the default model in saved_models/.",
)
def export(
    run_dir: Any,
    out_dir: Any,
    records_dir: str | None,
    window_frames: int | None,
    quantize: str,
    name: str,
    chunk_frames: int,
    overwrite: bool,
    ship: bool,
) -> None:
    """Export a trained run and check every artifact against the Keras model.

    Writes <name>.tflite (float32), <name>_<mode>.tflite (quantised), the waveform-in models
    <name>_waveform.tflite and <name>_waveform_dynamic.tflite (log-mel in the graph; input
    audio at the model's rate), each with its metadata embedded and as a <stem>.json sidecar,
    <name>_saved_model/ and <name>_export.json (checks). Fails, with the numbers, if
    SavedModel/float TFLite differ from Keras by more than 1e-4, the quantised model's
    micro-F1 by more than 0.02, or a waveform model's log-mel from logmel by more than
    0.05 dB or its probabilities from the two-step path by more than 1e-4 (0.01 quantised).
    A crnn_stream run also gets <name>_stream.tflite (one chunk + state tensors; chunked
    output == whole-sequence Keras within 1e-5) and, where it converts and keeps micro-F1,
    <name>_stream_int8.tflite (else _int16x8).
    """
    check_writable(out_dir)
    if ship and storage.is_remote(out_dir):
        raise click.UsageError("--ship installs into this checkout: give a local --out")
    if not overwrite:
        try:
            found = earlier_export(storage.to_path(out_dir), name)
        except OSError as exc:
            raise click.ClickException(f"--out {out_dir}: {storage.cause(exc)}") from None
        if found is not None:
            raise click.ClickException(
                f"--out {out_dir} holds an earlier export of {name!r} ({found}); it is left as "
                "it is: --overwrite replaces it, or give another --out or --name")
    from iad_tf.export.checks import ExportCheckError
    from iad_tf.export.pipeline import ExportSettings
    from iad_tf.export.run import export_run
    from iad_tf.export.stream import StreamSettings

    try:
        settings = ExportSettings(quantize=quantize, name=name)
        with staged(run_dir) as run, staged(out_dir) as out:
            result = export_run(
                run.local,
                out.local,
                records_dir,  # a URL: read through its verified local copy
                settings,
                window_frames,
                progress=lambda msg: click.echo(f"... {msg}", err=True),
                stream=StreamSettings(chunk_frames=chunk_frames, quantize=quantize != "none"),
            )
    except (ValueError, FileNotFoundError, ExportCheckError) as exc:
        raise click.ClickException(str(exc)) from None
    for check in result.checks:
        click.echo(check.line())
    q = result.quantization
    click.echo(f"quantised: {q.get('mode')} ({q.get('why', '')})")
    click.echo(
        f"wrote {result.float_model}, {result.quantized_model or '(no quantised model)'}, "
        f"{result.saved_model}, {result.report}"
    )
    click.echo(f"waveform models: {', '.join(str(p) for p in result.waveform_models)}")
    if result.stream is not None:
        st = result.stream
        for check in st.checks:
            click.echo(check.line())
        for att in st.quant_attempts:
            verdict = "kept" if att["ok"] else "not kept"
            click.echo(f"stream {att['mode']}: {verdict} ({att['reason']})")
        click.echo(
            f"wrote {st.float_model}, {st.quantized_model or '(no integer stream model)'}, "
            f"{st.report}"
        )
    if ship:
        from iad_tf.export.ship import ship_default

        try:
            target = ship_default(result.quantized_model or result.float_model, echo=click.echo)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"default model: {target} (+ {target.with_suffix('.json').name})")
