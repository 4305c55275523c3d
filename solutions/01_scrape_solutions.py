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
# # 01 · Solutions: collecting photos
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/solutions/01_scrape_solutions.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/solutions/01_scrape_solutions.ipynb)
#
# Worked solutions to the exercises at the end of `notebooks/01_scrape`, then short answers to
# its questionnaire. Try each exercise yourself first: this notebook gives the answers away.
#
# To stay within a minute, every experiment here collects **two breeds** (Beagle and Chihuahua)
# and **20 photos per breed** from the demo site, into its own folder under `work_dir`; the
# demo's own `data/demo/raw` is only read. The demo site puts its planted items first in each
# breed's list, so 20 photos are enough for every planted item to be tried.

# %% tags=["parameters"]
data_dir = "data/demo"  # 01_scrape's output, read only (exercise 5)
source_path = "../shared/datasets/stanford-dogs-120"
work_dir = "runs/demo/solutions/01_scrape"  # every collection below is written here
breeds = ["Beagle", "Chihuahua"]
per_breed = 20

# %% [markdown] tags=[]
# Every run starts from an empty `work_dir`, so re-running this notebook gives the same output.
# `collect` runs the demo site for `breeds` and collects into `work_dir/<name>/raw`.

# %% tags=[]
import shutil

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from helpers.collect import (
    FetchPolicy,
    ImageRules,
    collect_images,
    counts_by_breed_and_reason,
    demo_site,
    read_manifest,
)
from helpers.paths import project_path, raw_dir, shown_path
from helpers.plots import use_style

use_style()
work = project_path(work_dir)
shutil.rmtree(work, ignore_errors=True)


def collect(name, breed_list=breeds, n=per_breed, **rules):
    """Collect `n` photos per breed of `breed_list` into work_dir/name/raw; return the report.

    The site always serves `breeds` too, so its planted items are the same in every run.
    """
    out = raw_dir(work / name)
    served = sorted(set(breeds) | set(breed_list))
    with demo_site(project_path(source_path), served, work / name / "demo_urls.csv") as site:
        report = collect_images(site.source, breed_list, out, n, rules=ImageRules(**rules),
                                policy=FetchPolicy(timeout=10.0), workers=2, progress=False)  # fmt: skip
    return report


def outcomes(name):
    """Per breed, the number of candidates per outcome (kept or a reason code)."""
    return counts_by_breed_and_reason(raw_dir(work / name))


baseline = collect("baseline")
print("Default rules (min_side 100, near_duplicate_distance 6):")
print(outcomes("baseline").to_string())

# %% [markdown] tags=[]
# ## Exercise 1: `min_side = 300`
#
# *Predict before you run:* every shared photo is 224x224. How many photos per breed will be
# rejected as `too_small`?
#
# Every shared photo's shorter side (224) is below 300, so all of them are rejected: a breed's
# collector keeps asking for candidates until its list of `per_breed * 3` runs out. What can
# still be kept is a planted item larger than 300 px.

# %% tags=[]
big = collect("min_side_300", min_side=300)
counts = outcomes("min_side_300")
print(counts.to_string())
manifest = read_manifest(raw_dir(work / "min_side_300"))
kept = manifest[manifest["status"] == "kept"]
print("kept:", kept[["breed", "url", "width", "height"]].to_string(index=False))
too_small = manifest[manifest["reason"] == "too_small"]
shared = manifest["url"].str.startswith("photos/")
assert (manifest.loc[shared, "reason"] == "too_small").all()
print(f"too_small per breed: {too_small.groupby('breed').size().to_dict()} of "
      f"{3 * per_breed} candidates each")  # fmt: skip
assert list(kept["url"].str.rsplit("/", n=1).str[-1]) == ["11-wide.jpg"]

# %% tags=[]
reasons = counts.drop(columns="kept").sum().sort_values()
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh(reasons.index, reasons.to_numpy())
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_xlabel("rejected candidates, both breeds")
ax.set_title("min_side = 300: why candidates were rejected")
fig.tight_layout()

