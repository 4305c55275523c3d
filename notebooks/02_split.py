# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 02 · Split the photos 70/20/10, without leaks
#
# A model is only as honest as its test set. In this notebook you will learn how to split a
# scraped photo collection into **train** (70%), **validation** (20%) and **holdout** (10%) so that
#
# - the split is **stratified**: every breed is split 70/20/10, not just the whole collection;
# - the split is **stable**: scraping more photos later never moves a photo to another split,
#   because a photo's split comes from a hash of its content, not from a shuffle;
# - the split has **no leaks**: near-duplicate photos (the same picture resized, re-compressed or
#   cropped, common in image-search results) always land in the same split, so no holdout photo
#   has a twin the model saw in training.
#
# The input is the raw data set written by `01_scrape`; the output is `split/split.csv` and
# `split/split.json`, which every training notebook reads.

# %% tags=["parameters"]
data_dir = "data/full"  # where 01_scrape wrote raw/; split/ is written beside it
fractions = [0.7, 0.2, 0.1]  # train, val, holdout
near_duplicate_threshold = 10  # perceptual-hash bits under which two photos count as twins
min_per_breed = 50  # breeds with fewer kept photos are excluded (and listed below)
salt = "doggo"  # changes every assignment; keep it fixed once a split is in use

# %% tags=["injected-parameters"]
# Parameters
data_dir = "data/demo"
min_per_breed = 50


# %% [markdown] tags=[]
# We read the manifest that `01_scrape` wrote and keep the photos that passed every check.

# %% tags=[]
from helpers.hashing import file_sha256
from helpers.paths import raw_dir, shown_path, split_dir
from helpers.plots import image_grid, stacked_counts, use_style
from helpers.scrape import read_manifest
from helpers.split import (
    cross_split_pairs,
    make_split,
    near_duplicate_groups,
    split_counts,
    write_split,
)

use_style()
raw = raw_dir(data_dir)
manifest = read_manifest(raw)
kept = manifest[manifest["status"] == "kept"].copy()
print(f"{len(kept)} kept photos of {kept['breed'].nunique()} breeds in {shown_path(raw)}")

# %% [markdown] tags=[]
# ## Near duplicates
#
# `01_scrape` already dropped photos that are almost identical (a few bits of perceptual hash
# apart). Photos that are merely *very similar* (the same dog in the same place, a crop of the
# same picture) remain, and they would leak if one landed in train and its twin in holdout. We
# link every pair within `near_duplicate_threshold` bits into groups; a group is split as one.

# %% tags=[]
groups = near_duplicate_groups(kept["phash"].tolist(), near_duplicate_threshold)
kept["group_label"] = groups
sizes = kept.groupby("group_label").size()
print(
    f"{len(sizes)} groups; {int((sizes > 1).sum())} hold more than one photo "
    f"({int(sizes[sizes > 1].sum())} photos), the largest holds {int(sizes.max())}"
)

# %% [markdown] tags=[]
# Here are a few of those groups, one row each, so you can judge the threshold by eye.

# %% tags=[]
multi = sizes[sizes > 1].sort_values(ascending=False).index[:4]
rows = [kept[kept["group_label"] == g].head(4) for g in multi]
paths = [raw / p for r in rows for p in r["path"]]
titles = [b for r in rows for b in r["breed"]]
if paths:
    fig = image_grid(paths, titles, ncols=4)
else:
    print("No near-duplicate groups: every photo stands alone.")

# %% [markdown] tags=[]
# ## The split
#
# Each group's key is the smallest sha256 among its photos; a hash of the key picks a point in
# [0, 1), and the point picks the split. Breeds with fewer than `min_per_breed` photos are
# excluded here, loudly, rather than trained on a handful of examples.

# %% tags=[]
split = make_split(
    kept,
    fractions=fractions,
    near_duplicate_threshold=near_duplicate_threshold,
    min_per_breed=min_per_breed,
    salt=salt,
)
if split.excluded:
    print(f"Excluded {len(split.excluded)} breeds with fewer than {min_per_breed} photos:")
    for breed, count in sorted(split.excluded.items()):
        print(f"  {breed}: {count}")
else:
    print(f"No breed excluded: every breed has at least {min_per_breed} photos.")
counts = split_counts(split.table)
print(counts.sum().to_string())

# %% [markdown] tags=[]
# Because the assignment is a hash, each breed's shares are close to, not exactly, 70/20/10.
# The chart shows photos per breed per split.

# %% tags=[]
fig = stacked_counts(counts, "Photos per breed and split")
# %% tags=[]
shares = counts.div(counts.sum(axis=1), axis=0)
print("Share of each breed's photos per split (min / mean / max over breeds):")
print(shares.agg(["min", "mean", "max"]).round(3).to_string())
empty = counts[(counts == 0).any(axis=1)]
print(f"Breeds with an empty split: {len(empty)}")

# %% [markdown] tags=[]
# ## Proof of no leaks
#
# We check every pair of photos in the whole data set, across breeds too, for near-duplicates that
# sit in different splits. This count must be zero.

# %% tags=[]
leaks = cross_split_pairs(split.table, near_duplicate_threshold)
print(f"Cross-split near-duplicate pairs (threshold {near_duplicate_threshold} bits): {len(leaks)}")
assert leaks.empty, leaks.head()

# %% [markdown] tags=[]
# Finally we write the split manifest, tied to the exact raw manifest it came from by its sha256.

# %% tags=[]
out = write_split(
    split,
    split_dir(data_dir),
    raw_dir=shown_path(raw),
    params={
        "fractions": fractions,
        "near_duplicate_threshold": near_duplicate_threshold,
        "min_per_breed": min_per_breed,
        "salt": salt,
    },
    manifest_sha256=file_sha256(raw / "manifest.csv"),
)
print(f"Wrote {shown_path(out)}: {len(split.table)} photos, {len(split.classes)} classes")

# %% [markdown] tags=[]
# ## Summary
#
# - Every breed is split close to 70/20/10 by a hash of its near-duplicate group, so the split is
#   reproducible anywhere and stable when photos are added.
# - Near duplicates never straddle two splits: the leak count above is zero, checked over all
#   pairs.
# - Breeds too small to learn from are excluded by a parameter and listed, never dropped silently.
#
# Next, `03_baseline` trains the original's simple CNN on `split/split.csv`.
