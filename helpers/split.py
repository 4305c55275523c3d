"""Leak-free, stable train/val/holdout split: near-duplicate groups assigned by a hash."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SPLITS = ("train", "val", "holdout")
SPLIT_COLUMNS = ["path", "breed", "wnid", "split", "sha256", "phash", "group"]


@dataclass
class Split:
    """A split table plus the classes kept and the breeds excluded (with their photo counts)."""

    table: pd.DataFrame
    classes: list[dict]
    fractions: tuple[float, ...]
    excluded: dict[str, int] = field(default_factory=dict)


def phash_bits(phashes: Sequence[str]) -> np.ndarray:
    """Return 64-bit perceptual hashes (hex strings from imagehash) as a uint64 array."""
    return np.array([int(h, 16) for h in phashes], dtype=np.uint64)


def near_duplicate_pairs(phashes: Sequence[str], threshold: int, chunk: int = 512) -> np.ndarray:
    """Return index pairs (i < j) whose perceptual hashes differ in at most `threshold` bits."""
    bits = phash_bits(phashes)
    pairs = []
    # Brute force, vectorised in row chunks: 80k photos take seconds, with no index to get wrong.
    for start in range(0, len(bits), chunk):
        block = bits[start : start + chunk, None] ^ bits[None, :]
        rows, cols = np.nonzero(np.bitwise_count(block) <= threshold)
        rows = rows + start
        keep = rows < cols
        pairs.append(np.stack([rows[keep], cols[keep]], axis=1))
    return np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64)


def near_duplicate_groups(phashes: Sequence[str], threshold: int) -> np.ndarray:
    """Return a group label per photo: photos linked by chains of near-duplicates share one."""
    n = len(phashes)
    pairs = near_duplicate_pairs(phashes, threshold)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def split_for_key(key: str, fractions: Sequence[float], salt: str = "doggo") -> str:
    """Return the split a group key falls in: a hash of the key picks a point in [0, 1)."""
    point = int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:15], 16) / 16**15
    edges = np.cumsum(fractions)
    index = int(np.searchsorted(edges, point, side="right"))
    return SPLITS[min(index, len(SPLITS) - 1)]


def make_split(
    kept: pd.DataFrame,
    *,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    near_duplicate_threshold: int = 10,
    min_per_breed: int = 50,
    salt: str = "doggo",
) -> Split:
    """Split kept photos (manifest rows) so that no near-duplicate group spans two splits.

    A photo's split depends only on its group's key (the smallest sha256 in the group), so adding
    photos later never moves an existing one, unless a new photo joins two groups together.
    """
    if not np.isclose(sum(fractions), 1.0) or len(fractions) != len(SPLITS):
        raise ValueError(f"fractions must be three numbers summing to 1, got {list(fractions)}")
    counts = kept.groupby("breed").size()
    excluded = {b: int(n) for b, n in counts.items() if n < min_per_breed}
    table = kept[~kept["breed"].isin(excluded)].sort_values(["breed", "sha256"])
    table = table.reset_index(drop=True)
    labels = near_duplicate_groups(table["phash"].tolist(), near_duplicate_threshold)
    group_key = table.groupby(labels)["sha256"].transform("min")
    table["group"] = group_key.str[:16]
    table["split"] = [split_for_key(key, fractions, salt) for key in group_key]
    wnids = table.groupby("breed")["wnid"].first()
    classes = [{"name": b, "wnid": wnids[b] or None} for b in sorted(wnids.index)]
    return Split(table[SPLIT_COLUMNS].copy(), classes, tuple(fractions), excluded)


def cross_split_pairs(table: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Return near-duplicate pairs that sit in different splits (a leak); empty when leak-free."""
    pairs = near_duplicate_pairs(table["phash"].tolist(), threshold)
    splits = table["split"].to_numpy()
    leaks = pairs[splits[pairs[:, 0]] != splits[pairs[:, 1]]]
    return pd.DataFrame(
        {
            "path_a": table["path"].to_numpy()[leaks[:, 0]],
            "split_a": splits[leaks[:, 0]],
            "path_b": table["path"].to_numpy()[leaks[:, 1]],
            "split_b": splits[leaks[:, 1]],
        }
    )


def split_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Return photos per breed (rows) and split (columns train, val, holdout)."""
    counts = table.groupby(["breed", "split"]).size().unstack(fill_value=0)
    return counts.reindex(columns=list(SPLITS), fill_value=0)


def write_split(
    split: Split, split_dir: str | os.PathLike, raw_dir: str, params: dict, manifest_sha256: str
) -> Path:
    """Write split.csv and split.json atomically into `split_dir` and return the csv's path."""
    split_dir = Path(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    info = {
        "raw_dir": raw_dir,
        "classes": split.classes,
        "excluded": split.excluded,
        "fractions": dict(zip(SPLITS, split.fractions, strict=True)),
        "params": params,
        "manifest_sha256": manifest_sha256,
    }
    _write_atomic(split_dir / "split.csv", split.table.to_csv(index=False))
    _write_atomic(split_dir / "split.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    return split_dir / "split.csv"


def _write_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
