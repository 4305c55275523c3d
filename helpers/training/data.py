"""tf.data input pipelines built from the split manifest (docs/formats.md), plus augmentation."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from helpers.formats import SPLIT_CSV, SPLIT_JSON, SPLITS
from helpers.paths import is_url, project_path
from helpers.training import _cache
from helpers.training._augment import StatelessAugmentation

# "default" is what the demo notebooks' committed outputs were made with; "fast" decodes each
# photo once into shards of pixels and augments with stateless ops in parallel (params/full.yaml).
PIPELINES = ("default", "fast")
AUTOTUNE = tf.data.AUTOTUNE


def _join(base: str, *parts: str) -> str:
    """Join path parts with '/', which works for local paths and gs:// style URLs alike."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def read_split(split_dir: str | os.PathLike) -> tuple[pd.DataFrame, list[dict]]:
    """Read split.csv and split.json from `split_dir` (a folder or a tf.io.gfile URL).

    Returns the table, with an added `label` column (class index) and `file` column (full image
    path), and the classes in output order as `[{"name", "wnid"}, ...]`.
    """
    split_dir = str(split_dir)
    with tf.io.gfile.GFile(_join(split_dir, SPLIT_JSON), "r") as f:
        info = json.load(f)
    with tf.io.gfile.GFile(_join(split_dir, SPLIT_CSV), "r") as f:
        # wnid stays a string: ids like "n02085620" must not be parsed and empty means unknown.
        table = pd.read_csv(io.StringIO(f.read()), dtype=str, keep_default_na=False)
    classes = [{"name": c["name"], "wnid": c.get("wnid") or None} for c in info["classes"]]
    index = {c["name"]: i for i, c in enumerate(classes)}
    excluded = set(info.get("excluded") or {})
    table = table[~table["breed"].isin(excluded - set(index))].reset_index(drop=True)
    unknown = sorted(set(table["breed"]) - set(index))
    if unknown:
        raise ValueError(f"split.csv has breeds missing from split.json's classes: {unknown[:5]}")
    table["label"] = table["breed"].map(index).astype(np.int32)
    raw_dir = resolve_raw_dir(info["raw_dir"])
    table["file"] = [_join(raw_dir, p) for p in table["path"]]
    return table, classes


def resolve_raw_dir(raw_dir: str) -> str:
    """Return split.json's raw_dir as a usable path: URLs and absolute paths as they are,
    relative paths against the project root (as every path in the project's files is)."""
    return raw_dir if is_url(raw_dir) else project_path(raw_dir).as_posix()


def split_labels(table: pd.DataFrame, split: str) -> np.ndarray:
    """Return the class indices of the rows of one split, in table order."""
    return table.loc[table["split"] == split, "label"].to_numpy(np.int32)


def class_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> dict[int, float]:
    """Balanced class weights (n / (k * count)) so rare breeds count as much as common ones.

    Classes absent from `labels` get 1.0: they contribute no samples, so the value is moot, but
    Keras wants a weight for every class index.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    present = counts > 0
    n, k = counts.sum(), int(present.sum())
    return {i: float(n / (k * counts[i])) if present[i] else 1.0 for i in range(num_classes)}


def decode_and_resize(data: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decode image bytes to float32 RGB in [0, 255] squashed to (image_size, image_size, 3).

    This is the one resize every saved model expects (docs/formats.md): bilinear, antialiased,
    aspect ratio not kept.
    """
    # JPEGs (everything 01_scrape stores) decode with the accurate IDCT, as Pillow does in
    # helpers.serving.predict, so training and serving see the same pixels.
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
    return tf.cast(image, tf.float32)


