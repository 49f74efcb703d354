"""``iad-tf predict`` as a library: song -> log-mel -> LiteRT windows -> probabilities ->
decisions -> segments, plus the files written per song. TF-free.

Per song ``<out>/<name>``: ``<name>.json`` (or ``.csv``) instrument segments,
``<name>.npz`` frame probabilities and decisions, and with ``plot`` a ``<name>.png`` piano roll.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from iad_tf.audio import AUDIO_EXTENSIONS, AudioError
from iad_tf.audio_blocks import FileLogmel, read_blocks, resample_blocks
from iad_tf.fileio import os_error_line, write_json, write_npz, write_text
from iad_tf.inference.litert import LiteRTModel
from iad_tf.inference.segments import Segment, seconds_active, to_segments
from iad_tf.inference.waveform import waveform_probabilities_blocks
from iad_tf.inference.windows import Stitcher, iter_windows, silence_db
from iad_tf.postprocess import Presence, decide_song
from iad_tf.storage import to_path

#: Presence confidence of a model without a presence gate: the mean of its top 3 seconds.
DEFAULT_CONFIDENCE_SECONDS = 3.0

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
    instruments: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    #: Scores against an annotation (``predict --truth``), else empty.
    scores: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_active(self) -> dict[str, float]:
        return seconds_active(self.segments)

    def summary(self) -> str:
        """One line: file, duration and the instruments in the song (confidence, seconds)."""
        m, s = divmod(int(round(self.duration_s)), 60)
        found = ", ".join(
            f"{i['instrument']} ({i['confidence']:.2f}, {i['seconds_active']:.1f} s)"
            for i in self.instruments
        )
        n = len(self.instruments)
        head = f"{n} instrument{'s' if n != 1 else ''}: " if n else "no instrument detected"
        line = f"{self.path.name} ({m}:{s:02d}): {head}{found}"
        if self.scores:
            sc = self.scores
            macro = "n/a" if sc["f1_macro"] is None else f"{sc['f1_macro']:.3f}"
            line += (
                f"\n  vs truth: frame F1 micro {sc['f1_micro']:.3f}, macro {macro}; "
                f"{len(sc['instruments_predicted'])} instruments predicted, "
                f"{len(sc['instruments_present'])} present; "
                f"missed: {', '.join(sc['missed']) or 'none'}; "
                f"false alarms: {', '.join(sc['false_alarms']) or 'none'}"
            )
        return line


def song_instruments(
    classes: Sequence[str],
    probs: np.ndarray,
    decisions: np.ndarray,
    presence: Presence | None,
    frame_seconds: float,
) -> list[dict[str, Any]]:
    """The instruments of a song: classes with at least one active frame after the presence
    gate, each with its song-level ``confidence`` (the presence score: mean of the top
    ``presence.seconds`` of its probabilities) and ``seconds_active``; most active first."""
    gate = presence or Presence(0.0, DEFAULT_CONFIDENCE_SECONDS)
    conf = gate.scores(probs, frame_seconds)  # (C,)
    active = decisions.sum(axis=0)  # (C,) frames
    out = [
        {
            "instrument": classes[c],
            "confidence": round(float(conf[c]), 4),
            "seconds_active": round(float(active[c]) * frame_seconds, 2),
        }
        for c in np.flatnonzero(active > 0)
    ]
    return sorted(out, key=lambda d: (-d["seconds_active"], d["instrument"]))


@dataclass(frozen=True)
class AudioJob:
    """An audio file and the output name (relative, no suffix) its results get."""

    path: Path
    name: Path


def probabilities(model: LiteRTModel, mel: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
    """Per-frame probabilities float32 (frames, C) of a song's log-mel (frames, n_mels) dB,
    whole or as consecutive blocks (e.g. :class:`~iad_tf.audio_blocks.FileLogmel`): each
    window runs as soon as its frames have arrived, so memory does not grow with the song."""
    md = model.metadata
    n_mels = md.feature_config.n_mels

    def checked(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            if block.ndim != 2 or block.shape[1] != n_mels:
                raise ValueError(f"log-mel must be (frames, {n_mels}), got {block.shape}")
            yield block

    stitcher = Stitcher(md.window_frames, md.hop_frames)
    blocks = [mel] if isinstance(mel, np.ndarray) else mel
    pad = silence_db(md.feature_config)
    for start, window, real in iter_windows(checked(blocks), md.window_frames, md.hop_frames, pad):
        stitcher.add(start, model.run_window(window)[:real])
    return stitcher.finish()


def predict_audio(
    path: str | Path, model: LiteRTModel, median_window: int | None = None
) -> SongPrediction:
    """Decode ``path``, compute THE log-mel (or feed a waveform model its audio windows), run
    the model, threshold and smooth; block by block, so memory holds the probabilities but
    not the audio, whatever the song's length.

    Raises :class:`~iad_tf.audio.AudioError` for an unreadable file.
    """
    md = model.metadata
    cfg = md.feature_config
    if model.variant.takes_audio:  # the log-mel is computed in the model's graph
        sr, blocks = read_blocks(path)  # decoded and resampled block by block
        n = [0]

        def counted(ys: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
            for y in ys:
                n[0] += y.shape[0]
                yield y

        probs = waveform_probabilities_blocks(
            model, counted(resample_blocks(blocks, sr, cfg.sample_rate))
        )  # (frames, C)
        duration = n[0] / cfg.sample_rate
    else:
        mel = FileLogmel(path, cfg)  # decoded, resampled and framed block by block
        probs = probabilities(model, mel)  # (frames, C)
        duration = mel.duration_s
    window = md.median_window if median_window is None else median_window
    gate = md.presence_gate
    decisions, _ = decide_song(
        probs, np.asarray(md.thresholds, dtype=np.float32), window, gate, cfg.frame_seconds
    )
    segs = to_segments(decisions, probs, md.classes, cfg.frame_seconds, duration)
    instruments = song_instruments(md.classes, probs, decisions, gate, cfg.frame_seconds)
    return SongPrediction(to_path(path), duration, probs, decisions, segs, instruments)


def segments_csv(segments: Sequence[Segment]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SEGMENT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for s in segments:
        writer.writerow(s.to_dict())
    return buf.getvalue()


def output_paths(out_base: Any, fmt: OutputFormat = "json", plot: bool = False) -> list[Any]:
    """The files :func:`write_outputs` writes for ``out_base`` (a path or a URL path, no suffix):
    the segments (``.json``/``.csv``), ``.npz`` and with ``plot`` ``.png``."""
    if fmt not in ("json", "csv"):
        raise ValueError(f"unknown format {fmt!r} (json or csv)")
    exts = [f".{fmt}", ".npz", *([".png"] if plot else [])]
    return [out_base.with_name(out_base.name + ext) for ext in exts]


def existing_output(out_base: Any, fmt: OutputFormat = "json", plot: bool = False) -> Any | None:
    """The first of ``out_base``'s output files (:func:`output_paths`) that already exists
    (an earlier run's), else None."""
    return next((p for p in output_paths(out_base, fmt, plot) if p.exists()), None)


def write_outputs(
    pred: SongPrediction,
    model: LiteRTModel,
    out_base: Path,
    fmt: OutputFormat = "json",
    plot: bool = False,
    median_window: int | None = None,
    truth: np.ndarray | None = None,
) -> list[Path]:
    """Write ``out_base`` + ``.json``/``.csv``, ``.npz`` and optionally ``.png``; return the paths.

    ``truth`` (frames, C) annotations: the JSON gains the song's scores and the picture shows
    true positives, false alarms and misses."""
    md = model.metadata
    fs = md.feature_config.frame_seconds
    segments_file, npz_file, *png_file = output_paths(Path(out_base), fmt, plot)
    outputs = []
    if fmt == "csv":
        outputs.append(write_text(segments_file, segments_csv(pred.segments)))
    else:
        outputs.append(
            write_json(
                segments_file,
                {
                    "file": str(pred.path),
                    "model": str(model.path),
                    "duration_s": round(pred.duration_s, 4),
                    "frame_seconds": fs,
                    "median_window": md.median_window if median_window is None else median_window,
                    "presence": md.presence or None,
                    "instruments": pred.instruments,
                    **({"truth": pred.scores} if pred.scores else {}),
                    "segments": [s.to_dict() for s in pred.segments],
                    "seconds_active": pred.seconds_active,
                },
            )
        )
    outputs.append(
        write_npz(
            npz_file,
            probs=pred.probs,
            decisions=pred.decisions,
            times=md.feature_config.frame_times(pred.probs.shape[0]),
            classes=np.asarray(md.classes),
            thresholds=np.asarray(md.thresholds, dtype=np.float32),
        )
    )
    if plot:
        from iad_tf.plots import piano_roll

        conf = {i["instrument"]: i["confidence"] for i in pred.instruments}
        labels = [f"{c} ({conf[c]:.2f})" if c in conf else c for c in md.classes]
        outputs.append(
            piano_roll(
                png_file[0],
                labels,
                fs,
                pred.decisions,
                truth=truth,
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

    for p in map(to_path, paths):
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
    truth: str | Path | None = None,
    overwrite: bool = False,
    final_dir: Any = None,
) -> PredictReport:
    """Predict every audio file under ``paths`` into ``out_dir``; unreadable files are
    reported in ``failures`` and skipped. ``echo(str)`` receives one summary line per song.
    ``truth``: an AAM onsets ARFF of the (single) song, to score the prediction against.

    A song whose output files already exist (an earlier run's) is skipped and reported, its
    files left as they are, unless ``overwrite``. ``final_dir``: where the outputs end up when
    ``out_dir`` is a local stand-in (a URL folder, uploaded afterwards); checked instead."""
    from tqdm import tqdm

    jobs, problems = find_audio(paths)
    report = PredictReport()
    out_dir = Path(out_dir)
    # disable=None: no bar when stderr is not a terminal (logs get no carriage returns)
    show = progress and len(jobs) >= 2
    bar = tqdm(jobs, desc="predict", unit="song", disable=None if show else True)

    def fail(msg: str) -> None:  # a failed item: named on stderr (stdout keeps the results)
        report.failures.append(msg)
        (echo or (lambda m: bar.write(m, file=sys.stderr)))(f"skipped {msg}")

    for msg in problems:
        fail(msg)
    final = out_dir if final_dir is None else final_dir
    for job in bar:
        if not overwrite:
            try:
                clash = existing_output(final.joinpath(*job.name.parts), fmt, plot)
            except OSError as exc:  # an unreachable bucket: this song only
                fail(f"{job.path}: cannot check its output folder: {os_error_line(exc)}")
                continue
            if clash is not None:
                fail(f"{job.path}: {clash} exists (an earlier run's output, left as it is); "
                     "--overwrite replaces it, or give another --out")
                continue
        try:
            pred = predict_audio(job.path, model, median_window)
        except (AudioError, OSError, RuntimeError, ValueError) as exc:
            fail(str(exc) if str(job.path) in str(exc) else f"{job.path}: {exc}")
            continue
        roll = None
        if truth is not None:
            from iad_tf.inference.truth import score_song, truth_roll

            try:
                roll = truth_roll(
                    truth,
                    pred.probs.shape[0],
                    model.metadata.feature_config,
                    model.metadata.classes,
                    pred.duration_s,
                    job.path.name,
                )
            except ValueError as exc:
                fail(str(exc))
                continue
            pred.scores = score_song(pred.decisions, roll, model.metadata.classes)
        try:
            pred.outputs = write_outputs(
                pred, model, out_dir / job.name, fmt, plot, median_window, truth=roll
            )
        except OSError as exc:  # a full disk or a too-long name: this song only
            fail(f"{job.path}: cannot write its results: {os_error_line(exc)}")
            continue
        report.results.append(pred)
        if echo is not None:
            echo(pred.summary())
        else:
            bar.write(pred.summary())
    return report
