"""Shared plots: grids show every image with its title; curves show train and validation."""

import numpy as np
import pandas as pd
from PIL import Image

from helpers.plots import image_grid, stacked_counts, training_curves


def test_image_grid_shows_each_photo_with_its_title_and_hides_empty_cells(tmp_path):
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (20, 10), colour).save(paths[-1])
    fig = image_grid(paths, ["red", "green", "blue"], ncols=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["red", "green", "blue"]
    assert np.asarray(shown[1].images[0].get_array())[0, 0].tolist() == [0, 255, 0]
    assert len(fig.axes) == 4 and not fig.axes[3].images


def test_training_curves_and_stacked_counts_plot_every_series():
    log = pd.DataFrame({"epoch": [0, 1], "loss": [2.0, 1.0], "val_loss": [2.1, 1.5],
                        "accuracy": [0.2, 0.5], "val_accuracy": [0.1, 0.4]})  # fmt: skip
    fig = training_curves(log, "t")
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    counts = pd.DataFrame({"train": [7, 5], "val": [2, 1]}, index=["Pug", "Beagle"])
    bars = stacked_counts(counts, "c").axes[0].patches
    assert sorted(round(b.get_width()) for b in bars) == [1, 2, 5, 7]
