"""Issue 21 item 5 (and 8): validation at the boundary. Text inputs with a BOM and any line
ending read like plain UTF-8; inf/NaN config values are refused naming file and key;
predict --truth runs build-records' ARFF checks and checks the annotation fits the song;
a threshold of 1.5 names the file and class; a truncated .tflite is one line; --truth's F1
comes from metrics.py (inference does not import evaluation/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.aam.arff import read_onsets
from iad_tf.cli.main import cli
from iad_tf.data.splits import read_split_file
from iad_tf.training.config import TrainConfig, load_toml
from tests.tiny_aam import make_tiny_aam

REPO = Path(__file__).resolve().parents[1]


def bom_crlf(path: Path, out: Path, ending: str = "\r\n") -> Path:
    text = path.read_text(encoding="utf-8")
    out.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", ending).encode("utf-8"))
    return out


@pytest.mark.parametrize("ending", ["\r\n", "\r", "\n"])
def test_an_arff_with_a_bom_and_any_line_ending_reads_like_the_plain_one(
    tiny_aam: Path, tmp_path: Path, ending: str
) -> None:
    plain = tiny_aam / "annotations" / "0001_onsets.arff"
    odd = bom_crlf(plain, tmp_path / "0001_onsets.arff", ending)
    a, b = read_onsets(plain), read_onsets(odd)
    assert a.instruments == b.instruments and a.notes == b.notes and a.relation == b.relation
    np.testing.assert_array_equal(a.times, b.times)


def test_a_split_file_with_a_bom_keeps_its_first_track(tmp_path: Path) -> None:
    plain = tmp_path / "splits.txt"
    plain.write_text("0080 test\n0081 val\n")
    assert read_split_file(bom_crlf(plain, tmp_path / "bom.txt")) == {"0080": "test", "0081": "val"}
    as_json = tmp_path / "s.json"
    as_json.write_bytes(b"\xef\xbb\xbf" + json.dumps({"test": ["0080"]}).encode())
    assert read_split_file(as_json) == {"0080": "test"}


@pytest.mark.parametrize(
    ("body", "key"),
    [("window_seconds = inf", "window_seconds"), ("oversample_factor = inf", "oversample_factor"),
     ("mix_gain_db = nan", "mix_gain_db"), ("learning_rate = -inf", "learning_rate")],
)
def test_non_finite_config_values_are_refused_naming_file_and_key(
    tmp_path: Path, body: str, key: str
) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(f"[train]\n{body}\n")
    with pytest.raises(ValueError, match=rf"{toml}: \[train\] {key}: expected a finite number"):
        load_toml(toml)
    with pytest.raises(ValueError, match=f"{key} must be a finite number"):
        TrainConfig(**{key: float(body.split("= ")[1])})


def test_a_toml_with_a_bom_and_crlf_loads(tmp_path: Path) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text("[train]\nepochs = 7\nwindow_seconds = 4.5\n")
    cfg = load_toml(bom_crlf(plain, tmp_path / "bom.toml"))
    assert cfg.train.epochs == 7 and cfg.train.window_seconds == 4.5


@pytest.fixture(scope="module")
def long_song(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a 20 s tone song's folder, its onsets ARFF)."""
    root = make_tiny_aam(tmp_path_factory.mktemp("truth") / "aam", n_tracks=1, seconds=20.0)
    return root, root / "annotations" / "0001_onsets.arff"


def predict_truth(song: Path, truth: Path, out: Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["predict", str(song), "--truth", str(truth), "--out", str(out)])
    return res.exit_code, res.stdout, res.stderr


def test_truth_of_a_shorter_song_is_refused(long_song: tuple[Path, Path], tmp_path: Path) -> None:
    root, truth = long_song
    y, sr = sf.read(root / "audio-mixes-flac" / "0001_mix.flac")
    longer = tmp_path / "longer.wav"
    sf.write(longer, np.concatenate([y, y]), sr)  # 40 s song, annotation ends at 19.25 s
    code, out, err = predict_truth(longer, truth, tmp_path / "o")
    assert code == 1, out + err
    assert f"{truth}: truncated? the last event is at" in err and "before the end of" in err
    assert not list((tmp_path / "o").glob("*.json")) if (tmp_path / "o").exists() else True


def test_truth_of_a_longer_song_is_refused(long_song: tuple[Path, Path], tmp_path: Path) -> None:
    root, truth = long_song
    y, sr = sf.read(root / "audio-mixes-flac" / "0001_mix.flac")
    short = tmp_path / "short.wav"
    sf.write(short, y[: 5 * sr], sr)
    code, out, err = predict_truth(short, truth, tmp_path / "o")
    assert code == 1 and f"{truth}: annotations run to 19.25 s, past the end of short.wav" in err


