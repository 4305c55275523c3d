"""Training with checkpoints, early stopping, logs and resume after a kill (`fit`)."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterable
from pathlib import Path

import keras
import tensorflow as tf

from helpers.training._runs import (
    begin_run,
    best_logged,
    finish_run,
    finished_history,
    logged_values,
    run_fingerprint,
    worker_dir,
)
from helpers.training.distributed import fit_history
from helpers.training.hardware import replica_scaling


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping that carries on across a resume: patience counts the epochs logged since
    the best one, and the best weights are the run's best checkpoint's."""

    def __init__(self, log_path: Path | None, checkpoint: Path, **kwargs):
        super().__init__(**kwargs)
        self.log_path, self.checkpoint = log_path, checkpoint

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        values = logged_values(self.log_path, self.monitor) if self.log_path else []
        if not values or not self.checkpoint.is_file():
            return
        if self.monitor_op is None:
            self._set_monitor_op()
        for epoch, value in enumerate(values):  # replay the logged epochs as Keras counts them
            self.wait += 1
            if self._is_improvement(value, self.best):
                self.best, self.best_epoch, self.wait = value, epoch, 0
        if self.restore_best_weights:
            best = keras.saving.load_model(self.checkpoint, compile=False)
            self.best_weights = best.get_weights()


def fit(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    *,
    run_dir: str | os.PathLike,
    epochs: int,
    class_weight: dict[int, float] | None = None,
    patience: int = 5,
    monitor: str = "val_loss",
    callbacks: Iterable[keras.callbacks.Callback] = (),
    tensorboard: bool | None = None,
    verbose: int | str = "auto",
    strategy: tf.distribute.Strategy | None = None,
) -> keras.callbacks.History:
    """Train a compiled model with checkpointing, early stopping, logs, and resume after a kill.

    run_dir gets best.keras (best `monitor`: highest for accuracies, lowest for losses),
    log.csv, tb/, backup/ while it runs, and run.json (what the run is, whether it finished) with
    final.weights.h5. Re-running the same call after an interruption resumes at the next epoch;
    after it finished, it loads the final weights and trains nothing; with other classes, data
    or settings, it sets the old run aside (run_dir.replaced-N) and starts anew. TensorBoard
    logs are written when the tensorboard package is installed (`tensorboard=None`). The
    History gets `training_seconds`. Batches of the datasets are per replica: under N replicas
    each step trains on N of them (`ReplicaScaling`).
    Under a MultiWorkerMirroredStrategy (`strategy`, default the model's) it runs
    `helpers.training.distributed.fit_distributed` instead (same files and logs; callbacks get
    only the epoch and train hooks).
    """
    if model.optimizer is None or not model.compiled:
        raise ValueError("compile the model first (e.g. with compile_classifier)")
    strategy = strategy or model.distribute_strategy
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3.15's fit fails there (keras-team/keras#20585).
        return fit_history(
            model,
            train_ds,
            val_ds,
            run_dir=run_dir,
            epochs=epochs,
            strategy=strategy,
            class_weight=class_weight,
            patience=patience,
            monitor=monitor,
            callbacks=callbacks,
            tensorboard=tensorboard is not False,
            verbose=verbose,
        )
    run_dir = worker_dir(Path(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    backup_dir, log_path = run_dir / "backup", run_dir / "log.csv"
    if val_ds is None and monitor.startswith("val_"):
        monitor = monitor.removeprefix("val_")
    settings = {"epochs": epochs, "patience": patience, "monitor": monitor,
                "class_weight": class_weight}  # fmt: skip
    callbacks = list(callbacks)
    fingerprint = run_fingerprint(model, train_ds, val_ds, settings)
    resumable = backup_dir.is_dir() and any(backup_dir.iterdir())
    state = begin_run(run_dir, fingerprint, resumable, callbacks)
    if state == "finished":
        return finished_history(run_dir, model)
    resuming = state == "resume"
    # Without this a resumed run's first epoch would replace a better best.keras.
    best = best_logged(log_path, monitor) if resuming else None
    standard = [
        keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True),
        keras.callbacks.CSVLogger(str(log_path), append=resuming),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.keras"),
            monitor=monitor,
            save_best_only=True,
            initial_value_threshold=best,
        ),
        ResumableEarlyStopping(
            log_path if resuming else None,
            run_dir / "best.keras",
            monitor=monitor,
            patience=patience,
            restore_best_weights=True,
        ),
    ]
    if tensorboard is None:
        # TF 2.21 no longer installs tensorboard; its callback fails without it.
        tensorboard = importlib.util.find_spec("tensorboard") is not None
    if tensorboard:
        standard.append(
            keras.callbacks.TensorBoard(str(run_dir / "tb"), write_graph=False, profile_batch=0)
        )
    scaling = replica_scaling(strategy)
    if scaling.replicas > 1:
        print(scaling.describe(), flush=True)
        train_ds = scaling.global_batches(train_ds)
        val_ds = None if val_ds is None else scaling.global_batches(val_ds)
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        class_weight=class_weight,
        shuffle=False,  # datasets come shuffled (make_dataset); Keras can't shuffle them anyway
        # The caller's callbacks run last so they see each epoch already logged and backed up.
        callbacks=[*standard, *callbacks],
        verbose=verbose,
    )
    history.training_seconds = time.perf_counter() - start
    finish_run(run_dir, model, history.training_seconds)
    return history
