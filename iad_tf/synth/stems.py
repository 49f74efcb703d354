"""The stems of an AAM song: where they are, what role each plays, and whether each is whole.

Shared by the within-song remix (:mod:`iad_tf.synth.remix`) and the cross-song mixes
(:mod:`iad_tf.synth.across`). A stem shorter than its instrument's annotated notes (a partial
download) is refused with one line naming the stem, never padded with silence that the
annotations call active (issue 21, item 3).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iad_tf.aam.arff import ArffError, OnsetTable, Segment, read_onsets, read_segments
from iad_tf.aam.dataset import Track
from iad_tf.audio import AUDIO_EXTENSIONS, load_audio
from iad_tf.config import AAM_CLASSES
from iad_tf.synth.instruments import GENERATORS

STEM_DIRS = tuple(f"audio-multitracks-{ext.lstrip('.')}" for ext in (".flac", ".wav", ".mp3", ".ogg"))
#: A stem may end this much before its instrument's last annotated note ends (decoder delay,
#: rounding); shorter than that it is a partial file.
STEM_SHORT_TOLERANCE_S = 0.5
#: Song roles of the cross-song mixes, from AAM's generator names (the segments' 'Generator'
#: column): ChordPadsRanged and ChordArpeggios both fill the chord slot.
ROLE_OF_GENERATOR: dict[str, str] = {
    GENERATORS["bass"]: "bass",
    GENERATORS["drums"]: "drums",
    GENERATORS["chords"]: "chords",
    GENERATORS["arpeggio"]: "chords",
    GENERATORS["melody"]: "melody",
}


class RemixError(ValueError):
    """A source track or stem that cannot be remixed; the message names the file."""


def find_stems(root: str | Path, track_id: str) -> dict[str, Path]:
    """{instrument: stem file} of a track (a lossless format wins over mp3)."""
    out: dict[str, Path] = {}
    pattern = re.compile(rf"^{re.escape(track_id)}_(.+)$")
    for d in STEM_DIRS:
        folder = Path(root) / d
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob(f"{track_id}_*")):
            m = pattern.match(p.stem)
            if m and p.suffix.lower() in AUDIO_EXTENSIONS and m.group(1) != "mix":
                out.setdefault(m.group(1), p)
    return out


def missing_stems(onsets: OnsetTable, segments: list[Segment], stems: dict[str, Path]) -> list[str]:
    """Instruments the annotations say play (a sounding note or a segment) but with no stem.

    A remix of such a track would label them active with no audio (a partial download)."""
    sounding = {name for name, on in zip(onsets.instruments, onsets.active().any(axis=0), strict=True) if on}
    sounding |= {i for s in segments for i in s.instruments}
    return sorted(sounding - set(stems))


def sounding_end(onsets: OnsetTable, name: str) -> float:
    """Seconds at which ``name``'s last annotated note ends (0.0 when it never sounds): the
    time of the row after its last sounding row (the table's last time if none follows)."""
    if name not in onsets.instruments:
        return 0.0
    col = onsets.active()[:, onsets.instruments.index(name)]  # (events,)
    rows = np.nonzero(col)[0]
    if not len(rows):
        return 0.0
    nxt = int(rows[-1]) + 1
    return float(onsets.times[min(nxt, len(onsets.times) - 1)])


def check_stem_length(path: Path, name: str, seconds: float, onsets: OnsetTable, where: str) -> None:
    """Raise :class:`RemixError` when the stem ``path`` (``seconds`` long) ends before the
    notes ``where`` (the onsets file) annotates for ``name``."""
    end = sounding_end(onsets, name)
    if seconds + STEM_SHORT_TOLERANCE_S < end:
        raise RemixError(
            f"{path}: stem is {seconds:.2f} s long but {where} has {name} sounding until "
            f"{end:.2f} s (partial download?); refused, not padded")


def load_stem(path: Path, name: str, sr: int, onsets: OnsetTable, where: str) -> np.ndarray:
    """Decoded stem float32 (samples,) at ``sr``, checked to cover its annotated notes."""
    y = load_audio(path, sr)
    check_stem_length(path, name, len(y) / sr, onsets, where)
    return y


def stem_roles(segments: list[Segment]) -> dict[str, str]:
    """{instrument: role} from the segments' generator column: the role an instrument plays
    in most parts (the first such part's on a tie). Instruments with an unknown generator
    (or none) are left out."""
    counts: dict[str, Counter[str]] = {}
    for seg in segments:
        for name, gen in zip(seg.instruments, seg.generators, strict=False):
            role = ROLE_OF_GENERATOR.get(gen)
            if role:
                counts.setdefault(name, Counter())[role] += 1
    return {name: c.most_common(1)[0][0] for name, c in counts.items()}


def stem_seconds(path: Path) -> float | None:
    """Duration of a stem from its header (``None`` when the header cannot tell; the decoded
    length is checked again when the stem is loaded)."""
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # noqa: BLE001 - libsndfile cannot read it; load_stem decides
        return None


@dataclass(frozen=True)
class SongStems:
    """A song usable as stem material: its stems and annotations, checked."""

    track: Track
    stems: dict[str, Path]
    onsets: OnsetTable
    segments: list[Segment]


def song_stems(track: Track) -> SongStems:
    """Check one song's stems against its annotations; :class:`RemixError` with a one-line
    reason (naming the file) when it has no stems or onsets, an unknown instrument, an
    annotated instrument without a stem, or a stem shorter than its notes."""
    root, tid = track.root, track.track_id
    stems = find_stems(root, tid)
    if not stems:
        raise RemixError(f"{tid}: no stems in {root}/audio-multitracks-*/")
    unknown = sorted(set(stems) - set(AAM_CLASSES))
    if unknown:
        raise RemixError(f"{stems[unknown[0]]}: unknown instrument {unknown[0]!r} in stem name")
    if track.onsets is None:
        raise RemixError(f"{tid}: no onsets annotation {track.expected_annotation('onsets')}")
    try:
        onsets = read_onsets(track.onsets)
        segments = read_segments(track.segments) if track.segments else []
    except ArffError as exc:
        raise RemixError(f"{tid}: {exc}") from None
    lacking = missing_stems(onsets, segments, stems)
    if lacking:
        raise RemixError(
            f"{tid}: annotated instrument(s) {', '.join(lacking)} have no stem in "
            f"{root}/audio-multitracks-*/ (partial download?); not remixed")
    for name, path in sorted(stems.items()):
        seconds = stem_seconds(path)
        if seconds is not None:
            check_stem_length(path, name, seconds, onsets, str(track.onsets))
    return SongStems(track, stems, onsets, segments)
