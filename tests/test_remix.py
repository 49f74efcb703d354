"""iad-tf remix: the mix is the gained sum of the kept stems, the annotations are the source's
with the dropped instruments silent, and remixes stay in their source's split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.aam.arff import read_beatinfo, read_onsets, read_segments
from iad_tf.aam.dataset import discover_root
from iad_tf.audio import load_audio
from iad_tf.data.splits import assign_split, hash_split
from iad_tf.synth.remix import RemixConfig, find_stems, remix_corpus

pytest.importorskip("tinysoundfont")

SR = 22050
QUANT = 0.5 / 32768  # 16-bit rounding of the written mix


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 6-second synthetic songs with stems (the remix input)."""
    from iad_tf.synth.corpus import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("src") / "aam"
    synthesize(root, SynthConfig(tracks=3, seed=4, duration=6.0, sample_rate=SR), workers=1)
    return root


@pytest.fixture(scope="module")
def tiny_remix(tiny_source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("remix") / "out"
    records, skipped = remix_corpus(tiny_source, out, RemixConfig(per_track=3, seed=1, sample_rate=SR), workers=1)
    assert skipped == []
    return out, records


def check_remix(src_root: Path, out: Path, rid: str, rec: dict) -> None:
    """Mix == sum of gained kept stems; annotations == source with dropped instruments silent."""
    src = rec["source_track"]
    mix = load_audio(out / "audio-mixes-flac" / f"{rid}_mix.flac", SR).astype(np.float64)
    stems = find_stems(src_root, src)
    assert sorted(rec["kept"] + rec["dropped"]) == sorted(stems)
    assert rec["kept"] and set(rec["kept"]).isdisjoint(rec["dropped"])
    audio = {k: load_audio(p, SR).astype(np.float64) for k, p in stems.items()}
    n = max(len(y) for y in audio.values())
    expected = np.zeros(n)
    for name, g in rec["gains_db"].items():
        expected[: len(audio[name])] += audio[name] * 10 ** (g / 20)
    assert len(mix) == n
    assert np.max(np.abs(mix - expected)) <= QUANT * 1.01 + 1e-6
    assert np.max(np.abs(mix)) == pytest.approx(10 ** (-1 / 20), abs=2 * QUANT)

    a_src, a_new = read_onsets(src_root / "annotations" / f"{src}_onsets.arff"), read_onsets(
        out / "annotations" / f"{rid}_onsets.arff"
    )
    assert a_new.instruments == a_src.instruments
    np.testing.assert_array_equal(a_new.times, a_src.times)
    for i, name in enumerate(a_src.instruments):
        col_src = [row[i] for row in a_src.notes]
        col_new = [row[i] for row in a_new.notes]
        assert col_new == ([()] * len(col_src) if name in rec["dropped"] else col_src), name
    s_src = read_segments(src_root / "annotations" / f"{src}_segments.arff")
    s_new = read_segments(out / "annotations" / f"{rid}_segments.arff")
    assert [s.start for s in s_new] == [s.start for s in s_src]
    for a, b in zip(s_src, s_new, strict=True):
        pairs = [(i, g) for i, g in zip(a.instruments, a.generators, strict=True) if i not in rec["dropped"]]
        assert list(zip(b.instruments, b.generators, strict=True)) == pairs
        assert (b.mark, b.tempo, b.key) == (a.mark, a.tempo, a.key)
    assert read_beatinfo(out / "annotations" / f"{rid}_beatinfo.arff") == read_beatinfo(
        src_root / "annotations" / f"{src}_beatinfo.arff"
    )


def test_tiny_remixes(tiny_source: Path, tiny_remix: tuple[Path, dict]) -> None:
    out, records = tiny_remix
    assert sorted(records) == [f"s000{k}r0{r}" for k in (1, 2, 3) for r in (1, 2, 3)]
    for rid, rec in records.items():
        check_remix(tiny_source, out, rid, rec)
        for name in rec["kept"]:
            assert (out / "midis" / f"{rid}_{name}.mid").is_file()
        for name in rec["dropped"]:
            assert not (out / "midis" / f"{rid}_{name}.mid").exists()
    # the drop subsets and gains really vary
    assert len({tuple(r["dropped"]) for r in records.values()}) > 3
    assert json.loads((out / "sources.json").read_text()) == {k: [k[:5]] for k in records}


def test_remix_is_deterministic(tiny_source: Path, tiny_remix: tuple[Path, dict], tmp_path: Path) -> None:
    out, records = tiny_remix
    again, _ = remix_corpus(tiny_source, tmp_path / "again", RemixConfig(per_track=3, seed=1, sample_rate=SR), workers=2)
    assert again == records
    for rid in records:
        name = f"audio-mixes-flac/{rid}_mix.flac"
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
    other, _ = remix_corpus(tiny_source, tmp_path / "other", RemixConfig(per_track=3, seed=2, sample_rate=SR))
    assert other != records


def test_remixes_inherit_source_split(tiny_remix: tuple[Path, dict]) -> None:
    out, records = tiny_remix
    tracks, problems = discover_root(out)
    assert problems == [] and sorted(t.track_id for t in tracks) == sorted(records)
    val, test = 0.3, 0.3
    own_hash_differs = 0
    for t in tracks:
        assert t.source_id == records[t.track_id]["source"]
        split = assign_split(t.track_id, t.source_id, None, val, test)
        assert split == hash_split(records[t.track_id]["source_track"], val, test)
        own_hash_differs += hash_split(t.track_id, val, test) != split
    assert own_hash_differs > 0  # hashing the remix's own id would have leaked across splits


def test_remix_of_remix_keeps_original_source(tiny_source: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    remix_corpus(tiny_source, first, RemixConfig(per_track=1, sample_rate=SR, stems=True), tracks=["s0001"])
    recs, _ = remix_corpus(first, tmp_path / "second", RemixConfig(per_track=1, sample_rate=SR))
    assert sorted(recs) == ["s0001r01r01"]
    assert recs["s0001r01r01"]["source"] == "s0001"
    assert json.loads((tmp_path / "second/sources.json").read_text()) == {"s0001r01r01": ["s0001"]}


def test_cli(tiny_source: Path, tmp_path: Path) -> None:
    from iad_tf.cli.main import cli

    runner = CliRunner()
    res = runner.invoke(
        cli,
        ["remix", "--aam-root", str(tiny_source), "--out", str(tmp_path / "o"), "--per-track", "1",
         "--workers", "1", "--sample-rate", "22050", "--track", "s0002", "--stems"],
    )
    assert res.exit_code == 0, res.output
    assert sorted(json.loads((tmp_path / "o/sources.json").read_text())) == ["s0002r01"]
    assert list((tmp_path / "o/audio-multitracks-flac").glob("s0002r01_*.flac"))
    res = runner.invoke(cli, ["remix", "--aam-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert res.exit_code != 0 and "nope" in res.output and "Traceback" not in res.output
    res = runner.invoke(
        cli, ["remix", "--aam-root", str(tiny_source), "--out", str(tmp_path / "o3"), "--min-gain-db", "4"]
    )
    assert res.exit_code != 0 and "gain" in res.output


@pytest.mark.sample
def test_remix_real_sample(aam_sample: Path, tmp_path: Path) -> None:
    """One real AAM song (mp3 stems): mix and annotations as for the tiny songs."""
    out = tmp_path / "real"
    records, _ = remix_corpus(aam_sample, out, RemixConfig(per_track=1, seed=3, sample_rate=SR), tracks=["0080"])
    assert sorted(records) == ["0080r01"]
    check_remix(aam_sample, out, "0080r01", records["0080r01"])
