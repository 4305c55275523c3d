"""A new head started from ImageNet's output rows knows the breeds before any training."""

import numpy as np

from helpers.models.backbones import build_feature_extractor, imagenet_head_for
from helpers.models.builders import head_only_model, set_head_columns
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
