"""musicnn under our detector: weight conversion, the original package's taggram, the
``musicnn`` feature configuration, a feature mismatch, an end-to-end fit of musicnn_crnn on
tiny real-audio records and its TFLite export parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.config import FEATURE_CONFIGS, FeatureConfig
from iad_tf.training import musicnn as M

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "musicnn_reference.npz"
MUSICNN = FEATURE_CONFIGS["musicnn"]


# ------------------------------------------------------------------ weights and reference
@pytest.mark.parametrize("weights", ["mtt", "msd"])
def test_weight_conversion_uses_every_variable_once(weights: str) -> None:
    arrays = M.load_weights(weights)
    assert len(arrays) == 64  # 11 batch norms x 4 + 8 convs x 2 + 2 dense x 2
    used = M.assign_musicnn_weights(M.build_musicnn_tagger_bare(), arrays, ("front", "mid", "back"))
    assert sorted(used) == sorted(arrays) and len(set(used)) == len(used)
    model = M.build_musicnn_tagger_bare()
    M.assign_musicnn_weights(model, arrays, ("front", "mid", "back"))
    np.testing.assert_array_equal(
        model.get_layer("musicnn_mid0_conv").get_weights()[0], arrays["conv2d_5/kernel"][:, :, 0]
    )
    assert model.count_params() == sum(a.size for a in arrays.values())
    # front + mid only: the back end's variables are known but left unused
    front_mid = M.assign_musicnn_weights(M.build_musicnn_tagger_bare(), arrays, ("front", "mid"))
    assert not any(k.startswith(("dense", "batch_normalization_9/")) for k in front_mid)


def test_weight_conversion_rejects_bad_checkpoints() -> None:
    arrays = M.load_weights("mtt")
    model = M.build_musicnn_tagger_bare()
    parts = ("front", "mid", "back")
    with pytest.raises(M.WeightsError, match=r"conv2d_8/kernel"):
        M.assign_musicnn_weights(model, {**arrays, "conv2d_8/kernel": np.zeros(3)}, parts)
    bad = {**arrays, "conv2d/kernel": arrays["conv2d/kernel"][:, :30]}
    with pytest.raises(M.WeightsError, match=r"conv2d/kernel: shape \(7, 30, 1, 204\)"):
        M.assign_musicnn_weights(model, bad, parts)
    missing = {k: v for k, v in arrays.items() if k != "dense_1/bias"}
    with pytest.raises(M.WeightsError, match="dense_1/bias: missing"):
        M.assign_musicnn_weights(model, missing, parts)


def test_read_checkpoint_drops_optimizer_state(tmp_path: Path) -> None:
    """A TF1 checkpoint written like musicnn's (Saver, '<dir>/' prefix, Adam slots, stale
    ``checkpoint`` file) reads back to exactly the model variables."""
    import tensorflow as tf

    from iad_tf.pretrained.convert import read_checkpoint

    arrays = {k: v for k, v in M.load_weights("msd").items() if k.startswith("conv2d_7/")}
    with tf.Graph().as_default():
        variables = [
            tf.compat.v1.Variable(v, name=k.replace("/", "_s_")) for k, v in arrays.items()
        ]
        extra = {
            "beta1_power": tf.compat.v1.Variable(0.9, name="b1"),
            "conv2d_7/kernel/Adam": tf.compat.v1.Variable(np.zeros((7, 64, 1, 64), np.float32)),
        }
        var_list = {k: v for k, v in zip(arrays, variables, strict=True)} | extra
        saver = tf.compat.v1.train.Saver(var_list=var_list)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, f"{tmp_path}/", write_meta_graph=False, write_state=False)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/home/someone/gone/"\n')
    got = read_checkpoint(tmp_path)
    assert sorted(got) == sorted(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
    with pytest.raises(ValueError, match="no musicnn checkpoint"):
        read_checkpoint(tmp_path / "nowhere")


@pytest.mark.parametrize("weights", ["mtt", "msd"])
def test_reimplementation_matches_original_taggram(weights: str) -> None:
    """bench/musicnn_reference.py ran the original musicnn graph on a real AAM excerpt."""
    import keras

    ref = np.load(REFERENCE)
    x = ref["input"].astype(np.float32)  # (2, 187, 96)
    model = M.build_musicnn_tagger(weights, frames=x.shape[1])
    tags = np.asarray(model(x, training=False))
    np.testing.assert_allclose(tags, ref[f"{weights}_taggram"], atol=1e-4)
    features = keras.Model(model.input, model.get_layer("musicnn_features").output)
    f = np.asarray(features(x, training=False))  # (2, 187, 753)
    np.testing.assert_allclose(f.mean(axis=1), ref[f"{weights}_mean_pool"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f.max(axis=1), ref[f"{weights}_max_pool"], rtol=1e-4, atol=1e-4)
    assert np.ptp(tags, axis=1).min() > 0.3  # real tags, not a flat output


def test_musicnn_features_match_librosa_reference(aam_sample: Path) -> None:
    """Our numpy front end under the ``musicnn`` config = the reference script's librosa input."""
    from iad_tf.audio import load_audio, logmel

    ref = np.load(REFERENCE)
    info = json.loads(str(ref["info"]))
    y = load_audio(aam_sample / info["audio"], MUSICNN.sample_rate)
    excerpt = y[info["start_sample"] : info["start_sample"] + info["n_samples"]]
    ours = logmel(excerpt, MUSICNN)  # (374, 96)
    want = ref["input"].astype(np.float32).reshape(-1, 96)
    assert ours.shape == want.shape
    # the reference is rounded to float16 (values up to ~4: steps of <= 2e-3)
    np.testing.assert_allclose(ours, want, atol=5e-3)


