"""``iad-tf synth`` (synthetic AAM-style songs) and ``iad-tf remix`` (new mixes of real stems).

Thin wrappers over :mod:`iad_tf.synth.corpus` and :mod:`iad_tf.synth.remix`.
"""

from __future__ import annotations

import time
from typing import Any

import click

from iad_tf.cli.options import seed_option, workers_option
from iad_tf.cli.paths import OUT_DIR, StoragePath, local_file, staged


def _sample_rate_option(f):  # noqa: ANN001, ANN202 - click decorator
    return click.option(
        "--sample-rate", type=click.Choice(["44100", "22050"]), default="44100", show_default=True,
        help="Output sample rate (AAM uses 44100; 22050 is the feature rate).",
    )(f)


@click.command()
@click.option("--out", "out", type=OUT_DIR, required=True, help="Output AAM root (a path or a URL).")
@click.option("--tracks", type=click.IntRange(min=1), default=10, show_default=True, help="Number of songs.")
@seed_option
@click.option("--duration", type=click.FloatRange(min=1.0), default=60.0, show_default=True, help="Seconds per song.")
@workers_option
@click.option(
    "--soundfont", type=StoragePath(dir_okay=False, as_str=True), default=None,
    help="GM soundfont (.sf2); default: TimGM6mb.sf2 shipped with pretty_midi.",
)
@click.option(
    "--instruments", multiple=True,
    help="Only these AAM instruments (repeat or comma-separate); default all 31.",
)
@_sample_rate_option
def synth(
    out: Any,
    tracks: int,
    seed: int,
    duration: float,
    workers: int,
    soundfont: str | None,
    instruments: tuple[str, ...],
    sample_rate: str,
) -> None:
    """Generate AAM-style songs (mix, stems, MIDI, ARFF annotations) with a GM soundfont.

    Tracks are named s0001, s0002, ...; the same --seed gives the same files.
    """
    from iad_tf.synth.corpus import SynthConfig, synthesize
    from iad_tf.synth.instruments import parse_instruments
    from iad_tf.synth.render import SynthUnavailable

    try:
        t0 = time.perf_counter()
        with local_file(soundfont) as sf2, staged(out) as stage:
            cfg = SynthConfig(
                tracks=tracks,
                seed=seed,
                duration=duration,
                sample_rate=int(sample_rate),
                soundfont=str(sf2 or ""),
                instruments=parse_instruments(list(instruments)),
            )
            results = synthesize(stage.local, cfg, workers=workers)
    except (SynthUnavailable, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    wall = time.perf_counter() - t0
    audio_s = sum(r["duration_s"] for r in results)
    cpu_s = sum(r["elapsed_s"] for r in results)
    click.echo(
        f"wrote {len(results)} songs ({audio_s:.0f} s of audio) to {out} in {wall:.1f} s; "
        f"{audio_s / max(cpu_s, 1e-9):.0f}x real time per worker"
    )


@click.command()
@click.option(
    "--aam-root", type=StoragePath(file_okay=False), required=True,
    help="AAM root with annotations/ and audio-multitracks-*/ stems (a path, or a URL: copied "
    "to a local folder first).",
)
@click.option("--out", "out", type=OUT_DIR, required=True, help="Output AAM root (a path or a URL).")
@click.option("--per-track", type=click.IntRange(min=1), default=4, show_default=True, help="Remixes per source track.")
@seed_option
@workers_option
@click.option("--min-gain-db", type=float, default=-3.0, show_default=True, help="Lowest random stem gain.")
@click.option("--max-gain-db", type=float, default=3.0, show_default=True, help="Highest random stem gain.")
@click.option("--track", "tracks", multiple=True, help="Only these source track ids (repeatable).")
@click.option("--stems/--no-stems", default=False, show_default=True, help="Also write the gained kept stems.")
@_sample_rate_option
def remix(
    aam_root: Any,
    out: Any,
    per_track: int,
    seed: int,
    workers: int,
    min_gain_db: float,
    max_gain_db: float,
    tracks: tuple[str, ...],
    stems: bool,
    sample_rate: str,
) -> None:
    """New mixes of real AAM songs: random instruments dropped, random gains per stem.

    Remix ids are <track>r01, <track>r02, ...; sources.json maps them to their source track
    so build-records keeps every remix in its source's split.
    """
    from iad_tf.aam.dataset import DatasetError
    from iad_tf.audio import AudioError
    from iad_tf.synth.remix import RemixConfig, RemixError, remix_corpus

    try:
        cfg = RemixConfig(
            per_track=per_track,
            seed=seed,
            min_gain_db=min_gain_db,
            max_gain_db=max_gain_db,
            sample_rate=int(sample_rate),
            stems=stems,
        )
        with staged(aam_root) as src, staged(out) as stage:
            records, skipped = remix_corpus(src.local, stage.local, cfg, workers=workers,
                                            tracks=list(tracks) or None)
    except (RemixError, DatasetError, AudioError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in skipped:
        click.echo(f"skipped {line}", err=True)
    n_src = len({r["source_track"] for r in records.values()})
    click.echo(f"wrote {len(records)} remixes of {n_src} tracks to {out}")
