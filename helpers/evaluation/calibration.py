"""Calibration for notebook 06_evaluate: expected calibration error, reliability diagrams and
temperature scaling (fitted on the validation split, stored in the model's metadata.json)."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from helpers.model_card import update_card

# Temperatures searched by fit_temperature; far outside what a trained classifier needs.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0
EPS = 1e-12  # floor for probabilities before taking their log


def probs_to_logits(probs: np.ndarray) -> np.ndarray:
    """Return log-probabilities, usable as logits when a model only gives probabilities.

    softmax(log p) == p, so scaling log p by 1/T is exactly temperature scaling of the model's
    logits (which equal log p up to a per-row constant). Zeros are floored at 1e-12.
    """
    return np.log(np.clip(np.asarray(probs, np.float64), EPS, None))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Return softmax(logits / T): the temperature-scaled probabilities."""
    return softmax(np.asarray(logits, np.float64) / temperature, axis=1)


def negative_log_likelihood(logits: np.ndarray, y_true: np.ndarray, temperature: float) -> float:
    """Return the mean NLL of the true classes under softmax(logits / T)."""
    log_probs = log_softmax(np.asarray(logits, np.float64) / temperature, axis=1)
    return float(-log_probs[np.arange(len(y_true)), y_true].mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Return the temperature T minimising the NLL of softmax(logits / T) (use validation data).

    With probabilities that already had a temperature T0 applied, the logits are log(probs) and
    the model's new temperature is T0 * T.
    """
    y_true = np.asarray(y_true, np.int64)
    # Searched on log T: the NLL is smoother there and T > 0 holds by construction.
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, y_true, math.exp(log_t)),
        bounds=(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(math.exp(result.x))


def calibration_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> dict:
    """Return per-bin counts, mean confidence and accuracy of the top-1 prediction.

    Bins split [0, 1] into `n_bins` equal widths; a confidence of exactly 1 goes in the last bin.
    """
    probs = np.asarray(probs)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    index = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    safe = np.maximum(counts, 1)  # empty bins report 0 and weigh nothing
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1),
        "count": counts,
        "confidence": np.bincount(index, confidence, minlength=n_bins) / safe,
        "accuracy": np.bincount(index, correct, minlength=n_bins) / safe,
    }


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Return the ECE: the count-weighted mean |accuracy - confidence| over confidence bins."""
    bins = calibration_bins(y_true, probs, n_bins)
    gaps = np.abs(bins["accuracy"] - bins["confidence"])
    return float((gaps * bins["count"]).sum() / max(1, bins["count"].sum()))


def _reliability_axes(ax: plt.Axes, y_true: np.ndarray, probs: np.ndarray, n_bins: int) -> None:
    bins = calibration_bins(y_true, probs, n_bins)
    edges, width = bins["edges"][:-1], 1.0 / n_bins
    filled = bins["count"] > 0
    ax.bar(
        edges[filled],
        bins["accuracy"][filled],
        width=width,
        align="edge",
        alpha=0.7,
        edgecolor="black",
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ece = expected_calibration_error(y_true, probs, n_bins)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-1 probability)", ylabel="accuracy")
    ax.text(0.04, 0.92, f"ECE {ece:.1%}", transform=ax.transAxes)
    ax.legend(loc="lower right", fontsize=8)


def reliability_diagram(
    y_true: np.ndarray,
    probs: np.ndarray,
    n_bins: int = 15,
    probs_after: np.ndarray | None = None,
    titles: tuple[str, str] = ("before temperature scaling", "after temperature scaling"),
) -> plt.Figure:
    """Return a reliability diagram; with `probs_after`, before and after side by side."""
    panels = [probs] if probs_after is None else [probs, probs_after]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    for ax, panel, title in zip(axes[0], panels, titles, strict=False):
        _reliability_axes(ax, np.asarray(y_true), np.asarray(panel), n_bins)
        if probs_after is not None:
            ax.set_title(title)
    fig.tight_layout()
    return fig


def save_temperature(model_dir: str | os.PathLike, temperature: float) -> Path:
    """Set the model card's `temperature` on disk (atomically), leaving the rest as it is; return
    the model directory. helpers.serving.predict.Predictor divides only `output: "logits"` models
    by it, so this warns otherwise."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, not {temperature!r}")
    card = update_card(model_dir, temperature=float(temperature))
    if card.output != "logits":
        warnings.warn(
            f"{model_dir}: output is not logits, so Predictor ignores temperature", stacklevel=2
        )
    return Path(model_dir)
