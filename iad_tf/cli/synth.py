"""``iad-tf synth`` (synthetic AAM-style songs) and ``iad-tf remix`` (new mixes of real stems).

Thin wrappers over :mod:`iad_tf.synth.corpus` and :mod:`iad_tf.synth.remix`.
"""

from __future__ import annotations

import functools
import time

import click

from iad_tf.cli.options import seed_option, workers_option
from iad_tf.synth.bank_songs import DEFAULT_MAX_SHIFT, MAX_SHIFT_LIMIT, SOUNDFONT_VOICES


def _sample_rate_option(f, default: str | None = "44100"):  # noqa: ANN001, ANN202 - click decorator
    extra = " Default: 44100, or the bank's own rate with --voices bank:DIR." if default is None else ""
    return click.option(
        "--sample-rate", type=click.Choice(["44100", "22050"]), default=default, show_default=default is not None,
        help="Output sample rate (AAM uses 44100; 22050 is the feature rate)." + extra,
    )(f)


@click.command()
@click.option("--out", "out", type=click.Path(file_okay=False), required=True, help="Output AAM root.")
@click.option("--tracks", type=click.IntRange(min=1), default=10, show_default=True, help="Number of songs.")
@seed_option
@click.option("--duration", type=click.FloatRange(min=1.0), default=60.0, show_default=True, help="Seconds per song.")
@workers_option
@click.option(
    "--soundfont", type=click.Path(dir_okay=False), default=None,
    help="GM soundfont (.sf2); default: TimGM6mb.sf2 shipped with pretty_midi.",
)
@click.option(
    "--instruments", multiple=True,
    help="Only these AAM instruments (repeat or comma-separate); default all 31.",
)
@click.option(
    "--voices", default=SOUNDFONT_VOICES, show_default=True,
    help="'soundfont' (GM soundfont) or 'bank:DIR': play every note from a note bank built by "
    "`iad-tf bank` (writes sources.json and generator.json too).",
)
@click.option(
    "--max-shift", type=click.IntRange(0, MAX_SHIFT_LIMIT), default=DEFAULT_MAX_SHIFT, show_default=True,
    help="Bank voices: largest pitch shift (semitones) of a recorded note; notes beyond every "
    "recorded pitch +- this are moved by octaves. Provisional default: the final one is chosen "
    "by cross-validation.",
)
@click.option(
    "--holdout-folds", type=click.IntRange(min=0), default=0, show_default=True,
    help="Bank voices: K >= 2 makes track k draw no notes from the songs of fold (k-1) mod K "
    "(the folds `iad-tf cv --folds K` forms over the bank's songs); 0: every song.",
)
@functools.partial(_sample_rate_option, default=None)
def synth(
    out: str,
    tracks: int,
    seed: int,
    duration: float,
    workers: int,
    soundfont: str | None,
    instruments: tuple[str, ...],
    voices: str,
    max_shift: int,
    holdout_folds: int,
    sample_rate: str | None,
) -> None:
    """Generate AAM-style songs (mix, stems, MIDI, ARFF annotations) with a GM soundfont or
    from a note bank (--voices bank:DIR).

    Tracks are named s0001, s0002, ...; the same --seed gives the same files whatever --workers.
    """
    from iad_tf.synth.bank_index import BankError, load_bank
    from iad_tf.synth.bank_songs import bank_dir
    from iad_tf.synth.corpus import SynthConfig, synthesize
    from iad_tf.synth.instruments import parse_instruments
    from iad_tf.synth.render import DEFAULT_SAMPLE_RATE, SynthUnavailable

    try:
        bank = bank_dir(voices)
        if sample_rate:
            rate = int(sample_rate)
        else:
            rate = load_bank(bank).sample_rate if bank else DEFAULT_SAMPLE_RATE
        cfg = SynthConfig(
            tracks=tracks,
            seed=seed,
            duration=duration,
            sample_rate=rate,
            soundfont=soundfont or "",
            instruments=parse_instruments(list(instruments)),
            voices=voices,
            max_shift=max_shift,
            holdout_folds=holdout_folds,
        )
        t0 = time.perf_counter()
        results = synthesize(out, cfg, workers=workers)
    except (SynthUnavailable, BankError, ValueError, OSError) as exc:
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
    "--aam-root", type=click.Path(file_okay=False), required=True,
    help="AAM root with annotations/ and audio-multitracks-*/ stems.",
)
@click.option("--out", "out", type=click.Path(file_okay=False), required=True, help="Output AAM root.")
@click.option("--per-track", type=click.IntRange(min=1), default=4, show_default=True, help="Remixes per source track.")
@seed_option
@workers_option
@click.option("--min-gain-db", type=float, default=-3.0, show_default=True, help="Lowest random stem gain.")
@click.option("--max-gain-db", type=float, default=3.0, show_default=True, help="Highest random stem gain.")
@click.option("--track", "tracks", multiple=True, help="Only these source track ids (repeatable).")
@click.option("--stems/--no-stems", default=False, show_default=True, help="Also write the gained kept stems.")
@_sample_rate_option
def remix(
    aam_root: str,
    out: str,
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
        records, skipped = remix_corpus(aam_root, out, cfg, workers=workers, tracks=list(tracks) or None)
    except (RemixError, DatasetError, AudioError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in skipped:
        click.echo(f"skipped {line}", err=True)
    n_src = len({r["source_track"] for r in records.values()})
    click.echo(f"wrote {len(records)} remixes of {n_src} tracks to {out}")
