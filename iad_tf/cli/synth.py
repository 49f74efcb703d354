"""``iad-tf synth`` (synthetic AAM-style songs) and ``iad-tf remix`` (new mixes of real stems).

Thin wrappers over :mod:`iad_tf.synth.corpus` and :mod:`iad_tf.synth.remix`.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import click

from iad_tf.cli.options import seed_option, workers_option
from iad_tf.cli.paths import OUT_DIR, StoragePath, local_file, staged
from iad_tf.synth import DEFAULT_PREFIX
from iad_tf.synth.bank_songs import DEFAULT_MAX_SHIFT, MAX_SHIFT_LIMIT, SOUNDFONT_VOICES


def _sample_rate_option(f, default: str | None = "44100"):  # noqa: ANN001, ANN202 - click decorator
    extra = " Default: 44100, or the bank's own rate with --voices bank:DIR." if default is None else ""
    return click.option(
        "--sample-rate", type=click.Choice(["44100", "22050"]), default=default, show_default=default is not None,
        help="Output sample rate (AAM uses 44100; 22050 is the feature rate)." + extra,
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
@click.option(
    "--prefix", default=DEFAULT_PREFIX, show_default=True,
    help="Track ids are <prefix>0001, ... (1-8 lowercase letters): give generations that one "
    "build-records reads together distinct prefixes.",
)
@functools.partial(_sample_rate_option, default=None)
def synth(
    out: Any,
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
    prefix: str,
) -> None:
    """Generate AAM-style songs (mix, stems, MIDI, ARFF annotations) with a GM soundfont or
    from a note bank (--voices bank:DIR).

    Tracks are named s0001, s0002, ... (--prefix); the same --seed gives the same files
    whatever --workers.
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
        t0 = time.perf_counter()
        with local_file(soundfont) as sf2, staged(out) as stage:
            cfg = SynthConfig(
                tracks=tracks,
                seed=seed,
                duration=duration,
                sample_rate=rate,
                soundfont=str(sf2 or ""),
                instruments=parse_instruments(list(instruments)),
                voices=voices,
                max_shift=max_shift,
                holdout_folds=holdout_folds,
                prefix=prefix,
            )
            results = synthesize(stage.local, cfg, workers=workers)
    except (SynthUnavailable, BankError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    wall = time.perf_counter() - t0
    rendered = [r for r in results if not r["kept"]]
    audio_s = sum(r["duration_s"] for r in rendered)
    cpu_s = sum(r["elapsed_s"] for r in rendered)
    click.echo(
        f"wrote {len(rendered)} songs ({audio_s:.0f} s of audio) to {out} in {wall:.1f} s; "
        f"{audio_s / max(cpu_s, 1e-9):.0f}x real time per worker; "
        f"{len(results) - len(rendered)} kept from an earlier run"
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
@click.option(
    "--across-songs", type=click.IntRange(min=1), default=None,
    help="Instead: N new tracks x0001.. from whole stems of different songs (one bass, drums or "
    "none, 1-3 chord, 1-2 melody stems), instruments and pairs balanced; stems always written.",
)
@click.option(
    "--holdout-folds", type=click.IntRange(min=0), default=0, show_default=True,
    help="With --across-songs: track i avoids the songs of fold (i mod K) of the K folds "
    "'iad-tf cv --folds K' forms over the root's songs (0: no holdout).",
)
@click.option(
    "--pitch-shift", type=click.IntRange(0, 12), default=0, show_default=True,
    help="With --across-songs: transpose each stem by a random -K..K semitones (labels too), "
    "never out of its instrument's range.",
)
@click.option(
    "--duration", type=click.FloatRange(min=1.0), default=60.0, show_default=True,
    help="With --across-songs: seconds per track (stems cropped or looped).",
)
@click.pass_context
def remix(
    ctx: click.Context,
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
    across_songs: int | None,
    holdout_folds: int,
    pitch_shift: int,
    duration: float,
) -> None:
    """New mixes of real AAM songs: within a song (random instruments dropped, random gains per
    stem) or, with --across-songs N, across songs.

    Remix ids are <track>r01, <track>r02, ...; sources.json maps them to their source track
    so build-records keeps every remix in its source's split. Cross-song tracks x0001, ...
    list all their source songs there, plus remixes.json (stems, offsets, gains, shifts) and
    balance.json (frames per class before/after, instrument pair coverage). A folder holds
    one generation (generator.json): another seed or setting into it is refused.
    """
    from click.core import ParameterSource

    from iad_tf.aam.dataset import DatasetError
    from iad_tf.audio import AudioError
    from iad_tf.synth.remix import RemixConfig, RemixError, remix_corpus

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)

    only_within = [f"--{n.replace('_', '-')}" for n in ("per_track", "tracks", "stems") if given(n)]
    only_across = [f"--{n.replace('_', '-')}" for n in ("holdout_folds", "pitch_shift", "duration") if given(n)]
    if across_songs is not None and only_within:
        raise click.UsageError(f"{', '.join(only_within)} do(es) not apply with --across-songs")
    if across_songs is None and only_across:
        raise click.UsageError(f"{', '.join(only_across)} need(s) --across-songs N")
    try:
        if across_songs is not None:
            with staged(aam_root) as src, staged(out) as stage:
                _across(src.local, stage.local, str(out), across_songs, seed, workers, min_gain_db,
                        max_gain_db, int(sample_rate), holdout_folds, pitch_shift, duration)
            return
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


def _across(
    aam_root: Path, out: Path, shown: str, n: int, seed: int, workers: int, min_gain_db: float, max_gain_db: float,
    sample_rate: int, holdout_folds: int, pitch_shift: int, duration: float,
) -> None:
    from iad_tf.synth.across import BALANCE_FILE, AcrossConfig, across_corpus
    from iad_tf.synth.balance import format_report

    cfg = AcrossConfig(tracks=n, seed=seed, duration=duration, holdout_folds=holdout_folds,
                       pitch_shift=pitch_shift, min_gain_db=min_gain_db, max_gain_db=max_gain_db,
                       sample_rate=sample_rate)
    result = across_corpus(aam_root, out, cfg, workers=workers)
    for line in result.skipped:
        click.echo(f"skipped {line}", err=True)
    click.echo(format_report(result.report))
    click.echo(
        f"wrote {result.rendered} cross-song tracks ({result.audio_s:.0f} s of audio) to {shown} "
        f"in {result.wall_s:.1f} s ({result.audio_s / max(result.wall_s, 1e-9):.1f} s of audio per "
        f"wall second; {len(result.records) - result.rendered} kept from an earlier run); "
        f"balance report: {shown}/{BALANCE_FILE}"
    )
