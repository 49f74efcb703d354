"""``iad-tf predict --stream``: files played into a streaming model as a microphone would,
printing each instrument as it starts and stops. TF-free."""

from __future__ import annotations

import click
import numpy as np


def predict_stream(
    paths: tuple[str, ...], model_path: str, median_window: int | None, threads: int
) -> None:
    """Feed every audio file under ``paths`` block by block; print events and a summary line.
    Unreadable files are reported and skipped (exit code 1 if any failed)."""
    from iad_tf.audio import AudioError
    from iad_tf.inference.live import feed_file
    from iad_tf.inference.metadata import ModelError
    from iad_tf.inference.predict import find_audio
    from iad_tf.inference.stream import Stream, algorithmic_latency_s

    try:
        stream = Stream(model_path, threads=threads)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    md = stream.model.metadata
    cfg = md.feature_config
    jobs, failures = find_audio(paths)
    click.echo(
        f"streaming model {model_path}: chunks of {stream.model.chunk_frames} frames "
        f"({stream.model.chunk_frames * cfg.frame_seconds:.2f} s), algorithmic latency "
        f"<= {algorithmic_latency_s(cfg, stream.model.chunk_frames):.3f} s before smoothing"
    )
    for job in jobs:
        click.echo(f"{job.path}:")
        try:
            report = feed_file(
                job.path, stream, median_window, on_event=lambda e: click.echo(e.line())
            )
        except (AudioError, OSError, ValueError) as exc:
            msg = str(exc) if str(job.path) in str(exc) else f"{job.path}: {exc}"
            failures.append(msg)
            click.echo(f"skipped {msg}", err=True)
            continue
        lat = [e.latency_s for e in report.events]
        click.echo(
            f"{job.path.name}: {len(report.events)} events in {report.duration_s:.1f} s"
            + (f", latency mean {np.mean(lat):.2f} s, max {max(lat):.2f} s" if lat else "")
        )
    for msg in failures:
        click.echo(f"failed: {msg}", err=True)
    if failures:
        raise click.ClickException(f"{len(failures)} path(s) failed, {len(jobs)} streamed")
