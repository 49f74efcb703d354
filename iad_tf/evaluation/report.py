"""The evaluation report (``metrics.json``) from per-track probabilities and labels. TF-free.

Four decision settings are scored when available:

* ``flat``: threshold 0.5 for every instrument, no smoothing;
* ``flat_median``: 0.5, then a median filter of ``median_window`` frames;
* ``tuned``: the per-instrument thresholds of ``thresholds.json``, no smoothing;
* ``tuned_median``: tuned thresholds, then the median filter (what export/predict apply).

Each setting has frame metrics (:func:`iad_tf.metrics.frame_metrics`), segment metrics at
1 s (:mod:`iad_tf.evaluation.segments`) and per-instrument precision/recall/F1/support. The
threshold-free scores (average precision, ROC AUC) are reported once per instrument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from iad_tf.evaluation.confusion import confusion_matrix, top_pairs
from iad_tf.evaluation.predictions import TrackPrediction, concat
from iad_tf.evaluation.segments import SEGMENT_SECONDS, SegmentCounts
from iad_tf.evaluation.tables import text_table
from iad_tf.metrics import (
    F1_MACRO,
    F1_MICRO,
    F1_WEIGHTED,
    HAMMING,
    JACCARD,
    frame_metrics,
)
from iad_tf.postprocess import decide

SETTINGS: tuple[str, ...] = ("flat", "flat_median", "tuned", "tuned_median")
SETTING_LABELS: dict[str, str] = {
    "flat": "0.5",
    "flat_median": "0.5 + median",
    "tuned": "tuned",
    "tuned_median": "tuned + median",
}


def decisions(
    tracks: Sequence[TrackPrediction], thresholds: np.ndarray | float, median_window: int
) -> list[np.ndarray]:
    """uint8 decisions (frames, C) per track; the median filter runs within each track."""
    return [decide(t.probs, thresholds, median_window) for t in tracks]


def per_class_scores(truth: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 (0 when undefined), support and predicted frames per class."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(
        truth, pred, labels=np.arange(len(classes)), average=None, zero_division=0
    )
    predicted = pred.sum(axis=0)
    return {
        c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
            "support": int(s[i]), "predicted": int(predicted[i])}
        for i, c in enumerate(classes)
    }


def ranking_scores(truth: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Threshold-free scores per class: average precision (needs a positive frame) and ROC AUC
    (needs positive and negative frames); ``None`` where undefined. Macro means over defined."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    per: dict[str, dict[str, float | None]] = {}
    for i, c in enumerate(classes):
        pos = int(truth[:, i].sum())
        ap = float(average_precision_score(truth[:, i], probs[:, i])) if pos > 0 else None
        auc = (float(roc_auc_score(truth[:, i], probs[:, i]))
               if 0 < pos < truth.shape[0] else None)
        per[c] = {"average_precision": ap, "roc_auc": auc}
    aps = [v["average_precision"] for v in per.values() if v["average_precision"] is not None]
    aucs = [v["roc_auc"] for v in per.values() if v["roc_auc"] is not None]
    return {
        "average_precision_macro": float(np.mean(aps)) if aps else None,
        "roc_auc_macro": float(np.mean(aucs)) if aucs else None,
        "per_class": per,
    }


def score_setting(
    tracks: Sequence[TrackPrediction], classes: Sequence[str], thresholds: np.ndarray | float,
    median_window: int, frame_seconds: float, segment_seconds: float = SEGMENT_SECONDS,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Scores of one decision setting, plus the concatenated (truth, decisions) (N, C)."""
    dec = decisions(tracks, thresholds, median_window)
    seg = SegmentCounts(len(classes))
    for t, d in zip(tracks, dec, strict=True):
        seg.add_frames(t.labels, d, frame_seconds, segment_seconds)
    truth = np.concatenate([t.labels for t in tracks])
    pred = np.concatenate(dec)
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(classes),))
    result = {
        "median_window": int(median_window),
        "thresholds": [round(float(x), 4) for x in thr],
        "frame": frame_metrics(truth, pred),
        "segment": seg.metrics(),
        "per_class": per_class_scores(truth, pred, classes),
    }
    return result, truth, pred


