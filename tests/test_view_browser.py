"""``iad-tf view`` in a real browser: Debian's headless chromium driven by Playwright.

The page runs the model in the tab (LiteRT.js) and must give ``predict``'s answer: the same
instrument list and >= 99 % equal frame decisions on a real AAM mix with the shipped model
(the waveform-in variant when one ships, else the log-mel model fed by the page's own
log-mel); the waveform-in model (in-graph RFFT front end) on a dropped file; playback moves
the playhead and a click on an instrument seeks to it; bad files give a message, never a
blank page; a 60-minute file is read in chunks; predict's outputs open with the truth.
Skipped, saying why, without playwright, chromium or the vendored runtime, unless
IAD_TF_REQUIRE_BROWSER=1 (CI), where that fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from iad_tf.inference.default_model import default_model_path
from iad_tf.inference.litert import load_model
from iad_tf.inference.predict import predict_audio
from iad_tf.view.site import build_site, choose_model
from tests.view.harness import Page, browser_missing, open_page

_why = browser_missing()
if _why and os.environ.get("IAD_TF_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"IAD_TF_REQUIRE_BROWSER=1 but the browser tests cannot run: {_why}")
pytestmark = [pytest.mark.skipif(_why is not None, reason=_why or ""), pytest.mark.slow]


def _agreement(page: Page, want_dec: np.ndarray, want_probs: np.ndarray) -> tuple[float, float]:
    got = page.result()
    frames = got["frames"]
    assert frames == want_dec.shape[0]
    dec = np.asarray(got["decisions"], np.uint8).reshape(frames, -1)
    probs = np.asarray(got["probs"], np.float32).reshape(frames, -1)
    return float((dec == want_dec).mean()), float(np.abs(probs - want_probs).max())


def test_page_gives_predicts_answer_on_a_real_mix(aam_sample: Path, tmp_path: Path) -> None:
    song = aam_sample / "audio-mixes-mp3" / "0080_mix.mp3"
    model_path, _ = choose_model(default_model_path())
    want = predict_audio(song, load_model(model_path))
    arff = aam_sample / "annotations" / "0080_onsets.arff"
    with open_page(build_site(default_model_path(), truth=arff)) as page:
        assert page.analyse(song) == "done", page.message()
        assert page.message() == ""  # resampled by predict's filter (no browser-resampling note)
        assert page.instruments() == [i["instrument"] for i in want.instruments]
        agree, max_diff = _agreement(page, want.decisions, want.probs)
        print(f"frame decisions equal: {agree:.5f}; max |probability difference| {max_diff:.4f}")
        assert agree >= 0.99
        # the annotation (--truth) is drawn against the page's own decisions
        truth_on = page.page.evaluate("iadView.result.truth.reduce((a, b) => a + b, 0)")
        assert truth_on > 1000
        shot = Path(os.environ.get("IAD_TF_VIEW_SCREENSHOT", tmp_path / "view.png"))
        page.page.screenshot(path=str(shot), full_page=True)  # README's: IAD_TF_VIEW_SCREENSHOT
        assert shot.stat().st_size > 10_000
        # play: the playhead follows
        p = page.page
        p.evaluate("document.getElementById('player').play()")
        p.wait_for_function("document.getElementById('player').currentTime > 1.0", timeout=20000)
        left = float(p.evaluate("parseFloat(document.getElementById('playhead').style.left)"))
        assert left > 150  # past the row labels: moved from the song's start
        # hovering a row shows that row's probability curve
        box = p.locator("#roll").bounding_box()
        assert box is not None
        p.mouse.move(box["x"] + 400, box["y"] + 22 + 11)  # the second row
        rows = p.evaluate("iadView.result.rows")
        p.wait_for_function(f"iadView.result.hoverRow === {rows[1]}", timeout=5000)
        # a click on an instrument seeks to its first segment
        first = want.instruments[-1]["instrument"]
        start = min(s.start_s for s in want.segments if s.instrument == first)
        p.click(f"#instruments li[data-instrument='{first}']")
        p.wait_for_function(
            f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.5", timeout=10000
        )


def test_waveform_model_on_a_dropped_file(detector_dir: Path, tmp_path: Path) -> None:
    from tests.detector_model import write_song

    song = write_song(tmp_path / "tones.wav", {"Flute": [(0.5, 4.0)], "ElectricBass": [(3.0, 7.0)]}, 8.0)
    model = load_model(detector_dir / "detector_waveform.tflite")
    want = predict_audio(song, model)
    names = [i["instrument"] for i in want.instruments]
    assert sorted(names) == ["ElectricBass", "Flute"]
    with open_page(build_site(detector_dir / "detector.tflite")) as page:
        assert page.page.evaluate("iadView.variant") == "waveform"
        assert page.drop(song) == "done", page.message()
        assert page.instruments() == names
        agree, max_diff = _agreement(page, want.decisions, want.probs)
        assert agree >= 0.99 and max_diff < 0.05


def test_bad_files_get_a_message_and_long_files_are_chunked(detector_dir: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 100)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    rng = np.random.default_rng(0)
    six = tmp_path / "six.wav"
    sf.write(six, (0.1 * rng.standard_normal((44100 * 3, 6))).astype(np.float32), 44100)
    long = tmp_path / "long.wav"  # 60 minutes, 8 kHz mono 16-bit: 58 MB
    t = np.arange(60 * 60 * 8000, dtype=np.float64) / 8000
    sf.write(long, (0.2 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32), 8000, subtype="PCM_16")
    long_mp3 = tmp_path / "hour.mp3"  # 60 minutes of silent 32 kbit/s MPEG-1 layer III frames
    frame = bytes([0xFF, 0xFB, 0x10, 0xC4]) + bytes(100)  # 144 * 32000 / 44100 = 104 bytes
    long_mp3.write_bytes(frame * (60 * 60 * 44100 // 1152))
    with open_page(build_site(detector_dir / "detector.tflite")) as page:
        assert page.analyse(long_mp3) == "error"
        assert "hour.mp3: about 60 minutes of compressed audio" in page.message()
        assert page.analyse(text) == "error"
        assert "notes.mp3: cannot decode audio" in page.message()
        assert page.analyse(empty) == "error"
        assert page.message() == "empty.wav: empty file (0 bytes)"
        assert page.analyse(six) == "done"
        assert "6 channels averaged to mono" in page.message()
        # the tab stays responsive while it works: the progress bar moves between chunks
        page.page.evaluate("document.body.dataset.state = 'picking'")
        page.page.set_input_files("#file", str(long))
        page.page.wait_for_function(
            "document.body.dataset.state === 'working' && document.getElementById('progress').value > 0.2"
            " && document.getElementById('progress').value < 0.8", timeout=300000, polling=100)
        assert page.wait(("done", "error"), 600) == "done", page.message()
        assert "read in chunks" in page.message() and "resampled to 22050 Hz by the browser" in page.message()
        got = page.result(arrays=False)
        assert got["frames"] == 1 + (60 * 60 * 22050) // 512
        print(f"60-minute WAV: {got['timing']['total_ms'] / 1000:.1f} s in the page")


def test_predict_outputs_open_with_the_truth(aam_sample: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iad_tf.cli.main import cli

    song = aam_sample / "audio-mixes-mp3" / "0080_mix.mp3"
    arff = aam_sample / "annotations" / "0080_onsets.arff"
    out = tmp_path / "pred"
    res = CliRunner().invoke(cli, ["predict", str(song), "--out", str(out)])
    assert res.exit_code == 0, res.output
    with open_page(build_site(None, [out], arff)) as page, np.load(out / "0080_mix.npz") as z:
        page.page.select_option("#songs", "0")
        assert page.wait(("done", "error")) == "done", page.message()
        got = page.page.evaluate(
            "({dec: Array.from(iadView.result.decisions), truth: Array.from(iadView.result.truth),"
            " audio: document.getElementById('player').src})"
        )
        np.testing.assert_array_equal(np.asarray(got["dec"], np.uint8), z["decisions"].ravel())
        truth = np.asarray(got["truth"], np.uint8).reshape(z["decisions"].shape)
        assert truth.sum() > 0 and got["audio"].endswith("/p/0/audio.mp3")
        assert page.instruments() == [
            i["instrument"] for i in __import__("json").loads((out / "0080_mix.json").read_text())["instruments"]
        ]


def test_static_export_runs_from_a_plain_static_server(detector_dir: Path, tmp_path: Path) -> None:
    """`view --export DIR` served by Python's plain static file server (no iad-tf code, no
    cross-origin isolation headers: LiteRT.js runs single-threaded) analyses a file."""
    import functools
    import http.server
    import threading

    from click.testing import CliRunner
    from playwright.sync_api import sync_playwright

    from iad_tf.cli.main import cli
    from tests.detector_model import write_song
    from tests.view.harness import CHROMIUM, FLAGS

    site = tmp_path / "site"
    res = CliRunner().invoke(cli, ["view", "--model", str(detector_dir / "detector.tflite"),
                                   "--export", str(site)])
    assert res.exit_code == 0, res.output
    song = write_song(tmp_path / "flute.wav", {"Flute": [(0.5, 2.5)]}, 3.0)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
            page.wait_for_function("document.body.dataset.state === 'ready'", timeout=120000)
            assert page.evaluate("self.crossOriginIsolated") is False
            page.set_input_files("#file", str(song))
            page.wait_for_function("['done', 'error'].includes(document.body.dataset.state)",
                                   timeout=120000)
            names = page.eval_on_selector_all("#instruments li[data-instrument]",
                                              "els => els.map(e => e.dataset.instrument)")
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert names == ["Flute"]
