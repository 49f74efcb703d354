"""Issue 11, data side: the demo never deletes what it did not make, remixes never label an
instrument without audio and never leave a folder whose remixes lack a source entry, cut
onsets files are caught, readers use exactly the manifest's shards, and TOML values are
type-checked. Tiny data, no TensorFlow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.aam.arff import OnsetTable, read_onsets, write_onsets
from iad_tf.aam.dataset import DatasetError, discover_root
from iad_tf.cli.main import cli
from tests.records_factory import make_records
from tests.tiny_aam import SR, make_tiny_aam


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in res.output
    return res.exit_code, res.output


# ------------------------------------------------------------------- 1. demo --out safety
@pytest.fixture
def no_demo_steps(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Stop the demo at its first step (the out-dir handling is what is tested)."""
    import iad_tf.cli.demo as demo

    calls: list[list[str]] = []

    def stop(title: str, args: list[str], timings: list) -> None:
        calls.append(args)
        raise click.ClickException("stopped by the test")

    monkeypatch.setattr(demo, "_step", stop)
    return calls


def test_demo_refuses_a_folder_it_did_not_make(
    tmp_path: Path, no_demo_steps: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "chapter1.tex").write_text("precious")
    code, out = invoke("demo", "--out", str(user))
    assert code == 2 and "not empty and was not made by iad-tf demo" in out
    assert (user / "chapter1.tex").read_text() == "precious" and not no_demo_steps

    monkeypatch.chdir(user)
    for bad in (".", str(tmp_path), "/", "~"):
        code, out = invoke("demo", "--out", bad)
        assert code == 2 and "refusing to use the root, home or working folder" in out, bad
    assert (user / "chapter1.tex").is_file() and not no_demo_steps


