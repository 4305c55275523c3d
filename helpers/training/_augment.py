"""The fast pipeline's augmentation: stateless random ops and one combined affine warp per image.

The Keras layers of `helpers.training.data.augmentation` hold seed generators (stateful ops), so
under op determinism tf.data runs their map on one thread, and rotation, zoom and translation
each resample the image. Here every random number comes from `tf.random.stateless_*` keyed by
(seed, a per-batch draw), so parallel maps stay deterministic, and the flip, rotation, zoom and
translation become one affine matrix applied by a single resampling. The ranges are those of
`augmentation()`. In tf.data on the CPU, OpenCV's `warpAffine` resamples (about 9x faster per core
than TensorFlow's op here: benchmarks/README.md); inside a model, on any device, TensorFlow's
`ImageProjectiveTransformV3` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

# Who resamples the combined warp: OpenCV on the host (tf.data), or TensorFlow's op (any device).
RESAMPLERS = ("opencv", "tensorflow")

# The ranges of helpers.training.data.augmentation at strength 1 (fractions as the Keras layers
# take them: rotation of a full turn, zoom and translation of the image's size).
ROTATION, ZOOM, TRANSLATION, CONTRAST, BRIGHTNESS = 0.04, 0.1, 0.08, 0.15, 0.1


def flip_matrix(flip: tf.Tensor, width: int) -> tf.Tensor:
    """(n, 3, 3) sampling matrices mirroring left-right where `flip` is 1 (as RandomFlip)."""
    sign = 1.0 - 2.0 * flip
    zero, one = tf.zeros_like(flip), tf.ones_like(flip)
    rows = [sign, zero, flip * (width - 1.0), zero, one, zero, zero, zero, one]
    return tf.reshape(tf.stack(rows, axis=-1), (-1, 3, 3))


def rotation_matrix(angle: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """(n, 3, 3) sampling matrices rotating by `angle` radians about the centre (as
    RandomRotation)."""
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    zero, one = tf.zeros_like(angle), tf.ones_like(angle)
    rows = [
        [cos, -sin, cx - cx * cos + cy * sin],
        [sin, cos, cy - cx * sin - cy * cos],
        [zero, zero, one],
    ]
    return tf.reshape(tf.stack([v for row in rows for v in row], axis=-1), (-1, 3, 3))


def zoom_matrix(zoom: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """(n, 3, 3) sampling matrices scaling by `zoom` about the centre (> 1 shows more of the
    photo, as RandomZoom's 1 + factor)."""
    zero, one = tf.zeros_like(zoom), tf.ones_like(zoom)
    x_offset, y_offset = (width - 1.0) / 2.0 * (1.0 - zoom), (height - 1.0) / 2.0 * (1.0 - zoom)
    rows = [zoom, zero, x_offset, zero, zoom, y_offset, zero, zero, one]
    return tf.reshape(tf.stack(rows, axis=-1), (-1, 3, 3))


def translation_matrix(dx: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    """(n, 3, 3) sampling matrices moving the content by (dx, dy) pixels (as
    RandomTranslation)."""
    zero, one = tf.zeros_like(dx), tf.ones_like(dx)
    rows = [one, zero, -dx, zero, one, -dy, zero, zero, one]
    return tf.reshape(tf.stack(rows, axis=-1), (-1, 3, 3))


def combined_transform(
    flip: tf.Tensor,
    angle: tf.Tensor,
    zoom: tf.Tensor,
    dx: tf.Tensor,
    dy: tf.Tensor,
    height: int,
    width: int,
) -> tf.Tensor:
    """(n, 8) projective transforms doing flip, rotation, zoom and translation in that order.

    A sampling matrix maps output to input coordinates, so applying A then B samples with A @ B.
    """
    matrix = (
        flip_matrix(flip, width)
        @ rotation_matrix(angle, height, width)
        @ zoom_matrix(zoom, height, width)
        @ translation_matrix(dx, dy)
    )
    return tf.reshape(matrix, (-1, 9))[:, :8]


def warp(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Resample a (n, h, w, c) float batch with (n, 8) transforms in the graph (TensorFlow's op,
    on any device): bilinear, edges reflected."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.cast(transforms, tf.float32),
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def warp_opencv(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """`warp` done by OpenCV's `warpAffine` on the host, for tf.data: the same pixels (within
    float rounding), reflected edges included. The transforms must be affine."""
    out = tf.numpy_function(
        _warp_affine,
        [tf.cast(images, tf.float32), tf.cast(transforms, tf.float32)],
        tf.float32,
        # Stateless: the same inputs give the same output, so tf.data keeps the map parallel
        # even under op determinism.
        stateful=False,
    )
    return tf.ensure_shape(out, images.shape)


def _warp_affine(images: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    import cv2  # only tf.data's augmentation needs OpenCV; the app never imports it

    if np.any(transforms[:, 6:8]):
        raise ValueError("warp_opencv takes affine transforms only (last row 0, 0, 1)")
    height, width = images.shape[1:3]
    out = np.empty_like(images)
    # WARP_INVERSE_MAP: the matrix maps output to input pixels, as the transforms do; OpenCV's
    # BORDER_REFLECT repeats the edge pixel (dcba|abcd), as fill_mode "reflect" does.
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for i in range(len(images)):
        matrix = transforms[i, :6].reshape(2, 3)
        out[i] = cv2.warpAffine(
            images[i], matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REFLECT
        ).reshape(out.shape[1:])  # a one-channel image comes back without its channel axis
    return out


def warp_for(resampler: str) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The warp function of a resampler named in RESAMPLERS."""
    if resampler not in RESAMPLERS:
        raise ValueError(f"resampler must be one of {RESAMPLERS}, not {resampler!r}")
    return warp_opencv if resampler == "opencv" else warp


def augment_batch(
    images: tf.Tensor, key: tf.Tensor, strength: float = 1.0, resampler: str = "tensorflow"
) -> tf.Tensor:
    """Randomly flip, rotate, zoom, shift, change contrast and brightness of a float [0, 255]
    batch; the same `key` (two integers) gives the same result, on any thread."""
    resample = warp_for(resampler)
    n, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError(f"augment_batch needs a static image size, not {images.shape}")
    keys = tf.random.experimental.stateless_split(tf.cast(key, tf.int64), num=7)

    def uniform(i: int, low: float, high: float, shape=None) -> tf.Tensor:
        return tf.random.stateless_uniform(shape or [n], keys[i], low, high)

    f = strength
    turn = 2.0 * math.pi * ROTATION * f
    transforms = combined_transform(
        flip=tf.cast(uniform(0, 0.0, 1.0) < 0.5, tf.float32),
        angle=uniform(1, -turn, turn),
        zoom=uniform(2, 1.0 - ZOOM * f, 1.0 + ZOOM * f),
        dx=uniform(3, -TRANSLATION * f, TRANSLATION * f) * width,
        dy=uniform(4, -TRANSLATION * f, TRANSLATION * f) * height,
        height=height,
        width=width,
    )
    x = resample(images, transforms)
    # Contrast about each image's per-channel mean, then an additive brightness shift, each
    # clipped to [0, 255], as RandomContrast and RandomBrightness do.
    contrast = uniform(5, 1.0 - CONTRAST * f, 1.0 + CONTRAST * f, [n, 1, 1, 1])
    mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
    x = tf.clip_by_value((x - mean) * contrast + mean, 0.0, 255.0)
    brightness = uniform(6, -BRIGHTNESS * f, BRIGHTNESS * f, [n, 1, 1, 1]) * 255.0
    return tf.clip_by_value(x + brightness, 0.0, 255.0)


@keras.saving.register_keras_serializable(package="doggo")
class StatelessAugmentation(keras.layers.Layer):
    """The fast pipeline's augmentation as a layer: `layer(images, key=...)` in tf.data (the
    key makes it deterministic under parallel maps); without a key it draws one from its seed
    generator, e.g. inside a model on the accelerator. `resampler` "opencv" warps on the host
    (tf.data), "tensorflow" in the graph (a model, any device)."""

    def __init__(
        self, seed: int = 0, strength: float = 1.0, resampler: str = "tensorflow", **kwargs
    ):
        super().__init__(**kwargs)
        warp_for(resampler)  # an unknown name fails here, not at the first batch
        self.seed, self.strength, self.resampler = int(seed), float(strength), resampler
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, images, key=None, training=True):
        if not training:
            return images
        if key is None:
            key = keras.random.randint((2,), 0, 2**31 - 1, seed=self.seed_generator)
        return augment_batch(tf.cast(images, tf.float32), key, self.strength, self.resampler)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "seed": self.seed,
            "strength": self.strength,
            "resampler": self.resampler,
        }
