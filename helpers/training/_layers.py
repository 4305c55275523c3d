"""A Keras model's layers at any depth, in order (nested models opened up)."""

from __future__ import annotations

import keras


def sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    children = getattr(layer, "layers", None) or []
    return [layer] + [sub for child in children for sub in sublayers(child)]
