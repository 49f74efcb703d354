"""Issue 21 item 7: the fault suite. One registry row per command (how to run it on tiny
inputs, where it writes, which faults apply); every row x fault runs through the same checks:

* ``disk_full``: ENOSPC injected into every file the command opens for writing under its
  output -> a non-zero exit, one line (no traceback) saying the disk is full, no lock left;
* ``read_only``: EROFS on every creation under the output -> one line naming it, nothing made;
* ``concurrent``: another live process holds the output's lock -> exit 5 naming it;
* ``kill_rerun``: the command in a child process SIGKILLed mid-run, then rerun -> success;
* ``nonfinite``: an inf/NaN config value -> refused in one line naming the key;
* ``bom``: text inputs with a UTF-8 BOM and CRLF line endings -> the same success;
* ``truncated``: a cut input file -> the row's one-line refusal (or skip), no traceback.

A new command joins by adding one :data:`REGISTRY` row (a test checks every command has one).
Slow cells (real training or export) are marked ``slow`` (run with IAD_TF_RUN_SLOW=1).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner, Result

from iad_tf.cli.errors import EXIT_LOCKED
from iad_tf.cli.main import COMMANDS, OUTPUT_FOLDERS, cli
from iad_tf.data.build import DELAY_ENV
from iad_tf.locks import LOCK_NAME
from tests.records_factory import make_records, save_untrained_run
from tests.tiny_aam import make_tiny_aam

REPO = Path(__file__).resolve().parents[1]
FAULTS = ("disk_full", "read_only", "concurrent", "kill_rerun", "nonfinite", "bom", "truncated")
TINY_TOML = "[model]\nmlp_units = [8]\n"


@dataclass
class Inputs:
    """Tiny inputs shared by the rows (built once per module)."""

    root: Path
    aam: Path  # 4 tone songs, AAM layout, exact annotations
    records: Path
    run: Path  # an untrained tiny MLP run on ``records``, evaluated (metrics.json, pictures)
    model: Path  # a mel .tflite
    song: Path
    toml: Path
    stems: Path | None  # a synthetic AAM root with stems (remix input); None without tinysoundfont

    def copy_aam(self, dest: Path) -> Path:
        return Path(shutil.copytree(self.aam, dest))

    def copy_run(self, dest: Path) -> Path:
        return Path(shutil.copytree(self.run, dest))


Argv = Callable[[Inputs, Path], list[str]]


@dataclass(frozen=True)
class Row:
    """One command of the fault suite."""

    command: str
    argv: Argv  # (inputs, output path) -> arguments after the command name
    faults: tuple[str, ...]
    slow: tuple[str, ...] = ()  # faults that are slow for this command
    nonfinite: Argv | None = None  # the arguments with an inf/NaN value
    bom: Argv | None = None  # the arguments on inputs with a BOM and CRLF line endings
    #: (inputs, tmp) -> (arguments with a cut input, text the one line holds, exit code)
    truncated: Callable[[Inputs, Path], tuple[list[str], str, int]] | None = None
    kill_env: dict[str, str] = field(default_factory=dict)  # slows the child for kill_rerun
    needs_stems: bool = False
    needs_web: bool = False  # the vendored LiteRT.js (make web)
    why_not: str = ""  # for a command with no faults: why


def bom_crlf(path: Path) -> None:
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))


def cut(path: Path, keep: float = 1 / 3) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def cut_onsets(path: Path) -> None:
    """Keep the header and the first third of the data rows (a partial download)."""
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.upper().startswith("@DATA")) + 1
    path.write_text("\n".join(lines[: at + (len(lines) - at) // 3]) + "\n")


def toml_with(tmp: Path, body: str) -> Path:
    path = tmp / "bad.toml"
    path.write_text(TINY_TOML + f"[train]\n{body}\n")
    return path


def _build_truncated(inp: Inputs, tmp: Path) -> tuple[list[str], str, int]:
    aam = inp.copy_aam(tmp / "aam")
    cut(aam / "annotations" / "0002_onsets.arff", 0.6)  # a partial download: ends mid-row
    return (["--aam-root", str(aam), "--out", str(tmp / "o"), "--workers", "1"],
            "0002: ", 0)


def _build_bom(inp: Inputs, out: Path) -> list[str]:
    aam = inp.copy_aam(out.parent / "aam_bom")
    for arff in (aam / "annotations").glob("*.arff"):
        bom_crlf(arff)
    return ["--aam-root", str(aam), "--out", str(out), "--workers", "1"]


def _cut_model_run(inp: Inputs, tmp: Path) -> Path:
    run = inp.copy_run(tmp / "run")
    cut(run / "model.keras", 0.5)
    return run


def _fit_argv(toml_of: Callable[[Inputs, Path], Path]) -> Argv:
    return lambda i, o: ["--model", "mlp", "--records", str(i.records), "--run-dir", str(o),
                         "--config", str(toml_of(i, o)), "--epochs", "1", "--batch-size", "4"]


def _bom_toml(i: Inputs, o: Path) -> Path:
    path = o.parent / "bom.toml"
    shutil.copy(i.toml, path)
    bom_crlf(path)
    return path


def _predict_truth_bom(i: Inputs, o: Path) -> list[str]:
    aam = i.copy_aam(o.parent / "aam_bom")
    truth = aam / "annotations" / "0001_onsets.arff"
    bom_crlf(truth)
    return [str(aam / "audio-mixes-flac" / "0001_mix.flac"), "--model", str(i.model), "--truth",
            str(truth), "--out", str(o)]


REGISTRY: tuple[Row, ...] = (
    Row(
        "build-records",
        lambda i, o: ["--aam-root", str(i.aam), "--out", str(o), "--workers", "1"],
        ("disk_full", "read_only", "concurrent", "kill_rerun", "bom", "truncated"),
        bom=_build_bom,
        truncated=_build_truncated,
        kill_env={DELAY_ENV: "1"},
    ),
    Row(
        "fit",
        _fit_argv(lambda i, o: i.toml),
        ("disk_full", "read_only", "concurrent", "kill_rerun", "nonfinite", "bom"),
        slow=("kill_rerun", "bom", "disk_full"),
        nonfinite=_fit_argv(lambda i, o: toml_with(o.parent, "window_seconds = inf")),
        bom=_fit_argv(_bom_toml),
    ),
    Row(
        "cv",
        lambda i, o: ["--model", "mlp", "--records", str(i.records), "--folds", "2", "--run-dir",
                      str(o), "--config", str(i.toml), "--epochs", "1"],
        ("disk_full", "read_only", "concurrent", "nonfinite"),
        slow=("disk_full",),
        nonfinite=lambda i, o: ["--model", "mlp", "--records", str(i.records), "--run-dir", str(o),
                                "--config", str(toml_with(o.parent, "mix_gain_db = nan"))],
    ),
    Row(
        "evaluate",
        lambda i, o: ["--run", str(i.run), "--records", str(i.records), "--split", "test",
                      "--no-tune", "--no-plots", "--out", str(o)],
        ("disk_full", "read_only", "concurrent", "truncated"),
        truncated=lambda i, t: (["--run", str(_cut_model_run(i, t)), "--records", str(i.records),
                                 "--split", "test", "--no-plots", "--out", str(t / "o")],
                                "corrupt", 1),
    ),
    Row(
        "plot",  # draws into an evaluated run (a copy at the output path)
        lambda i, o: ["--run", str(i.copy_run(o))],
        ("disk_full", "read_only"),
    ),
    Row(
        "compare",
        lambda i, o: [str(i.run), "--markdown", str(o / "compare.md")],
        ("disk_full", "read_only"),
    ),
    Row(
        "export",
        lambda i, o: ["--run", str(i.run), "--records", str(i.records), "--out", str(o),
                      "--quantize", "none"],
        ("disk_full", "read_only", "concurrent", "truncated"),
        slow=("disk_full",),
        truncated=lambda i, t: (["--run", str(_cut_model_run(i, t)), "--records", str(i.records),
                                 "--out", str(t / "o")], "corrupt", 1),
    ),
    Row(
        "predict",
        lambda i, o: [str(i.song), "--model", str(i.model), "--out", str(o)],
        ("disk_full", "read_only", "bom", "truncated"),
        bom=_predict_truth_bom,
        truncated=lambda i, t: ([str(i.song), "--model",
                                 str(cut(Path(shutil.copy(i.model, t / "m.tflite")))),
                                 "--out", str(t / "o")], "not a valid TFLite model", 1),
    ),
    Row(
        "synth",
        lambda i, o: ["--out", str(o), "--tracks", "2", "--duration", "3", "--workers", "1",
                      "--sample-rate", "22050"],
        ("disk_full", "read_only", "concurrent", "kill_rerun", "nonfinite"),
        slow=("kill_rerun",),
        nonfinite=lambda i, o: ["--out", str(o), "--tracks", "1", "--duration", "inf"],
        needs_stems=True,  # tinysoundfont
    ),
    Row(
        "remix",
        lambda i, o: ["--aam-root", str(i.stems), "--out", str(o), "--per-track", "1",
                      "--workers", "1", "--sample-rate", "22050"],
        ("disk_full", "read_only", "concurrent", "nonfinite"),
        nonfinite=lambda i, o: ["--aam-root", str(i.stems), "--out", str(o), "--min-gain-db",
                                "nan"],
        needs_stems=True,
    ),
    Row(
        "bank",
        lambda i, o: ["--aam-root", str(i.stems), "--out", str(o), "--workers", "1"],
        ("disk_full", "read_only", "concurrent", "nonfinite"),
        nonfinite=lambda i, o: ["--aam-root", str(i.stems), "--out", str(o),
                                "--silence-margin-db", "nan"],
        needs_stems=True,
    ),
    Row(
        "view",  # only --export writes (serving writes nothing; tests/test_view_server.py)
        lambda i, o: ["--model", str(i.model), "--export", str(o)],
        ("disk_full", "read_only", "concurrent"),
        needs_web=True,
    ),
    Row(
        "demo",
        lambda i, o: ["--out", str(o), "--tracks", "4", "--duration", "10", "--epochs", "1"],
        ("read_only",),
    ),
)


# ---------------------------------------------------------------------------- machinery


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, detector_dir: Path) -> Inputs:
    root = tmp_path_factory.mktemp("faults")
    records = make_records(root / "rec")
    song = root / "song.wav"
    t = np.arange(22050 * 3) / 22050
    sf.write(song, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
    toml = root / "tiny.toml"
    toml.write_text(TINY_TOML)
    stems = None
    try:
        from iad_tf.synth.corpus import SynthConfig, synthesize

        stems = root / "stems"
        synthesize(stems, SynthConfig(tracks=2, seed=4, duration=4.0, sample_rate=22050), workers=1)
    except Exception:  # noqa: BLE001 - no tinysoundfont here: the rows that need it skip
        stems = None
    run = save_untrained_run(records, root / "run")
    evaluated = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(records),
                                         "--split", "test", "--no-tune", "--max-rolls", "1"])
    assert evaluated.exit_code == 0, evaluated.output
    return Inputs(
        root=root, aam=make_tiny_aam(root / "aam", n_tracks=4, seconds=6.0, seed=0),
        records=records, run=run,
        model=detector_dir / "detector.tflite", song=song, toml=toml, stems=stems,
    )


def invoke(row: Row, argv: list[str]) -> Result:
    res = CliRunner().invoke(cli, [row.command, *argv])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output, res.output
    return res


def _under(path: object, root: Path) -> bool:
    if isinstance(path, int):
        return False
    try:
        return Path(os.fsdecode(path)).absolute().is_relative_to(root)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def injected(
    monkeypatch: pytest.MonkeyPatch, code: int, root: Path, creating: bool
) -> Iterator[None]:
    """Fail with ``code`` every open-for-writing under ``root`` (``creating``: also every
    os.open creating a file and every mkdir there, as a read-only mount does)."""
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def fail(path: object) -> OSError:
        return OSError(code, os.strerror(code), os.fsdecode(path))  # type: ignore[arg-type]

    def fake_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if any(c in mode for c in "wax+") and _under(file, root):
            raise fail(file)
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    def fake_os_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _under(path, root):
            raise fail(path)
        return real_os_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    def fake_mkdir(path: object, *args: object, **kwargs: object) -> None:
        if _under(path, root):
            raise fail(path)
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    if creating:
        monkeypatch.setattr(os, "open", fake_os_open)
        monkeypatch.setattr(os, "mkdir", fake_mkdir)
    try:
        yield
    finally:
        monkeypatch.undo()


def fault_cells() -> list[object]:
    cells = []
    for row in REGISTRY:
        for fault in row.faults:
            marks = [pytest.mark.slow] if fault in row.slow else []
            cells.append(pytest.param(row, fault, id=f"{row.command}-{fault}", marks=marks))
    return cells


def one_error_line(res: Result) -> str:
    lines = [line for line in res.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, res.output
    return lines[0]


# ---------------------------------------------------------------------------- the suite


def test_every_command_has_a_registry_row() -> None:
    assert sorted(r.command for r in REGISTRY) == sorted(COMMANDS)
    for row in REGISTRY:
        assert set(row.faults) <= set(FAULTS) and set(row.slow) <= set(row.faults)
        assert row.faults or row.why_not, row.command
        if row.command in OUTPUT_FOLDERS and row.command != "demo":
            assert "concurrent" in row.faults and "read_only" in row.faults, row.command


@pytest.mark.parametrize(("row", "fault"), fault_cells())
def test_fault(
    row: Row, fault: str, inputs: Inputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if row.needs_stems and inputs.stems is None:
        pytest.skip("needs tinysoundfont (synth)")
    if row.needs_web:
        from iad_tf.view.assets import missing_vendor_files

        if missing_vendor_files():
            pytest.skip("LiteRT.js runtime not vendored: run `make web`")
    out = tmp_path / "out"
    argv = row.argv(inputs, out)
    if fault == "disk_full":
        with injected(monkeypatch, errno.ENOSPC, out, creating=False):
            res = invoke(row, argv)
        assert res.exit_code != 0
        text = res.stderr.lower()
        assert "disk full" in text or "no space left" in text, res.output
        if row.command == "predict":  # a batch: the song is named, the run goes on
            assert f"skipped {inputs.song}" in res.stderr
        assert not (out / LOCK_NAME).exists()
    elif fault == "read_only":
        before = sorted(out.rglob("*")) if out.exists() else None
        with injected(monkeypatch, errno.EROFS, out, creating=True):
            res = invoke(row, argv)
        assert res.exit_code != 0
        assert "read-only file system" in one_error_line(res).lower(), res.output
        assert (sorted(out.rglob("*")) if out.exists() else None) == before  # nothing made
    elif fault == "concurrent":
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time\nfrom iad_tf.locks import output_lock\n"
             f"with output_lock({str(out)!r}, 'fit'):\n    print('held', flush=True)\n"
             "    time.sleep(120)\n"],
            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            res = invoke(row, argv)
        finally:
            holder.kill()
            holder.wait()
        assert res.exit_code == EXIT_LOCKED, res.output
        assert f"in use by `iad-tf fit` (pid {holder.pid}" in one_error_line(res)
    elif fault == "kill_rerun":
        child = subprocess.Popen(
            [sys.executable, "-m", "iad_tf", row.command, *argv],
            env={**os.environ, "PYTHONPATH": str(REPO), **row.kill_env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)  # well into the work
        child.send_signal(signal.SIGKILL)
        child.wait()
        res = invoke(row, argv)  # the stale lock of the dead child is taken over
        assert res.exit_code == 0, res.output
        assert not (out / LOCK_NAME).exists()
    elif fault == "nonfinite":
        assert row.nonfinite is not None
        res = invoke(row, row.nonfinite(inputs, out))
        assert res.exit_code != 0
        assert "finite number" in one_error_line(res), res.output
    elif fault == "bom":
        assert row.bom is not None
        res = invoke(row, row.bom(inputs, out))
        assert res.exit_code == 0, res.output
        assert "skipped" not in res.output, res.output
    elif fault == "truncated":
        assert row.truncated is not None
        args, says, code = row.truncated(inputs, tmp_path)
        res = invoke(row, args)
        assert res.exit_code == code, res.output
        assert says in res.stderr, res.output
    else:  # pragma: no cover - the registry test keeps faults to FAULTS
        raise AssertionError(fault)


def test_build_records_after_a_kill_verifies(inputs: Inputs, tmp_path: Path) -> None:
    """The kill_rerun cell's output is whole: every shard the manifest lists verifies."""
    from tfrecords_tools.verify import verify_dir

    out = tmp_path / "rec"
    row = next(r for r in REGISTRY if r.command == "build-records")
    child = subprocess.Popen(
        [sys.executable, "-m", "iad_tf", "build-records", *row.argv(inputs, out)],
        env={**os.environ, "PYTHONPATH": str(REPO), DELAY_ENV: "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (out / LOCK_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2.5)
    child.kill()
    child.wait()
    assert not (out / "manifest.json").exists()
    assert invoke(row, row.argv(inputs, out)).exit_code == 0
    assert verify_dir(out).ok
    assert sorted(json.loads((out / "manifest.json").read_text())["tracks"]) == [
        "0001", "0002", "0003", "0004"
    ]
