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
# # 01 · Collect dog photos
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/notebooks/01_scrape.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/notebooks/01_scrape.ipynb)
#
# Every classifier starts with labelled examples. The original doggo.name scraped about 400 photos
# for each of 188 AKC breeds from an image search. In this notebook you will learn how to build
# such a data set so that it can be trusted:
#
# - where photos come from: an **image search** (full scale), a **URL manifest** someone
#   published (breed, url, sha256), or a **local folder** of breed sub-folders;
# - why every download is checked: the web serves HTML pages as "images", broken files, tiny
#   thumbnails, "decompression bombs", dead links and the same photo many times over;
# - how an interrupted run **resumes** without downloading anything twice.
#
# The demo downloads for real, over HTTP, from a small web site that this notebook starts on
# your own machine (127.0.0.1): the shared Stanford Dogs photos of ten breeds plus a planted set
# of bad items, so that every check below has something to catch.
#
# The result is `raw/<breed>/<sha256>.jpg` plus `raw/manifest.csv`, one row per candidate URL
# with what happened to it. `02_split` reads it next.

# %% tags=["parameters"]
data_dir = "data/demo"  # raw/ is written below it (full: "data/full")
source = "demo"  # the local demo site; full: "search" (image search); or "manifest", "folder"
source_path = "../shared/datasets/stanford-dogs-120"  # demo photos; a CSV or folder for
#                                                      "manifest"/"folder" (full: None)
# Breeds: a list, "akc" (doggo's AKC breed list; full scale) or "all" (every breed the source has).
breeds = [
    "Beagle", "Chihuahua", "Eskimo Dog", "German Shepherd", "Golden Retriever",
    "Labrador Retriever", "Malamute", "Pembroke", "Pug", "Siberian Husky",
]  # fmt: skip
per_breed = 120  # photos to keep per breed (full: 400, as the original)
min_side = 100  # shorter side in pixels; smaller images are rejected (full: 128)
max_side = 800  # longest side of the stored JPEG
near_duplicate_distance = 6  # perceptual-hash bits under which two photos are the same photo
workers = 2  # concurrent downloads (full: 8)
timeout = 10.0  # seconds for a connection or a read
seed = 42  # which photos the sample grid shows

# %% [markdown] tags=[]
# **On Colab/Kaggle only.** A hosted runtime has neither this project nor its pinned packages.
# There the next cell clones the repository and installs the versions pinned by
# `requirements/constraints.txt` (then restart the runtime once, as it says, and run from the
# top). Anywhere else it does nothing and says so. A hosted runtime has no `../shared` folder
# either: the cell after it then downloads the same photos from Stanford Dogs' official
# `images.tar` (794 MB, a few minutes on a hosted runtime; kept in `data/demo/stanford-dogs`,
# and resumed if cut off) and extracts the breeds asked for. Those are the full-size photos, not
# the shared copy's 224x224 ones, so the numbers below will differ a little from these.

