"""Evaluation for notebook 06_evaluate, on plain arrays so it works for any model.

`y_true` holds int labels (n,), `probs` probabilities (n, k) in the split's class order.
Calibration lives in helpers.evaluation.calibration.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from PIL import Image, ImageEnhance, ImageFilter
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
from scipy.spatial.distance import squareform
from scipy.stats import binomtest
from sklearn.metrics import precision_recall_fscore_support

from helpers.hashing import file_sha256
from helpers.images import decode_image, to_rgb
from helpers.paths import is_url
from helpers.plots import image_grid
from helpers.serving.model_dir import METADATA_FILE, MODEL_FILE
from helpers.serving.predict import ImageSource, images_to_array

# Holdout top-1 of doggo.name's three models (188 breeds), the figures this project re-creates,
# keyed by the role each model plays in the course (see model_role).
ORIGINAL_TOP1 = {"simple_cnn": 0.024, "xception_scratch": 0.641, "transfer": 0.827}
ROLE_LABELS = {
    "simple_cnn": "simple CNN",
    "xception_scratch": "Xception from scratch",
    "transfer": "ImageNet transfer",
    "imagenet": "ImageNet classifier",
}
PREDICT_CHUNK = 256  # images decoded at once: bounds memory on 8k-photo splits

Corruption = Callable[[Image.Image], Image.Image]


# ---- models ------------------------------------------------------------------------------------


def model_role(metadata: Mapping[str, Any]) -> str:
    """Return the role a saved model plays: simple_cnn, xception_scratch, transfer or imagenet."""
    name = str(metadata["name"])
    if name in ("simple_cnn", "xception_scratch"):
        return name
    if name.endswith("_transfer"):
        return "transfer"
    if name.startswith("imagenet-"):
        # helpers.serving.default_model: ImageNet's own classifier, not trained here
        return "imagenet"
    return name


def model_label(metadata: Mapping[str, Any]) -> str:
    """Return a readable model name: its role, with the backbone for ImageNet-based models."""
    role = model_role(metadata)
    label = ROLE_LABELS.get(role, str(metadata["name"]))
    if role in ("transfer", "imagenet") and metadata.get("backbone"):
        return f"{label} ({metadata['backbone']})"
    return label


# ---- classes and predictions -------------------------------------------------------------------


def class_mapping(model_classes: Sequence[dict], split_classes: Sequence[dict]) -> np.ndarray:
    """Return, per split class, the index of the matching model output.

    A pair matches by wnid when both have one, else by name (case-insensitive). Raises
    ValueError naming the split classes with no match (or sharing one model output).
    """
    by_wnid = {c["wnid"]: i for i, c in enumerate(model_classes) if c.get("wnid")}
    by_name = {c["name"].casefold(): i for i, c in enumerate(model_classes)}
    columns, missing = [], []
    for cls in split_classes:
        wnid = cls.get("wnid")
        index = by_wnid.get(wnid) if wnid else None
        if index is None:
            index = by_name.get(cls["name"].casefold())
            other = model_classes[index].get("wnid") if index is not None else None
            if wnid and other and other != wnid:
                index = None  # same name, different ImageNet synset: not the same breed
        if index is None:
            missing.append(f"{cls['name']} ({wnid or 'no wnid'})")
        columns.append(index)
    if missing:
        raise ValueError(f"split classes with no model class: {', '.join(missing)}")
    if len(set(columns)) != len(columns):
        raise ValueError("several split classes map to the same model class")
    return np.array(columns, dtype=np.int64)


def restrict_probabilities(probs: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Return probs[:, columns] renormalised to sum to 1 (the probability given one of them)."""
    kept = np.asarray(probs, np.float64)[:, columns]
    total = kept.sum(axis=1, keepdims=True)
    # A row with no mass on the kept classes carries no information: make it uniform.
    return np.where(total > 0, kept / np.where(total > 0, total, 1.0), 1.0 / len(columns))


def _cache_key(model_dir: Path, split_dir: Path, split: str) -> str:
    metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    metadata.pop("metrics", None)  # writing the scores back must not invalidate the predictions
    parts = {
        "metadata": metadata,
        "model_sha256": file_sha256(model_dir / MODEL_FILE),
        "split_csv_sha256": file_sha256(split_dir / "split.csv"),
        "split_json_sha256": file_sha256(split_dir / "split.json"),
        "split": split,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _predict_paths(predictor: Any, paths: Sequence[Path], columns: np.ndarray) -> np.ndarray:
    chunks = []
    for start in range(0, len(paths), PREDICT_CHUNK):
        batch = images_to_array(paths[start : start + PREDICT_CHUNK], predictor.image_size)
        chunks.append(restrict_probabilities(predictor.probabilities(batch), columns))
    return np.concatenate(chunks).astype(np.float32)


def predict_split(
    predictor: Any,
    split_dir: str | os.PathLike,
    split: str = "holdout",
    cache_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Return (y_true, probs, paths) for one split of a split manifest, cached in an .npz.

    `predictor` is a helpers.serving.predict.Predictor or a model directory (loaded only on a cache
    miss).
    Probabilities (float32) are restricted to the split's classes, in split.json order, and
    renormalised; for `output: "logits"` models they include the metadata's temperature. The cache
    (`<cache_dir or split_dir/predictions>/<model>_<split>.npz`) is re-used while the model files
    (metadata minus `metrics`, model.keras) and split.csv/split.json are unchanged.
    """
    split_dir = Path(split_dir)
    model_dir = Path(getattr(predictor, "model_dir", predictor))
    cache = Path(cache_dir or split_dir / "predictions") / f"{model_dir.name}_{split}.npz"
    key = _cache_key(model_dir, split_dir, split)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            if str(stored["key"]) == key:
                return (
                    stored["y_true"],
                    stored["probs"],
                    [_as_path(str(p)) for p in stored["paths"]],
                )
    y_true, probs, paths = _predict_uncached(predictor, model_dir, split_dir, split)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as handle:  # a handle, so numpy adds no second .npz suffix
        np.savez(handle, key=key, y_true=y_true, probs=probs, paths=[str(p) for p in paths])
    os.replace(tmp, cache)
    return y_true, probs, paths


def _predict_uncached(
    predictor: Any, model_dir: Path, split_dir: Path, split: str
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    # Both load TensorFlow, so only when predicting; read_split is the one split reader.
    from helpers.serving.predict import Predictor
    from helpers.training.data import read_split

    table, classes = read_split(split_dir)
    rows = table[table["split"] == split]
    if rows.empty:
        raise ValueError(f"{split_dir / 'split.csv'} has no rows in split {split!r}")
    if not hasattr(predictor, "probabilities"):
        predictor = Predictor(model_dir)
    y_true = rows["label"].to_numpy(np.int64)
    paths = [_as_path(f) for f in rows["file"]]
    columns = class_mapping(predictor.classes, classes)
    return y_true, _predict_paths(predictor, paths, columns), paths


def _as_path(file: str) -> Any:
    """A local photo as a Path; a bucket URL stays a string (Path would fold its '//')."""
    return file if is_url(file) else Path(file)


# ---- metrics -----------------------------------------------------------------------------------


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


# ---- confusion ---------------------------------------------------------------------------------


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


# ---- robustness --------------------------------------------------------------------------------


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


# ---- comparison --------------------------------------------------------------------------------


def comparison_table(
    rows: Sequence[dict[str, Any]], original: Mapping[str, float] = ORIGINAL_TOP1
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