def test_a_truncated_truth_file_is_refused(long_song: tuple[Path, Path], tmp_path: Path) -> None:
    root, truth = long_song
    lines = truth.read_text().splitlines()
    data_at = next(i for i, line in enumerate(lines) if line.upper().startswith("@DATA")) + 1
    cut = tmp_path / "cut_onsets.arff"
    n_rows = len(lines) - data_at
    cut.write_text("\n".join(lines[: data_at + n_rows // 3]) + "\n")
    code, out, err = predict_truth(root / "audio-mixes-flac" / "0001_mix.flac", cut, tmp_path / "o")
    assert code == 1 and f"{cut}: truncated?" in err, out + err
    whole, _, err2 = predict_truth(root / "audio-mixes-flac" / "0001_mix.flac", truth, tmp_path / "w")
    assert whole == 0, err2


def test_a_threshold_out_of_range_names_file_and_class(tmp_path: Path) -> None:
    from iad_tf.config import AAM_CLASSES
    from iad_tf.evaluation.thresholds import load_thresholds

    thr = [0.5] * len(AAM_CLASSES)
    thr[3] = 1.5
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"classes": list(AAM_CLASSES), "thresholds": thr,
                                "median_window": 5}))
    with pytest.raises(ValueError) as err:
        load_thresholds(tmp_path, AAM_CLASSES)
    assert str(err.value) == (
        f"{path}: threshold of {AAM_CLASSES[3]} is 1.5; thresholds lie in [0, 1]"
    )


def test_export_with_a_bad_threshold_leaves_no_out(tmp_path: Path) -> None:
    from iad_tf.config import AAM_CLASSES
    from tests.records_factory import make_records, save_untrained_run

    records = make_records(tmp_path / "rec")
    run = save_untrained_run(records, tmp_path / "run")
    thr = [0.5] * len(AAM_CLASSES)
    thr[0] = 1.5
    (run / "thresholds.json").write_text(json.dumps(
        {"classes": list(AAM_CLASSES), "thresholds": thr, "median_window": 5}))
    res = CliRunner().invoke(cli, ["export", "--run", str(run), "--out", str(tmp_path / "exp")])
    assert res.exit_code != 0
    assert f"{run / 'thresholds.json'}: threshold of {AAM_CLASSES[0]} is 1.5" in res.stderr
    assert not (tmp_path / "exp").exists()


def test_a_truncated_tflite_is_one_line(tmp_path: Path) -> None:
    model = REPO / "saved_models" / "iad_tf_crnn.tflite"
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(model.read_bytes()[:20000])
    song = tmp_path / "a.wav"
    sf.write(song, np.zeros(22050, np.float32), 22050)
    res = CliRunner().invoke(cli, ["predict", str(song), "--model", str(cut), "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines() == [
        f"Error: {cut}: not a valid TFLite model (truncated or corrupt: its tables point past "
        "the end of its 20000 bytes)"
    ]


def test_truth_scoring_does_not_import_evaluation() -> None:
    code = (
        "import sys, numpy as np\n"
        "from iad_tf.inference.truth import score_song\n"
        "d = np.array([[1, 0], [1, 1]]); t = np.array([[1, 0], [0, 1]])\n"
        "s = score_song(d, t, ['a', 'b'])\n"
        "assert abs(s['f1_micro'] - 0.8) < 1e-9, s\n"
        "bad = [m for m in sys.modules if m.startswith('iad_tf.evaluation')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


@pytest.mark.sample
def test_truth_of_another_real_song_is_refused(aam_sample: Path, tmp_path: Path) -> None:
    """The issue's case: 0080's annotation (ends at 127 s) against 1941 (181 s) scored F1 0.117."""
    song = aam_sample / "audio-mixes-mp3" / "1941_mix.mp3"
    truth = aam_sample / "annotations" / "0080_onsets.arff"
    code, out, err = predict_truth(song, truth, tmp_path / "o")
    assert code == 1 and f"{truth}: truncated? the last event is at" in err, out + err
    assert "vs truth" not in out


@pytest.mark.sample
def test_a_real_onsets_file_cut_to_a_third_is_refused(aam_sample: Path, tmp_path: Path) -> None:
    song = aam_sample / "audio-mixes-mp3" / "1941_mix.mp3"
    lines = (aam_sample / "annotations" / "1941_onsets.arff").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.upper().startswith("@DATA")) + 1
    cut_file = tmp_path / "1941_onsets.arff"
    cut_file.write_text("\n".join(lines[: at + (len(lines) - at) // 3]) + "\n")
    code, out, err = predict_truth(song, cut_file, tmp_path / "o")
    assert code == 1 and f"{cut_file}: truncated?" in err, out + err
    whole, out2, _ = predict_truth(song, aam_sample / "annotations" / "1941_onsets.arff",
                                   tmp_path / "w")
    assert whole == 0 and "vs truth: frame F1" in out2