# %% tags=[]
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("helpers") is None and any(
    name in os.environ for name in ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE")
):
    if not os.path.isdir("doggo"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/doggo-course/doggo"], check=True)
    os.chdir("doggo/notebooks")
    sys.path.insert(0, os.path.abspath(".."))

from helpers.hosted import ensure_packages

print(ensure_packages())

# %% [markdown] tags=[]
# First we pick the breeds. `helpers.breeds.AKC_BREEDS` is doggo's own list of AKC-recognized
# breeds (the original's 188 were the AKC list of its day; the AKC adds breeds most years).

# %% tags=[]
import contextlib
import inspect
import textwrap
import threading

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from helpers.breeds import AKC_BREEDS
from helpers.collect import (
    FetchPolicy,
    ImageRules,
    collect_images,
    counts_by_breed_and_reason,
    demo_site,
    evaluate,
    make_source,
    read_manifest,
    sample_paths,
)
from helpers.collect.stanford import STANFORD_DOGS_BYTES, fetch_breeds
from helpers.images import ImageError, decode_image
from helpers.paths import project_path, raw_dir, shown_path
from helpers.plots import image_grid, use_style

use_style()
if source == "demo" and not project_path(source_path).is_dir():
    # A hosted runtime has no ../shared: the same breeds come from Stanford's own download.
    print(f"{source_path} is not here: downloading Stanford Dogs' images.tar "
          f"({STANFORD_DOGS_BYTES / 1e6:.0f} MB, a few minutes) to extract the breeds")  # fmt: skip
    wanted = None if breeds == "all" else AKC_BREEDS if breeds == "akc" else breeds
    source_path = fetch_breeds(wanted, project_path(data_dir) / "stanford-dogs")
if breeds == "akc":
    breed_list = list(AKC_BREEDS)
elif breeds == "all":
    breed_list = make_source("folder" if source == "demo" else source, source_path).breeds()
else:
    breed_list = sorted(breeds)
out_dir = raw_dir(data_dir)
print(f"Collecting up to {per_breed} photos for each of {len(breed_list)} breeds")
print(f"into {shown_path(out_dir)}")

# %% [markdown] tags=[]
# ## The demo's web site
#
# The shared photos are the Stanford Dogs data set (Khosla et al., 2011), taken from ImageNet.
# Its folders are named like `n02085620-Chihuahua`: the first part is the breed's **WordNet id**
# (wnid), ImageNet's number for the concept "Chihuahua", which the manifest keeps so that labels
# can be matched to ImageNet models later. All of this copy's photos are 224x224 pixels: a third
# party squashed them to that size, so their original shapes are already lost.
#
# The site serves those photos and 16 planted items, made from them the same way on every run.
# It publishes a **URL manifest**: one row per photo with its breed, its URL and, optionally, the
# sha256 checksum of its bytes. The server stops as soon as collecting is done.

# %% tags=[]
threads_before = set(threading.enumerate())
site_stack = contextlib.ExitStack()  # closed after collecting: stops the server
if source == "demo":
    site = site_stack.enter_context(
        demo_site(project_path(source_path), breed_list, project_path(data_dir) / "demo_urls.csv")
    )
    photo_source = site.source
    urls = pd.read_csv(site.manifest_csv, dtype=str, keep_default_na=False)
    print(f"The site on 127.0.0.1 lists {len(urls)} URLs; three rows of its manifest:")
    shown = pd.concat([urls.iloc[2:4], urls[urls["sha256"] != ""].head(1)])
    print(shown[["breed", "url", "sha256"]].to_string(index=False))
    planted = pd.DataFrame(
        [(p.url, p.breed, p.what, p.expect) for p in site.planted],
        columns=["url", "listed as", "what it is", "expected outcome"],
    )
else:
    site, photo_source, planted = None, make_source(source, source_path), None
planted

# %% [markdown] tags=[]
# ## Download and check every photo
#
# Each candidate is downloaded with timeouts, retries and a size cap, identified by its bytes (not
# by what the server claims), fully decoded, turned upright by its EXIF orientation, converted to
# RGB and stored as a JPEG no longer than `max_side`. Exact duplicates (same sha256) and near
# duplicates of a photo already kept for the breed are dropped. A **perceptual hash** (pHash)
# makes "near" measurable: 64 bits that describe a photo's coarse light and dark pattern, so a
# resized or recompressed copy differs in only a few bits while an unrelated photo differs in
# about half. Training flips photos left-right, so a mirrored copy counts too: each photo is
# hashed as stored and mirrored, and two photos are compared both ways.
#
# Here is the whole check of one candidate, as each download worker runs it; every `return`
# before the last is a reason code in the manifest.

# %% tags=[]
print(inspect.getsource(evaluate))

# %% [markdown] tags=[]
# Now we run it over every candidate. This is the long step: under a minute for the demo, a few
# hours for 75,000 photos from image search.

# %% tags=[]
collect = dict(
    source=photo_source,
    breeds=breed_list,
    out_dir=out_dir,
    per_breed=per_breed,
    rules=ImageRules(
        min_side=min_side, max_side=max_side, near_duplicate_distance=near_duplicate_distance
    ),
    policy=FetchPolicy(timeout=timeout),
    workers=workers,
)
report = collect_images(**collect)
print(
    f"kept {report.total('kept')} photos; rejected {report.total('rejected')}; "
    f"failed (retried on the next run) {report.total('failed')}"
)

# %% [markdown] tags=[]
# Running the same collection again is how an interrupted run resumes: every candidate already
# settled in the manifest is skipped, so nothing is downloaded twice. Then we stop the server.

# %% tags=[]
again = collect_images(**collect, progress=False)
print(f"Second run: fetched {again.fetched}, skipped {again.resumed} already settled")
assert again.fetched == 0
site_stack.close()
# tqdm's progress-bar monitor is the one thread meant to outlive the collection.
left = [t for t in set(threading.enumerate()) - threads_before if t.name != "tqdm_monitor"]
assert not left, f"the server left threads behind: {left}"
print("Server stopped; none of its threads is left running")

# %% [markdown] tags=[]
# ## What was kept and what was rejected, and why
#
# The manifest records an outcome for every candidate, with a short reason code for each
# rejection. From image search expect a good share of broken links, HTML pages, thumbnails and
# duplicates; in the demo they are the planted items.

# %% tags=[]
manifest = read_manifest(out_dir)
counts = counts_by_breed_and_reason(out_dir)
print(counts.sum().to_string())
short = counts.index[counts["kept"] < per_breed].tolist()
print(f"Breeds with fewer than {per_breed} kept photos: {short or 'none'}")
assert source != "demo" or not short, "the demo site has enough photos for every breed"

# %% tags=[]
reasons = counts.drop(columns="kept").sum().sort_values()
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.barh(reasons.index, reasons.to_numpy())
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_xlabel("rejected candidates, all breeds")
ax.set_title("Why candidates were rejected")
fig.tight_layout()

# %% [markdown] tags=[]
# Every breed kept its `per_breed` photos; the rejections are the planted items, each caught by
# its own check, and the near duplicates by the hash comparison. A breed that falls well short of `per_breed` will be thin in
# training; `02_split` reports such breeds and can exclude them.
#
# Did every planted item get the outcome it was planted for? We look each one up in the manifest.

# %% tags=[]
if planted is not None:
    outcome = manifest["reason"].where(manifest["status"] != "kept", "kept")
    got = outcome.set_axis(pd.MultiIndex.from_frame(manifest[["breed", "url"]])).to_dict()
    keys = planted[["listed as", "url"]].itertuples(index=False, name=None)
    planted["got"] = [got.get(key, "not tried") for key in keys]
    wrong = planted[planted["got"] != planted["expected outcome"]]
    assert wrong.empty, f"planted items with the wrong outcome:\n{wrong}"
    print(f"All {len(planted)} planted items got the outcome they were planted for.")
    print("Kept on purpose, for 02_split to group with their originals:")
    print(planted.loc[planted["got"] == "kept", ["url", "what it is"]].to_string(index=False))

# %% [markdown] tags=[]
# ## A gallery of what was rejected
#
# Rejected candidates are not stored, so the demo draws them from the site's planted items. An
# item that does not decode as an image is shown as a grey card with its reason.

# %% tags=[]
if site is not None:
    rejected = manifest[manifest["status"] == "rejected"]
    planted_by_url = {p.url: p for p in site.planted}
    fig, axes = plt.subplots(2, 6, figsize=(13, 5.6))
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, rejected.itertuples(), strict=False):
        item = planted_by_url.get(row.url)  # else a shared photo: photos/<folder>/<file>
        shared = project_path(source_path) / row.url.removeprefix("photos/")
        body = item.body if item else shared.read_bytes()
        try:
            ax.imshow(np.asarray(decode_image(body or b"", max_pixels=10**6)))
        except ImageError:
            ax.add_patch(plt.Rectangle((0, 0), 1, 1, color="0.85", transform=ax.transAxes))
            ax.text(
                0.5, 0.5, "no picture\nto show", ha="center", va="center", transform=ax.transAxes
            )
        caption = textwrap.fill(item.what if item else row.url, 26)
        ax.set_title(f"{row.reason}\n{caption}", fontsize=8)
    fig.suptitle("Rejected candidates and their reason codes")
    fig.tight_layout()

