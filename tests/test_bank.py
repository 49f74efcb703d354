"""The note bank (iad-tf bank) and songs rendered from it (synth --voices bank:DIR), on the
real AAM sample: a bank of two songs (0080, 1014) built once per session."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.aam.arff import read_onsets, write_onsets
from iad_tf.aam.labels import onset_roll
from iad_tf.audio import decode
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.evaluation.folds import folds_of_songs
from iad_tf.synth.bank import BankConfig, build_bank
from iad_tf.synth.bank_index import load_bank, read_index
from iad_tf.synth.bank_notes import arff_notes, read_midi_notes
from iad_tf.synth.bank_songs import write_planned_sources
from iad_tf.synth.bank_voice import BankVoice, drum_key, fit_pitch, reachable
from iad_tf.synth.corpus import SynthConfig, synthesize
from iad_tf.synth.score import Note, merge_intervals

SONGS = ["0080", "1014"]
SR = 22050
SILENT_DB = -60.0


@pytest.fixture(scope="session")
def bank(aam_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank")
    build_bank([aam_sample], out, BankConfig(), workers=1, songs=SONGS)
    return out


def _cfg(bank: Path, **kw: object) -> SynthConfig:
    base = dict(tracks=3, seed=5, duration=20.0, sample_rate=SR, voices=f"bank:{bank}")
    return SynthConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def corpus(bank: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("bank_songs")
    return out, synthesize(out, _cfg(bank), workers=1)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _frame_db(y: np.ndarray, fc: FeatureConfig) -> np.ndarray:
    """RMS (dBFS) of hop-long frames centred on the feature frame times."""
    hop = fc.hop_length
    pad = np.pad(y, (hop // 2, hop))
    n = len(y) // hop
    frames = pad[: n * hop].reshape(n, hop)
    return 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-12)


def test_midi_read_tolerantly_equals_arff(aam_sample: Path) -> None:
    """1014_Flute.mid has key signatures mido cannot decode: read anyway, same notes as the ARFF."""
    notes, fixed = read_midi_notes(aam_sample / "midis" / "1014_Flute.mid")
    assert fixed >= 1
    ref = arff_notes(read_onsets(aam_sample / "annotations" / "1014_onsets.arff"), "Flute")
    assert len(notes) == len(ref) > 100
    assert [n.pitch for n in notes] == [n.pitch for n in ref]
    assert np.max(np.abs([a.start - b.start for a, b in zip(notes, ref, strict=True)])) < 1e-4
    assert {n.velocity for n in notes} == {64} and {n.velocity for n in ref} == {None}


def test_bank_index_and_report(bank: Path, aam_sample: Path) -> None:
    cuts = read_index(bank / "index.csv")
    meta = json.loads((bank / "bank.json").read_text())
    assert meta["songs"] == SONGS and len(meta["fingerprint"]) == 16
    kinds = {(c.instrument, c.kind) for c in cuts}
    assert ("Piano", "chord") in kinds and ("Drums", "drum") in kinds and ("AltoSax", "note") in kinds
    assert ("AltoSax", "chord") not in kinds  # a melody instrument has no chord slices
    # every AltoSax note of the MIDI is in the bank, at its MIDI time and pitch
    midi, _ = read_midi_notes(aam_sample / "midis" / "0080_AltoSax.mid")
    sax = [c for c in cuts if c.instrument == "AltoSax"]
    assert [c.pitches[0] for c in sax] == [n.pitch for n in midi]
    np.testing.assert_allclose([c.onset_s for c in sax], [n.start for n in midi], atol=1e-6)
    # a cut is the stem's audio at the note: loud where the note is
    c = max(sax, key=lambda c: c.duration_s)
    y, sr = sf.read(str(bank / c.file), dtype="float64")
    assert sr == SR and c.rms_db > -40
    seg = y[int(c.offset_s * sr) : int((c.offset_s + c.duration_s) * sr)]
    assert abs(20 * np.log10(np.sqrt(np.mean(seg**2))) - c.rms_db) < 1.0
    report = (bank / "report.md").read_text()
    assert "| AltoSax | 230 | 0 | 0 | 65-77 |" in report and "Skipped cuts:" in report
    assert meta["report"]["instruments"]["Drums"]["songs"] == SONGS


def _one_stem_root(aam_sample: Path, root: Path, y: np.ndarray, sr: int) -> None:
    """Song 0080 with only its ElectricBass stem (``y``) beside its annotations and MIDI."""
    for sub in ("annotations", "midis"):
        (root / sub).mkdir(parents=True)
        for p in (aam_sample / sub).glob("0080_*"):
            shutil.copy(p, root / sub / p.name)
    (root / "audio-mixes-wav").mkdir()
    sf.write(str(root / "audio-mixes-wav" / "0080_mix.wav"), np.zeros(100), SR)
    (root / "audio-multitracks-wav").mkdir()
    sf.write(str(root / "audio-multitracks-wav" / "0080_ElectricBass.wav"), y, sr)


def test_zeroed_stem_and_moved_onset_are_counted_bad_cuts(aam_sample: Path, tmp_path: Path) -> None:
    """A stem silenced where the MIDI sounds gives a 'silent' bad cut; an onsets-ARFF onset
    moved 30 ms away from the MIDI's a 'misaligned' one; both are left out of the index."""
    notes, _ = read_midi_notes(aam_sample / "midis" / "0080_ElectricBass.mid")
    y, sr = decode(aam_sample / "audio-multitracks-mp3" / "0080_ElectricBass.mp3")
    silenced, moved = notes[10], notes[20]
    y[int(silenced.start * sr) : int(silenced.end * sr)] = 0.0
    root = tmp_path / "aam"
    _one_stem_root(aam_sample, root, y, sr)
    ann = root / "annotations" / "0080_onsets.arff"
    table = read_onsets(ann)
    times = table.times.copy()
    row = int(np.argmin(np.abs(times - moved.start)))
    assert times[row + 1] - times[row] > 0.05
    times[row] += 0.03
    write_onsets(ann, dataclasses.replace(table, times=times))
    meta = build_bank([root], tmp_path / "bank", BankConfig(), songs=["0080"])
    assert meta["report"]["skipped"] == {"silent": 1, "misaligned": 1}
    onsets = [c.onset_s for c in read_index(tmp_path / "bank" / "index.csv")]
    assert len(onsets) == len(notes) - 2
    assert round(silenced.start, 6) not in onsets and round(moved.start, 6) not in onsets


