"""Combined backbones ("a+b"): one input, each part at its own size, features concatenated."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.models.backbones import (
    build_feature_extractor,
    build_imagenet_classifier,
    get_backbone,
    imagenet_head_for,
)
from helpers.models.builders import transfer_classifier
from helpers.models.imagenet import dog_classes
from helpers.serving.predict import images_to_array
from helpers.training.transfer import set_backbone_trainable

PAIR = "efficientnet_lite0+efficientnet_lite1"  # 224 and 240 px


@pytest.fixture(scope="module")
def photos(stanford_dogs) -> np.ndarray:
    """Four real photos at the pair's input size (240 px)."""
    folders = sorted(p for p in stanford_dogs.iterdir() if p.is_dir())[:4]
    return images_to_array([sorted(f.glob("*.jpg"))[0] for f in folders], 240)


def test_spec_takes_the_largest_size_and_lists_its_parts():
    spec = get_backbone(PAIR)
    assert spec.image_size == 240 and spec.offline
    assert spec.parts == ["efficientnet_lite0", "efficientnet_lite1"]
    assert get_backbone("efficientnet_lite0").parts == ["efficientnet_lite0"]


@pytest.mark.parametrize(
    "name", ["efficientnet_lite0+efficientnet_lite0", "efficientnet_lite0+resnet9000"]
)
def test_repeated_or_unknown_parts_are_refused(name):
    with pytest.raises(KeyError, match="unknown backbone"):
        get_backbone(name)


def test_combined_backbones_have_no_single_imagenet_classifier():
    with pytest.raises(ValueError, match="combines backbones"):
        build_imagenet_classifier(PAIR)


def test_features_are_each_part_on_its_own_resize_concatenated(photos):
    combined = build_feature_extractor(PAIR, "imagenet")
    assert combined.input_shape == (None, 240, 240, 3)
    assert combined.output_shape == (None, 2 * 1280)
    features = combined(photos, training=False).numpy()
    small = tf.image.resize(photos, (224, 224), method="bilinear", antialias=True)
    lite0 = build_feature_extractor("efficientnet_lite0", "imagenet")(small, training=False)
    lite1 = build_feature_extractor("efficientnet_lite1", "imagenet")(photos, training=False)
    np.testing.assert_allclose(features[:, :1280], lite0, atol=1e-4)
    np.testing.assert_allclose(features[:, 1280:], lite1, atol=1e-4)


def test_imagenet_head_starts_as_the_mean_of_the_parts_logits(photos):
    classes = dog_classes()[:10]
    kernel, bias, found = imagenet_head_for(PAIR, classes)
    assert kernel.shape == (2 * 1280, 10) and found.all()
    features = build_feature_extractor(PAIR, "imagenet")(photos, training=False).numpy()
    combined_logits = features @ kernel + bias
    parts = []
    for start, name in ((0, "efficientnet_lite0"), (1280, "efficientnet_lite1")):
        k, b, _ = imagenet_head_for(name, classes)
        parts.append(features[:, start : start + 1280] @ k + b)
    np.testing.assert_allclose(combined_logits, np.mean(parts, axis=0), rtol=1e-5, atol=1e-4)


def test_fine_tuning_from_a_name_both_parts_share_is_refused():
    model = transfer_classifier(build_feature_extractor(PAIR, None), num_classes=3)
    with pytest.raises(ValueError, match="names 2 layers"):
        set_backbone_trainable(model, True, from_layer="top_conv")
    set_backbone_trainable(model, True, from_layer=None)
    assert any(w.trainable for w in model.get_layer("backbone").weights)
    assert isinstance(model.get_layer("backbone"), keras.Model)
