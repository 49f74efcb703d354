"""``iad-tf bank``: cut AAM stems into a note bank (thin wrapper over :mod:`iad_tf.synth.bank`)."""

from __future__ import annotations

import click

from iad_tf.cli.options import workers_option


@click.command()
@click.option(
    "--aam-root", "aam_roots", type=click.Path(file_okay=False), multiple=True, required=True,
    help="AAM root with annotations/, midis/ and audio-multitracks-{flac,wav,mp3}/ (repeatable).",
)
@click.option("--out", "out", type=click.Path(file_okay=False), required=True, help="Bank folder to write.")
@workers_option
@click.option("--song", "songs", multiple=True, help="Only these song ids (repeatable); default all.")
@click.option("--sample-rate", type=click.Choice(["22050", "44100"]), default="22050", show_default=True,
              help="Sample rate of the bank's audio.")
@click.option("--max-tail", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="Longest release tail (s) kept after a note, up to the next onset.")
@click.option("--onset-tolerance", type=click.FloatRange(min=0.001), default=0.02, show_default=True,
              help="A MIDI onset with no onsets-ARFF onset of its pitch this close (s) is misaligned.")
@click.option("--silence-margin-db", type=float, default=10.0, show_default=True,
              help="A note whose stem RMS is less than this above the stem's noise floor is silent.")
def bank(
    aam_roots: tuple[str, ...], out: str, workers: int, songs: tuple[str, ...], sample_rate: str,
    max_tail: float, onset_tolerance: float, silence_margin_db: float,
) -> None:
    """Cut every note, chord and drum hit of AAM stems (aligned by their MIDI, checked against
    the onsets ARFF) into a note bank: audio/<Instrument>/<song>.flac, index.csv (one row per
    cut), bank.json and report.md. Bad cuts (silent stem, misaligned) are counted and skipped.
    `iad-tf synth --voices bank:OUT` renders songs from it.
    """
    from iad_tf.aam.arff import ArffError
    from iad_tf.aam.dataset import DatasetError
    from iad_tf.audio import AudioError
    from iad_tf.synth.bank import BankConfig, build_bank, coverage_markdown

    try:
        cfg = BankConfig(sample_rate=int(sample_rate), max_tail_s=max_tail,
                         onset_tolerance_s=onset_tolerance, silence_margin_db=silence_margin_db)
        meta = build_bank(list(aam_roots), out, cfg, workers=workers, songs=list(songs) or None)
    except (ArffError, DatasetError, AudioError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in meta["notes"]:
        click.echo(f"left out {line}", err=True)
    report = meta["report"]
    click.echo(coverage_markdown(report["instruments"], report["skipped"]))
    click.echo(f"wrote {report['cuts']} cuts of {len(meta['songs'])} songs to {out} "
               f"(fingerprint {meta['fingerprint']}) in {meta['elapsed_s']:.1f} s")
