"""Pictures: non-empty PNGs of the expected pixel size, with the colours they promise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from iad_tf import plots
from iad_tf.config import AAM_CLASSES


def _rgb(path: Path) -> np.ndarray:
    img = imread(path)  # (H, W, 4) float in [0, 1]
    return (img[..., :3] * 255).round().astype(np.int16)


def _count_colour(img: np.ndarray, hex_colour: str, tol: int = 3) -> int:
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - target).max(axis=-1) <= tol).sum())


def _rolls(frames: int = 400) -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((frames, 31), np.uint8)
    truth[50:200, 3] = 1
    truth[100:300, 8] = 1
    pred = truth.copy()
    return truth, pred


def test_piano_roll_with_truth_size_and_colours(tmp_path: Path) -> None:
    truth, pred = _rolls()
    path = plots.piano_roll(tmp_path / "r.png", AAM_CLASSES, 0.0232, pred, truth, title="all correct",
                            figsize=(8.0, 3.0), dpi=50)
    img = _rgb(path)
    assert img.shape[:2] == (150, 400)  # (H, W) = figsize * dpi
    tp, fp, fn = (_count_colour(img, plots.ROLL_COLOURS[k]) for k in (1, 2, 3))
    # all predictions correct: the roll shows green cells; red/blue only as legend swatches
    legend_swatch = max(fp, fn)
    assert tp > 20 * max(legend_swatch, 1)
    pred2 = pred.copy()
    pred2[:, 3] = 0  # miss BrightPiano entirely, add a false Drums stretch
    pred2[300:400, 8] = 1
    img2 = _rgb(plots.piano_roll(tmp_path / "r2.png", AAM_CLASSES, 0.0232, pred2, truth,
                                 figsize=(8.0, 3.0), dpi=50))
    assert _count_colour(img2, plots.ROLL_COLOURS[3]) > 5 * legend_swatch  # missed: blue
    assert _count_colour(img2, plots.ROLL_COLOURS[2]) > 5 * legend_swatch  # false alarm: red
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def test_piano_roll_prediction_only_and_default_size(tmp_path: Path) -> None:
    _, pred = _rolls()
    probs = pred * 0.9
    path = plots.piano_roll(tmp_path / "p.png", AAM_CLASSES, 0.0232, pred, probs=probs)
    w, h = plots.roll_figsize(2)  # two active instruments
    img = _rgb(path)
    assert img.shape[:2] == (round(h * plots.DPI), round(w * plots.DPI))
    assert (img.sum(axis=-1) < 600).mean() > 0.05  # shaded cells, not a blank page
    empty = plots.piano_roll(tmp_path / "e.png", AAM_CLASSES, 0.0232, np.zeros((10, 31)))
    assert imread(empty).shape[:2] == (300, 1200)


def test_active_rows() -> None:
    a = np.zeros((5, 4))
    b = np.zeros((5, 4))
    a[1, 2] = 1
    b[3, 0] = 1
    assert plots.active_rows(a, None, b).tolist() == [0, 2]


def test_training_curves_f1_bars_and_heatmap(tmp_path: Path) -> None:
    hist = tmp_path / "history.csv"
    hist.write_text("epoch,f1_macro,learning_rate,loss,val_f1_macro,val_loss\n"
                    "0,0.1,0.001,0.7,0.2,0.6\n1,0.3,0.001,0.5,0.3,0.5\n2,0.4,0.001,0.4,0.35,0.45\n")
    assert sorted(plots.read_history(hist)) == ["epoch", "f1_macro", "learning_rate", "loss",
                                                 "val_f1_macro", "val_loss"]
    p = plots.training_curves(tmp_path / "t.png", hist, figsize=(6, 3), dpi=80)
    assert imread(p).shape[:2] == (240, 480)
    support = np.zeros(31, int)
    support[[0, 4, 9]] = [100, 50, 10]
    f1 = np.zeros(31)
    f1[[0, 4]] = [0.8, 0.4]
    p = plots.f1_bars(tmp_path / "f.png", AAM_CLASSES, f1, support, baseline=f1 / 2, figsize=(5, 3), dpi=60)
    img = _rgb(p)
    assert img.shape[:2] == (180, 300)
    assert _count_colour(img, "#1f77b4") > 100  # the F1 bars are drawn
    m = np.zeros((31, 31), int)
    m[10, 13] = 11791
    m[13, 10] = 50
    p = plots.confusion_heatmap(tmp_path / "c.png", m, AAM_CLASSES, figsize=(5, 4), dpi=60)
    assert imread(p).shape[:2] == (240, 300)
    assert p.stat().st_size > 5000


def test_mismatched_roll_shapes_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        plots.piano_roll(tmp_path / "x.png", AAM_CLASSES, 0.02, np.zeros((5, 31)), np.zeros((6, 31)))
