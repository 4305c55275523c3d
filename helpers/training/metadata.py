"""What goes next to a saved model: metadata.json (docs/formats.md) and held-out metrics."""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from helpers import hashing
from helpers.models.builders import averaged_outputs
from helpers.training.optimizer import compile_classifier


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
