"""``iad-tf predict`` as a library: song -> log-mel -> LiteRT windows -> probabilities ->
decisions -> segments, plus the files written per song. TF-free.

Per song ``<out>/<name>``: ``<name>.json`` (or ``.csv``) instrument segments,
``<name>.npz`` frame probabilities and decisions, and with ``plot`` a ``<name>.png`` piano roll.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from iad_tf.audio import AUDIO_EXTENSIONS, AudioError, load_audio, logmel
from iad_tf.fileio import write_json, write_npz, write_text
from iad_tf.inference.litert import LiteRTModel
from iad_tf.inference.segments import Segment, seconds_active, to_segments
from iad_tf.inference.waveform import waveform_probabilities
from iad_tf.inference.windows import make_windows, silence_db, stitch
from iad_tf.postprocess import decide

OutputFormat = Literal["json", "csv"]
SEGMENT_FIELDS: tuple[str, ...] = ("instrument", "start_s", "end_s", "confidence")


@dataclass
class SongPrediction:
    """One song's result: probabilities and decisions (frames, C), segments, summary."""

    path: Path
    duration_s: float
    probs: np.ndarray
    decisions: np.ndarray
    segments: list[Segment]
    outputs: list[Path] = field(default_factory=list)

    @property
    def seconds_active(self) -> dict[str, float]:
        return seconds_active(self.segments)

    def summary(self) -> str:
        """One line: file, duration and seconds each instrument is active."""
        m, s = divmod(int(round(self.duration_s)), 60)
        active = self.seconds_active
        found = ", ".join(f"{k} {v:.1f} s" for k, v in active.items()) or "no instrument detected"
        return f"{self.path.name} ({m}:{s:02d}): {found}"


@dataclass(frozen=True)
class AudioJob:
    """An audio file and the output name (relative, no suffix) its results get."""

    path: Path
    name: Path


def probabilities(model: LiteRTModel, mel: np.ndarray) -> np.ndarray:
    """Per-frame probabilities float32 (frames, C) of a song's log-mel (frames, n_mels) dB."""
    md = model.metadata
    if mel.ndim != 2 or mel.shape[1] != md.feature_config.n_mels:
        raise ValueError(f"log-mel must be (frames, {md.feature_config.n_mels}), got {mel.shape}")
    windows, starts = make_windows(
        mel, md.window_frames, md.hop_frames, silence_db(md.feature_config)
    )
    return stitch(model.run_windows(windows), starts, mel.shape[0], md.hop_frames)


def predict_audio(
    path: str | Path, model: LiteRTModel, median_window: int | None = None
) -> SongPrediction:
    """Decode ``path``, compute THE log-mel, run the model, threshold and smooth.

    Raises :class:`~iad_tf.audio.AudioError` for an unreadable file.
    """
    md = model.metadata
    cfg = md.feature_config
    y = load_audio(path, cfg.sample_rate)  # (samples,)
    if model.variant.takes_audio:  # the log-mel is computed in the model's graph
        probs = waveform_probabilities(model, y)  # (frames, C)
    else:
        mel = logmel(y, cfg)  # (frames, n_mels)
        probs = probabilities(model, mel)  # (frames, C)
    window = md.median_window if median_window is None else median_window
    decisions = decide(probs, np.asarray(md.thresholds, dtype=np.float32), window)
    duration = y.shape[0] / cfg.sample_rate
    segs = to_segments(decisions, probs, md.classes, cfg.frame_seconds, duration)
    return SongPrediction(Path(path), duration, probs, decisions, segs)


