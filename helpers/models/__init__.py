"""The models of 03-05: the three builders, the backbone registry and ImageNet's classes."""

from helpers.models._efficientnet_lite import weights_file
from helpers.models.backbones import build_feature_extractor, get_backbone, imagenet_head_for
from helpers.models.builders import (
    copy_head_weights,
    head_only_model,
    set_head_columns,
    simple_cnn,
    transfer_classifier,
    xception_scratch,
)

# weights_file: the EfficientNet-Lite weights the embedded default model (helpers.serving) hashes.
__all__ = [
    "build_feature_extractor",
    "copy_head_weights",
    "get_backbone",
    "head_only_model",
    "imagenet_head_for",
    "set_head_columns",
    "simple_cnn",
    "transfer_classifier",
    "weights_file",
    "xception_scratch",
]
