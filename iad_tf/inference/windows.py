"""Cut a song's log-mel into the model's fixed windows and stitch the outputs back together.

Windows of ``W`` frames start every ``hop`` frames; the last one is aligned to the end of
the song, so only a song shorter than one window is padded (with the dB value of silence).
Overlapping outputs are cross-faded: each window's frames are weighted by a ramp that rises
over the overlap at both of its edges (a recurrent model is least sure near a window's edge),
and the weighted sum is normalised. Both work block by block (:func:`iter_windows`,
:class:`Stitcher`), so a long recording never needs all its windows in memory. TF-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from iad_tf.audio import compress
from iad_tf.config import FeatureConfig


def silence_db(cfg: FeatureConfig) -> float:
    """The log-mel value of digital silence under ``cfg`` (dB for the default config)."""
    return float(compress(np.zeros(1), cfg)[0])


def window_starts(n_frames: int, window: int, hop: int) -> np.ndarray:
    """Start frames int64 (N,) covering ``n_frames``; the last window ends at the last frame."""
    cut = iter_windows([np.zeros((n_frames, 0), np.float32)], window, hop, 0.0)
    return np.asarray([start for start, _, _ in cut], dtype=np.int64)


def iter_windows(
    blocks: Iterable[np.ndarray], window: int, hop: int, pad_value: float
) -> Iterator[tuple[int, np.ndarray, int]]:
    """Cut a song's log-mel, given as consecutive blocks (frames_i, n_mels), into windows.

    Yields ``(start, mel (window, n_mels), real_frames)`` in start order, each window as soon
    as the blocks holding it have arrived: every ``hop`` frames from 0 while the window ends
    before the song's last frame, then one window ending at the last frame. A song shorter
    than ``window`` gives one window padded at the end with ``pad_value`` (``real_frames``
    says how many of its frames are the song's). Holds ``window`` frames plus one block.
    """
    if window < 1 or not 1 <= hop <= window:
        raise ValueError(f"need 1 <= hop ({hop}) <= window ({window})")
    buf: np.ndarray | None = None  # frames buf_start .. n - 1
    buf_start = n = next_start = 0
    for block in blocks:
        if block.ndim != 2 or (buf is not None and block.shape[1] != buf.shape[1]):
            raise ValueError(f"log-mel blocks must be (frames, n_mels) alike, got {block.shape}")
        buf = block if buf is None else np.concatenate([buf, block])
        n += block.shape[0]
        while next_start + window < n:  # ends before the last frame: not the song's last window
            yield next_start, buf[next_start - buf_start :][:window], window
            next_start += hop
        keep = max(0, n - window)  # later windows (the last one too) start at or after n - window
        buf, buf_start = buf[keep - buf_start :], keep
    if buf is None or n == 0:
        raise ValueError("no frames to cut into windows")
    if n < window:
        pad = np.full((window - n, buf.shape[1]), pad_value, dtype=buf.dtype)
        yield 0, np.concatenate([buf, pad]), n
    else:
        yield n - window, buf[n - window - buf_start :], window


def make_windows(
    mel: np.ndarray, window: int, hop: int, pad_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """(frames, n_mels) -> (windows (N, window, n_mels) float32, starts (N,)).

    A song shorter than ``window`` is padded at the end with ``pad_value``.
    """
    if mel.ndim != 2 or mel.shape[0] == 0:
        raise ValueError(f"no frames to cut into windows (log-mel of shape {mel.shape})")
    cut = list(iter_windows([mel], window, hop, pad_value))
    windows = np.stack([w for _, w, _ in cut]).astype(np.float32)  # (N, window, n_mels)
    return windows, np.asarray([start for start, _, _ in cut], dtype=np.int64)


def edge_weights(window: int, overlap: int) -> np.ndarray:
    """Weights float32 (window,): ramp up over ``overlap`` frames at both edges, 1 inside."""
    w = np.ones(window, dtype=np.float32)
    r = min(max(overlap, 0), window // 2)
    if r > 0:
        ramp = (np.arange(r, dtype=np.float32) + 1.0) / (r + 1.0)
        w[:r] = ramp
        w[window - r :] = ramp[::-1]
    return w


#: Frames per page of finished probabilities (1 MB at 31 classes: large enough that the
#: allocator returns a freed page to the system, so a long song's pages cost no extra memory).
PAGE_FRAMES: int = 1 << 13


class Stitcher:
    """Per-frame probabilities from overlapping window outputs, as the windows arrive.

    Frames covered by several windows get the edge-weighted average (:func:`edge_weights`).
    Windows must be added in start order; every frame before the latest start is final then
    and leaves the accumulator, which never holds more than one window of frames.
    """

    def __init__(self, window: int, hop: int) -> None:
        self.window = window
        self.weights = edge_weights(window, window - hop)  # (window,) float32
        self._acc: np.ndarray | None = None  # (window, C) float64 weighted sums from frame _base
        self._wsum = np.zeros(window, dtype=np.float64)  # (window,) their weights
        self._base = 0
        self._end = 0  # one past the last frame any window covered
        self._pages: list[np.ndarray] = []  # finished frames, float32 (PAGE_FRAMES, C) each
        self._n_done = 0  # frames in the pages

    def add(self, start: int, probs: np.ndarray) -> None:
        """Add one window's outputs (k <= window, C) for frames ``start .. start + k - 1``."""
        if start < self._base or probs.shape[0] > self.window:
            raise ValueError(
                f"window at frame {start} with {probs.shape[0]} frames: windows must come in "
                f"start order ({self._base}) with at most {self.window} frames"
            )
        if self._acc is None:
            self._acc = np.zeros((self.window, probs.shape[1]), dtype=np.float64)
        self._finish_until(start)
        k = probs.shape[0]
        self._acc[:k] += probs * self.weights[:k, None]
        self._wsum[:k] += self.weights[:k]
        self._end = max(self._end, start + k)

    def _finish_until(self, frame: int) -> None:
        """Move frames ``_base .. frame - 1`` to the finished list."""
        d = frame - self._base
        if d <= 0 or self._acc is None:
            return
        if d > self.window or not np.all(self._wsum[:d] > 0):
            raise ValueError(f"frames {self._base}..{frame - 1} are not covered by any window")
        self._store((self._acc[:d] / self._wsum[:d, None]).astype(np.float32))
        self._acc[: self.window - d] = self._acc[d:]
        self._acc[self.window - d :] = 0.0
        self._wsum[: self.window - d] = self._wsum[d:]
        self._wsum[self.window - d :] = 0.0
        self._base = frame

    def _store(self, rows: np.ndarray) -> None:
        """Append finished frames (k, C) float32 to the pages."""
        while rows.shape[0]:
            used = self._n_done % PAGE_FRAMES
            if used == 0:
                self._pages.append(np.empty((PAGE_FRAMES, rows.shape[1]), dtype=np.float32))
            k = min(rows.shape[0], PAGE_FRAMES - used)
            self._pages[-1][used : used + k] = rows[:k]
            self._n_done += k
            rows = rows[k:]

    def finish(self) -> np.ndarray:
        """Probabilities float32 (frames, C) of every frame up to the end of the last window."""
        if self._acc is None:
            raise ValueError("no windows to stitch")
        self._finish_until(self._end)
        out = np.empty((self._n_done, self._acc.shape[1]), dtype=np.float32)
        for i in range(len(self._pages)):  # page by page, freeing each: one copy of the song
            page, self._pages[i] = self._pages[i], out[:0]
            out[i * PAGE_FRAMES : (i + 1) * PAGE_FRAMES] = page[: self._n_done - i * PAGE_FRAMES]
        self._pages, self._acc = [], None  # finished: a second call has no windows
        return out


def stitch(window_probs: np.ndarray, starts: np.ndarray, n_frames: int, hop: int) -> np.ndarray:
    """Window outputs (N, window, C) at ``starts`` -> per-frame probabilities (n_frames, C).

    Frames covered by several windows get the edge-weighted average; padding is cut off.
    """
    stitcher = Stitcher(window_probs.shape[1], hop)
    for p, s in zip(window_probs, starts, strict=True):
        stitcher.add(int(s), p[: max(0, n_frames - int(s))])
    out = stitcher.finish()
    if out.shape[0] != n_frames:
        raise ValueError(f"the windows cover {out.shape[0]} of {n_frames} frames")
    return out
