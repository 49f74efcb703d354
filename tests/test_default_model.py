"""The default model resolves from an installed wheel (not only from a source checkout), and
a missing default model gives a clear message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from iad_tf.inference import default_model
from iad_tf.inference.default_model import DEFAULT_MODEL_NAME

REPO = Path(__file__).resolve().parents[1]


def _copy_source(dest: Path) -> Path:
    """The files a wheel is built from, copied (symlinks kept) so the checkout stays clean."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("iad_tf", "tfrecords_tools", "saved_models"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name, symlinks=True, ignore=ignore)
    (dest / "saved_models").mkdir(exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    return dest


def _isolation() -> list[str]:
    """Build without isolation when the installed setuptools reads this pyproject (PEP 639
    ``license = "MIT"`` needs setuptools >= 77); else let pip fetch a current one."""
    import setuptools

    major = int(setuptools.__version__.split(".")[0])
    return ["--no-build-isolation"] if major >= 77 else []


def test_default_model_resolves_from_an_installed_wheel(tmp_path: Path) -> None:
    src = _copy_source(tmp_path / "src")
    shipped = (src / "saved_models" / DEFAULT_MODEL_NAME).is_file()
    if not shipped:  # before a default model is shipped, stand one in (the hand-wired detector)
        from tests.detector_model import export_detector

        built = export_detector(tmp_path / "detector", name=Path(DEFAULT_MODEL_NAME).stem)
        for p in (built, built.with_suffix(".json")):
            shutil.copy(p, src / "saved_models" / p.name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            *_isolation(),
            "-q",
            str(src),
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("iad_tf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    stem = Path(DEFAULT_MODEL_NAME).stem
    assert (
        f"iad_tf/default_model/{stem}.tflite" in names
        and f"iad_tf/default_model/{stem}.json" in names
    )
    # the converted musicnn weights and their license travel with the package (musicnn_crnn)
    assert {"musicnn_mtt.npz", "musicnn_msd.npz", "LICENSE-musicnn.md"} <= {
        n.split("/")[-1] for n in names if n.startswith("iad_tf/pretrained/")
    }

    site = tmp_path / "site"  # the installed package: the unpacked wheel, first on sys.path
    zipfile.ZipFile(wheel).extractall(site)
    from tests.detector_model import write_song

    song = write_song(tmp_path / "song.wav", {"Flute": [(0.5, 1.5)]}, 2.0)
    code = (
        "import sys, iad_tf\n"
        "from iad_tf.inference.default_model import default_model_path\n"
        "print('PACKAGE', iad_tf.__file__)\n"
        "print('MODEL', default_model_path())\n"
        "from iad_tf.cli.main import cli\n"
        f"cli(['predict', {str(song)!r}, '--out', 'out'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-2000:]
    lines = dict(
        ln.split(" ", 1) for ln in proc.stdout.splitlines() if ln.startswith(("PACKAGE", "MODEL"))
    )
    assert Path(lines["PACKAGE"]).is_relative_to(site)  # the wheel's copy, not the checkout
    assert Path(lines["MODEL"]) == site / "iad_tf" / "default_model" / DEFAULT_MODEL_NAME
    result = json.loads((tmp_path / "out" / "song.json").read_text())
    assert result["model"] == lines["MODEL"]
    if not shipped:  # the stand-in detector's answer is known
        assert {s["instrument"] for s in result["segments"]} == {"Flute"}


def test_missing_default_model_is_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iad_tf.cli.main import cli

    monkeypatch.setattr(
        default_model,
        "default_model_candidates",
        lambda: [tmp_path / "pkg" / DEFAULT_MODEL_NAME, tmp_path / "repo" / DEFAULT_MODEL_NAME],
    )
    (tmp_path / "a.wav").write_bytes(b"")
    res = CliRunner().invoke(cli, ["predict", str(tmp_path / "a.wav")])
    assert res.exit_code == 1
    assert "no default model found" in res.output and "--model FILE" in res.output
    assert (
        str(tmp_path / "pkg" / DEFAULT_MODEL_NAME) in res.output and "Traceback" not in res.output
    )


def test_ship_default_installs_a_loadable_model(tmp_path: Path) -> None:
    from iad_tf.export.ship import ship_default
    from iad_tf.inference.embedded import embed_metadata, read_embedded_file
    from iad_tf.inference.litert import load_model
    from tests.detector_model import export_detector

    built = export_detector(tmp_path / "export", name="detector")
    target = ship_default(built, tmp_path / "saved_models")
    assert target == tmp_path / "saved_models" / DEFAULT_MODEL_NAME
    shipped = json.loads(target.with_suffix(".json").read_text())
    # the same graph, with the metadata (now recording its origin) embedded as in the sidecar
    assert target.read_bytes() == embed_metadata(built.read_bytes(), shipped)
    assert read_embedded_file(target) == shipped
    model = load_model(target)
    assert model.metadata.model["shipped_from"] == built.name and not model.notes
    # no machine path of the exporting host survives in the published metadata
    assert str(tmp_path) not in target.with_suffix(".json").read_text()
    assert model.metadata.classes == load_model(built).metadata.classes


@pytest.mark.sample
def test_shipped_model_reproduces_its_validation_score_from_raw_audio(aam_sample: Path) -> None:
    """The shipped model, run through the predict path on the validation tracks' mp3s, scores
    what its metadata records (export measured it on the float16 records of the same audio)."""
    import numpy as np

    from iad_tf.aam.dataset import discover
    from iad_tf.data.build import process_track
    from iad_tf.inference.default_model import default_model_path
    from iad_tf.inference.litert import load_model
    from iad_tf.inference.predict import predict_audio
    from iad_tf.metrics import frame_metrics

    shipped = REPO / "saved_models" / DEFAULT_MODEL_NAME
    if not shipped.is_file():
        pytest.skip("no default model shipped yet")
    model = load_model(default_model_path())
    md = model.metadata
    val = md.validation
    mode = md.quantization["mode"]
    tracks = {t.track_id: t for t in discover([aam_sample])[0]}
    if not set(val["tracks"]) <= set(tracks):
        pytest.skip(f"validation tracks {val['tracks']} are not in {aam_sample}")
    truth, pred = [], []
    for tid in val["tracks"]:
        arrays = process_track(
            tracks[tid], md.feature_config, labels=md.training_data.get("labels", "onsets")
        )
        song = predict_audio(tracks[tid].audio, model)
        assert song.decisions.shape == arrays["labels"].shape
        truth.append(arrays["labels"])
        pred.append(song.decisions)
    f1 = frame_metrics(np.concatenate(truth), np.concatenate(pred))
    assert f1["f1_micro"] == pytest.approx(val[f"tflite_{mode}"]["f1_micro"], abs=0.01)
    assert f1["f1_macro"] == pytest.approx(val[f"tflite_{mode}"]["f1_macro"], abs=0.01)
