"""Test-time flips: averaged outputs, holdout metrics and the Predictor all mirror the photo."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.models.builders import averaged_outputs
from helpers.serving.model_dir import save_model_dir
from helpers.serving.predict import Predictor
from helpers.training.metadata import holdout_metrics
from helpers.training.optimizer import compile_classifier

SIZE, CLASSES = 6, 4


def linear_model(seed: int = 0) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A model whose logits are a fixed linear map of the pixels, so mirroring changes them."""
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    flat = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(CLASSES, name="head_logits")
    model = keras.Model(inputs, dense(flat))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 0.01, (SIZE * SIZE * 3, CLASSES)).astype("float32")
    bias = rng.normal(0, 0.1, CLASSES).astype("float32")
    dense.set_weights([kernel, bias])
    return model, kernel, bias


def numpy_logits(images: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1) @ kernel + bias


def mirrored(images: np.ndarray) -> np.ndarray:
    return images[:, :, ::-1, :]  # (n, height, width, channels): reverse the width


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture()
def images() -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (16, SIZE, SIZE, 3)).astype("float32")


def test_averaged_outputs_mean_the_photo_and_its_mirror(images):
    model, kernel, bias = linear_model()
    plain = numpy_logits(images, kernel, bias)
    both = (plain + numpy_logits(mirrored(images), kernel, bias)) / 2
    np.testing.assert_allclose(averaged_outputs(model, images), plain, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        averaged_outputs(model, images, flip=True), both, rtol=1e-4, atol=1e-4
    )
    assert not np.allclose(plain, both, atol=1e-3)  # the flip really changes the answer here


def test_mirror_symmetric_photos_are_unchanged_by_the_flip(images):
    model, _, _ = linear_model()
    symmetric = (images + mirrored(images)) / 2
    np.testing.assert_allclose(
        averaged_outputs(model, symmetric, flip=True), model(symmetric), rtol=1e-4, atol=1e-4
    )


def test_holdout_metrics_with_flips_score_the_averaged_logits(images):
    model, kernel, bias = linear_model()
    compile_classifier(model, 1e-3)
    both = (numpy_logits(images, kernel, bias) + numpy_logits(mirrored(images), kernel, bias)) / 2
    labels = both.argmax(1).astype("int32")  # right for the flipped average by construction
    plain_right = (numpy_logits(images, kernel, bias).argmax(1) == labels).mean()
    assert plain_right < 1.0, "pick a seed where the flip changes some answers"
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(5)
    plain = holdout_metrics(model, ds)
    flipped = holdout_metrics(model, ds, test_time_flip=True)
    assert plain["holdout_accuracy"] == pytest.approx(plain_right, abs=1e-6)
    assert flipped["holdout_accuracy"] == pytest.approx(1.0)
    expected_loss = -np.log(softmax(both)[np.arange(len(labels)), labels]).mean()
    assert flipped["holdout_loss"] == pytest.approx(expected_loss, rel=1e-4)
    assert set(flipped) == set(plain)


@pytest.mark.parametrize("flip", [False, True])
def test_predictor_applies_the_flip_its_metadata_asks_for(tmp_path, images, flip):
    model, kernel, bias = linear_model()
    classes = [{"name": f"breed {i}", "wnid": None} for i in range(CLASSES)]
    metadata = {"name": "linear", "classes": classes, "image_size": SIZE, "output": "logits",
                "temperature": 2.0, "test_time_flip": flip}  # fmt: skip
    directory = save_model_dir(tmp_path / "linear", model, metadata)
    assert json.loads((directory / "metadata.json").read_text())["test_time_flip"] is flip
    predictor = Predictor(directory)
    logits = numpy_logits(images, kernel, bias)
    if flip:
        logits = (logits + numpy_logits(mirrored(images), kernel, bias)) / 2
    np.testing.assert_allclose(predictor.probabilities(images), softmax(logits / 2.0), atol=1e-5)