def make_dataset(
    split_dir: str | os.PathLike,
    split: str,
    image_size: int,
    batch_size: int,
    *,
    shuffle: bool | None = None,
    seed: int = 0,
    cache: bool | str = True,
    augment: keras.layers.Layer | None = None,
    drop_remainder: bool = False,
    shuffle_buffer: int = 2048,
    table: pd.DataFrame | None = None,
    pipeline: str = "default",
    cache_dir: str | os.PathLike | None = None,
) -> tf.data.Dataset:
    """Batches of (images float32 [0, 255], labels int32) for one split of the manifest.

    `shuffle` defaults to True for train only (a seeded file order, then a `shuffle_buffer` of
    decoded images reshuffled every epoch); `cache` is True (memory), a file path prefix, or
    False; `augment` (e.g. `augmentation(seed)`) runs on each batch in training mode, after the
    cache so every epoch sees new variations. Pass `table` to reuse an already read manifest.
    `pipeline="fast"` reads decode-once shards in `cache_dir` instead (see `fast_dataset`).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline must be one of {PIPELINES}, not {pipeline!r}")
    if table is None:
        table, _ = read_split(split_dir)
    if pipeline == "fast":
        if isinstance(cache, str):
            raise ValueError("the fast pipeline caches in cache_dir; cache is True or False")
        if augment is not None and not isinstance(augment, StatelessAugmentation):
            raise TypeError("the fast pipeline needs stateless augmentation: fast_augmentation()")
        return fast_dataset(
            split_dir,
            split,
            image_size,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            memory_cache=bool(cache),
            augment=augment,
            drop_remainder=drop_remainder,
            shuffle_buffer=shuffle_buffer,
            table=table,
            cache_dir=cache_dir,
        )
    rows = table[table["split"] == split]
    if rows.empty:
        raise ValueError(f"split {split!r} has no images in {split_dir}")
    shuffle = split == "train" if shuffle is None else shuffle
    if shuffle:
        # The manifest is sorted by breed and the shuffle buffer below may be smaller than the
        # split, so put the files in a seeded random order first.
        rows = rows.sample(frac=1.0, random_state=seed)
    files = tf.constant(rows["file"].tolist())
    labels = tf.constant(rows["label"].to_numpy(np.int32))
    ds = tf.data.Dataset.from_tensor_slices((files, labels))

    def load(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # tf.io.read_file goes through the same filesystem layer as gfile, so gs:// works too.
        return decode_and_resize(tf.io.read_file(path), image_size), label

    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        # Cached as rounded uint8, a quarter of float32: 299 px photos take 268 kB each, not 1 MB.
        ds = ds.map(lambda x, y: (tf.cast(tf.round(x), tf.uint8), y), num_parallel_calls=AUTOTUNE)
        ds = ds.cache("" if cache is True else str(cache))
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=AUTOTUNE)
    if shuffle:
        buffer = min(len(rows), shuffle_buffer)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if augment is not None:
        ds = ds.map(
            lambda x, y: (augment(x, training=True), y),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(AUTOTUNE)


def default_cache_dir(split_dir: str | os.PathLike) -> Path:
    """Where the fast pipeline keeps its shards by default: `cache/` next to the split folder
    (data/<name>/cache for data/<name>/split)."""
    if is_url(str(split_dir)):
        raise ValueError(f"{split_dir} is a URL: pass a local cache_dir for the fast pipeline")
    return project_path(split_dir).parent / "cache"


def fast_dataset(
    split_dir: str | os.PathLike,
    split: str,
    image_size: int,
    batch_size: int,
    *,
    shuffle: bool | None = None,
    seed: int = 0,
    memory_cache: bool = False,
    augment: StatelessAugmentation | None = None,
    drop_remainder: bool = False,
    shuffle_buffer: int = 2048,
    table: pd.DataFrame | None = None,
    cache_dir: str | os.PathLike | None = None,
    deterministic: bool = True,
    progress: bool = True,
) -> tf.data.Dataset:
    """`make_dataset`'s batches from shards of the photos' pixels at `image_size`, written on
    first use (resumable) and read by every later run; every map runs in parallel.

    Shuffled splits read the shards in a seeded order per epoch, interleaved, then through a
    `shuffle_buffer`; the others come in manifest order. `augment` (`fast_augmentation()`) draws
    from (seed, a seeded per-batch number that changes every epoch), so batches are the same
    run after run, and `deterministic=False` only lets batches overtake one another.
    """
    if table is None:
        table, _ = read_split(split_dir)
    rows = table[table["split"] == split]
    if rows.empty:
        raise ValueError(f"split {split!r} has no images in {split_dir}")
    shards = _cache.ensure_cache(
        rows,
        split,
        image_size,
        default_cache_dir(split_dir) if cache_dir is None else cache_dir,
        lambda path: decode_and_resize(tf.io.read_file(path), image_size),
        progress=progress,
    )
    shuffle = split == "train" if shuffle is None else shuffle
    files = tf.data.Dataset.from_tensor_slices([str(s) for s in shards])
    if shuffle:
        files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
    # Shards hold manifest order (breeds in turn): interleaving many mixes breeds before the
    # shuffle buffer; unshuffled splits read one shard after the other.
    ds = files.interleave(
        lambda path: tf.data.FixedLengthRecordDataset(
            path, _cache.record_bytes(image_size), buffer_size=1 << 20
        ),
        cycle_length=min(len(shards), 64) if shuffle else 1,
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    # Parsed photo by photo on every core before the shuffle buffer, so that filling the buffer
    # (a whole epoch of a small split) is not one thread's work.
    ds = ds.map(
        lambda record: _cache.parse_record(record, image_size),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    if memory_cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(len(rows), shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(
        batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE, deterministic=True
    )
    if augment is None:
        ds = ds.map(
            lambda x, y: (tf.cast(x, tf.float32), y),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )
    else:
        # Each batch is paired with its random number before any map that could reorder
        # batches, so a batch's augmentation never depends on which thread finished first.
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        base = tf.constant(seed, tf.int64)

        def augmented(
            batch: tuple[tf.Tensor, tf.Tensor], draw: tf.Tensor
        ) -> tuple[tf.Tensor, tf.Tensor]:
            x, y = batch
            return augment(x, key=tf.stack([base, draw]), training=True), y

        ds = tf.data.Dataset.zip(ds, keys).map(
            augmented, num_parallel_calls=AUTOTUNE, deterministic=deterministic
        )
    return ds.prefetch(AUTOTUNE)


def fast_augmentation(
    seed: int = 0, strength: float = 1.0, resampler: str = "opencv"
) -> StatelessAugmentation:
    """`augmentation()`'s variations for the fast pipeline: stateless random ops keyed by the
    dataset, and flip, rotation, zoom and translation as one combined warp per photo, by OpenCV
    on the host (tf.data) or, with `resampler="tensorflow"`, in the graph (inside a model)."""
    return StatelessAugmentation(seed, strength, resampler, name="fast_augmentation")


def augmentation(seed: int | None = None, strength: float = 1.0) -> keras.Sequential:
    """Random photo variations as Keras layers, for float32 images in [0, 255].

    Every change is symmetric around "no change", so augmented images keep the brightness of
    the originals on average (the original project's brightness_range=[0.2, 0.8] darkened
    every training photo while validation photos stayed bright).
    """

    def s(i: int) -> int | None:
        # Distinct seeds per layer, otherwise layers seeded alike draw correlated factors.
        return None if seed is None else seed + i

    f = strength
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=s(0)),
            keras.layers.RandomRotation(0.04 * f, fill_mode="reflect", seed=s(1)),
            keras.layers.RandomZoom(0.1 * f, fill_mode="reflect", seed=s(2)),
            keras.layers.RandomTranslation(0.08 * f, 0.08 * f, fill_mode="reflect", seed=s(3)),
            keras.layers.RandomContrast(0.15 * f, value_range=(0, 255), seed=s(4)),
            keras.layers.RandomBrightness(0.1 * f, value_range=(0, 255), seed=s(5)),
        ],
        name="augmentation",
    )


def make_datasets(
    split_dir: str | os.PathLike,
    image_size: int,
    batch_size: int,
    *,
    seed: int = 0,
    augment: bool = True,
    cache: bool | str = True,
    pipeline: str = "default",
    cache_dir: str | os.PathLike | None = None,
) -> tuple[dict[str, tf.data.Dataset], list[dict], pd.DataFrame]:
    """Return the train/val/holdout datasets (train shuffled and augmented), classes and table.

    `cache` is True (memory), False, or a file path prefix, to which each split adds its name.
    `pipeline="fast"` reads decode-once shards in `cache_dir` (default `default_cache_dir`),
    augments with `fast_augmentation` and keeps the shards' records in memory when `cache`.
    """
    table, classes = read_split(split_dir)
    if pipeline == "fast":
        datasets = {
            split: make_dataset(
                split_dir,
                split,
                image_size,
                batch_size,
                seed=seed,
                cache=bool(cache),
                augment=fast_augmentation(seed) if augment and split == "train" else None,
                table=table,
                pipeline=pipeline,
                cache_dir=cache_dir,
            )
            for split in SPLITS
        }
        return datasets, classes, table
    datasets = {
        split: make_dataset(
            split_dir,
            split,
            image_size,
            batch_size,
            seed=seed,
            cache=f"{cache}-{image_size}px-{split}" if isinstance(cache, str) else cache,
            augment=augmentation(seed) if augment and split == "train" else None,
            table=table,
        )
        for split in SPLITS
    }
    return datasets, classes, table
