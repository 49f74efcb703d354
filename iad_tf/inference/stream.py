"""Streaming inference: audio pushed in blocks -> per-frame probabilities, as soon as the
causal model can give them. TF-free (LiteRT, numpy).

A stream model (``<stem>_stream.tflite``, exported from a ``crnn_stream`` run) takes one chunk
``mel`` (1, chunk_frames, n_mels) plus its state tensors ``state_<name>`` and returns
``probs`` (1, chunk_frames, C) plus ``next_state_<name>``; all states start at zero.
:class:`Stream` chains :class:`~iad_tf.audio_stream.IncrementalLogMel` (exactly the offline
``logmel`` frames) with that model, so pushing a song in blocks of any size gives the frames
of the whole-song model.

Algorithmic latency of frame ``t`` (from its centre to the moment its probabilities exist):
the front end's ``n_fft // 2`` samples of look-ahead, plus waiting for the rest of its chunk,
plus the model's own look-ahead (0 frames for ``crnn_stream``). The worst case, for the first
frame of a chunk, is :func:`algorithmic_latency_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.audio_stream import IncrementalLogMel, frame_lookahead_samples
from iad_tf.config import FeatureConfig
from iad_tf.inference.litert import check_tensors, open_signature, quiet_native_stderr
from iad_tf.inference.metadata import INPUT_NAME, OUTPUT_NAME, ModelError, ModelMetadata
from iad_tf.inference.windows import silence_db


def state_input(name: str) -> str:
    """Signature input name of state ``name`` (e.g. ``state_gru``)."""
    return f"state_{name}"


def state_output(name: str) -> str:
    """Signature output name of the updated state ``name`` (e.g. ``next_state_gru``)."""
    return f"next_state_{name}"


def algorithmic_latency_s(
    cfg: FeatureConfig, chunk_frames: int, lookahead_frames: int = 0
) -> float:
    """Worst-case seconds from a frame's centre until its probabilities can be computed:
    ``((chunk_frames - 1 + lookahead_frames) * hop + n_fft // 2) / sample_rate``."""
    wait = (chunk_frames - 1 + lookahead_frames) * cfg.hop_length + frame_lookahead_samples(cfg)
    return wait / cfg.sample_rate


def stream_info(
    cfg: FeatureConfig, chunk_frames: int, states: dict[str, tuple[int, ...]], lookahead: int = 0
) -> dict[str, Any]:
    """The ``stream`` entry of a stream model's metadata."""
    return {
        "chunk_frames": int(chunk_frames),
        "lookahead_frames": int(lookahead),
        "input": INPUT_NAME,
        "states": {name: [1, *map(int, shape)] for name, shape in states.items()},
        "algorithmic_latency_s": round(algorithmic_latency_s(cfg, chunk_frames, lookahead), 4),
    }


@dataclass
class StreamModel:
    """A loaded stream model: ``step`` runs one chunk and returns the new states."""

    path: Path
    metadata: ModelMetadata
    runner: Any
    interpreter: Any

    @property
    def chunk_frames(self) -> int:
        return int(self.metadata.stream["chunk_frames"])

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v) for k, v in self.metadata.stream["states"].items()}

    def initial_states(self) -> dict[str, np.ndarray]:
        """All-zero states: the model's state before the first chunk."""
        return {k: np.zeros(s, np.float32) for k, s in self.state_shapes.items()}

    def step(
        self, mel: np.ndarray, states: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One chunk ``mel`` (chunk_frames, n_mels) dB -> (probs (chunk_frames, C), new states)."""
        feeds = {state_input(k): v for k, v in states.items()}
        out = self.runner(**{INPUT_NAME: np.ascontiguousarray(mel, np.float32)[None], **feeds})
        new = {k: np.asarray(out[state_output(k)], np.float32) for k in states}
        return np.asarray(out[OUTPUT_NAME][0], np.float32), new

    def run_chunks(
        self, mel: np.ndarray, states: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Whole chunks ``mel`` (n * chunk_frames, n_mels) one after another -> (probs (n *
        chunk_frames, C), states after the last chunk)."""
        k = self.chunk_frames
        out = [np.zeros((0, len(self.metadata.classes)), np.float32)]
        for s in range(0, mel.shape[0] - k + 1, k):
            probs, states = self.step(mel[s : s + k], states)
            out.append(probs)
        return np.concatenate(out), states

    def run_frames(self, mel: np.ndarray) -> np.ndarray:
        """A whole log-mel (frames, n_mels) chunk by chunk from zero states -> (frames, C); the
        last chunk is padded with silence (the model is causal: padding changes no real frame)."""
        padded = pad_to_chunks(mel, self.chunk_frames, silence_db(self.metadata.feature_config))
        return self.run_chunks(padded, self.initial_states())[0][: mel.shape[0]]


def pad_to_chunks(mel: np.ndarray, chunk_frames: int, value: float) -> np.ndarray:
    """``mel`` (n, n_mels) padded at the end with ``value`` to a multiple of ``chunk_frames``."""
    pad = (-mel.shape[0]) % chunk_frames
    return np.concatenate([mel, np.full((pad, mel.shape[1]), value, np.float32)]).astype(np.float32)


def load_stream_model(path: str | Path, threads: int | None = 1) -> StreamModel:
    """Load a ``<stem>_stream.tflite`` and its sidecar; :class:`ModelError` naming the file when
    it is not a stream model or its tensors contradict its metadata."""
    path = Path(path)
    sig = open_signature(path, threads)
    metadata, interpreter, runner = sig.metadata, sig.interpreter, sig.runner
    info = metadata.stream
    if not info:
        raise ModelError(
            f"{path}: not a streaming model (no 'stream' entry in its metadata); export a "
            "crnn_stream run and use <stem>_stream.tflite"
        )
    try:
        chunk = int(info["chunk_frames"])
        states = {str(k): tuple(int(d) for d in v) for k, v in dict(info["states"]).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: bad 'stream' entry in its metadata ({exc})") from exc
    if chunk != metadata.window_frames:
        raise ModelError(
            f"{path}: stream chunk_frames {chunk} != window_frames {metadata.window_frames}"
        )
    check_tensors(path, metadata, runner)
    ins, outs = runner.get_input_details(), runner.get_output_details()
    problems = []
    for name, shape in states.items():
        for key, details in ((state_input(name), ins), (state_output(name), outs)):
            found = tuple(int(d) for d in details[key]["shape"]) if key in details else None
            if found != shape:
                problems.append(f"{key} is {found}, metadata says {shape}")
    if problems:
        raise ModelError(f"{path}: model does not match its metadata: " + "; ".join(problems))
    model = StreamModel(path, metadata, runner, interpreter)
    try:
        with quiet_native_stderr():
            model.step(
                np.zeros((chunk, metadata.feature_config.n_mels), np.float32),
                model.initial_states(),
            )
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: the model does not run ({exc})") from exc
    return model


class Stream:
    """Live instrument probabilities: ``push(samples)`` -> the frames (n, C) completed so far.

    ``samples``: mono float audio at the model's sample rate (resample beforehand), in blocks
    of any size. Frame ``i`` of all outputs equals frame ``i`` of the whole-song model on
    ``logmel`` of all samples (``flush()`` at the end of the audio gives the last frames).
    ``frames_out`` counts the frames returned, ``seconds_in`` the audio pushed.
    """

    def __init__(self, model: StreamModel | str | Path, threads: int | None = 1) -> None:
        self.model = model if isinstance(model, StreamModel) else load_stream_model(model, threads)
        self.cfg = self.model.metadata.feature_config
        self._mel = IncrementalLogMel(self.cfg)
        self.reset()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.metadata.classes

    @property
    def seconds_in(self) -> float:
        return self._mel.samples_in / self.cfg.sample_rate

    def reset(self) -> None:
        """Forget everything: a new stream starts from zero states."""
        self._mel.reset()
        self._pending = np.zeros((0, self.cfg.n_mels), np.float32)  # frames not yet in a chunk
        self._states = self.model.initial_states()
        self.frames_out = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append audio; return probabilities float32 (n, C) of the frames it completed."""
        return self._run(self._mel.push(samples), final=False)

    def flush(self) -> np.ndarray:
        """End of the audio: the remaining frames (the last chunk padded with silence)."""
        return self._run(self._mel.flush(), final=True)

    def _run(self, frames: np.ndarray, final: bool) -> np.ndarray:
        k = self.model.chunk_frames
        mel = np.concatenate([self._pending, frames])  # (n, n_mels)
        n_real = mel.shape[0]
        if final:
            mel = pad_to_chunks(mel, k, silence_db(self.cfg))
        n_full = (mel.shape[0] // k) * k
        probs, self._states = self.model.run_chunks(mel[:n_full], self._states)
        self._pending = mel[n_full:]
        if final:
            probs = probs[:n_real]
        self.frames_out += probs.shape[0]
        return probs
