"""Checks on a built data set (default: the demo run's data/demo): decodable, leak-free, balanced.

CI runs these after the notebooks have rebuilt data/demo, with DOGGO_REQUIRE_DATA=1 so that a
missing data set fails instead of skipping. Point DOGGO_DATA_DIR at another data set to check it.
"""

import json
import os

import pandas as pd
import pytest

from helpers.hashing import file_sha256
from helpers.images import decode_image
from helpers.paths import project_path, raw_dir, split_dir
from helpers.split.leaks import LEAK_CORRELATION, correlated_cross_split_pairs

DATA_DIR = os.environ.get("DOGGO_DATA_DIR", "data/demo")
RAW, SPLIT = raw_dir(DATA_DIR), split_dir(DATA_DIR)

if not (SPLIT / "split.csv").exists():
    if os.environ.get("DOGGO_REQUIRE_DATA"):
        raise RuntimeError(f"{project_path(DATA_DIR)} has no split: run 01_scrape and 02_split")
    pytest.skip(f"no data set at {DATA_DIR}", allow_module_level=True)


@pytest.fixture(scope="module")
def manifest() -> pd.DataFrame:
    return pd.read_csv(RAW / "manifest.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def split() -> pd.DataFrame:
    return pd.read_csv(SPLIT / "split.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def info() -> dict:
    return json.loads((SPLIT / "split.json").read_text())


def test_every_kept_photo_exists_decodes_and_nothing_else_is_on_disk(manifest):
    kept = manifest[manifest["status"] == "kept"]
    on_disk = {p.relative_to(RAW).as_posix() for p in RAW.glob("*/*") if p.is_file()}
    assert on_disk == set(kept["path"])
    for path in kept["path"]:
        image = decode_image((RAW / path).read_bytes())
        assert image.mode == "RGB" and min(image.size) > 0


def test_no_photo_is_kept_twice(manifest):
    kept = manifest[manifest["status"] == "kept"]
    assert not kept["sha256"].duplicated().any()
    assert not kept["path"].duplicated().any()


def test_split_comes_from_this_manifest(info):
    assert info["manifest_sha256"] == file_sha256(RAW / "manifest.csv")


def test_no_photo_or_near_duplicate_group_spans_two_splits(split):
    assert split.groupby("sha256")["split"].nunique().max() == 1
    assert split.groupby("group")["split"].nunique().max() == 1


def test_no_photo_has_a_copy_in_another_split_by_the_independent_check(split, info):
    # Thumbnail correlation, not the perceptual hash that built the groups.
    threshold = info["params"].get("leak_correlation", LEAK_CORRELATION)
    paths = [RAW / p for p in split["path"]]
    assert correlated_cross_split_pairs(split, paths, threshold).empty


def test_every_class_has_photos_in_every_split_and_classes_are_balanced(split, info):
    names = [c["name"] for c in info["classes"]]
    assert sorted(set(split["breed"])) == names
    counts = split.groupby(["breed", "split"]).size().unstack(fill_value=0)
    assert (counts[["train", "val", "holdout"]] > 0).all().all()
    per_breed = counts.sum(axis=1)
    # Balance: no breed has over 4x the photos of another (class weights cover milder skew).
    assert per_breed.max() <= 4 * per_breed.min()


def test_each_split_is_near_its_fraction(split, info):
    shares = split["split"].value_counts(normalize=True)
    for name, fraction in info["fractions"].items():
        assert shares.get(name, 0) == pytest.approx(fraction, abs=0.05)


def test_every_breed_is_split_within_a_photo_or_two_of_the_fractions(split, info):
    # One photo is what the rule allows; a second, what near-duplicate groups of two may add.
    counts = split.groupby(["breed", "split"]).size().unstack(fill_value=0)
    for name, fraction in info["fractions"].items():
        gap = (counts[name] - counts.sum(axis=1) * fraction).abs()
        assert gap.max() <= 2, gap.sort_values().tail()
