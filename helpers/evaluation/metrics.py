"""Metrics on plain arrays: `y_true` int labels (n,), `probs` probabilities (n, k) in the
split's class order; hits are per-photo 0/1 arrays, compared in pairs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import precision_recall_fscore_support


def topk_hits(y_true: np.ndarray, probs: np.ndarray, k: int) -> np.ndarray:
    """Return 1.0 where the true class is among the k most probable, else 0.0 (ties as argmax)."""
    true_p = probs[np.arange(len(y_true)), y_true][:, None]
    before = np.arange(probs.shape[1])[None, :] < y_true[:, None]
    rank = (probs > true_p).sum(axis=1) + ((probs == true_p) & before).sum(axis=1)
    return (rank < k).astype(np.float64)


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Return the share of examples whose true class is among the k most probable.

    Ties rank the lower class index first, as argmax does, so a constant output scores no better
    than chance.
    """
    return float(topk_hits(np.asarray(y_true), np.asarray(probs), k).mean())


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the unweighted mean F1 over the labels present in y_true or y_pred (as sklearn)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.union1d(y_true, y_pred)
    n = int(labels.max()) + 1
    tp = np.bincount(y_true[y_true == y_pred], minlength=n)[labels]
    support = np.bincount(y_true, minlength=n)[labels]
    predicted = np.bincount(y_pred, minlength=n)[labels]
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (support + predicted); every label here has one > 0
    return float(np.mean(2 * tp / (support + predicted)))


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    probs: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Return the percentile bootstrap (1 - alpha) interval of metric_fn(y_true, probs).

    Examples are resampled with replacement; `probs` may be any per-example array (e.g. y_pred).
    """
    rng = np.random.default_rng(seed)
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    n = len(y_true)
    scores = []
    for _ in range(n_boot):  # one resample at a time: (n_boot, n) indices can be 100s of MB
        idx = rng.integers(0, n, n)
        scores.append(metric_fn(y_true[idx], probs[idx]))
    low, high = np.quantile(scores, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _mean_hits(_y_true: np.ndarray, hits: np.ndarray) -> float:
    return float(np.mean(hits))


def summary_row(
    name: str,
    y_true: np.ndarray,
    probs: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    role: str | None = None,
) -> dict[str, Any]:
    """Return top-1, top-5 and macro F1 with their 95% bootstrap intervals, for one model.

    `role` (see model_role) is what comparison_table matches the original's figures by.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    y_pred = probs.argmax(axis=1)
    row: dict[str, Any] = {"model": name, "role": role, "n": len(y_true)}
    # Per-example hits make each top-k resample a mean instead of a sort.
    for k in (1, 5):
        hits = topk_hits(y_true, probs, k)
        row[f"top{k}"] = float(hits.mean())
        row[f"top{k}_low"], row[f"top{k}_high"] = bootstrap_ci(
            _mean_hits, y_true, hits, n_boot, seed
        )
    row["macro_f1"] = macro_f1(y_true, y_pred)
    row["macro_f1_low"], row["macro_f1_high"] = bootstrap_ci(macro_f1, y_true, y_pred, n_boot, seed)
    return row


def per_breed_report(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """Return precision, recall, f1 and support per breed (0 where undefined), in class order."""
    labels = np.arange(len(class_names))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=pd.Index(list(class_names), name="breed"),
    )


def mcnemar(hits_a: np.ndarray, hits_b: np.ndarray) -> tuple[int, int, float]:
    """Return (a_only, b_only, p): photos only model a gets right, only b does, and McNemar's
    exact two-sided p-value (with no real difference each disagreement is a coin toss)."""
    hits_a, hits_b = np.asarray(hits_a, bool), np.asarray(hits_b, bool)
    a_only, b_only = int(np.sum(hits_a & ~hits_b)), int(np.sum(~hits_a & hits_b))
    p_value = binomtest(a_only, a_only + b_only).pvalue if a_only + b_only else 1.0
    return a_only, b_only, float(p_value)


def paired_comparison(
    hits_a: np.ndarray, hits_b: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Compare two models' per-photo hits on the same photos: the accuracy difference a - b with
    its paired bootstrap 95% interval, and McNemar's test on the photos where they disagree."""
    hits_a, hits_b = np.asarray(hits_a, np.float64), np.asarray(hits_b, np.float64)
    a_only, b_only, p_value = mcnemar(hits_a, hits_b)
    diff = hits_a - hits_b  # resampling photos, not models, keeps each pair together
    low, high = bootstrap_ci(_mean_hits, diff, diff, n_boot, seed)
    return {"difference": float(diff.mean()), "low": low, "high": high,
            "a_only": a_only, "b_only": b_only, "p_value": p_value}  # fmt: skip
