"""iad-tf remix --across-songs: cross-song stem mixes (issue 17 items 3-6). Tiny tone songs with
exact annotations (tests/tiny_aam.make_tiny_stem_aam) stand in for AAM; one test reads the
real sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.aam.arff import read_onsets, read_segments
from iad_tf.aam.labels import onset_roll
from iad_tf.audio import load_audio
from iad_tf.cli.main import cli
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.evaluation.folds import folds_of_songs
from iad_tf.synth.across import AcrossConfig, across_corpus, plan_tracks, source_songs
from iad_tf.synth.balance import Stem, allowed_shifts, check_shift
from iad_tf.synth.instruments import INSTRUMENTS
from iad_tf.synth.timemap import column, merge_columns, pieces, place_column
from tests.tiny_aam import make_tiny_stem_aam

SR = 22050
QUANT = 1.0 / 32768
ROLE_OF = {"DoubleBassArco": "bass", "DoubleBassPizz": "bass", "ElectricBass": "bass", "OrganBass": "bass",
           "Drums": "drums"}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_stem_aam(tmp_path_factory.mktemp("stems") / "aam", n_songs=6, seconds=6.0, sr=SR)


@pytest.fixture(scope="module")
def tiny_across(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AcrossConfig]:
    out = tmp_path_factory.mktemp("across") / "out"
    cfg = AcrossConfig(tracks=6, seed=3, duration=8.0, holdout_folds=3, sample_rate=SR)
    across_corpus(tiny_root, out, cfg, workers=1)
    return out, cfg


def _records(out: Path) -> dict:
    return json.loads((out / "remixes.json").read_text())


def test_pieces_crop_and_loop() -> None:
    assert [(p.start, p.end, p.src) for p in pieces(1.0, 5.0, 3.0)] == [(0.0, 3.0, 1.0)]
    assert [(p.start, p.end, p.src) for p in pieces(4.0, 5.0, 7.5)] == [
        (0.0, 1.0, 4.0), (1.0, 6.0, 0.0), (6.0, 7.5, 0.0)]
    col = [(0.0, ((60, True),)), (1.0, ()), (2.0, ((62, True),)), (3.0, ())]  # period 4 s
    placed = place_column(col, pieces(2.5, 4.0, 3.0), shift=2)
    # starts mid-note (no '+'), silent at 3.0 (out 0.5), loops to the note starting at 0.0
    assert placed == [(0.0, ((64, False),)), (0.5, ()), (1.5, ((62, True),)), (2.5, ())]
    table = merge_columns({"Piano": placed}, AAM_CLASSES, 3.0, "t")
    k = AAM_CLASSES.index("Piano")
    assert list(table.times) == [0.0, 0.5, 1.5, 2.5, 3.0]
    assert [row[k] for row in table.notes] == [((64, False),), (), ((62, True),), (), ()]


def test_tracks_follow_roles_holdout_and_sources(tiny_root: Path, tiny_across: tuple[Path, AcrossConfig]) -> None:
    out, cfg = tiny_across
    recs = _records(out)
    sources = json.loads((out / "sources.json").read_text())
    real = [f"{k:04d}" for k in range(1, 7)]
    folds = folds_of_songs(real, 3)
    assert sorted(recs) == [f"x{k:04d}" for k in range(1, 7)]
    for k, (tid, rec) in enumerate(sorted(recs.items())):
        roles = [s["role"] for s in rec["stems"].values()]
        assert roles.count("bass") == 1 and roles.count("drums") <= 1
        assert 1 <= roles.count("chords") <= 3 and 1 <= roles.count("melody") <= 2
        songs = {s["song"] for s in rec["stems"].values()}
        assert set(sources[tid]) == songs == set(rec["sources"])
        assert rec["fold"] == k % 3 + 1 and rec["held_out"] == folds[k % 3]
        assert not songs & set(folds[k % 3])  # never a held-out song's stem
        names = sorted(p.stem.split("_", 1)[1] for p in (out / "audio-multitracks-flac").glob(f"{tid}_*.flac"))
        assert names == sorted(rec["stems"])
    gen = json.loads((out / "generator.json").read_text())
    assert gen["generator"] == "remix-across" and gen["seed"] == 3
    assert gen["config"]["holdout_folds"] == 3 and gen["config"]["tracks"] == 6


def test_mix_is_sum_of_stems_and_labels_follow_audio(tiny_root: Path, tiny_across: tuple[Path, AcrossConfig]) -> None:
    out, cfg = tiny_across
    fc = FeatureConfig()
    for tid, rec in sorted(_records(out).items()):
        mix = load_audio(out / "audio-mixes-flac" / f"{tid}_mix.flac", SR).astype(np.float64)
        stems = {n: load_audio(out / "audio-multitracks-flac" / f"{tid}_{n}.flac", SR).astype(np.float64)
                 for n in rec["stems"]}
        assert len(mix) == int(cfg.duration * SR)
        assert np.max(np.abs(mix - sum(stems.values()))) <= (len(stems) + 1) * QUANT
        assert np.max(np.abs(mix)) == pytest.approx(10 ** (-1 / 20), abs=2 * QUANT)
        table = read_onsets(out / "annotations" / f"{tid}_onsets.arff")
        times = fc.frame_times(fc.seconds_to_frames(cfg.duration))
        roll = onset_roll(table, times, AAM_CLASSES)  # (frames, 31)
        assert set(np.nonzero(roll.any(axis=0))[0]) <= {AAM_CLASSES.index(n) for n in rec["stems"]}
        for name, s in rec["stems"].items():
            # the label of every frame is the source song's at the matching (looped) source time
            src = read_onsets(tiny_root / "annotations" / f"{s['song']}_onsets.arff")
            period = float(src.times[-1])
            src_t = np.round((s["offset_s"] + times) % period, 6)
            src_roll = onset_roll(src, src_t, AAM_CLASSES)[:, AAM_CLASSES.index(name)]
            col = roll[:, AAM_CLASSES.index(name)]
            assert np.mean(col == src_roll) >= 0.99, (tid, name)
            # and the audio: a stem sounds (short-window RMS) exactly where it is labelled
            y = stems[name]
            idx = np.minimum((times * SR).astype(int), len(y) - 33)
            rms = np.array([np.sqrt(np.mean(y[i - 32 if i >= 32 else 0: i + 32] ** 2)) for i in idx])
            assert np.mean((rms > 0.01) == (col == 1)) >= 0.99, (tid, name)
            assert col.any()


def test_segments_list_the_stems_with_their_roles(tiny_across: tuple[Path, AcrossConfig]) -> None:
    out, cfg = tiny_across
    for tid, rec in _records(out).items():
        segs = read_segments(out / "annotations" / f"{tid}_segments.arff")
        assert segs[-1].mark == "end" and segs[-1].start == cfg.duration
        listed = {n for s in segs for n in s.instruments}
        assert listed == set(rec["stems"])
        for s in segs[:-1]:
            for n, g in zip(s.instruments, s.generators, strict=True):
                role = rec["stems"][n]["role"]
                assert g == {"bass": "BassLine", "drums": "RhythmSimpleGrooves", "chords": "ChordPadsRanged",
                             "melody": "MelodyBow"}[role]


def test_same_bytes_whatever_the_workers(tiny_root: Path, tiny_across: tuple[Path, AcrossConfig], tmp_path: Path) -> None:
    out, cfg = tiny_across
    across_corpus(tiny_root, tmp_path / "w2", cfg, workers=2)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "w2") for p in (tmp_path / "w2").rglob("*") if p.is_file())
    for f in files:
        assert (out / f).read_bytes() == (tmp_path / "w2" / f).read_bytes(), f


def test_more_tracks_extend_and_other_seed_is_refused(tiny_root: Path, tmp_path: Path) -> None:
    from iad_tf.synth.generation import GenerationError

    cfg = AcrossConfig(tracks=2, seed=1, duration=3.0, sample_rate=SR)
    across_corpus(tiny_root, tmp_path / "d", cfg)
    mix2 = tmp_path / "d" / "audio-mixes-flac" / "x0002_mix.flac"
    first, stamp = mix2.read_bytes(), mix2.stat().st_mtime_ns
    result = across_corpus(tiny_root, tmp_path / "d", AcrossConfig(tracks=3, seed=1, duration=3.0, sample_rate=SR))
    assert result.rendered == 1 and sorted(result.records) == ["x0001", "x0002", "x0003"]
    assert mix2.read_bytes() == first and mix2.stat().st_mtime_ns == stamp  # kept, not re-rendered
    assert sorted(_records(tmp_path / "d")) == ["x0001", "x0002", "x0003"]
    fresh = tmp_path / "fresh"  # the same three tracks made in one go
    across_corpus(tiny_root, fresh, AcrossConfig(tracks=3, seed=1, duration=3.0, sample_rate=SR))
    assert (fresh / "remixes.json").read_bytes() == (tmp_path / "d" / "remixes.json").read_bytes()
    again = across_corpus(tiny_root, tmp_path / "d", cfg)  # a shorter rerun: a no-op, all 3 kept
    assert again.rendered == 0 and sorted(again.records) == ["x0001", "x0002", "x0003"]
    assert again.report["tracks"] == 3
    assert json.loads((tmp_path / "d" / "generator.json").read_text())["config"]["tracks"] == 3
    with pytest.raises(GenerationError, match=r"d: holds another generation \(remix-across, seed 1\)"):
        across_corpus(tiny_root, tmp_path / "d", AcrossConfig(tracks=2, seed=2, duration=3.0, sample_rate=SR))
    with pytest.raises(GenerationError, match="duration"):
        across_corpus(tiny_root, tmp_path / "d", AcrossConfig(tracks=2, seed=1, duration=4.0, sample_rate=SR))


def test_pitch_shift_moves_audio_and_labels(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ps"
    across_corpus(tiny_root, out, AcrossConfig(tracks=3, seed=5, duration=3.0, pitch_shift=3, sample_rate=SR))
    shifted = 0
    for tid, rec in _records(out).items():
        table = read_onsets(out / "annotations" / f"{tid}_onsets.arff")
        for name, s in rec["stems"].items():
            src = read_onsets(tiny_root / "annotations" / f"{s['song']}_onsets.arff")
            (p0,) = {p for p, _ in sum((c for _, c in column(src, name)), ())}
            pitches = {p for p, _ in sum((c for _, c in column(table, name)), ())}
            inst = INSTRUMENTS[name]
            assert pitches == {p0 + s["shift"]} and inst.low <= p0 + s["shift"] <= inst.high
            if name == "Drums" or not s["shift"]:
                continue
            shifted += 1
            y = load_audio(out / "audio-multitracks-flac" / f"{tid}_{name}.flac", SR).astype(np.float64)
            spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=8 * len(y)))
            k = int(np.argmax(spec))
            a, b, c = np.log(spec[k - 1: k + 2] + 1e-12)
            f0 = (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / (8 * len(y))
            want = 440.0 * 2 ** ((p0 + s["shift"] - 69) / 12)
            assert abs(1200 * np.log2(f0 / want)) < 20, (tid, name, f0, want)
    assert shifted >= 3


def test_a_shift_out_of_range_is_refused() -> None:
    stem = Stem("0001", "Flute", "melody", Path("0001_Flute.flac"), 5.0, (60, 94), ())
    assert allowed_shifts(stem, 3) == [0, 1, 2]  # Flute 60-96: no shift down, at most +2
    with pytest.raises(ValueError, match="out of its range 60-96"):
        check_shift(stem, -1)
    assert allowed_shifts(Stem("0001", "Drums", "drums", Path("d"), 5.0, (36, 38), ()), 5) == [0]


def test_balance_meets_every_bass_with_every_chord_instrument(tiny_root: Path) -> None:
    songs, skipped = source_songs(tiny_root)
    assert not skipped
    plans = plan_tracks(songs, AcrossConfig(tracks=40, seed=0, duration=6.0, holdout_folds=3), tiny_root)
    basses = {n for n in ROLE_OF if ROLE_OF[n] == "bass"}
    chords = {"Piano", "ElectricPiano", "AcousticGuitar", "ElectricGuitarClean"}
    met = {(a, b) for p in plans for a in (c.stem.name for c in p.choices)
           for b in (c.stem.name for c in p.choices)}
    assert {(b, c) for b in basses for c in chords} <= met
    uses = {b: sum(any(c.stem.name == b for c in p.choices) for p in plans) for b in basses}
    assert max(uses.values()) - min(uses.values()) <= 4, uses  # each bass about a quarter of the tracks


def test_short_stem_is_refused_not_padded(tiny_root: Path, tmp_path: Path) -> None:
    import shutil

    from iad_tf.synth.remix import RemixConfig, remix_corpus

    root = tmp_path / "partial"
    shutil.copytree(tiny_root, root)
    stem = root / "audio-multitracks-flac" / "0002_DoubleBassPizz.flac"
    y, sr = sf.read(stem)
    sf.write(stem, y[: int(1.5 * sr)], sr)  # a partial download: 1.5 s of a 6 s song
    records, skipped = remix_corpus(root, tmp_path / "r", RemixConfig(per_track=1, sample_rate=SR))
    assert not any(r["source_track"] == "0002" for r in records.values())
    assert any(f"{stem}: stem is 1.50 s long" in line for line in skipped), skipped
    songs, skipped = source_songs(root)
    assert "0002" not in {s.track.track_id for s in songs}
    assert any(str(stem) in line and "refused, not padded" in line for line in skipped)


def test_cli_across(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    res = CliRunner().invoke(cli, ["remix", "--aam-root", str(tiny_root), "--out", str(out), "--across-songs", "2",
                                   "--duration", "3", "--sample-rate", "22050", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "bass x piano/guitar pairs met" in res.output and "wrote 2 cross-song tracks" in res.output
    report = json.loads((out / "balance.json").read_text())
    assert report["frames_after"]["Drums"] >= report["frames_before"]["Drums"]
    res = CliRunner().invoke(cli, ["remix", "--aam-root", str(tiny_root), "--out", str(out), "--across-songs", "2",
                                   "--duration", "3", "--sample-rate", "22050", "--seed", "9"])
    assert res.exit_code == 1 and "holds another generation (remix-across, seed 0)" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["remix", "--aam-root", str(tiny_root), "--out", str(out), "--pitch-shift", "2"])
    assert res.exit_code == 2 and "--pitch-shift need(s) --across-songs" in res.output


@pytest.mark.slow
def test_across_real_sample(aam_sample: Path, tmp_path: Path) -> None:
    """On the real sample: labels of every frame are the source's at the mapped time, the mix
    is the sum of the stems, sources name every stem's song."""
    out = tmp_path / "x"
    result = across_corpus(aam_sample, out, AcrossConfig(tracks=2, seed=1, duration=10.0, holdout_folds=4,
                                                         sample_rate=SR), workers=1)
    assert not result.skipped
    fc = FeatureConfig()
    times = fc.frame_times(fc.seconds_to_frames(10.0))
    for tid, rec in result.records.items():
        table = read_onsets(out / "annotations" / f"{tid}_onsets.arff")
        roll = onset_roll(table, times, AAM_CLASSES)
        mix = load_audio(out / "audio-mixes-flac" / f"{tid}_mix.flac", SR).astype(np.float64)
        total = np.zeros_like(mix)
        for name, s in rec["stems"].items():
            total += load_audio(out / "audio-multitracks-flac" / f"{tid}_{name}.flac", SR)
            src = read_onsets(aam_sample / "annotations" / f"{s['song']}_onsets.arff")
            src_t = np.round((s["offset_s"] + times) % float(src.times[-1]), 6)
            k = AAM_CLASSES.index(name)
            assert np.mean(roll[:, k] == onset_roll(src, src_t, AAM_CLASSES)[:, k]) >= 0.99
        assert np.max(np.abs(mix - total)) <= 8 * QUANT
        assert json.loads((out / "sources.json").read_text())[tid] == rec["sources"]


