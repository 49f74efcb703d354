"""Write tracks in AAM's folder layout, every file atomically (temporary name, then rename).

::

    <root>/audio-mixes-flac/<id>_mix.flac
    <root>/audio-multitracks-flac/<id>_<Instrument>.flac
    <root>/midis/<id>_<Instrument>.mid
    <root>/annotations/<id>_{onsets,segments,beatinfo}.arff

Audio is 16-bit FLAC (lossless, and byte-for-byte deterministic for the same samples). The
ARFF files come from :mod:`iad_tf.aam.arff`, the same writer as everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from iad_tf import fileio
from iad_tf.aam.arff import Beat, OnsetTable, Segment, write_beatinfo, write_onsets, write_segments
from iad_tf.fileio import atomic_path
from iad_tf.synth.instruments import INSTRUMENTS
from iad_tf.synth.score import Note, Song, onset_table

MIX_DIR = "audio-mixes-flac"
STEMS_DIR = "audio-multitracks-flac"
MIDI_DIR = "midis"
ANNOTATIONS_DIR = "annotations"


def write_flac(path: str | Path, y: np.ndarray, sr: int) -> None:
    """Mono float audio (samples,) in [-1, 1] -> 16-bit FLAC, atomically."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(y, -1.0, 1.0), sr, format="FLAC", subtype="PCM_16")


def write_json(path: str | Path, data: object) -> None:
    """Sorted keys: the same song gives the same bytes."""
    fileio.write_json(path, data, sort_keys=True)


def write_midi(path: str | Path, name: str, notes: Sequence[Note], tempo: float) -> None:
    """One instrument's notes as a one-track MIDI file with its GM program."""
    import pretty_midi

    inst = INSTRUMENTS[name]
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    track = pretty_midi.Instrument(program=inst.program, is_drum=inst.is_drums, name=name)
    track.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in notes]
    pm.instruments.append(track)
    with atomic_path(path) as tmp:
        pm.write(str(tmp))


def write_annotations(
    root: str | Path,
    track_id: str,
    onsets: OnsetTable,
    segments: Sequence[Segment],
    beats: Sequence[Beat],
) -> None:
    """The three AAM annotation files of a track, with AAM's relation names."""
    ann = Path(root) / ANNOTATIONS_DIR
    ann.mkdir(parents=True, exist_ok=True)
    write_onsets(ann / f"{track_id}_onsets.arff", onsets)
    write_segments(ann / f"{track_id}_segments.arff", segments, f"Segment information of {track_id}")
    write_beatinfo(ann / f"{track_id}_beatinfo.arff", beats, f"Beat information of {track_id}")


def mix_path(root: str | Path, track_id: str) -> Path:
    return Path(root) / MIX_DIR / f"{track_id}_mix.flac"


def stem_path(root: str | Path, track_id: str, name: str) -> Path:
    return Path(root) / STEMS_DIR / f"{track_id}_{name}.flac"


def write_song(
    root: str | Path, song: Song, stems: Mapping[str, np.ndarray], mix: np.ndarray, sr: int
) -> None:
    """Every file of a synthetic track; the mix is written last (its presence marks a track)."""
    tid = song.track_id
    first_tempo = song.segments[0].tempo if song.segments else 120.0
    for name, y in stems.items():
        write_flac(stem_path(root, tid, name), y, sr)
        write_midi(Path(root) / MIDI_DIR / f"{tid}_{name}.mid", name, song.notes[name], first_tempo or 120.0)
    write_annotations(root, tid, onset_table(song), song.segments, song.beats)
    write_flac(mix_path(root, tid), mix, sr)
