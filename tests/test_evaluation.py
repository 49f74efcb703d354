"""Evaluation: metrics vs scikit-learn / hand computations, segment metrics, confusions,
threshold tuning, error cases. numpy-only except the end-to-end test at the bottom."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    hamming_loss,
    jaccard_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.evaluation.confusion import confusion_matrix, read_pairs_csv, top_pairs, write_pairs_csv
from iad_tf.evaluation.predictions import TrackPrediction, load_predictions, save_predictions
from iad_tf.evaluation.report import build_report, render_report
from iad_tf.evaluation.segments import segment_metrics, segment_roll
from iad_tf.evaluation.thresholds import (
    CANDIDATES,
    candidate_counts,
    class_counts,
    f1_from_counts,
    load_thresholds,
    save_thresholds,
    tune_thresholds,
)
from iad_tf.metrics import frame_metrics, mean_average_precision
from iad_tf.postprocess import decide

CLASSES = ["A", "B", "C", "D", "E"]


def fake_tracks(seed: int = 0, n_tracks: int = 3, frames: int = 300, c: int = 5) -> list[TrackPrediction]:
    """Tracks with runs of activity; probs informative but noisy. Class 'E' never plays."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_tracks):
        blocks = rng.random((frames // 20 + 1, c)) < 0.4
        labels = np.repeat(blocks, 20, axis=0)[:frames].astype(np.uint8)  # (frames, C)
        labels[:, -1] = 0
        scale = np.linspace(0.15, 0.45, c)  # some classes under-confident (best threshold < 0.5)
        probs = np.clip(labels * scale + rng.random((frames, c)) * 0.5, 0, 1).astype(np.float32)
        out.append(TrackPrediction(f"t{k}", probs, labels))
    return out


# ---------------------------------------------------------------- frame metrics and report


def test_report_frame_and_per_class_metrics_equal_sklearn() -> None:
    tracks = fake_tracks()
    rep = build_report(tracks, CLASSES, frame_seconds=0.05, median_window=1)
    truth = np.concatenate([t.labels for t in tracks])
    probs = np.concatenate([t.probs for t in tracks])
    pred = (probs >= 0.5).astype(np.uint8)
    f = rep["results"]["flat"]["frame"]
    present = [0, 1, 2, 3]  # E never plays: macro over present classes (metrics.py convention)
    assert f["f1_macro"] == pytest.approx(f1_score(truth, pred, labels=present, average="macro"))
    assert f["f1_micro"] == pytest.approx(f1_score(truth, pred, average="micro"))
    assert f["f1_weighted"] == pytest.approx(f1_score(truth, pred, average="weighted", zero_division=0))
    assert f["hamming_loss"] == pytest.approx(hamming_loss(truth, pred))
    assert f["jaccard_samples"] == pytest.approx(jaccard_score(truth, pred, average="samples", zero_division=1))
    p, r, f1, s = precision_recall_fscore_support(truth, pred, average=None, zero_division=0)
    for i, c in enumerate(CLASSES):
        pc = rep["results"]["flat"]["per_class"][c]
        assert (pc["precision"], pc["recall"], pc["f1"], pc["support"]) == pytest.approx((p[i], r[i], f1[i], s[i]))
        assert pc["predicted"] == int(pred[:, i].sum())
    rank = rep["ranking"]["per_class"]
    for i, c in enumerate(CLASSES[:4]):
        assert rank[c]["average_precision"] == pytest.approx(average_precision_score(truth[:, i], probs[:, i]))
        assert rank[c]["roc_auc"] == pytest.approx(roc_auc_score(truth[:, i], probs[:, i]))
    assert rank["E"] == {"average_precision": None, "roc_auc": None}  # no positives: undefined
    assert rep["ranking"]["average_precision_macro"] == pytest.approx(
        np.mean([average_precision_score(truth[:, i], probs[:, i]) for i in range(4)]))
    assert rep["n_frames"] == 900 and rep["n_tracks"] == 3 and rep["headline"] == "flat"


def test_mean_average_precision_hand_example_skips_absent_classes() -> None:
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    p = np.array([[0.9, 0.2, 0.5], [0.8, 0.7, 0.1], [0.1, 0.6, 0.9], [0.3, 0.1, 0.2]])
    # class 0: ranks 0.9 (hit), 0.8 (miss), 0.3 (miss), 0.1 (hit): AP = 1/2 * (1 + 2/4) = 0.75
    # class 1: ranks 0.7 (hit), 0.6 (hit): AP = 1; class 2 never plays: not in the mean
    assert mean_average_precision(y, p) == pytest.approx((0.75 + 1.0) / 2)
    assert np.isnan(mean_average_precision(np.zeros_like(y), p))


def test_per_class_hand_example_and_all_positive_class() -> None:
    labels = np.array([[1, 1], [1, 1], [0, 1], [0, 1]], dtype=np.uint8)
    probs = np.array([[0.9, 0.2], [0.4, 0.6], [0.7, 0.8], [0.1, 0.9]], dtype=np.float32)
    rep = build_report([TrackPrediction("x", probs, labels)], ["P", "Q"], 0.5)
    p = rep["results"]["flat"]["per_class"]["P"]  # TP 1, FN 1, FP 1
    assert (p["precision"], p["recall"], p["f1"], p["support"]) == (0.5, 0.5, 0.5, 2)
    q = rep["results"]["flat"]["per_class"]["Q"]  # TP 3, FN 1
    assert (q["precision"], q["recall"], q["f1"]) == pytest.approx((1.0, 0.75, 6 / 7))
    assert rep["ranking"]["per_class"]["Q"]["roc_auc"] is None  # no negative frame: undefined
    assert rep["ranking"]["per_class"]["Q"]["average_precision"] == pytest.approx(1.0)


def test_median_settings_filter_within_each_track() -> None:
    tracks = fake_tracks(seed=1)
    thr = np.array([0.3, 0.4, 0.5, 0.6, 0.3])  # E (never plays) gets false alarms
    rep = build_report(tracks, CLASSES, 0.05, median_window=5, tuned_thresholds=thr)
    assert list(rep["results"]) == ["flat", "flat_median", "tuned", "tuned_median"]
    assert rep["headline"] == "tuned_median"
    truth = np.concatenate([t.labels for t in tracks])
    for name, th, w in (("flat_median", 0.5, 5), ("tuned", thr, 1), ("tuned_median", thr, 5)):
        pred = np.concatenate([decide(t.probs, th, w) for t in tracks])
        assert rep["results"][name]["frame"] == pytest.approx(frame_metrics(truth, pred))
    # filtering the concatenation instead would differ at track joins: check it is per track
    joined = decide(np.concatenate([t.probs for t in tracks]), thr, 5)
    per_track = np.concatenate([decide(t.probs, thr, 5) for t in tracks])
    assert not np.array_equal(joined, per_track)
    assert rep["results"]["tuned_median"]["frame"] != pytest.approx(frame_metrics(truth, joined))
    text = render_report({**rep, "run": "R", "records": "S", "split": "test"})
    assert "tuned + median (5)" in text and f"{rep['results']['flat']['frame']['f1_macro']:.3f}" in text
    instrument_lines = text.split("Per instrument")[1].split("Top confusions")[0].splitlines()
    assert any(line.startswith("A ") for line in instrument_lines)
    assert not any(line.startswith("E ") for line in instrument_lines)  # absent: not a row
    absent = rep["results"]["tuned_median"]["per_class"]["E"]["predicted"]
    assert absent > 0 and f"Predicted but absent (frames): E {absent}" in text


# ---------------------------------------------------------------- segment metrics (sed_eval)


def _hand_rolls() -> tuple[np.ndarray, np.ndarray]:
    """3 segments of 4 frames (0.25 s frames), classes A B C.

    seg0: ref {A, B(only frame 3)}, est {A (only frame 1), C} -> TP1 FN1 FP1: S=1
    seg1: ref {A}, est {}                                    -> FN1:      D=1
    seg2: ref {}, est {B, C}                                 -> FP2:      I=2
    """
    ref = np.zeros((12, 3), np.uint8)
    est = np.zeros((12, 3), np.uint8)
    ref[0:4, 0] = 1
    ref[3, 1] = 1
    est[1, 0] = 1
    est[0:2, 2] = 1
    ref[4:8, 0] = 1
    est[8:12, 1] = 1
    est[10, 2] = 1
    return ref, est


def test_segment_metrics_hand_example() -> None:
    ref, est = _hand_rolls()
    assert segment_roll(ref, 0.25).tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert segment_roll(est, 0.25).tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 1]]
    m = segment_metrics([(ref, est)], frame_seconds=0.25)
    assert m["n_reference"] == 3 and m["n_segments"] == 3
    assert m["error_rate"] == pytest.approx(4 / 3)  # (S1 + D1 + I2) / N3
    assert m["substitution_rate"] == pytest.approx(1 / 3)
    assert m["deletion_rate"] == pytest.approx(1 / 3)
    assert m["insertion_rate"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 7)  # TP1 FP3 FN2
    assert m["precision"] == pytest.approx(1 / 4)
    assert m["recall"] == pytest.approx(1 / 3)
    # class-wise over classes in the reference: A F1 2/3 ER 1/2, B F1 0 ER 2
    assert m["f1_classwise"] == pytest.approx(1 / 3)
    assert m["error_rate_classwise"] == pytest.approx(1.25)


