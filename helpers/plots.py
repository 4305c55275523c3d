"""Plots shared by the notebooks: photo grids, per-breed bars, training curves, answer counts."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from PIL import Image

from helpers.paths import BENCH_RESULTS, bench_log_file

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


def _image_axes(
    count: int, ncols: int, cell: tuple[float, float], extra_width: float = 0.0, **kwargs
) -> tuple[plt.Figure, list[plt.Axes]]:
    """Return a figure with a grid of `cell`-inch axes for `count` images, all axes hidden."""
    nrows = max(1, math.ceil(count / ncols))
    figsize = (ncols * cell[0] + extra_width, nrows * cell[1])
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **kwargs)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)


def _pixels(image: np.ndarray) -> np.ndarray:
    """An image of [0, 255] values as uint8, clipped, as imshow shows it without rescaling."""
    return np.clip(np.asarray(image), 0, 255).astype("uint8")


def array_grid(
    images: Sequence, titles: Sequence[str], ncols: int = 6, size: float = 2.0
) -> plt.Figure:
    """Return a figure of images given as arrays of [0, 255] pixels, each with its title."""
    fig, axes = _image_axes(len(images), ncols, (size, size * 1.1))
    for ax, image, title in zip(axes, images, titles, strict=False):
        ax.imshow(_pixels(image))
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(
    log: pd.DataFrame,
    title: str,
    n_classes: int | None = None,
    reference: pd.DataFrame | None = None,
    reference_label: str = "bench",
) -> plt.Figure:
    """Return loss and accuracy per epoch, train against validation, from a Keras CSV log.

    With `n_classes`, dashed lines mark chance (loss ln K, accuracy 1/K); a `reference` log (e.g.
    the bench run) is drawn faintly on the same axes under `reference_label`.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        if reference is not None:
            _epoch_lines(ax, reference, metric, f"{reference_label} ", alpha=0.45, linestyle=":")
        _epoch_lines(ax, log, metric, "", alpha=1.0, linestyle="-")
        if n_classes:
            chance = math.log(n_classes) if metric == "loss" else 1 / n_classes
            name = f"chance (ln {n_classes})" if metric == "loss" else f"chance (1/{n_classes})"
            ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label=name)
        if metric == "accuracy":
            ax.set_ylim(0, 1)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=9, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def bench_log(name: str, folder: Path = BENCH_RESULTS) -> pd.DataFrame | None:
    """Return the committed bench run's training log (see paths.bench_log_file), or None."""
    path = bench_log_file(name, folder)
    return pd.read_csv(path) if path.is_file() else None


def _epoch_lines(ax: plt.Axes, log: pd.DataFrame, metric: str, prefix: str, **style) -> None:
    """Draw the train and validation series of `metric` against 1-based epochs."""
    epochs = log["epoch"] + 1
    for column, label, marker in ((metric, "train", "o"), (f"val_{metric}", "validation", "s")):
        if column in log:
            ax.plot(epochs, log[column], marker=marker, label=prefix + label, **style)


def prediction_histogram(
    predicted: Sequence[int] | np.ndarray, class_names: Sequence[str], title: str
) -> plt.Figure:
    """Return a bar chart of how many photos were predicted as each class.

    A dashed line marks the count every class would get if the answers were spread evenly.
    """
    counts = np.bincount(np.asarray(predicted, dtype=int), minlength=len(class_names))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.bar(range(len(class_names)), counts, color="tab:blue")
    ax.axhline(len(predicted) / len(class_names), color="grey", linestyle="--", linewidth=1,
               label="even spread")  # fmt: skip
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=9)
    ax.set_ylabel("photos predicted")
    ax.set_title(title)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


def heatmap_grid(
    images: Sequence[np.ndarray],
    heatmaps: Sequence[np.ndarray],
    titles: Sequence[str],
    ncols: int = 4,
    size: float = 2.6,
    label: str = "Grad-CAM (1 = the strongest evidence)",
) -> plt.Figure:
    """Return photos with their heatmaps in [0, 1] laid over them, and one colour bar for all.

    Each heatmap is stretched over its whole photo, whatever its own resolution.
    """
    # Constrained layout leaves room for the colour bar (1.2 inches) beside the grid.
    fig, axes = _image_axes(len(images), ncols, (size, size * 1.2), extra_width=1.2,
                            layout="constrained")  # fmt: skip
    shown = None
    for ax, image, heat, title in zip(axes, images, heatmaps, titles, strict=False):
        height, width = np.asarray(image).shape[:2]
        ax.imshow(_pixels(image))
        shown = ax.imshow(heat, cmap="jet", vmin=0, vmax=1, alpha=0.45, interpolation="bilinear",
                          extent=(0, width, height, 0))  # fmt: skip
        ax.set_title(title, fontsize=10)
    if shown is not None:
        fig.colorbar(shown, ax=axes, shrink=0.8, label=label)
    return fig
