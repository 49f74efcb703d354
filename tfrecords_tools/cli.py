"""``tfrecords-tools``: inspect, verify and summarise a records directory (shards + manifest)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from iad_tf import storage
from iad_tf.cli.paths import StoragePath

#: A records folder: a path or a URL (iad-tf's one path type; a URL is read through a local
#: copy of its manifest and shard files, taken as they are so that ``verify`` sees them).
_DIR = StoragePath(exists=True, file_okay=False)


def _local(records_dir: Any) -> Path:
    try:
        return storage.local_records(records_dir, check=False)
    except storage.StorageError as exc:
        raise click.ClickException(str(exc)) from None


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _load_tf() -> None:
    """Import TensorFlow without its C++ start-up lines (inside commands, not on --help)."""
    from tfrecords_tools.quiet_tf import tensorflow

    tensorflow()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Generic tools for directories of TFRecord shards with a manifest.json."""
    _quiet_tf()


@cli.command("inspect")
@click.argument("records_dir", type=_DIR)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect_cmd(records_dir: Any, as_json: bool) -> None:
    """Shards, record counts, keys, shapes and dtypes."""
    _load_tf()
    from tfrecords_tools.summary import inspect_dir

    try:
        info = inspect_dir(_local(records_dir))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{records_dir}: {len(info['shards'])} shard(s), {info['total_records']} record(s)")
    for s in info["shards"]:
        click.echo(f"  {s['name']:40s} {s['records']:7d} records {s['bytes'] / 1e6:10.2f} MB")
    click.echo("features:")
    for f in info["features"]:
        shape = "(" + ", ".join("?" if d is None else str(d) for d in f["shape"]) + ")"
        ex = f" e.g. {tuple(f['example_shape'])}" if f["example_shape"] else ""
        click.echo(f"  {f['name']:16s} {f['kind']:7s} {f['dtype']:8s} {shape}{ex}")


@cli.command("verify")
@click.argument("records_dir", type=_DIR)
def verify_cmd(records_dir: Any) -> None:
    """Read every record (CRC), decode it, check counts and sha256 against the manifest.

    Exits non-zero naming every bad shard.
    """
    _load_tf()
    from tfrecords_tools.verify import verify_dir

    report = verify_dir(_local(records_dir))
    for s in report.shards:
        status = "ok" if not s.errors else "BAD"
        click.echo(f"  {s.name:40s} {s.records:7d} records  {status}")
    if not report.ok:
        problems = report.problems()
        raise click.ClickException(
            f"{records_dir}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems)
        )
    click.echo(f"{records_dir}: OK ({len(report.shards)} shard(s), {report.total_records} record(s))")


@cli.command("stats")
@click.argument("records_dir", type=_DIR)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats_cmd(records_dir: Any, as_json: bool) -> None:
    """Per-key statistics: min/max/mean/std of values, totals of the first dimension."""
    _load_tf()
    from tfrecords_tools.summary import stats_dir

    try:
        info = stats_dir(_local(records_dir))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{records_dir}: {info['records']} record(s)")
    for name, st in info["features"].items():
        if "distinct" in st:
            click.echo(f"  {name:16s} distinct={st['distinct']}")
            continue
        line = (
            f"  {name:16s} min={_fmt(st['min'])} max={_fmt(st['max'])} mean={_fmt(st['mean'])} "
            f"std={_fmt(st['std'])} values={st['values']}"
        )
        if st["non_finite"]:
            line += f" NON-FINITE={st['non_finite']}"
        if "dim0_total" in st:
            line += f" dim0 total={st['dim0_total']} (min {st['dim0_min']}, max {st['dim0_max']})"
        click.echo(line)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"
