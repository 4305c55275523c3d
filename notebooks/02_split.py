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
#     display_name: doggo (reproducible)
#     language: python
#     name: doggo
# ---

# %% [markdown] tags=[]
# # 02 · Split the photos 70/20/10, without leaks
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/notebooks/02_split.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/notebooks/02_split.ipynb)
#
# A model is only as honest as its test set. In this notebook you will learn how to split a
# scraped photo collection into **train** (70%), **validation** (20%) and **holdout** (10%) so that
#
# - the split has **no leaks**: near-duplicate photos (the same picture resized, recompressed,
#   cropped or mirrored, common in image-search results) always land in the same split, so no
#   holdout photo has a twin the model saw in training;
# - the split is **stratified**: every breed is split 70/20/10, as closely as its count allows;
# - the split is **stable**: scraping more photos later never moves a photo to another split;
# - the "no leaks" claim is **checked by a second, independent method**, one that would find a
#   leak the first method missed.
#
# The input is the raw data set written by `01_scrape`; the output is `split/split.csv` and
# `split/split.json`, which every training notebook reads.

# %% tags=["parameters"]
data_dir = "data/demo"  # 01_scrape wrote raw/ here; split/ goes beside it (full: "data/full")
fractions = [0.7, 0.2, 0.1]  # train, val, holdout
near_duplicate_threshold = 10  # mirror-aware perceptual-hash bits under which photos are twins
min_per_breed = 50  # breeds with fewer kept photos are excluded (and listed below)
salt = "doggo"  # changes the order groups are assigned in; keep it fixed once a split is in use
leak_correlation = 0.93  # thumbnail correlation at which the independent check calls a leak
copies_across_breeds = "drop"  # "drop": a photo listed under two breeds leaves the data set (its
#   labels conflict); "keep": it stays, in one split, under both labels

# %% [markdown] tags=[]
# We read the manifest that `01_scrape` wrote and keep the photos that passed every check.

# %% tags=[]
import inspect

import imagehash
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.collect import read_manifest
from helpers.hashing import file_sha256
from helpers.paths import project_path, raw_dir, shown_path, split_dir
from helpers.plots import image_grid, stacked_counts, use_style
from helpers.split import (
    SPLITS,
    assign_splits,
    correlated_cross_split_pairs,
    cross_breed_copies,
    earlier_split,
    make_split,
    moved_photos,
    near_duplicate_groups,
    near_duplicate_pairs,
    nearest_distances,
    nearest_in_other_splits,
    split_counts,
    thumbnail_vectors,
    write_split,
)

use_style()
raw = raw_dir(data_dir)
manifest = read_manifest(raw)
kept = manifest[manifest["status"] == "kept"].sort_values(["breed", "sha256"])
kept = kept.reset_index(drop=True)
print(f"{len(kept)} kept photos of {kept['breed'].nunique()} breeds in {shown_path(raw)}")

# %% [markdown] tags=[]
# ## A near-duplicate key that sees mirror images
#
# `01_scrape` stored two **perceptual hashes** (pHash) per photo: 64 bits describing its coarse
# light and dark pattern, of the photo as stored (`phash`) and of its mirror image
# (`phash_mirror`). Two photos are near duplicates when few bits differ. A mirror image flips
# about half the bits of a pHash, yet training flips photos left-right, so to the model a mirrored
# copy is the same photo. The distance we use is therefore the smallest of three comparisons:


# %% tags=[]
def mirror_aware_bits(a: pd.Series, b: pd.Series) -> int:
    """Fewest differing bits between photo a and photo b, either one mirrored."""
    ha, hb = imagehash.hex_to_hash(a["phash"]), imagehash.hex_to_hash(b["phash"])
    ma, mb = imagehash.hex_to_hash(a["phash_mirror"]), imagehash.hex_to_hash(b["phash_mirror"])
    return int(min(ha - hb, ha - mb, ma - hb))


plain = near_duplicate_pairs(kept["phash"], kept["phash"], near_duplicate_threshold)
aware = near_duplicate_pairs(kept["phash"], kept["phash_mirror"], near_duplicate_threshold)
only_mirror = sorted(set(map(tuple, aware)) - set(map(tuple, plain)))
print(f"Pairs within {near_duplicate_threshold} bits: {len(plain)} by plain pHash, "
      f"{len(aware)} mirror-aware; {len(only_mirror)} of them are mirror images.")  # fmt: skip
