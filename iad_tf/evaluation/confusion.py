"""Which instrument is predicted when another one truly plays and is missed. TF-free.

``confusion_matrix(truth, pred)[a, b]`` counts the frames where instrument ``a`` truly plays
and is missed (truth 1, prediction 0) while instrument ``b`` is predicted and does not play
(prediction 1, truth 0). One frame can count for several pairs. The diagonal is always 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from iad_tf.evaluation.tables import text_table
from iad_tf.fileio import write_text

CONFUSION_FILE = "confusion.csv"
HEADERS: tuple[str, str, str] = ("True", "Predicted", "Count")


def confusion_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """int64 (C, C) pair counts from truth and decisions, both 0/1 (frames, C)."""
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and predictions {pred.shape} differ in shape")
    t = truth.astype(bool)
    p = pred.astype(bool)
    missed = (t & ~p).astype(np.int64)  # (frames, C): a plays, not detected
    false = (p & ~t).astype(np.int64)  # (frames, C): b detected, does not play
    return missed.T @ false  # (C, C)


def top_pairs(matrix: np.ndarray, classes: Sequence[str], k: int = 20) -> list[tuple[str, str, int]]:
    """The ``k`` largest non-zero pairs as (true, predicted, count), largest first.

    Ties are broken by class order (true, then predicted), so the order is deterministic.
    """
    c = matrix.shape[0]
    flat = matrix.reshape(-1)
    order = np.lexsort((np.arange(flat.size), -flat))  # count desc, then index asc
    out = []
    for idx in order[:k]:
        if flat[idx] <= 0:
            break
        out.append((classes[idx // c], classes[idx % c], int(flat[idx])))
    return out


def pairs_csv(pairs: Sequence[tuple[str, str, int]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADERS)
    w.writerows(pairs)
    return buf.getvalue()


def write_pairs_csv(path: str | Path, pairs: Sequence[tuple[str, str, int]]) -> Path:
    return write_text(path, pairs_csv(pairs))


def read_pairs_csv(path: str | Path) -> list[tuple[str, str, int]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(rows[0]) != HEADERS:
        raise ValueError(f"{path}: expected a {','.join(HEADERS)} CSV header")
    return [(r[0], r[1], int(r[2])) for r in rows[1:] if r]


def pairs_table(pairs: Sequence[tuple[str, str, int]], title: str = "") -> str:
    if not pairs:
        return (title + "\n" if title else "") + "(no confusions: no missed frame with a false alarm)"
    return text_table(HEADERS, pairs, title=title)
