"""The computation behind `helpers.kernel.fingerprint`: two seeded training steps of each kind of
model the lessons train (the simple CNN at 64 px, Xception at 80 px, EfficientNet-Lite0 from its
ImageNet weights at 224 px, the top blocks unfrozen at a 0.1x rate), at the lessons' batch size,
then a prediction; every weight and output, hashed. Run as `python -m helpers._numerics` in the
doggo kernel's environment (the variables must be set before TensorFlow loads); prints the hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

BATCH = 32  # the lessons' batch size: matrix shapes decide how sums are split


def _models() -> list[tuple[str, int, Callable]]:
    from helpers.models import (
        build_feature_extractor,
        simple_cnn,
        transfer_classifier,
        xception_scratch,
    )
    from helpers.training import compile_classifier, set_backbone_trainable

    def cnn():
        model = simple_cnn(10, 64)
        compile_classifier(model, 1e-3)
        return model

    def xception():
        model = xception_scratch(10, 80)
        compile_classifier(model, 1e-3)
        return model

    def lite0():
        features = build_feature_extractor("efficientnet_lite0", "imagenet", image_size=224)
        model = transfer_classifier(features, 10, 0.5)
        set_backbone_trainable(model, True, from_layer="block14_expand_conv")  # 05's default
        compile_classifier(model, 1e-4, backbone_lr_multiplier=0.1)
        return model

    return [("simple_cnn", 64, cnn), ("xception", 80, xception), ("lite0", 224, lite0)]


def fingerprint() -> str:
    """Return the sha256 of the weights and predictions after the steps described above."""
    from helpers.training import seed_everything

    digest = hashlib.sha256()
    for name, size, build in _models():
        seed_everything(0)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (2 * BATCH, size, size, 3)).astype("float32")
        labels = rng.integers(0, 10, 2 * BATCH).astype("int32")
        model = build()
        model.fit(images, labels, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        digest.update(name.encode())
        for weight in model.weights:
            digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
        digest.update(model.predict(images, batch_size=BATCH, verbose=0).tobytes())
    return digest.hexdigest()


if __name__ == "__main__":
    print(fingerprint())