# ------------------------------------------------------------------ feature configurations
def test_feature_config_names_and_old_dicts() -> None:
    from iad_tf.inference.metadata import ModelMetadata
    from iad_tf.inference.windows import silence_db

    old = FeatureConfig().to_dict()
    for key in ("name", "compression", "log_gain"):
        old.pop(key)
    assert FeatureConfig.from_dict(old) == FEATURE_CONFIGS["logmel"]  # pre-name manifests
    # a sidecar written before feature configs had names (the shipped one, names removed)
    meta = json.loads((REPO / "saved_models" / "iad_tf_crnn.json").read_text())
    for key in ("name", "compression", "log_gain"):
        meta["feature_config"].pop(key, None)
    md = ModelMetadata.from_dict(meta)
    assert md.feature_config == FEATURE_CONFIGS["logmel"]
    assert (MUSICNN.sample_rate, MUSICNN.n_fft, MUSICNN.hop_length, MUSICNN.n_mels) == (
        16000,
        512,
        256,
        96,
    )
    assert silence_db(MUSICNN) == 0.0 and silence_db(FeatureConfig()) == -100.0
    with pytest.raises(ValueError, match="compression must be one of"):
        FeatureConfig(compression="ln")


# ------------------------------------------------------------------ end to end on tiny audio
@pytest.fixture(scope="module")
def musicnn_records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from iad_tf.cli.build_records import build_records as build_cmd
    from tests.tiny_aam import make_tiny_aam

    tmp = tmp_path_factory.mktemp("musicnn")
    root = make_tiny_aam(tmp / "aam", n_tracks=4, seconds=4.0, seed=5)
    split = tmp / "split.json"
    split.write_text(json.dumps({"train": ["0001", "0002", "0003"], "val": ["0004"]}))
    paths = {}
    for name in ("musicnn", "logmel"):
        out = tmp / f"records_{name}"
        res = CliRunner().invoke(
            build_cmd,
            [
                "--aam-root",
                str(root),
                "--out",
                str(out),
                "--features",
                name,
                "--split-file",
                str(split),
                "--workers",
                "1",
            ],
        )
        assert res.exit_code == 0, res.output
        paths[name] = out
    return paths | {"tmp": tmp}


