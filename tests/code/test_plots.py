"""Shared plots: grids show every image with its title; curves show train and validation."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from helpers.plots import (
    bench_log,
    heatmap_grid,
    image_grid,
    prediction_histogram,
    stacked_counts,
    training_curves,
    use_style,
)


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


def _log(epochs: int) -> pd.DataFrame:
    rows = np.arange(epochs)
    columns = {"loss": 2.0 - 0.1 * rows, "val_loss": 2.1 - 0.1 * rows,
               "accuracy": 0.2 + 0.05 * rows, "val_accuracy": 0.1 + 0.05 * rows}  # fmt: skip
    return pd.DataFrame({"epoch": rows, **columns})


def test_training_curves_count_epochs_from_one_in_whole_numbers_and_mark_chance():
    fig = training_curves(_log(3), "t", n_classes=10)
    loss, accuracy = fig.axes
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3]
    assert all(float(tick).is_integer() for tick in loss.get_xticks())
    chance = {ax.get_title(): ax.lines[-1].get_ydata()[0] for ax in fig.axes}
    assert math.isclose(chance["loss"], math.log(10)) and math.isclose(chance["accuracy"], 0.1)
    assert accuracy.get_ylim() == (0, 1)
    assert "chance (1/10)" in [t.get_text() for t in accuracy.get_legend().get_texts()]


def test_training_curves_draw_a_reference_run_beside_the_live_one_with_its_label():
    fig = training_curves(_log(2), "t", reference=_log(5), reference_label="bench")
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["bench train", "bench validation", "train", "validation"]
    assert len(fig.axes[0].lines[0].get_xdata()) == 5


def test_prediction_histogram_counts_answers_per_class_against_an_even_spread():
    fig = prediction_histogram([2, 2, 2, 0], ["a", "b", "c", "d"], "h")
    ax = fig.axes[0]
    assert [bar.get_height() for bar in ax.patches] == [1, 0, 3, 0]
    assert ax.lines[0].get_ydata()[0] == 1.0  # 4 answers over 4 classes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]


def test_the_shared_style_draws_figures_at_readable_resolution():
    use_style()
    assert plt.rcParams["figure.dpi"] >= 100 and plt.rcParams["font.size"] >= 10


def test_heatmap_grid_lays_each_heatmap_over_its_whole_photo_with_one_colour_bar():
    photos = [np.full((40, 60, 3), 128, np.uint8), np.zeros((30, 30, 3), np.uint8)]
    heats = [np.eye(5), np.ones((3, 3))]
    fig = heatmap_grid(photos, heats, ["true: a\npredicted: a", "true: b\npredicted: a"], ncols=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["true: a\npredicted: a", "true: b\npredicted: a"]
    assert shown[0].images[1].get_extent() == [0, 60, 40, 0]  # stretched over the 60x40 photo
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1 and colorbars[0].get_ylim() == (0.0, 1.0)


def test_bench_log_reads_a_committed_log_and_is_none_without_one(tmp_path):
    _log(3).to_csv(tmp_path / "simple_cnn_log.csv", index=False)
    assert list(bench_log("simple_cnn", tmp_path)["epoch"]) == [0, 1, 2]
    assert bench_log("xception_scratch", tmp_path) is None


def test_the_committed_bench_logs_are_those_of_models_that_learned():
    """results/bench/ is what 03-05 plot beside the demo: each log must reach below ln 120."""
    for name in ("simple_cnn", "xception_scratch", "efficientnet_lite2_transfer_head"):
        log = bench_log(name)
        assert log is not None, f"results/bench/{name}_log.csv is missing"
        assert log["val_loss"].min() < math.log(120) - 0.3, name