# %% [markdown] tags=[]
# The resized and mirrored copies and one of the two 8% crops look like real photos, yet they
# add nothing: the model would learn the same photo twice. The other crop moved the hash more
# than `near_duplicate_distance` bits and was kept; `02_split` still keeps it in the same split
# as its original. (The demo plants no photos of other animals: nothing here could tell a dog
# from a cat; that is what looking at the photos, next, is for.)
#
# ## Look at the photos
#
# Numbers hide problems that eyes catch at once: cartoons, puppies in baskets, the wrong breed.
# Here is a reproducible sample.

# %% tags=[]
sample = sample_paths(out_dir, 18, seed=seed)
by_path = manifest.set_index("path")["breed"]
fig = image_grid(sample, [by_path[p.relative_to(out_dir).as_posix()] for p in sample], ncols=6)

# %% [markdown] tags=[]
# ## Stored sizes
#
# A photo keeps its aspect ratio; only its longest side is bounded by `max_side`. The shared
# photos arrive squashed to 224x224, so almost every point sits on one spot. The planted wide
# photo (1200x700, an enlarged strip of a shared photo) shows the rule: stored at `max_side`
# wide, with its shape intact.

# %% tags=[]
kept = manifest[manifest["status"] == "kept"]
print(kept.groupby(["width", "height"]).size().rename("photos").to_string())
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(kept["width"], kept["height"], s=30, alpha=0.5)
ax.plot([0, max_side], [0, max_side], ls=":", color="0.5", label="square photos")
ax.legend(loc="upper left")
ax.set_xlabel("stored width (px)")
ax.set_ylabel("stored height (px)")
ax.set_title("Stored size of every kept photo")
wide = kept[kept["url"].str.endswith("wide.jpg")]
for row in wide.itertuples():
    ax.annotate("planted wide photo", (row.width, row.height), xytext=(-110, -25),
                textcoords="offset points", arrowprops={"arrowstyle": "->"})  # fmt: skip
    assert row.width == max_side and abs(row.width / row.height - 1200 / 700) < 0.01
    print(f"The 1200x700 photo was stored at {row.width}x{row.height}: the same shape.")

