"""Models side by side: their roles and labels, and a table and chart against the original."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.model_card import ModelCard
from helpers.original import TOP1

ROLE_LABELS = {
    "simple_cnn": "simple CNN",
    "xception_scratch": "Xception from scratch",
    "transfer": "ImageNet transfer",
    "imagenet": "ImageNet classifier",
}


def model_role(card: ModelCard) -> str:
    """Return the role a saved model plays: simple_cnn, xception_scratch, transfer or imagenet."""
    if card.name in ("simple_cnn", "xception_scratch"):
        return card.name
    if card.name.endswith("_transfer"):
        return "transfer"
    if card.name.startswith("imagenet-"):
        # helpers.serving.default_model: ImageNet's own classifier, not trained here
        return "imagenet"
    return card.name


def model_label(card: ModelCard) -> str:
    """Return a readable model name: its role, with the backbone for ImageNet-based models."""
    role = model_role(card)
    label = ROLE_LABELS.get(role, card.name)
    if role in ("transfer", "imagenet") and card.backbone:
        return f"{label} ({card.backbone})"
    return label


def comparison_table(
    rows: Sequence[dict[str, Any]], original: Mapping[str, float] = TOP1
) -> pd.DataFrame:
    """Return summary rows side by side, indexed by model, with the original's top-1 for the row's
    `role` (NaN where the original had no such model)."""
    table = pd.DataFrame(list(rows)).set_index("model")
    roles = table["role"] if "role" in table else pd.Series(None, index=table.index)
    table["original_top1"] = [original.get(str(r), np.nan) for r in roles]
    return table


def comparison_bar_chart(table: pd.DataFrame, n_classes: int | None = None) -> plt.Figure:
    """Return a bar chart of each model's top-1 (95% interval) next to the original's.

    Models the original did not have get no original bar (not a zero one); with `n_classes` a
    dashed line marks chance.
    """
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(table) + 2), 4.2))
    errors = [table["top1"] - table["top1_low"], table["top1_high"] - table["top1"]]
    ax.bar(x - 0.2, table["top1"], 0.4, yerr=errors, capsize=4, label="this run (95% CI)")
    known = table["original_top1"].notna().to_numpy()
    ax.bar(x[known] + 0.2, table["original_top1"][known], 0.4,
           label="doggo.name original (188 breeds)")  # fmt: skip
    for i in np.flatnonzero(~known):
        ax.text(x[i] + 0.2, 0.02, "no original", rotation=90, ha="center", va="bottom", fontsize=9)
    if n_classes:
        ax.axhline(1 / n_classes, color="grey", linestyle="--", linewidth=1,
                   label=f"chance (1/{n_classes})")  # fmt: skip
    ax.set_xticks(x, [str(m) for m in table.index], rotation=15, ha="right")
    ax.set(ylim=(0, 1.15), ylabel="holdout top-1 accuracy")
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(loc="upper center", ncol=3, fontsize=9, frameon=False)  # above the bars
    fig.tight_layout()
    return fig


def per_breed_chart(
    report: pd.DataFrame, reference: pd.DataFrame | None = None, reference_label: str = "bench"
) -> plt.Figure:
    """Return each breed's holdout F1 (from `per_breed_report`) as horizontal bars, next to the
    same breeds' F1 in a `reference` report (e.g. the bench run's) where it has them."""
    breeds = list(report.sort_values("f1").index)
    y = np.arange(len(breeds))
    fig, ax = plt.subplots(figsize=(7, 0.42 * len(breeds) + 1.4))
    ax.barh(y + 0.2, report.loc[breeds, "f1"], 0.4, label="this run")
    if reference is not None:
        shared = [b for b in breeds if b in reference.index]
        known = np.isin(breeds, shared)
        ax.barh(y[known] - 0.2, reference.loc[shared, "f1"], 0.4, label=reference_label)
    ax.set_yticks(y, breeds)
    ax.set(xlim=(0, 1), xlabel="holdout F1", title="Per-breed F1 of the best trained model")
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig
