"""How accuracy changes when photos are degraded (JPEG, crop, blur, ...)."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageFilter

from helpers.evaluation.predictions import restrict_probabilities
from helpers.images import decode_image, to_rgb
from helpers.serving.predict import ImageSource, images_to_array

Corruption = Callable[[Image.Image], Image.Image]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _centre_crop(image: Image.Image, fraction: float) -> Image.Image:
    width, height = image.size
    w, h = max(1, round(width * fraction)), max(1, round(height * fraction))
    left, top = (width - w) // 2, (height - h) // 2
    return image.crop((left, top, left + w, top + h))


def _blur(image: Image.Image) -> Image.Image:
    # Radius relative to the photo, ~2 px once it is squashed to a 224-px model input.
    return image.filter(ImageFilter.GaussianBlur(radius=2 * max(image.size) / 224))


def corruptions() -> dict[str, Corruption]:
    """Return the robustness corruptions, each a function from an RGB PIL image to another."""
    rgb = to_rgb
    return {
        "gaussian blur": lambda im: _blur(rgb(im)),
        "JPEG quality 20": lambda im: _jpeg(rgb(im), 20),
        "centre crop 60%": lambda im: _centre_crop(rgb(im), 0.6),
        "rotation 20°": lambda im: rgb(im).rotate(20, resample=Image.Resampling.BILINEAR),
        "brightness x0.5": lambda im: ImageEnhance.Brightness(rgb(im)).enhance(0.5),
        "brightness x1.5": lambda im: ImageEnhance.Brightness(rgb(im)).enhance(1.5),
    }


def _load_rgb(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return to_rgb(source)
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return decode_image(data)


def robustness_table(
    predictor: Any,
    images: Sequence[ImageSource],
    y_true: np.ndarray,
    corruptions: Mapping[str, Corruption],
    columns: np.ndarray | None = None,
) -> pd.DataFrame:
    """Return top-1 accuracy per corruption (first row "none"), and its change from "none".

    `columns` (from class_mapping) picks the model outputs of the labels' classes.
    """
    originals = [_load_rgb(i) for i in images]
    y_true = np.asarray(y_true)
    rows = []
    for name, corrupt in {"none": lambda im: im, **corruptions}.items():
        batch = images_to_array([corrupt(im) for im in originals], predictor.image_size)
        probs = predictor.probabilities(batch)
        if columns is not None:
            probs = restrict_probabilities(probs, columns)
        rows.append({"corruption": name, "top1": float(np.mean(probs.argmax(axis=1) == y_true))})
    table = pd.DataFrame(rows)
    table["change"] = table["top1"] - table["top1"].iloc[0]
    return table
