"""``fit``: train one model on a records directory into a run directory.

Run directory: ``config.json`` (model/train/feature configs, classes, records dir, mel stats,
pos_weight, class distribution before/after oversampling), ``model.keras`` (best epoch on
``val_f1_macro``), ``history.csv``, ``metrics.jsonl`` (one JSON object per epoch), ``logs/``
(TensorBoard) and, while a run is unfinished, ``backup/``: calling :func:`fit` again with the
same arguments resumes after the last completed epoch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iad_tf.config import FeatureConfig
from iad_tf.fileio import remove_temporaries, write_json
from iad_tf.fingerprint import INPUTS_KEY, as_named_now, describe_diff, records_fingerprint
from iad_tf.training.checkpoints import BACKUP_DIR, backup_epoch, save_model, trim_logs
from iad_tf.training.config import CONFIG_JSON, ModelConfig, TrainConfig, run_config_dict

log = logging.getLogger(__name__)

#: Keys of config.json that must match for a run to resume.
RESUME_KEYS: tuple[str, ...] = (
    "model_name",
    "model",
    "train",
    "feature_config",
    "classes",
    "records_dir",
    INPUTS_KEY,
    "teachers",
)


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    epochs_run: int
    best_epoch: int | None
    best: dict[str, float]  # the metrics.jsonl row of the best epoch
    resumed: bool


def _prepare_run_dir(run_dir: Path, config: dict[str, Any], local_records: Path | None = None) -> bool:
    """Create ``run_dir`` or check it can be resumed; return True when resuming.
    ``local_records``: where the records were read (the local copy of a URL)."""
    cfg_path = run_dir / CONFIG_JSON
    if not cfg_path.is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        return False
    old = json.loads(cfg_path.read_text(encoding="utf-8"))
    if local_records is not None:
        old = as_named_now(old, config["records_dir"], local_records)
    remove_temporaries(run_dir)  # of a save a kill interrupted
    if (run_dir / BACKUP_DIR).is_dir():
        diff = describe_diff({k: old[k] for k in RESUME_KEYS if k in old}, config)
        if diff:
            raise ValueError(
                f"{run_dir}: holds an unfinished run with different settings: "
                f"{'; '.join(diff)}; rerun with the same settings to resume, or choose a new "
                "--run-dir"
            )
        trim_logs(run_dir, backup_epoch(run_dir) or 0)
        return True
    if (run_dir / "model.keras").is_file():
        raise ValueError(
            f"{run_dir}: already holds a finished run (model.keras); choose a new --run-dir"
        )
    # Interrupted before the first epoch completed: start afresh.
    for name in ("history.csv", "metrics.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "logs", ignore_errors=True)
    return False


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def fit(
    records_dir: str | Path,
    run_dir: str | Path,
    model_name: str,
    train_cfg: TrainConfig,
    model_cfg: ModelConfig | None = None,
    feature_cfg: FeatureConfig | None = None,
    strategy: Any = None,
    verbose: int | str = "auto",
    extra_callbacks: list[Any] | None = None,
    teachers: Sequence[str | Path] = (),
) -> FitResult:
    """Train ``model_name`` on ``records_dir`` (train split; val split for metrics): a local
    folder or a URL (read through its verified local copy, :func:`iad_tf.storage.local_records`;
    ``config.json`` records the URL).

    Every check (records, feature config, model name, empty splits, run dir) happens before
    TensorFlow builds anything; errors are ``ValueError``/``FileNotFoundError`` with a
    one-line message. ``strategy`` (a ``tf.distribute.Strategy``) scopes model, loss and
    optimizer creation; default: TensorFlow's default strategy. ``extra_callbacks`` run after
    the standard ones (the epoch logs then hold every ``val_*`` metric). ``teachers``: run
    directories whose mean probabilities over the train split become part of the targets
    (``train_cfg.distill_weight``, :mod:`iad_tf.training.distill`); computed before training.
    """
    from iad_tf.storage import local_records
    from iad_tf.training.distill import check_teachers, require_both
    from iad_tf.training.models import check_model_features, check_model_name
    from iad_tf.training.records_info import open_records

    check_model_name(model_name)
    require_both(teachers, train_cfg.distill_weight)
    info = open_records(local_records(records_dir), expected_feature=feature_cfg)
    check_model_features(model_name, info.feature, str(info.manifest_path))
    if teachers:
        check_teachers(teachers, info.classes)
    if train_cfg.aux_head is not None:
        from iad_tf.training.pipeline import require_aux

        require_aux(info, train_cfg.aux_head[0])
    run_dir = Path(run_dir)
    model_cfg = dataclasses.replace(
        model_cfg or ModelConfig(), n_mels=info.feature.n_mels, n_classes=len(info.classes)
    )

    import tensorflow as tf

    from iad_tf.training.distribute import worker_run_dir
    from iad_tf.training.losses import pos_weight_from_manifest
    from tfrecords_tools.verify import first_bad_shard

    pos_weight = (
        pos_weight_from_manifest(info.manifest, train_cfg.pos_weight_min, train_cfg.pos_weight_max)
        if train_cfg.class_weighting == "pos_weight"
        else None
    )
    config = run_config_dict(
        model_name,
        model_cfg,
        train_cfg,
        info.feature,
        info.classes,
        records_dir,
        info.mel_stats,
        pos_weight,
    )
    config[INPUTS_KEY] = records_fingerprint(info.records_dir)
    config["teachers"] = [str(t) for t in teachers]
    strategy = strategy or tf.distribute.get_strategy()
    run_dir = worker_run_dir(run_dir, strategy)  # only the chief writes the real run dir
    existed = run_dir.exists()
    resumed = _prepare_run_dir(run_dir, config, info.records_dir)
    try:
        return _train(info, run_dir, model_name, model_cfg, train_cfg, config, pos_weight,
                      strategy, resumed, verbose, extra_callbacks, teachers)
    except tf.errors.OpError as exc:
        # tf.data's DataLossError does not name the shard: find it and say so.
        bad = first_bad_shard(info.shards("train") + info.shards("val"), info.schema)
        if bad is None:
            raise
        raise ValueError(bad) from exc
    finally:
        if not resumed and not _read_jsonl(run_dir / "metrics.jsonl"):
            _discard_failed_start(run_dir, existed)


def _discard_failed_start(run_dir: Path, existed: bool) -> None:
    """Remove what a start that never completed an epoch wrote: the whole run dir if this
    call created it, else only the run files (never anything else the folder holds)."""
    if (run_dir / "model.keras").is_file():
        return
    if not existed:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for name in (CONFIG_JSON, "history.csv", "metrics.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    for name in ("logs", "backup"):
        shutil.rmtree(run_dir / name, ignore_errors=True)


def _train(
    info: Any, run_dir: Path, model_name: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
    config: dict[str, Any], pos_weight: Any, strategy: Any, resumed: bool,
    verbose: int | str, extra_callbacks: list[Any] | None, teachers: Sequence[str | Path] = (),
) -> FitResult:
    """The training proper, once the run directory is ready (see :func:`fit`)."""
    import keras

    from iad_tf.data.records import AUX_FIELDS
    from iad_tf.training.callbacks import MONITOR, best_so_far, standard_callbacks
    from iad_tf.training.distribute import shard_input
    from iad_tf.training.losses import MaskedWeightedBCE
    from iad_tf.training.models import build_model, with_aux_head
    from iad_tf.training.optimizers import make_optimizer
    from iad_tf.training.pipeline import eval_dataset, plan_resampling, train_dataset

    keras.utils.set_random_seed(train_cfg.seed)
    plan = plan_resampling(info, train_cfg) if train_cfg.oversample_factor > 1 else None
    config["class_distribution"] = plan.report(info.classes) if plan is not None else None
    soft = None
    if teachers:
        from iad_tf.training.distill import teacher_targets

        log.info("distillation: predicting the train split with %d teacher(s)", len(teachers))
        soft = teacher_targets(teachers, info.records_dir, "train", progress=verbose != 0)
        keras.backend.clear_session()  # the teachers' layers leave no trace in the student
        keras.utils.set_random_seed(train_cfg.seed)  # nor in its initialisation
    train = train_dataset(info, train_cfg, plan, soft=soft)
    train.dataset = shard_input(train.dataset, strategy, len(info.shards("train")))
    val = eval_dataset(info, "val")
    write_json(run_dir / CONFIG_JSON, config)

    aux = train_cfg.aux_head is not None
    aux_field, aux_weight = train_cfg.aux_head or ("", 0.0)
    with strategy.scope():  # model, optimizer, loss and callbacks
        model = build_model(model_name, model_cfg, info.mel_stats)
        # Multi-task: the trained model adds the auxiliary head; ``model`` (the instrument
        # head alone, sharing every weight) is what validation scores and every save keeps.
        trained = with_aux_head(model, aux_field, AUX_FIELDS[aux_field]) if aux else model
        trained.compile(
            optimizer=make_optimizer(
                train_cfg, trained, total_steps=train.steps_per_epoch * train_cfg.epochs,
                use_ema=train_cfg.ema, ema_momentum=train_cfg.ema_momentum,
            ),
            loss=MaskedWeightedBCE(
                pos_weight, aux_columns=AUX_FIELDS[aux_field] if aux else 0, aux_weight=aux_weight
            ),
        )
        callbacks = standard_callbacks(
            run_dir,
            val,
            train_cfg.threshold,
            train_cfg.patience,
            resumed_best=best_so_far(run_dir / "metrics.jsonl") if resumed else None,
            save_best_only=train_cfg.checkpoint == "best",
            model=model if aux else None,
            val_loss=MaskedWeightedBCE(pos_weight) if aux else None,
        ) + list(extra_callbacks or [])
    if resumed:
        log.info("resuming the unfinished run in %s", run_dir)
    log.info(
        "training %s (%d parameters): %d train / %d val tracks, %s batches of %d, %d steps per epoch",
        model_name,
        model.count_params(),
        len(info.tracks("train")),
        len(info.tracks("val")),
        train_cfg.batching,
        train_cfg.batch_size,
        train.steps_per_epoch,
    )
    trained.fit(
        train.dataset,
        epochs=train_cfg.epochs,
        steps_per_epoch=train.steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself
    )
    if train_cfg.checkpoint == "last" or train_cfg.ema:
        # The final weights (with EMA: the averaged ones, swapped in when fit ends) are the
        # model; the per-epoch checkpoint saw the raw weights.
        save_model(model, run_dir / "model.keras")
    # The run is complete only now: until here a kill leaves backup/ and the rerun resumes.
    shutil.rmtree(run_dir / BACKUP_DIR, ignore_errors=True)
    rows = _read_jsonl(run_dir / "metrics.jsonl")
    best_row = max(rows, key=lambda r: r.get(MONITOR, float("-inf")), default=None)
    return FitResult(
        run_dir=run_dir,
        epochs_run=len(rows),
        best_epoch=None if best_row is None else int(best_row["epoch"]),
        best={} if best_row is None else best_row,
        resumed=resumed,
    )
