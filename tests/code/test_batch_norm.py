"""Precise BatchNorm: statistics recomputed for the current weights, Keras's own kept aside."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from helpers.training import batch_norm


def _bn_model(channels: int = 3) -> keras.Model:
    inputs = keras.Input((4, 4, channels))
    x = keras.layers.BatchNormalization(name="bn")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _batches(
    n_batches: int = 3, batch: int = 5, seed: int = 0
) -> tuple[np.ndarray, tf.data.Dataset]:
    rng = np.random.default_rng(seed)
    # Each batch has its own offset and scale, so the batch statistics differ.
    x = np.concatenate(
        [rng.normal(3.0 * k, 1.0 + k, (batch, 4, 4, 3)) for k in range(n_batches)]
    ).astype("float32")
    y = np.zeros(len(x), "int32")
    return x, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def test_recomputed_statistics_are_the_mean_of_the_batch_statistics():
    x, ds = _batches()
    model = _bn_model()
    assert batch_norm.recompute_batch_norm_statistics(model, ds, batches=3) == 1
    per_batch = x.reshape(3, 5 * 4 * 4, 3)
    mean, variance = batch_norm.batch_norm_statistics(model)[0]
    np.testing.assert_allclose(mean, per_batch.mean(axis=1).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance, per_batch.var(axis=1).mean(axis=0), rtol=1e-4)
    assert model.get_layer("bn").momentum == 0.99  # put back


def test_only_the_first_batches_count_and_frozen_layers_are_left_alone():
    x, ds = _batches()
    model = _bn_model()
    batch_norm.recompute_batch_norm_statistics(model, ds, batches=1)
    first = x[:5].reshape(-1, 3)
    np.testing.assert_allclose(
        batch_norm.batch_norm_statistics(model)[0][0], first.mean(0), rtol=1e-5
    )
    frozen = _bn_model()
    frozen.get_layer("bn").trainable = False
    assert batch_norm.recompute_batch_norm_statistics(frozen, ds, batches=3) == 0
    np.testing.assert_array_equal(frozen.get_layer("bn").moving_variance.numpy(), np.ones(3))


def _fitted(callbacks: list) -> keras.Model:
    keras.utils.set_random_seed(1)
    x, ds = _batches(n_batches=4)
    model = _bn_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(ds, validation_data=ds, epochs=3, verbose=0, callbacks=callbacks)
    return model


def test_precise_batch_norm_validates_on_recomputed_statistics_and_leaves_training_as_it_was():
    _, ds = _batches(n_batches=4)
    precise = batch_norm.PreciseBatchNorm(ds, batches=4)
    with_callback = _fitted([precise])
    without = _fitted([])
    # Keras's moving averages ran exactly as without the callback...
    for (mean_a, var_a), (mean_b, var_b) in zip(
        precise.keras_statistics[-1], batch_norm.batch_norm_statistics(without), strict=True
    ):
        np.testing.assert_allclose(mean_a, mean_b, rtol=1e-6)
        np.testing.assert_allclose(var_a, var_b, rtol=1e-6)
    for a, b in zip(with_callback.trainable_weights, without.trainable_weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)  # the trained weights too
    assert len(precise.keras_statistics) == 3  # one per epoch
    # ...while the model ends with the recomputed statistics, far from Keras's lagging ones.
    expected = _bn_model()
    expected.set_weights(with_callback.get_weights())
    batch_norm.recompute_batch_norm_statistics(expected, ds, batches=4)
    np.testing.assert_allclose(
        batch_norm.batch_norm_statistics(with_callback)[0][0],
        batch_norm.batch_norm_statistics(expected)[0][0],
    )
    assert not np.allclose(
        precise.keras_statistics[-1][0][1], batch_norm.batch_norm_statistics(expected)[0][1]
    )
