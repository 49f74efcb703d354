"""Knowledge distillation: teachers' mean probabilities blended into the training targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from iad_tf.training.config import ModelConfig, TrainConfig
from iad_tf.training.distill import SoftTargets, blend, teacher_targets
from tests.records_factory import make_records, save_untrained_run
from tests.test_cv import _cv_args


@pytest.fixture
def records(tmp_path: Path) -> Path:
    return make_records(tmp_path / "rec", seed=3)


def _tracks(records: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from iad_tf.evaluation.inference import iter_split
    from tfrecords_tools.reader import read_manifest

    manifest = read_manifest(records)
    return {tid: (mel, labels) for tid, mel, labels in iter_split(records, "train", manifest)}


def _random_soft(records: Path, seed: int = 0) -> SoftTargets:
    rng = np.random.default_rng(seed)
    return SoftTargets(
        {tid: rng.random(labels.shape).astype(np.float16) for tid, (_, labels) in _tracks(records).items()},
        ("t",),
    )


def _which(mel: np.ndarray, tracks: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    found = [tid for tid, (m, _) in tracks.items() if m.shape == mel.shape and np.array_equal(m, mel)]
    assert len(found) == 1
    return found[0]


def test_blend_mixes_the_class_columns_and_keeps_the_rest() -> None:
    import tensorflow as tf

    labels = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], np.float32)  # 2 classes + 2 pitch columns
    soft = np.array([[0.2, 0.6], [0.8, 0.0]], np.float32)
    out = blend(0.25, 2)({"labels": tf.constant(labels), "soft": tf.constant(soft), "mask": tf.ones(2)})
    assert "soft" not in out
    want = np.array([[0.8, 0.15, 1, 1], [0.2, 0.0, 1, 0]], np.float32)
    np.testing.assert_allclose(out["labels"].numpy(), want, rtol=1e-6)


def test_read_tracks_gives_each_record_its_own_targets(records: Path) -> None:
    from iad_tf.training.pipeline import read_tracks
    from iad_tf.training.records_info import open_records

    info = open_records(records)
    soft = _random_soft(records)
    tracks = _tracks(records)
    seen = []
    for ex in read_tracks(info, "train", soft=soft):
        tid = _which(ex["mel"].numpy().astype(np.float16), tracks)
        np.testing.assert_array_equal(ex["soft"].numpy(), soft.by_track[tid].astype(np.float32))
        seen.append(tid)
    assert sorted(seen) == sorted(tracks)


def test_training_targets_are_the_blend(records: Path) -> None:
    from iad_tf.training.pipeline import train_dataset
    from iad_tf.training.records_info import open_records

    info = open_records(records)
    soft = _random_soft(records, seed=1)
    tracks = _tracks(records)
    cfg = TrainConfig(batching="tracks", batch_size=1, augment=False, oversample_factor=1.0,
                      distill_weight=0.3)
    data = train_dataset(info, cfg, soft=soft)
    for mel, labels, _ in data.dataset.take(2 * len(tracks)):
        tid = _which(mel.numpy()[0].astype(np.float16), tracks)
        want = 0.7 * tracks[tid][1] + 0.3 * soft.by_track[tid].astype(np.float32)
        np.testing.assert_allclose(labels.numpy()[0], want, rtol=1e-6, atol=1e-6)


def test_train_dataset_refuses_targets_without_weight_and_weight_without_targets(records: Path) -> None:
    from iad_tf.training.pipeline import train_dataset
    from iad_tf.training.records_info import open_records

    info = open_records(records)
    with pytest.raises(ValueError, match="needs both teacher runs"):
        train_dataset(info, TrainConfig(distill_weight=0.5))
    with pytest.raises(ValueError, match="needs both teacher runs"):
        train_dataset(info, TrainConfig(), soft=_random_soft(records))


def test_targets_of_another_length_or_track_are_refused(records: Path) -> None:
    from iad_tf.training.distill import soft_lookup
    from iad_tf.training.records_info import open_records

    info = open_records(records)
    soft = _random_soft(records)
    ids, frames = info.tracks("train"), info.n_frames("train")
    short = dict(soft.by_track)
    short[ids[1]] = short[ids[1]][:-1]
    with pytest.raises(ValueError, match=f"track '{ids[1]}': teacher targets hold {frames[1] - 1} frames"):
        soft_lookup(SoftTargets(short, ("t",)), ids, frames)
    missing = {k: v for k, v in soft.by_track.items() if k != ids[2]}
    with pytest.raises(ValueError, match=f"no targets for track '{ids[2]}'"):
        soft_lookup(SoftTargets(missing, ("t",)), ids, frames)


def test_teacher_targets_are_the_mean_of_the_teachers(records: Path, tmp_path: Path) -> None:
    import keras

    from iad_tf.evaluation.inference import open_run, predict_split

    keras.utils.set_random_seed(1)
    a = save_untrained_run(records, tmp_path / "a")
    keras.utils.set_random_seed(2)
    b = save_untrained_run(records, tmp_path / "b")
    pa = {p.track_id: p.probs for p in predict_split(open_run(a), records, "train", progress=False)}
    pb = {p.track_id: p.probs for p in predict_split(open_run(b), records, "train", progress=False)}
    assert not np.allclose(pa["0001"], pb["0001"], atol=1e-3)  # two different teachers
    got = teacher_targets([a, b], records, progress=False)
    assert sorted(got.by_track) == sorted(pa)
    for tid, soft in got.by_track.items():
        assert soft.dtype == np.float16
        np.testing.assert_allclose(soft, (pa[tid] + pb[tid]) / 2, atol=1e-3)


def test_fit_distils_and_records_its_teachers(records: Path, tmp_path: Path) -> None:
    from iad_tf.training.fit import fit

    teacher = save_untrained_run(records, tmp_path / "teacher")
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, distill_weight=0.5)
    result = fit(records, tmp_path / "student", "mlp", cfg, ModelConfig(mlp_units=(8,)),
                 verbose=0, teachers=[teacher])
    assert (result.run_dir / "model.keras").is_file()
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["teachers"] == [str(teacher)]
    assert config["train"]["distill_weight"] == 0.5


@pytest.mark.parametrize("weight,teachers,match", [
    (0.5, False, "needs both teacher runs"),
    (0.0, True, "needs both teacher runs"),
])
def test_fit_refuses_half_a_distillation_before_any_work(
    records: Path, tmp_path: Path, weight: float, teachers: bool, match: str
) -> None:
    from iad_tf.training.fit import fit

    teacher = save_untrained_run(records, tmp_path / "teacher")
    with pytest.raises(ValueError, match=match):
        fit(records, tmp_path / "student", "mlp", TrainConfig(epochs=1, distill_weight=weight),
            verbose=0, teachers=[teacher] if teachers else [])
    assert not (tmp_path / "student").exists()


def test_fit_refuses_a_teacher_that_is_no_run(records: Path, tmp_path: Path) -> None:
    from iad_tf.training.fit import fit

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        fit(records, tmp_path / "student", "mlp", TrainConfig(epochs=1, distill_weight=0.5),
            verbose=0, teachers=[tmp_path / "empty"])
    assert not (tmp_path / "student").exists()


def test_cv_teachers_must_share_the_folds(tmp_path: Path) -> None:
    from iad_tf.evaluation.cv import fold_teachers

    folds = [["0001"], ["0002"]]
    teacher = tmp_path / "teacher-cv"
    teacher.mkdir()
    with pytest.raises(ValueError, match="no cv.json"):
        fold_teachers([teacher], folds)
    (teacher / "cv.json").write_text(json.dumps({"folds": [["0002"], ["0001"]]}))
    with pytest.raises(ValueError, match="song folds differ"):
        fold_teachers([teacher], folds)
    (teacher / "cv.json").write_text(json.dumps({"folds": folds}))
    with pytest.raises(ValueError, match="fold 1 has no finished model"):
        fold_teachers([teacher], folds)
    for k in (1, 2):
        (teacher / f"fold-{k}" / "run").mkdir(parents=True)
        (teacher / f"fold-{k}" / "run" / "model.keras").write_bytes(b"x")
    assert fold_teachers([teacher], folds) == [[teacher / "fold-1" / "run"], [teacher / "fold-2" / "run"]]
    assert fold_teachers([], folds) == [[], []]


def test_cli_names_a_teacher_without_a_weight(records: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iad_tf.cli.main import cli

    teacher = save_untrained_run(records, tmp_path / "teacher")
    res = CliRunner().invoke(cli, ["fit", "--model", "mlp", "--records", str(records), "--run-dir",
                                   str(tmp_path / "student"), "--teacher", str(teacher)])
    assert res.exit_code == 1, res.output
    assert "needs both teacher runs" in res.output and "Traceback" not in res.output


def test_cv_student_learns_from_each_folds_teachers(cv_records: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iad_tf.cli.main import cli

    teacher = tmp_path / "teacher-cv"
    res = CliRunner().invoke(cli, _cv_args(cv_records, teacher))
    assert res.exit_code == 0, res.output
    student = tmp_path / "student-cv"
    # half a distillation is refused before anything is written
    half = CliRunner().invoke(cli, [*_cv_args(cv_records, student), "--teacher", str(teacher)])
    assert half.exit_code == 1 and "needs both teacher runs" in half.output
    assert not student.exists()
    res = CliRunner().invoke(cli, [*_cv_args(cv_records, student), "--teacher", str(teacher),
                                   "--distill-weight", "0.5"])
    assert res.exit_code == 0, res.output
    assert json.loads((student / "cv.json").read_text())["teachers"] == [str(teacher)]
    for k in (1, 2):
        cfg = json.loads((student / f"fold-{k}" / "run" / "config.json").read_text())
        assert cfg["teachers"] == [str(teacher / f"fold-{k}" / "run")]
    assert (student / "report.json").is_file()
