"""One generation per output folder: the guard every generator (synth, remix, remix
--across-songs, the note-bank renderer) calls before it writes anything.

A generated root holds ``generator.json`` = {"generator", "config", "seed", "version"}
(:data:`iad_tf.aam.dataset.GENERATOR_FILE`), written first. A later run into the same folder
is accepted only when it is the same generation (same generator, seed and config, ignoring
the config keys that only extend it, e.g. the number of tracks: track k depends only on the
seed and k), so it resumes or extends; anything else is refused with one line naming the
folder and the generation it holds. Without this, ``synth --seed 1`` then ``--seed 2`` into
one folder left seed-1 stems beside seed-2 songs and a remix mixed them in unlabelled
(issue 21, item 2). A folder with AAM content but no ``generator.json`` (real AAM, or files
of unknown origin) is refused too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from iad_tf import __version__, fileio
from iad_tf.aam.dataset import GENERATOR_FILE, SOURCES_FILE, DatasetError, read_generator

#: Names a generator.json may carry.
GENERATOR_NAMES: tuple[str, ...] = ("remix", "remix-across", "synth", "synth-bank")
#: Entries whose presence marks a folder as holding AAM-layout content.
_CONTENT = ("annotations", "midis", SOURCES_FILE)
_CONTENT_PREFIXES = ("audio-mixes-", "audio-multitracks-")


class GenerationError(ValueError):
    """An output folder holding another generation's files; the message names both."""


def _describe(generator: str, seed: Any) -> str:
    return f"{generator}, seed {seed}"


def _holds_content(out: Path) -> bool:
    if not out.is_dir():
        return False
    return any(
        p.name in _CONTENT or p.name.startswith(_CONTENT_PREFIXES) for p in out.iterdir()
    )


def claim(
    out: str | Path,
    generator: str,
    config: Mapping[str, Any],
    seed: int,
    extendable: Sequence[str] = ("tracks",),
    added_defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Make ``out`` this generation's folder, or refuse; returns the generator.json written.

    ``config``: JSON-able settings that decide the output bytes; keys in ``extendable`` may
    differ from an earlier run's (it only adds tracks). ``added_defaults``: config keys added
    after earlier folders were written, with the value those folders were made with (an old
    generator.json without the key holds it). Raises :class:`GenerationError`.
    """
    if generator not in GENERATOR_NAMES:
        raise ValueError(f"unknown generator {generator!r}; one of {', '.join(GENERATOR_NAMES)}")
    out = Path(out)
    record = {"generator": generator, "config": dict(config), "seed": int(seed), "version": __version__}
    path = out / GENERATOR_FILE
    try:
        old = read_generator(out)
    except DatasetError as exc:
        raise GenerationError(str(exc)) from None
    if old is None and _holds_content(out):
        raise GenerationError(
            f"{out}: holds AAM files of an unknown generation (no {GENERATOR_FILE}); "
            "choose a new --out")
    if old is not None:
        old_cfg = {**(added_defaults or {}), **(old.get("config") or {})}
        old_cfg = {k: v for k, v in old_cfg.items() if k not in extendable}
        new_cfg = json.loads(json.dumps({k: v for k, v in record["config"].items() if k not in extendable}))
        differs = [k for k in sorted(set(old_cfg) | set(new_cfg)) if old_cfg.get(k) != new_cfg.get(k)]
        if old.get("generator") != generator or old.get("seed") != record["seed"] or differs:
            what = f" (config {', '.join(differs)} differ)" if differs and old.get("generator") == generator else ""
            raise GenerationError(
                f"{out}: holds another generation ({_describe(old.get('generator'), old.get('seed'))}); "
                f"this run is {_describe(generator, seed)}{what}; choose a new --out, or rerun "
                "with the same settings to resume")
        for k in extendable:  # a shorter rerun does not shrink what the folder holds
            old_v, new_v = (old.get("config") or {}).get(k), record["config"].get(k)
            if isinstance(old_v, int) and isinstance(new_v, int):
                record["config"][k] = max(old_v, new_v)
    fileio.write_json(path, record, sort_keys=True)
    return record

