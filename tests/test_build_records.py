"""build-records end to end: tiny AAM folders, the real sample, bad input, interruption.

References are computed independently here: librosa directly for the mels, a regex reading
of the ARFF text for the labels.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.cli.build_records import build_records as build_cmd
from iad_tf.config import AAM_CLASSES
from iad_tf.data.build import DELAY_ENV, BuildError, BuildOptions, build_records
from iad_tf.data.records import load_track, record_schema
from iad_tf.data.splits import hash_split
from iad_tf.locks import LOCK_NAME
from tests.tiny_aam import make_tiny_aam
from tfrecords_tools.reader import iter_records, read_manifest, shard_files
from tfrecords_tools.verify import verify_dir

REPO = Path(__file__).resolve().parents[1]
SR, HOP = 22050, 512
MANIFEST_KEYS = {
    "schema", "shards", "feature_config", "classes", "labels", "splits", "tracks",
    "class_track_counts", "class_active_frames", "frames", "mel_stats", "skipped", "generators",
    "versions",
}


# ----------------------------------------------------------------------------- references


def reference_mel(audio: Path) -> np.ndarray:
    """librosa.load at 22050 + melspectrogram + power_to_db: (frames, 128) float64."""
    import librosa

    y, sr = librosa.load(str(audio), sr=SR)
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=HOP, n_mels=128)
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None).T


def reference_onset_roll(path: Path, n_frames: int, classes: list[str]) -> np.ndarray:
    """Independent reading of an onsets ARFF -> uint8 (n_frames, len(classes))."""
    text = path.read_text()
    names = re.findall(r"@ATTRIBUTE 'Onset events of (\w+)'", text)
    rows = [ln for ln in text.split("@DATA", 1)[1].splitlines() if ln.strip()]
    times = [float(r.split(",", 1)[0]) for r in rows]
    active = [[c != "" for c in re.findall(r"'\[([^\]]*)\]'", r)] for r in rows]
    frame_t = np.arange(n_frames) * HOP / SR
    roll = np.zeros((n_frames, len(classes)), dtype=np.uint8)
    for f, t in enumerate(frame_t):
        e = bisect.bisect_right(times, t) - 1
        if e >= 0:
            for name, on in zip(names, active[e], strict=True):
                roll[f, classes.index(name)] = on
    return roll


def reference_segment_roll(path: Path, n_frames: int, classes: list[str]) -> np.ndarray:
    rows = [ln for ln in path.read_text().split("@DATA", 1)[1].splitlines() if ln.strip()]
    starts = [float(r.split(",", 1)[0]) for r in rows]
    insts = [re.findall(r"'\[([^\]]*)\]'", r)[0].split(",") for r in rows]
    roll = np.zeros((n_frames, len(classes)), dtype=np.uint8)
    for f in range(n_frames):
        k = bisect.bisect_right(starts, f * HOP / SR) - 1
        for name in insts[k] if k >= 0 else []:
            if name:
                roll[f, classes.index(name)] = 1
    return roll


def all_track_ids(records_dir: Path) -> list[str]:
    schema = record_schema()
    return [
        schema.decode(raw)["track_id"].decode()
        for shard in shard_files(records_dir)
        for raw in iter_records(shard)
    ]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "iad_tf", "build-records", *args],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=300,
    )


# ----------------------------------------------------------------------------- tiny AAM


def test_round_trip_tiny(tiny_aam: Path, tmp_path: Path) -> None:
    out = tmp_path / "records"
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(tiny_aam), "--out", str(out), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "manifest:" in res.output
    m = read_manifest(out)
    assert set(m) == MANIFEST_KEYS
    assert m["classes"] == list(AAM_CLASSES) and m["labels"] == "onsets" and m["skipped"] == []
    ids = sorted(m["tracks"])
    assert ids == ["0001", "0002", "0003", "0004"]
    assert sorted(sum(m["splits"].values(), [])) == ids
    assert verify_dir(out).ok
    assert sorted(all_track_ids(out)) == ids
    assert sum(s["records"] for s in m["shards"].values()) == 4
    for name in m["shards"]:
        assert re.fullmatch(r"(train|val|test)-\d{5}-of-\d{5}\.tfrecord", name)

    n_frames = 1 + int(6.0 * SR) // HOP
    train_mels = []
    counts = {s: np.zeros(31, np.int64) for s in m["splits"]}
    present = {s: np.zeros(31, np.int64) for s in m["splits"]}
    for tid in ids:
        t = load_track(out, tid)
        assert set(t) == {"mel", "labels", "classes", "split"}
        assert t["split"] == m["tracks"][tid]["split"] == hash_split(tid)
        assert t["mel"].dtype == np.float32 and t["mel"].shape == (n_frames, 128)
        assert t["labels"].dtype == np.uint8 and t["labels"].shape == (n_frames, 31)
        assert np.isfinite(t["mel"]).all()
        assert m["tracks"][tid]["n_frames"] == n_frames
        audio = tiny_aam / "audio-mixes-flac" / f"{tid}_mix.flac"
        np.testing.assert_allclose(t["mel"], reference_mel(audio), atol=0.05)
        want = reference_onset_roll(tiny_aam / "annotations" / f"{tid}_onsets.arff", n_frames, t["classes"])
        np.testing.assert_array_equal(t["labels"], want)
        assert want.sum() > 0
        counts[t["split"]] += t["labels"].sum(axis=0, dtype=np.int64)
        present[t["split"]] += t["labels"].any(axis=0)
        if t["split"] == "train":
            train_mels.append(t["mel"])
    for split, c in counts.items():
        assert [m["class_active_frames"][split][k] for k in AAM_CLASSES] == c.tolist()
        assert [m["class_track_counts"][split][k] for k in AAM_CLASSES] == present[split].tolist()
    stacked = np.concatenate(train_mels).astype(np.float64)
    np.testing.assert_allclose(m["mel_stats"]["train"]["mean"], stacked.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(m["mel_stats"]["train"]["std"], stacked.std(axis=0), atol=1e-5)
    assert not (out / ".work").exists()  # cache removed after a complete build


def test_segments_labels_multi_root_sources_and_duplicates(tmp_path: Path) -> None:
    real = make_tiny_aam(tmp_path / "real", n_tracks=3, seconds=3.0, seed=1)
    remix = make_tiny_aam(tmp_path / "remix", n_tracks=2, seconds=3.0, seed=2, layout="flat", fmt="wav")
    for p in sorted((remix / "annotations").iterdir()):
        p.rename(p.with_name("rmx" + p.name))  # 0001_mix.wav -> rmx0001_mix.wav
    (remix / "sources.json").write_text(json.dumps({"rmx0001": "0001", "rmx0002": "0002"}))
    dup = make_tiny_aam(tmp_path / "dup", n_tracks=1, seconds=3.0, seed=3)
    out = tmp_path / "records"
    res = build_records([real, remix, dup], out, BuildOptions(labels="segments", progress=False))
    m = res.manifest
    assert m["labels"] == "segments"
    assert sorted(m["tracks"]) == ["0001", "0002", "0003", "rmx0001", "rmx0002"]
    assert m["tracks"]["rmx0001"]["source_id"] == "0001"
    assert m["tracks"]["rmx0001"]["split"] == m["tracks"]["0001"]["split"]
    assert m["tracks"]["rmx0002"]["split"] == m["tracks"]["0002"]["split"]
    assert [s["track"] for s in m["skipped"]] == ["0001"]
    assert "duplicate track id 0001" in m["skipped"][0]["reason"]
    assert m["skipped"][0]["file"].startswith(str(dup))
    for tid in m["tracks"]:
        root = remix if tid.startswith("rmx") else real
        t = load_track(out, tid)
        want = reference_segment_roll(root / "annotations" / f"{tid}_segments.arff", t["labels"].shape[0], t["classes"])
        np.testing.assert_array_equal(t["labels"], want)
        assert want[0].sum() == 3


def test_split_file(tmp_path: Path) -> None:
    root = make_tiny_aam(tmp_path / "aam", n_tracks=4, seconds=2.0, seed=4)
    split_file = tmp_path / "splits.txt"
    split_file.write_text("# explicit\n0001 train\n0002 test\n0003 val\n")
    res = build_records([root], tmp_path / "rec", BuildOptions(split_file=split_file, progress=False))
    assert res.manifest["splits"] == {"train": ["0001"], "val": ["0003"], "test": ["0002"]}
    assert res.manifest["skipped"][0]["track"] == "0004"
    assert "splits.txt" in res.manifest["skipped"][0]["reason"]
    js = tmp_path / "splits.json"
    js.write_text(json.dumps({"train": ["0001", "0002"], "val": ["0003", "0004"]}))
    res = build_records([root], tmp_path / "rec2", BuildOptions(split_file=js, progress=False))
    assert res.manifest["splits"] == {"train": ["0001", "0002"], "val": ["0003", "0004"], "test": []}


def _corrupt(root: Path) -> dict[str, tuple[str, str]]:
    """Break tracks 0001..0007 of a tiny AAM root, one way each -> {id: (file, reason part)}."""
    ann, mixes = root / "annotations", root / "audio-mixes-flac"
    (mixes / "0001_mix.flac").write_bytes(b"this is not audio" * 100)
    (mixes / "0002_mix.flac").unlink()
    (root / "audio-mixes-wav").mkdir()
    sf.write(root / "audio-mixes-wav" / "0002_mix.wav", np.zeros(0, np.float32), 44100)
    (ann / "0003_onsets.arff").unlink()
    (ann / "0004_onsets.arff").write_bytes(b"\x00\xff\xfegarbage\x81\n")
    with open(ann / "0005_onsets.arff", "a") as fh:
        fh.write("2.9,'[]'\n")
    p = ann / "0006_onsets.arff"
    p.write_text(p.read_text().replace("Onset events of AcousticGuitar", "Onset events of Theremin"))
    with open(ann / "0007_onsets.arff", "a") as fh:
        fh.write("9.0," + ",".join(["'[]'"] * 31) + "\n")
    return {
        "0001": ("0001_mix.flac", "cannot decode"),
        "0002": ("0002_mix.wav", "audio is empty"),
        "0003": ("0003_onsets.arff", "missing onsets annotation"),
        "0004": ("0004_onsets.arff", "cannot read"),
        "0005": ("0005_onsets.arff", "row has 2 fields, header declares 32"),
        "0006": ("0006_onsets.arff", "Theremin"),
        "0007": ("0007_onsets.arff", "past the end"),
    }


def test_bad_inputs_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = make_tiny_aam(tmp_path / "aam", n_tracks=9, seconds=3.0, seed=5)
    broken = _corrupt(root)
    out = tmp_path / "rec"
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(root), "--out", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    m = read_manifest(out)
    assert sorted(m["tracks"]) == ["0008", "0009"]
    assert verify_dir(out).ok and sorted(all_track_ids(out)) == ["0008", "0009"]
    skipped = {s["track"]: s for s in m["skipped"]}
    assert sorted(skipped) == sorted(broken)
    for tid, (fname, part) in broken.items():
        entry = skipped[tid]
        assert Path(entry["file"]).name == fname, entry
        assert fname in entry["reason"] and part in entry["reason"], entry
        assert "\n" not in entry["reason"]
        assert f"{tid}: " in res.output  # the summary lists every skip

    strict = CliRunner().invoke(
        build_cmd, ["--aam-root", str(root), "--out", str(tmp_path / "strict"), "--workers", "1", "--strict"]
    )
    assert strict.exit_code != 0 and "--strict: 7 track(s) skipped" in strict.output
    assert not (tmp_path / "strict" / "manifest.json").exists()

    for tid in ("0008", "0009"):
        (root / "annotations" / f"{tid}_onsets.arff").unlink()
    with pytest.raises(BuildError, match="no usable tracks"):
        build_records([root], tmp_path / "none", BuildOptions(progress=False))
    none = CliRunner().invoke(build_cmd, ["--aam-root", str(root), "--out", str(tmp_path / "none2"), "--workers", "1"])
    assert none.exit_code == 1 and "no usable tracks" in none.output


def test_nonexistent_root_is_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "does not exist" in res.output and "Traceback" not in res.output
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "no annotations/ folder" in res.output


def test_interrupted_build_resumes(tmp_path: Path) -> None:
    root = make_tiny_aam(tmp_path / "aam", n_tracks=6, seconds=3.0, seed=6)
    out = tmp_path / "rec"
    cmd = [sys.executable, "-m", "iad_tf", "build-records", "--aam-root", str(root), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env={**os.environ, DELAY_ENV: "2"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list((out / ".work").glob("*.npz")) and time.monotonic() < deadline:
            assert proc.poll() is None, "build finished before it could be interrupted"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and its workers
        proc.wait()
    cached = sorted(p.stem for p in (out / ".work").glob("*.npz"))
    assert 1 <= len(cached) < 6
    assert not (out / "manifest.json").exists()
    # debris an interrupted assembly could leave behind: must not survive the rerun
    (out / "train-00000-of-00007.tfrecord").write_bytes(b"partial")
    (out / "val-00000-of-00001.tfrecord.tmp").write_bytes(b"partial")

    res = build_records([root], out, BuildOptions(workers=1, progress=False))
    assert (res.computed, res.reused) == (6 - len(cached), len(cached))
    report = verify_dir(out)
    assert report.ok, report.problems()
    ids = all_track_ids(out)
    assert sorted(ids) == [f"{k:04d}" for k in range(1, 7)]  # each track exactly once
    # (the killed CLI's lock stays until the next `iad-tf build-records` takes it over)
    left = sorted(p for p in os.listdir(out) if p != LOCK_NAME)
    assert left == sorted(["manifest.json", *read_manifest(out)["shards"]])


# ----------------------------------------------------------------------------- real sample


@pytest.fixture(scope="session")
def sample_records(aam_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 12 sample tracks built once per session with --workers 2."""
    out = tmp_path_factory.mktemp("sample") / "records"
    res = run_cli("--aam-root", str(aam_sample), "--out", str(out), "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    return out


@pytest.mark.sample
def test_sample_every_track_builds_and_verifies(sample_records: Path, aam_sample: Path) -> None:
    m = read_manifest(sample_records)
    ids = sorted(p.name.split("_")[0] for p in (aam_sample / "audio-mixes-mp3").glob("*_mix.mp3"))
    assert len(ids) == 12 and sorted(m["tracks"]) == ids and m["skipped"] == []
    report = verify_dir(sample_records)
    assert report.ok, report.problems()
    assert sorted(all_track_ids(sample_records)) == ids
    assert sum(m["frames"].values()) == sum(t["n_frames"] for t in m["tracks"].values())


@pytest.mark.sample
def test_sample_mels_and_labels_match_references(sample_records: Path, aam_sample: Path) -> None:
    m = read_manifest(sample_records)
    for tid in sorted(m["tracks"]):
        t = load_track(sample_records, tid)
        ref = reference_mel(aam_sample / "audio-mixes-mp3" / f"{tid}_mix.mp3")
        assert t["mel"].shape == ref.shape
        assert np.abs(t["mel"] - ref).max() <= 0.05, tid
        want = reference_onset_roll(aam_sample / "annotations" / f"{tid}_onsets.arff", ref.shape[0], t["classes"])
        agree = (t["labels"] == want).all(axis=1).mean()
        assert agree >= 0.999, (tid, agree)
        assert want.sum() > 0


def reference_pitch_roll(path: Path, n_frames: int) -> np.ndarray:
    """Independent reading of an onsets ARFF -> uint8 (n_frames, 88): MIDI 21-108 of every
    instrument but Drums sounding at the frame's last event."""
    text = path.read_text()
    names = re.findall(r"@ATTRIBUTE 'Onset events of (\w+)'", text)
    rows = [ln for ln in text.split("@DATA", 1)[1].splitlines() if ln.strip()]
    times = [float(r.split(",", 1)[0]) for r in rows]
    cells = [re.findall(r"'\[([^\]]*)\]'", r) for r in rows]
    roll = np.zeros((n_frames, 88), dtype=np.uint8)
    for f in range(n_frames):
        e = bisect.bisect_right(times, f * HOP / SR) - 1
        for name, cell in zip(names, cells[e] if e >= 0 else [], strict=False):
            for note in filter(None, cell.split(",")):
                p = int(note.lstrip("+"))
                if name != "Drums" and 21 <= p <= 108:
                    roll[f, p - 21] = 1
    return roll


def test_onsets_plus_pitch_records_hold_the_pitch_roll(tiny_aam: Path, tmp_path: Path) -> None:
    """--labels onsets+pitch: the schema gains ``pitch``, each record's roll matches an
    independent reading of its onsets ARFF, the class labels are those of --labels onsets."""
    out = tmp_path / "records"
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(tiny_aam), "--out", str(out), "--workers", "1",
                                         "--labels", "onsets+pitch"])
    assert res.exit_code == 0, res.output
    m = read_manifest(out)
    assert m["labels"] == "onsets+pitch" and verify_dir(out).ok
    from tfrecords_tools import Schema

    assert Schema.from_json(m["schema"]) == record_schema(aux=("pitch",)) != record_schema()
    n_frames = 1 + int(6.0 * SR) // HOP
    for tid in sorted(m["tracks"]):
        t = load_track(out, tid)
        assert t["pitch"].shape == (n_frames, 88) and t["pitch"].dtype == np.uint8
        want = reference_pitch_roll(tiny_aam / "annotations" / f"{tid}_onsets.arff", n_frames)
        assert want.sum() > 0
        np.testing.assert_array_equal(t["pitch"], want)
        np.testing.assert_array_equal(
            t["labels"], reference_onset_roll(tiny_aam / "annotations" / f"{tid}_onsets.arff", n_frames, t["classes"]))
    plain = tmp_path / "plain"
    build_records([tiny_aam], plain, BuildOptions(workers=1, progress=False))
    assert "pitch" not in load_track(plain, "0001")


