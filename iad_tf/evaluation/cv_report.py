"""Scores and post-processing tuned on out-of-fold (OOF) predictions. TF-free.

Decision settings scored on the pooled OOF predictions of every real song:

* ``flat``: threshold 0.5 and the median filter, every instrument kept;
* ``global``: one threshold for all instruments;
* ``presence``: one threshold plus the song-level presence gate
  (:class:`iad_tf.postprocess.Presence`);
* ``presence_per_class``: the gate plus per-instrument thresholds for instruments present in
  at least :data:`MIN_SONGS` tuning songs (the rest share the global one);
* ``presence_one_bass`` (and ``..._per_class``): the gate keeping at most one bass instrument
  per song (:data:`iad_tf.config.AAM_BASS`; every sample song holds exactly one);
* ``presence_bass_required``: the gate plus exactly one bass per song, always: the bass
  ranked first by the mean of its top :data:`GROUP_SECONDS` (tuned; the whole-song mean
  among them) is kept even below the threshold, the others dropped (a song-level choice
  learned from the OOF predictions);
* ``oracle_presence``: 0.5 gated by the TRUE instruments of each song: an upper bound that
  shows what a perfect presence step would give (not reachable, not a result).

Every tuned setting is scored by **cross-fitting**: the parameters used on fold f's songs are
tuned on the other folds' OOF predictions only, so no song is scored with parameters tuned
on it. The decoder that ships (``decoder``) is then tuned on all OOF predictions with the
mode whose cross-fitted objective was best; its in-sample score is reported and labelled as
optimistic. Objective of tuning: the mean of frame micro-F1 (all classes) and macro-F1
(classes present).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iad_tf.config import AAM_BASS, AAM_CLASSES, CONFUSION_GROUPS
from iad_tf.evaluation.predictions import TrackPrediction
from iad_tf.evaluation.tables import markdown_table, text_table
from iad_tf.evaluation.thresholds import DEFAULT_MEDIAN_WINDOW, smoothed_probs
from iad_tf.metrics import F1_MACRO, F1_MICRO, HAMMING, JACCARD, f1_from_counts, frame_metrics
from iad_tf.postprocess import WHOLE_SONG_S, Presence, decide_song, presence_scores

THRESHOLD_GRID: np.ndarray = np.round(np.arange(0.05, 0.951, 0.05), 2)
PRESENCE_GRID: np.ndarray = np.round(np.arange(0.05, 0.951, 0.025), 3)
PRESENCE_SECONDS: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
#: Poolings that may rank the members of a one-of group (the bass): top seconds, whole song.
GROUP_SECONDS: tuple[float, ...] = (1.0, 10.0, 30.0, WHOLE_SONG_S)
#: An instrument gets its own threshold only when this many tuning songs hold it.
MIN_SONGS = 3
#: mode -> (presence gate, per-class thresholds, one bass: "" none, "max" at most one,
#: "required" exactly one)
MODE_FLAGS: dict[str, tuple[bool, bool, str]] = {
    "global": (False, False, ""),
    "presence": (True, False, ""),
    "presence_per_class": (True, True, ""),
    "presence_one_bass": (True, False, "max"),
    "presence_one_bass_per_class": (True, True, "max"),
    "presence_bass_required": (True, False, "required"),
}
MODES: tuple[str, ...] = tuple(MODE_FLAGS)
SETTINGS: tuple[str, ...] = ("flat", *MODES, "oracle_presence")


@dataclass(frozen=True)
class Decoder:
    """Post-processing of one song's probabilities: thresholds (C,), median window, gate."""

    thresholds: np.ndarray
    median_window: int
    presence: Presence | None

    def decide(self, probs: np.ndarray, frame_seconds: float) -> tuple[np.ndarray, np.ndarray]:
        return decide_song(probs, self.thresholds, self.median_window, self.presence, frame_seconds)

    def to_dict(self, classes: Sequence[str]) -> dict[str, Any]:
        return {
            "classes": list(classes),
            "thresholds": [round(float(t), 4) for t in self.thresholds],
            "median_window": int(self.median_window),
            "presence": None if self.presence is None else self.presence.to_dict(classes),
        }


@dataclass(frozen=True)
class SongCounts:
    """Per-song counts for fast tuning: TP/FP (thresholds, C) before gating, positives (C,),
    presence scores {seconds: (C,)}."""

    tp: np.ndarray
    fp: np.ndarray
    pos: np.ndarray
    scores: dict[float, np.ndarray]


