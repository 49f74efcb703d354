"""Every ``iad-tf`` / ``tfrecords-tools`` command line in the README (and the model card) names
a real command, and every option it uses is one that command accepts; ``--help`` works."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from iad_tf.cli.main import cli as iad_cli
from tfrecords_tools.cli import cli as tfr_cli

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "saved_models" / "README.md"]
PROGRAMS = {"iad-tf": iad_cli, "tfrecords-tools": tfr_cli}


def command_lines() -> list[tuple[str, str]]:
    """(doc name, command line) for each iad-tf/tfrecords-tools line of the docs' code blocks."""
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
            for line in joined.splitlines():
                line = line.split("#")[0].strip()
                line = re.sub(r"^(\$ |\.venv/bin/)", "", line)
                if line.split(" ")[0] in PROGRAMS:
                    out.append((doc.name, line))
    return out


CASES = command_lines()


def test_docs_hold_command_examples() -> None:
    progs = {line.split()[0] for _, line in CASES}
    assert progs == set(PROGRAMS) and len(CASES) >= 15


@pytest.mark.parametrize(("doc", "line"), CASES, ids=[f"{d}:{cmd[:50]}" for d, cmd in CASES])
def test_documented_command_is_valid(doc: str, line: str) -> None:
    argv = shlex.split(line)
    group = PROGRAMS[argv[0]]
    name = argv[1]
    ctx = click.Context(group)
    cmd = group.get_command(ctx, name)
    assert cmd is not None, f"{doc}: unknown command {argv[0]} {name}"
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    used = {a.split("=")[0] for a in argv[2:] if a.startswith("--")}
    assert used <= known, f"{doc}: {line!r} uses unknown option(s) {sorted(used - known)}"
    result = CliRunner().invoke(group, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