def reference_role_roll(ann: Path, tid: str, n_frames: int) -> np.ndarray:
    """Independent reading of a song's role roll: its segments ARFF's instruments and
    generators (one row per part) joined with the onsets' activity (reference_onset_roll)."""
    roles = ["MelodyBow", "ChordPadsRanged", "ChordArpeggios", "BassLine", "RhythmSimpleGrooves"]
    active = reference_onset_roll(ann / f"{tid}_onsets.arff", n_frames, list(AAM_CLASSES))
    rows = [ln for ln in (ann / f"{tid}_segments.arff").read_text().split("@DATA", 1)[1].splitlines() if ln.strip()]
    starts = [float(r.split(",", 1)[0]) for r in rows]
    lists = [[x.split(",") if x else [] for x in re.findall(r"'\[([^\]]*)\]'", r)] for r in rows]
    roll = np.zeros((n_frames, len(roles)), dtype=np.uint8)
    for f in range(n_frames):
        k = bisect.bisect_right(starts, f * HOP / SR) - 1
        names, gens = lists[k] if k >= 0 else ([], [])
        for name, gen in zip(names, gens, strict=True):
            if gen in roles and active[f, AAM_CLASSES.index(name)]:
                roll[f, roles.index(gen)] = 1
    return roll


def test_onsets_plus_roles_records_hold_the_role_roll(tiny_aam: Path, tmp_path: Path) -> None:
    """--labels onsets+roles: the schema gains ``roles``, each record's roll matches an
    independent reading of its segments and onsets ARFFs, the class labels are those of
    --labels onsets; a track without a segments file is skipped, naming the file."""
    (tiny_aam / "annotations" / "0004_segments.arff").unlink()
    out = tmp_path / "records"
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(tiny_aam), "--out", str(out), "--workers", "1",
                                         "--labels", "onsets+roles"])
    assert res.exit_code == 0, res.output
    assert "0004_segments.arff" in res.output and "missing segments annotation" in res.output
    m = read_manifest(out)
    assert m["labels"] == "onsets+roles" and verify_dir(out).ok and sorted(m["tracks"]) == ["0001", "0002", "0003"]
    from tfrecords_tools import Schema

    assert Schema.from_json(m["schema"]) == record_schema(aux=("roles",)) != record_schema()
    n_frames = 1 + int(6.0 * SR) // HOP
    for tid in sorted(m["tracks"]):
        t = load_track(out, tid)
        assert t["roles"].shape == (n_frames, 5) and t["roles"].dtype == np.uint8
        want = reference_role_roll(tiny_aam / "annotations", tid, n_frames)
        assert want.sum() > 0
        np.testing.assert_array_equal(t["roles"], want)
        np.testing.assert_array_equal(
            t["labels"], reference_onset_roll(tiny_aam / "annotations" / f"{tid}_onsets.arff", n_frames, t["classes"]))


