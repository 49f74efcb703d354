"""ARFF reading/writing on AAM's real files and on hand-written broken ones."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from iad_tf.aam.arff import (
    ArffError,
    OnsetTable,
    parse_note_list,
    read_beatinfo,
    read_onsets,
    read_segments,
    write_beatinfo,
    write_onsets,
    write_segments,
)
from iad_tf.config import AAM_CLASSES


def _sample_files(aam_sample: Path, kind: str) -> list[Path]:
    files = sorted((aam_sample / "annotations").glob(f"*_{kind}.arff"))
    assert len(files) == 12
    return files


def test_onsets_real_format(aam_sample: Path) -> None:
    path = aam_sample / "annotations" / "0080_onsets.arff"
    table = read_onsets(path)
    assert table.instruments == AAM_CLASSES
    assert table.relation == "Onset events in 0080"
    # independent reading: data lines, first field the time, cells "'[...]'"
    lines = path.read_text().splitlines()
    data = lines[lines.index("@DATA") + 1 :]
    data = [ln for ln in data if ln.strip()]
    assert len(table.times) == len(data)
    for k in (0, len(data) // 2, len(data) - 1):
        cells = re.findall(r"'\[([^\]]*)\]'", data[k])
        assert len(cells) == 31
        assert table.times[k] == pytest.approx(float(data[k].split(",", 1)[0]))
        for i, cell in enumerate(cells):
            want = tuple((int(tok.lstrip("+")), tok.startswith("+")) for tok in cell.split(",") if tok)
            assert table.notes[k][i] == want
    active = table.active()
    assert active.shape == (len(data), 31)
    assert not active[-1].any()  # AAM closes every song with an all-silent row
    assert active[:, AAM_CLASSES.index("Jinghu")].sum() == 0


def test_segments_and_beatinfo_real_format(aam_sample: Path) -> None:
    segs = read_segments(aam_sample / "annotations" / "0080_segments.arff")
    assert [s.mark for s in segs] == ["A", "A", "A", "B", "C", "end"]
    assert segs[0].instruments == ("AltoSax", "Piano", "ElectricBass", "Drums")
    assert segs[3].start == pytest.approx(53.006134) and segs[3].tempo == 81
    assert segs[-1].instruments == ()
    path = aam_sample / "annotations" / "0080_beatinfo.arff"
    assert "@DATA" not in path.read_text()
    beats = read_beatinfo(path)
    assert (beats[1].time, beats[1].bar, beats[1].quarter, beats[1].chord) == (
        pytest.approx(0.36809817), 1, 2, "A#min"
    )
    assert len(beats) == sum(1 for ln in path.read_text().splitlines() if ln[:1].isdigit())


@pytest.mark.parametrize(
    ("kind", "reader", "writer"),
    [
        ("onsets", read_onsets, lambda p, obj, rel: write_onsets(p, obj)),
        ("segments", read_segments, write_segments),
        ("beatinfo", read_beatinfo, write_beatinfo),
    ],
)
def test_byte_identical_round_trip(aam_sample: Path, tmp_path: Path, kind, reader, writer) -> None:
    for src in _sample_files(aam_sample, kind):
        obj = reader(src)
        rel = re.search(r"@RELATION '([^']*)'", src.read_text()).group(1)
        out = tmp_path / src.name
        writer(out, obj, rel)
        assert out.read_bytes() == src.read_bytes(), src.name


def test_note_list_quoting(tmp_path: Path) -> None:
    assert parse_note_list("[+60,64]") == ((60, True), (64, False))
    assert parse_note_list("[]") == ()
    table = OnsetTable(("Piano", "Drums"), np.array([0.0, 0.5]), [(((60, True), (64, False)), ()), ((), ((36, True),))])
    path = tmp_path / "x_onsets.arff"
    write_onsets(path, table)
    assert "0.0,'[+60,64]','[]'" in path.read_text()
    back = read_onsets(path)
    assert back.notes == table.notes and back.instruments == ("Piano", "Drums")


HEADER = "@RELATION 'x'\n\n@ATTRIBUTE 'Onset time in seconds' NUMERIC\n@ATTRIBUTE 'Onset events of Piano' STRING\n\n@DATA\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (HEADER + "0.0,'[60]','[61]'\n", ":7: row has 3 fields, header declares 2"),
        (HEADER + "abc,'[60]'\n", ":7: 'abc' is not a number"),
        (HEADER + "0.0,'60'\n", ":7: note list '60' is not bracketed"),
        (HEADER + "1.0,'[60]'\n0.5,'[]'\n", "onset times are not sorted"),
        ("", "file is empty"),
        ("hello\n", "data before any @ATTRIBUTE line"),
        ("@RELATION 'x'\n@FOO bar\n", ":2: unknown header line"),
        (HEADER.replace("Onset events of Piano", "Loudness"), "is not an 'Onset events of' column"),
    ],
)
def test_onsets_errors_name_file_and_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad_onsets.arff"
    path.write_text(text)
    with pytest.raises(ArffError) as err:
        read_onsets(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArffError, match="no such file"):
        read_segments(tmp_path / "nope_segments.arff")
