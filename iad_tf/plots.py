"""Pictures (PNG) of activations, training and evaluation. Matplotlib only, TF-free, headless.

Figures are built with ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot, no global
backend switch), so they work without a display and from any thread. Rolls show only the
instruments active in the truth or the prediction, so pictures stay readable. Every PNG is
written atomically (temporary name, then rename). Sizes are ``figsize * dpi`` pixels exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.fileio import atomic_path

DPI = 100
ROLL_WIDTH = 12.0
#: Colours of the truth-vs-prediction roll: nothing, true positive, false positive, false negative.
ROLL_COLOURS = ("#ffffff", "#2ca02c", "#d62728", "#1f77b4")
ROLL_LABELS = ("", "true positive", "false positive", "false negative (missed)")


def roll_figsize(n_rows: int) -> tuple[float, float]:
    """Default piano-roll size (inches) for ``n_rows`` instruments."""
    return ROLL_WIDTH, max(3.0, 1.2 + 0.3 * n_rows)


def _figure(figsize: tuple[float, float], dpi: int) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi, layout="constrained")


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi)
    return Path(path)


def active_rows(*rolls: np.ndarray | None) -> np.ndarray:
    """Indices of classes active in any of the given (frames, C) rolls (None ignored)."""
    present = [np.asarray(r).astype(bool).any(axis=0) for r in rolls if r is not None]
    return np.flatnonzero(np.logical_or.reduce(present))


def piano_roll(
    path: str | Path,
    classes: Sequence[str],
    frame_seconds: float,
    pred: np.ndarray,
    truth: np.ndarray | None = None,
    title: str = "",
    probs: np.ndarray | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: int = DPI,
) -> Path:
    """Draw an instrument roll: time (s) across, one row per active instrument.

    ``pred`` 0/1 (frames, C). With ``truth`` (frames, C): cells coloured true positive /
    false positive / false negative. Without: the predicted roll, shaded by ``probs``
    (frames, C) when given.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    pred = np.asarray(pred).astype(bool)
    if truth is not None and np.shape(truth) != pred.shape:
        raise ValueError(f"truth {np.shape(truth)} and prediction {pred.shape} differ in shape")
    rows = active_rows(pred, truth)
    fig = _figure(figsize or roll_figsize(len(rows)), dpi)
    ax = fig.add_subplot()
    n = pred.shape[0]
    extent = (0.0, n * frame_seconds, len(rows) - 0.5, -0.5)
    if len(rows) == 0:
        ax.text(0.5, 0.5, "no instrument active", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(0, max(n * frame_seconds, 1e-3))
        ax.set_yticks([])
    else:
        p = pred[:, rows].T  # (rows, frames)
        if truth is not None:
            t = np.asarray(truth).astype(bool)[:, rows].T
            img = np.zeros(p.shape, dtype=np.int8)
            img[p & t] = 1
            img[p & ~t] = 2
            img[~p & t] = 3
            ax.imshow(img, aspect="auto", interpolation="nearest", extent=extent,
                      cmap=ListedColormap(ROLL_COLOURS), vmin=0, vmax=3)
            ax.legend(handles=[Patch(color=ROLL_COLOURS[k], label=ROLL_LABELS[k]) for k in (1, 2, 3)],
                      loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
        else:
            shade = p.astype(np.float32)
            if probs is not None:
                shade = shade * (0.3 + 0.7 * np.asarray(probs, dtype=np.float32)[:, rows].T)
            ax.imshow(shade, aspect="auto", interpolation="nearest", extent=extent,
                      cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_yticks(range(len(rows)), [classes[i] for i in rows])
        ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
        ax.grid(which="minor", axis="y", color="#dddddd", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    return save_figure(fig, path)


def read_history(path: str | Path) -> dict[str, np.ndarray]:
    """history.csv (Keras CSVLogger: one row per epoch) -> {column: float array}."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no epochs in the history")
    out = {}
    for key in rows[0]:
        try:
            out[key] = np.array([float(r[key]) if r[key] not in ("", None) else np.nan for r in rows])
        except ValueError:
            continue  # non-numeric column
    return out


def training_curves(
    path: str | Path, history_csv: str | Path, title: str = "",
    figsize: tuple[float, float] = (10.0, 4.0), dpi: int = DPI,
) -> Path:
    """Loss curves (left) and the other logged metrics (right) per epoch from history.csv."""
    hist = read_history(history_csv)
    n = len(next(iter(hist.values())))
    epochs = hist.get("epoch", np.arange(n)) + 1
    skip = {"epoch", "lr", "learning_rate"}
    losses = sorted(k for k in hist if k not in skip and k.endswith("loss") and "hamming" not in k)
    others = sorted(k for k in hist if k not in skip and k not in losses)
    from matplotlib.ticker import MaxNLocator

    fig = _figure(figsize, dpi)
    ax1, ax2 = fig.subplots(1, 2)
    for ax, keys, name in ((ax1, losses, "loss"), (ax2, others, "metric")):
        for k in keys:
            ax.plot(epochs, hist[k], marker="o", markersize=3,
                    linestyle="--" if k.startswith("val_") else "-", label=k)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize="small")
    fig.suptitle(title or "training history")
    return save_figure(fig, path)


def f1_bars(
    path: str | Path, classes: Sequence[str], f1: Sequence[float], support: Sequence[int],
    baseline: Sequence[float] | None = None, title: str = "", label: str = "F1",
    baseline_label: str = "F1 at 0.5", dpi: int = DPI, figsize: tuple[float, float] | None = None,
) -> Path:
    """Horizontal per-instrument F1 bars (instruments with support or non-zero F1 only),
    with an optional baseline series (e.g. flat 0.5) beside each bar."""
    f1a = np.asarray(f1, dtype=float)
    keep = np.flatnonzero((np.asarray(support) > 0) | (f1a > 0))
    fig = _figure(figsize or (8.0, max(3.0, 1.0 + 0.32 * len(keep))), dpi)
    ax = fig.add_subplot()
    y = np.arange(len(keep))
    h = 0.4 if baseline is not None else 0.8
    ax.barh(y - (h / 2 if baseline is not None else 0), f1a[keep], height=h, color="#1f77b4", label=label)
    if baseline is not None:
        ax.barh(y + h / 2, np.asarray(baseline, dtype=float)[keep], height=h, color="#aaaaaa",
                label=baseline_label)
    ax.set_yticks(y, [f"{classes[i]} ({int(support[i])})" for i in keep])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (support in frames)")
    ax.grid(axis="x", alpha=0.3)
    if len(keep):
        ax.legend(loc="lower right", fontsize="small")
    ax.set_title(title or "per-instrument F1")
    return save_figure(fig, path)


def confusion_heatmap(
    path: str | Path, matrix: np.ndarray, classes: Sequence[str], title: str = "",
    max_classes: int = 20, dpi: int = DPI, figsize: tuple[float, float] = (9.0, 8.0),
) -> Path:
    """Heatmap of ``matrix`` (C, C): rows true (missed) instrument, columns wrongly predicted.

    Only instruments in a non-zero pair, at most ``max_classes`` (largest totals) are drawn.
    """
    m = np.asarray(matrix, dtype=np.int64)
    total = m.sum(axis=0) + m.sum(axis=1)
    keep = np.flatnonzero(total > 0)
    if len(keep) > max_classes:
        keep = np.sort(keep[np.argsort(-total[keep], kind="stable")[:max_classes]])
    fig = _figure(figsize, dpi)
    ax = fig.add_subplot()
    if len(keep) == 0:
        ax.text(0.5, 0.5, "no confusions", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        sub = m[np.ix_(keep, keep)]
        im = ax.imshow(sub, cmap="Reds", interpolation="nearest")
        names = [classes[i] for i in keep]
        ax.set_xticks(range(len(keep)), names, rotation=60, ha="right", fontsize="small")
        ax.set_yticks(range(len(keep)), names, fontsize="small")
        if len(keep) <= 15:
            vmax = sub.max() or 1
            for (r, c), v in np.ndenumerate(sub):
                if v:
                    ax.text(c, r, str(v), ha="center", va="center", fontsize="x-small",
                            color="white" if v > vmax / 2 else "black")
        fig.colorbar(im, ax=ax, label="frames")
        ax.set_xlabel("predicted (does not play)")
        ax.set_ylabel("true (missed)")
    ax.set_title(title or "confusions: true instrument missed while another is predicted")
    return save_figure(fig, path)