def song_counts(track: TrackPrediction, frame_seconds: float, median_window: int) -> SongCounts:
    sp = smoothed_probs(track.probs, median_window)  # (frames, C)
    lab = track.labels.astype(bool)
    thr = THRESHOLD_GRID.astype(np.float32)
    tp = np.empty((thr.size, lab.shape[1]), np.int64)
    fp = np.empty_like(tp)
    for i, t in enumerate(thr):
        d = sp >= t
        tp[i] = (d & lab).sum(axis=0)
        fp[i] = (d & ~lab).sum(axis=0)
    scores = {
        s: presence_scores(track.probs, max(1, int(round(s / frame_seconds))))
        for s in sorted({*PRESENCE_SECONDS, *GROUP_SECONDS})
    }
    return SongCounts(tp, fp, lab.sum(axis=0).astype(np.int64), scores)


def tuning_objective(tp: np.ndarray, fp: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """(micro + macro) / 2 for counts (..., C) with positives (C,); macro over present classes."""
    fn = pos - tp
    micro = f1_from_counts(tp.sum(-1), fp.sum(-1), fn.sum(-1))
    present = pos > 0
    macro = f1_from_counts(tp, fp, fn)[..., present].mean(-1) if present.any() else micro
    return (micro + macro) / 2.0


def tune_decoder(
    songs: Sequence[SongCounts],
    mode: str,
    median_window: int,
    classes: Sequence[str] = AAM_CLASSES,
) -> Decoder:
    """The decoder of ``mode`` maximising the objective over ``songs``."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    use_gate, per_class, one_bass = MODE_FLAGS[mode]
    one_of = (tuple(list(classes).index(c) for c in AAM_BASS if c in classes),) if one_bass else ()
    tp = np.stack([s.tp for s in songs])  # (S, T, C)
    fp = np.stack([s.fp for s in songs])
    pos_s = np.stack([s.pos for s in songs])  # (S, C)
    pos = pos_s.sum(0)
    n_cls = tp.shape[-1]
    best: tuple[float, int, Presence | None, np.ndarray] | None = None
    gates: list[tuple[Presence | None, np.ndarray]] = [(None, np.ones(pos_s.shape, bool))]
    required = one_bass == "required"
    if use_gate:
        gates = []
        group_options: tuple[float | None, ...] = GROUP_SECONDS if required else (None,)
        for s in PRESENCE_SECONDS:
            for gs in group_options:
                for tau in PRESENCE_GRID:
                    p = Presence(float(tau), s, one_of, gs, required)
                    g = np.stack([
                        p.present_from_scores(song.scores[s], None if gs is None else song.scores[gs])
                        for song in songs])
                    gates.append((p, g))
    for presence, g in gates:
        gtp = np.einsum("sc,stc->tc", g, tp)  # (T, C)
        gfp = np.einsum("sc,stc->tc", g, fp)
        obj = tuning_objective(gtp, gfp, pos)  # (T,)
        i = int(obj.argmax())
        if best is None or obj[i] > best[0] + 1e-12:
            best = (float(obj[i]), i, presence, g)
    assert best is not None
    _, t_idx, presence, g = best
    thresholds = np.full(n_cls, THRESHOLD_GRID[t_idx], dtype=np.float64)
    if per_class:
        songs_with = (pos_s > 0).sum(0)  # (C,)
        gtp = np.einsum("sc,stc->tc", g, tp)
        gfp = np.einsum("sc,stc->tc", g, fp)
        f1 = f1_from_counts(gtp, gfp, pos[None, :] - gtp)  # (T, C)
        for c in np.flatnonzero(songs_with >= MIN_SONGS):
            j = int(f1[:, c].argmax())
            if f1[j, c] > f1[t_idx, c] + 1e-12:
                thresholds[c] = THRESHOLD_GRID[j]
    return Decoder(thresholds, median_window, presence)


def song_instruments(decisions: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """(instruments with any active decision frame, instruments truly present)."""
    return int((decisions.sum(0) > 0).sum()), int((labels.sum(0) > 0).sum())


def score_decisions(
    tracks: Sequence[TrackPrediction], decisions: Sequence[np.ndarray]
) -> dict[str, Any]:
    """Frame metrics of the pooled decisions, plus instruments predicted vs present per song."""
    truth = np.concatenate([t.labels for t in tracks])
    pred = np.concatenate(decisions)
    per_song = {
        t.track_id: song_instruments(d, t.labels) for t, d in zip(tracks, decisions, strict=True)
    }
    n_pred = np.array([v[0] for v in per_song.values()], dtype=float)
    n_true = np.array([v[1] for v in per_song.values()], dtype=float)
    return {
        **frame_metrics(truth, pred),
        "instruments_predicted": float(n_pred.mean()),
        "instruments_present": float(n_true.mean()),
        "instruments_ratio": float(n_pred.sum() / max(n_true.sum(), 1.0)),
        "per_song": {k: {"predicted": v[0], "present": v[1]} for k, v in per_song.items()},
    }


def group_confusions(
    tracks: Sequence[TrackPrediction],
    decisions: Sequence[np.ndarray],
    classes: Sequence[str],
    groups: Mapping[str, Sequence[str]] = CONFUSION_GROUPS,
) -> dict[str, Any]:
    """Confusions inside instrument groups (the four basses, the three pianos).

    Per group: ``songs``: {song: {"true": [members present], "reported": [members with any
    decision frame]}}; ``frames``: {true member: {member: fraction of the true member's active
    frames in which that member is decided active}} (a row of a frame-level confusion matrix;
    the diagonal is recall).
    """
    out: dict[str, Any] = {}
    for name, members in groups.items():
        idx = [list(classes).index(m) for m in members if m in classes]
        songs = {}
        hits = np.zeros((len(idx), len(idx)))
        support = np.zeros(len(idx))
        for t, d in zip(tracks, decisions, strict=True):
            lab = t.labels[:, idx].astype(bool)  # (frames, G)
            dec = d[:, idx].astype(bool)
            songs[t.track_id] = {
                "true": [classes[c] for c, on in zip(idx, lab.any(0), strict=True) if on],
                "reported": [classes[c] for c, on in zip(idx, dec.any(0), strict=True) if on],
            }
            support += lab.sum(0)
            hits += lab.T.astype(np.int64) @ dec.astype(np.int64)  # (G true, G decided)
        frames = {
            classes[c]: {classes[k]: round(float(hits[i, j] / support[i]), 4)
                         for j, k in enumerate(idx)}
            for i, c in enumerate(idx) if support[i] > 0
        }
        out[name] = {"songs": songs, "frames": frames}
    return out


def _by_fold(
    tracks: Sequence[TrackPrediction], decisions: Sequence[np.ndarray], fold_of: Mapping[str, int]
) -> list[dict[str, Any]]:
    out = []
    for f in sorted(set(fold_of.values())):
        idx = [i for i, t in enumerate(tracks) if fold_of[t.track_id] == f]
        sc = score_decisions([tracks[i] for i in idx], [decisions[i] for i in idx])
        out.append({k: v for k, v in sc.items() if k != "per_song"})
    return out


def crossfit_decisions(
    tracks: Sequence[TrackPrediction],
    counts: Sequence[SongCounts],
    fold_of: Mapping[str, int],
    mode: str,
    frame_seconds: float,
    median_window: int,
    classes: Sequence[str] = AAM_CLASSES,
) -> tuple[list[np.ndarray], list[Decoder]]:
    """Cross-fitted decisions (frames, C) per track of ``mode``: fold f's songs decided by the
    decoder tuned on the other folds' ``counts`` (:func:`song_counts`); and those decoders, by
    fold."""
    decisions: list[np.ndarray] = [np.empty(0)] * len(tracks)
    decoders = []
    for f in sorted(set(fold_of.values())):
        tune = [counts[i] for i, t in enumerate(tracks) if fold_of[t.track_id] != f]
        dec = tune_decoder(tune, mode, median_window, classes)
        decoders.append(dec)
        for i, t in enumerate(tracks):
            if fold_of[t.track_id] == f:
                decisions[i] = dec.decide(t.probs, frame_seconds)[0]
    return decisions, decoders


def cv_report(
    tracks: Sequence[TrackPrediction],
    classes: Sequence[str],
    fold_of: Mapping[str, int],
    frame_seconds: float,
    median_window: int = DEFAULT_MEDIAN_WINDOW,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The cross-validation report (see module docstring) of OOF ``tracks``."""
    from iad_tf.evaluation.predictions import concat
    from iad_tf.evaluation.report import ranking_scores

    if not tracks:
        raise ValueError("no out-of-fold predictions")
    missing = [t.track_id for t in tracks if t.track_id not in fold_of]
    if missing:
        raise ValueError(f"tracks without a fold: {missing}")
    counts = [song_counts(t, frame_seconds, median_window) for t in tracks]
    settings: dict[str, Any] = {}

    def record(name: str, decisions: list[np.ndarray]) -> None:
        pooled = score_decisions(tracks, decisions)
        settings[name] = {"pooled": pooled, "per_fold": _by_fold(tracks, decisions, fold_of),
                          "confusions": group_confusions(tracks, decisions, classes)}

    flat = Decoder(np.full(len(classes), 0.5), median_window, None)
    record("flat", [flat.decide(t.probs, frame_seconds)[0] for t in tracks])
    crossfit: dict[str, list[dict[str, Any]]] = {}
    for mode in MODES:
        decisions, decoders = crossfit_decisions(tracks, counts, fold_of, mode, frame_seconds,
                                                 median_window, classes)
        crossfit[mode] = [d.to_dict(classes) for d in decoders]
        record(mode, decisions)
    record(
        "oracle_presence",
        [flat.decide(t.probs, frame_seconds)[0] * (t.labels.sum(0) > 0)[None, :] for t in tracks],
    )

    def objective(name: str) -> float:
        p = settings[name]["pooled"]
        return (p[F1_MICRO] + p[F1_MACRO]) / 2.0

    chosen = max(MODES, key=objective)
    decoder = tune_decoder(counts, chosen, median_window, classes)
    in_sample = score_decisions(tracks, [decoder.decide(t.probs, frame_seconds)[0] for t in tracks])
    probs, truth = concat(tracks)
    return {
        **(meta or {}),
        "classes": list(classes),
        "songs": [t.track_id for t in tracks],
        "fold_of": dict(fold_of),
        "n_frames": int(truth.shape[0]),
        "frame_seconds": frame_seconds,
        "median_window": median_window,
        "ranking": ranking_scores(truth, probs, classes),
        "settings": settings,
        "crossfit_decoders": crossfit,
        "decoder_mode": chosen,
        "decoder": decoder.to_dict(classes),
        "decoder_in_sample": {k: v for k, v in in_sample.items() if k != "per_song"},
    }


SETTING_LABELS: dict[str, str] = {
    "flat": "0.5 + median, no gate",
    "global": "one tuned threshold (cross-fitted)",
    "presence": "tuned threshold + presence gate (cross-fitted)",
    "presence_per_class": "per-class thresholds + presence gate (cross-fitted)",
    "presence_one_bass": "tuned threshold + presence gate, one bass (cross-fitted)",
    "presence_one_bass_per_class": "per-class thresholds + gate, one bass (cross-fitted)",
    "presence_bass_required": "tuned threshold + gate, exactly one bass, ranked by a tuned pooling (cross-fitted)",
    "oracle_presence": "0.5 gated by the TRUE instruments (upper bound, not a result)",
}
HEADERS = ("decisions", "F1 micro", "F1 macro", "Hamming", "Jaccard", "instr. predicted / present")


def summary_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for name in SETTINGS:
        p = report["settings"][name]["pooled"]
        rows.append(
            [
                SETTING_LABELS[name],
                p[F1_MICRO],
                p[F1_MACRO],
                p[HAMMING],
                p[JACCARD],
                f"{p['instruments_predicted']:.1f} / {p['instruments_present']:.1f}",
            ]
        )
    return rows


def render_cv_report(report: Mapping[str, Any], markdown: bool = False) -> str:
    """Pooled OOF scores per decision setting, per-fold scores and the shipped decoder."""
    table = markdown_table if markdown else text_table
    n_songs = len(report["songs"])
    n_folds = len(set(report["fold_of"].values()))
    mean_ap = report["ranking"]["average_precision_macro"]
    lines = [
        f"Out-of-fold predictions of {n_songs} songs in {n_folds} song-level folds "
        f"({report['n_frames']} frames); mAP {mean_ap:.3f}",
        "",
        table(HEADERS, summary_rows(report)),
        "",
    ]
    fold_rows = []
    for name in ("flat", report["decoder_mode"]):
        for i, row in enumerate(report["settings"][name]["per_fold"]):
            fold_rows.append(
                [
                    name,
                    i + 1,
                    row[F1_MICRO],
                    row[F1_MACRO],
                    f"{row['instruments_predicted']:.1f} / {row['instruments_present']:.1f}",
                ]
            )
    lines += [
        table(("decisions", "fold", "F1 micro", "F1 macro", "instr. pred / present"), fold_rows),
        "",
    ]
    d = report["decoder"]
    pres = d["presence"]
    lines.append(
        f"Shipped decoder (mode {report['decoder_mode']}, tuned on all OOF predictions): "
        f"thresholds {min(d['thresholds']):.2f}-{max(d['thresholds']):.2f}, median {d['median_window']}, "
        + (
            f"presence: mean of the top {pres['seconds']:g} s >= {pres['threshold']:.3f}"
            if pres
            else "no presence gate"
        )
    )
    ins = report["decoder_in_sample"]
    lines.append(
        f"Its score on the same OOF predictions (tuned on them: optimistic): "
        f"micro {ins[F1_MICRO]:.3f}, macro {ins[F1_MACRO]:.3f}, "
        f"instruments {ins['instruments_predicted']:.1f} / {ins['instruments_present']:.1f}"
    )
    return "\n".join(lines) + "\n"
