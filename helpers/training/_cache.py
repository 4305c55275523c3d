"""The fast pipeline's decode-once cache: TFRecord shards of one split's photos at training size.

`<cache_dir>/<split>-<size>px/` holds `info.json` (what the shards were made from) and
`shard-NNNNN-of-MMMMM.tfrecord`, each record a photo as rounded uint8 pixels (what the default
pipeline's memory cache keeps), its label and its manifest path, in manifest order. Shards are
written one by one and renamed into place, so an interrupted write resumes with the missing
shards; a changed manifest (other photos or labels) or cache format rewrites them all.
A different image size or split has its own folder, so it never reads another's pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

from helpers.atomic import write_atomic

FORMAT = 1  # bump when the record layout or the decoding changes: every cache is then rewritten
INFO = "info.json"


def cache_folder(cache_dir: str | os.PathLike, split: str, image_size: int) -> Path:
    """Return the folder holding one split's shards at one image size."""
    return Path(cache_dir) / f"{split}-{image_size}px"


def cache_key(rows: pd.DataFrame, image_size: int) -> str:
    """A digest of everything the shards' content depends on: format, size, photos and labels."""
    digest = hashlib.sha256(json.dumps([FORMAT, image_size]).encode())
    for path, label in zip(rows["path"], rows["label"], strict=True):
        digest.update(f"{path}\t{int(label)}\n".encode())
    return digest.hexdigest()


def shard_names(count: int, shard_size: int) -> list[str]:
    """The shard file names for `count` photos, `shard_size` per shard."""
    total = max(1, -(-count // shard_size))
    return [f"shard-{i:05d}-of-{total:05d}.tfrecord" for i in range(total)]


def ensure_cache(
    rows: pd.DataFrame,
    split: str,
    image_size: int,
    cache_dir: str | os.PathLike,
    decode,
    *,
    shard_size: int = 512,
    progress: bool = True,
) -> list[Path]:
    """Write the shards of `rows` (columns file, path, label) unless they are there; return them.

    `decode(path_tensor)` returns the (size, size, 3) float image of one file. Only missing
    shards are decoded, so a re-run after an interruption finishes the job and a complete cache
    reads no image file at all.
    """
    folder = cache_folder(cache_dir, split, image_size)
    key = cache_key(rows, image_size)
    names = shard_names(len(rows), shard_size)
    info = {"format": FORMAT, "key": key, "split": split, "image_size": image_size,
            "count": len(rows), "shards": names}  # fmt: skip
    if _read_info(folder) != info:
        _clear(folder)  # other photos, labels or format: nothing here can be reused
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / INFO, json.dumps(info, indent=1))
    missing = [i for i, name in enumerate(names) if not (folder / name).is_file()]
    if missing:
        todo = sum(len(rows.iloc[i * shard_size : (i + 1) * shard_size]) for i in missing)
        with tqdm(total=todo, desc=f"caching {split} at {image_size} px", unit="photo",
                  file=sys.stderr, disable=not progress) as bar:  # fmt: skip
            for i in missing:
                part = rows.iloc[i * shard_size : (i + 1) * shard_size]
                _write_shard(folder / names[i], part, decode, bar)
    return [folder / name for name in names]


def _read_info(folder: Path) -> dict | None:
    try:
        return json.loads((folder / INFO).read_text())
    except (OSError, ValueError):
        return None


def _clear(folder: Path) -> None:
    """Remove a stale cache's shards and info, and nothing else in the folder."""
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name == INFO or path.name.endswith((".tfrecord", ".tmp")):
                path.unlink()


def _write_shard(path: Path, rows: pd.DataFrame, decode, bar: tqdm) -> None:
    """Decode `rows` in parallel, in order, and write them to `path` via a temporary name."""
    files = tf.data.Dataset.from_tensor_slices(rows["file"].tolist())
    pixels = files.map(
        lambda f: tf.cast(tf.round(decode(f)), tf.uint8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).prefetch(tf.data.AUTOTUNE)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # a writer of its own
    done = 0
    try:
        with tf.io.TFRecordWriter(str(partial)) as writer:
            for image, label, name in zip(pixels, rows["label"], rows["path"], strict=True):
                writer.write(_example(image.numpy(), int(label), name))
                done += 1
                bar.update(1)
        os.replace(partial, path)
    except tf.errors.OpError as err:
        # Decoding runs in order, so the photo that failed is the one after the last written.
        photo = rows["file"].iloc[done]
        reason = err.message.strip().splitlines()[0].split("; ")[-1]  # past TF's op context
        raise ValueError(f"cannot cache {photo}: {reason}") from err
    finally:
        partial.unlink(missing_ok=True)  # a bad photo or a kill leaves no partial shard


def _example(image: np.ndarray, label: int, path: str) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_batch(records: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(uint8 images, int32 labels) of a batch of serialized records."""
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }
    parsed = tf.io.parse_example(records, spec)
    images = tf.io.decode_raw(parsed["image"], tf.uint8)
    images = tf.reshape(images, (-1, image_size, image_size, 3))
    return images, tf.cast(parsed["label"], tf.int32)
