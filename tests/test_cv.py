"""Song-level cross-validation, the presence gate and the decoder tuned on OOF predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.evaluation.cv_report import (
    THRESHOLD_GRID,
    Decoder,
    song_counts,
    tune_decoder,
)
from iad_tf.evaluation.folds import fold_split_map, real_songs, song_folds
from iad_tf.evaluation.predictions import TrackPrediction
from iad_tf.postprocess import Presence, decide, decide_song, gate, presence_scores
from tests.storage_fixtures import s3_bucket  # noqa: F401

FRAME_S = 512 / 22050


def _manifest(n_songs: int, remixes_per_song: int) -> dict:
    tracks = {}
    for i in range(n_songs):
        song = f"{i:04d}"
        tracks[song] = {"source_id": song, "split": "train"}
        for r in range(remixes_per_song):
            tracks[f"{song}r{r:02d}"] = {"source_id": song, "split": "train"}
    tracks["9000r01"] = {"source_id": "9000", "split": "train"}  # a remix whose source is absent
    return {"tracks": tracks}


@pytest.mark.parametrize("k", [2, 3, 5])
def test_folds_never_separate_a_remix_from_its_source(k: int) -> None:
    manifest = _manifest(7, 3)
    folds = song_folds(manifest, k)
    held = [s for f in folds for s in f]
    assert sorted(held) == real_songs(manifest) == sorted(set(held))  # every song once
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for fold in folds:
        split_of = fold_split_map(manifest, fold)
        for tid, meta in manifest["tracks"].items():
            src = meta["source_id"]
            if src in fold:
                # held out: the real song is predicted, its remixes are not trained on
                assert split_of[tid] == ("val" if tid == src else None)
            else:
                assert split_of[tid] == "train"
    assert song_folds(manifest, k) == folds  # deterministic


def test_folds_reject_too_few_songs() -> None:
    with pytest.raises(ValueError, match="3 real songs cannot fill 4 folds"):
        song_folds(_manifest(3, 1), 4)


def test_presence_scores_is_the_mean_of_the_top_frames() -> None:
    rng = np.random.default_rng(0)
    p = rng.random((50, 4)).astype(np.float32)
    want = np.sort(p, axis=0)[-7:].mean(axis=0)
    np.testing.assert_allclose(presence_scores(p, 7), want, rtol=1e-6)
    np.testing.assert_allclose(presence_scores(p, 500), p.mean(axis=0), rtol=1e-6)  # short song


@pytest.mark.parametrize("seed", range(5))
def test_gating_never_removes_a_frame_of_an_accepted_instrument(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = (rng.random((400, 31)) * rng.uniform(0.1, 1.0, 31)).astype(np.float32)
    thr = rng.uniform(0.2, 0.8, 31)
    presence = Presence(float(rng.uniform(0.4, 0.6)), 2.0)
    dec, present = decide_song(probs, thr, 5, presence, FRAME_S)
    ungated = decide(probs, thr, 5)
    assert present.any() and not present.all()
    np.testing.assert_array_equal(dec[:, present], ungated[:, present])
    assert not dec[:, ~present].any()
    np.testing.assert_array_equal(present, presence.scores(probs, FRAME_S) >= presence.threshold)
    with pytest.raises(ValueError):
        gate(ungated, present[:-1])


def _song(rng: np.random.Generator, present: list[int], n: int = 1500) -> TrackPrediction:
    """Present classes: long stretches of high probability; absent ones: short false bursts."""
    labels = np.zeros((n, 31), np.uint8)
    probs = rng.uniform(0.0, 0.2, (n, 31)).astype(np.float32)
    for c in present:
        a = int(rng.integers(0, n // 2))
        labels[a : a + n // 3, c] = 1
        probs[a : a + n // 3, c] = rng.uniform(0.6, 0.95, n // 3)
    for c in rng.choice([c for c in range(31) if c not in present], 8, replace=False):
        for a in rng.integers(0, n - 20, 3):
            probs[a : a + 12, c] = 0.9  # 0.28 s bursts: a false alarm
    return TrackPrediction(f"s{rng.integers(1e9)}", probs, labels)


def test_presence_gate_tuned_on_songs_removes_false_bursts() -> None:
    rng = np.random.default_rng(3)
    songs = [_song(rng, list(rng.choice(31, 5, replace=False))) for _ in range(6)]
    counts = [song_counts(s, FRAME_S, 5) for s in songs]
    plain = tune_decoder(counts, "global", 5)
    gated = tune_decoder(counts, "presence", 5)
    assert plain.presence is None and gated.presence is not None
    assert gated.presence.seconds >= 1.0  # longer than the bursts
    for s in songs:
        d_plain, _ = plain.decide(s.probs, FRAME_S)
        d_gated, present = gated.decide(s.probs, FRAME_S)
        assert (d_plain.sum(0) > 0).sum() > 5  # the bursts survive a frame threshold
        np.testing.assert_array_equal(present, s.labels.sum(0) > 0)  # the gate finds the song's 5
        assert (d_gated.sum(0) > 0).sum() == 5
    assert set(THRESHOLD_GRID) >= set(gated.thresholds)


def test_one_of_keeps_only_the_best_present_bass() -> None:
    from iad_tf.config import AAM_BASS, AAM_CLASSES

    bass = tuple(AAM_CLASSES.index(c) for c in AAM_BASS)
    gate = Presence(0.5, 1.0, (bass,))
    scores = np.zeros(31)
    scores[[bass[0], bass[2], 8]] = [0.7, 0.9, 0.95]  # two basses and Drums pass
    present = gate.present_from_scores(scores)
    assert present[bass[2]] and present[8] and not present[bass[0]]
    assert present.sum() == 2
    scores[bass[2]] = 0.4  # now only one bass passes: it stays
    assert gate.present_from_scores(scores)[bass[0]]
    as_json = gate.to_dict(AAM_CLASSES)
    assert as_json["one_of"] == [list(AAM_BASS)]
    assert Presence.from_dict(as_json, AAM_CLASSES) == gate
    with pytest.raises(ValueError, match="unknown class 'Kazoo'"):
        Presence.from_dict({"threshold": 0.5, "seconds": 1, "one_of": [["Kazoo"]]}, AAM_CLASSES)


def test_required_bass_is_chosen_by_its_own_pooling_even_below_the_threshold() -> None:
    """Every AAM song has one bass: with one_of_required the group keeps exactly one member,
    ranked by the whole-song mean (one_of_seconds), not by a short burst."""
    from iad_tf.config import AAM_BASS, AAM_CLASSES
    from iad_tf.postprocess import WHOLE_SONG_S

    bass = tuple(AAM_CLASSES.index(c) for c in AAM_BASS)
    fs = 0.1
    probs = np.zeros((600, 31), np.float32)
    probs[:, bass[2]] = 0.45  # plays the whole song at a modest probability
    probs[:20, bass[1]] = 0.95  # a 2-second burst of another bass
    plain = Presence(0.5, 1.0, (bass,))
    required = Presence(0.5, 1.0, (bass,), WHOLE_SONG_S, True)
    assert np.flatnonzero(plain.present(probs, fs)).tolist() == [bass[1]]  # the burst wins
    assert np.flatnonzero(required.present(probs, fs)).tolist() == [bass[2]]
    probs[:, bass[2]] = 0.05  # no bass above anything: still exactly one is kept
    assert required.present(probs, fs)[list(bass)].sum() == 1
    assert not plain.present(np.zeros((600, 31), np.float32), fs).any()
    as_json = required.to_dict(AAM_CLASSES)
    assert as_json["one_of_seconds"] == WHOLE_SONG_S and as_json["one_of_required"] is True
    assert Presence.from_dict(as_json, AAM_CLASSES) == required
    with pytest.raises(ValueError, match="one_of_required"):
        Presence.from_dict({**as_json, "one_of_required": "yes"}, AAM_CLASSES)
    with pytest.raises(ValueError, match="finite"):
        Presence(0.5, float("inf"))


def test_decoder_json_round_trip(tmp_path: Path) -> None:
    from iad_tf.evaluation.thresholds import load_presence, load_thresholds

    classes = [f"c{i}" for i in range(31)]
    dec = Decoder(np.full(31, 0.4), 5, Presence(0.55, 3.0))
    (tmp_path / "thresholds.json").write_text(json.dumps(dec.to_dict(classes)))
    thr, window = load_thresholds(tmp_path, classes)
    assert window == 5 and np.allclose(thr, 0.4)
    assert load_presence(tmp_path, classes) == {"threshold": 0.55, "seconds": 3.0}


def _cv_args(records: Path, run: object) -> list[str]:
    """Two folds of one quick epoch each."""
    return ["cv", "--records", str(records), "--run-dir", str(run), "--folds", "2",
            "--oversample-factor", "1", "--model", "mlp", "--epochs", "1", "--batch-size", "4",
            "--window-seconds", "1"]


def test_cv_oof_covers_every_real_song_exactly_once(cv_records: Path, tmp_path: Path) -> None:
    from iad_tf.cli.main import cli

    run = tmp_path / "cv"
    args = _cv_args(cv_records, run)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    from iad_tf.evaluation.predictions import load_predictions

    oof, classes = load_predictions(run / "oof.npz")
    ids = [t.track_id for t in oof]
    assert ids == [
        "0001",
        "0002",
        "0003",
        "0004",
        "0005",
        "0006",
    ]  # real songs, each once, no remix
    report = json.loads((run / "report.json").read_text())
    assert sorted(report["fold_of"]) == ids
    folds = report["folds"]
    for i, held in enumerate(folds):
        fold_oof, _ = load_predictions(run / f"fold-{i + 1}" / "oof.npz")
        assert sorted(t.track_id for t in fold_oof) == held
        cfg = json.loads((run / f"fold-{i + 1}" / "run" / "config.json").read_text())
        assert cfg["train"]["checkpoint"] == "last"
        assert not (run / f"fold-{i + 1}" / "records").exists()
        train_ids = {t for t in json.loads((run / "cv.json").read_text())["folds"][i]}
        assert train_ids == set(held)
    from iad_tf.evaluation.cv_report import SETTINGS

    for name in SETTINGS:
        pooled = report["settings"][name]["pooled"]
        assert 0.0 <= pooled["f1_micro"] <= 1.0
        assert set(pooled["per_song"]) == set(ids)
        assert len(report["settings"][name]["per_fold"]) == 2
    decoder = json.loads((run / "decoder.json").read_text())
    assert decoder["classes"] == classes and len(decoder["thresholds"]) == 31
    assert "F1 micro" in res.output and (run / "report.md").is_file()
    # a finished cross-validation is never overwritten
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "already holds a finished" in again.output
    # re-scoring from the saved OOF predictions (no training) gives the same report
    from iad_tf.evaluation.cv import rescore_cv

    (run / "report.json").unlink()
    again_report = rescore_cv(run)
    assert again_report["settings"] == report["settings"]
    assert json.loads((run / "decoder.json").read_text()) == decoder


def test_stop_after_fold_trains_the_first_folds_and_a_rerun_finishes(cv_records: Path, tmp_path: Path) -> None:
    from iad_tf.cli.main import cli

    run = tmp_path / "cv"
    args = _cv_args(cv_records, run)
    res = CliRunner().invoke(cli, [*args, "--stop-after-fold", "1"])
    assert res.exit_code == 0, res.output
    assert "stopped after fold 1 of 2" in res.output
    assert (run / "fold-1" / "oof.npz").is_file()
    assert not (run / "fold-2").exists() and not (run / "report.json").exists()
    first = (run / "fold-1" / "oof.npz").read_bytes()
    done = CliRunner().invoke(cli, args)  # the same command without the option finishes it
    assert done.exit_code == 0, done.output
    assert "fold 1/2" not in done.output and "fold 2/2" in done.output  # fold 1 reused
    assert (run / "fold-1" / "oof.npz").read_bytes() == first and (run / "report.json").is_file()
    bad = CliRunner().invoke(cli, [*_cv_args(cv_records, tmp_path / "cv2"), "--stop-after-fold", "3"])
    assert bad.exit_code != 0 and "folds are numbered 1 to 2" in bad.output


def test_fold_records_hold_only_the_folds_tracks(cv_records: Path, tmp_path: Path) -> None:
    from iad_tf.data.resplit import resplit
    from tfrecords_tools.reader import read_manifest

    manifest = read_manifest(cv_records)
    split_of = fold_split_map(manifest, ["0003"])
    new = resplit(cv_records, tmp_path / "fold", split_of)
    assert new["splits"]["val"] == ["0003"]
    assert "0009" not in new["tracks"] and "0010" not in new["tracks"]  # remixes of 0003 left out
    assert len(new["splits"]["train"]) == 7
    from iad_tf.data.resplit import iter_manifest_records

    recs = {r["track_id"]: r for r in iter_manifest_records(tmp_path / "fold", new)}
    orig = {r["track_id"]: r for r in iter_manifest_records(cv_records, manifest)}
    for tid, r in recs.items():
        np.testing.assert_array_equal(r["mel"], orig[tid]["mel"])
        np.testing.assert_array_equal(r["labels"], orig[tid]["labels"])
        assert r["split"].decode() == split_of[tid]
    # the fold's standardisation comes from the fold's own training tracks
    train_mel = np.concatenate([recs[t]["mel"].astype(np.float64) for t in new["splits"]["train"]])
    np.testing.assert_allclose(new["mel_stats"]["train"]["mean"], train_mel.mean(0), rtol=1e-6)


def test_group_confusions_count_songs_and_frames() -> None:
    """The report's bass/piano confusions: which member was reported where another played."""
    from iad_tf.config import AAM_CLASSES
    from iad_tf.evaluation.cv_report import group_confusions
    from iad_tf.evaluation.predictions import TrackPrediction

    eb, ob, pn = (AAM_CLASSES.index(c) for c in ("ElectricBass", "OrganBass", "Piano"))
    lab = np.zeros((10, 31), np.uint8)
    lab[:, eb] = 1
    lab[:5, pn] = 1
    dec = np.zeros((10, 31), np.uint8)
    dec[:6, ob] = 1
    dec[6:, eb] = 1
    out = group_confusions([TrackPrediction("s1", np.zeros((10, 31), np.float32), lab)], [dec],
                           AAM_CLASSES)
    assert out["basses"]["songs"]["s1"] == {"true": ["ElectricBass"],
                                            "reported": ["ElectricBass", "OrganBass"]}
    assert out["basses"]["frames"]["ElectricBass"]["OrganBass"] == 0.6
    assert out["basses"]["frames"]["ElectricBass"]["ElectricBass"] == 0.4
    assert out["pianos"]["frames"]["Piano"]["Piano"] == 0.0
    assert out["pianos"]["songs"]["s1"] == {"true": ["Piano"], "reported": []}


