"""Leak-free, stratified, stable train/val/holdout split of near-duplicate groups."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from helpers.atomic import write_atomic
from helpers.formats import SPLIT_CSV, SPLIT_JSON, SPLITS

# Names the assignment rule in split.json; an earlier split made by another rule is not kept.
ASSIGNMENT = "stratified-by-deficit"
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


def near_duplicate_pairs(
    phashes: Sequence[str], mirrors: Sequence[str], threshold: int, chunk: int = 512
) -> np.ndarray:
    """Return index pairs (i < j) within `threshold` bits, comparing each photo with the other
    and with the other's mirror image (pass `phashes` as `mirrors` for a plain comparison)."""
    bits, flipped = phash_bits(phashes), phash_bits(mirrors)
    pairs = []
    # Brute force, vectorised in row chunks: 80k photos take seconds, with no index to get wrong.
    for start in range(0, len(bits), chunk):
        rows = slice(start, start + chunk)
        distance = _mirror_aware_bits(bits, flipped, rows)
        i, j = np.nonzero(distance <= threshold)
        i = i + start
        pairs.append(np.stack([i[i < j], j[i < j]], axis=1))
    return np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64)


def _mirror_aware_bits(bits: np.ndarray, flipped: np.ndarray, rows: slice) -> np.ndarray:
    """Return the bits differing between photos `rows` and every photo, either one mirrored."""
    return np.minimum.reduce([
        np.bitwise_count(bits[rows, None] ^ bits[None, :]),
        np.bitwise_count(bits[rows, None] ^ flipped[None, :]),
        np.bitwise_count(flipped[rows, None] ^ bits[None, :]),
    ])  # fmt: skip


def nearest_distances(phashes: Sequence[str], mirrors: Sequence[str], chunk: int = 512):
    """Return each photo's mirror-aware pHash distance (bits) to its nearest other photo."""
    bits, flipped = phash_bits(phashes), phash_bits(mirrors)
    nearest = np.full(len(bits), 64)
    for start in range(0, len(bits), chunk):
        rows = slice(start, start + chunk)
        distance = _mirror_aware_bits(bits, flipped, rows).astype(int)
        distance[np.arange(distance.shape[0]), np.arange(start, start + distance.shape[0])] = 64
        nearest[rows] = distance.min(axis=1)
    return nearest


def near_duplicate_groups(
    phashes: Sequence[str], mirrors: Sequence[str], threshold: int, links: np.ndarray | None = None
):
    """Return a group label per photo: photos linked by chains of near duplicates share one.

    `links` (index pairs) are linked too: copies another method found that the hash missed.
    """
    n = len(phashes)
    pairs = near_duplicate_pairs(phashes, mirrors, threshold)
    if links is not None and len(links):
        pairs = np.concatenate([pairs, np.asarray(links, dtype=pairs.dtype).reshape(-1, 2)])
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def hash_point(key: str, salt: str = "doggo") -> float:
    """Return the point in [0, 1) that a hash of `key` picks: the order groups are assigned in."""
    return int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:15], 16) / 16**15


def assign_splits(
    table: pd.DataFrame, fractions: Sequence[float], salt: str, previous: dict[str, str]
) -> list[str]:
    """Return a split per photo (rows with breed, sha256 and group_key columns).

    Groups with photos in `previous` (sha256 -> split) keep that split (their photos' most common
    one). The other groups, in the order of a hash of their key, each go to the split its breeds
    are furthest below their fractions in, counting what is already assigned.
    """
    share = np.asarray(fractions, dtype=float)
    counts = {b: np.zeros(len(SPLITS)) for b in table["breed"].unique()}
    chosen: dict[str, int] = {}
    fresh = []
    for key, group in table.groupby("group_key", sort=True):
        old = [SPLITS.index(previous[s]) for s in group["sha256"] if s in previous]
        if old:  # earlier photos never move (unless a new photo bridged two old groups)
            chosen[key] = max(set(old), key=lambda i: (old.count(i), -i))
            for breed in group["breed"]:
                counts[breed][chosen[key]] += 1
        else:
            fresh.append((hash_point(key, salt), key, group["breed"].tolist()))
    for _, key, breeds in sorted(fresh):
        # How many photos short of its fraction each split would be, summed over the group.
        deficit = sum(share * (counts[b].sum() + 1) - counts[b] for b in breeds)
        chosen[key] = int(np.argmax(deficit))  # ties go to the first split: train
        for breed in breeds:
            counts[breed][chosen[key]] += 1
    return [SPLITS[chosen[key]] for key in table["group_key"]]


