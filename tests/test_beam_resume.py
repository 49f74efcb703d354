"""build-records --runner beam resumes from the same ``OUT/.work`` cache as the local runner
(either runner resumes the other's interrupted build), and discovers tracks through Beam's
``fileio.MatchAll`` (the driver lists nothing).

The DirectRunner runs in this process (one worker), so monkeypatched functions are the ones
its steps call.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.aam import dataset
from iad_tf.cli.build_records import build_records as build_cmd
from iad_tf.data import build
from iad_tf.data.build import BuildError, BuildOptions, build_records
from tests.test_beam import records_by_track
from tests.tiny_aam import make_tiny_aam
from tfrecords_tools.reader import read_manifest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("apache_beam") is None,
    reason="apache-beam not installed (optional extra: pip install 'iad-tf[beam]')",
)
OPTS = BuildOptions(shards_per_split=2, workers=1, progress=False)
ORPHAN = "0077"  # annotations without a mix: a problem found at discovery


def _aam(root: Path) -> Path:
    make_tiny_aam(root, n_tracks=5, seconds=3.0, seed=5)
    ann = root / "annotations"
    (ann / f"{ORPHAN}_onsets.arff").write_text((ann / "0001_onsets.arff").read_text())
    return root


def _assert_same_build(fresh: Path, resumed: Path) -> None:
    """Same tracks, arrays, splits and manifest (shard placement aside) as a fresh build."""
    a, b = records_by_track(fresh), records_by_track(resumed)
    assert sorted(a) == sorted(b) == ["0001", "0002", "0003", "0004", "0005"]
    for tid in a:
        for key in ("source_id", "split", "n_frames"):
            assert a[tid][key] == b[tid][key], (tid, key)
        np.testing.assert_array_equal(a[tid]["mel"], b[tid]["mel"])
        np.testing.assert_array_equal(a[tid]["labels"], b[tid]["labels"])
    ma, mb = read_manifest(fresh), read_manifest(resumed)
    assert sorted(ma["shards"]) == sorted(mb["shards"])
    for key in ma:
        if key != "shards":
            assert ma[key] == mb[key], key
    assert [p["track"] for p in mb["skipped"]] == [ORPHAN]


@pytest.fixture
def processed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Track ids :func:`iad_tf.data.build.process_track` computes from now on."""
    calls: list[str] = []
    real = build.process_track

    def spy(track: dataset.Track, *args: object, **kwargs: object) -> dict:
        calls.append(track.track_id)
        return real(track, *args, **kwargs)

    monkeypatch.setattr(build, "process_track", spy)
    return calls


def test_beam_resumes_a_local_build_from_its_cache(tmp_path: Path, processed: list[str]) -> None:
    from iad_tf.data.beam import build_records_beam

    root = _aam(tmp_path / "aam")
    build_records([root], tmp_path / "fresh", OPTS)
    out = tmp_path / "out"
    build_records([root], out, BuildOptions(shards_per_split=2, workers=1, progress=False, keep_cache=True))
    # an interruption: no manifest yet, two tracks not cached, a half-written cache file, and
    # the leftovers of an interrupted beam run (ours) beside folders that are not ours
    (out / "manifest.json").unlink()
    for tid in ("0002", "0004"):
        (out / ".work" / f"{tid}.npz").unlink()
    (out / ".work" / "0002.npz.tmp").write_bytes(b"half")
    ours = [out / ".beam-0123456789ab", out / f"beam-temp-train-{'a' * 32}"]
    theirs = [out / ".beam-notours", out / "beam-temp-mine"]
    for d in ours + theirs:
        d.mkdir()
        (d / "x").write_text("x")
    processed.clear()

    res = build_records_beam([root], out, BuildOptions(shards_per_split=2, workers=1, progress=False,
                                                       keep_cache=True))
    assert sorted(processed) == ["0002", "0004"]  # the cached three were not recomputed
    assert (res.computed, res.reused) == (2, 3)
    _assert_same_build(tmp_path / "fresh", out)
    assert not [d for d in ours if d.exists()] and all(d.exists() for d in theirs)
    assert sorted(p.name for p in (out / ".work").iterdir()) == [f"000{k}.npz" for k in range(1, 6)]

    # a rerun reuses everything and says so; the cache goes once the manifest is written
    processed.clear()
    cli = CliRunner().invoke(build_cmd, ["--aam-root", str(root), "--out", str(out), "--shards-per-split", "2",
                                         "--runner", "beam"])
    assert cli.exit_code == 0, cli.output
    assert "built 5 track(s) (0 computed, 5 from cache)" in cli.output
    assert processed == []
    assert not (out / ".work").exists()
    _assert_same_build(tmp_path / "fresh", out)