#: Runs `iad-tf ARGS...` but the machine dies (os._exit, no cleanup) as fold 2 starts training.
DIES_AT_FOLD_2 = """
import os, sys
import iad_tf.training.fit as lib
real, calls = lib.fit, []
def fit(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os._exit(9)
    return real(*args, **kwargs)
lib.fit = fit
from iad_tf.cli.main import cli
cli(sys.argv[1:])
"""


def test_cv_on_a_url_resumes_from_the_bucket_on_a_fresh_machine(
    cv_records: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 19: a cv run dir on S3 is uploaded fold by fold, so a cv whose machine died in fold
    2 resumes elsewhere from the bucket: fold 1 is reused, not retrained."""
    import os
    import subprocess
    import sys

    from iad_tf import storage
    from iad_tf.cli.main import cli

    pytest.importorskip("upath")
    run = f"{request.getfixturevalue('s3_bucket')}/cv-resume/run"
    args = _cv_args(cv_records, run)
    repo = Path(__file__).resolve().parents[1]
    died = subprocess.run([sys.executable, "-c", DIES_AT_FOLD_2, *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(repo)}, timeout=600)
    assert died.returncode == 9, died.stderr[-2000:]
    assert "fold 1/2" in died.stdout and "fold 2/2" in died.stdout
    fold1 = storage.to_path(f"{run}/fold-1/oof.npz")
    assert fold1.is_file()  # uploaded when fold 1 finished, not at a (never reached) end
    first = fold1.read_bytes()
    assert not storage.to_path(f"{run}/fold-1/records").exists()  # scratch stays local
    assert not storage.to_path(f"{run}/fold-2/oof.npz").exists()

    import iad_tf.training.fit as lib

    trained: list[str] = []
    real = lib.fit

    def counting_fit(records: object, run_dir: object, *a: object, **k: object) -> object:
        trained.append(Path(str(run_dir)).parent.name)
        return real(records, run_dir, *a, **k)

    monkeypatch.setattr(lib, "fit", counting_fit)
    res = CliRunner().invoke(cli, args)  # a fresh local stage: everything comes from the bucket
    assert res.exit_code == 0, res.output
    assert trained == ["fold-2"] and "fold 1/2" not in res.output
    assert fold1.read_bytes() == first  # fold 1's predictions reused as they were
    report = json.loads(storage.to_path(f"{run}/report.json").read_text())
    assert sorted(report["fold_of"]) == ["0001", "0002", "0003", "0004", "0005", "0006"]


def test_songs_generated_from_no_real_song_train_in_every_fold() -> None:
    """A soundfont synth song is its own source (track id == source id) but lies under a
    generated root: never a held-out song, in the training split of every fold."""
    manifest = _manifest(5, 1)
    manifest["tracks"] = {tid: {**m, "audio": f"/aam/audio-mixes-flac/{tid}_mix.flac"}
                          for tid, m in manifest["tracks"].items()}
    for k in (1, 2):
        tid = f"g{k:04d}"
        manifest["tracks"][tid] = {"source_id": tid, "split": "train",
                                   "audio": f"/data/gm/audio-mixes-flac/{tid}_mix.flac"}
    manifest["generators"] = {"/aam": None, "/data/gm/": {"generator": "synth", "seed": 3}}
    assert real_songs(manifest) == [f"{i:04d}" for i in range(5)]
    for fold in song_folds(manifest, 2):
        split_of = fold_split_map(manifest, fold)
        assert split_of["g0001"] == split_of["g0002"] == "train"
    manifest["generators"] = {}  # records from before provenance: every own-source track is a song
    assert "g0001" in real_songs(manifest)
