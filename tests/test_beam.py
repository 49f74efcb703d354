"""build-records --runner beam (Apache Beam, DirectRunner) against the local runner.

The Beam tests need the optional extra (``pip install 'iad-tf[beam]'``) and are skipped
without it; the missing-extra error message is tested everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.cli.build_records import build_records as build_cmd
from iad_tf.data.build import BuildError, BuildOptions, build_records
from tests.tiny_aam import make_tiny_aam
from tfrecords_tools.cli import cli as tools_cli
from tfrecords_tools.reader import iter_records, read_manifest, shard_files
from tfrecords_tools.schema import Schema

HAVE_BEAM = importlib.util.find_spec("apache_beam") is not None
needs_beam = pytest.mark.skipif(
    not HAVE_BEAM, reason="apache-beam not installed (optional extra: pip install 'iad-tf[beam]')"
)
MULTI = "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"


def _aam_with_bad_track(root: Path) -> Path:
    """5 tone songs plus track 0099 whose audio is not audio (must be skipped)."""
    make_tiny_aam(root, n_tracks=5, seconds=4.0, seed=3)
    ann = root / "annotations"
    (ann / "0099_onsets.arff").write_text((ann / "0001_onsets.arff").read_text())
    (root / "audio-mixes-flac" / "0099_mix.flac").write_bytes(np.random.default_rng(0).bytes(4000))
    return root


def records_by_track(records_dir: Path) -> dict[str, dict]:
    """Every record of every shard, decoded, keyed by track id (shard name kept)."""
    schema = Schema.from_json(read_manifest(records_dir)["schema"])
    out: dict[str, dict] = {}
    for shard in shard_files(records_dir):
        for raw in iter_records(shard):
            rec = schema.decode(raw)
            tid = rec["track_id"].decode()
            assert tid not in out, f"{tid} written twice"
            out[tid] = {**rec, "shard": shard.name}
    return out


GENERATOR = {"generator": "synth", "config": {"tracks": 3}, "seed": 7, "version": "0.1.0"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(aam root, local records, beam records) built from the same folder."""
    if not HAVE_BEAM:
        pytest.skip("apache-beam not installed (optional extra: pip install 'iad-tf[beam]')")
    tmp = tmp_path_factory.mktemp("beam")
    root = _aam_with_bad_track(tmp / "aam")
    (root / "generator.json").write_text(json.dumps(GENERATOR))  # provenance both runners copy
    opts = BuildOptions(shards_per_split=2, workers=1, progress=False)
    build_records([root], tmp / "local", opts)
    res = CliRunner().invoke(
        build_cmd,
        ["--aam-root", str(root), "--out", str(tmp / "beam"), "--shards-per-split", "2",
         "--runner", "beam", "--beam-options", MULTI],
    )
    assert res.exit_code == 0, res.output
    assert "skipped 1 track(s)" in res.output and "0099" in res.output
    return root, tmp / "local", tmp / "beam"


@needs_beam
def test_beam_records_equal_local(built: tuple[Path, Path, Path]) -> None:
    _, local, beam = built
    a, b = records_by_track(local), records_by_track(beam)
    assert sorted(a) == sorted(b) == ["0001", "0002", "0003", "0004", "0005"]
    for tid in a:
        ra, rb = a[tid], b[tid]
        for key in ("track_id", "source_id", "split", "n_frames"):
            assert ra[key] == rb[key], (tid, key)
        assert ra["mel"].dtype == rb["mel"].dtype == np.float16
        np.testing.assert_array_equal(ra["mel"], rb["mel"])
        np.testing.assert_array_equal(ra["labels"], rb["labels"])
        assert rb["labels"].sum() > 0  # tone songs have active instruments
        assert rb["shard"].startswith(rb["split"].decode() + "-")  # each record in its split's shards


@needs_beam
def test_beam_manifest_equal_local_and_verifies(built: tuple[Path, Path, Path]) -> None:
    root, local, beam = built
    ma, mb = read_manifest(local), read_manifest(beam)
    assert set(ma) == set(mb)
    for key in ma:
        if key != "shards":  # which shard holds a track is Beam's choice
            assert ma[key] == mb[key], key  # mel_stats too: summed in track-id order, bit-equal
    assert [p["track"] for p in mb["skipped"]] == ["0099"]
    assert "cannot decode audio" in mb["skipped"][0]["reason"]
    assert mb["generators"] == {str(root): GENERATOR}
    assert sorted(mb["shards"]) == sorted(ma["shards"])  # same fixed names and counts per split
    for split in ("train", "val", "test"):
        n = sum(v["records"] for k, v in mb["shards"].items() if k.startswith(f"{split}-"))
        assert n == len(mb["splits"][split])
    assert not [p for p in beam.iterdir() if p.name.startswith((".beam-", "beam-temp"))]
    res = CliRunner().invoke(tools_cli, ["verify", str(beam)])
    assert res.exit_code == 0, res.output
    assert f"OK ({len(mb['shards'])} shard(s), 5 record(s))" in res.output


@needs_beam
def test_beam_strict_writes_nothing(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from iad_tf.data.beam import build_records_beam

    root = built[0]
    out = tmp_path / "strict"
    with pytest.raises(BuildError, match=r"--strict: 1 track\(s\) skipped"):
        build_records_beam([root], out, BuildOptions(shards_per_split=1, strict=True, workers=1))
    # no shard, no manifest, no side folder: only the finished tracks' cache, as the local
    # runner leaves it (a rerun without --strict reuses it)
    assert sorted(p.name for p in out.iterdir()) == [".work"]


def test_missing_beam_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tiny_aam(tmp_path / "aam", n_tracks=1, seconds=1.0)
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam -> ImportError
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(root), "--out", str(tmp_path / "o"), "--runner", "beam"])
    assert res.exit_code == 1
    assert "pip install 'iad-tf[beam]'" in res.output
    assert not (tmp_path / "o").exists()


def test_beam_options_need_beam_runner(tmp_path: Path) -> None:
    root = make_tiny_aam(tmp_path / "aam", n_tracks=1, seconds=1.0)
    res = CliRunner().invoke(
        build_cmd, ["--aam-root", str(root), "--out", str(tmp_path / "o"), "--beam-options", "--runner=FlinkRunner"]
    )
    assert res.exit_code == 2 and "--beam-options needs --runner beam" in res.output


def test_beam_options_parsing() -> None:
    from iad_tf.data.beam import default_beam_args, parse_beam_options

    assert parse_beam_options("--runner=FlinkRunner --flink_master='h:8081'") == [
        "--runner=FlinkRunner", "--flink_master=h:8081",
    ]
    assert parse_beam_options(None) == []
    with pytest.raises(BuildError, match="cannot parse"):
        parse_beam_options("--x='unclosed")
    assert default_beam_args(2)[:3] == [
        "--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing",
    ]
    assert default_beam_args(1) == ["--runner=DirectRunner"]


def test_discovery_runs_on_threads_of_a_local_multi_process_runner() -> None:
    from iad_tf.data.beam import default_beam_args, discovery_args

    assert discovery_args(default_beam_args(2)) == [
        "--runner=DirectRunner", "--direct_num_workers=2", "--default_sdk_harness_log_level=WARNING",
        "--direct_running_mode=multi_threading",
    ]
    flink = ["--runner=FlinkRunner", "--parallelism=64"]
    assert discovery_args(flink) == flink  # a cluster lists through its own workers
    assert discovery_args(["--runner=DirectRunner"]) == ["--runner=DirectRunner"]