def test_musicnn_records_on_their_frame_grid(musicnn_records: dict[str, Path]) -> None:
    from iad_tf.data.records import load_track
    from tfrecords_tools.reader import read_manifest

    m = read_manifest(musicnn_records["musicnn"])
    assert m["feature_config"] == MUSICNN.to_dict()
    t = load_track(musicnn_records["musicnn"], "0001")
    n_frames = 1 + int(4.0 * 16000) // 256  # 16 kHz, hop 256
    assert t["mel"].shape == (n_frames, 96) and t["labels"].shape == (n_frames, 31)
    assert t["mel"].min() >= 0.0 and t["mel"].max() < 8.0  # log10(1 + 10000 S)
    default = load_track(musicnn_records["logmel"], "0001")
    # the same activity on both grids: label fraction agrees within a few frames' worth
    assert abs(t["labels"].mean(axis=0) - default["labels"].mean(axis=0)).max() < 0.05


def test_feature_mismatch_between_records_and_model_is_a_clear_error(
    musicnn_records: dict[str, Path], tmp_path: Path
) -> None:
    from iad_tf.cli.main import cli

    res = CliRunner().invoke(
        cli,
        [
            "fit",
            "--model",
            "musicnn_crnn",
            "--records",
            str(musicnn_records["logmel"]),
            "--run-dir",
            str(tmp_path / "run"),
            "--epochs",
            "1",
        ],
    )
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "musicnn_crnn needs records built with `build-records --features musicnn`" in res.output
    assert "name: expected 'musicnn'" in res.output and not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def musicnn_run(musicnn_records: dict[str, Path]) -> Path:
    from iad_tf.cli.main import cli

    run = musicnn_records["tmp"] / "run"
    res = CliRunner().invoke(
        cli,
        [
            "fit",
            "--model",
            "musicnn_crnn",
            "--records",
            str(musicnn_records["musicnn"]),
            "--run-dir",
            str(run),
            "--epochs",
            "2",
            "--batch-size",
            "2",
            "--window-seconds",
            "1.5",
            "--learning-rate",
            "3e-3",
        ],
    )
    assert res.exit_code == 0, res.output
    return run


