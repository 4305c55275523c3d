"""Tests for helpers.training.data: manifest reading, tf.data pipelines, class weights and
augmentation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from _tinyset import COUNTS, breed_color, make_tinyset
from PIL import Image

from helpers.paths import PROJECT_ROOT
from helpers.serving.predict import image_to_array
from helpers.training import _cache, data
from tests._photoset import make_photoset


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


# The fast pipeline (pipeline="fast"): decode-once TFRecord shards and stateless augmentation.


def _smooth_image(height: int, width: int) -> np.ndarray:
    """A (1, h, w, 3) float image with detail at several scales but no edges sharper than
    bilinear resampling can follow, so resampling twice and once differ only a little."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [127 + 100 * np.sin(xx / 9) * np.cos(yy / 7), 2 * xx + yy, 255 - 3 * yy]
    return np.clip(np.stack(channels, -1), 0, 255)[None].astype(np.float32)


@pytest.mark.parametrize("resampler", ["tensorflow", "opencv"])
def test_combined_affine_transform_equals_the_keras_layers_applied_one_after_another(
    resampler: str,
) -> None:
    from helpers.training import _augment

    h, w = 48, 64
    image = _smooth_image(h, w)
    rotation, zoom, dy, dx = 0.03, 0.08, 0.05, -0.06  # as the layers' factors
    step = image[:, :, ::-1]  # RandomFlip("horizontal") when it flips
    for layer in (
        keras.layers.RandomRotation((rotation, rotation), fill_mode="reflect"),
        keras.layers.RandomZoom((zoom, zoom), fill_mode="reflect"),
        keras.layers.RandomTranslation((dy, dy), (dx, dx), fill_mode="reflect"),
    ):
        step = np.asarray(layer(step, training=True))
    transforms = _augment.combined_transform(
        flip=tf.constant([1.0]),
        angle=tf.constant([rotation * 2 * np.pi]),
        zoom=tf.constant([1 + zoom]),
        dx=tf.constant([dx * w]),
        dy=tf.constant([dy * h]),
        height=h,
        width=w,
    )
    once = _augment.warp_for(resampler)(tf.constant(image), transforms).numpy()
    # Away from the reflected borders, one resampling equals three within interpolation error,
    # while the transform itself moves pixels by far more.
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(once - step)[inner].max() < 3
    assert np.abs(once - step)[inner].mean() < 0.5
    assert np.abs(step - image)[inner].mean() > 20


def test_opencv_and_tensorflow_resample_the_same_pixels_borders_included() -> None:
    from helpers.training import _augment

    h, w = 48, 64
    images = np.repeat(_smooth_image(h, w), 4, axis=0)
    # Turns of up to 17 degrees, zooms out and shifts: every output reaches reflected borders.
    transforms = _augment.combined_transform(
        flip=tf.constant([0.0, 1.0, 0.0, 1.0]),
        angle=tf.constant([0.3, -0.3, 0.1, 0.0]),
        zoom=tf.constant([1.1, 0.9, 1.15, 1.0]),
        dx=tf.constant([5.0, -4.0, 0.0, 7.5]),
        dy=tf.constant([-3.0, 4.5, 6.0, 0.0]),
        height=h,
        width=w,
    )
    in_graph = _augment.warp(tf.constant(images), transforms).numpy()
    on_host = _augment.warp_opencv(tf.constant(images), transforms).numpy()
    assert np.abs(on_host - in_graph).max() < 0.01
    assert np.abs(in_graph - images).mean() > 10  # the transforms do move the pixels
    with pytest.raises(Exception, match="affine"):
        _augment.warp_opencv(tf.constant(images[:1]), tf.constant([[1.0, 0, 0, 0, 1, 0, 1e-3, 0]]))


@pytest.fixture
def fast_set(tmp_path: Path) -> Path:
    """A tiny set of its own, so tests can move its photos away."""
    return make_tinyset(tmp_path / "set", counts={"train": 12, "val": 3, "holdout": 2})


def _fast(split_dir: Path, split: str = "train", size: int = 24, **kwargs):
    kwargs.setdefault("batch_size", 8)
    kwargs.setdefault("cache_dir", split_dir.parent / "cache")
    return data.make_dataset(split_dir, split, size, pipeline="fast", **kwargs)


