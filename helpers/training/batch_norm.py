"""BatchNorm statistics: read, put back and recompute them for the current weights (precise BN)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from helpers.atomic import write_atomic
from helpers.training._layers import sublayers

BatchNormStatistics = list[tuple[np.ndarray, np.ndarray]]


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Return the model's trainable BatchNormalization layers at any depth, in order."""
    return [
        layer
        for layer in sublayers(model)
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
    Under `fit` they are also kept in the run's folder, so a resumed run trains on from Keras's
    averages (not the recomputed ones its backup holds) and a finished one still has them.
    """

    STATE_FILE = "keras_bn_statistics.npz"

    def __init__(self, dataset: tf.data.Dataset, batches: int):
        super().__init__()
        self.dataset, self.batches = dataset, batches
        self.keras_statistics: list[BatchNormStatistics] = []
        self.state_path: Path | None = None
        self._epoch = 0

    def use_run_dir(self, run_dir: Path) -> None:
        """Keep the statistics in `run_dir` (fit calls this); read those already there."""
        self.state_path = Path(run_dir) / self.STATE_FILE
        if self.state_path.is_file():
            with np.load(self.state_path) as saved:
                epochs, layers = (int(n) for n in saved["shape"])
                self.keras_statistics = [
                    [(saved[f"mean_{e}_{i}"], saved[f"variance_{e}_{i}"]) for i in range(layers)]
                    for e in range(epochs)
                ]

    def on_test_begin(self, logs=None):
        # Index = epoch, also after a resume that repeats an epoch.
        del self.keras_statistics[self._epoch :]
        self.keras_statistics.append(batch_norm_statistics(self.model))
        self._save()
        recompute_batch_norm_statistics(self.model, self.dataset, self.batches)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if 0 < epoch <= len(self.keras_statistics):
            set_batch_norm_statistics(self.model, self.keras_statistics[epoch - 1])

    def _save(self) -> None:
        if self.state_path is None:
            return
        arrays: dict[str, Any] = {
            "shape": np.array([len(self.keras_statistics), len(self.keras_statistics[0])])
        }
        for e, statistics in enumerate(self.keras_statistics):
            for i, (mean, variance) in enumerate(statistics):
                arrays[f"mean_{e}_{i}"], arrays[f"variance_{e}_{i}"] = mean, variance
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(self.state_path, buffer.getvalue())
