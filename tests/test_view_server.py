"""``iad-tf view``'s server and static export: loopback only, exactly the site's files (the
page, the runtime, the model, session.json, the user's predictions), no directory listing,
no path traversal, no foreign Host; the export writes the same files and no server code."""

from __future__ import annotations

import http.client
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.cli.main import cli
from iad_tf.view.assets import missing_vendor_files
from iad_tf.view.server import ViewServer
from iad_tf.view.site import ViewError, build_site, choose_model

pytestmark = pytest.mark.skipif(
    bool(missing_vendor_files()), reason="LiteRT.js runtime not vendored (run `make web`)"
)


def get(server: ViewServer, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path, headers={"Host": f"127.0.0.1:{server.port}", **(headers or {})})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


@pytest.fixture
def predictions(detector_dir: Path, tmp_path: Path) -> Path:
    """A predict output folder of one song (the tone detector on a 3 s tone song)."""
    from tests.detector_model import write_song

    song = write_song(tmp_path / "tones.wav", {"Flute": [(0.5, 2.0)]}, 3.0)
    out = tmp_path / "pred"
    res = CliRunner().invoke(cli, ["predict", str(song), "--model",
                                   str(detector_dir / "detector.tflite"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def server(detector_dir: Path, predictions: Path) -> Iterator[ViewServer]:
    srv = ViewServer(build_site(detector_dir / "detector.tflite", [predictions]))
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_serves_the_page_model_and_session_on_loopback(
    server: ViewServer, detector_dir: Path, predictions: Path
) -> None:
    assert server.server_address[0] == "127.0.0.1" and server.port > 0
    status, headers, body = get(server, "/")
    assert status == 200 and b"iad-tf view" in body and headers["Content-Type"] == "text/html"
    status, headers, body = get(server, "/vendor/litertjs/wasm/litert_wasm_internal.wasm")
    assert status == 200 and headers["Content-Type"] == "application/wasm" and body[:4] == b"\0asm"
    session = json.loads(get(server, "/session.json")[2])
    # the waveform variant beside the log-mel model is preferred
    assert session["model"] == {"name": "detector_waveform.tflite", "url": "model.tflite",
                                "variant": "waveform"}
    assert get(server, "/model.tflite")[2] == (detector_dir / "detector_waveform.tflite").read_bytes()
    (entry,) = session["predictions"]
    assert entry["name"] == "tones" and entry["audio"] == "p/0/audio.wav"
    song = json.loads(get(server, "/" + entry["json"])[2])
    assert [i["instrument"] for i in song["instruments"]] == ["Flute"]
    probs = np.frombuffer(get(server, "/" + entry["probs"])[2], "<f4").reshape(-1, 31)
    with np.load(predictions / "tones.npz") as z:
        np.testing.assert_array_equal(probs, z["probs"])
    status, headers, body = get(server, "/" + entry["audio"], {"Range": "bytes=0-99"})
    assert status == 206 and len(body) == 100 and body[:4] == b"RIFF"
    assert headers["Content-Range"].startswith("bytes 0-99/")


@pytest.mark.parametrize(
    "path",
    [
        "/vendor/", "/vendor/litertjs/", "/vendor/litertjs/wasm/", "/p/", "/p/0/",  # listings
        "/../pyproject.toml", "/%2e%2e/%2e%2e/etc/passwd", "/vendor/../../site.py",
        "/..%2f..%2fsite.py", "//etc/passwd", "/p/0/../../../server.py", "/site.py",
        "/index.html/../server.py", "/p/0/audio.wav/..", "/%00", "/tones.wav",
    ],
)
def test_nothing_else_is_served(server: ViewServer, path: str) -> None:
    status, _, body = get(server, path)
    assert status == 404, (path, body[:80])


def test_foreign_host_and_other_methods_are_refused(server: ViewServer) -> None:
    assert get(server, "/", {"Host": "evil.example:80"})[0] == 403
    assert get(server, "/session.json", {"Host": "attacker.test"})[0] == 403
    assert get(server, "/", method="POST")[0] == 501
    assert get(server, "/", method="PUT")[0] == 501
    status, headers, body = get(server, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_static_export_writes_the_site_without_server_code(
    detector_dir: Path, predictions: Path, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    res = CliRunner().invoke(cli, ["view", str(predictions), "--model",
                                   str(detector_dir / "detector.tflite"), "--export", str(out)])
    assert res.exit_code == 0, res.output
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    site = build_site(detector_dir / "detector.tflite", [predictions])
    assert written == set(site)
    assert {"index.html", "app.js", "model.tflite", "session.json", "p/0/probs.f32",
            "vendor/litertjs/core.js"} <= written
    assert not [w for w in written if w.endswith(".py")]
    assert (out / "model.tflite").read_bytes() == (detector_dir / "detector_waveform.tflite").read_bytes()


def test_mel_model_flag_and_models_without_metadata(detector_dir: Path, tmp_path: Path) -> None:
    path, meta = choose_model(detector_dir / "detector.tflite", prefer_waveform=False)
    assert path.name == "detector.tflite" and meta["window_frames"] == 64
    bare = tmp_path / "bare.tflite"
    from iad_tf.inference.embedded import embed_metadata

    bare.write_bytes(embed_metadata((detector_dir / "detector.tflite").read_bytes(), None))
    with pytest.raises(ViewError, match="no embedded iad_tf_metadata"):
        choose_model(bare)
    res = CliRunner().invoke(cli, ["view", "--model", str(bare), "--export", str(tmp_path / "x")])
    assert res.exit_code == 1 and "no embedded iad_tf_metadata" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(cli, ["view", str(tmp_path), "--export", str(tmp_path / "y")])
    assert res.exit_code == 1 and "no predictions" in res.output


def test_missing_runtime_is_one_line(tmp_path: Path) -> None:
    from iad_tf.view.assets import AssetsError, check_vendor, static_dir

    root = tmp_path / "static"
    shutil.copytree(static_dir(), root, ignore=shutil.ignore_patterns("vendor"))
    with pytest.raises(AssetsError, match="make web"):
        check_vendor(root)


def test_cli_serves_on_loopback_until_stopped(detector_dir: Path) -> None:
    """`iad-tf view --no-browser` prints its loopback address and serves the page there."""
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    from tests.test_errors import sigint_as_in_a_terminal

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "iad_tf", "view", "--no-browser", "--model",
         str(detector_dir / "detector.tflite")],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(repo)},
        preexec_fn=sigint_as_in_a_terminal,  # a background test run inherits SIGINT ignored
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        with urllib.request.urlopen(match.group(0) + "session.json", timeout=10) as resp:
            assert json.loads(resp.read())["model"]["variant"] == "waveform"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0
