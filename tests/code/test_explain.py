"""Grad-CAM on hand-built models whose answer is known: the heatmap must peak on the evidence."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from helpers.serving.explain import (
    colorize,
    compiled_grad_cam,
    find_layer,
    grad_cam,
    last_conv_layer,
    overlay,
)

SIZE = 16  # input pixels; the feature map is 8x8 after pooling


def _image() -> np.ndarray:
    """Channel 0 lit in the top-left quadrant, channel 1 in the bottom-right, channel 2 in the
    top-right (evidence for no class), on faint noise."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 0.05, (SIZE, SIZE, 3)).astype(np.float32)
    half = SIZE // 2
    image[:half, :half, 0] = 1.0
    image[half:, half:, 1] = 1.0
    image[:half, half:, 2] = 1.0
    return image


def _features(name: str = "features") -> list[keras.layers.Layer]:
    # A 1x1 identity convolution: feature channel k is input channel k, so we know what it sees.
    conv = keras.layers.Conv2D(3, 1, activation="relu", name=name)
    conv.build((None, SIZE, SIZE, 3))
    conv.set_weights([np.eye(3, dtype=np.float32)[None, None], np.zeros(3, np.float32)])
    return [conv, keras.layers.MaxPooling2D(2, name="pool")]


def _head() -> keras.layers.Dense:
    # Class 0 is the mean of channel 0, class 1 of channel 1; channel 2 counts for nothing.
    dense = keras.layers.Dense(2, name="classes")
    dense.build((None, 3))
    dense.set_weights([np.array([[1, 0], [0, 1], [0, 0]], np.float32), np.zeros(2, np.float32)])
    return dense


def flat_model() -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, 3))
    x = inputs
    for layer in _features():
        x = layer(x)
    outputs = _head()(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="flat")


def nested_model() -> keras.Model:
    """The same network with its convolutional part as a nested Model layer (like a backbone)."""
    inner_in = keras.Input((SIZE, SIZE, 3))
    x = inner_in
    for layer in _features("inner_features"):
        x = layer(x)
    backbone = keras.Model(inner_in, x, name="backbone")
    inputs = keras.Input((SIZE, SIZE, 3))
    x = backbone(keras.layers.Rescaling(1.0, name="preprocessing")(inputs))
    outputs = _head()(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="nested")


def _quadrant_means(heatmap: np.ndarray) -> dict[str, float]:
    h = heatmap.shape[0] // 2
    rows = {"top": heatmap[:h], "bottom": heatmap[h:]}
    return {f"{r}_{c}": float(part[:, cols].mean()) for r, part in rows.items()
            for c, cols in (("left", slice(None, h)), ("right", slice(h, None)))}  # fmt: skip


@pytest.mark.parametrize("build", [flat_model, nested_model], ids=["flat", "nested"])
@pytest.mark.parametrize(("class_index", "quadrant"), [(0, "top_left"), (1, "bottom_right")])
def test_heatmap_peaks_where_the_class_evidence_is(build, class_index, quadrant):
    model = build()
    heatmap = grad_cam(model, _image(), class_index)
    assert heatmap.shape == (SIZE // 2, SIZE // 2)
    assert heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    means = _quadrant_means(heatmap)
    assert max(means, key=means.get) == quadrant
    others = [v for k, v in means.items() if k != quadrant]
    assert max(others) < 0.1 * means[quadrant]  # the unused channel 2 does not show up


def test_the_last_feature_map_is_found_inside_a_nested_backbone():
    model = nested_model()
    assert last_conv_layer(model).name == "pool"  # inside "backbone", after the convolution
    assert find_layer(model, "inner_features").name == "inner_features"
    with pytest.raises(KeyError):
        find_layer(model, "no_such_layer")


def test_a_named_layer_is_used_and_left_unchanged():
    model = nested_model()
    layer = find_layer(model, "inner_features")
    heatmap = grad_cam(model, _image(), 1, layer_name="inner_features")
    assert heatmap.shape == (SIZE, SIZE)  # the convolution's map, before pooling
    assert _quadrant_means(heatmap)["bottom_right"] > 0.5
    assert "call" not in vars(layer)  # the capture wrapper is removed again
    before = model(_image()[None]).numpy()
    grad_cam(model, _image(), 0)
    np.testing.assert_allclose(model(_image()[None]).numpy(), before)


def test_nested_and_flat_models_give_the_same_heatmap():
    image = _image()
    np.testing.assert_allclose(
        grad_cam(flat_model(), image, 0), grad_cam(nested_model(), image, 0), atol=1e-6
    )


@pytest.mark.parametrize("build", [flat_model, nested_model], ids=["flat", "nested"])
def test_the_compiled_grad_cam_matches_the_eager_one(build):
    model = build()
    compiled = compiled_grad_cam(model, SIZE)
    for class_index in (0, 1):
        np.testing.assert_allclose(
            compiled(_image(), class_index), grad_cam(model, _image(), class_index), atol=1e-6
        )
    assert all("call" not in vars(layer) for layer in model.layers)  # no wrapper left behind


def test_a_model_without_feature_maps_is_refused():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="feature map"):
        last_conv_layer(model)


def test_overlay_is_red_where_the_heatmap_is_hot():
    image = Image.new("RGB", (40, 30), (128, 128, 128))
    heatmap = np.zeros((6, 8), np.float32)
    heatmap[:3, :4] = 1.0  # hot top-left
    out = overlay(image, heatmap)
    assert out.size == image.size and out.mode == "RGB"
    hot = np.asarray(out)[2, 2].astype(int)
    cold = np.asarray(out)[27, 37].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # red on the hot spot, blue on the cold one
    low, high = colorize(np.array([0.0, 1.0]))
    assert low[2] > low[0] and high[0] > high[2]