def test_fast_pipeline_writes_the_cache_once_and_then_reads_no_photo(fast_set: Path) -> None:
    first = _all(_fast(fast_set, "val"))
    shards = sorted((fast_set.parent / "cache" / "val-24px").glob("shard-*.bin"))
    assert shards
    written = [s.stat().st_mtime_ns for s in shards]
    (fast_set.parent / "raw").rename(fast_set.parent / "raw-gone")  # no photo left to read
    again = _all(_fast(fast_set, "val"))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert [s.stat().st_mtime_ns for s in shards] == written  # read, not rewritten
    # What the cache holds is what the default pipeline's memory cache holds, in manifest order.
    (fast_set.parent / "raw-gone").rename(fast_set.parent / "raw")
    default = _all(data.make_dataset(fast_set, "val", 24, batch_size=8, cache=True))
    np.testing.assert_array_equal(first[0], default[0])
    np.testing.assert_array_equal(first[1], default[1])


def test_fast_cache_is_rewritten_for_another_size_or_manifest(fast_set: Path) -> None:
    _all(_fast(fast_set, "holdout", size=24))
    (fast_set.parent / "raw").rename(fast_set.parent / "raw-gone")
    with pytest.raises(ValueError, match="No such file"):  # not in the 24 px cache: it decodes
        _all(_fast(fast_set, "holdout", size=32))
    (fast_set.parent / "raw-gone").rename(fast_set.parent / "raw")
    x, _ = _all(_fast(fast_set, "holdout", size=32))
    assert x.shape[1:] == (32, 32, 3)
    # A manifest with other labels (here: two photos' labels swapped) is not the cached one.
    table, _ = data.read_split(fast_set)
    holdout = table.index[table["split"] == "holdout"]
    swapped = table.copy()
    swapped.loc[holdout, "label"] = table.loc[holdout[::-1], "label"].to_numpy()
    (fast_set.parent / "raw").rename(fast_set.parent / "raw-gone")
    with pytest.raises(ValueError, match="No such file"):
        _all(_fast(fast_set, "holdout", size=32, table=swapped))


def test_fast_cache_resumes_with_the_missing_shards(fast_set: Path) -> None:
    table, _ = data.read_split(fast_set)
    rows = table[table["split"] == "train"]
    decode = lambda path: data.decode_and_resize(tf.io.read_file(path), 16)  # noqa: E731
    cache = fast_set.parent / "cache"
    shards = _cache.ensure_cache(rows, "train", 16, cache, decode, shard_size=10, progress=False)
    assert len(shards) == 4  # 36 photos, 10 per shard
    kept = shards[0].stat().st_mtime_ns
    shards[2].unlink()  # as if killed while writing the third
    again = _cache.ensure_cache(rows, "train", 16, cache, decode, shard_size=10, progress=False)
    assert again == shards and shards[2].is_file()
    assert shards[0].stat().st_mtime_ns == kept
    # A damaged shard (here cut short by a byte) is found by its length and written again.
    whole = shards[3].read_bytes()
    shards[3].write_bytes(whole[:-1])
    _cache.ensure_cache(rows, "train", 16, cache, decode, shard_size=10, progress=False)
    assert shards[3].read_bytes() == whole
    # A cache of the earlier format (TFRecord shards) in the folder: its shards are removed.
    folder = _cache.cache_folder(cache, "train", 16)
    (folder / "shard-00000-of-00001-0123456789abcdef.tfrecord").write_bytes(b"old")
    (folder / _cache.INFO).write_text(json.dumps({"format": 1}))
    _cache.ensure_cache(rows, "train", 16, cache, decode, shard_size=10, progress=False)
    assert sorted(p.name for p in (cache / "train-16px").glob("shard-*")) == [
        s.name for s in shards
    ]
    # Killed writers' temporaries: one of a minute ago (its shard is still written, after the
    # others) stays, as a live writer's would; one untouched for a day is removed.
    shards[1].unlink()
    recent, old = (shards[0].parent / f".{shards[1].name}.{tag}.tmp" for tag in ("a", "b"))
    recent.write_bytes(b"part")
    old.write_bytes(b"part")
    os.utime(old, (time.time() - 86400,) * 2)
    _cache.ensure_cache(rows, "train", 16, cache, decode, shard_size=10, progress=False)
    assert shards[1].is_file() and recent.is_file() and not old.exists()


