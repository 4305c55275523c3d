"""The three doggo models as uncompiled Keras functional models taking RGB pixels in [0, 255].

Every model's preprocessing is a layer inside it (docs/formats.md) and its last layer outputs
float32 logits, also under a mixed_float16 policy, so losses and softmax stay numerically safe.
"""

from __future__ import annotations

import keras

BACKBONE = "backbone"  # the nested feature-extractor layer's name in transfer models
LOGITS = "head_logits"


def _inputs(image_size: int) -> keras.KerasTensor:
    return keras.Input((image_size, image_size, 3), dtype="float32", name="image")


def _logits(x: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
    # float32 whatever the global policy: mixed-precision logits overflow and lose precision.
    return keras.layers.Dense(num_classes, dtype="float32", name=LOGITS)(x)


def simple_cnn(num_classes: int, image_size: int, dropout: float = 0.5) -> keras.Model:
    """The original's small CNN: two conv + max-pool blocks, then a dense layer and the logits."""
    inputs = _inputs(image_size)
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, _logits(x, num_classes), name="simple_cnn")


def xception_scratch(num_classes: int, image_size: int = 299, dropout: float = 0.3) -> keras.Model:
    """Xception with random weights trained from scratch (image_size >= 71)."""
    inputs = _inputs(image_size)
    # Xception's own preprocessing (keras.applications.xception.preprocess_input): to [-1, 1].
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="xception_preprocess")(inputs)
    backbone = keras.applications.Xception(
        weights=None, include_top=False, input_shape=(image_size, image_size, 3), pooling=None
    )
    backbone.name = BACKBONE
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, _logits(x, num_classes), name="xception_scratch")


def transfer_classifier(
    backbone_model: keras.Model, num_classes: int, dropout: float = 0.2
) -> keras.Model:
    """A new classification head on a headless feature extractor, the backbone frozen.

    The backbone must take [0, 255] pixels (its preprocessing inside) and output a feature map
    or a pooled vector; it becomes the nested layer named "backbone" and head layers are named
    "head_*". Unfreeze it later with `helpers.training.set_backbone_trainable`.
    """
    shape = backbone_model.input_shape
    if len(shape) != 4 or shape[1] != shape[2] or shape[1] is None:
        raise ValueError(f"backbone must take square (size, size, 3) images, not {shape}")
    backbone_model.name = BACKBONE
    backbone_model.trainable = False  # stage 1 trains the head only; BN runs in inference mode
    inputs = _inputs(shape[1])
    features = backbone_model(inputs)
    head = head_only_model(features.shape[1:], num_classes, dropout)
    return keras.Model(inputs, head(features), name=f"transfer_{num_classes}")


def head_only_model(
    feature_shape: tuple[int | None, ...], num_classes: int, dropout: float = 0.2
) -> keras.Model:
    """The classification head alone, for training on cached backbone features.

    A feature map is average-pooled first; the layers are the ones `transfer_classifier` nests
    as "head", so weights trained here can be copied over with `copy_head_weights`.
    """
    inputs = keras.Input(tuple(feature_shape), name="features")
    x = inputs
    if len(feature_shape) == 3:
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    elif len(feature_shape) != 1:
        raise ValueError(f"features must be a (h, w, c) map or a vector, not {feature_shape}")
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, _logits(x, num_classes), name="head")


def averaged_outputs(model: keras.Model, images, flip: bool = False):
    """Return the model's outputs, averaged with those for the mirrored images when `flip`
    (test-time augmentation: a dog facing left is the same breed facing right)."""
    outputs = model(images, training=False)
    if flip:
        outputs = (outputs + model(keras.ops.flip(images, axis=2), training=False)) / 2
    return outputs


def copy_head_weights(head: keras.Model, model: keras.Model) -> None:
    """Copy a trained `head_only_model`'s logits layer into a `transfer_classifier` model."""
    target = model.get_layer("head").get_layer(LOGITS)
    target.set_weights(head.get_layer(LOGITS).get_weights())


def set_head_columns(head: keras.Model, kernel, bias, mask) -> int:
    """Overwrite the logits layer's columns where `mask` is true (e.g. with ImageNet's rows for
    the same breeds); return how many columns were set."""
    layer = head.get_layer(LOGITS)
    current_kernel, current_bias = layer.get_weights()
    current_kernel[:, mask] = kernel[:, mask]
    current_bias[mask] = bias[mask]
    layer.set_weights([current_kernel, current_bias])
    return int(mask.sum())
