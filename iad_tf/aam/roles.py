"""AAM's song roles: the part an instrument plays in a segment (the segments ARFF's
'Generator' column names the generator that wrote it)."""

from __future__ import annotations

#: Song roles, in the order AAM lists instruments in a segment.
ROLES: tuple[str, ...] = ("melody", "chords", "arpeggio", "bass", "drums")

#: AAM's generator name for each role (the segments file's 'Generator' column).
GENERATORS: dict[str, str] = {
    "melody": "MelodyBow",
    "chords": "ChordPadsRanged",
    "arpeggio": "ChordArpeggios",
    "bass": "BassLine",
    "drums": "RhythmSimpleGrooves",
}

#: The role each generator name stands for.
ROLE_OF: dict[str, str] = {gen: role for role, gen in GENERATORS.items()}
