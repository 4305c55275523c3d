"""Splitting the photos (02_split): near-duplicates kept together, and the leak check."""

from helpers.split.assign import (
    SPLITS,
    assign_splits,
    earlier_split,
    make_split,
    moved_photos,
    near_duplicate_groups,
    near_duplicate_pairs,
    nearest_distances,
    split_counts,
    write_split,
)
from helpers.split.leaks import (
    correlated_cross_split_pairs,
    cross_breed_copies,
    nearest_in_other_splits,
    thumbnail_vectors,
)

__all__ = [
    "SPLITS",
    "assign_splits",
    "correlated_cross_split_pairs",
    "cross_breed_copies",
    "make_split",
    "moved_photos",
    "near_duplicate_groups",
    "near_duplicate_pairs",
    "nearest_distances",
    "nearest_in_other_splits",
    "earlier_split",
    "split_counts",
    "thumbnail_vectors",
    "write_split",
]