for i, j in only_mirror[:10]:
    a, b = kept.loc[i], kept.loc[j]
    plain_bits = imagehash.hex_to_hash(a["phash"]) - imagehash.hex_to_hash(b["phash"])
    print(f"  {a['breed']} / {b['breed']}: {plain_bits} bits apart plainly, "
          f"{mirror_aware_bits(a, b)} mirror-aware")  # fmt: skip

# %% [markdown] tags=[]
# How far apart are photos that are not copies? The histogram of each photo's distance to its
# nearest other photo shows where the threshold sits: copies at the far left, near 0 bits, and
# the bulk of unrelated photos well to the right of it, with a thin tail reaching towards it.

# %% tags=[]
nearest = nearest_distances(kept["phash"], kept["phash_mirror"])
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(nearest, bins=np.arange(0, 34) - 0.5)
ax.axvline(near_duplicate_threshold + 0.5, color="C3", ls="--", label="02's threshold")
ax.set_xlabel("mirror-aware pHash bits to the nearest other photo")
ax.set_ylabel("photos")
ax.set_yscale("log")
ax.set_title("Nearest neighbour of every photo")
ax.legend()
print(f"{int((nearest <= near_duplicate_threshold).sum())} photos have a twin within "
      f"{near_duplicate_threshold} bits; the median photo's nearest is {int(np.median(nearest))} bits away")  # fmt: skip

# %% [markdown] tags=[]
# ## Near-duplicate groups
#
# `01_scrape` already dropped copies of a photo *within a breed*. What reaches this notebook can
# still hold copies listed under two breeds (image search mislabels) and crops that moved the
# hash past 01's strict limit. We link every pair within `near_duplicate_threshold` bits, across
# breeds too, into groups; a group is split as one.

# %% tags=[]
kept["group_label"] = near_duplicate_groups(
    kept["phash"], kept["phash_mirror"], near_duplicate_threshold
)
sizes = kept.groupby("group_label").size()
multi = sizes[sizes > 1].index
print(f"{len(sizes)} groups; {len(multi)} hold more than one photo "
      f"({int(sizes[multi].sum())} photos), the largest holds {int(sizes.max())}")  # fmt: skip
rows = [kept[kept["group_label"] == g].head(4) for g in multi[:8]]
if rows:
    pairs = pd.concat(rows)
    fig = image_grid([raw / p for p in pairs["path"]], list(pairs["breed"]), ncols=6)

# %% [markdown] tags=[]
# Each pair of photos above is one group; judge the threshold by eye. For each group we list its
# breeds, its pHash distance, and the correlation of the two photos' small greyscale thumbnails
# (1.0: the same pattern of light and dark, the mirror image allowed; see the leak check below).
# In the demo, the `planted` column marks the copies that 01's demo site planted on purpose.

# %% tags=[]
thumbs, thumbs_mirrored = thumbnail_vectors([raw / p for p in kept["path"]])
urls_csv = project_path(data_dir) / "demo_urls.csv"  # the demo site's URL manifest, if any
site = pd.read_csv(urls_csv, dtype=str) if urls_csv.is_file() else pd.DataFrame()
copies = site[(site["expect"] == "kept") & site["original"].notna()] if len(site) else site
copied = set(copies["url"]) if len(site) else set()
report = []
for g in multi:
    i, j = kept.index[kept["group_label"] == g][:2]
    correlation = max(thumbs[i] @ thumbs[j], thumbs[i] @ thumbs_mirrored[j])
    report.append((f"{kept.loc[i, 'breed']} / {kept.loc[j, 'breed']}",
                   mirror_aware_bits(kept.loc[i], kept.loc[j]), round(float(correlation), 2),
                   bool({kept.loc[i, "url"], kept.loc[j, "url"]} & copied)))  # fmt: skip
groups_table = pd.DataFrame(report, columns=["breeds", "pHash bits", "correlation", "planted"])
print(groups_table.head(20).to_string(index=False))
if len(groups_table) > 20:
    print(f"... and {len(groups_table) - 20} more groups")
if copied:
    label = kept.set_index(["breed", "url"])["group_label"]
    original = kept.drop_duplicates("url").set_index("url")["group_label"]
    apart = [c.url for c in copies.itertuples() if label[c.breed, c.url] != original[c.original]]
    assert not apart, f"planted copies outside their original's group: {apart}"
    others = len(multi) - int(groups_table["planted"].sum())
    not_copies = groups_table.loc[~groups_table["planted"], "correlation"]
    assert (not_copies < leak_correlation).all(), "an unplanted group looks like a copy"
    print(f"All {len(copied)} planted copies share a group with their original; "
          f"{others} other groups join photos that are not copies.")  # fmt: skip

