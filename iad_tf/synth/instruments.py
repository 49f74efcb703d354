"""AAM's 31 instruments as General MIDI programs, pitch ranges and song roles.

AAM renders its songs with sampled instruments; its MIDI files name a General MIDI program for
each (its fallback for GM players). Three groups share one program there: AcousticGuitar,
Balalaika and Ukulele all use 24 (Nylon Guitar); Erhu and MorinKhuur use 110 (Fiddle);
Flugelhorn uses 57 (Trombone). A model trained on such renderings could not tell them apart,
so this table keeps AAM's program where it is unique and otherwise picks a neighbouring GM
timbre, a separate register, or a playing style (vibrato, slides into notes):

=====================  ====================  =========  ==========================  ==========
AAM instrument         GM program (0-based)  range      roles                       style
=====================  ====================  =========  ==========================  ==========
AcousticGuitar         25 Steel Guitar       40-79      chords, arpeggio            plucked
AltoSax                65 Alto Sax           49-80      melody
Balalaika              105 Banjo             52-86      chords, arpeggio, melody    plucked
BrightPiano            1 Bright Piano        36-96      chords, arpeggio            struck
Cello                  42 Cello              36-76      chords, arpeggio, melody
Clarinet               71 Clarinet           50-89      melody
DoubleBassArco         43 Contrabass         28-55      bass
DoubleBassPizz         32 Acoustic Bass      28-55      bass                        plucked
Drums                  drum kit (bank 128)   35-59      drums                       MIDI ch 10
ElectricBass           33 Fingered Bass      28-60      bass                        plucked
ElectricGuitarClean    27 Clean Guitar       40-84      chords, arpeggio, melody    plucked
ElectricGuitarCrunch   29 Overdrive Guitar   40-84      chords, arpeggio            plucked
ElectricGuitarLead     30 Distortion Guitar  52-88      melody
ElectricPiano          4 Electric Piano 1    36-96      chords, arpeggio            struck
Erhu                   110 Fiddle            62-91      melody                      vibrato 6 Hz, slides
Flugelhorn             60 French Horn        52-80      melody
Flute                  73 Flute              60-96      melody
Fujara                 76 Blown Bottle       55-79      melody
Jinghu                 111 Shanai            67-93      melody                      vibrato 7 Hz
MorinKhuur             110 Fiddle            45-72      melody                      vibrato 4.5 Hz
OrganBass              17 Percussive Organ   28-55      bass
PanFlute               75 Pan Flute          60-91      melody
Piano                  0 Acoustic Grand      36-96      chords, arpeggio            struck
Shakuhachi             77 Shakuhachi         55-86      melody
Sitar                  104 Sitar             48-84      chords, arpeggio, melody    plucked
TenorSax               66 Tenor Sax          44-75      melody
Trombone               57 Trombone           40-72      melody
Trumpet                56 Trumpet            54-84      melody
Ukulele                24 Nylon Guitar       60-81      chords, arpeggio            plucked
Viola                  41 Viola              48-81      melody
Violin                 40 Violin             55-96      melody
=====================  ====================  =========  ==========================  ==========

Changes from AAM's own programs: AcousticGuitar 24 -> 25 (steel strings, so the nylon
program stays Ukulele's, played only in the ukulele's high register), Balalaika 24 -> 105
(the bright plucked folk timbre GM has), Flugelhorn 57 -> 60 (a mellow conical horn instead
of the trombone), Jinghu (absent from AAM's sample) -> 111 (a high nasal timbre). Erhu and
MorinKhuur keep AAM's Fiddle but sit in different registers (Erhu high, MorinKhuur low) and
differ in vibrato; Violin plays the same samples in TimGM6mb without vibrato. Roles follow the
generators AAM assigns them (MelodyBow, ChordPadsRanged, ChordArpeggios, BassLine,
RhythmSimpleGrooves). Ranges are the instruments' usual sounding ranges (MIDI note numbers),
narrowed where a GM sample sounds poor at the extremes.
"""

from __future__ import annotations

from dataclasses import dataclass

from iad_tf.aam.roles import GENERATORS, ROLES  # noqa: F401 - re-exported: synth's roles are AAM's
from iad_tf.config import AAM_CLASSES

#: MIDI channel of the GM drum kit (channel 10 counted from 1).
DRUM_CHANNEL = 9
#: Soundfont bank of drum kits.
DRUM_BANK = 128


@dataclass(frozen=True)
class Instrument:
    """One AAM class and how to play it with a GM soundfont.

    ``low``/``high`` bound every note (MIDI numbers, inclusive). ``decays``: the sound dies
    away while a key is held (plucked, struck), so long notes are re-struck. ``vibrato_*``:
    pitch-wheel vibrato depth (semitones) and rate (Hz); ``slide``: semitones below the note
    that each note glides up from over its first ~80 ms.
    """

    name: str
    program: int
    gm_name: str
    low: int
    high: int
    roles: tuple[str, ...]
    decays: bool = False
    vibrato_semitones: float = 0.0
    vibrato_hz: float = 0.0
    slide: float = 0.0

    @property
    def is_drums(self) -> bool:
        return "drums" in self.roles

    @property
    def channel(self) -> int:
        return DRUM_CHANNEL if self.is_drums else 0

    @property
    def bank(self) -> int:
        return DRUM_BANK if self.is_drums else 0


_M = ("melody",)
_CA = ("chords", "arpeggio")
_CAM = ("chords", "arpeggio", "melody")
_B = ("bass",)