def test_a_fold_never_trains_on_a_held_out_songs_material(
    tiny_root: Path, tiny_across: tuple[Path, AcrossConfig], tmp_path: Path
) -> None:
    """build-records over real + cross-song roots, then every cv fold re-split: a fold's train
    records never hold a held-out song's audio (checked against the stems each track used, not
    against the manifest), and every generated track trains in the fold it was made for."""
    from iad_tf.data.build import BuildOptions, build_records
    from iad_tf.data.resplit import iter_manifest_records, resplit
    from iad_tf.evaluation.folds import fold_split_map, song_folds

    out, cfg = tiny_across
    records = tmp_path / "records"
    manifest = build_records([tiny_root, out], records,
                             BuildOptions(val_fraction=0.0, test_fraction=0.0, progress=False)).manifest
    generator = json.loads((out / "generator.json").read_text())
    assert manifest["generators"] == {str(tiny_root): None, str(out): generator}
    used = {tid: {s["song"] for s in rec["stems"].values()} for tid, rec in _records(out).items()}
    material = {t: used.get(t, {t}) for t in manifest["tracks"]}
    assert len(material) == 12
    folds = song_folds(manifest, cfg.holdout_folds)
    assert folds == folds_of_songs([f"{k:04d}" for k in range(1, 7)], cfg.holdout_folds)
    left_out_by_a_second_source = 0
    for i, held in enumerate(folds):
        fold_manifest = resplit(records, tmp_path / f"fold-{i}", fold_split_map(manifest, held))
        assert fold_manifest["generators"] == manifest["generators"]
        train = [r["track_id"] for r in iter_manifest_records(tmp_path / f"fold-{i}", fold_manifest)
                 if r["split"] == b"train"]
        assert train and sorted(train) == sorted(fold_manifest["splits"]["train"])
        for tid in train:
            assert not material[tid] & set(held), (i, tid, material[tid], held)
        for tid, rec in _records(out).items():
            if rec["fold"] == i + 1:
                assert tid in train
            primary = manifest["tracks"][tid]["source_id"]
            if primary not in held and material[tid] & set(held):
                left_out_by_a_second_source += 1
    assert left_out_by_a_second_source  # the case a primary-source-only split would get wrong


