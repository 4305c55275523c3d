"""A new head started from ImageNet's output rows knows the breeds before any training."""

import keras
import numpy as np
import pytest

from helpers.models.backbones import (
    build_feature_extractor,
    get_backbone,
    imagenet_head_for,
    preprocessing_layer,
    top_blocks_layer,
)
from helpers.models.builders import head_only_model, set_head_columns
from helpers.models.imagenet import imagenet_index_of_wnid
from helpers.serving.predict import images_to_array

CLASSES = [
    {"name": "Chihuahua", "wnid": "n02085620"},
    {"name": "Pug", "wnid": "n02110958"},
    {"name": "Beagle", "wnid": "n02088364"},
    {"name": "Doggo Mix", "wnid": None},  # not an ImageNet class: keeps its random start
]


def test_imagenet_rows_classify_real_photos_without_training(stanford_dogs):
    features = build_feature_extractor("efficientnet_lite0", "imagenet")
    kernel, bias, found = imagenet_head_for("efficientnet_lite0", CLASSES)
    assert found.tolist() == [True, True, True, False]
    assert kernel.shape == (features.output_shape[-1], len(CLASSES))
    head = head_only_model(features.output_shape[1:], len(CLASSES))
    assert set_head_columns(head, kernel, bias, found) == 3
    photos, labels = [], []
    for label, c in enumerate(CLASSES[:3]):
        folder = next(stanford_dogs.glob(f"{c['wnid']}-*"))
        for photo in sorted(folder.glob("*.jpg"))[:4]:
            photos.append(photo)
            labels.append(label)
    logits = head.predict(features.predict(images_to_array(photos, 224), verbose=0), verbose=0)
    # Untrained on these photos, the three known breeds are already told apart.
    assert np.mean(logits[:, :3].argmax(axis=1) == np.array(labels)) >= 0.9


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small"])
def test_the_head_is_the_registered_classifier_layer_dense_or_1x1_convolution(tmp_path, name):
    # MobileNetV3's logits are a 1x1 Conv2D, not "the last Dense with 1000 units" (which it has
    # none of); the registry names each backbone's classifier layer instead of guessing.
    spec = get_backbone(name)
    keras.utils.set_random_seed(0)
    app = getattr(keras.applications, spec.application)(
        weights=None, classifier_activation=None, input_shape=(spec.image_size,) * 2 + (3,)
    )
    weights = tmp_path / f"{name}.weights.h5"
    app.save_weights(weights)
    kernel, bias, found = imagenet_head_for(name, CLASSES, weights=weights)
    assert found.tolist() == [True, True, True, False]
    x = np.random.default_rng(0).uniform(0, 255, (2, spec.image_size, spec.image_size, 3))
    layer = preprocessing_layer(spec.preprocessing)  # None: the application does its own
    inputs = layer(x.astype("float32")) if layer is not None else x.astype("float32")
    classifier = app.get_layer(spec.classifier)
    features = keras.Model(app.input, classifier.input)(inputs).numpy().reshape(2, -1)
    logits = app(inputs).numpy()
    columns = [imagenet_index_of_wnid()[c["wnid"]] for c in CLASSES[:3]]
    np.testing.assert_allclose(
        (features @ kernel + bias)[:, :3], logits[:, columns], rtol=1e-4, atol=1e-4
    )


def test_the_top_blocks_layer_starts_the_blocks_it_names():
    from helpers.models.builders import transfer_classifier
    from helpers.training import set_backbone_trainable

    assert top_blocks_layer("efficientnet_lite0", 2) == "block14_expand_conv"  # of 16 blocks
    layer = top_blocks_layer("efficientnet_lite2", 1)
    model = transfer_classifier(build_feature_extractor("efficientnet_lite2", None), 3)
    set_backbone_trainable(model, True, from_layer=layer)

    def leaves(node):
        children = getattr(node, "layers", None)
        return [leaf for child in children for leaf in leaves(child)] if children else [node]

    backbone = model.get_layer("backbone")
    learning = [leaf.name for leaf in leaves(backbone) if leaf.trainable_weights]
    last_block = layer.split("_")[0]  # e.g. block22: only it and the layers after the blocks learn
    assert learning[0] == layer
    assert all(name.startswith(last_block) or not name.startswith("block") for name in learning)
    with pytest.raises(ValueError, match="not an EfficientNet-Lite"):
        top_blocks_layer("xception", 2)
