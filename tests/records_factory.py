"""Tiny synthetic records directories for the training tests (no audio, seconds to write).

Each track has a few active classes switched on and off in runs of frames; the log-mel holds
a bump at a class-specific band while the class plays, so a model can learn the task. The
manifest follows docs/ARCHITECTURE.md, computed from the written arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from iad_tf.aam.labels import PITCH_KEYS
from iad_tf.aam.roles import ROLES
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.data.records import record_schema
from tfrecords_tools.reader import write_manifest
from tfrecords_tools.writer import ShardedWriter

N_MELS = 128


def synth_track(
    rng: np.random.Generator, classes: Sequence[int], n_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """mel float16 (n_frames, 128) dB and labels uint8 (n_frames, 31) for active ``classes``."""
    labels = np.zeros((n_frames, len(AAM_CLASSES)), dtype=np.uint8)
    for c in classes:
        t = 0
        while t < n_frames:
            run = int(rng.integers(5, 30))
            labels[t : t + run, c] = rng.random() < 0.6
            t += run
        if not labels[:, c].any():
            labels[: min(10, n_frames), c] = 1  # every listed class plays somewhere
    mel = rng.normal(-60.0, 3.0, (n_frames, N_MELS))
    for c in classes:
        band = slice(4 * c, 4 * c + 4)
        mel[:, band] += 30.0 * labels[:, c : c + 1]
    return mel.astype(np.float16), labels


def pitch_of(labels: np.ndarray) -> np.ndarray:
    """The factory's pitch roll uint8 (frames, 88): key 10 + c sounds where class c is active."""
    roll = np.zeros((labels.shape[0], PITCH_KEYS), dtype=np.uint8)
    roll[:, 10 : 10 + labels.shape[1]] = labels
    return roll


#: The factory's role of each class it uses (role index of iad_tf.aam.roles.ROLES).
FACTORY_ROLES: dict[int, int] = {0: 1, 1: 2, 8: 4, 9: 3, 22: 0}


def roles_of(labels: np.ndarray) -> np.ndarray:
    """The factory's role roll uint8 (frames, 5): role FACTORY_ROLES[c] sounds where c does."""
    roll = np.zeros((labels.shape[0], len(ROLES)), dtype=np.uint8)
    for c, r in FACTORY_ROLES.items():
        roll[:, r] |= labels[:, c]
    return roll


AUX_OF = {"pitch": pitch_of, "roles": roles_of}


def make_records(
    out: Path,
    tracks: dict[str, Sequence[Sequence[int]]] | None = None,
    n_frames: int = 120,
    seed: int = 0,
    feature: FeatureConfig | None = None,
    sources: dict[str, str] | None = None,
    aux: Sequence[str] = (),
) -> Path:
    """Write records for ``tracks`` = {split: [classes of track 0, classes of track 1, ...]}.

    Track ids are 0001, 0002, ... in order; ``sources`` maps a track id to its source id
    (a remix of that track; default: its own id). ``aux``: the auxiliary targets the records
    hold (``("pitch",)``: records of ``--labels onsets+pitch``, :func:`pitch_of`;
    ``("roles",)``: of ``--labels onsets+roles``, :func:`roles_of`)."""
    feature = feature or FeatureConfig()
    rng = np.random.default_rng(seed)
    if tracks is None:
        tracks = {
            "train": [[0, 8], [8, 9], [0, 9, 22], [22, 8], [1, 8]],
            "val": [[0, 8], [9, 22]],
            "test": [[8, 22]],
        }
    schema = record_schema(feature, aux=aux)
    manifest: dict = {
        "schema": schema.to_json(),
        "shards": {},
        "feature_config": feature.to_dict(),
        "classes": list(AAM_CLASSES),
        "labels": "+".join(("onsets", *aux)),
        "splits": {},
        "tracks": {},
        "class_track_counts": {},
        "class_active_frames": {},
        "frames": {},
        "mel_stats": {},
        "skipped": [],
        "versions": {},
    }
    k = 0
    for split, rows in tracks.items():
        mels, ids = [], []
        track_counts = np.zeros(len(AAM_CLASSES), dtype=np.int64)
        active_frames = np.zeros(len(AAM_CLASSES), dtype=np.int64)
        if not rows:
            manifest["splits"][split] = []
            continue
        with ShardedWriter(out, split, 2 if len(rows) > 1 else 1, schema) as writer:
            for classes in rows:
                k += 1
                tid = f"{k:04d}"
                source = (sources or {}).get(tid, tid)
                t = int(n_frames + rng.integers(-n_frames // 4, n_frames // 4 + 1))
                mel, labels = synth_track(rng, classes, t)
                writer.write(
                    {
                        "track_id": tid,
                        "source_id": source,
                        "split": split,
                        "n_frames": t,
                        "mel": mel,
                        "labels": labels,
                        **{name: AUX_OF[name](labels) for name in aux},
                    }
                )
                manifest["tracks"][tid] = {
                    "split": split,
                    "source_id": source,
                    "n_frames": t,
                    "duration_s": t * feature.frame_seconds,
                    "audio": "",
                }
                ids.append(tid)
                mels.append(mel.astype(np.float64))
                track_counts += labels.max(axis=0) > 0
                active_frames += labels.sum(axis=0, dtype=np.int64)
            manifest["shards"].update(writer.close())
        manifest["splits"][split] = ids
        manifest["class_track_counts"][split] = {
            c: int(n) for c, n in zip(AAM_CLASSES, track_counts, strict=True)
        }
        manifest["class_active_frames"][split] = {
            c: int(n) for c, n in zip(AAM_CLASSES, active_frames, strict=True)
        }
        manifest["frames"][split] = int(sum(m.shape[0] for m in mels))
        if split == "train":
            allm = np.concatenate(mels)
            manifest["mel_stats"]["train"] = {
                "mean": allm.mean(axis=0).tolist(),
                "std": allm.std(axis=0).tolist(),
            }
    write_manifest(out, manifest)
    return out


def save_untrained_run(records: Path, run: Path, epochs: int = 50) -> Path:
    """``run``: an untrained tiny MLP on ``records`` saved as fit saves it (model.keras and
    config.json with the records' fingerprint), without training. Imports TensorFlow."""
    import json

    from iad_tf.fingerprint import INPUTS_KEY, records_fingerprint
    from iad_tf.training.config import ModelConfig, TrainConfig, run_config_dict
    from iad_tf.training.models import build_model
    from tfrecords_tools.reader import read_manifest

    stats = read_manifest(records)["mel_stats"]["train"]
    cfg = ModelConfig(mlp_units=(8,))
    run.mkdir(parents=True)
    build_model("mlp", cfg, stats).save(run / "model.keras")
    config = run_config_dict(
        "mlp", cfg, TrainConfig(epochs=epochs), FeatureConfig(), AAM_CLASSES, records, stats,
        None,
    )
    config[INPUTS_KEY] = records_fingerprint(records)
    (run / "config.json").write_text(json.dumps(config))
    return run