# %% [markdown] tags=[]
# The planted copies correlate near 1.0 (the 8% crop less); the other groups correlate far less:
# they are unrelated photos that happen to sit `near_duplicate_threshold` bits apart. That is the
# price of a generous threshold, and a cheap one: two unrelated photos share a split, while a
# missed copy would leak.

# %% [markdown] tags=[]
# ## One photo, two breeds
#
# A group keeps copies in one split, but a copy listed under two breeds also carries two labels,
# and at most one is right: training on both teaches the model that the photo is either breed.
# We find such photos with the independent thumbnail check (the same pixels, the mirror image
# allowed, under another breed) rather than the groups, which also join unrelated look-alikes.
# Predict before you run: how many of the three cross-breed copies planted by 01's demo site will
# it find, and how many unrelated pairs?

# %% tags=[]
conflicts = cross_breed_copies(kept, [raw / p for p in kept["path"]], leak_correlation)
print(f"{len(conflicts)} photos have a copy under another breed")
if len(conflicts):
    pair = [tuple(sorted(ab)) for ab in zip(conflicts["path_a"], conflicts["path_b"], strict=True)]
    once = conflicts.assign(pair=pair).drop_duplicates("pair")  # each pair once, not both ways
    print(once[["breed_a", "breed_b", "correlation"]].round(3).to_string(index=False))
    fig = image_grid([raw / p for p in conflicts["path_a"]], list(conflicts["breed_a"]), ncols=6)
if copied:
    breed_of = site.drop_duplicates("url").set_index("url")["breed"]
    across = copies[[breed_of[c.original] != c.breed for c in copies.itertuples()]]
    flagged = set(kept.loc[kept["path"].isin(conflicts["path_a"]), "url"])
    assert set(across["url"]) | set(across["original"]) == flagged, flagged
    print(f"All {len(across)} planted cross-breed copies are found, with their originals, "
          "and nothing else.")  # fmt: skip
if copies_across_breeds == "drop":
    kept = kept[~kept["path"].isin(conflicts["path_a"])].reset_index(drop=True)
    print(f"Dropped all {len(conflicts)}: {len(kept)} photos of {kept['breed'].nunique()} breeds "
          "remain.")  # fmt: skip

# %% [markdown] tags=[]
# Both photos of a pair go: which of the two labels is right would take a person to decide (the
# demo's copies are of a Chihuahua listed as an Eskimo Dog, and so on), and a few photos fewer
# cost less than a confident wrong label. Set `copies_across_breeds = "keep"` to keep them.

# %% [markdown] tags=[]
# ## The split: stratified, and stable when photos are added
#
# A hash of each group's key (the smallest sha256 among its photos, salted) puts the groups in
# a fixed order, the same on every machine. Going through them in that order, each group goes
# to the split its breed is furthest short of (what the fractions ask for, counting the photos
# already assigned). So every breed ends as close to 70/20/10 as its count allows. Groups that
# hold photos of an earlier `split.csv` keep that split. Here is the whole rule:

# %% tags=[]
print(inspect.getsource(assign_splits))

# %% [markdown] tags=[]
# We read the earlier split, if `split/split.csv` exists with the same fractions and salt, and
# split. Breeds with fewer than `min_per_breed` photos are excluded here, loudly. Before trusting
# the groups, the independent leak check explained below looks for copies in different splits
# that the hash missed; any pair it finds is linked into one group and the split is made again.

# %% tags=[]
previous = earlier_split(split_dir(data_dir), fractions, salt)
options = dict(fractions=fractions, near_duplicate_threshold=near_duplicate_threshold,
               min_per_breed=min_per_breed, salt=salt)  # fmt: skip
split = make_split(kept, previous=previous, **options)
paths = [raw / p for p in split.table["path"]]
missed = correlated_cross_split_pairs(split.table, paths, leak_correlation)
sha = split.table.set_index("path")["sha256"]
pairs_found = zip(sha[missed["path_a"]], sha[missed["path_b"]], strict=True)
links = sorted({tuple(sorted(pair)) for pair in pairs_found})
print(f"Copies in different splits that the hash missed: {len(links)} pairs")
if links:
    print(missed.round(3).to_string(index=False))
    split = make_split(kept, previous=previous, links=links, **options)
