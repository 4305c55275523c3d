"""A custom training loop for any tf.distribute strategy, MultiWorkerMirroredStrategy included,
under which Keras 3.15's `fit` fails (keras-team/keras#20585). `helpers.training.fit` uses it there.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from helpers.training._runs import (
    begin_run,
    best_and_wait,
    finish_run,
    finished_history,
    improves,
    logged_values,
    run_fingerprint,
    worker_dir,
)
from helpers.training.hardware import agree_across_workers, replica_scaling
from helpers.training.optimizer import LayerwiseAdam

__all__ = ["fit_distributed", "fit_history"]

SUM = tf.distribute.ReduceOp.SUM


def fit_distributed(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    **kwargs,
) -> dict[str, list[float]]:
    """Train with a GradientTape loop over `strategy` (default: the model's); `fit`'s artifacts.

    The chief writes log.csv, best.keras (best `monitor`: highest for accuracies, lowest for
    losses), backup/ and, with `tensorboard`, tb/ to run_dir (other workers to
    run_dir/workers/<task>), with run.json and final.weights.h5 as `fit`'s: re-running after a
    kill resumes at the next epoch, after the end trains nothing. Before anything is trained all
    workers compare what they are about to run (`agree_across_workers`) and fail alike if it
    differs. Logs hold loss, accuracy and top5, as `compile_classifier`'s. Batches of
    `train_ds` are per replica (`ReplicaScaling`). The optimizer is `optimizer`, else the
    compiled one, else a `LayerwiseAdam(learning_rate)` (scaled to the global batch).
    Callbacks get only the epoch and train hooks.
    """
    return _fit_distributed(model, train_ds, val_ds, **kwargs).history


def _fit_distributed(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    *,
    run_dir: str | os.PathLike,
    epochs: int,
    strategy: tf.distribute.Strategy | None = None,
    learning_rate: float | None = None,
    optimizer: keras.optimizers.Optimizer | None = None,
    class_weight: dict[int, float] | None = None,
    patience: int = 5,
    monitor: str = "val_loss",
    callbacks: Iterable[keras.callbacks.Callback] = (),
    tensorboard: bool = True,
    verbose: int | str = 0,
) -> keras.callbacks.History:
    start = time.perf_counter()
    strategy = strategy or model.distribute_strategy
    optimizer = _build_optimizer(
        model, strategy, optimizer or getattr(model, "optimizer", None), learning_rate
    )
    run_dir = worker_dir(Path(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path, backup_dir = run_dir / "log.csv", run_dir / "backup"
    if val_ds is None:
        monitor = monitor.removeprefix("val_")

    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, str(backup_dir), max_to_keep=1)
    settings = {"epochs": epochs, "patience": patience, "monitor": monitor,
                "class_weight": class_weight}  # fmt: skip
    callbacks = list(callbacks)
    fingerprint = run_fingerprint(model, train_ds, val_ds, settings, optimizer)
    state = begin_run(
        run_dir,
        fingerprint,
        manager.latest_checkpoint is not None,
        callbacks,
        agree=lambda fingerprint, state: agree_across_workers(strategy, fingerprint, state),
    )
    if state == "finished":
        return finished_history(run_dir, model)
    resuming = state == "resume"
    if resuming:
        checkpoint.restore(manager.latest_checkpoint)
    if not resuming and log_path.exists():
        log_path.unlink()  # a new run starts a new log, as CSVLogger(append=False) does
    # A resumed run carries on from the log: its best value (else its first epoch would replace
    # a better best.keras) and the epochs since then, which count toward the patience.
    logged = logged_values(log_path, monitor) if resuming else []
    best, wait = best_and_wait(logged, monitor)
    best_weights = None
    if logged and (run_dir / "best.keras").is_file():
        best_weights = keras.saving.load_model(run_dir / "best.keras", compile=False).get_weights()

    train_step, eval_step = _step_functions(model, optimizer, strategy, class_weight)
    # tf.summary writes TensorBoard's event files itself: no tensorboard package needed.
    writers = {
        split: tf.summary.create_file_writer(str(run_dir / "tb" / split))
        for split in (("train", "validation") if tensorboard else ())
    }
    scaling = replica_scaling(strategy)
    if scaling.replicas > 1 and verbose:
        print(scaling.describe(), flush=True)
    train_dist = strategy.experimental_distribute_dataset(
        _shardable(scaling.global_batches(train_ds))
    )
    val_dist = (
        None
        if val_ds is None
        else strategy.experimental_distribute_dataset(_shardable(scaling.global_batches(val_ds)))
    )
    hooks = keras.callbacks.CallbackList(list(callbacks), model=model)
    history: dict[str, list[float]] = {}
    model.stop_training = False
    hooks.on_train_begin()
    first_epoch = int(epoch_var.numpy())
    for epoch in range(first_epoch, epochs):
        hooks.on_epoch_begin(epoch)
        logs = _epoch_logs(train_step, train_dist)
        if val_dist is not None:
            val_logs = _epoch_logs(eval_step, val_dist)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        _append_log(log_path, epoch, logs)
        _write_summaries(writers, epoch, logs)
        if improves(logs[monitor], best, monitor):
            best, best_weights, wait = logs[monitor], model.get_weights(), 0
            model.save(run_dir / "best.keras")
        else:
            wait += 1
        # Saved after the log and best.keras: a kill in between repeats an epoch, loses none.
        epoch_var.assign(epoch + 1)
        manager.save()
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}", *(f"{k}={v:.4f}" for k, v in logs.items()))
        hooks.on_epoch_end(epoch, logs)
        if wait >= patience and best_weights is not None:
            model.set_weights(best_weights)  # as EarlyStopping(restore_best_weights=True)
        if wait >= patience or model.stop_training:
            break
    hooks.on_train_end(logs=None)
    result = keras.callbacks.History()
    result.set_model(model)
    result.history = history
    result.epoch = list(range(first_epoch, int(epoch_var.numpy())))
    result.training_seconds = time.perf_counter() - start
    finish_run(run_dir, model, result.training_seconds)
    shutil.rmtree(backup_dir, ignore_errors=True)  # a finished run leaves nothing to resume
    return result


def fit_history(model: keras.Model, *args, **kwargs) -> keras.callbacks.History:
    """`fit_distributed` returning a Keras History with `training_seconds`, like `train.fit`."""
    return _fit_distributed(model, *args, **kwargs)


def _build_optimizer(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    optimizer: keras.optimizers.Optimizer | None,
    learning_rate: float | None,
) -> keras.optimizers.Optimizer:
    with strategy.scope():
        if optimizer is None:
            if learning_rate is None:
                raise ValueError("pass learning_rate or optimizer, or compile the model")
            optimizer = LayerwiseAdam(replica_scaling(strategy).learning_rate(learning_rate))
        # Slots made under the scope are mirrored like the weights; built before a restore so
        # the checkpoint fills them in (no-op when already built).
        optimizer.build(model.trainable_variables)
    return optimizer


def _shardable(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by data, not files: make_dataset's pipelines start from a tensor of file names, so
    FILE sharding finds no reader op. Every worker then reads and decodes all files but keeps
    its share of each global batch (one dataset batch per replica); this needs the same element
    order on every worker (seeded shuffles, as make_dataset's) and costs decoding time, not
    correctness."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _step_functions(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    strategy: tf.distribute.Strategy,
    class_weight: dict[int, float] | None,
) -> tuple[Callable, Callable]:
    """The train and eval steps; each returns the global sums of (weighted loss, correct, in
    top 5, examples), so the epoch metrics are sums divided by global counts."""
    weights = None
    if class_weight:
        table = np.ones(max(class_weight) + 1, "float32")
        table[list(class_weight)] = list(class_weight.values())
        weights = tf.constant(table)

    def sums(y: tf.Tensor, logits: tf.Tensor, w: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=y.dtype), y), tf.float32)
        k = min(5, logits.shape[-1])  # as compile_classifier's top5 metric
        in_top5 = tf.cast(tf.math.in_top_k(targets=y, predictions=logits, k=k), tf.float32)
        # As Keras: class weights weight the loss, not the (unweighted) compiled metrics.
        count = tf.cast(tf.size(y), tf.float32)
        return per_example, tf.stack(
            [tf.reduce_sum(w * per_example), tf.reduce_sum(correct), tf.reduce_sum(in_top5), count]
        )

    def train_replica(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        w = tf.ones_like(y, tf.float32) if weights is None else tf.gather(weights, y)
        # Partial last batches split unevenly across replicas: count the real global batch.
        context = tf.distribute.get_replica_context()
        global_batch = tf.cast(context.all_reduce(SUM, tf.cast(tf.size(y), tf.float32)), tf.int64)
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x, training=True), tf.float32)
            per_example, totals = sums(y, logits, w)
            # Keras' class_weight semantics: sum(w * loss) / examples, not / sum(w).
            loss = tf.nn.compute_average_loss(
                per_example, sample_weight=w, global_batch_size=global_batch
            )
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss)  # mixed precision's loss scaling, else as is
        grads = tape.gradient(scaled, model.trainable_variables)
        # Keras' optimizer sums the gradients across replicas (and unscales them) itself.
        optimizer.apply(grads, model.trainable_variables)
        return totals

    def eval_replica(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        logits = tf.cast(model(x, training=False), tf.float32)
        return sums(y, logits, tf.ones_like(y, tf.float32))[1]

    def distributed(replica_fn: Callable) -> Callable:
        @tf.function(reduce_retracing=True)
        def step(batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
            return strategy.reduce(SUM, strategy.run(replica_fn, args=batch), axis=None)

        return step

    return distributed(train_replica), distributed(eval_replica)


def _epoch_logs(step: Callable, dataset: Iterable) -> dict[str, float]:
    """Run `step` over a distributed dataset and turn its summed totals into Keras' logs."""
    totals = tf.zeros(4)
    for batch in dataset:
        totals += step(batch)  # stays on device: no host sync per step
    loss, correct, top5, count = (float(t) for t in totals.numpy())
    return {"accuracy": correct / count, "loss": loss / count, "top5": top5 / count}


def _write_summaries(writers: dict, epoch: int, logs: dict[str, float]) -> None:
    """Epoch scalars under the names and folders Keras' TensorBoard callback uses."""
    for split, writer in writers.items():
        prefix = "val_" if split == "validation" else ""
        values = {k.removeprefix(prefix): v for k, v in logs.items()
                  if k.startswith(prefix) and (prefix or not k.startswith("val_"))}  # fmt: skip
        with writer.as_default(step=epoch):
            for name, value in values.items():
                tf.summary.scalar(f"epoch_{name}", value)
        writer.flush()


def _append_log(path: Path, epoch: int, logs: dict[str, float]) -> None:
    """One CSVLogger-style row: epoch, then the metrics in sorted order."""
    keys = sorted(logs)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["epoch", *keys])
        writer.writerow([epoch, *(logs[k] for k in keys)])