def test_local_resumes_an_interrupted_beam_build(
    tmp_path: Path, processed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from iad_tf.data import beam

    root = _aam(tmp_path / "aam")
    build_records([root], tmp_path / "fresh", OPTS)
    real = beam.to_record

    def crash(arrays: dict, split: str) -> dict:
        if arrays["track_id"] == "0003":
            raise RuntimeError("worker killed")
        return real(arrays, split)

    monkeypatch.setattr(beam, "to_record", crash)
    out = tmp_path / "out"
    with pytest.raises(BuildError, match="beam pipeline failed.*worker killed"):
        beam.build_records_beam([root], out, OPTS)
    cached = sorted(p.stem for p in (out / ".work").glob("*.npz"))
    assert "0003" in cached  # cached by the worker before the step after it failed
    assert not (out / "manifest.json").exists()
    assert not list(out.glob(".beam-*"))

    monkeypatch.setattr(beam, "to_record", real)
    processed.clear()
    res = build_records([root], out, OPTS)
    assert sorted(processed) == sorted(set(f"000{k}" for k in range(1, 6)) - set(cached))
    assert (res.computed, res.reused) == (5 - len(cached), len(cached))
    _assert_same_build(tmp_path / "fresh", out)


def test_beam_discovers_through_match_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver lists no folder: the tracks come from fileio.MatchAll (one mix also in a
    lossy format elsewhere in the root, which discovery must pass over as the local one does)."""
    from iad_tf.data.beam import build_records_beam

    root = _aam(tmp_path / "aam")
    (root / "0001_mix.mp3").write_bytes(b"not read: the flac wins")
    (root / "generator.json").write_text(json.dumps({"generator": "synth", "config": {}, "seed": 1}))
    build_records([root], tmp_path / "fresh", OPTS)

    def no_listing(path: Path) -> list[str]:
        raise AssertionError(f"the driver listed {path}")

    monkeypatch.setattr(dataset, "list_root", no_listing)
    res = build_records_beam([root], tmp_path / "beam", OPTS)
    assert res.manifest["tracks"]["0001"]["audio"] == str(root / "audio-mixes-flac" / "0001_mix.flac")
    _assert_same_build(tmp_path / "fresh", tmp_path / "beam")


def test_listing_gives_the_same_tracks_as_local_discovery(tmp_path: Path) -> None:
    from iad_tf.data.beam import root_listings

    root = _aam(tmp_path / "aam")
    (root / "audio-mixes-wav").mkdir()
    (root / "audio-mixes-wav" / "0002_mix.wav").write_bytes(b"x")  # flac wins
    (root / "audio-mixes-wav" / "0009_mix.wav").write_bytes(b"x")  # a mix without annotations
    (root / "annotations" / "notes.txt").write_text("not listed")
    rows = [{"path": str(root / rel)} for rel in dataset.list_root(root)]
    rows.append({"path": str(root / "annotations" / "notes.txt")})
    rows.append({"path": str(tmp_path / "elsewhere_mix.flac")})  # under no root
    listings = root_listings([root], rows)
    assert sorted(listings[0]) == sorted(dataset.list_root(root))
    assert dataset.discover([root], listings) == dataset.discover([root])