def test_fit_pitch_and_drum_key() -> None:
    ok = reachable(np.array([40, 41, 45]), 2)
    assert ok.tolist() == [38, 39, 40, 41, 42, 43, 44, 45, 46, 47]
    assert fit_pitch(55, ok) == 43 and fit_pitch(40, ok) == 40 and fit_pitch(60, np.array([61])) == 61
    assert drum_key(46, np.array([36, 42, 59])) == 42 and drum_key(49, np.array([36, 59])) == 59


def test_pitch_shifted_note_sounds_at_requested_pitch(bank: Path) -> None:
    """A recorded Flute note played 3 semitones up and 2 down: yin f0 within 20 cents."""
    librosa = pytest.importorskip("librosa")
    b = load_bank(bank)
    songs = frozenset(SONGS)
    solo = [c for c in b.cuts if c.instrument == "Flute" and c.kind == "note" and c.solo]
    base = max(solo, key=lambda c: c.duration_s).pitches[0]
    for shift in (3, -2):
        pitch = base + shift
        voice = BankVoice(b, songs, 3, np.random.default_rng(0))
        y = voice.render("Flute", (Note(pitch, 0.0, 0.4, 90),), SR, SR)
        f0 = librosa.yin(y[int(0.1 * SR) : int(0.35 * SR)], fmin=200, fmax=2000, sr=SR, frame_length=1024)
        cents = 1200 * np.log2(np.median(f0) / (440 * 2 ** ((pitch - 69) / 12)))
        assert abs(cents) < 20, (pitch, cents)


def test_mix_is_sum_of_stems_and_labels_match_rendered_notes(corpus: tuple[Path, list[dict]]) -> None:
    out, results = corpus
    fc = FeatureConfig()
    agree = total = 0
    audio = {0: [0, 0], 1: [0, 0]}  # labelled silent/active: [frames where the audio agrees, frames]
    for r in results:
        tid = r["track_id"]
        mix, _ = sf.read(str(out / "audio-mixes-flac" / f"{tid}_mix.flac"), dtype="float64")
        stems = sorted((out / "audio-multitracks-flac").glob(f"{tid}_*.flac"))
        summed = sum(sf.read(str(p), dtype="float64")[0] for p in stems)
        assert np.max(np.abs(mix)) > 0.5
        assert np.max(np.abs(mix - summed)) <= (len(stems) + 1) * 0.5 / 32768 + 1e-9
        table = read_onsets(out / "annotations" / f"{tid}_onsets.arff")
        times = fc.frame_times(fc.n_frames_for(len(mix)))
        labels = onset_roll(table, times, AAM_CLASSES)
        rendered = np.zeros_like(labels)
        for name, spans in r["rendered"].items():
            for a, e in merge_intervals(spans):
                rendered[(times >= a) & (times < e), AAM_CLASSES.index(name)] = 1
        assert rendered.sum() > 0.2 * len(times)
        agree += int((labels == rendered).all(axis=1).sum())
        total += len(times)
        for p in stems:  # and the audio: audible where labelled active, silent elsewhere
            col = AAM_CLASSES.index(p.stem.split("_", 1)[1])
            y, _ = sf.read(str(p), dtype="float64")
            db = _frame_db(y, fc)
            lab = labels[: len(db), col]
            edge = np.zeros(len(lab), dtype=bool)
            for c in np.flatnonzero(np.diff(lab.astype(int)) != 0):  # ~70 ms around each change
                edge[max(0, c - 2) : c + 4] = True
            for value, ok in ((1, db > SILENT_DB), (0, db < SILENT_DB)):
                sel = (lab == value) & ~edge
                audio[value][0] += int(ok[sel].sum())
                audio[value][1] += int(sel.sum())
    assert agree / total >= 0.99, agree / total
    assert audio[0][1] > 100 and audio[0][0] / audio[0][1] >= 0.99, audio
    # labelled active yet below -60 dBFS: a drum or plucked recording that dies away within
    # its MIDI note. AAM's own stems of 0080 and 1014 are audible in 98.8 % of their active
    # frames by this measure, so the bar here is 97 %.
    assert audio[1][1] > 1000 and audio[1][0] / audio[1][1] >= 0.97, audio


