"""Fine-tuning can start at a layer deep inside a nested backbone, with BatchNorm kept frozen."""

import keras
import pytest

from helpers.models.builders import transfer_classifier
from helpers.training.transfer import set_backbone_trainable


def _nested_backbone() -> keras.Model:
    body_in = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="low_conv")(body_in)
    x = keras.layers.BatchNormalization(name="low_bn")(x)
    x = keras.layers.Conv2D(4, 3, name="high_conv")(x)
    x = keras.layers.BatchNormalization(name="high_bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    body = keras.Model(body_in, x, name="body")
    pixels = keras.Input((16, 16, 3), name="pixels")
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocessing")(pixels)
    return keras.Model(pixels, body(scaled), name="wrapper")


def _trainable_names(model: keras.Model) -> set[str]:
    return {v.path.split("/")[-2] for v in model.trainable_weights}


def test_fine_tuning_starts_at_a_named_layer_inside_the_nested_body():
    model = transfer_classifier(_nested_backbone(), num_classes=3)
    assert _trainable_names(model) == {"head_logits"}
    set_backbone_trainable(model, True, from_layer="high_conv")
    assert _trainable_names(model) == {"high_conv", "head_logits"}


def test_unfreezing_everything_still_keeps_batchnorm_frozen_and_refreezing_works():
    model = transfer_classifier(_nested_backbone(), num_classes=3)
    set_backbone_trainable(model, True)
    assert _trainable_names(model) == {"low_conv", "high_conv", "head_logits"}
    set_backbone_trainable(model, False)
    assert _trainable_names(model) == {"head_logits"}


def test_an_unknown_layer_name_is_a_clear_error():
    model = transfer_classifier(_nested_backbone(), num_classes=3)
    with pytest.raises(ValueError, match="no layer 'block99'"):
        set_backbone_trainable(model, True, from_layer="block99")


def test_a_second_call_with_an_earlier_layer_unfreezes_what_the_first_froze():
    model = transfer_classifier(_nested_backbone(), num_classes=3)
    set_backbone_trainable(model, True, from_layer="high_conv")
    set_backbone_trainable(model, True, from_layer="low_conv")
    assert _trainable_names(model) == {"low_conv", "high_conv", "head_logits"}
    set_backbone_trainable(model, True, from_layer="high_conv")
    assert _trainable_names(model) == {"high_conv", "head_logits"}
