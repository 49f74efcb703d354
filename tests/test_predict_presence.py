"""predict's song-level answer: the presence gate from the model metadata, the JSON
``instruments`` list, and ``--truth`` scoring against an onsets ARFF (hand-wired tone
detector from tests/detector_model.py, so the true activity is known)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.aam.arff import OnsetTable, write_onsets
from iad_tf.cli.main import cli
from iad_tf.config import AAM_CLASSES
from tests.detector_model import export_detector, write_song

ACTIVITY = {"Flute": [(1.0, 4.0)], "ElectricBass": [(5.0, 5.3)]}  # bass: a 0.3 s burst


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_detector(tmp_path_factory.mktemp("model"))


def _with_presence(model: Path, out: Path, presence: dict | None) -> Path:
    """A copy of the exported model whose metadata (embedded and sidecar) carries ``presence``."""
    from iad_tf.inference.embedded import embed_metadata

    out.mkdir(parents=True, exist_ok=True)
    target = out / model.name
    meta = json.loads(model.with_suffix(".json").read_text())
    meta["presence"] = presence
    target.write_bytes(embed_metadata(model.read_bytes(), meta))
    target.with_suffix(".json").write_text(json.dumps(meta))
    return target


def _predict(song: Path, model: Path, out: Path, *extra: str) -> dict:
    res = CliRunner().invoke(
        cli, ["predict", str(song), "--model", str(model), "--out", str(out), *extra]
    )
    assert res.exit_code == 0, res.output
    return {"output": res.output, **json.loads((out / f"{song.stem}.json").read_text())}


def test_presence_gate_drops_a_short_burst_and_instruments_answer_the_song(
    detector: Path, tmp_path: Path
) -> None:
    song = write_song(tmp_path / "song.wav", ACTIVITY, 7.0)
    plain = _predict(song, _with_presence(detector, tmp_path / "m0", None), tmp_path / "o0")
    names = [i["instrument"] for i in plain["instruments"]]
    assert names == ["Flute", "ElectricBass"]  # most active first; no gate: the burst counts
    flute = plain["instruments"][0]
    assert flute["seconds_active"] == pytest.approx(3.0, abs=0.2)
    assert 0.5 < flute["confidence"] <= 1.0
    assert plain["presence"] is None

    gate = {"threshold": 0.6, "seconds": 1.0}
    gated = _predict(song, _with_presence(detector, tmp_path / "m1", gate), tmp_path / "o1")
    assert [i["instrument"] for i in gated["instruments"]] == ["Flute"]
    assert gated["presence"] == gate
    assert {s["instrument"] for s in gated["segments"]} == {"Flute"}
    # the gate keeps every frame of the instrument it accepts
    flute_segs = [s for s in plain["segments"] if s["instrument"] == "Flute"]
    assert [s for s in gated["segments"] if s["instrument"] == "Flute"] == flute_segs
    assert "1 instrument: Flute" in gated["output"]


def _write_truth(path: Path, activity: dict[str, list[tuple[float, float]]], end: float) -> Path:
    times = sorted({0.0, end, *(t for spans in activity.values() for s in spans for t in s)})
    rows = []
    for t in times:
        row: list[tuple] = [()] * len(AAM_CLASSES)
        for name, spans in activity.items():
            if any(a <= t < b for a, b in spans):
                row[AAM_CLASSES.index(name)] = ((60, True),)
        rows.append(tuple(row))
    write_onsets(path, OnsetTable(AAM_CLASSES, np.asarray(times), rows, relation="truth"))
    return path


def test_truth_scores_the_song_and_names_misses_and_false_alarms(
    detector: Path, tmp_path: Path
) -> None:
    song = write_song(tmp_path / "song.wav", ACTIVITY, 7.0)
    # the annotation says Flute (right), and Viola which never sounds (a miss);
    # the bass burst is not annotated (a false alarm)
    truth = _write_truth(
        tmp_path / "truth.arff", {"Flute": [(1.0, 4.0)], "Viola": [(2.0, 3.0)]}, 7.0
    )
    res = _predict(song, detector, tmp_path / "o", "--truth", str(truth), "--plot")
    sc = res["truth"]
    assert sc["instruments_present"] == ["Flute", "Viola"]
    assert sc["missed"] == ["Viola"] and sc["false_alarms"] == ["ElectricBass"]
    assert sc["f1_macro"] == pytest.approx(0.5, abs=0.05)  # Flute ~1, Viola 0
    assert 0.6 < sc["f1_micro"] < 0.85
    assert "vs truth: frame F1 micro" in res["output"]
    assert (tmp_path / "o" / "song.png").read_bytes()[:4] == b"\x89PNG"


def test_truth_needs_exactly_one_song(detector: Path, tmp_path: Path) -> None:
    a = write_song(tmp_path / "a.wav", ACTIVITY, 2.0)
    truth = _write_truth(tmp_path / "t.arff", {"Flute": [(1.0, 2.0)]}, 2.0)
    res = CliRunner().invoke(
        cli, ["predict", str(a), str(a), "--model", str(detector), "--truth", str(truth)]
    )
    assert res.exit_code == 2 and "exactly one audio file" in res.output
    bad = tmp_path / "bad.arff"
    bad.write_text("not an arff\n")
    res = CliRunner().invoke(
        cli,
        [
            "predict",
            str(a),
            "--model",
            str(detector),
            "--truth",
            str(bad),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code != 0 and "bad.arff" in res.output and "Traceback" not in res.output
