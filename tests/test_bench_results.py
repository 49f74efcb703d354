"""Benchmark results are published: every bench/results/*.json is written by
``bench.results_io.write_result`` (atomic, absolute local paths cut to their last part), and
the files in the repository hold none of the measuring machine's folders."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
#: The one module allowed to call ``write_json`` on a results file.
RESULTS_IO = BENCH / "results_io.py"


def test_portable_paths_cuts_absolute_local_paths_only(tmp_path: Path) -> None:
    from iad_tf.fileio import portable_paths

    track = str(tmp_path / "aam-sample" / "audio-mixes-mp3" / "1941_mix.mp3")  # absolute
    value = {
        "track": track,
        "relative": "bench/work/sample-records",
        "name": "1941_mix.mp3",
        "url": "s3://bucket/models/iad_tf_crnn.tflite",
        "file_url": (tmp_path / "main").as_uri(),
        "numbers": [1, 2.5, -0.0, None, True],
        "nested": {"runs": [{"run_dir": str(tmp_path / "x" / "cv_crnn"), "wall_s": 12.25}], "n": 3},
        "tuple": ("/abs/a.json", 7),
    }
    kept = ("relative", "name", "url", "file_url", "numbers")  # relative, names, URLs, numbers
    assert portable_paths(value) == {
        **{k: value[k] for k in kept},
        "track": "1941_mix.mp3",
        "nested": {"runs": [{"run_dir": "cv_crnn", "wall_s": 12.25}], "n": 3},
        "tuple": ["a.json", 7],
    }
    assert value["track"] == track  # the input is not modified
    assert portable_paths("/") == ""  # the root has no last part
    assert portable_paths(3.5) == 3.5


def test_write_result_is_atomic_and_portable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iad_tf.fileio as fileio
    from bench.results_io import write_result

    target = tmp_path / "results" / "x.json"
    calls: list[Path] = []
    real = fileio.atomic_path

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fileio, "atomic_path", spy)
    assert write_result(target, {"track": str(tmp_path / "a.mp3"), "rtf": 150.5}) == target
    assert calls == [target]  # through the atomic writer, parent folder created
    assert json.loads(target.read_text()) == {"track": "a.mp3", "rtf": 150.5}
    assert not [p for p in target.parent.iterdir() if p != target]  # no temporary left


def _json_dumps_in(node: ast.Call) -> bool:
    """Whether a ``json.dumps``/``json.dump`` call is among ``node``'s arguments."""
    return any(
        isinstance(sub, ast.Call)
        and isinstance(sub.func, ast.Attribute)
        and sub.func.attr in ("dumps", "dump")
        and isinstance(sub.func.value, ast.Name)
        and sub.func.value.id == "json"
        for arg in [*node.args, *(k.value for k in node.keywords)]
        for sub in ast.walk(arg)
    )


def _writes_json_directly(tree: ast.AST) -> list[int]:
    """Lines of ``<x>.write_text(... json.dumps(...) ...)`` (or write_bytes) and of any
    ``write_json(...)`` call."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        if name == "write_json" or (name in ("write_text", "write_bytes") and _json_dumps_in(node)):
            lines.append(node.lineno)
    return lines


def test_bench_scripts_write_results_only_through_write_result() -> None:
    scripts = sorted(p for p in BENCH.glob("*.py") if p != RESULTS_IO)
    assert len(scripts) > 10
    offenders = {
        p.name: lines
        for p in scripts
        if (lines := _writes_json_directly(ast.parse(p.read_text(), str(p))))
    }
    assert not offenders, f"write results with bench.results_io.write_result: {offenders}"
    # the check itself sees the old ways of writing
    old = "p.write_text(json.dumps(r, indent=2) + '\\n')\nwrite_json(p, r)\nfileio.write_json(p, r)"
    assert _writes_json_directly(ast.parse(old)) == [1, 2, 3]


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_results_files_hold_no_machine_paths(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    machine = [
        (where, s)
        for where, s in _strings(data)
        if "://" not in s and Path(s).is_absolute()
        or "file:///" in s or re.search(r"(^|\s)/(work|tmp|home|root|Users)/", s)
    ]
    assert not machine, f"{path.name}: absolute local paths {machine[:5]}"


def test_results_folder_is_not_empty() -> None:
    assert len(list(RESULTS.glob("*.json"))) > 10