def test_sources_complete_and_generator_json(corpus: tuple[Path, list[dict]], bank: Path) -> None:
    out, results = corpus
    sources = json.loads((out / "sources.json").read_text())
    b = load_bank(bank)
    songs_of = {i: {c.song for c in b.cuts if c.instrument == i} for i in b.instruments()}
    for r in results:
        played = r["instruments"]
        must = {next(iter(songs_of[i])) for i in played if len(songs_of[i]) == 1}
        may = set().union(*(songs_of[i] for i in played))
        assert must <= set(sources[r["track_id"]]) <= may, (r["track_id"], played)
    gen = json.loads((out / "generator.json").read_text())
    assert gen["generator"] == "synth-bank" and gen["config"]["bank"] == b.fingerprint and gen["seed"] == 5
    assert gen["config"]["max_shift"] == 3


def test_holdout_folds_never_use_held_out_songs(bank: Path, tmp_path: Path) -> None:
    results = synthesize(tmp_path / "h", _cfg(bank, tracks=4, duration=8.0, holdout_folds=2), workers=1)
    folds = folds_of_songs(SONGS, 2)
    sources = json.loads((tmp_path / "h" / "sources.json").read_text())
    for k, r in enumerate(results, start=1):
        held = folds[(k - 1) % 2]
        assert r["held_out_songs"] == held
        assert sources[r["track_id"]] and not set(sources[r["track_id"]]) & set(held)


def test_planned_sources_cover_every_allowed_song(bank: Path, tmp_path: Path) -> None:
    """Written before any track: a run that dies leaves each track listed with every song it
    may use (never a generated track without an entry, which would pass for a real song)."""
    write_planned_sources(tmp_path, _cfg(bank, tracks=2, holdout_folds=2), ["s0001", "s0002"])
    folds = folds_of_songs(SONGS, 2)
    planned = json.loads((tmp_path / "sources.json").read_text())
    assert planned == {"s0001": sorted(set(SONGS) - set(folds[0])), "s0002": sorted(set(SONGS) - set(folds[1]))}


@pytest.mark.slow
def test_same_bytes_whatever_workers(bank: Path, corpus: tuple[Path, list[dict]], tmp_path: Path) -> None:
    out, _ = corpus
    synthesize(tmp_path / "w2", _cfg(bank), workers=2)
    assert _hashes(tmp_path / "w2") == _hashes(out)


def test_cli_renders_at_the_bank_rate(bank: Path, tmp_path: Path) -> None:
    from iad_tf.cli.main import cli

    out = tmp_path / "cli"
    res = CliRunner().invoke(cli, ["synth", "--out", str(out), "--voices", f"bank:{bank}", "--tracks", "1",
                                   "--duration", "3", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert sf.info(str(out / "audio-mixes-flac" / "s0001_mix.flac")).samplerate == SR
    assert json.loads((out / "generator.json").read_text())["config"]["sample_rate"] == SR


def test_cli_errors(tmp_path: Path) -> None:
    from iad_tf.cli.main import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["synth", "--out", str(tmp_path / "x"), "--voices", f"bank:{tmp_path / 'nobank'}"])
    assert res.exit_code != 0 and "bank.json: no such file" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["synth", "--out", str(tmp_path / "x"), "--holdout-folds", "2"])
    assert res.exit_code != 0 and "needs --voices bank:DIR" in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(cli, ["bank", "--aam-root", str(tmp_path / "empty"), "--out", str(tmp_path / "b")])
    assert res.exit_code != 0 and "Error:" in res.output and "Traceback" not in res.output


def test_bank_corpus_is_one_generation_rerun_keeps_bytes_other_seed_refused(
    bank: Path, tmp_path: Path
) -> None:
    """The merge of bank voices with the one-generation guard: the same settings again give
    the same bytes (tracks re-rendered, sources.json narrowed again); another seed into the
    folder is refused, naming it; the bank's fingerprint is part of the generation."""
    from iad_tf.synth.generation import GenerationError

    out = tmp_path / "songs"
    cfg = _cfg(bank, tracks=1, duration=8.0)
    synthesize(out, cfg, workers=1)
    first = _hashes(out)
    gen = json.loads((out / "generator.json").read_text())
    assert gen["generator"] == "synth-bank" and gen["config"]["bank_songs"] == list(SONGS)
    synthesize(out, cfg, workers=1)
    assert _hashes(out) == first
    with pytest.raises(GenerationError, match=str(out)):
        synthesize(out, _cfg(bank, tracks=1, duration=8.0, seed=6), workers=1)