def test_segments_per_track_and_partial_last_segment() -> None:
    ref, est = _hand_rolls()
    roll = np.zeros((13, 1), np.uint8)
    roll[12] = 1  # a lone frame in the partial 4th segment
    assert segment_roll(roll, 0.25)[:, 0].tolist() == [0, 0, 0, 1]
    # two tracks of 10 and 6 frames: counts add up, segments never span a track boundary
    t1 = (ref[:10], est[:10])  # seg0 S1, seg1 D1, seg2 (frames 8-9): est B only -> I1
    t2 = (ref[:6], est[:6])  # seg0 S1, seg1 (frames 4-5): ref A only -> D1
    m = segment_metrics([t1, t2], 0.25)
    assert m["n_segments"] == 5 and m["n_reference"] == 6  # N 3 + 3
    assert m["error_rate"] == pytest.approx((2 + 2 + 1) / 6)  # S 1+1, D 1+1, I 1+0
    # concatenating the tracks would mix their frames in shared segments: not what we do
    joint = segment_metrics([(np.concatenate([t1[0], t2[0]]), np.concatenate([t1[1], t2[1]]))], 0.25)
    assert joint["n_segments"] == 4 and joint["error_rate"] == pytest.approx(1.0)


# ---------------------------------------------------------------- confusion analysis


