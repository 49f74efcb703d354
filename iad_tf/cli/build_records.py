"""``iad-tf build-records``: AAM folders -> sharded TFRecords (thin wrapper over
:func:`iad_tf.data.build.build_records`)."""

from __future__ import annotations

from pathlib import Path

import click

from iad_tf.cli.options import check_writable, workers_option
from iad_tf.cli.paths import IN_DIR, IN_FILE, OUT_DIR
from iad_tf.config import FEATURE_CONFIGS, FEATURE_NAMES
from iad_tf.data.records import LABEL_MODES


@click.command("build-records")
@click.option(
    "--aam-root", "aam_roots", multiple=True, required=True,
    type=IN_DIR,
    help="AAM root (annotations/ + audio-mixes-*/; a path or a URL). Repeat for real + synthetic + remix folders.",
)
@click.option("--out", "out_dir", required=True, type=OUT_DIR,
              help="Records directory to write (a path or a URL) (shards + manifest.json); shards and manifest already there are replaced.")
@workers_option
@click.option("--features", "features", type=click.Choice(FEATURE_NAMES), default=FEATURE_NAMES[0], show_default=True,
              help="Named feature configuration: logmel (22.05 kHz, 128 mel bands, dB) or musicnn "
                   "(16 kHz, 96 bands, log10(1 + 10000 S); for --model musicnn_crnn).")
@click.option("--labels", type=click.Choice(list(LABEL_MODES)), default="onsets", show_default=True,
              help="Frame labels from the onset events or from the segments' instrument lists; "
                   "onsets+pitch: the onsets' labels plus each frame's multi-pitch roll (88 keys), "
                   "for training with --aux-pitch-weight; onsets+roles: plus the song roles sounding in "
                   "each frame (from the segments' Generator column), for --aux-role-weight.")
@click.option("--val-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True)
@click.option("--test-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True)
@click.option("--split-file", type=IN_FILE, default=None,
              help="Explicit splits: lines '<id> <split>' or JSON {split: [ids]} (overrides the hash split).")
@click.option("--shards-per-split", type=click.IntRange(min=1), default=None,
              help="Shards per split [default: auto, ~128 MB each].")
@click.option("--strict", is_flag=True, help="Fail (write nothing) if any track is skipped.")
@click.option("--keep-cache", is_flag=True, help="Keep OUT/.work (per-track arrays) after success.")
@click.option("--runner", type=click.Choice(["local", "beam"]), default="local", show_default=True,
              help="local: process pool. beam: Apache Beam pipeline (pip install 'iad-tf[beam]'); "
                   "runs on DirectRunner or a cluster. Both resume from the same cache (OUT/.work).")
@click.option("--beam-options", default=None, metavar="'FLAGS'",
              help="Beam pipeline flags for --runner beam, e.g. '--runner=FlinkRunner "
                   "--flink_master=host:8081' [default: DirectRunner with --workers processes].")
def build_records(
    aam_roots: tuple[Path, ...],
    out_dir: Path,
    workers: int,
    features: str,
    labels: str,
    val_fraction: float,
    test_fraction: float,
    split_file: Path | None,
    shards_per_split: int | None,
    strict: bool,
    keep_cache: bool,
    runner: str,
    beam_options: str | None,
) -> None:
    """Decode, featurise and label every AAM track; write train/val/test TFRecord shards.

    An interrupted run resumes where it stopped: rerun the same command.
    """
    check_writable(out_dir)
    from iad_tf.aam.dataset import DatasetError
    from iad_tf.data.build import BuildError, BuildOptions
    from iad_tf.data.build import build_records as run
    from iad_tf.data.splits import SplitError
    from iad_tf.storage import StorageError

    opts = BuildOptions(
        labels=labels, val_fraction=val_fraction, test_fraction=test_fraction, split_file=split_file,
        shards_per_split=shards_per_split, workers=workers, strict=strict, keep_cache=keep_cache,
    )
    feature_cfg = FEATURE_CONFIGS[features]
    if beam_options is not None and runner != "beam":
        raise click.UsageError("--beam-options needs --runner beam")
    try:
        if runner == "beam":
            from iad_tf.data.beam import build_records_beam, parse_beam_options

            result = build_records_beam(
                list(aam_roots), out_dir, opts, cfg=feature_cfg, beam_args=parse_beam_options(beam_options)
            )
        else:
            result = run(list(aam_roots), out_dir, opts, cfg=feature_cfg)
    except (BuildError, DatasetError, SplitError, StorageError) as exc:
        raise click.ClickException(str(exc)) from None
    m = result.manifest
    click.echo(
        f"built {len(m['tracks'])} track(s) ({result.computed} computed, {result.reused} from cache), "
        f"features={features}, labels={m['labels']}"
    )
    for split, ids in m["splits"].items():
        n_shards = sum(1 for name in m["shards"] if name.startswith(f"{split}-"))
        click.echo(f"  {split:5s}: {len(ids):5d} tracks, {m['frames'][split]:9d} frames, {n_shards} shard(s)")
    if result.skipped:
        click.echo(f"skipped {len(result.skipped)} track(s):", err=True)
        for p in result.skipped:
            click.echo(f"  {p['track']}: {p['reason']}", err=True)
    click.echo(f"manifest: {result.manifest_path}")
