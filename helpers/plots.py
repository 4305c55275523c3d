"""Plots shared by the notebooks: photo grids and per-breed bar charts."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

STYLE = Path(__file__).with_name("doggo.mplstyle")


def use_style() -> None:
    """Apply doggo's pinned matplotlib style so figures are the same on every machine."""
    plt.style.use(["default", str(STYLE)])


def image_grid(
    paths: Sequence[str | os.PathLike], titles: Sequence[str], ncols: int = 6, size: float = 2.0
) -> plt.Figure:
    """Return a figure showing the images at `paths` in a grid, each with its title."""
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB")))
    return array_grid(images, titles, ncols, size)


def stacked_counts(table: pd.DataFrame, title: str, xlabel: str = "photos") -> plt.Figure:
    """Return a horizontal stacked bar chart of a rows-by-columns count table."""
    height = max(2.5, 0.28 * len(table) + 1)
    fig, ax = plt.subplots(figsize=(8, height))
    table.iloc[::-1].plot.barh(stacked=True, ax=ax, width=0.8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def array_grid(
    images: Sequence, titles: Sequence[str], ncols: int = 6, size: float = 2.0
) -> plt.Figure:
    """Return a figure of images given as arrays of [0, 255] pixels, each with its title."""
    nrows = max(1, math.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.1))
    for ax in getattr(axes, "flat", [axes]):
        ax.axis("off")
    for ax, image, title in zip(getattr(axes, "flat", [axes]), images, titles, strict=False):
        ax.imshow(np.clip(np.asarray(image), 0, 255).astype("uint8"))
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(log: pd.DataFrame, title: str) -> plt.Figure:
    """Return loss and accuracy per epoch, train against validation, from a Keras CSV log."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = log["epoch"] + 1
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, log[metric], marker="o", label="train")
        if f"val_{metric}" in log:
            ax.plot(epochs, log[f"val_{metric}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