def make_split(
    kept: pd.DataFrame,
    *,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    near_duplicate_threshold: int = 10,
    min_per_breed: int = 50,
    salt: str = "doggo",
    previous: pd.DataFrame | None = None,
    links: Sequence[tuple[str, str]] = (),
) -> Split:
    """Split kept photos (manifest rows) so that no near-duplicate group spans two splits.

    Each breed is split as close to `fractions` as its count allows. With `previous` (an earlier
    split table), its photos keep their splits and only new groups are assigned. `links` are
    sha256 pairs to keep together as well (copies the independent leak check found).
    """
    if not np.isclose(sum(fractions), 1.0) or len(fractions) != len(SPLITS):
        raise ValueError(f"fractions must be three numbers summing to 1, got {list(fractions)}")
    counts = kept.groupby("breed").size()
    excluded = {b: int(n) for b, n in counts.items() if n < min_per_breed}
    table = kept[~kept["breed"].isin(excluded)].sort_values(["breed", "sha256"])
    table = table.reset_index(drop=True)
    row = {sha: i for i, sha in enumerate(table["sha256"])}
    extra = np.array([(row[a], row[b]) for a, b in links if a in row and b in row], dtype=np.int64)
    labels = near_duplicate_groups(
        table["phash"].tolist(), table["phash_mirror"].tolist(), near_duplicate_threshold, extra
    )
    table["group_key"] = table.groupby(labels)["sha256"].transform("min")
    table["group"] = table["group_key"].str[:16]
    earlier = {} if previous is None else previous.set_index("sha256")["split"].to_dict()
    table["split"] = assign_splits(table, fractions, salt, earlier)
    wnids = table.groupby("breed")["wnid"].first()
    classes = [{"name": b, "wnid": wnids[b] or None} for b in sorted(wnids.index)]
    return Split(table[SPLIT_COLUMNS].copy(), classes, tuple(fractions), excluded)


def earlier_split(split_dir: str | os.PathLike, fractions: Sequence[float], salt: str):
    """Return an earlier split.csv made with the same fractions and salt, or None (none, or its
    assignments would not be this split's)."""
    csv_path, json_path = Path(split_dir) / SPLIT_CSV, Path(split_dir) / SPLIT_JSON
    if not (csv_path.is_file() and json_path.is_file()):
        return None
    info = json.loads(json_path.read_text())
    params = info.get("params", {})
    same_rule = info.get("assignment") == ASSIGNMENT and params.get("salt") == salt
    if not same_rule or list(params.get("fractions", [])) != list(fractions):
        return None
    return pd.read_csv(csv_path, dtype=str, keep_default_na=False)


def moved_photos(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Return the photos in both split tables whose split differs (sha256, split_before/after)."""
    both = before[["sha256", "split"]].merge(
        after[["sha256", "split"]], on="sha256", suffixes=("_before", "_after")
    )
    return both[both["split_before"] != both["split_after"]].reset_index(drop=True)


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
        "assignment": ASSIGNMENT,
        "classes": split.classes,
        "excluded": split.excluded,
        "fractions": dict(zip(SPLITS, split.fractions, strict=True)),
        "params": params,
        "manifest_sha256": manifest_sha256,
    }
    write_atomic(split_dir / SPLIT_CSV, split.table.to_csv(index=False))
    write_atomic(split_dir / SPLIT_JSON, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return split_dir / SPLIT_CSV
