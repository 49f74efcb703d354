"""Frame labels from AAM annotations: the role roll's rules on hand-made events."""

from __future__ import annotations

import numpy as np
import pytest

from iad_tf.aam.arff import OnsetTable, Segment
from iad_tf.aam.labels import LabelError, role_roll
from iad_tf.aam.roles import GENERATORS, ROLES

INSTRUMENTS = ("Cello", "Drums", "Piano")
MEL, CHO, BASS, DRUMS = (ROLES.index(r) for r in ("melody", "chords", "bass", "drums"))


def _table() -> OnsetTable:
    """Cello sounds over [0, 2) s, Piano over [1, 3) s, Drums over [0, 4) s."""
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    on = {"Cello": (0, 1), "Drums": (0, 1, 2, 3), "Piano": (1, 2)}
    notes = [tuple(((60, True),) if e in on[name] else () for name in INSTRUMENTS) for e in range(5)]
    return OnsetTable(INSTRUMENTS, times, notes)


def test_an_instrument_takes_the_role_of_the_part_it_sounds_in() -> None:
    """Part A (0-2 s): Cello melody, Drums; part B (2-4 s): Cello as bass (not sounding),
    Piano chords, Drums. A sounding instrument the part does not list adds nothing (Piano in A)."""
    segments = [
        Segment(0.0, "A", 120, "Cmaj", ("Cello", "Drums"), (GENERATORS["melody"], GENERATORS["drums"])),
        Segment(2.0, "B", 120, "Cmaj", ("Cello", "Piano", "Drums"),
                (GENERATORS["bass"], GENERATORS["chords"], GENERATORS["drums"])),
        Segment(4.0, "end", 0, "", (), ()),
    ]
    times = np.array([0.5, 1.5, 2.5, 3.5, 4.5])
    roll = role_roll(_table(), segments, times)
    assert roll.shape == (5, len(ROLES)) and roll.dtype == np.uint8
    want = np.zeros((5, len(ROLES)), dtype=np.uint8)
    want[[0, 1], MEL] = 1          # Cello sounds in part A as melody
    want[[0, 1, 2, 3], DRUMS] = 1  # Drums sound until 4 s
    want[2, CHO] = 1               # Piano sounds 1-3 s but is listed (as chords) in part B only
    np.testing.assert_array_equal(roll, want)  # no bass: the Cello is silent in part B


def test_unknown_generators_add_nothing_and_bad_rows_are_refused() -> None:
    times = np.array([0.5])
    odd = [Segment(0.0, "A", 120, "Cmaj", ("Cello",), ("SomethingNew",)), Segment(4.0, "end", 0, "", (), ())]
    assert role_roll(_table(), odd, times).sum() == 0
    short = [Segment(0.0, "A", 120, "Cmaj", ("Cello", "Drums"), (GENERATORS["melody"],))]
    with pytest.raises(LabelError, match="2 instruments but 1 generators"):
        role_roll(_table(), short, times, where="x_segments.arff")
    stranger = [Segment(0.0, "A", 120, "Cmaj", ("Violin",), (GENERATORS["melody"],))]
    with pytest.raises(LabelError, match="x_segments.arff.*'Violin'"):
        role_roll(_table(), stranger, times, where="x_segments.arff")
