"""Tests for helpers.training.data: manifest reading, tf.data pipelines, class weights and
augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from _tinyset import COUNTS, breed_color, make_tinyset
from PIL import Image

from helpers.serving.predict import image_to_array
from helpers.training import data


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tinyset(tmp_path_factory.mktemp("tiny"))


def _all(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_read_split_labels_follow_split_json_order(split_dir: Path) -> None:
    table, classes = data.read_split(split_dir)
    assert [c["name"] for c in classes] == sorted(c["name"] for c in classes)
    assert len(table) == len(classes) * sum(COUNTS.values())
    for row in table.itertuples():
        assert classes[row.label]["name"] == row.breed
        assert Path(row.file).is_file()


def test_dataset_images_are_squashed_float_rgb_paired_with_their_labels(split_dir: Path) -> None:
    ds = data.make_dataset(split_dir, "train", 32, batch_size=5, seed=1)
    x, y = _all(ds)
    assert x.shape == (len(y), 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() >= 0 and x.max() <= 255 and x.max() > 1  # [0, 255], not rescaled
    assert np.bincount(y).tolist() == [COUNTS["train"]] * 3
    # Each image's mean colour is its class's colour, so shuffling kept images and labels together.
    means = x.mean(axis=(1, 2))
    expected = np.array([breed_color(int(label)) for label in y])
    assert np.abs(means - expected).max() < 12


def test_train_shuffle_is_seeded_and_reshuffles_each_epoch(split_dir: Path) -> None:
    def epochs(seed: int) -> list[np.ndarray]:
        ds = data.make_dataset(split_dir, "train", 16, batch_size=4, seed=seed, cache=False)
        return [_all(ds)[0].mean(axis=(1, 2, 3)) for _ in range(2)]

    first, again, other = epochs(3), epochs(3), epochs(4)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], other[0])


def test_val_is_not_shuffled_and_file_cache_is_written(split_dir: Path, tmp_path: Path) -> None:
    table, _ = data.read_split(split_dir)
    cache = tmp_path / "val.cache"
    ds = data.make_dataset(split_dir, "val", 16, batch_size=4, cache=str(cache))
    _, y = _all(ds)
    np.testing.assert_array_equal(y, data.split_labels(table, "val"))
    assert list(tmp_path.glob("val.cache*"))
    np.testing.assert_array_equal(_all(ds)[1], y)  # the second pass reads the cache


def test_class_weights_balance_an_imbalanced_split() -> None:
    labels = np.array([0] * 6 + [1] * 2 + [3] * 1)
    weights = data.class_weights(labels, num_classes=4)
    assert sorted(weights) == [0, 1, 2, 3]
    counts = np.bincount(labels, minlength=4)
    totals = {i: weights[i] * counts[i] for i in (0, 1, 3)}
    # Every present class carries the same total weight, and the weights sum to the sample count.
    assert np.allclose(list(totals.values()), totals[0])
    assert np.isclose(sum(totals.values()), len(labels))


def test_augmentation_changes_images_but_keeps_brightness_on_average() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(60, 190, size=(64, 1, 1, 3))
    images = np.clip(base + rng.normal(0, 20, size=(64, 32, 32, 3)), 0, 255).astype(np.float32)
    out = np.asarray(data.augmentation(seed=0)(images, training=True))
    assert out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 255
    assert np.abs(out - images).mean() > 1  # it does something
    shift = out.mean(axis=(1, 2, 3)) - images.mean(axis=(1, 2, 3))
    # Symmetric brightness: no systematic darkening (the original's bug halved it: ~ -60 here).
    assert abs(shift.mean()) < 4
    assert shift.std() > 1  # but individual images do get brighter or darker
    np.testing.assert_array_equal(
        np.asarray(data.augmentation(seed=0)(images, training=False)), images
    )


def test_dataset_with_augmentation_runs_in_tf_data(split_dir: Path) -> None:
    ds = data.make_dataset(split_dir, "train", 32, batch_size=6, augment=data.augmentation(seed=1))
    x, y = _all(ds)
    assert x.shape == (len(y), 32, 32, 3) and np.isfinite(x).all()


def test_training_pipeline_and_predict_path_see_the_same_pixels(tmp_path):
    """The pixels a model trains on equal those helpers.serving.predict gives it when serving."""
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.jpg"
    noise = rng.integers(0, 255, (90, 130, 3), dtype=np.uint8)
    Image.fromarray(noise).save(photo, quality=85)
    png = tmp_path / "photo.png"
    Image.fromarray(noise).save(png)
    for path in (photo, png):
        trained_on = data.decode_and_resize(tf.constant(path.read_bytes()), 64).numpy()
        served = image_to_array(path, 64)
        assert trained_on.shape == served.shape == (64, 64, 3)
        assert np.abs(trained_on - served).max() < 1.0


def test_cached_images_are_the_uncached_ones_rounded_and_each_split_gets_its_cache(
    split_dir: Path, tmp_path: Path
) -> None:
    plain = data.make_dataset(split_dir, "val", 16, batch_size=4, cache=False)
    cached = data.make_dataset(split_dir, "val", 16, batch_size=4, cache=True)
    for _ in range(2):  # the second pass reads from the cache
        x_plain, x_cached = _all(plain)[0], _all(cached)[0]
        assert x_cached.dtype == np.float32
        np.testing.assert_array_equal(x_cached, np.round(x_plain))
    datasets, _, _ = data.make_datasets(split_dir, 16, 4, cache=str(tmp_path / "c"), augment=False)
    for ds in datasets.values():
        _all(ds)
    for split in ("train", "val", "holdout"):
        assert list(tmp_path.glob(f"c-16px-{split}*"))