def test_fast_pipeline_gives_the_same_batches_twice_and_new_ones_every_epoch(
    fast_set: Path,
) -> None:
    def run(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        ds = _fast(fast_set, seed=seed, augment=data.fast_augmentation(seed))
        return [_all(ds) for _ in range(2)]

    first, again, other = run(3), run(3), run(4)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][1], first[1][1])  # reshuffled each epoch
    assert not np.array_equal(first[0][0], other[0][0])
    # Every photo is there each epoch, augmented, in [0, 255] at the asked size.
    x, y = first[0]
    assert x.shape == (36, 24, 24, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() >= 0 and x.max() <= 255
    assert np.bincount(y).tolist() == [12, 12, 12]
    means = x.mean(axis=(1, 2))
    expected = np.array([breed_color(int(label)) for label in y])
    assert np.abs(means - expected).max() < 40  # labels still follow their photos


def test_fast_augmentation_does_not_depend_on_parallelism_or_op_determinism(
    fast_set: Path, tmp_path: Path
) -> None:
    """Stateless ops keyed by the dataset: the same batches from parallel maps that may finish
    out of order, and from one thread under op determinism (in a process of its own, since
    determinism cannot be switched off again)."""
    kwargs = dict(batch_size=4, seed=5, cache_dir=fast_set.parent / "cache")
    # tf.data's seeded ops combine their seed with the global one, which earlier tests in this
    # process may have set: both sides set it, as the notebooks' seed_everything does.
    tf.random.set_seed(0)
    ds = data.fast_dataset(
        fast_set, "train", 24, augment=data.fast_augmentation(5), deterministic=False, **kwargs
    )
    parallel = _all(ds)
    script = f"""
import numpy as np, tensorflow as tf
from helpers.training import data
tf.config.experimental.enable_op_determinism()
tf.random.set_seed(0)
options = tf.data.Options()
options.threading.private_threadpool_size = 1
ds = data.fast_dataset({str(fast_set)!r}, "train", 24, augment=data.fast_augmentation(5),
                       batch_size=4, seed=5, cache_dir={str(fast_set.parent / "cache")!r})
x, y = zip(*((x.numpy(), y.numpy()) for x, y in ds.with_options(options)))
np.savez({str(tmp_path / "serial.npz")!r}, x=np.concatenate(x), y=np.concatenate(y))
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=PROJECT_ROOT)
    serial = np.load(tmp_path / "serial.npz")
    # Unordered maps may reorder batches, never change them: compare them sorted by content.
    order = lambda x: np.argsort(x.reshape(len(x), -1).sum(axis=1))  # noqa: E731
    np.testing.assert_array_equal(parallel[0][order(parallel[0])], serial["x"][order(serial["x"])])
    plain = _all(data.fast_dataset(fast_set, "train", 24, **kwargs))
    assert np.abs(np.sort(parallel[0].ravel()) - np.sort(plain[0].ravel())).mean() > 1


def test_fast_augmentation_keeps_brightness_and_keys_decide_it() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(60, 190, size=(64, 1, 1, 3))
    images = np.clip(base + rng.normal(0, 20, size=(64, 32, 32, 3)), 0, 255).astype(np.float32)
    layer = data.fast_augmentation(0)
    out = np.asarray(layer(images, key=tf.constant([0, 1], tf.int64)))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
    shift = out.mean(axis=(1, 2, 3)) - images.mean(axis=(1, 2, 3))
    assert abs(shift.mean()) < 4 and shift.std() > 1
    same = np.asarray(layer(images, key=tf.constant([0, 1], tf.int64)))
    other = np.asarray(layer(images, key=tf.constant([0, 2], tf.int64)))
    np.testing.assert_array_equal(out, same)
    assert np.abs(out - other).mean() > 1
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    # Without a key (inside a model, on the accelerator) it draws from its own seed generator.
    drawn = np.asarray(layer(images))
    assert drawn.shape == images.shape and np.abs(drawn - images).mean() > 1


def test_fast_augmentation_inside_a_model_is_saved_and_loaded(tmp_path: Path) -> None:
    inputs = keras.Input((24, 24, 3))
    augment = data.fast_augmentation(7, strength=0.5, resampler="tensorflow")
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(augment(inputs)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")  # no custom_objects needed
    layer = next(x for x in loaded.layers if x.name == "fast_augmentation")
    assert (layer.seed, layer.strength, layer.resampler) == (7, 0.5, "tensorflow")
    images = np.random.default_rng(0).uniform(0, 255, (2, 24, 24, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), images.mean(axis=(1, 2)), rtol=1e-5
    )
    with pytest.raises(ValueError, match="resampler"):
        data.fast_augmentation(0, resampler="pillow")


def test_fast_pipeline_rejects_stateful_augmentation_and_file_caches(fast_set: Path) -> None:
    with pytest.raises(TypeError, match="stateless"):
        _fast(fast_set, augment=data.augmentation(0))
    with pytest.raises(ValueError, match="cache_dir"):
        _fast(fast_set, cache="some/prefix")
    with pytest.raises(ValueError, match="pipeline"):
        data.make_dataset(fast_set, "train", 24, 8, pipeline="quick")


def test_make_datasets_fast_gives_every_split_from_its_shards(fast_set: Path) -> None:
    datasets, classes, table = data.make_datasets(
        fast_set, 16, 4, pipeline="fast", cache=False, cache_dir=fast_set.parent / "c"
    )
    for split, ds in datasets.items():
        _, y = _all(ds)
        if split == "train":
            assert sorted(y) == sorted(data.split_labels(table, split))
        else:
            np.testing.assert_array_equal(y, data.split_labels(table, split))
        assert list((fast_set.parent / "c" / f"{split}-16px").glob("shard-*.bin"))


def test_a_broken_photo_is_named_and_the_finished_shards_are_kept(fast_set: Path) -> None:
    table, _ = data.read_split(fast_set)
    rows = table[table["split"] == "train"]
    decode = lambda path: data.decode_and_resize(tf.io.read_file(path), 16)  # noqa: E731
    cache = fast_set.parent / "cache"
    broken = Path(rows["file"].iloc[25])
    good = broken.read_bytes()
    broken.write_bytes(good[: len(good) // 3])  # a truncated download
    with pytest.raises(ValueError, match=broken.name):
        _cache.ensure_cache(rows, "train", 16, cache, decode, shard_size=10, progress=False)
    folder = _cache.cache_folder(cache, "train", 16)
    names = _cache.shard_names(len(rows), 10, _cache.cache_key(rows, 16))
    assert sorted(p.name for p in folder.glob("shard-*.bin")) == names[:2]
    assert not list(folder.glob(".*.tmp"))
    assert not (folder / _cache.INFO).exists()  # written once the cache is complete
    broken.write_bytes(good)  # fixed: the next run writes the rest
    shards = _cache.ensure_cache(rows, "train", 16, cache, decode, shard_size=10, progress=False)
    assert all(s.is_file() for s in shards) and len(shards) == 4


# --------------------------------------------------- one fast cache, built by several workers

CACHE_WORKER = """
import json, os, sys, time
from pathlib import Path
import tensorflow as tf
from helpers.training import _cache, data

split_dir, cache, go, out, index, workers = sys.argv[1:7]
table, _ = data.read_split(split_dir)
rows = table[table["split"] == "train"]
decode = lambda path: data.decode_and_resize(tf.io.read_file(path), 24)

def records(shards):
    size = _cache.record_bytes(24)
    read = lambda s: tf.data.FixedLengthRecordDataset(str(s), size).as_numpy_iterator()
    return [r.hex() for s in shards for r in read(s)]

while not Path(go).exists():  # start together
    time.sleep(0.005)
shards = _cache.ensure_cache(rows, "train", 24, cache, decode, shard_size=2, progress=False)
first = records(shards)  # read at once, while the other worker may still be writing
Path(out, f"done-{index}").touch()
deadline = time.monotonic() + 120
while len(list(Path(out).glob("done-*"))) < int(workers) and time.monotonic() < deadline:
    time.sleep(0.01)
again = records(shards)  # and after every worker has finished
Path(out, f"worker-{index}.json").write_text(json.dumps(
    {"pid": os.getpid(), "shards": [s.name for s in shards], "first": first, "again": again}
))
"""


def _own_pid_namespace() -> list[str] | None:
    """A command prefix that runs a process as pid 1 of a namespace of its own, as each of two
    machines (or containers) sharing a folder may give its worker the same pid; None if the
    system does not allow it."""
    own = ["--pid", "--fork", "--kill-child"]
    for prefix in (["unshare", *own], ["unshare", "--user", "--map-root-user", *own]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, check=False).returncode == 0:
                return prefix
        except FileNotFoundError:
            return None
    return None


def _cache_workers(
    split_dir: Path, cache: Path, out: Path, workers: int = 2, prefix: Sequence[str] = ()
) -> list[dict]:
    """Run `workers` processes (each command after `prefix`) that build the same train cache
    at the same moment; return what each read."""
    out.mkdir()
    go = out / "go"
    logs = [(out / f"stderr-{i}").open("w") for i in range(workers)]
    command = [*prefix, sys.executable, "-c", CACHE_WORKER, *map(str, (split_dir, cache, go, out))]
    procs = [
        subprocess.Popen([*command, str(index), str(workers)], cwd=PROJECT_ROOT, stderr=logs[index])
        for index in range(workers)
    ]
    try:
        time.sleep(8)  # TensorFlow imports in each before they start at once
        go.touch()
        deadline = time.monotonic() + 240
        # One that fails would leave the others waiting for it: stop at the first failure.
        while any(p.poll() is None for p in procs) and all(p.poll() in (None, 0) for p in procs):
            assert time.monotonic() < deadline, "the workers did not finish"
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    errors = [(out / f"stderr-{i}").read_text()[-2000:] for i in range(workers)]
    assert [p.returncode for p in procs] == [0] * workers, "\n".join(errors)
    return [json.loads((out / f"worker-{i}.json").read_text()) for i in range(workers)]


def _cache_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["replacing a stale cache", "workers with the same pid"])
def test_workers_building_one_cache_at_once_make_what_one_makes_alone(
    tmp_path: Path, stanford_dogs: Path, case: str
) -> None:
    """Each worker reads every record as soon as its call returns (the other may still be
    writing) and again once all are done; both must read what one process alone writes."""
    prefix: list[str] = []
    if case == "workers with the same pid":
        prefix = _own_pid_namespace() or []
        if not prefix:
            pytest.skip("this system runs no process in a pid namespace of its own (unshare)")
    split_dir = make_photoset(tmp_path / "photos", stanford_dogs, counts={"train": 8})
    table, _ = data.read_split(split_dir)
    rows = table[table["split"] == "train"]
    decode = lambda path: data.decode_and_resize(tf.io.read_file(path), 24)  # noqa: E731
    alone = _cache.ensure_cache(rows, "train", 24, tmp_path / "alone", decode, shard_size=2,
                                progress=False)  # fmt: skip
    shared = tmp_path / "shared"
    if case == "replacing a stale cache":  # of another manifest: two labels swapped
        swapped = rows.copy()
        swapped.iloc[[0, -1], swapped.columns.get_loc("label")] = rows["label"].iloc[[-1, 0]]
        _cache.ensure_cache(swapped, "train", 24, shared, decode, shard_size=2, progress=False)
    results = _cache_workers(split_dir, shared, tmp_path / "out", prefix=prefix)
    if prefix:
        assert [r["pid"] for r in results] == [1, 1]
    size = _cache.record_bytes(24)
    read = lambda s: tf.data.FixedLengthRecordDataset(str(s), size).as_numpy_iterator()  # noqa: E731
    expected = [r.hex() for s in alone for r in read(s)]
    assert len(expected) == 24
    for result in results:
        assert result["shards"] == [s.name for s in alone]
        assert result["first"] == expected and result["again"] == expected
    folder = _cache.cache_folder(shared, "train", 24)
    assert _cache_files(folder) == _cache_files(alone[0].parent)  # no temporary, nothing stale
