"""Frame-level activation labels from AAM annotations, on the feature frame grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from iad_tf.aam.arff import OnsetTable, Segment
from iad_tf.aam.roles import ROLE_OF, ROLES


class LabelError(ValueError):
    """Annotations that cannot be mapped onto the class list."""


def _column_index(instruments: Sequence[str], classes: Sequence[str], where: str) -> np.ndarray:
    lookup = {name: k for k, name in enumerate(classes)}
    unknown = [name for name in instruments if name not in lookup]
    if unknown:
        raise LabelError(f"{where}: unknown instrument(s) {unknown} (not among the {len(classes)} classes)")
    return np.array([lookup[name] for name in instruments], dtype=np.int64)


#: Every real AAM onsets file ends with an all-silent row 2.7 s before the end of its mix
#: (measured on the 12 sample tracks); a last event further from the end means a cut file.
MAX_END_GAP_S = 8.0


#: Annotations may run this far past the end of their audio (AAM's last row lies before it).
DEFAULT_OVERRUN_S = 2.0


def check_annotation_fits(
    ann_end_s: float, duration_s: float, where: str, audio_name: str,
    overrun_s: float = DEFAULT_OVERRUN_S,
) -> None:
    """Raise :class:`LabelError` when annotations run past the audio's end by more than
    ``overrun_s`` (an annotation of another, longer song)."""
    if ann_end_s > duration_s + overrun_s:
        raise LabelError(
            f"{where}: annotations run to {ann_end_s:.2f} s, past the end of "
            f"{audio_name} ({duration_s:.2f} s) by more than {overrun_s:g} s"
        )


def check_onsets_complete(
    table: OnsetTable, duration_s: float, where: str = "onsets", max_gap_s: float = MAX_END_GAP_S
) -> None:
    """Raise :class:`LabelError` when the onsets table looks truncated.

    AAM closes every onsets file with a row where all instruments are silent (the song's
    end). A file whose last event still has sounding notes, or whose last event lies more
    than ``max_gap_s`` before the end of the audio, was cut: its labels would be wrong.
    """
    if len(table.times) == 0:
        raise LabelError(f"{where}: no onset events")
    last = float(table.times[-1])
    sounding = [name for name, on in zip(table.instruments, table.active()[-1], strict=True) if on]
    if sounding:
        raise LabelError(
            f"{where}: truncated? the last event ({last:.2f} s) still has sounding notes "
            f"({', '.join(sounding)}); a complete file ends with an all-silent row")
    _check_end_gap(last, duration_s, max_gap_s, where, "event")


def _check_end_gap(last: float, duration_s: float, max_gap_s: float, where: str, what: str) -> None:
    if duration_s - last > max_gap_s:
        raise LabelError(
            f"{where}: truncated? the last {what} is at {last:.2f} s, {duration_s - last:.1f} s "
            f"before the end of the audio ({duration_s:.2f} s; at most {max_gap_s:g} s expected)")


def check_segments_complete(
    segments: Sequence[Segment], duration_s: float, where: str = "segments",
    max_gap_s: float = MAX_END_GAP_S,
) -> None:
    """Raise :class:`LabelError` when the segments file looks truncated: AAM closes every
    one with an ``end`` row without instruments near the end of the audio; without it the
    last part's instruments would be labelled active to the end of the song."""
    if not segments:
        raise LabelError(f"{where}: no segments")
    last = segments[-1]
    if last.mark != "end" or last.instruments:
        raise LabelError(
            f"{where}: truncated? the last row ({last.start:.2f} s, {last.mark!r}) is not the "
            "closing 'end' row without instruments")
    _check_end_gap(last.start, duration_s, max_gap_s, where, "row ('end')")


def onset_roll(
    table: OnsetTable, frame_times: np.ndarray, classes: Sequence[str], where: str = "onsets"
) -> np.ndarray:
    """Activation roll uint8 (frames, len(classes)) from onset events.

    An instrument is active in a frame when its list of sounding notes at the last event at
    or before the frame time is non-empty; frames before the first event are silent.
    """
    cols = _column_index(table.instruments, classes, where)
    active = table.active()  # (events, instruments)
    idx = np.searchsorted(table.times, frame_times, side="right") - 1  # (frames,)
    roll = np.zeros((len(frame_times), len(classes)), dtype=np.uint8)
    ok = idx >= 0
    roll[np.ix_(ok, cols)] = active[idx[ok]]
    return roll


