"""Predictions of a saved model on a split, matched to the split's classes and cached."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from helpers.formats import METADATA_FILE, MODEL_FILE, SPLIT_CSV, SPLIT_JSON
from helpers.hashing import file_sha256
from helpers.paths import is_url
from helpers.serving.predict import images_to_array

PREDICT_CHUNK = 256  # images decoded at once: bounds memory on 8k-photo splits


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
        "split_csv_sha256": file_sha256(split_dir / SPLIT_CSV),
        "split_json_sha256": file_sha256(split_dir / SPLIT_JSON),
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