def test_fit_musicnn_crnn_end_to_end(musicnn_run: Path, musicnn_records: dict[str, Path]) -> None:
    from iad_tf.evaluation.inference import check_records, load_model, open_run

    cfg = json.loads((musicnn_run / "config.json").read_text())
    assert cfg["model_name"] == "musicnn_crnn" and cfg["feature_config"] == MUSICNN.to_dict()
    assert cfg["model"]["musicnn_weights"] == "mtt" and cfg["window_frames"] == 94
    rows = [json.loads(line) for line in (musicnn_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)
    run = open_run(musicnn_run)
    model = load_model(run)
    arrays = M.load_weights("mtt")
    # frozen: the pretrained layers still hold musicnn's weights after training
    np.testing.assert_array_equal(
        model.get_layer("musicnn_timbral0_conv").get_weights()[0], arrays["conv2d/kernel"]
    )
    np.testing.assert_array_equal(
        model.get_layer("musicnn_mid2_bn").get_weights()[2],
        arrays["batch_normalization_8/moving_mean"],
    )
    assert model.get_layer("musicnn_mid2_conv").trainable is False
    with pytest.raises(ValueError, match="name: expected 'musicnn'"):
        check_records(run, musicnn_records["logmel"])  # evaluate/export on the wrong records


def test_finetuned_blocks_train_at_a_lower_rate(musicnn_records: dict[str, Path]) -> None:
    import keras

    from iad_tf.training.config import ModelConfig, TrainConfig
    from iad_tf.training.models import build_model
    from iad_tf.training.optimizers import ScaledAdam, make_optimizer

    cfg = ModelConfig(n_mels=96, gru_units=4, musicnn_finetune_blocks=1)
    model = build_model("musicnn_crnn", cfg)
    trainable = {v.path.split("/")[0] for v in model.trainable_variables}
    assert "musicnn_mid2_conv" in trainable and "musicnn_mid1_conv" not in trainable
    assert not any(n.endswith("_bn") for n in trainable)
    opt = make_optimizer(TrainConfig(learning_rate=1e-2, finetune_lr_scale=0.1), model)
    assert isinstance(opt, ScaledAdam)
    model.compile(opt, keras.losses.BinaryCrossentropy(from_logits=True))
    before = {w.path: np.array(w) for w in model.trainable_variables}
    x = np.random.default_rng(0).uniform(0, 3, (2, 40, 96)).astype(np.float32)
    model.train_on_batch(x, np.ones((2, 40, 31), np.float32))
    step = {
        p: np.abs(np.array(w) - before[p]).max()
        for p, w in ((w.path, w) for w in model.trainable_variables)
    }
    # Adam's first step moves each weight by ~lr: 1e-2 in the head, 1e-3 in the tuned block
    assert 5e-3 < step["logits/kernel"] <= 1.01e-2
    assert 5e-4 < step["musicnn_mid2_conv/kernel"] <= 1.01e-3
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert (restored.scaled_prefix, restored.scale) == ("musicnn_", 0.1)


@pytest.mark.slow
def test_musicnn_crnn_tflite_export_parity(
    musicnn_run: Path, musicnn_records: dict[str, Path]
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from iad_tf.evaluation.inference import load_model, open_run
    from iad_tf.export.data import read_tracks
    from iad_tf.export.pipeline import ExportSettings
    from iad_tf.export.run import export_run
    from iad_tf.inference.windows import make_windows, silence_db
    from tfrecords_tools.reader import read_manifest

    out = musicnn_records["tmp"] / "export"
    result = export_run(
        musicnn_run, out, settings=ExportSettings(quantize="none"), window_frames=64
    )
    assert all(c.passed for c in result.checks), result.checks
    md = json.loads((out / "model.json").read_text())
    assert md["feature_config"] == MUSICNN.to_dict() and md["window_frames"] == 64
    assert md["model"]["architecture"] == "musicnn_crnn"

    records = musicnn_records["musicnn"]
    _, mel, _ = read_tracks(records, "val", read_manifest(records))[0]
    windows, _ = make_windows(mel, 64, 48, silence_db(MUSICNN))  # (N, 64, 96)
    model = load_model(open_run(musicnn_run))
    ref = 1.0 / (1.0 + np.exp(-np.asarray(model(windows, training=False), np.float64)))
    interp = Interpreter(model_path=str(out / "model.tflite"))
    ops = {d["op_name"] for d in interp._get_ops_details()}
    assert not any("Flex" in o or o == "CUSTOM" for o in ops)  # builtin ops only
    runner = interp.get_signature_runner("serving_default")
    got = np.concatenate([runner(mel=w[None])["probs"] for w in windows])
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert np.ptp(ref) > 0.01

    # predict computes the front end the model's metadata names: musicnn's 16 kHz grid
    from iad_tf.audio import load_audio
    from iad_tf.inference.litert import load_model as load_tflite
    from iad_tf.inference.predict import predict_audio

    song = next((musicnn_records["tmp"] / "aam").rglob("0004_mix.*"))
    pred = predict_audio(song, load_tflite(out / "model.tflite", threads=1))
    n_samples = load_audio(song, 16000).shape[0]
    assert pred.probs.shape == (1 + n_samples // 256, 31)
    assert pred.duration_s == pytest.approx(4.0, abs=0.01)


def test_musicnn_options_from_toml_and_bad_values(tmp_path: Path) -> None:
    from iad_tf.training.config import ModelConfig, TrainConfig, load_toml

    toml = tmp_path / "msd.toml"
    toml.write_text('[model]\nmusicnn_weights = "msd"\nmusicnn_finetune_blocks = 2\n')
    cfg = load_toml(toml)
    assert (cfg.model.musicnn_weights, cfg.model.musicnn_finetune_blocks) == ("msd", 2)
    assert cfg.feature is None  # no [feature] table: the records' own named config
    with pytest.raises(ValueError, match="musicnn_weights must be one of"):
        ModelConfig(musicnn_weights="vgg")
    with pytest.raises(ValueError, match="musicnn_finetune_blocks must be in 0..3"):
        ModelConfig(musicnn_finetune_blocks=4)
    with pytest.raises(ValueError, match="finetune_lr_scale"):
        TrainConfig(finetune_lr_scale=0.0)
