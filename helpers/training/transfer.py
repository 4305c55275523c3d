"""The two-stage transfer recipe: cached backbone features for the head, then fine-tuning
from a chosen layer with BatchNorm kept frozen."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from helpers.models.builders import BACKBONE
from helpers.training._layers import sublayers


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
    leaves = [layer for layer in sublayers(inner) if not getattr(layer, "layers", None)]
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
    # Every leaf is set, not only the frozen ones: a nested model's `trainable = True` does not
    # reach layers an earlier call froze, so a second call with an earlier layer would not take.
    for index, layer in enumerate(leaves):
        batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= start and not batch_norm


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
