"""Where a model goes wrong: confusion matrices, the most confused pairs, mistake galleries."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
from scipy.spatial.distance import squareform

from helpers.plots import image_grid


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Return the (true, predicted) count matrix."""
    flat = np.asarray(y_true) * n_classes + np.asarray(y_pred)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def confusion_matrix_normalized(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
) -> np.ndarray:
    """Return the confusion matrix with each true-class row summing to 1 (0 with no support)."""
    counts = confusion_counts(y_true, y_pred, n_classes).astype(np.float64)
    support = counts.sum(axis=1, keepdims=True)
    return counts / np.where(support > 0, support, 1.0)


def similarity_order(cm: np.ndarray) -> np.ndarray:
    """Return a class order that puts mutually confused classes next to each other.

    Average-linkage clustering of 1 - symmetrised confusion (scaled to [0, 1]), leaves in
    optimal order.
    """
    cm = np.asarray(cm, np.float64)
    n = len(cm)
    similarity = (cm + cm.T) / 2
    np.fill_diagonal(similarity, 0.0)
    if n < 3 or similarity.max() <= 0:
        return np.arange(n)  # nothing to cluster on
    distance = 1.0 - similarity / similarity.max()
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(distance, checks=False)
    tree = optimal_leaf_ordering(linkage(condensed, method="average"), condensed)
    return leaves_list(tree)


def plot_confusion(
    cm: np.ndarray, class_names: Sequence[str], order: np.ndarray | None = None
) -> plt.Figure:
    """Return a heatmap of a normalised confusion matrix, readable up to ~190 classes."""
    order = np.arange(len(cm)) if order is None else np.asarray(order)
    names = [class_names[int(i)] for i in order]
    n = len(names)
    side = min(24.0, max(6.0, 0.12 * n + 3))
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    sns.heatmap(
        np.asarray(cm)[np.ix_(order, order)],
        ax=ax,
        cmap="viridis",
        vmin=0,
        vmax=1,
        square=True,
        xticklabels=names,
        yticklabels=names,
        annot=n <= 30,  # numbers in 190x190 cells would be unreadable noise
        fmt=".2f",
        annot_kws={"fontsize": 7},
        cbar_kws={"shrink": 0.5, "label": "share of true breed"},
    )
    fontsize = 8 if n <= 30 else (6 if n <= 80 else 4)
    ax.tick_params(axis="both", labelsize=fontsize, length=0)
    ax.set(xlabel="predicted", ylabel="true")
    fig.tight_layout()
    return fig


def most_confused_pairs(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], top: int = 20
) -> pd.DataFrame:
    """Return the most frequent (true, predicted) mistakes with their count and share.

    `share` is the count over the true breed's photos; ties sort by share, then names.
    """
    n = len(class_names)
    counts = confusion_counts(y_true, y_pred, n)
    support = counts.sum(axis=1)
    rows, cols = np.nonzero(counts * (1 - np.eye(n, dtype=counts.dtype)))
    table = pd.DataFrame(
        {
            "true": [class_names[int(i)] for i in rows],
            "predicted": [class_names[int(j)] for j in cols],
            "count": counts[rows, cols],
            "share": counts[rows, cols] / support[rows],
        }
    )
    table = table.sort_values(
        ["count", "share", "true", "predicted"], ascending=[False, False, True, True]
    )
    return table.head(top).reset_index(drop=True)


# ---- galleries ---------------------------------------------------------------------------------


def confident_mistakes(y_true: np.ndarray, probs: np.ndarray, n: int) -> np.ndarray:
    """Return indices of up to n wrong predictions, most confident first (ties by index)."""
    probs = np.asarray(probs)
    wrong = np.flatnonzero(probs.argmax(axis=1) != np.asarray(y_true))
    confidence = probs[wrong].max(axis=1)
    return wrong[np.lexsort((wrong, -confidence))][:n]


def uncertain_correct(y_true: np.ndarray, probs: np.ndarray, n: int) -> np.ndarray:
    """Return indices of up to n right predictions, least confident first (ties by index)."""
    probs = np.asarray(probs)
    right = np.flatnonzero(probs.argmax(axis=1) == np.asarray(y_true))
    confidence = probs[right].max(axis=1)
    return right[np.lexsort((right, confidence))][:n]


def gallery(
    paths: Sequence[str | os.PathLike],
    y_true: np.ndarray,
    probs: np.ndarray,
    indices: Sequence[int],
    class_names: Sequence[str],
    ncols: int = 5,
) -> plt.Figure:
    """Return a grid of the photos at `indices`, titled with true and predicted breed."""
    probs = np.asarray(probs)
    titles = []
    for i in indices:
        pred = int(probs[i].argmax())
        titles.append(
            f"true: {class_names[int(y_true[i])]}\npred: {class_names[pred]} {probs[i, pred]:.0%}"
        )
    return image_grid([paths[i] for i in indices], titles, ncols=ncols, size=2.4)
