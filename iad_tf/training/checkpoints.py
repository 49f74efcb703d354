"""Saving a run so that a kill at any moment leaves the previous good state.

``model.keras`` (the kept epoch) and ``backup/`` (resume state: weights + epoch) are each
written to a temporary name and renamed (:func:`iad_tf.fileio.atomic_path`); on resume the
per-epoch logs are cut back to the backup's epoch, so the rerun's epochs follow on exactly.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from iad_tf.fileio import atomic_path, read_json, write_text

BACKUP_DIR = "backup"
BACKUP_META = "training_metadata.json"


def save_model(model: Any, path: Path) -> None:
    """``model.save`` through a temporary name (Keras insists on the ``.keras`` suffix)."""
    with atomic_path(path, keep_name_end=True) as tmp:
        model.save(tmp)


def backup_epoch(run_dir: Path) -> int | None:
    """Epochs completed according to ``backup/`` (None: no usable backup)."""
    meta = run_dir / BACKUP_DIR / BACKUP_META
    if not meta.is_file():
        return None
    try:
        return int(read_json(meta)["epoch"])
    except (ValueError, KeyError, TypeError):
        return None


def trim_logs(run_dir: Path, epochs: int) -> None:
    """Keep the first ``epochs`` epochs of ``metrics.jsonl`` and ``history.csv`` (a kill
    between the log lines and the backup left later ones); a torn last line goes too."""
    jsonl = run_dir / "metrics.jsonl"
    if jsonl.is_file():
        rows = []
        for line in jsonl.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and int(row.get("epoch", 0)) <= epochs:
                rows.append(line)
        write_text(jsonl, "".join(r + "\n" for r in rows))
    history = run_dir / "history.csv"
    if history.is_file():
        lines = list(csv.reader(io.StringIO(history.read_text(encoding="utf-8"))))
        kept = lines[:1] + [r for r in lines[1:] if r and r[0].isdigit() and int(r[0]) < epochs]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(kept)
        write_text(history, buf.getvalue())