if previous is not None:  # only a group a new photo bridged, or a linked pair, may move
    moved = moved_photos(previous, split.table)
    new = ~split.table["sha256"].isin(previous["sha256"])
    linked = split.table["sha256"].isin({s for pair in links for s in pair})
    may_move = split.table["group"].isin(split.table.loc[new | linked, "group"])
    assert moved["sha256"].isin(split.table.loc[may_move, "sha256"]).all(), moved
if split.excluded:
    print(f"Excluded {len(split.excluded)} breeds with fewer than {min_per_breed} photos:")
    for breed, count in sorted(split.excluded.items()):
        print(f"  {breed}: {count}")
else:
    print(f"No breed excluded: every breed has at least {min_per_breed} photos.")
counts = split_counts(split.table)
print(counts.sum().to_string())
fig = stacked_counts(counts, "Photos per breed and split")

# %% [markdown] tags=[]
# Stratified means each breed's counts are within one photo of its fractions; we check every
# breed and every split.

# %% tags=[]
target = counts.sum(axis=1).to_numpy()[:, None] * np.asarray(fractions)
off = (counts - target).abs()
print(f"Largest gap between a breed's count and its fraction: {off.to_numpy().max():.1f} photos")
assert (off <= 1).all().all(), off
holdout_share = counts["holdout"] / counts.sum(axis=1)
print(f"Holdout share per breed: {holdout_share.min():.1%} to {holdout_share.max():.1%}")

# %% [markdown] tags=[]
# **Stable.** Suppose a tenth of the photos (say those with the largest sha256) arrived in a
# later scrape. We split the rest first, then everything with that first split as the earlier
# one: no photo moves, and every breed stays within one photo of its fractions.

# %% tags=[]
later = kept["sha256"] >= sorted(kept["sha256"])[int(0.9 * len(kept))]
first = make_split(kept[~later], links=links, **options)
grown = make_split(kept, previous=first.table, links=links, **options)
moved = moved_photos(first.table, grown.table)
grown_counts = split_counts(grown.table)
grown_off = grown_counts - grown_counts.sum(axis=1).to_numpy()[:, None] * np.asarray(fractions)
print(f"{int(later.sum())} photos added; {len(moved)} earlier photos moved; largest gap "
      f"{grown_off.abs().to_numpy().max():.1f} photos")  # fmt: skip
assert moved.empty and (grown_off.abs() <= 1).all().all()

# %% [markdown] tags=[]
# The one exception: a new photo that is a near duplicate of two earlier photos in different
# splits joins their groups, and a group can sit in only one split, so the photos of the smaller
# side move (`moved_photos` lists them). Without the earlier `split.csv` there is nothing to keep:
# keep it with the data.
#
# ## An independent check for leaks
#
# Re-testing the pHash groups with the same pHash could only ever find nothing. So the proof of
# no leaks uses another method: each photo is shrunk to a 16x16 greyscale thumbnail, and its
# **correlation** (1.0: the same pattern of light and dark) with every photo in the other splits,
# and with their mirror images, is computed. Measured on the demo's shared photos, unrelated
# photos reach about 0.90, while a copy, a resized or mirrored copy, or a 5% crop stays above
# `leak_correlation`; heavier crops fall below it, so the check is a second opinion on the
# groups, not a replacement for them. It earns its place: on all 120 breeds (`params/bench.yaml`)
# it finds two Komondor photos, the same picture shifted a few pixels, that are 14 pHash bits
# apart, which is why the split above links whatever pairs it finds before the final check.

# %% tags=[]
leaks = correlated_cross_split_pairs(split.table, paths, leak_correlation)
print(f"Cross-split pairs at correlation >= {leak_correlation}: {len(leaks)}")
assert leaks.empty, leaks
best, _ = nearest_in_other_splits(*thumbnail_vectors(paths), split.table["split"])
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(best, bins=np.linspace(0, 1, 51))
ax.axvline(leak_correlation, color="C3", ls="--", label="leak_correlation")
ax.set_xlabel("highest thumbnail correlation with a photo in another split")
ax.set_ylabel("photos")
ax.set_title("The independent leak check, photo by photo")
ax.legend()
print(f"Highest correlation of any photo with another split: {best.max():.2f}")

