"""An independent leak check: pixel correlation of small thumbnails, not perceptual hashes.

02_split groups photos by perceptual hash; checking the split with that same hash at the same
threshold could only ever agree with itself. This check compares pixels instead: every photo's
16x16 greyscale thumbnail against every photo, and its mirror image, in the other splits.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

THUMB_SIDE = 16
LEAK_CORRELATION = 0.93  # measured: unrelated demo photos reach 0.90, a 5% crop stays above 0.93


def thumbnail_vectors(paths: Sequence[str | os.PathLike]) -> tuple[np.ndarray, np.ndarray]:
    """Return unit-length, zero-mean 16x16 greyscale thumbnails of the photos and of their mirror
    images, one row each, so a dot product of two rows is their correlation."""
    plain, mirrored = [], []
    for path in paths:
        with Image.open(path) as image:
            small = image.convert("L").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
        plain.append(_normalized(small))
        mirrored.append(_normalized(ImageOps.mirror(small)))
    return np.stack(plain), np.stack(mirrored)


def _normalized(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.float32).ravel()
    centred = pixels - pixels.mean()
    return centred / max(float(np.linalg.norm(centred)), 1e-6)  # a flat image correlates with 0


def nearest_in_other_splits(
    plain: np.ndarray, mirrored: np.ndarray, splits: Sequence[str], chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per photo, the highest correlation of its thumbnail with any photo's thumbnail or
    mirror image in another split (or other label: a breed), and that photo's index (-1 when no
    other split exists)."""
    labels = np.asarray(splits)
    best = np.full(len(plain), -1.0)
    partner = np.full(len(plain), -1)
    for start in range(0, len(plain), chunk):
        rows = slice(start, start + chunk)
        score = np.maximum(plain[rows] @ plain.T, plain[rows] @ mirrored.T)
        score[labels[rows, None] == labels[None, :]] = -np.inf  # same split: not a leak
        partner[rows] = np.argmax(score, axis=1)
        best[rows] = score[np.arange(len(score)), partner[rows]]
    partner[~np.isfinite(best)] = -1
    return np.where(np.isfinite(best), best, -1.0), partner


def correlated_cross_split_pairs(
    table: pd.DataFrame, paths: Sequence[str | os.PathLike], threshold: float = LEAK_CORRELATION
) -> pd.DataFrame:
    """Return each photo whose thumbnail correlates at `threshold` or more with a photo (or its
    mirror image) in another split, with that photo: leaks. `paths` are the rows' image files."""
    return _correlated_across(table, paths, "split", threshold)


def cross_breed_copies(
    table: pd.DataFrame, paths: Sequence[str | os.PathLike], threshold: float = LEAK_CORRELATION
) -> pd.DataFrame:
    """Return each photo whose thumbnail correlates at `threshold` or more with a photo (or its
    mirror image) listed under another breed, with that photo: one photo, two conflicting
    labels (image search mislabels). `paths` are the rows' image files."""
    return _correlated_across(table, paths, "breed", threshold)


def _correlated_across(
    table: pd.DataFrame, paths: Sequence[str | os.PathLike], column: str, threshold: float
) -> pd.DataFrame:
    plain, mirrored = thumbnail_vectors(paths)
    best, partner = nearest_in_other_splits(plain, mirrored, table[column].to_numpy())
    found = np.nonzero(best >= threshold)[0]
    names, labels = table["path"].to_numpy(), table[column].to_numpy()
    return pd.DataFrame(
        {
            "path_a": names[found],
            f"{column}_a": labels[found],
            "path_b": names[partner[found]],
            f"{column}_b": labels[partner[found]],
            "correlation": best[found],
        }
    )
