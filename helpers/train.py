"""Training shared by the notebooks: hardware setup, layer-wise learning rates, fit with resume,
the two-stage transfer recipe and the metadata that goes next to a saved model."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import importlib.util
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from helpers import hashing
from helpers.models import BACKBONE, averaged_outputs, head_only_model

__all__ = [
    "Hardware",
    "LayerwiseAdam",
    "PreciseBatchNorm",
    "backbone_features",
    "backbone_lr_multipliers",
    "batch_norm_layers",
    "batch_norm_statistics",
    "compile_classifier",
    "fit",
    "features_dataset",
    "head_only_model",
    "holdout_metrics",
    "recompute_batch_norm_statistics",
    "seed_everything",
    "set_backbone_trainable",
    "set_batch_norm_statistics",
    "setup_hardware",
    "strategy_for_hardware",
    "training_metadata",
]


# ---------------------------------------------------------------- reproducibility and hardware


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow, and make TF ops deterministic (slower on GPU)."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def _tf_config() -> dict:
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def _cluster_size(tf_config: dict) -> int:
    cluster = tf_config.get("cluster", {})
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def strategy_for_hardware() -> tf.distribute.Strategy:
    """MultiWorkerMirrored when TF_CONFIG names several workers, Mirrored over the local GPUs
    when there are several (or over several logical CPUs when there is no GPU), else the
    default strategy. Call it first: a multi-worker strategy must exist before any TF op.
    """
    # Checked before listing devices, which would initialize TF too early for collectives.
    if _cluster_size(_tf_config()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    devices = gpus if gpus else cpus
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What `setup_hardware` chose; pass `jit_compile` to `compile_classifier`."""

    strategy: tf.distribute.Strategy
    gpus: int
    mixed_precision: bool
    jit_compile: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def setup_hardware(
    mixed_precision: bool | None = None, jit_compile: bool | None = None
) -> Hardware:
    """Pick the distribution strategy and, on GPUs only, mixed_float16 and XLA.

    Both default to on when every GPU supports them (mixed precision needs compute capability
    7.0+) and are always off on CPU, where XLA made EfficientNet-Lite 8-12x slower here.
    """
    strategy = strategy_for_hardware()
    gpus = tf.config.list_physical_devices("GPU")
    fast_fp16 = bool(gpus) and all(_compute_capability(g) >= (7, 0) for g in gpus)
    use_mp = fast_fp16 if mixed_precision is None else bool(mixed_precision and gpus)
    use_jit = bool(gpus) if jit_compile is None else bool(jit_compile and gpus)
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mp else "float32")
    return Hardware(strategy, len(gpus), use_mp, use_jit)


def _compute_capability(gpu: tf.config.PhysicalDevice) -> tuple[int, int]:
    details = tf.config.experimental.get_device_details(gpu)
    return tuple(details.get("compute_capability") or (0, 0))


# ------------------------------------------------------------------ layer-wise learning rates