#: The auxiliary pitch roll's keys: the 88 piano keys, MIDI 21 (A0) to 108 (C8).
PITCH_LOW: int = 21
PITCH_KEYS: int = 88
#: Instruments whose "notes" are drum sounds, not pitches: left out of the pitch roll.
UNPITCHED: tuple[str, ...] = ("Drums",)


def pitch_roll(table: OnsetTable, frame_times: np.ndarray) -> np.ndarray:
    """Multi-pitch roll uint8 (frames, PITCH_KEYS) from onset events: key k is on in a frame
    when a pitched instrument (not :data:`UNPITCHED`) has MIDI note ``PITCH_LOW + k`` sounding at
    the last event at or before the frame time (the rule of :func:`onset_roll`); notes
    outside the piano's range are left out."""
    per_event = np.zeros((len(table.times), PITCH_KEYS), dtype=np.uint8)
    pitched = [i for i, name in enumerate(table.instruments) if name not in UNPITCHED]
    for e, row in enumerate(table.notes):
        for i in pitched:
            for pitch, _ in row[i]:
                if PITCH_LOW <= pitch < PITCH_LOW + PITCH_KEYS:
                    per_event[e, pitch - PITCH_LOW] = 1
    idx = np.searchsorted(table.times, frame_times, side="right") - 1  # (frames,)
    roll = np.zeros((len(frame_times), PITCH_KEYS), dtype=np.uint8)
    ok = idx >= 0
    roll[ok] = per_event[idx[ok]]
    return roll


def segment_roll(
    segments: Sequence[Segment], frame_times: np.ndarray, classes: Sequence[str], where: str = "segments"
) -> np.ndarray:
    """Activation roll uint8 (frames, len(classes)) from the segments' instrument lists.

    Each segment lasts until the next one starts; the last row (AAM's 'end') closes the song.
    """
    lookup = {name: k for k, name in enumerate(classes)}
    roll = np.zeros((len(frame_times), len(classes)), dtype=np.uint8)
    starts = np.array([s.start for s in segments], dtype=np.float64)
    idx = np.searchsorted(starts, frame_times, side="right") - 1
    for k, seg in enumerate(segments):
        unknown = [n for n in seg.instruments if n not in lookup]
        if unknown:
            raise LabelError(f"{where}: unknown instrument(s) {unknown}")
        rows = idx == k
        for name in seg.instruments:
            roll[rows, lookup[name]] = 1
    return roll


def role_roll(
    table: OnsetTable, segments: Sequence[Segment], frame_times: np.ndarray, where: str = "segments"
) -> np.ndarray:
    """Role roll uint8 (frames, len(ROLES)): role r is on in a frame when an instrument the
    frame's segment gives role r (its 'Generator' column) is sounding there (the rule of
    :func:`onset_roll`). An instrument the segment does not list, or lists with an unknown
    generator, adds nothing. Raises :class:`LabelError` when a segment lists an instrument the
    onsets file does not hold, or a segment's generator list is not as long as its
    instrument list."""
    sounding = onset_roll(table, frame_times, table.instruments, where)  # (frames, instruments)
    column = {name: i for i, name in enumerate(table.instruments)}
    starts = np.array([s.start for s in segments], dtype=np.float64)
    seg = np.searchsorted(starts, frame_times, side="right") - 1  # (frames,)
    roll = np.zeros((len(frame_times), len(ROLES)), dtype=np.uint8)
    for k, segment in enumerate(segments):
        if segment.generators and len(segment.generators) != len(segment.instruments):
            raise LabelError(
                f"{where}: the segment at {segment.start:g} s lists {len(segment.instruments)} "
                f"instruments but {len(segment.generators)} generators")
        rows = seg == k
        for name, gen in zip(segment.instruments, segment.generators, strict=False):
            if name not in column:
                raise LabelError(f"{where}: the segment at {segment.start:g} s lists {name!r}, "
                                 "which the onsets file does not hold")
            role = ROLE_OF.get(gen)
            if role is not None:
                r = ROLES.index(role)
                roll[rows, r] |= sounding[rows, column[name]]
    return roll