# %% [markdown] tags=[]
# ## Summary
#
# - Every photo in `raw/` decoded fully, is RGB, upright and at least `min_side` pixels on its
#   shorter side; every planted bad item was rejected with its own reason code, and a second run
#   downloaded nothing.
# - Exact copies, resized copies and mirror images of a breed's photos were dropped; copies
#   listed under another breed, and a crop, got through: a per-breed check cannot see them.
# - `manifest.csv` says where each photo came from and why each rejected candidate was rejected,
#   so the data set can be audited, re-downloaded from its URLs, or resumed after an interruption.

# %% [markdown] tags=[]
# ## Questionnaire
#
# 1. What does the URL manifest record for each candidate, and why keep the rejected ones too?
# 2. Why is a photo's sha256 taken of the downloaded bytes, and its pHash of the stored JPEG?
# 3. Which planted items did a *per-breed* duplicate check miss, and why could it not see them?
# 4. What is a decompression bomb, and which check stops it before it costs memory?
# 5. Why does a second run of this notebook download nothing?
# 6. What is a WordNet id, and which later notebook needs it?

# %% [markdown] tags=[]
# ## Exercises
#
# 1. *Predict before you run:* set `min_side = 300`. How many photos per breed will be rejected
#    as `too_small`, given that every shared photo is 224x224? Run it and check the reasons chart.
# 2. Set `near_duplicate_distance = 0` and re-run: which planted copies get through now?
# 3. Add a breed to `breeds` that the shared photos do not have (say "Dachshund"). What does the
#    notebook tell you, and where?
# 4. Interrupt the download cell halfway (the stop button), then run it again: read `fetched`
#    and `skipped` in the printed report. Why do the kept photos come out the same?
# 5. Open `raw/manifest.csv` in a spreadsheet and find the row of the planted web page: which
#    columns say what happened to it?
#
# ## Further research
#
# - Read "Datasheets for Datasets" (Gebru et al., 2018, arXiv:1803.09010) and write a short
#   datasheet for your `raw/`: who took the photos, under which licences, what is missing.
# - ImageNet itself was collected by image search and checked by people (Deng et al., 2009,
#   "ImageNet: A large-scale hierarchical image database"). What would a human check of doggo's
#   photos cost at 400 photos x 188 breeds, and which of 01's checks could it replace?
# - The `imagehash` package also has difference and wavelet hashes (`dhash`, `whash`) and a
#   `crop_resistant_hash`: which of them catch the planted 8% crop that pHash let through, and
#   at what price in false matches between different photos?
#
# Next, `02_split` divides these photos into train, validation and holdout sets without leaks.