# %% [markdown] tags=[]
# Each breed had `3 * per_breed` = 60 candidates, and every shared photo among them is
# `too_small`, as are the planted copies and the 64-pixel thumbnail (all 224 px or smaller):
# 56 and 57 of the 60, one long bar in the chart. The one photo kept is
# the planted 1200x700 wide photo (shorter side 700, stored at 800x467). The other planted
# items are rejected for their own reasons, because those checks come before the size check
# (a web page is not an image of any size). With `per_breed = 120` each breed would lose
# every one of its up to 360 candidates the same way: the notebook's `assert` that every breed
# kept `per_breed` photos would fail, and 02 would exclude every breed.

# %% [markdown] tags=[]
# ## Exercise 2: `near_duplicate_distance = 0`
#
# The near-duplicate check rejects a photo whose mirror-aware pHash is within
# `near_duplicate_distance` bits of a photo already kept for the breed. With 0, only copies
# whose hash is *identical* are caught. Which planted copies get through?

# %% tags=[]
strict = collect("distance_0", near_duplicate_distance=0)
before = read_manifest(raw_dir(work / "baseline")).set_index(["breed", "url"])
after = read_manifest(raw_dir(work / "distance_0")).set_index(["breed", "url"])


def outcome(frame):
    return frame["reason"].where(frame["status"] != "kept", "kept")


site = pd.read_csv(work / "distance_0" / "demo_urls.csv", dtype=str, keep_default_na=False)
copies = site[site["original"] != ""].set_index(["breed", "url"])
table = pd.DataFrame({"what it is": copies["planted"], "distance 6": outcome(before),
                      "distance 0": outcome(after)}).loc[copies.index]  # fmt: skip
print(table.to_string())
through = table[(table["distance 6"] != "kept") & (table["distance 0"] == "kept")]
print(f"{len(through)} planted copies get through at distance 0: {sorted(through['what it is'])}")
assert sorted(through["what it is"]) == ["a photo cropped by 8% and resized back"] * 2
still = table[table["distance 0"] == "near_duplicate"]
assert sorted(still["what it is"].str.split().str[2]) == ["mirrored", "resized"], still
gone = before[outcome(before) == "kept"].index.difference(after[outcome(after) == "kept"].index)
print(f"{len(gone)} shared photos kept at distance 6 are not even tried at distance 0")

# %% [markdown] tags=[]
# Only the two 8% crops get through: at distance 6 both were `near_duplicate`, at distance 0
# both are kept, and each takes the place of one of the breed's real photos (the two shared
# photos pushed out of Chihuahua's 20). The resized-and-recompressed copy and the mirrored
# copy are *still* rejected as `near_duplicate` at distance 0: their mirror-aware pHash is
# identical to the original's, bit for bit. Resizing and recompression keep the coarse light
# and dark pattern a pHash describes, and the mirror-aware comparison undoes the mirror. The
# exact duplicate is rejected by its sha256, whatever the distance. The copies listed under
# another breed were kept at both distances: 01 never compares across breeds (02 does). So a
# crop is what a strict threshold lets through, and 02 still groups it with its original.

# %% [markdown] tags=[]
# ## Exercise 3: a breed the shared photos do not have
#
# We ask the demo site for "Dachshund" too, which has no folder in the Stanford Dogs copy.

# %% tags=[]
try:
    collect("dachshund", breed_list=breeds + ["Dachshund"])
except KeyError as err:
    message = str(err).replace(str(project_path(source_path)), source_path)
print(message)
assert "Dachshund" in message and not (work / "dachshund" / "raw").exists()

# %% [markdown] tags=[]
# The notebook stops in its second code cell, where it starts the demo site: `demo_site`
# raises a `KeyError` naming the missing breed and the folder it looked in, before a single
# photo is downloaded or a file is written. (With `source = "search"` there is no fixed list:
# image search would return Dachshund photos.)

