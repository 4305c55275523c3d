"""What goes next to a trained model: its model card (metadata.json) and held-out metrics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from helpers import hashing
from helpers.formats import SPLIT_CSV
from helpers.model_card import ModelCard
from helpers.models.builders import averaged_outputs
from helpers.training.optimizer import compile_classifier


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a local or tf.io.gfile file (gs:// and the like), read in chunks."""
    with tf.io.gfile.GFile(str(path), "rb") as f:
        return hashing.file_sha256(f)


def model_card(
    *,
    name: str,
    classes: Sequence[dict],
    image_size: int,
    split_dir: str | os.PathLike,
    params: dict,
    metrics: dict,
    training_seconds: float,
    **fields: Any,
) -> ModelCard:
    """Return the card of a model trained here; the data hash is split.csv's sha256, and
    `fields` are the card's other fields (backbone, weights, provenance, test_time_flip, ...)."""
    return ModelCard(
        name=name,
        classes=[{"name": c["name"], "wnid": c.get("wnid") or None} for c in classes],
        image_size=int(image_size),
        params=_plain(params),
        data_manifest_sha256=file_sha256(f"{str(split_dir).rstrip('/')}/{SPLIT_CSV}"),
        metrics=_plain(metrics),
        training_seconds=float(training_seconds),
        **fields,
    )


def _plain(values: dict) -> dict:
    """Return `values` with NumPy scalars (what Keras and sklearn return) as Python numbers, which
    JSON can hold."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}


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
