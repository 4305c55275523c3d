"""helpers.split.leaks: the independent leak check finds planted leaks among real photos, only
those."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image, ImageOps

from helpers.split import SPLITS
from helpers.split.leaks import (
    LEAK_CORRELATION,
    correlated_cross_split_pairs,
    cross_breed_copies,
    thumbnail_vectors,
)


@pytest.fixture(scope="module")
def photos(stanford_dogs):
    """120 shared photos of two breeds, the first 120 of their folders."""
    folders = sorted(p for p in stanford_dogs.iterdir() if p.is_dir())[:2]
    return [p for folder in folders for p in sorted(folder.glob("*.jpg"))[:60]]


def _table(paths, splits) -> pd.DataFrame:
    return pd.DataFrame({"path": [str(p) for p in paths], "split": splits})


def _spread(n: int) -> list[str]:
    return [SPLITS[i % 3] for i in range(n)]


def test_distinct_photos_in_different_splits_are_no_leak(photos):
    assert correlated_cross_split_pairs(_table(photos, _spread(len(photos))), photos).empty


@pytest.mark.parametrize(
    "transform",
    [
        lambda im: ImageOps.mirror(im),
        lambda im: im.resize((150, 150)),
        lambda im: im.crop((6, 6, 218, 218)).resize((224, 224)),  # a 5% crop
    ],
    ids=["mirrored", "resized", "cropped"],
)
def test_a_copy_in_another_split_is_found(photos, transform, tmp_path):
    copy = tmp_path / "copy.jpg"
    with Image.open(photos[7]) as image:
        transform(image.convert("RGB")).save(copy, quality=80)
    paths = [*photos, copy]
    splits = _spread(len(photos))
    leak = next(s for s in SPLITS if s != splits[7])
    found = correlated_cross_split_pairs(_table(paths, [*splits, leak]), paths)
    assert set(found["path_a"]) == {str(photos[7]), str(copy)}
    assert (found["correlation"] >= LEAK_CORRELATION).all()
    # The same copy in its original's split is no leak.
    assert correlated_cross_split_pairs(_table(paths, [*splits, splits[7]]), paths).empty


def test_thumbnails_are_unit_length_and_a_flat_image_correlates_with_nothing(photos, tmp_path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (50, 50), (90, 90, 90)).save(flat)
    plain, mirrored = thumbnail_vectors([photos[0], flat])
    assert plain.shape == mirrored.shape == (2, 256)
    assert abs(float(plain[0] @ plain[0]) - 1) < 1e-5 and float(plain[1] @ plain[1]) == 0


def test_a_photo_listed_under_two_breeds_is_found_and_its_look_alikes_are_not(photos, tmp_path):
    # Two breeds' photos; a mirrored copy of a photo of the first listed under the second.
    copy = tmp_path / "copy.jpg"
    with Image.open(photos[3]) as image:
        ImageOps.mirror(image.convert("RGB")).save(copy, quality=85)
    paths = [*photos, copy]
    breeds = [p.parent.name for p in photos] + [photos[-1].parent.name]
    table = pd.DataFrame({"path": [str(p) for p in paths], "breed": breeds})
    found = cross_breed_copies(table, paths)
    assert set(found["path_a"]) == {str(photos[3]), str(copy)}
    assert set(zip(found["breed_a"], found["breed_b"], strict=True)) == {
        (breeds[3], breeds[-1]),
        (breeds[-1], breeds[3]),
    }
    # The same copy under its own breed is a within-breed duplicate, 01's business, not this.
    table.loc[len(photos), "breed"] = breeds[3]
    assert cross_breed_copies(table, paths).empty