@pytest.mark.sample
def test_role_roll_of_real_songs(aam_sample: Path) -> None:
    """On the real ARFFs: the role roll equals the independent reading, and a frame has a role
    on exactly when some instrument sounds (every sounding instrument has a role in its part)."""
    from iad_tf.aam.arff import read_onsets, read_segments
    from iad_tf.aam.labels import onset_roll, role_roll

    ann = aam_sample / "annotations"
    for path in sorted(ann.glob("*_onsets.arff"))[:4]:
        tid = path.name.split("_")[0]
        table = read_onsets(path)
        n = int(table.times[-1] * SR / HOP)
        times = np.arange(n) * HOP / SR
        roll = role_roll(table, read_segments(ann / f"{tid}_segments.arff"), times)
        np.testing.assert_array_equal(roll, reference_role_roll(ann, tid, n))
        np.testing.assert_array_equal(roll.any(axis=1), onset_roll(table, times, AAM_CLASSES).any(axis=1))


@pytest.mark.sample
def test_pitch_roll_of_real_songs_sounds_where_a_pitched_instrument_plays(aam_sample: Path) -> None:
    """On the real onsets ARFFs: a frame has a key of the pitch roll on exactly when an
    instrument other than Drums sounds (AAM's notes lie in the piano's range)."""
    from iad_tf.aam.arff import read_onsets
    from iad_tf.aam.labels import onset_roll, pitch_roll

    drums = AAM_CLASSES.index("Drums")
    for path in sorted((aam_sample / "annotations").glob("*_onsets.arff"))[:4]:
        table = read_onsets(path)
        times = np.arange(int(table.times[-1] * SR / HOP)) * HOP / SR
        roll = pitch_roll(table, times)
        pitched = np.delete(onset_roll(table, times, AAM_CLASSES), drums, axis=1).any(axis=1)
        np.testing.assert_array_equal(roll.any(axis=1), pitched)
        np.testing.assert_array_equal(roll, reference_pitch_roll(path, len(times)))


def test_a_changed_segments_file_invalidates_cached_role_rolls(tiny_aam: Path) -> None:
    """The cache key of an onsets+roles track covers its segments ARFF (the role roll reads
    it); that of an onsets track does not."""
    import os

    from iad_tf.aam.dataset import discover_root
    from iad_tf.config import FeatureConfig
    from iad_tf.data.build import fingerprint

    track = discover_root(tiny_aam)[0][0]
    cfg = FeatureConfig()
    before = {mode: fingerprint(track, cfg, mode, AAM_CLASSES, 2.0) for mode in ("onsets", "onsets+roles")}
    seg = tiny_aam / "annotations" / f"{track.track_id}_segments.arff"
    st = seg.stat()
    os.utime(seg, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = {mode: fingerprint(track, cfg, mode, AAM_CLASSES, 2.0) for mode in ("onsets", "onsets+roles")}
    assert after["onsets"] == before["onsets"]
    assert after["onsets+roles"] != before["onsets+roles"]
