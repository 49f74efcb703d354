"""iad-tf synth: annotations match the notes and the audio, output is deterministic, and a
generated corpus goes through build-records and tfrecords-tools verify."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.aam.arff import read_beatinfo, read_onsets, read_segments
from iad_tf.aam.labels import onset_roll
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.synth.composer import compose
from iad_tf.synth.corpus import SynthConfig, make_song, synthesize, track_rng
from iad_tf.synth.instruments import INSTRUMENTS, parse_instruments
from iad_tf.synth.score import schedule_roll

pytest.importorskip("tinysoundfont")

CFG = SynthConfig(tracks=3, seed=11, duration=8.0)
SILENT_DB = -60.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "aam"
    synthesize(root, CFG, workers=1)
    return root


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def frame_rms_db(y: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """RMS (dBFS) of centred frames on the feature frame grid: (frames,)."""
    hop = int(round(cfg.hop_length * sr / cfg.sample_rate))
    win = 2 * hop
    n = 1 + len(y) // hop
    padded = np.pad(y.astype(np.float64), (win // 2, win // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n]
    return 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-12)


def test_layout_and_manifest(corpus: Path) -> None:
    ids = [f"s{k:04d}" for k in range(1, CFG.tracks + 1)]
    assert sorted(p.name for p in (corpus / "audio-mixes-flac").iterdir()) == [f"{i}_mix.flac" for i in ids]
    manifest = json.loads((corpus / "synth.json").read_text())
    assert sorted(manifest["tracks"]) == ids
    for tid in ids:
        names = manifest["tracks"][tid]["instruments"]
        assert names, tid
        for name in names:
            assert (corpus / "audio-multitracks-flac" / f"{tid}_{name}.flac").is_file()
            assert (corpus / "midis" / f"{tid}_{name}.mid").is_file()
        for kind in ("onsets", "segments", "beatinfo"):
            assert (corpus / "annotations" / f"{tid}_{kind}.arff").is_file()
        info = sf.info(str(corpus / "audio-mixes-flac" / f"{tid}_mix.flac"))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
        assert info.frames == int(np.ceil(CFG.duration * 44100))
    assert not list(corpus.rglob("*.tmp"))


def test_arff_round_trip_equals_note_schedule(corpus: Path) -> None:
    fc = FeatureConfig()
    times = fc.frame_times(fc.n_frames_for(int(CFG.duration * fc.sample_rate)))
    for k in range(1, CFG.tracks + 1):
        song, _ = make_song(CFG, k)
        ann = corpus / "annotations"
        table = read_onsets(ann / f"{song.track_id}_onsets.arff")
        assert table.instruments == AAM_CLASSES
        expected = schedule_roll(song, times)
        got = onset_roll(table, times, AAM_CLASSES)
        np.testing.assert_array_equal(got, expected)
        assert expected.sum() > 0.2 * len(times)  # the song really plays
        # '+' marks exactly the note starts
        starts = {(n.start, n.pitch, name) for name, ns in song.notes.items() for n in ns}
        marked = {
            (float(t), p, table.instruments[i])
            for t, row in zip(table.times, table.notes, strict=True)
            for i, cell in enumerate(row)
            for p, s in cell
            if s
        }
        assert marked == starts
        assert read_segments(ann / f"{song.track_id}_segments.arff") == list(song.segments)
        assert read_beatinfo(ann / f"{song.track_id}_beatinfo.arff") == list(song.beats)


def test_song_structure_and_ranges() -> None:
    for k in range(1, 6):
        song = compose(f"s{k:04d}", track_rng(5, k), 90.0)
        segs = song.segments
        assert segs[0].start == 0.0 and segs[-1].mark == "end" and segs[-1].start == 90.0
        assert all(a.start < b.start for a, b in zip(segs, segs[1:], strict=False))
        for s in segs[:-1]:
            assert len(s.instruments) == len(s.generators) >= 1
            assert 60 <= s.tempo <= 170 and s.key[-3:] in ("maj", "min")
        for name, notes in song.notes.items():
            inst = INSTRUMENTS[name]
            assert all(inst.low <= n.pitch <= inst.high for n in notes), name
            assert all(0 <= n.start < n.end <= song.duration for n in notes), name
        # parts (marks) with different bands or tempi exist in a 90 s song
        assert len({s.mark for s in segs[:-1]}) >= 2


def test_instrument_selection() -> None:
    pool = parse_instruments(["Erhu,drums", "Cello"])
    assert pool == ("Cello", "Drums", "Erhu")
    cfg = SynthConfig(tracks=1, seed=2, duration=40.0, instruments=pool)
    for k in range(1, 6):
        song, _ = make_song(cfg, k)
        assert set(song.instruments) <= set(pool) and song.instruments
    with pytest.raises(ValueError, match="Foo"):
        parse_instruments("Foo,Erhu")


def test_annotations_agree_with_audio(corpus: Path) -> None:
    """Stems are below -60 dBFS where annotated silent, above where active (>= 99 %)."""
    fc = FeatureConfig()
    counts = {"silent_ok": 0, "silent": 0, "active_ok": 0, "active": 0}
    for k in range(1, CFG.tracks + 1):
        tid = f"s{k:04d}"
        table = read_onsets(corpus / "annotations" / f"{tid}_onsets.arff")
        for name in AAM_CLASSES:
            path = corpus / "audio-multitracks-flac" / f"{tid}_{name}.flac"
            col = AAM_CLASSES.index(name)
            if not path.is_file():
                assert not table.active()[:, col].any(), f"{tid} {name} annotated but no stem"
                continue
            y, sr = sf.read(str(path), dtype="float64")
            db = frame_rms_db(y, sr, fc)
            roll = onset_roll(table, fc.frame_times(len(db)), AAM_CLASSES)[:, col].astype(int)
            edge = np.zeros(len(roll), dtype=bool)
            for c in np.flatnonzero(np.diff(roll) != 0):  # 3 frames (~70 ms) around each change
                edge[max(0, c - 2) : c + 4] = True
            silent, active = (roll == 0) & ~edge, (roll == 1) & ~edge
            counts["silent"] += int(silent.sum())
            counts["silent_ok"] += int((db[silent] < SILENT_DB).sum())
            counts["active"] += int(active.sum())
            counts["active_ok"] += int((db[active] > SILENT_DB).sum())
    assert counts["silent"] > 100 and counts["active"] > 1000
    assert counts["silent_ok"] / counts["silent"] >= 0.99, counts
    assert counts["active_ok"] / counts["active"] >= 0.99, counts


def test_mix_is_sum_of_stems(corpus: Path) -> None:
    tid = "s0001"
    mix, _ = sf.read(str(corpus / "audio-mixes-flac" / f"{tid}_mix.flac"), dtype="float64")
    stems = sorted((corpus / "audio-multitracks-flac").glob(f"{tid}_*.flac"))
    total = sum(sf.read(str(p), dtype="float64")[0] for p in stems)
    assert np.max(np.abs(mix)) <= 1.0 and np.max(np.abs(mix)) > 0.8  # normalised to -1 dBFS
    # 16-bit rounding of the mix and of each stem
    assert np.max(np.abs(mix - total)) <= (len(stems) + 1) * 0.5 / 32768 + 1e-9


def test_same_seed_same_bytes(corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    synthesize(again, CFG, workers=2)  # different worker count, same bytes
    assert _hashes(again) == _hashes(corpus)
    other = tmp_path / "other"
    synthesize(other, SynthConfig(tracks=1, seed=12, duration=CFG.duration), workers=1)
    mix = "audio-mixes-flac/s0001_mix.flac"
    assert _hashes(other)[mix] != _hashes(corpus)[mix]


def test_cli_errors(tmp_path: Path) -> None:
    from iad_tf.cli.main import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["synth", "--out", str(tmp_path / "x"), "--instruments", "Kazoo"])
    assert res.exit_code != 0 and "Kazoo" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["synth", "--out", str(tmp_path / "x"), "--soundfont", str(tmp_path / "no.sf2")])
    assert res.exit_code != 0 and "no.sf2" in res.output
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont")
    res = runner.invoke(cli, ["synth", "--out", str(tmp_path / "x"), "--soundfont", str(bad)])
    assert res.exit_code != 0 and "bad.sf2" in res.output
    res = runner.invoke(
        cli, ["synth", "--out", str(tmp_path / "ok"), "--tracks", "1", "--duration", "3", "--workers", "1",
              "--sample-rate", "22050", "--instruments", "Flute"]
    )
    assert res.exit_code == 0, res.output
    assert sf.info(str(tmp_path / "ok/audio-mixes-flac/s0001_mix.flac")).samplerate == 22050
    assert [p.name for p in (tmp_path / "ok/audio-multitracks-flac").iterdir()] == ["s0001_Flute.flac"]


def test_build_records_and_verify(corpus: Path, tmp_path: Path) -> None:
    build = pytest.importorskip("iad_tf.data.build")
    from iad_tf.data.records import load_track
    from tfrecords_tools.verify import verify_dir

    out = tmp_path / "records"
    result = build.build_records([corpus], out, build.BuildOptions(workers=1, progress=False))
    assert result.skipped == []
    assert sorted(result.manifest["tracks"]) == [f"s{k:04d}" for k in range(1, CFG.tracks + 1)]
    assert verify_dir(out).ok
    fc = FeatureConfig()
    song, _ = make_song(CFG, 1)
    rec = load_track(out, "s0001")
    n = rec["labels"].shape[0]
    np.testing.assert_array_equal(rec["labels"], schedule_roll(song, fc.frame_times(n)))


def test_prefix_renames_the_tracks_and_nothing_else(corpus: Path, tmp_path: Path) -> None:
    """--prefix g: the same songs under ids g0001...; a folder written before the prefix
    existed (no "prefix" in its generator.json) still resumes with the default; a bad prefix
    is refused naming it."""
    import dataclasses

    from iad_tf.cli.main import cli
    from iad_tf.synth.generation import GenerationError

    g = tmp_path / "g"
    synthesize(g, dataclasses.replace(CFG, tracks=1, prefix="g"), workers=1)
    ours, theirs = _hashes(g), _hashes(corpus)
    assert ours["audio-mixes-flac/g0001_mix.flac"] == theirs["audio-mixes-flac/s0001_mix.flac"]
    assert {p.split("/")[-1][:5] for p in ours if "audio-" in p} == {"g0001"}
    assert "Onset events in g0001" in (g / "annotations/g0001_onsets.arff").read_text()

    old = tmp_path / "old"
    synthesize(old, dataclasses.replace(CFG, tracks=1), workers=1)
    gen = json.loads((old / "generator.json").read_text())
    del gen["config"]["prefix"]  # as written before the option existed
    (old / "generator.json").write_text(json.dumps(gen))
    synthesize(old, dataclasses.replace(CFG, tracks=2), workers=1)  # resumes and extends
    assert (old / "audio-mixes-flac/s0002_mix.flac").is_file()
    with pytest.raises(GenerationError, match="prefix"):
        synthesize(old, dataclasses.replace(CFG, tracks=2, prefix="g"), workers=1)
    res = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "x"), "--prefix", "G1"])
    assert res.exit_code != 0 and "'G1'" in res.output and "Traceback" not in res.output