def test_confusion_counts_hand_example(tmp_path: Path) -> None:
    truth = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 1, 0]], np.uint8)
    pred = np.array([[0, 1, 0], [0, 0, 1], [0, 1, 1], [0, 1, 1]], np.uint8)
    m = confusion_matrix(truth, pred)
    expected = np.array([[0, 2, 2], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(m, expected)
    pairs = top_pairs(m, ["A", "B", "C"], k=5)
    assert pairs == [("A", "B", 2), ("A", "C", 2), ("B", "C", 1)]
    assert top_pairs(m, ["A", "B", "C"], k=1) == [("A", "B", 2)]
    path = write_pairs_csv(tmp_path / "confusion.csv", pairs)
    assert path.read_text().splitlines()[0] == "True,Predicted,Count"
    assert read_pairs_csv(path) == pairs


# ---------------------------------------------------------------- thresholds


@pytest.mark.parametrize("window", [1, 3])
def test_tuned_thresholds_never_lower_validation_f1(window: int) -> None:
    val = fake_tracks(seed=2, n_tracks=4)
    tuned = tune_thresholds([t.pair for t in val], median_window=window)
    assert tuned.thresholds[-1] == 0.5  # class E absent in validation keeps 0.5
    assert np.any(tuned.thresholds[:-1] != 0.5)  # the under-confident classes move
    truth = np.concatenate([t.labels for t in val])
    flat = np.concatenate([decide(t.probs, 0.5, window) for t in val])
    best = np.concatenate([decide(t.probs, tuned.thresholds, window) for t in val])
    f_flat = f1_score(truth, flat, average=None, zero_division=0)
    f_best = f1_score(truth, best, average=None, zero_division=0)
    assert np.all(f_best >= f_flat - 1e-12)
    np.testing.assert_allclose(f_best[:-1], tuned.f1_tuned[:-1])
    np.testing.assert_allclose(f_flat[:-1], tuned.f1_flat[:-1])
    assert frame_metrics(truth, best)["f1_macro"] > frame_metrics(truth, flat)["f1_macro"]


@pytest.mark.parametrize("window", [1, 3, 5])
def test_candidate_counts_equal_decide_per_candidate(window: int) -> None:
    """The fast tuning path (filter probabilities once) equals thresholding then filtering."""
    tracks = [t.pair for t in fake_tracks(seed=3, n_tracks=2, frames=120)]
    tracks = [(np.round(p, 2).astype(np.float32), lab) for p, lab in tracks]  # ties at candidates
    tp, fp, fn = candidate_counts(tracks, CANDIDATES, window)
    for k in (0, 9, 29, 49, 70, 98):
        ref = class_counts(tracks, float(CANDIDATES[k]), window)
        np.testing.assert_array_equal(tp[k], ref[0])
        np.testing.assert_array_equal(fp[k], ref[1])
        np.testing.assert_array_equal(fn[k], ref[2])


def test_tuning_keeps_half_when_nothing_beats_it() -> None:
    labels = np.array([[1], [1], [0], [0]], np.uint8)
    probs = np.array([[0.9], [0.8], [0.1], [0.2]], np.float32)  # 0.5 is already perfect
    tuned = tune_thresholds([(probs, labels)])
    assert tuned.thresholds.tolist() == [0.5] and tuned.f1_tuned.tolist() == [1.0]
    tp, fp, fn = class_counts([(probs, labels)], 0.85)
    assert (tp[0], fp[0], fn[0]) == (1, 0, 1)
    assert f1_from_counts(tp, fp, fn)[0] == pytest.approx(2 / 3)


def test_thresholds_file_round_trip(tmp_path: Path) -> None:
    save_thresholds(tmp_path, CLASSES, np.array([0.1, 0.2, 0.5, 0.7, 0.5]), 5)
    data = json.loads((tmp_path / "thresholds.json").read_text())
    assert data == {"classes": CLASSES, "thresholds": [0.1, 0.2, 0.5, 0.7, 0.5], "median_window": 5}
    thr, window = load_thresholds(tmp_path, CLASSES)
    assert thr.tolist() == [0.1, 0.2, 0.5, 0.7, 0.5] and window == 5
    assert load_thresholds(tmp_path / "nothing") is None
    with pytest.raises(ValueError, match="classes differ"):
        load_thresholds(tmp_path, CLASSES[:4])


def test_predictions_round_trip(tmp_path: Path) -> None:
    tracks = fake_tracks(n_tracks=2, frames=50)
    save_predictions(tmp_path / "p.npz", tracks, CLASSES)
    back, classes = load_predictions(tmp_path / "p.npz")
    assert classes == CLASSES and [t.track_id for t in back] == ["t0", "t1"]
    np.testing.assert_allclose(back[1].probs, tracks[1].probs, atol=1e-3)  # float16 storage
    np.testing.assert_array_equal(back[1].labels, tracks[1].labels)


# ---------------------------------------------------------------- error cases


def _fake_run(path: Path, classes: list[str] | None = None, model: bool = True) -> Path:
    path.mkdir(parents=True)
    cfg = {"model_name": "mlp", "feature_config": FeatureConfig().to_dict(),
           "classes": list(classes or AAM_CLASSES)}
    (path / "config.json").write_text(json.dumps(cfg))
    if model:
        (path / "model.keras").write_bytes(b"not a model")
    return path


def _fake_records(path: Path, feature: FeatureConfig | None = None, classes: list[str] | None = None,
                  splits: dict | None = None) -> Path:
    path.mkdir(parents=True)
    manifest = {"feature_config": (feature or FeatureConfig()).to_dict(),
                "classes": list(classes or AAM_CLASSES),
                "splits": splits if splits is not None else {"train": ["1"], "val": [], "test": ["2"]}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    from iad_tf.evaluation.inference import check_records, open_run, split_track_ids

    with pytest.raises(ValueError, match="no model.keras"):
        open_run(_fake_run(tmp_path / "nomodel", model=False))
    with pytest.raises(ValueError, match="no config.json"):
        open_run(tmp_path)
    run = open_run(_fake_run(tmp_path / "run"))
    with pytest.raises(ValueError, match="hop_length: expected 512, .* has 256"):
        check_records(run, _fake_records(tmp_path / "r1", feature=FeatureConfig(hop_length=256)))
    with pytest.raises(ValueError, match="classes: expected 31"):
        check_records(run, _fake_records(tmp_path / "r2", classes=list(AAM_CLASSES[:30])))
    manifest = check_records(run, _fake_records(tmp_path / "ok"))
    with pytest.raises(ValueError, match="split 'val' is empty"):
        split_track_ids(manifest, tmp_path / "ok", "val")
    assert split_track_ids(manifest, tmp_path / "ok", "test") == ["2"]


def test_cli_errors_are_one_line_messages(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iad_tf.cli.main import cli

    run = _fake_run(tmp_path / "nomodel", model=False)
    rec = _fake_records(tmp_path / "rec")
    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(rec)])
    assert res.exit_code == 1 and "no model.keras" in res.output and "Traceback" not in res.output
    run2 = _fake_run(tmp_path / "run")
    rec2 = _fake_records(tmp_path / "rec2", splits={"train": ["1"], "test": []})
    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run2), "--records", str(rec2)])
    assert res.exit_code == 1 and "split 'test' is empty" in res.output
    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run2), "--records", str(rec), "--median-window", "4"])
    assert res.exit_code == 1 and "odd" in res.output
    res = CliRunner().invoke(cli, ["plot", "--run", str(run2)])
    assert res.exit_code == 1 and "metrics.json" in res.output