@keras.saving.register_keras_serializable(package="doggo")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied per variable, matched by `variable.path` prefix.

    Adam's update is invariant to the gradient's scale, so scaling gradients cannot slow the
    pretrained layers down; scaling their learning rate does. `lr_multipliers` maps a path or
    path prefix (whole "/" components, longest match wins) to a factor; others get 1.0.
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        lr_multipliers: dict[str, float] | None = None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}

    def multiplier_for(self, path: str) -> float:
        """The learning-rate factor for a variable path."""
        best, factor = -1, 1.0
        for prefix, value in self.lr_multipliers.items():
            if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) and len(prefix) > best:
                best, factor = len(prefix), value
        return factor

    def build(self, var_list: Sequence[keras.Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        # Indexed like the optimizer's slots: update_step gets the backend variable (a
        # tf.Variable, per replica under tf.distribute), whose path is not available there.
        self._variable_factors = tuple(self.multiplier_for(v.path) for v in var_list)

    def update_step(self, gradient, variable, learning_rate) -> None:
        factor = self._variable_factors[self._get_variable_index(variable)]
        if factor != 1.0:
            learning_rate = keras.ops.cast(learning_rate, variable.dtype) * factor
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        config = super().get_config()
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config


def backbone_lr_multipliers(
    model: keras.Model, multiplier: float = 0.1, backbone: str = BACKBONE
) -> dict[str, float]:
    """`LayerwiseAdam` multipliers giving every variable of the nested backbone `multiplier`."""
    return {v.path: float(multiplier) for v in model.get_layer(backbone).weights}


def compile_classifier(
    model: keras.Model,
    learning_rate: float,
    *,
    backbone_lr_multiplier: float | None = None,
    jit_compile: bool = False,
) -> keras.Model:
    """Compile for integer labels and logits with (layer-wise) Adam, accuracy and top-5.

    With `backbone_lr_multiplier` (0.1 in the original) the nested "backbone" learns that much
    slower than the head. Compile inside `strategy.scope()` when using a strategy.
    """
    multipliers = (
        backbone_lr_multipliers(model, backbone_lr_multiplier)
        if backbone_lr_multiplier is not None
        else None
    )
    num_classes = model.output_shape[-1]
    model.compile(
        optimizer=LayerwiseAdam(learning_rate, lr_multipliers=multipliers),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5"),
        ],
        jit_compile=jit_compile,
    )
    return model


# ------------------------------------------------------------------------------ training loop


def _worker_dir(run_dir: Path) -> Path:
    """The chief writes to run_dir; other workers of a multi-worker run to their own subfolder
    so they never overwrite the chief's checkpoints and logs."""
    task = _tf_config().get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and not _has_chief())
    return run_dir if chief else run_dir / "workers" / f"{kind}_{index}"


def _has_chief() -> bool:
    return bool(_tf_config().get("cluster", {}).get("chief"))


def _logged(log_path: Path, monitor: str) -> list[float]:
    """The values of `monitor` in an existing CSV log, one per logged epoch."""
    if not log_path.exists():
        return []
    with log_path.open(newline="") as f:
        return [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor)]


def _higher_is_better(monitor: str) -> bool:
    """Keras's "auto" mode for doggo's metrics: accuracy and top-5 up, losses down."""
    return "acc" in monitor or "top" in monitor


def _improves(value: float, best: float | None, monitor: str) -> bool:
    """Whether `value` of `monitor` beats the best so far (None: nothing yet)."""
    if best is None:
        return True
    return value > best if _higher_is_better(monitor) else value < best


def _best_and_wait(values: Sequence[float], monitor: str) -> tuple[float | None, int]:
    """The best of logged `monitor` values and the epochs logged since it (for patience)."""
    if not values:
        return None, 0
    pick = np.argmax if _higher_is_better(monitor) else np.argmin
    index = int(pick(values))
    return float(values[index]), len(values) - 1 - index


