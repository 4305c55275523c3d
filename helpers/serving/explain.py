"""Grad-CAM: which part of an image a Keras classifier looked at for one class.

Shared by the app (`POST /api/explain`) and the evaluation notebook. Works on models whose
backbone is a nested Keras Model layer: the feature map is captured where it is computed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # keras (and TensorFlow) load when a Grad-CAM is asked for, not on import
    import keras

# One Grad-CAM at a time: the capture temporarily wraps a layer's `call`, shared by all threads.
_LOCK = threading.Lock()
# Anchor colours of the "jet" colour map (blue, cyan, yellow, red), enough for an overlay and
# without importing matplotlib in the web server.
_JET = np.array([[0, 0, 0.5], [0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [0.5, 0, 0]])


def _is_model(layer: keras.layers.Layer) -> bool:
    import keras

    return isinstance(layer, keras.Model) and hasattr(layer, "layers")


def _output_rank(layer: keras.layers.Layer) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, TypeError):
        return None  # a layer never called symbolically has no known output


def _feature_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Yield every layer with a 4-D (batch, h, w, channels) output, nested models expanded."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if _is_model(layer):
            yield from _feature_layers(layer)
        elif _output_rank(layer) == 4:
            yield layer


def find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """Return the layer called `name`, searching nested models too; KeyError if there is none."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if _is_model(layer):
            with contextlib.suppress(KeyError):
                return find_layer(layer, name)
    raise KeyError(f"no layer named {name!r} in model {model.name!r}")


def last_conv_layer(model: keras.Model) -> keras.layers.Layer:
    """Return the last layer producing a spatial feature map (the usual Grad-CAM target)."""
    layers = list(_feature_layers(model))
    if not layers:
        raise ValueError(f"model {model.name!r} has no layer with a 4-D feature map")
    return layers[-1]


@contextlib.contextmanager
def _capture(layer: keras.layers.Layer, tape, store: list) -> Iterator[None]:
    """Wrap `layer.call` so that its output is watched by `tape` and kept in `store`."""
    original = layer.call
    own = layer.__dict__.get("call")  # an instance-level `call` to put back afterwards

    def call(*args, **kwargs):
        output = original(*args, **kwargs)
        tape.watch(output)
        store.append(output)
        return output

    layer.call = call
    try:
        yield
    finally:
        if own is None:
            del layer.call  # back to the class's method, which the instance attribute hid
        else:
            layer.call = own


def grad_cam(
    model: keras.Model, image_array: np.ndarray, class_index: int, layer_name: str | None = None
) -> np.ndarray:
    """Return the Grad-CAM heatmap (h, w) in [0, 1] of `class_index` for one model input.

    `image_array` is one (height, width, 3) model input, as
    `helpers.serving.predict.image_to_array` makes it; the heatmap has the resolution of the
    feature map (e.g. 9x9 for EfficientNet-Lite2).
    """
    import tensorflow as tf  # the model's backend; imported late to keep imports light

    layer = find_layer(model, layer_name) if layer_name else last_conv_layer(model)
    batch = tf.convert_to_tensor(np.asarray(image_array, np.float32)[None])
    captured: list = []
    with _LOCK, tf.GradientTape() as tape, _capture(layer, tape, captured):
        outputs = model(batch, training=False)
        outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        score = outputs[:, class_index]
    if not captured:
        raise ValueError(f"layer {layer.name!r} was not called by the model")
    features = captured[-1]
    grads = tape.gradient(score, features)
    # Grad-CAM: weight each channel by its mean gradient, keep only positive evidence.
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0].numpy()
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam).astype(np.float32)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """Map a heatmap in [0, 1] to RGB uint8 with a jet-like colour map (blue low, red high)."""
    values = np.clip(np.asarray(heatmap, np.float64), 0.0, 1.0) * (len(_JET) - 1)
    low = np.floor(values).astype(int).clip(0, len(_JET) - 2)
    frac = (values - low)[..., None]
    rgb = _JET[low] * (1 - frac) + _JET[low + 1] * frac
    return (rgb * 255).round().astype(np.uint8)


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Return `image` (RGB) with the heatmap, stretched to its size, blended over it."""
    base = image.convert("RGB")
    heat = Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8), mode="L")
    heat = heat.resize(base.size, Image.Resampling.BICUBIC)
    colored = Image.fromarray(colorize(np.asarray(heat, np.float32) / 255.0), mode="RGB")
    return Image.blend(base, colored, alpha)


def compiled_grad_cam(
    model: keras.Model, image_size: int, layer_name: str | None = None
) -> Callable[[np.ndarray, int], np.ndarray]:
    """Return a traced, thread-safe `f(image_array, class_index) -> heatmap` for repeated use.

    Same result as `grad_cam`, several times faster on a CPU: the capture happens once, while
    tracing, and later calls run the saved graph without touching the model's layers.
    """
    import tensorflow as tf

    layer = find_layer(model, layer_name) if layer_name else last_conv_layer(model)
    spec = [tf.TensorSpec([image_size, image_size, 3], tf.float32), tf.TensorSpec([], tf.int32)]

    @tf.function(input_signature=spec)
    def cam(image, class_index):
        captured: list = []
        with tf.GradientTape() as tape, _capture(layer, tape, captured):
            outputs = model(image[None], training=False)
            outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
            score = outputs[:, class_index]
        features = captured[-1]
        grads = tape.gradient(score, features)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        heat = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0]
        peak = tf.reduce_max(heat)
        return tf.where(peak > 0, heat / tf.maximum(peak, 1e-12), heat)

    with _LOCK:
        cam.get_concrete_function()  # trace now, while no other Grad-CAM wraps the layer

    def run(image_array: np.ndarray, class_index: int) -> np.ndarray:
        return cam(np.asarray(image_array, np.float32), np.int32(class_index)).numpy()

    return run