_TABLE: tuple[Instrument, ...] = (
    Instrument("AcousticGuitar", 25, "Steel Guitar", 40, 79, _CA, decays=True),
    Instrument("AltoSax", 65, "Alto Sax", 49, 80, _M),
    Instrument("Balalaika", 105, "Banjo", 52, 86, _CAM, decays=True),
    Instrument("BrightPiano", 1, "Bright Acoustic Piano", 36, 96, _CA, decays=True),
    Instrument("Cello", 42, "Cello", 36, 76, _CAM),
    Instrument("Clarinet", 71, "Clarinet", 50, 89, _M),
    Instrument("DoubleBassArco", 43, "Contrabass", 28, 55, _B),
    Instrument("DoubleBassPizz", 32, "Acoustic Bass", 28, 55, _B, decays=True),
    Instrument("Drums", 0, "Standard Drum Kit", 35, 59, ("drums",), decays=True),
    Instrument("ElectricBass", 33, "Electric Bass (finger)", 28, 60, _B, decays=True),
    Instrument("ElectricGuitarClean", 27, "Electric Guitar (clean)", 40, 84, _CAM, decays=True),
    Instrument("ElectricGuitarCrunch", 29, "Overdriven Guitar", 40, 84, _CA, decays=True),
    Instrument("ElectricGuitarLead", 30, "Distortion Guitar", 52, 88, _M),
    Instrument("ElectricPiano", 4, "Electric Piano 1", 36, 96, _CA, decays=True),
    Instrument("Erhu", 110, "Fiddle", 62, 91, _M, vibrato_semitones=0.35, vibrato_hz=6.0, slide=1.0),
    Instrument("Flugelhorn", 60, "French Horn", 52, 80, _M),
    Instrument("Flute", 73, "Flute", 60, 96, _M),
    Instrument("Fujara", 76, "Blown Bottle", 55, 79, _M),
    Instrument("Jinghu", 111, "Shanai", 67, 93, _M, vibrato_semitones=0.25, vibrato_hz=7.0),
    Instrument("MorinKhuur", 110, "Fiddle", 45, 72, _M, vibrato_semitones=0.3, vibrato_hz=4.5),
    Instrument("OrganBass", 17, "Percussive Organ", 28, 55, _B),
    Instrument("PanFlute", 75, "Pan Flute", 60, 91, _M),
    Instrument("Piano", 0, "Acoustic Grand Piano", 36, 96, _CA, decays=True),
    Instrument("Shakuhachi", 77, "Shakuhachi", 55, 86, _M),
    Instrument("Sitar", 104, "Sitar", 48, 84, _CAM, decays=True),
    Instrument("TenorSax", 66, "Tenor Sax", 44, 75, _M),
    Instrument("Trombone", 57, "Trombone", 40, 72, _M),
    Instrument("Trumpet", 56, "Trumpet", 54, 84, _M),
    Instrument("Ukulele", 24, "Acoustic Guitar (nylon)", 60, 81, _CA, decays=True),
    Instrument("Viola", 41, "Viola", 48, 81, _M),
    Instrument("Violin", 40, "Violin", 55, 96, _M),
)

#: name -> Instrument, for all 31 AAM classes.
INSTRUMENTS: dict[str, Instrument] = {i.name: i for i in _TABLE}

#: GM drum keys the drum role uses: kick, side stick, snare, closed/pedal/open hi-hat,
#: low/high toms, crash, ride.
KICK, SNARE, RIM = 36, 38, 37
CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 42, 44, 46
LOW_TOM, HIGH_TOM, CRASH, RIDE = 45, 50, 49, 51

assert tuple(sorted(INSTRUMENTS)) == AAM_CLASSES, "instrument table must cover AAM_CLASSES"


def instruments_for(role: str, pool: tuple[str, ...] | list[str]) -> list[str]:
    """Names in ``pool`` (in pool order) that can play ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return [n for n in pool if role in INSTRUMENTS[n].roles]


def parse_instruments(names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """A user's instrument selection (comma-separated or a list) -> sorted valid names.

    ``None`` or empty means all 31. Raises ``ValueError`` naming unknown instruments.
    """
    if not names:
        return AAM_CLASSES
    if isinstance(names, str):
        names = [names]
    wanted = [n.strip() for item in names for n in item.split(",") if n.strip()]
    lookup = {n.lower(): n for n in AAM_CLASSES}
    unknown = [n for n in wanted if n.lower() not in lookup]
    if unknown:
        raise ValueError(
            f"unknown instrument(s) {', '.join(unknown)}; choose from {', '.join(AAM_CLASSES)}"
        )
    return tuple(sorted({lookup[n.lower()] for n in wanted}))


def markdown_table() -> str:
    """The mapping as a Markdown table (for the README)."""
    rows = [
        "| AAM instrument | GM program (0-based) | range (MIDI) | roles |",
        "|---|---|---|---|",
    ]
    for i in _TABLE:
        prog = "drum kit (bank 128, channel 10)" if i.is_drums else f"{i.program} {i.gm_name}"
        style = []
        if i.vibrato_semitones:
            style.append(f"vibrato {i.vibrato_hz:g} Hz")
        if i.slide:
            style.append("slides")
        extra = f" ({', '.join(style)})" if style else ""
        rows.append(f"| {i.name} | {prog}{extra} | {i.low}-{i.high} | {', '.join(i.roles)} |")
    return "\n".join(rows)