def _best_logged(log_path: Path, monitor: str) -> float | None:
    """The best value of `monitor` in an existing CSV log, to resume checkpointing."""
    return _best_and_wait(_logged(log_path, monitor), monitor)[0]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping that carries on across a resume: patience counts the epochs logged since
    the best one, and the best weights are the run's best checkpoint's."""

    def __init__(self, log_path: Path | None, checkpoint: Path, **kwargs):
        super().__init__(**kwargs)
        self.log_path, self.checkpoint = log_path, checkpoint

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        values = _logged(self.log_path, self.monitor) if self.log_path else []
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
    log.csv, tb/ and backup/; re-running the same call after an interruption resumes at the next
    epoch. TensorBoard logs are written when the tensorboard package is installed
    (`tensorboard=None`). The History gets `training_seconds`.
    Under a MultiWorkerMirroredStrategy (`strategy`, default the model's) it runs
    `helpers.distributed.fit_distributed` instead (same files and logs; callbacks get only the
    epoch and train hooks).
    """
    if model.optimizer is None or not model.compiled:
        raise ValueError("compile the model first (e.g. with compile_classifier)")
    strategy = strategy or model.distribute_strategy
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3.15's fit fails there (keras-team/keras#20585). Imported here: it imports us.
        from helpers.distributed import fit_history

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
    run_dir = _worker_dir(Path(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    backup_dir, log_path = run_dir / "backup", run_dir / "log.csv"
    resuming = backup_dir.is_dir() and any(backup_dir.iterdir())
    if val_ds is None and monitor.startswith("val_"):
        monitor = monitor.removeprefix("val_")
    # Without this a resumed run's first epoch would replace a better best.keras.
    best = _best_logged(log_path, monitor) if resuming else None
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
    return history


# -------------------------------------------------------------------- two-stage transfer recipe


def backbone_features(
    backbone: keras.Model, dataset: tf.data.Dataset
) -> tuple[np.ndarray, np.ndarray]:
    """Run a frozen backbone once over (images, labels) batches; return pooled features, labels.

    Feature maps are averaged over space, as the head's pooling layer would. Use an
    un-augmented, un-shuffled dataset: cached features cannot be augmented.
    """
    # Compiled once: about twice as fast as eager calls (benchmarks/training_speed.py).
    call = tf.function(lambda images: backbone(images, training=False))
    features, labels = [], []
    for images, batch_labels in dataset:
        out = keras.ops.convert_to_numpy(call(images))
        if out.ndim == 4:
            out = out.mean(axis=(1, 2))
        features.append(out.astype(np.float32))
        labels.append(np.asarray(batch_labels))
    return np.concatenate(features), np.concatenate(labels).astype(np.int32)


def _sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    children = getattr(layer, "layers", None) or []
    return [layer] + [sub for child in children for sub in _sublayers(child)]


def set_backbone_trainable(
    model: keras.Model,
    trainable: bool,
    from_layer: str | int | None = None,
    backbone: str = BACKBONE,
) -> None:
    """Freeze or unfreeze the nested backbone; recompile the model afterwards.

    When unfreezing, layers before `from_layer` stay frozen: a layer name found at any depth
    (e.g. "block13_expand_conv" inside a nested EfficientNet), or an index into the backbone's
    layers flattened in order. Every BatchNormalization layer stays frozen: in Keras 3 a
    non-trainable BN layer runs in inference mode, so fine-tuning keeps the pretrained statistics.
    """
    inner = model.get_layer(backbone)
    inner.trainable = trainable
    if not trainable:
        return
    # Leaf layers in order: nested models (preprocessing wrapper, keras.applications body) are
    # opened up so a name deep inside can be the start of fine-tuning.
    leaves = [layer for layer in _sublayers(inner) if not getattr(layer, "layers", None)]
    start = 0
    if isinstance(from_layer, str):
        names = [layer.name for layer in leaves]
        if from_layer not in names:
            raise ValueError(f"no layer {from_layer!r} in the backbone; last ones: {names[-8:]}")
        if names.count(from_layer) > 1:
            # Combined backbones ("a+b") nest several networks whose layer names repeat.
            count = names.count(from_layer)
            raise ValueError(
                f"{from_layer!r} names {count} layers in the backbone; give an index into its "
                "flattened layers instead"
            )
        start = names.index(from_layer)
    elif isinstance(from_layer, int):
        start = from_layer
    for layer in leaves[:start]:
        layer.trainable = False
    for layer in leaves:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


# ------------------------------------------------------------- BatchNorm statistics (precise BN)

BatchNormStatistics = list[tuple[np.ndarray, np.ndarray]]


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Return the model's trainable BatchNormalization layers at any depth, in order."""
    return [
        layer
        for layer in _sublayers(model)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def batch_norm_statistics(model: keras.Model) -> BatchNormStatistics:
    """Return a copy of each trainable BatchNorm layer's (moving mean, moving variance)."""
    return [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in batch_norm_layers(model)]


def set_batch_norm_statistics(model: keras.Model, statistics: BatchNormStatistics) -> None:
    """Put back statistics taken by `batch_norm_statistics`."""
    for bn, (mean, variance) in zip(batch_norm_layers(model), statistics, strict=True):
        bn.moving_mean.assign(mean)
        bn.moving_variance.assign(variance)


def recompute_batch_norm_statistics(
    model: keras.Model, dataset: tf.data.Dataset, batches: int
) -> int:
    """Set every trainable BatchNorm layer's moving statistics to the mean of its batch
    statistics over `batches` batches of `dataset`, under the current weights; return the count.

    Keras's moving averages start at mean 0 and variance 1 and forget slowly (momentum 0.99),
    so early in training they describe neither the initial nor the current network.
    """
    layers = batch_norm_layers(model)
    momenta = [bn.momentum for bn in layers]
    try:
        for k, (images, *_) in enumerate(dataset.take(batches)):
            # With momentum k/(k+1), batch k's statistics get weight 1/(k+1): a running mean.
            for bn in layers:
                bn.momentum = k / (k + 1)
            model(images, training=True)
    finally:
        for bn, momentum in zip(layers, momenta, strict=True):
            bn.momentum = momentum
    return len(layers)


class PreciseBatchNorm(keras.callbacks.Callback):
    """Before each validation, recompute BatchNorm statistics for the current weights; put
    Keras's own moving averages back before the next epoch trains, so training is unchanged.

    `keras_statistics[epoch]` keeps Keras's moving averages at the end of each epoch, to
    compare with. Checkpoints taken at the end of an epoch hold the recomputed statistics.
    """

    def __init__(self, dataset: tf.data.Dataset, batches: int):
        super().__init__()
        self.dataset, self.batches = dataset, batches
        self.keras_statistics: list[BatchNormStatistics] = []

    def on_test_begin(self, logs=None):
        self.keras_statistics.append(batch_norm_statistics(self.model))
        recompute_batch_norm_statistics(self.model, self.dataset, self.batches)

    def on_epoch_begin(self, epoch, logs=None):
        if self.keras_statistics:
            set_batch_norm_statistics(self.model, self.keras_statistics[-1])


# ----------------------------------------------------------------------------------- metadata


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a local or tf.io.gfile file (gs:// and the like), read in chunks."""
    with tf.io.gfile.GFile(str(path), "rb") as f:
        return hashing.file_sha256(f)


def training_metadata(
    *,
    name: str,
    classes: Sequence[dict],
    image_size: int,
    split_dir: str | os.PathLike,
    backbone: str | None,
    weights: str | None,
    params: dict,
    metrics: dict,
    training_seconds: float,
    output: str = "logits",
    preprocessing: str = "RGB float32 in [0, 255], squashed with bilinear antialiased resize",
    version: str = "1",
    provenance: str = "",
    **extra,
) -> dict:
    """The metadata.json dict of docs/formats.md; the data hash is split.csv's sha256."""
    if output not in ("logits", "probabilities"):
        raise ValueError(f"output must be 'logits' or 'probabilities', not {output!r}")
    return {
        "name": name,
        "version": version,
        "created": datetime.date.today().isoformat(),
        "task": "dog-breed",
        "classes": [{"name": c["name"], "wnid": c.get("wnid") or None} for c in classes],
        "image_size": int(image_size),
        "output": output,
        "preprocessing": preprocessing,
        "backbone": backbone,
        "weights": weights,
        "params": params,
        "data_manifest_sha256": file_sha256(f"{str(split_dir).rstrip('/')}/split.csv"),
        # NumPy scalars (what Keras and sklearn return) are not JSON serializable.
        "metrics": {k: v.item() if isinstance(v, np.generic) else v for k, v in metrics.items()},
        "training_seconds": float(training_seconds),
        "provenance": provenance,
        **extra,
    }


def holdout_metrics(
    model: keras.Model, dataset: tf.data.Dataset, *, test_time_flip: bool = False
) -> dict[str, float]:
    """Return the classifier metrics of `model` on a held-out dataset, keys prefixed `holdout_`;
    with `test_time_flip`, of its logits averaged over each photo and its mirror image."""
    if test_time_flip:
        inputs = keras.Input(model.input_shape[1:], name="image")
        model = keras.Model(inputs, averaged_outputs(model, inputs, flip=True), name="flip_tta")
        compile_classifier(model, 1e-3)  # the learning rate is unused: this model is evaluated
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    return {f"holdout_{name}": round(float(value), 6) for name, value in results.items()}


def features_dataset(
    features: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of cached backbone features and labels, for training a head in seconds."""
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