# %% [markdown] tags=[]
# A check that cannot fail proves nothing, so we plant a leak: move one photo of a group to
# another split and run the same check on that table.

# %% tags=[]
# The photo of a multi-photo group (still whole after the drop) that correlates most with its
# twin is moved.
remaining = kept.groupby("group_label").size()
whole = [i for i, g in enumerate(multi) if remaining.get(g, 0) > 1]
closest = groups_table.loc[whole, "correlation"].idxmax() if whole else None
if closest is not None:
    victim_path = kept.loc[kept["group_label"] == multi[closest], "path"].iloc[0]
    planted = split.table.copy()
    victim = planted.index[planted["path"] == victim_path][0]
    planted.loc[victim, "split"] = next(s for s in SPLITS if s != planted.loc[victim, "split"])
    found = correlated_cross_split_pairs(planted, paths, leak_correlation)
    print(f"With one {planted.loc[victim, 'breed']} photo moved to "
          f"{planted.loc[victim, 'split']}: {len(found)} leaking photos found")  # fmt: skip
    print(found.round(3).to_string(index=False))
    assert not found.empty, "the independent check missed a planted leak"

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
        "leak_correlation": leak_correlation,
        "linked_by_leak_check": [list(pair) for pair in links],
    },
    manifest_sha256=file_sha256(raw / "manifest.csv"),
)
print(f"Wrote {shown_path(out)}: {len(split.table)} photos, {len(split.classes)} classes")

# %% [markdown] tags=[]
# ## Summary
#
# - Near duplicates, mirror images included, are grouped across breeds by a mirror-aware pHash
#   distance, and a group is never split.
# - Every breed is within one photo of 70/20/10; adding photos keeps every earlier photo in its
#   split (the exception: a new photo bridging two groups), as long as `split.csv` is kept.
# - An independent check, thumbnail correlation, finds 0 cross-split pairs in the final split
#   (any copy it finds the hash missed is linked first, and listed), and finds the leak we planted.
# - A photo listed under two breeds (found by the same thumbnail check) carries a wrong label:
#   it and its copy are dropped by default and listed.
# - Breeds too small to learn from are excluded by a parameter and listed, never dropped silently.

# %% [markdown] tags=[]
# ## Questionnaire
#
# 1. What is a leak between training and holdout, and why do near duplicates cause one?
# 2. Why does a mirror image need its own pHash, given how 03 augments photos?
# 3. Why is a group of near duplicates assigned to one split as a whole?
# 4. What does "stratified" promise per breed, and how does the rule in `assign_splits` keep it?
# 5. Why must the leak check use a different method from the one that built the groups?
# 6. What keeps a photo in its split when more photos are scraped later, and when can it move?
# 7. A photo is listed under two breeds: why is it dropped rather than kept in one split?

# %% [markdown] tags=[]
# ## Exercises
#
# 1. *Predict before you run:* raise `near_duplicate_threshold` to 16. Will the number of groups
#    with more than one photo go up a little or a lot? Look at the nearest-neighbour histogram
#    first, then run it, and judge the new groups by eye.
# 2. Set the threshold to 4 and re-run: which planted copies does the split now treat as
#    separate photos, and does the independent check catch them?
# 3. Change `salt` and compare the per-breed counts: what changes, and what stays exactly the same?
# 4. Set `fractions = [0.8, 0.1, 0.1]` and check the stratification cell: is every breed still
#    within one photo of its fractions?
# 5. Lower `leak_correlation` to 0.85: how many "leaks" does the check report now, and are they
#    copies? What does that tell you about choosing the threshold?
#
# ## Further research
#
# - Barz and Denzler (2020), "Do We Train on Test Data? Purging CIFAR of Near-Duplicates"
#   (Journal of Imaging 6(6), 41), found near-duplicates of test images in CIFAR's training
#   set. How much did models' accuracy change on the purged test set, and why?
# - Kaufman et al. (2012), "Leakage in Data Mining: Formulation, Detection, and Avoidance"
#   (ACM TKDD 6(4)): which of their kinds of leakage does 02 guard against, and which not?
# - scikit-learn's `StratifiedGroupKFold` keeps groups together and breeds balanced. When
#   would it be a better choice than a hash of each group, and what would it cost a re-run
#   that adds photos?
#
# Next, `03_baseline` trains the original's simple CNN on `split/split.csv`.
