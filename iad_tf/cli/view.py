"""``iad-tf view``: the model in the browser. Serves a page on 127.0.0.1 that decodes a
dropped audio file, runs the exported model in the tab (LiteRT.js, WASM) and shows the
instruments and a piano roll under the playing song; opens what ``predict`` wrote. TF-free."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("predictions", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Exported .tflite with embedded metadata. Default: the shipped model. The "
    "waveform-in variant beside it (<stem>_waveform_dynamic.tflite, then "
    "<stem>_waveform.tflite) is preferred when present.",
)
@click.option(
    "--mel-model",
    is_flag=True,
    help="Run the log-mel model itself (log-mel computed in JavaScript) even when a "
    "waveform-in variant lies beside it.",
)
@click.option(
    "--truth",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="AAM onsets ARFF of the song: draw truth vs prediction.",
)
@click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True,
    help="Port on 127.0.0.1 (0: a free one).",
)
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the page, runtime, model and predictions as static files to this folder "
    "instead of serving them.",
)
def view(
    predictions: tuple[Path, ...],
    model_path: Path | None,
    mel_model: bool,
    truth: Path | None,
    no_browser: bool,
    port: int,
    export_dir: Path | None,
) -> None:
    """Show which instrument plays when, in the browser: drop a song on the page, or open
    PREDICTIONS (folders or .json files written by `iad-tf predict`)."""
    from iad_tf.inference.default_model import default_model_path
    from iad_tf.inference.metadata import ModelError
    from iad_tf.view.assets import AssetsError
    from iad_tf.view.site import ViewError, build_site

    try:
        model = model_path or default_model_path()
        site = build_site(model, list(predictions), truth, prefer_waveform=not mel_model)
    except (ViewError, AssetsError, ModelError) as exc:
        raise click.ClickException(str(exc)) from None
    if export_dir is not None:
        from iad_tf.cli.options import check_writable
        from iad_tf.view.export import export_site

        check_writable(str(export_dir), "--export")
        written = export_site(site, export_dir)
        click.echo(f"wrote {len(written)} files to {export_dir}/ (serve it with any static host)")
        return
    from iad_tf.view.server import ViewServer

    server = ViewServer(site, port)
    click.echo(f"iad-tf view: {server.url}  (loopback only; Ctrl+C stops it)")
    if not no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
