"""The backbone registry and the Keras EfficientNet-Lite port, checked against PyTorch's logits."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import helpers
from helpers.models.backbones import (
    OFFLINE_BACKBONES,
    build_feature_extractor,
    build_imagenet_classifier,
    get_backbone,
    preprocessing_layer,
)
from helpers.models.imagenet import NOT_IN_STANFORD_DOGS, dog_classes
from helpers.serving.predict import images_to_array

PROJECT = Path(helpers.__file__).resolve().parents[1]
FIXTURE = PROJECT / "tests" / "fixtures" / "efficientnet_lite_reference.npz"
VARIANTS = ("lite0", "lite1", "lite2")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


@pytest.fixture(scope="module")
def lite0() -> keras.Model:
    return build_imagenet_classifier("efficientnet_lite0", classifier_activation=None)


@pytest.mark.parametrize("variant", VARIANTS)
def test_port_matches_pytorch_logits(variant, stanford_dogs, reference, lite0):
    """Logits of the registry's classifier equal an independent PyTorch implementation's."""
    name = f"efficientnet_{variant}"
    model = (
        lite0 if variant == "lite0" else build_imagenet_classifier(name, classifier_activation=None)
    )
    x = images_to_array(
        [stanford_dogs / f for f in reference["files"]], get_backbone(name).image_size
    )
    checksums = [hashlib.sha256(a.tobytes()).hexdigest() for a in x]
    assert checksums == list(reference[f"{variant}_input_sha256"]), "input pipeline changed"
    logits = model(x, training=False).numpy()
    expected = reference[f"{variant}_logits"]
    assert np.abs(logits - expected).max() < 1e-4
    assert (logits.argmax(1) == expected.argmax(1)).all()


def _sample(dataset: Path, per_breed: int) -> tuple[list[Path], list[str]]:
    folders = sorted(p for p in dataset.iterdir() if p.is_dir())
    files = [f for d in folders for f in sorted(d.glob("*.jpg"))[:per_breed]]
    return files, [f.parent.name.split("-")[0] for f in files]


def test_lite0_top1_on_two_photos_per_breed(stanford_dogs, lite0):
    """A correct port scores ~84% over all photos; padding/eps/BGR/scaling mistakes fall below."""
    files, wnids = _sample(stanford_dogs, per_breed=2)
    stanford = [c for c in dog_classes() if c["wnid"] not in NOT_IN_STANFORD_DOGS]
    columns = np.array([c["index"] for c in stanford])
    logits = lite0.predict(images_to_array(files, 224), batch_size=32, verbose=0)
    predicted = [stanford[i]["wnid"] for i in logits[:, columns].argmax(1)]
    top1 = np.mean([p == w for p, w in zip(predicted, wnids, strict=True)])
    print(f"Lite0 top-1 over 120 breeds on {len(files)} photos: {top1:.3f}")
    assert top1 >= 0.81  # measured 0.829 on this sample


def test_feature_extractor_is_the_classifier_without_its_head(stanford_dogs, reference, lite0):
    features_model = build_feature_extractor("efficientnet_lite0")
    x = images_to_array([stanford_dogs / f for f in reference["files"][:2]], 224)
    features = features_model(x, training=False).numpy()
    assert features.shape == (2, 1280)
    dense = lite0.get_layer("efficientnet_lite0").get_layer("predictions")
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(features @ kernel + bias, reference["lite0_logits"][:2], atol=1e-4)


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_preprocessing_layers_match_keras_applications(mode):
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    expected = keras.applications.imagenet_utils.preprocess_input(pixels.copy(), mode=mode)
    got = keras.ops.convert_to_numpy(preprocessing_layer(mode)(pixels))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_unknown_backbone_lists_choices():
    with pytest.raises(KeyError, match="xception"):
        get_backbone("resnet9000")


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_feature_extractor("efficientnet_lite0", weights=tmp_path / "nope.pth")


_OFFLINE_SCRIPT = """
import json
from helpers.models.backbones import WeightsUnavailableError, build_feature_extractor
result = {}
try:
    build_feature_extractor("xception")
except WeightsUnavailableError as err:
    result["error"] = str(err)
model = build_feature_extractor("xception", weights=None)
result["random_shape"] = list(model.output.shape[1:])
print("RESULT" + json.dumps(result))
"""


def test_download_failure_says_so_plainly(tmp_path):
    """Keras' cache points at an empty dir, so it really tries (and fails) to download."""
    env = {**os.environ, "KERAS_HOME": str(tmp_path), "HTTPS_PROXY": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9"}  # fmt: skip
    run = subprocess.run([sys.executable, "-c", _OFFLINE_SCRIPT], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT"))
    result = json.loads(line.removeprefix("RESULT"))
    message = result["error"]
    assert "Could not download" in message and "'xception'" in message
    assert all(name in message for name in OFFLINE_BACKBONES)
    assert "weights=" in message
    assert result["random_shape"] == [2048]
