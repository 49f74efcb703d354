"""Validation tracks and representative windows for export, read from a records directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.export.checks import Track
from iad_tf.inference.windows import make_windows


def read_tracks(
    records_dir: str | Path, split: str, manifest: dict[str, Any], limit: int | None = None
) -> list[Track]:
    """Up to ``limit`` (track id, mel float32 (frames, n_mels), labels uint8 (frames, C)) of ``split``."""
    from iad_tf.evaluation.inference import iter_split

    out: list[Track] = []
    if not manifest.get("splits", {}).get(split):
        return out
    for track in iter_split(records_dir, split, manifest):
        out.append(track)
        if limit is not None and len(out) >= limit:
            break
    return out


def representative_windows(
    tracks: list[Track], window: int, hop: int, pad_value: float, n: int, seed: int = 0
) -> np.ndarray:
    """``n`` windows (n, window, n_mels) drawn at random (seeded) from the tracks' windows."""
    if not tracks:
        raise ValueError("no tracks to draw representative windows from")
    all_windows = np.concatenate(
        [make_windows(mel, window, hop, pad_value)[0] for _, mel, _ in tracks]
    )
    rng = np.random.default_rng(seed)
    pick = rng.choice(all_windows.shape[0], size=min(n, all_windows.shape[0]), replace=False)
    return all_windows[np.sort(pick)]