# %% [markdown] tags=[]
# ## Exercise 4: interrupt the download, then run it again
#
# A stop button lands at a random moment; to make it reproducible here the "interrupted" run
# stops at a known point: the first breed fully collected, the second only half (10 of 20;
# the site serves both breeds all along).
# The manifest is rewritten after every batch of downloads, so that is what a real
# interruption leaves too. Then we run the full collection again.

# %% tags=[]
first = collect("interrupted", breed_list=breeds[:1])
half = collect("interrupted", breed_list=breeds[1:], n=per_breed // 2)
resumed = collect("interrupted")
print(f"interrupted run: fetched {first.fetched + half.fetched}")
print(f"re-run: fetched {resumed.fetched}, skipped {resumed.resumed} already settled")
print(f"uninterrupted run: fetched {baseline.fetched}")
print(f"kept: {resumed.total('kept')} after resuming, {baseline.total('kept')} uninterrupted")
same = outcomes("interrupted").equals(outcomes("baseline"))
assert first.fetched + half.fetched + resumed.fetched == baseline.fetched and same
print("every breed's outcomes are identical to the uninterrupted run's:", same)

# %% [markdown] tags=[]
# The re-run downloads only what the interrupted run had not settled: the two runs together
# fetch exactly as many candidates as one uninterrupted run, and keep the same photos with
# the same reasons. The total is unchanged because every settled candidate (kept *or*
# rejected) is in the manifest, keyed by breed and URL, and is skipped next time; a photo
# whose download was cut off mid-way had no manifest row yet and is fetched again, and any
# file it left behind is deleted as an orphan.

# %% [markdown] tags=[]
# ## Exercise 5: the planted web page in `raw/manifest.csv`
#
# We read the demo's own manifest (01's output) and find the planted HTML page.

# %% tags=[]
demo = read_manifest(raw_dir(data_dir))
page = demo[demo["url"].str.endswith("web-page.jpg")]
print(f"{shown_path(raw_dir(data_dir) / 'manifest.csv')}, the planted web page's row:")
print(page.T.to_string(header=False))
assert page["status"].tolist() == ["rejected"] and page["reason"].tolist() == ["not_an_image"]

# %% [markdown] tags=[]
# `status` says what happened (`rejected`) and `reason` why (`not_an_image`: its bytes are
# HTML, whatever the server's `Content-Type` claimed). `sha256` is still filled in, since the
# bytes were downloaded, while `phash`, `width`, `height` and `path` are empty: nothing
# decoded, nothing was stored.

# %% [markdown] tags=[]
# ## Questionnaire: short answers
#
# 1. Per candidate: breed, WordNet id, source, URL, sha256, both pHashes, size, status, reason
#    and stored path. Keeping the rejected rows makes the data set auditable (why is a photo
#    missing?) and lets a re-run skip them instead of downloading them again.
# 2. The sha256 of the downloaded bytes identifies the exact file (and checks a published
#    checksum); the pHash describes the picture, so it is taken of what the model will see,
#    the stored JPEG, after orientation, conversion and resizing.
# 3. The copies listed under *another* breed (the mirrored and the resized copy) and one 8%
#    crop that moved the hash more than 6 bits: 01 compares a photo only with the photos
#    already kept for its own breed, at a strict distance. 02 catches them across breeds.
# 4. A small file that decodes to an enormous image (here a 12 KB PNG of 10000x10000 pixels).
#    The pixel count in the image header is checked against `max_pixels` before decoding.
# 5. Every candidate already settled is in the manifest, so the second run skips it.
# 6. ImageNet's id for a concept (`n02085620` is Chihuahua), kept from the Stanford Dogs
#    folder names; 05 uses it to start its head from ImageNet's output layer, and 06 to match
#    the ImageNet classifier's classes to our breeds.
