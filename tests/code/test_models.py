"""Tests for helpers.models: the three builders' contracts (inputs, preprocessing, head, names)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from helpers.models import builders as models


def tiny_backbone(size: int = 32, pooled: bool = False) -> keras.Model:
    """A stand-in for a registry backbone: [0, 255] in, preprocessing and BN inside."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, name="bb_conv")(x)
    x = keras.layers.BatchNormalization(name="bb_bn")(x)
    x = keras.layers.Activation("relu")(x)
    if pooled:
        x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="tiny_features")


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_simple_cnn_takes_0_255_pixels_and_outputs_float32_logits_under_mixed_precision() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.simple_cnn(num_classes=5, image_size=32)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.input_shape == (None, 32, 32, 3)
    out = model.predict(_images(2, 32), verbose=0)
    assert out.shape == (2, 5) and out.dtype == np.float32
    assert not np.allclose(out[0], out[1])
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("MaxPooling2D") == 2
    rescale = model.get_layer("rescale")
    assert np.allclose(np.asarray(rescale(np.array([0.0, 255.0]))), [0.0, 1.0])


@pytest.mark.slow
def test_xception_scratch_has_random_backbone_and_minus1_1_preprocessing() -> None:
    model = models.xception_scratch(num_classes=3, image_size=71)
    backbone = model.get_layer(models.BACKBONE)
    assert isinstance(backbone, keras.Model) and len(backbone.layers) > 100
    pre = model.get_layer("xception_preprocess")
    assert np.allclose(np.asarray(pre(np.array([0.0, 127.5, 255.0]))), [-1.0, 0.0, 1.0])
    out = model(_images(1, 71), training=False)
    assert tuple(out.shape) == (1, 3)
    assert model.get_layer("head_logits").dtype_policy.compute_dtype == "float32"


@pytest.mark.parametrize("pooled", [False, True])
def test_transfer_classifier_freezes_backbone_and_names_head(pooled: bool, tmp_path: Path) -> None:
    model = models.transfer_classifier(tiny_backbone(32, pooled), num_classes=4, dropout=0.1)
    backbone, head = model.get_layer(models.BACKBONE), model.get_layer("head")
    assert not backbone.trainable_weights
    trainable = {id(v) for v in model.trainable_weights}
    assert trainable == {id(v) for v in head.get_layer(models.LOGITS).trainable_weights}
    assert all(layer.name.startswith("head_") for layer in head.layers[1:])

    images = _images(3, 32)
    out = model.predict(images, verbose=0)
    assert out.shape == (3, 4)
    path = tmp_path / "m.keras"
    model.save(path)
    np.testing.assert_allclose(
        keras.saving.load_model(path).predict(images, verbose=0), out, rtol=1e-5, atol=1e-5
    )


def test_head_only_model_trained_on_pooled_features_transfers_into_full_model() -> None:
    backbone = tiny_backbone(32)
    model = models.transfer_classifier(backbone, num_classes=3)
    images = _images(4, 32)
    features = np.asarray(backbone(images, training=False)).mean(axis=(1, 2))
    head = models.head_only_model(features.shape[1:], num_classes=3)
    head.get_layer(models.LOGITS).set_weights(
        [np.random.default_rng(1).normal(size=w.shape) for w in head.get_weights()]
    )
    assert not np.allclose(model.predict(images, verbose=0), head.predict(features, verbose=0))
    models.copy_head_weights(head, model)
    np.testing.assert_allclose(
        model.predict(images, verbose=0), head.predict(features, verbose=0), rtol=1e-4, atol=1e-4
    )
