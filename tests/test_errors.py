"""Issue 21 item 1: one error boundary. OS and data errors are one line naming the path with
an exit code of EXIT_CODES; Ctrl-C exits 130 quietly (worker pools included); predict's batch
names a failed song on stderr and goes on (a full disk on one song, a 250-byte name)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.cli.errors import EXIT_CODES, EXIT_DATA, EXIT_INTERRUPTED, EXIT_OS
from iad_tf.cli.main import cli

REPO = Path(__file__).resolve().parents[1]


def tone(path: Path, seconds: float = 2.0) -> Path:
    t = np.arange(int(22050 * seconds)) / 22050
    sf.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
    return path


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/out/a.npz"), EXIT_OS,
         "/data/out/a.npz: disk full (no space left on device)"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/out"), EXIT_OS,
         "/ro/out: read-only file system"),
        (PermissionError(errno.EACCES, "Permission denied", "/x/y"), EXIT_OS,
         "/x/y: permission denied"),
        (OSError(errno.ENAMETOOLONG, "File name too long", "/o/" + "n" * 300), EXIT_OS,
         "file name too long"),
        (ValueError("/in/0001_onsets.arff: truncated\nsecond line"), EXIT_DATA,
         "/in/0001_onsets.arff: truncated"),
    ],
)
def test_errors_become_one_line_with_their_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception, code: int, line: str
) -> None:
    import iad_tf.inference.predict as predict

    def boom(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(predict, "predict_paths", boom)
    got, out, err = run("predict", str(tone(tmp_path / "a.wav")), "--out", str(tmp_path / "o"))
    assert got == code and code in EXIT_CODES
    assert err.strip().splitlines() == [f"Error: {line}"] or (
        len(err.strip().splitlines()) == 1 and line in err
    ), err
    assert "Traceback" not in out + err


def test_ctrl_c_in_a_command_exits_130_with_one_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iad_tf.inference.predict as predict

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(predict, "predict_paths", interrupted)
    code, out, err = run("predict", str(tone(tmp_path / "a.wav")), "--out", str(tmp_path / "o"))
    assert code == EXIT_INTERRUPTED and err.strip() == "interrupted"
    assert "Traceback" not in out + err and "Aborted" not in out + err


def test_a_full_disk_on_one_song_names_it_on_stderr_and_the_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iad_tf.inference.predict as predict

    songs = tmp_path / "songs"
    songs.mkdir()
    tone(songs / "a.wav")
    tone(songs / "b.wav")
    real = predict.write_npz

    def full_for_a(path: str, **arrays: object) -> Path:
        if Path(path).name == "a.npz":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, **arrays)

    monkeypatch.setattr(predict, "write_npz", full_for_a)
    code, out, err = run("predict", str(songs), "--out", str(tmp_path / "o"))
    assert code == 1, out + err
    assert f"{songs / 'a.wav'}: cannot write its results" in err and "disk full" in err
    assert (tmp_path / "o" / "b.npz").is_file() and (tmp_path / "o" / "b.json").is_file()
    assert "a.wav" not in out  # stdout holds the results only


def test_a_250_byte_file_name_is_predicted_like_any_other(tmp_path: Path) -> None:
    songs = tmp_path / "songs"
    songs.mkdir()
    long = tone(songs / ("x" * 250 + ".wav"))
    tone(songs / "b.wav")
    code, out, err = run("predict", str(songs), "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert (tmp_path / "o" / (long.stem + ".json")).is_file()
    assert (tmp_path / "o" / "b.json").is_file()


def sigint_as_in_a_terminal() -> None:
    """In the child before exec: SIGINT at its default, as under a terminal. A test run started
    in the background by a non-interactive shell inherits SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler: the Ctrl-C under test would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ctrl_c(argv: list[str], started: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``iad-tf argv`` in its own process group, Ctrl-C the group (as a terminal does)
    once ``started`` exists and 2 s more have passed; (exit code, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "iad_tf", *argv], env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=sigint_as_in_a_terminal,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not started.exists():
        time.sleep(0.2)
    time.sleep(2.0)  # workers started and busy
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_ctrl_c_on_synth_workers_prints_no_traceback(tmp_path: Path) -> None:
    """The parent and its worker pool end quietly with 130."""
    pytest.importorskip("tinysoundfont")
    code, err = ctrl_c(
        ["synth", "--out", str(tmp_path / "s"), "--tracks", "6", "--duration", "30",
         "--workers", "2"], tmp_path / "s", {},
    )
    assert code == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted"


def test_ctrl_c_on_build_records_workers_prints_no_traceback_and_reruns(tmp_path: Path) -> None:
    from iad_tf.data.build import DELAY_ENV
    from tests.tiny_aam import make_tiny_aam

    aam = make_tiny_aam(tmp_path / "aam", n_tracks=6, seconds=6.0)
    argv = ["build-records", "--aam-root", str(aam), "--out", str(tmp_path / "r"), "--workers", "2"]
    code, err = ctrl_c(argv, tmp_path / "r", {DELAY_ENV: "2"})
    assert code == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    res = CliRunner().invoke(cli, [*argv[:-1], "1"])  # the rerun finishes the build
    assert res.exit_code == 0 and "built 6 track(s)" in res.output, res.output