def build_report(
    tracks: Sequence[TrackPrediction],
    classes: Sequence[str],
    frame_seconds: float,
    median_window: int = 1,
    tuned_thresholds: np.ndarray | None = None,
    top_k: int = 20,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole ``metrics.json`` content for ``tracks`` (probabilities and labels).

    The ``headline`` setting (tuned + median when both exist) is what compare shows and what
    the confusion analysis and per-instrument pictures use.
    """
    if not tracks:
        raise ValueError("no tracks to evaluate")
    classes = list(classes)
    settings: list[tuple[str, np.ndarray | float, int]] = [("flat", 0.5, 1)]
    if median_window > 1:
        settings.append(("flat_median", 0.5, median_window))
    if tuned_thresholds is not None:
        settings.append(("tuned", np.asarray(tuned_thresholds), 1))
        if median_window > 1:
            settings.append(("tuned_median", np.asarray(tuned_thresholds), median_window))
    headline = settings[-1][0]
    results: dict[str, Any] = {}
    confusion = None
    for name, thr, window in settings:
        results[name], truth, pred = score_setting(tracks, classes, thr, window, frame_seconds)
        if name == headline:
            confusion = confusion_matrix(truth, pred)
    probs, truth = concat(tracks)
    assert confusion is not None
    return {
        **(meta or {}),
        "classes": classes,
        "n_tracks": len(tracks),
        "n_frames": int(truth.shape[0]),
        "frame_seconds": float(frame_seconds),
        "segment_seconds": SEGMENT_SECONDS,
        "median_window": int(median_window),
        "headline": headline,
        "results": results,
        "ranking": ranking_scores(truth, probs, classes),
        "confusion": {
            "setting": headline,
            "matrix": confusion.tolist(),
            "top_pairs": [list(p) for p in top_pairs(confusion, classes, top_k)],
        },
        "tracks": [t.track_id for t in tracks],
    }


def headline_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The headline setting's frame and segment scalars, flat (for compare)."""
    res = report["results"][report["headline"]]
    return {**res["frame"], "segment_f1": res["segment"]["f1"],
            "segment_error_rate": res["segment"]["error_rate"],
            "average_precision_macro": report["ranking"]["average_precision_macro"]}


SUMMARY_HEADERS = ("Decisions", "F1 macro", "F1 micro", "F1 weighted", "Hamming", "Jaccard",
                   "Seg F1 (1s)", "Seg ER (1s)")


def summary_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    window = report["median_window"]
    for name in SETTINGS:
        if name not in report["results"]:
            continue
        r = report["results"][name]
        label = SETTING_LABELS[name] + (f" ({window})" if name.endswith("median") else "")
        f = r["frame"]
        rows.append([label, f[F1_MACRO], f[F1_MICRO], f[F1_WEIGHTED], f[HAMMING], f[JACCARD],
                     r["segment"]["f1"], r["segment"]["error_rate"]])
    return rows


def instrument_rows(report: dict[str, Any]) -> list[list[Any]]:
    """Per instrument active in the truth (support > 0), headline setting."""
    head = report["results"][report["headline"]]
    flat = report["results"]["flat"]
    rank = report["ranking"]["per_class"]
    rows = []
    for i, c in enumerate(report["classes"]):
        pc = head["per_class"][c]
        if pc["support"] == 0:
            continue
        rows.append([c, pc["support"], pc["precision"], pc["recall"], pc["f1"],
                     flat["per_class"][c]["f1"], head["thresholds"][i],
                     rank[c]["average_precision"], rank[c]["roc_auc"]])
    return rows


def false_alarm_classes(report: dict[str, Any]) -> list[tuple[str, int]]:
    """(instrument, predicted frames) for instruments absent from the truth but predicted in
    the headline setting, most frames first."""
    head = report["results"][report["headline"]]["per_class"]
    out = [(c, v["predicted"]) for c, v in head.items() if v["support"] == 0 and v["predicted"] > 0]
    return sorted(out, key=lambda cv: -cv[1])


INSTRUMENT_HEADERS = ("Instrument", "Support", "Precision", "Recall", "F1", "F1@0.5",
                      "Threshold", "AP", "ROC AUC")


def render_report(report: dict[str, Any], top_k: int = 10) -> str:
    """The readable terminal report: settings summary, per-instrument table, top confusions."""
    from iad_tf.evaluation.confusion import pairs_table

    head = SETTING_LABELS[report["headline"]]
    where = f"{report.get('run', '?')} on {report.get('records', '?')} [{report.get('split', '?')}]"
    lines = [
        f"Evaluation of {where}: {report['n_tracks']} tracks, {report['n_frames']} frames",
        "",
        text_table(SUMMARY_HEADERS, summary_rows(report)),
        "",
        f"Threshold-free: mean AP {_f(report['ranking']['average_precision_macro'])}, "
        f"mean ROC AUC {_f(report['ranking']['roc_auc_macro'])}",
        "",
        text_table(INSTRUMENT_HEADERS, instrument_rows(report),
                   title=f"Per instrument ({head}; F1@0.5 without smoothing):"),
        "Predicted but absent (frames): "
        + (", ".join(f"{c} {n}" for c, n in false_alarm_classes(report)) or "none"),
        "",
        pairs_table([tuple(p) for p in report["confusion"]["top_pairs"][:top_k]],
                    title=f"Top confusions ({head}): true instrument missed while another is predicted"),
    ]
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
