"""Issue 11, predict: an unwritable --out fails before decoding, empty or non-audio files say
so, a Keras model is refused with "export it first", each failure is printed once, and the
median window has an upper bound. Uses the shipped default model (LiteRT, no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.audio import AudioError, load_audio
from iad_tf.cli.main import cli

REPO = Path(__file__).resolve().parents[1]


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.output


@pytest.fixture
def song(tmp_path: Path) -> Path:
    path = tmp_path / "song.wav"
    t = np.arange(22050 * 2) / 22050
    sf.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
    return path


def test_unwritable_out_fails_before_any_decoding(
    song: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iad_tf.inference.predict as predict

    decoded: list[Path] = []
    real = predict.predict_audio

    def spy(path: Path, *args: object, **kwargs: object) -> object:
        decoded.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(predict, "predict_audio", spy)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should go")
    code, out = invoke("predict", str(song), "--out", str(blocker / "preds"))
    assert code == 1 and f"--out {blocker / 'preds'}: cannot write there" in out
    assert decoded == []


def test_empty_and_non_audio_files_say_what_they_are(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("hello, not audio\n" * 20)
    with pytest.raises(AudioError) as err:
        load_audio(empty, 22050)
    assert str(err.value) == f"{empty}: cannot decode audio: empty file (0 bytes)"
    with pytest.raises(AudioError) as err:
        load_audio(text, 22050)
    assert "not an mp3/flac/wav/ogg file, or corrupt" in str(err.value)
    assert "does not exist" not in str(err.value)


def test_each_predict_failure_is_printed_once(song: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.flac"
    code, out = invoke(
        "predict", str(song), str(empty), str(missing), "--out", str(tmp_path / "out")
    )
    assert code == 1 and "2 path(s) failed, 1 succeeded" in out
    assert out.count(str(empty)) == 1 and out.count(str(missing)) == 1
    assert "empty file (0 bytes)" in out and "no such file or directory" in out
    assert "\r" not in out  # not a terminal: no progress bar redrawn with carriage returns


def test_keras_model_is_refused_with_export_it_first(song: Path, tmp_path: Path) -> None:
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"PK\x03\x04 pretend")
    for model in (keras_file, tmp_path):  # a .keras file, or a SavedModel folder
        code, out = invoke(
            "predict", str(song), "--model", str(model), "--out", str(tmp_path / "o")
        )
        assert code == 2 and "Export it first" in out and "iad-tf export --run" in out
    assert not (tmp_path / "o").exists()


def test_median_window_has_an_upper_bound(song: Path, tmp_path: Path) -> None:
    from iad_tf.postprocess import MAX_MEDIAN_WINDOW

    code, out = invoke(
        "predict", str(song), "--median-window", "100001", "--out", str(tmp_path / "o")
    )
    assert code == 2 and f"from 1 to {MAX_MEDIAN_WINDOW}" in out
    code, out = invoke(
        "evaluate", "--run", str(tmp_path), "--records", str(tmp_path), "--median-window", "100001"
    )
    assert code == 2 and "100001" in out
    code, out = invoke("predict", str(song), "--median-window", "5", "--out", str(tmp_path / "o"))
    assert code == 0 and (tmp_path / "o" / "song.json").is_file()


def test_a_second_predict_leaves_earlier_outputs_alone(song: Path, tmp_path: Path) -> None:
    """Outputs an earlier run left in --out are never replaced without --overwrite: the song
    is skipped and named, exit code 1, the earlier files keep their bytes."""
    out = tmp_path / "out"
    code, text = invoke("predict", str(song), "--out", str(out))
    assert code == 0, text
    earlier = {p.name: p.read_bytes() for p in out.glob("song.*")}
    assert set(earlier) == {"song.json", "song.npz"}
    (out / "song.json").write_text('{"edited": "by the user"}')
    earlier["song.json"] = (out / "song.json").read_bytes()

    code, text = invoke("predict", str(song), "--out", str(out))
    assert code == 1
    assert f"skipped {song}: {out / 'song.json'} exists" in text and "--overwrite" in text
    assert "0 succeeded" in text
    assert {p.name: p.read_bytes() for p in out.glob("song.*")} == earlier

    # only the npz left (a csv run's json never existed): still refused, naming that file
    code, text = invoke("predict", str(song), "--out", str(out), "--format", "csv")
    assert code == 1 and f"{out / 'song.npz'} exists" in text
    assert not (out / "song.csv").exists()

    code, text = invoke("predict", str(song), "--out", str(out), "--overwrite")
    assert code == 0, text
    assert json.loads((out / "song.json").read_text())["file"] == str(song)


def test_predict_into_a_url_checks_the_url_for_earlier_outputs(song: Path) -> None:
    from iad_tf import storage

    url = "memory://preds/overwrite-check"
    code, text = invoke("predict", str(song), "--out", url)
    assert code == 0, text
    dest = storage.to_path(url) / "song.json"
    before = dest.read_bytes()
    code, text = invoke("predict", str(song), "--out", url)
    assert code == 1 and f"{url}/song.json exists" in text
    assert dest.read_bytes() == before