def test_demo_replaces_its_own_output_and_uses_an_empty_folder(
    tmp_path: Path, no_demo_steps: list
) -> None:
    from iad_tf.cli.demo import DEMO_MARKER, prepare_demo_out

    out = tmp_path / "demo-out"
    code, _ = invoke("demo", "--out", str(out))  # new folder: made, marked, step 1 runs
    assert code == 1 and (out / DEMO_MARKER).is_file() and len(no_demo_steps) == 1
    (out / "old-result.txt").write_text("from the last demo")
    prepare_demo_out(out)  # an earlier demo's output is replaced
    assert sorted(p.name for p in out.iterdir()) == [DEMO_MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_demo_out(empty)
    assert (empty / DEMO_MARKER).is_file()
    legacy = tmp_path / "legacy"  # a demo output from before the marker: replaced too
    for d in ("aam", "records", "run"):
        (legacy / d).mkdir(parents=True)
    (legacy / "demo_summary.json").write_text("{}")
    prepare_demo_out(legacy)
    assert sorted(p.name for p in legacy.iterdir()) == [DEMO_MARKER]
    (legacy / "demo_summary.json").write_text("{}")
    (legacy / DEMO_MARKER).unlink()
    (legacy / "mine.txt").write_text("not a demo file")
    with pytest.raises(click.UsageError, match="not made by iad-tf demo"):
        prepare_demo_out(legacy)


# ------------------------------------------------------------ 2./3. remix: stems and sources
def _with_stems(root: Path, skip: dict[str, str] | None = None) -> Path:
    """Stems for every sounding instrument of every tiny track (except ``skip[track]``)."""
    stems = root / "audio-multitracks-flac"
    stems.mkdir(exist_ok=True)
    for ann in sorted((root / "annotations").glob("*_onsets.arff")):
        tid = ann.name.split("_")[0]
        table = read_onsets(ann)
        for k, name in enumerate(table.instruments):
            if table.active()[:, k].any() and (skip or {}).get(tid) != name:
                y = 0.1 * np.sin(2 * np.pi * (200 + 10 * k) * np.arange(SR) / SR)
                sf.write(stems / f"{tid}_{name}.flac", y.astype(np.float32), SR)
    return root


def _sounding(root: Path, tid: str) -> list[str]:
    table = read_onsets(root / "annotations" / f"{tid}_onsets.arff")
    return [n for k, n in enumerate(table.instruments) if table.active()[:, k].any()]


def test_remix_skips_a_track_whose_annotated_instrument_has_no_stem(tmp_path: Path) -> None:
    from iad_tf.synth.remix import RemixConfig, remix_corpus

    src = make_tiny_aam(tmp_path / "src", n_tracks=2, seconds=2.0, seed=3)
    lost = _sounding(src, "0001")[0]
    _with_stems(src, skip={"0001": lost})  # a partial download: one stem of 0001 missing
    cfg = RemixConfig(per_track=2, seed=0, sample_rate=22050)
    records, skipped = remix_corpus(src, tmp_path / "out", cfg)
    assert sorted(records) == ["0002r01", "0002r02"]
    assert len(skipped) == 1 and skipped[0].startswith("0001:") and lost in skipped[0]
    assert not list((tmp_path / "out" / "annotations").glob("0001r*"))
    for rid, rec in records.items():  # every remaining label has audio behind it
        table = read_onsets(tmp_path / "out" / "annotations" / f"{rid}_onsets.arff")
        active = {n for k, n in enumerate(table.instruments) if table.active()[:, k].any()}
        assert active <= set(rec["kept"])


def test_remix_sources_land_with_the_remixes_even_when_a_run_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iad_tf.synth.remix as remix

    src = _with_stems(make_tiny_aam(tmp_path / "src", n_tracks=2, seconds=2.0, seed=3))
    real_write = remix.write_flac
    calls = {"n": 0}

    def dying_write(path: Path, y: np.ndarray, sr: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        real_write(path, y, sr)

    monkeypatch.setattr(remix, "write_flac", dying_write)
    out = tmp_path / "out"
    with pytest.raises(OSError):
        remix.remix_corpus(src, out, remix.RemixConfig(per_track=2, sample_rate=22050))
    written = sorted(p.name.split("_mix")[0] for p in (out / "audio-mixes-flac").glob("*_mix.flac"))
    assert written == ["0001r01", "0001r02"]
    sources = json.loads((out / "sources.json").read_text())
    assert {t: sources[t] for t in written} == {"0001r01": ["0001"], "0001r02": ["0001"]}
    tracks, _ = discover_root(out)  # the half-made folder is still consistent
    assert {t.track_id: t.source_id for t in tracks} == {"0001r01": "0001", "0001r02": "0001"}


def test_build_records_refuses_remixes_without_source_entries(tmp_path: Path) -> None:
    root = make_tiny_aam(tmp_path / "remix", n_tracks=2, seconds=2.0)
    for p in sorted(root.rglob("0001*")):  # remix-style ids, no sources.json (old failed run)
        p.rename(p.with_name(p.name.replace("0001", "0001r01")))
    with pytest.raises(DatasetError, match=r"0001r01.*lacking a source entry|lacking.*0001r01"):
        discover_root(root)
    (root / "sources.json").write_text(json.dumps({"0001r01": "0001"}))
    with pytest.raises(DatasetError, match="0002"):  # a remix folder: every track needs one
        discover_root(root)
    (root / "sources.json").write_text(json.dumps({"0001r01": "0001", "0002": "0002"}))
    assert {t.track_id for t in discover_root(root)[0]} == {"0001r01", "0002"}
    (root / "sources.json").unlink()
    code, out = invoke("build-records", "--aam-root", str(root), "--out", str(tmp_path / "rec"))
    assert code == 1 and "0001r01" in out and "source entry" in out


# ------------------------------------------------------------------ 4. truncated onsets
def _cut(path: Path, keep: int) -> None:
    t = read_onsets(path)
    write_onsets(path, OnsetTable(t.instruments, t.times[:keep], t.notes[:keep], t.relation))


def test_truncated_onsets_file_is_reported_and_the_track_skipped(tiny_aam: Path) -> None:
    from iad_tf.aam.dataset import discover
    from iad_tf.config import FeatureConfig
    from iad_tf.data.build import TrackError, process_track

    tracks = {t.track_id: t for t in discover([tiny_aam])[0]}
    for t in tracks.values():  # intact files pass
        process_track(t, FeatureConfig())
    ann = tracks["0001"].onsets
    table = read_onsets(ann)
    sounding = [e for e in range(len(table.times) // 2) if table.active()[e].any()]
    _cut(ann, sounding[-1] + 1)  # cut at a row boundary, mid-song, notes still sounding
    with pytest.raises(TrackError, match="truncated.*still has sounding notes"):
        process_track(tracks["0001"], FeatureConfig())
    ann2 = tracks["0002"].onsets
    table2 = read_onsets(ann2)
    silent = [e for e in range(len(table2.times)) if not table2.active()[e].any()]
    early = [e for e in silent if table2.times[e] < 3.0]
    assert early, "the tiny song needs an all-silent row before 3 s"
    _cut(ann2, early[-1] + 1)  # ends silent, but far before the end of the 6 s audio...
    from iad_tf.aam.labels import check_onsets_complete

    with pytest.raises(ValueError, match="truncated.*before the end of the audio"):
        check_onsets_complete(read_onsets(ann2), 6.0, str(ann2), max_gap_s=2.0)


def test_truncated_segments_file_is_reported(tiny_aam: Path) -> None:
    from iad_tf.aam.arff import read_segments, write_segments
    from iad_tf.aam.dataset import discover
    from iad_tf.config import FeatureConfig
    from iad_tf.data.build import TrackError, process_track

    track = discover([tiny_aam])[0][0]
    process_track(track, FeatureConfig(), labels="segments")  # intact: fine
    write_segments(track.segments, read_segments(track.segments)[:-1], "cut")  # no end row
    with pytest.raises(TrackError, match="truncated.*not the closing 'end' row"):
        process_track(track, FeatureConfig(), labels="segments")


def test_every_real_aam_annotation_file_is_complete(aam_sample: Path) -> None:
    from iad_tf.aam.arff import read_segments
    from iad_tf.aam.labels import check_onsets_complete, check_segments_complete

    files = sorted((aam_sample / "annotations").glob("*_onsets.arff"))
    assert len(files) == 12
    for ann in files:
        tid = ann.name.split("_")[0]
        duration = sf.info(
            str(next((aam_sample / "audio-mixes-mp3").glob(f"{tid}_mix.*")))
        ).duration
        check_onsets_complete(read_onsets(ann), duration, str(ann))
        seg = ann.with_name(f"{tid}_segments.arff")
        check_segments_complete(read_segments(seg), duration, str(seg))


# ------------------------------------------------------- 5. the manifest's shards, exactly
def test_readers_use_exactly_the_manifest_shards(tmp_path: Path) -> None:
    from iad_tf.training.records_info import open_records

    rec = make_records(tmp_path / "rec")
    assert [p.name for p in open_records(rec).shards("train")] == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]
    stray = rec / "train-00000-of-00001.tfrecord"  # a leftover of an older build
    shutil.copy(rec / "train-00000-of-00002.tfrecord", stray)
    with pytest.raises(ValueError, match=r"train-00000-of-00001\.tfrecord: shard not listed"):
        open_records(rec)
    code, out = invoke("fit", "--records", str(rec), "--run-dir", str(tmp_path / "run"))
    assert code == 1 and "train-00000-of-00001.tfrecord: shard not listed" in out
    assert not (tmp_path / "run").exists()
    stray.unlink()
    (rec / "val-00001-of-00002.tfrecord").unlink()
    with pytest.raises(ValueError, match=r"val-00001-of-00002\.tfrecord: listed in manifest"):
        open_records(rec)


# ------------------------------------------------------------- 8. TOML types and ranges
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[train]\nbatch_size = 2.7", "[train] batch_size: expected an integer, got 2.7"),
        ("[train]\nepochs = 1.5", "[train] epochs: expected an integer, got 1.5"),
        ('[train]\naugment = "no"', "[train] augment: expected true or false, got 'no'"),
        ("[train]\naugment = 1", "[train] augment: expected true or false, got 1"),
        ('[train]\nbatch_size = "four"', "[train] batch_size: expected an integer, got 'four'"),
        ('[train]\nbatching = "frames"', "[train] batching: expected one of 'tracks', 'windows'"),
        ("[train]\nthreshold = 1.5", "threshold must be in (0, 1)"),
        ("[train]\npatience = 0", "patience must be >= 1"),
        ("[model]\ndropout = 1.0", "dropout must be in [0, 1)"),
        ("[model]\nconv_blocks = [[16, 4], [32]]", "[model] conv_blocks: expected a list of"),
        ("[model]\nmlp_units = [1.5]", "[model] mlp_units: expected a list of integers"),
        ('[feature]\nn_mels = "128"', "[feature] n_mels: expected an integer"),
        ("[feature]\nhop_length = 0", "hop_length = 0: must be > 0"),
        ("train = 3", "[train]: expected a table of keys, got 3"),
    ],
)
def test_toml_values_are_type_and_range_checked(tmp_path: Path, body: str, message: str) -> None:
    from iad_tf.training.config import load_toml

    path = tmp_path / "c.toml"
    path.write_text(body + "\n")
    with pytest.raises(ValueError) as err:
        load_toml(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_toml_good_values_load_and_bad_ones_leave_no_run_dir(tmp_path: Path) -> None:
    from iad_tf.training.config import load_toml

    path = tmp_path / "c.toml"
    path.write_text(
        "[train]\nlearning_rate = 1\nepochs = 3\naugment = false\n"
        "[model]\nconv_blocks = [[8, 4], [8, 4]]\n[feature]\nfmax = 8000\n"
    )
    cfg = load_toml(path)
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)
    assert cfg.train.augment is False and cfg.model.conv_blocks == ((8, 4), (8, 4))
    assert cfg.feature.fmax == 8000.0
    path.write_text("[train]\nbatch_size = 2.7\n")
    rec = make_records(tmp_path / "rec")
    code, out = invoke(
        "fit", "--records", str(rec), "--run-dir", str(tmp_path / "run"), "--config", str(path)
    )
    assert code == 1 and "batch_size: expected an integer, got 2.7" in out
    assert not (tmp_path / "run").exists()


# ------------------------------------------- more of kind 7: unwritable output folders
@pytest.mark.parametrize(
    "args",
    [
        ["fit", "--records", "{rec}", "--run-dir", "{blocked}"],
        ["evaluate", "--run", "{rec}", "--records", "{rec}", "--out", "{blocked}"],
        ["export", "--run", "{rec}", "--out", "{blocked}"],
        ["build-records", "--aam-root", "{rec}", "--out", "{blocked}"],
        ["plot", "--run", "{rec}", "--out", "{blocked}"],
    ],
)
def test_unwritable_output_folders_fail_first_with_one_line(tmp_path: Path, args: list) -> None:
    (tmp_path / "annotations").mkdir()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should go")
    blocked = blocker / "out"
    filled = [a.format(rec=tmp_path, blocked=blocked) for a in args]
    code, out = invoke(*filled)
    assert code == 1 and f"{blocked}: cannot write there" in out and "is not a folder" in out


def test_build_records_keeps_files_that_are_not_its_shards(tiny_aam: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    out.mkdir()
    (out / "my_other_dataset.tfrecord").write_bytes(b"the user's")
    code, out_text = invoke(
        "build-records", "--aam-root", str(tiny_aam), "--out", str(out), "--workers", "1"
    )
    assert code == 0, out_text
    assert (out / "my_other_dataset.tfrecord").read_bytes() == b"the user's"
    assert (out / "manifest.json").is_file()