@pytest.mark.slow
def test_pitch_shift_on_a_real_monophonic_stem(aam_sample: Path) -> None:
    """The sample's Flute (1014) excerpt shifted by +2 and -3 semitones: pyin's median f0 moves
    by 200 and -300 cents within 20, and the labels' pitches move by the same steps."""
    import librosa

    from iad_tf.aam.dataset import discover_root
    from iad_tf.synth.across import _excerpt
    from iad_tf.synth.balance import Choice, catalog
    from iad_tf.synth.stems import load_stem, song_stems
    from iad_tf.synth.timemap import column, place_column

    track = next(t for t in discover_root(aam_sample)[0] if t.track_id == "1014")
    song = song_stems(track)
    stem = next(s for s in catalog([song]) if s.name == "Flute")
    a, b = max(stem.spans, key=lambda s: s[1] - s[0])  # the longest phrase
    y = load_stem(stem.path, "Flute", SR, song.onsets, "onsets")

    def f0(shift: int) -> float:
        z = _excerpt(y, Choice(stem, a, 0.0, shift), min(b - a, 8.0), SR)
        f, voiced, _ = librosa.pyin(z, fmin=200, fmax=2500, sr=SR, frame_length=2048)
        return float(np.nanmedian(f[voiced]))

    base = f0(0)
    for shift in (2, -3):
        cents = 1200 * np.log2(f0(shift) / base)
        assert abs(cents - 100 * shift) < 20, (shift, cents)
        placed = place_column(column(song.onsets, "Flute"), Choice(stem, a, 0.0, shift).parts(4.0), shift)
        orig = place_column(column(song.onsets, "Flute"), Choice(stem, a, 0.0, 0).parts(4.0), 0)
        assert [[p for p, _ in c] for _, c in placed] == [[p + shift for p, _ in c] for _, c in orig]


def test_midi_with_an_impossible_key_signature_is_read(tmp_path: Path) -> None:
    """AAM writes some key signatures with 9 sharps, which mido rejects; the notes still count."""
    import pretty_midi

    from iad_tf.synth.across import _midi_notes

    pm = pretty_midi.PrettyMIDI()
    pm.key_signature_changes.append(pretty_midi.KeySignature(0, 0.0))
    inst = pretty_midi.Instrument(program=73, name="Flute")
    inst.notes = [pretty_midi.Note(90, 76, 0.5, 1.0), pretty_midi.Note(80, 78, 1.0, 1.5)]
    pm.instruments.append(inst)
    path = tmp_path / "x.mid"
    pm.write(str(path))
    data = bytearray(path.read_bytes())
    at = data.find(b"\xff\x59\x02")
    data[at + 3] = 9  # 9 sharps, as in the sample's 1014_Flute.mid
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="9 sharps"):
        pretty_midi.PrettyMIDI(str(path))
    notes = _midi_notes(path)
    assert [(n.pitch, n.start, n.end) for n in notes] == [(76, 0.5, 1.0), (78, 1.0, 1.5)]
