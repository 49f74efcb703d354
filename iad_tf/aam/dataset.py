"""Track discovery under one or more AAM roots, as the dataset ships and as iad-tf writes it.

A root holds ``annotations/<id>_{onsets,segments,beatinfo}.arff`` and the mixes
``<id>_mix.{flac,wav,mp3,ogg}`` in ``audio-mixes-flac/``, ``audio-mixes-wav/``,
``audio-mixes-mp3/``, beside the annotations, or in the root itself. The track id is the part
of the file name before ``_mix`` (AAM: ``0080``). A root written by ``iad-tf remix`` holds
``sources.json`` ({track_id: [source song ids]}; a single id string is accepted, the form
older remix folders use); elsewhere a track is its own source. A generated track (a cross-song
mix, a song rendered from the note bank) names every song whose audio it holds: it belongs to
all of them (a split or a fold may use it only where all its sources may be used).

Discovery never raises for one bad track: it returns the usable tracks and a list of
:class:`Problem` (track, file, reason) that the caller reports as skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from iad_tf.audio import AUDIO_EXTENSIONS
from iad_tf.fileio import read_text
from iad_tf.storage import to_path

ANNOTATIONS_DIR = "annotations"
SOURCES_FILE = "sources.json"
#: Written by ``iad-tf remix`` beside sources.json (kept, dropped, gains per remix).
REMIXES_FILE = "remixes.json"
#: Written first by every generator (synth, remix, remix --across-songs) at its output root:
#: {"generator", "config", "seed", "version"}; build-records copies it into the manifest.
GENERATOR_FILE = "generator.json"
#: Ids ``iad-tf remix`` gives: ``<source id>r01``, ``<source id>r02``, ...
REMIX_ID_RE = re.compile(r"^.+r\d{2,}$")
MIX_SUFFIX = "_mix"
#: Preferred first when a track has mixes in several formats (lossless before lossy).
_FORMAT_ORDER: tuple[str, ...] = (".flac", ".wav", ".mp3", ".ogg")
ANNOTATION_KINDS: tuple[str, ...] = ("onsets", "segments", "beatinfo")


class DatasetError(ValueError):
    """An AAM root that cannot be used at all (missing folder, unreadable sources.json)."""


@dataclass(frozen=True)
class Track:
    """One mix and its annotation files (``None`` where absent)."""

    track_id: str
    source_id: str  # the primary source (the first of ``sources``)
    audio: Path
    onsets: Path | None
    segments: Path | None
    beatinfo: Path | None
    root: Path
    #: Every source song whose audio this track holds (``(source_id,)`` for a plain track).
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.sources:
            object.__setattr__(self, "sources", (self.source_id,))

    def annotation(self, kind: str) -> Path | None:
        """The ``onsets``/``segments``/``beatinfo`` file of this track, or ``None``."""
        if kind not in ANNOTATION_KINDS:
            raise ValueError(f"unknown annotation kind {kind!r}")
        return getattr(self, kind)

    def to_urls(self) -> dict[str, object]:
        """This track with every path as its string (a URL or a local path): what a Beam
        pipeline carries between workers; :meth:`from_urls` turns it back."""
        return {k: (str(v) if isinstance(v, PurePath) or type(v).__module__.startswith("upath") else v)
                for k, v in vars(self).items()}

    @classmethod
    def from_urls(cls, data: dict[str, object]) -> Track:
        """The :class:`Track` of a :meth:`to_urls` dict (paths through :func:`to_path`)."""
        paths = ("audio", "onsets", "segments", "beatinfo", "root")
        fields = {k: (to_path(v) if k in paths and v is not None else v) for k, v in data.items()}
        fields["sources"] = tuple(fields["sources"])  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]

    def expected_annotation(self, kind: str) -> Path:
        """Where the ``kind`` annotation of this track would be (for error messages)."""
        return self.root / ANNOTATIONS_DIR / f"{self.track_id}_{kind}.arff"


@dataclass(frozen=True)
class Problem:
    """A track found but not usable: a one-line reason naming the file."""

    track: str
    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"track": self.track, "file": self.file, "reason": self.reason}


#: Folders (relative to a root, ``""`` the root itself) where mixes are looked for, in order:
#: a track with mixes in several places takes the first (after the lossless-first rule).
MIX_DIRS: tuple[str, ...] = (*(f"audio-mixes-{ext.lstrip('.')}" for ext in _FORMAT_ORDER), ANNOTATIONS_DIR, "")


def listing_patterns() -> list[str]:
    """Glob patterns, relative to a root, of every file discovery looks at (a ``*`` never
    crosses ``/``): the mix candidates of each :data:`MIX_DIRS` folder and the annotations.
    Listing a root means matching these; :func:`list_root` does it locally (and through
    fsspec), the Beam runner through ``apache_beam.io.fileio.MatchAll``."""
    mixes = [f"{d}/*{MIX_SUFFIX}.*" if d else f"*{MIX_SUFFIX}.*" for d in MIX_DIRS]
    return [*mixes, f"{ANNOTATIONS_DIR}/*.arff"]


def list_root(root: Path) -> list[str]:
    """The files of ``root`` matching :func:`listing_patterns`, as ``/``-joined paths relative
    to the root (``audio-mixes-flac/0001_mix.flac``, ``annotations/0001_onsets.arff``)."""
    rels: list[str] = []
    for d in MIX_DIRS:  # annotations/ among them
        folder = root / d if d else root
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            rel = f"{d}/{p.name}" if d else p.name
            if listed_rel(rel) and p.is_file():
                rels.append(rel)
    return rels


def listed_rel(rel: str) -> bool:
    """True when the relative path ``rel`` matches one of :func:`listing_patterns`."""
    folder, _, name = rel.rpartition("/")
    if folder == ANNOTATIONS_DIR and name.endswith(".arff"):
        return True
    return folder in MIX_DIRS and mix_track_id(name) is not None


def mix_track_id(name: str) -> str | None:
    """``0080_mix.flac`` -> ``"0080"``; ``None`` for a file name that is not a mix."""
    stem, ext = Path(name).stem, Path(name).suffix.lower()
    if ext not in AUDIO_EXTENSIONS or not stem.endswith(MIX_SUFFIX) or len(stem) == len(MIX_SUFFIX):
        return None
    return stem[: -len(MIX_SUFFIX)]


def _find_mixes(root: Path, rels: Sequence[str]) -> dict[str, Path]:
    """track id -> mix path, from a root's listing; a lossless format wins when a track has
    several, then the earlier :data:`MIX_DIRS` folder."""
    found: dict[str, Path] = {}
    rank = {ext: k for k, ext in enumerate(_FORMAT_ORDER)}
    order = {d: k for k, d in enumerate(MIX_DIRS)}
    by_place = sorted((order[f], n) for f, _, n in (r.rpartition("/") for r in rels) if f in order)
    for k, name in by_place:
        tid = mix_track_id(name)
        if tid is None:
            continue
        ext = Path(name).suffix.lower()
        old = found.get(tid)
        if old is None or rank.get(ext, 99) < rank.get(old.suffix.lower(), 99):
            found[tid] = root / MIX_DIRS[k] / name if MIX_DIRS[k] else root / name
    return found


def read_sources(root: Path) -> dict[str, tuple[str, ...]]:
    """``sources.json`` of a generated root as {track_id: (source ids, primary first)}; empty
    when absent. Values may be one id (a string) or a non-empty list of ids."""
    path = root / SOURCES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(read_text(path))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object {{track_id: [source song ids]}}")
    out: dict[str, tuple[str, ...]] = {}
    for k, v in data.items():
        ids = (v,) if isinstance(v, str) else tuple(v) if isinstance(v, list) else ()
        if not ids or not all(isinstance(s, str) and s for s in ids):
            raise DatasetError(
                f"{path}: entry {k!r} must be a source id or a non-empty list of source ids")
        out[k] = tuple(dict.fromkeys(ids))  # unique, order kept
    return out


def read_generator(root: str | Path) -> dict | None:
    """``generator.json`` of a generated root (what made it: generator, config, seed,
    version), or ``None`` for a root without one (real AAM)."""
    path = to_path(root) / GENERATOR_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(read_text(path))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("generator"), str):
        raise DatasetError(f"{path}: expected a JSON object with a 'generator' name")
    return data


def root_generators(roots: Iterable[str | Path]) -> dict[str, dict | None]:
    """{root: its generator.json or None} for the roots of a build (the manifest's
    ``generators``: what made each generated root, with config and seed)."""
    return {str(r): read_generator(r) for r in roots}


def check_sources(root: Path, track_ids: Iterable[str], sources: dict[str, tuple[str, ...]]) -> None:
    """Refuse a remix folder (sources.json/remixes.json, or remix-style ids) with tracks that
    have no source entry: split by their own id, remixes of held-out songs would leak into
    training. Raises :class:`DatasetError` naming them."""
    ids = sorted(track_ids)
    is_remix = (root / SOURCES_FILE).is_file() or (root / REMIXES_FILE).is_file() or any(
        REMIX_ID_RE.match(t) for t in ids)
    lacking = [t for t in ids if t not in sources]
    if is_remix and lacking:
        shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
        raise DatasetError(
            f"{root / SOURCES_FILE}: remix folder with {len(lacking)} track(s) lacking a source entry "
            f"({shown}); their split would not follow their source song. Re-run iad-tf remix into "
            "this folder or add {remix id: source id} entries")


def check_root(root: str | Path) -> Path:
    """Resolve ``root`` and check it looks like an AAM root; raise :class:`DatasetError`."""
    from iad_tf.storage import StorageError, errors, to_path

    try:
        path = to_path(root)
        with errors(path):
            is_dir = path.is_dir()
    except StorageError as exc:
        raise DatasetError(str(exc)) from None
    if not is_dir:
        raise DatasetError(f"{path}: no such directory")
    if not (path / ANNOTATIONS_DIR).is_dir():
        raise DatasetError(f"{path}: no {ANNOTATIONS_DIR}/ folder (not an AAM root?)")
    return path


def discover_root(root: str | Path, rels: Sequence[str] | None = None) -> tuple[list[Track], list[Problem]]:
    """Tracks under one AAM root, sorted by id, plus mixes/annotations that do not pair up.

    ``rels``: the root's listing (relative paths matching :func:`listing_patterns`, any
    order; default :func:`list_root`). A mix without any annotation, or annotations without a
    mix, become a :class:`Problem`. Whether the annotation a build needs (onsets or segments)
    exists is checked when the track is processed, so it is reported with the same one-line
    reason format.
    """
    root = check_root(root)
    listing = list_root(root) if rels is None else [r for r in rels if listed_rel(r)]
    sources = read_sources(root)
    ann = root / ANNOTATIONS_DIR
    ann_names = {r.rpartition("/")[2] for r in listing if r.startswith(f"{ANNOTATIONS_DIR}/") and r.endswith(".arff")}
    mixes = _find_mixes(root, listing)
    annotated: set[str] = set()
    for name in ann_names:
        stem = name[: -len(".arff")]
        for kind in ANNOTATION_KINDS:
            suffix = f"_{kind}"
            if stem.endswith(suffix) and len(stem) > len(suffix):
                annotated.add(stem[: -len(suffix)])
    check_sources(root, mixes, sources)
    tracks: list[Track] = []
    problems: list[Problem] = []
    for tid in sorted(set(mixes) | annotated):
        if tid not in mixes:
            problems.append(
                Problem(tid, str(ann / f"{tid}_onsets.arff"), f"annotations for {tid} but no {tid}_mix audio in {root}")
            )
            continue
        paths = {kind: ann / f"{tid}_{kind}.arff" for kind in ANNOTATION_KINDS}
        tracks.append(
            Track(
                track_id=tid,
                source_id=sources.get(tid, (tid,))[0],
                sources=sources.get(tid, (tid,)),
                audio=mixes[tid],
                onsets=paths["onsets"] if paths["onsets"].name in ann_names else None,
                segments=paths["segments"] if paths["segments"].name in ann_names else None,
                beatinfo=paths["beatinfo"] if paths["beatinfo"].name in ann_names else None,
                root=root,
            )
        )
    return tracks, problems


def discover(
    roots: Sequence[str | Path] | Iterable[str | Path],
    listings: Sequence[Sequence[str]] | None = None,
) -> tuple[list[Track], list[Problem]]:
    """Tracks under all ``roots`` (e.g. real + synthetic + remix folders), sorted by id.

    ``listings``: each root's listing (see :func:`discover_root`), in ``roots`` order; default:
    each root listed here. A track id found in two roots is kept from the first root and the
    later one becomes a :class:`Problem` (ids must be unique across a build).
    """
    by_id: dict[str, Track] = {}
    problems: list[Problem] = []
    roots = list(roots)
    for k, root in enumerate(roots):
        tracks, probs = discover_root(root, None if listings is None else listings[k])
        problems.extend(probs)
        for t in tracks:
            if t.track_id in by_id:
                problems.append(
                    Problem(t.track_id, str(t.audio), f"duplicate track id {t.track_id} (already found as {by_id[t.track_id].audio})")
                )
            else:
                by_id[t.track_id] = t
    return [by_id[k] for k in sorted(by_id)], problems