def segments_csv(segments: Sequence[Segment]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SEGMENT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for s in segments:
        writer.writerow(s.to_dict())
    return buf.getvalue()


def write_outputs(
    pred: SongPrediction,
    model: LiteRTModel,
    out_base: Path,
    fmt: OutputFormat = "json",
    plot: bool = False,
    median_window: int | None = None,
) -> list[Path]:
    """Write ``out_base`` + ``.json``/``.csv``, ``.npz`` and optionally ``.png``; return the paths."""
    md = model.metadata
    fs = md.feature_config.frame_seconds
    base = str(out_base)
    outputs = []
    if fmt == "csv":
        outputs.append(write_text(base + ".csv", segments_csv(pred.segments)))
    elif fmt == "json":
        outputs.append(
            write_json(
                base + ".json",
                {
                    "file": str(pred.path),
                    "model": str(model.path),
                    "duration_s": round(pred.duration_s, 4),
                    "frame_seconds": fs,
                    "median_window": md.median_window if median_window is None else median_window,
                    "segments": [s.to_dict() for s in pred.segments],
                    "seconds_active": pred.seconds_active,
                },
            )
        )
    else:
        raise ValueError(f"unknown format {fmt!r} (json or csv)")
    outputs.append(
        write_npz(
            base + ".npz",
            probs=pred.probs,
            decisions=pred.decisions,
            times=md.feature_config.frame_times(pred.probs.shape[0]),
            classes=np.asarray(md.classes),
            thresholds=np.asarray(md.thresholds, dtype=np.float32),
        )
    )
    if plot:
        from iad_tf.plots import piano_roll

        outputs.append(
            piano_roll(
                base + ".png",
                md.classes,
                fs,
                pred.decisions,
                probs=pred.probs,
                title=pred.path.name,
            )
        )
    return outputs


def find_audio(paths: Iterable[str | Path]) -> tuple[list[AudioJob], list[str]]:
    """Audio files named by ``paths`` (folders searched recursively for mp3/flac/wav/ogg).

    Returns (jobs, problems): a path that does not exist, or a folder without audio, is a
    problem message. Output names mirror a folder's layout; clashes get a numeric suffix.
    """
    jobs: list[AudioJob] = []
    problems: list[str] = []
    taken: set[Path] = set()

    def add(path: Path, name: Path) -> None:
        unique, k = name, 2
        while unique in taken:
            unique = name.with_name(f"{name.name}-{k}")
            k += 1
        taken.add(unique)
        jobs.append(AudioJob(path, unique))

    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
            )
            if not found:
                problems.append(
                    f"{p}: no audio files ({'/'.join(AUDIO_EXTENSIONS)}) in this folder"
                )
            for f in found:
                add(f, f.relative_to(p).with_suffix(""))
        elif p.is_file():
            add(p, Path(p.stem))
        else:
            problems.append(f"{p}: no such file or directory")
    return jobs, problems


@dataclass
class PredictReport:
    """What a predict run did: per-song results and failures (``path: reason``)."""

    results: list[SongPrediction] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def predict_paths(
    paths: Iterable[str | Path],
    model: LiteRTModel,
    out_dir: str | Path,
    fmt: OutputFormat = "json",
    plot: bool = False,
    median_window: int | None = None,
    progress: bool = True,
    echo: Any = None,
) -> PredictReport:
    """Predict every audio file under ``paths`` into ``out_dir``; unreadable files are
    reported in ``failures`` and skipped. ``echo(str)`` receives one summary line per song."""
    from tqdm import tqdm

    jobs, problems = find_audio(paths)
    report = PredictReport(failures=list(problems))
    out_dir = Path(out_dir)
    bar = tqdm(jobs, desc="predict", unit="song", disable=not progress or len(jobs) < 2)
    for job in bar:
        try:
            pred = predict_audio(job.path, model, median_window)
        except (AudioError, OSError, RuntimeError, ValueError) as exc:
            msg = str(exc) if str(job.path) in str(exc) else f"{job.path}: {exc}"
            report.failures.append(msg)
            (echo or bar.write)(f"skipped {msg}")
            continue
        pred.outputs = write_outputs(pred, model, out_dir / job.name, fmt, plot, median_window)
        report.results.append(pred)
        if echo is not None:
            echo(pred.summary())
        else:
            bar.write(pred.summary())
    return report