# ---------------------------------------------------------------- end to end (TF)


def test_evaluate_end_to_end_on_tiny_run(tiny_aam: Path, tmp_path: Path) -> None:
    """tiny AAM -> records -> 1-epoch tiny MLP -> evaluate/plot/compare through the CLI."""
    from click.testing import CliRunner

    from iad_tf.cli.main import cli
    from iad_tf.data.build import BuildOptions, build_records
    from iad_tf.data.records import load_track
    from iad_tf.evaluation.inference import load_model, make_predictor, open_run, track_probs
    from iad_tf.training.config import ModelConfig, TrainConfig
    from iad_tf.training.fit import fit

    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"train": ["0001", "0002"], "val": ["0003"], "test": ["0004"]}))
    records = tmp_path / "records"
    build_records([tiny_aam], records, BuildOptions(split_file=split_file, progress=False))
    run = tmp_path / "run"
    fit(records, run, "mlp",
        TrainConfig(epochs=1, batch_size=2, window_seconds=2.0, augment=False, oversample_factor=1.0),
        ModelConfig(mlp_units=(16,), mlp_context=1), verbose=0)

    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(records),
                                   "--median-window", "3"])
    assert res.exit_code == 0, res.output
    rep = json.loads((run / "metrics.json").read_text())
    assert rep["split"] == "test" and rep["tracks"] == ["0004"] and rep["median_window"] == 3
    assert list(rep["results"]) == ["flat", "flat_median", "tuned", "tuned_median"]
    thr = json.loads((run / "thresholds.json").read_text())
    assert thr["classes"] == list(AAM_CLASSES) and thr["median_window"] == 3
    assert rep["results"]["tuned"]["thresholds"] == thr["thresholds"]
    assert rep["tuning"]["f1_macro_tuned"] >= rep["tuning"]["f1_macro_flat"]

    # the saved probabilities are the model's on the test track; the report scores them
    track = load_track(records, "0004")
    model = load_model(open_run(run))
    expected = track_probs(make_predictor(model, 128), track["mel"])
    chunked = track_probs(make_predictor(model, 128), track["mel"], chunk_frames=100)
    inner = np.arange(len(expected)) % 100 % 99 != 0  # the MLP sees +-1 frame: chunk edges differ
    np.testing.assert_allclose(chunked[inner], expected[inner], atol=1e-5)
    saved, _ = load_predictions(run / "predictions.npz")
    np.testing.assert_allclose(saved[0].probs, expected, atol=1e-3)
    np.testing.assert_array_equal(saved[0].labels, track["labels"])
    pred = decide(expected, np.array(thr["thresholds"]), 3)
    assert rep["results"]["tuned_median"]["frame"] == pytest.approx(frame_metrics(track["labels"], pred), abs=1e-3)
    f1_line = f"{rep['results']['flat']['frame']['f1_macro']:.3f}"
    assert f1_line in res.output and "Per instrument" in res.output

    plots = run / "plots"
    expected_pngs = {"training_curves.png", "f1_per_instrument.png", "confusion.png", "rolls/0004.png"}
    assert {str(p.relative_to(plots)) for p in plots.rglob("*.png")} == expected_pngs
    for p in plots.rglob("*.png"):
        p.unlink()
    res = CliRunner().invoke(cli, ["plot", "--run", str(run)])  # redraw without the model
    assert res.exit_code == 0, res.output
    assert {str(p.relative_to(plots)) for p in plots.rglob("*.png")} == expected_pngs
    res = CliRunner().invoke(cli, ["compare", str(run)])
    assert res.exit_code == 0 and f"{rep['results']['tuned_median']['frame']['f1_macro']:.3f}" in res.output

    # a cv decoder copied into the run (README step 2b) is what export ships: evaluate never
    # re-tunes over it unless asked (it used to replace it, gate and all, by default)
    decoder = {"classes": list(AAM_CLASSES), "thresholds": [0.35] * len(AAM_CLASSES),
               "median_window": 5, "presence": {"threshold": 0.6, "seconds": 3.0}}
    (run / "thresholds.json").write_text(json.dumps(decoder))
    before = (run / "thresholds.json").read_bytes()
    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(records),
                                   "--no-plots"])
    assert res.exit_code == 0, res.output
    assert f"scoring with the run's {run / 'thresholds.json'}" in res.output
    assert (run / "thresholds.json").read_bytes() == before
    assert json.loads((run / "metrics.json").read_text())["median_window"] == 5
    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(records),
                                   "--tune", "--no-plots"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"{run / 'thresholds.json'} exists (thresholds and a presence gate" in res.output
    assert "--tune --overwrite" in res.output
    assert (run / "thresholds.json").read_bytes() == before
    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(records),
                                   "--tune", "--overwrite", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "presence" not in json.loads((run / "thresholds.json").read_text())


def test_global_threshold_maximises_micro_f1_and_never_lowers_it() -> None:
    from sklearn.metrics import f1_score

    from iad_tf.evaluation.thresholds import tune_global_threshold

    rng = np.random.default_rng(3)
    labels = (rng.random((400, 6)) < 0.3).astype(np.uint8)
    probs = np.clip(0.25 * labels + rng.random((400, 6)) * 0.6, 0, 1).astype(np.float32)
    tracks = [(probs[:200], labels[:200]), (probs[200:], labels[200:])]
    t = tune_global_threshold(tracks, median_window=1)
    assert np.all(t.thresholds == t.thresholds[0])
    chosen = f1_score(labels, (probs >= t.thresholds[0]).astype(int), average="micro")
    flat = f1_score(labels, (probs >= 0.5).astype(int), average="micro")
    brute = max(f1_score(labels, (probs >= c).astype(int), average="micro")
                for c in np.round(np.arange(1, 100) / 100, 2))
    assert chosen >= flat - 1e-12
    assert chosen == pytest.approx(brute, abs=1e-9)
