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
# # 01 · Collect dog photos
#
# Every classifier starts with labelled examples. The original doggo.name scraped about 400 photos
# for each of 188 AKC breeds from an image search. In this notebook you will learn how to build
# such a data set so that it can be trusted:
#
# - where photos come from: an **image search** (the default), a **URL manifest** someone
#   published (breed, url, sha256), or a **local folder** of breed sub-folders;
# - why every download is checked: image search returns HTML pages, broken files, tiny
#   thumbnails, giant images, "decompression bombs" and the same photo many times over;
# - how an interrupted run **resumes** without downloading anything twice.
#
# The result is `raw/<breed>/<sha256>.jpg` plus `raw/manifest.csv`, one row per candidate URL
# with what happened to it. `02_split` reads it next.

# %% tags=["parameters"]
data_dir = "data/full"  # raw/ is written below it
source = "search"  # "search" (image search), "manifest" (a CSV of breed,url,sha256) or "folder"
source_path = None  # the manifest CSV or the folder of breed sub-folders, for those sources
breeds = "akc"  # "akc" for doggo's AKC breed list, "all" for every breed the source has, or a list
per_breed = 400  # photos to keep per breed, as the original
min_side = 128  # shorter side in pixels; smaller images are rejected
max_side = 800  # longest side of the stored JPEG
near_duplicate_distance = 6  # perceptual-hash bits under which two photos are the same photo
workers = 8  # concurrent downloads
timeout = 10.0  # seconds for a connection or a read
seed = 42  # which photos the sample grid shows

# %% tags=["injected-parameters"]
# Parameters
data_dir = "data/demo"
seed = 42
source = "folder"
source_path = "../shared/datasets/stanford-dogs-120"
breeds = ["Beagle", "Chihuahua", "Eskimo Dog", "German Shepherd", "Golden Retriever", "Labrador Retriever", "Malamute", "Pembroke", "Pug", "Siberian Husky"]
per_breed = 120
min_side = 100
workers = 2


# %% [markdown] tags=[]
# First we pick the source and the breeds. `helpers.breeds.AKC_BREEDS` is doggo's own list of
# AKC-recognized breeds (the original's 188 were the AKC list of its day; the AKC adds breeds most
# years).

# %% tags=[]
from helpers.breeds import AKC_BREEDS
from helpers.download import FetchPolicy, ImageRules
from helpers.paths import raw_dir, shown_path
from helpers.plots import image_grid, stacked_counts, use_style
from helpers.scrape import (
    collect_images,
    counts_by_breed_and_reason,
    read_manifest,
    sample_paths,
)
from helpers.sources import make_source

use_style()
photo_source = make_source(source, source_path)
if breeds == "akc":
    breed_list = list(AKC_BREEDS)
elif breeds == "all":
    breed_list = photo_source.breeds()
else:
    breed_list = sorted(breeds)
out_dir = raw_dir(data_dir)
print(f"Collecting up to {per_breed} photos for each of {len(breed_list)} breeds")
print(f"from the {photo_source.name} source into {shown_path(out_dir)}")

# %% [markdown] tags=[]
# ## Download and check every photo
#
# Each candidate is downloaded with timeouts, retries and a size cap, identified by its bytes (not
# by what the server claims), fully decoded, turned upright by its EXIF orientation, converted to
# RGB and stored as a JPEG no longer than `max_side`. Exact and near duplicates are dropped.
#
# This is the long step: about a minute for the demo's local folder, a few hours for 75,000 photos
# from image search. Re-running the cell resumes: finished photos are not fetched again.

# %% tags=[]
report = collect_images(
    photo_source,
    breed_list,
    out_dir,
    per_breed,
    rules=ImageRules(
        min_side=min_side, max_side=max_side, near_duplicate_distance=near_duplicate_distance
    ),
    policy=FetchPolicy(timeout=timeout),
    workers=workers,
)
print(
    f"kept {report.total('kept')} photos; rejected {report.total('rejected')}; "
    f"failed (retried on the next run) {report.total('failed')}"
)

# %% [markdown] tags=[]
# ## What was kept and what was rejected, and why
#
# The manifest records an outcome for every candidate. Reading the rejection reasons tells you
# what the web really contains: from image search expect a good share of broken links, HTML
# pages, thumbnails and duplicates. A curated folder such as the demo's Stanford Dogs copy is
# clean, so there everything is kept.

# %% tags=[]
counts = counts_by_breed_and_reason(out_dir)
print(counts.sum().to_string())

# %% tags=[]
counts

# %% [markdown] tags=[]
# A breed that falls well short of `per_breed` will be thin in training; `02_split` reports such
# breeds and can exclude them.

# %% tags=[]
fig = stacked_counts(counts, "Outcome of every candidate photo, per breed", xlabel="candidates")
# %% [markdown] tags=[]
# ## Look at the photos
#
# Numbers hide problems that eyes catch at once: cartoons, puppies in baskets, the wrong breed.
# Here is a reproducible sample.

# %% tags=[]
manifest = read_manifest(out_dir)
sample = sample_paths(out_dir, 18, seed=seed)
by_path = manifest.set_index("path")["breed"]
fig = image_grid(sample, [by_path[p.relative_to(out_dir).as_posix()] for p in sample], ncols=6)
# %% [markdown] tags=[]
# Stored sizes: photos keep their aspect ratio, with the longest side bounded by `max_side`.

# %% tags=[]
kept = manifest[manifest["status"] == "kept"]
print(kept[["width", "height"]].describe().loc[["min", "50%", "max"]].to_string())

# %% [markdown] tags=[]
# ## Summary
#
# - Every photo in `raw/` decoded fully, is RGB, upright and at least `min_side` pixels on its
#   shorter side; nothing else reached the folder.
# - `manifest.csv` says where each photo came from and why each rejected candidate was rejected,
#   so the data set can be audited, re-downloaded from its URLs, or resumed after an interruption.
#
# Next, `02_split` divides these photos into train, validation and holdout sets without leaks.
