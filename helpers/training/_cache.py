"""The fast pipeline's decode-once cache: shards of one split's photos at training size.

`<cache_dir>/<split>-<size>px/` holds `shard-NNNNN-of-MMMMM-<key>.bin`, each a run of fixed-length
records in manifest order (read by `tf.data.FixedLengthRecordDataset`): a photo as rounded uint8
pixels, row by row (what the default pipeline's memory cache keeps), then its label as a
little-endian int32; and `info.json` (what the shards were made from), written last, once every
shard is there. Fixed-length records read about twice as fast as TFRecord's (no framing to
parse, no checksum per record: benchmarks/README.md). `<key>` is a digest of the format, size,
photos and labels, so a shard's name says what it holds: a changed manifest (other photos or
labels) or cache format writes shards of other names and removes the old ones. Each shard is
written under a temporary name and renamed into place, so an interrupted write resumes with the
missing shards, and several workers (processes, or machines sharing the folder) may build one
cache at once: each writes what is missing, none removes what another of the same cache wrote,
and none returns before every shard is whole in place. A different image size or split has its
own folder, so it never reads another's pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

from helpers.atomic import TEMP_SUFFIX, leftover_temporaries, replacing, write_atomic

FORMAT = 2  # bump when the record layout or the decoding changes: every cache is then rewritten
INFO = "info.json"
# A temporary file no writer has touched for this long was left by a killed one: removed.
ABANDONED_SECONDS = 3600


def cache_folder(cache_dir: str | os.PathLike, split: str, image_size: int) -> Path:
    """Return the folder holding one split's shards at one image size."""
    return Path(cache_dir) / f"{split}-{image_size}px"


def cache_key(rows: pd.DataFrame, image_size: int) -> str:
    """A digest of everything the shards' content depends on: format, size, photos and labels."""
    digest = hashlib.sha256(json.dumps([FORMAT, image_size]).encode())
    for path, label in zip(rows["path"], rows["label"], strict=True):
        digest.update(f"{path}\t{int(label)}\n".encode())
    return digest.hexdigest()


def shard_names(count: int, shard_size: int, key: str) -> list[str]:
    """The shard file names for `count` photos, `shard_size` per shard, of the cache `key`."""
    total = max(1, -(-count // shard_size))
    return [f"shard-{i:05d}-of-{total:05d}-{key[:16]}.bin" for i in range(total)]


def record_bytes(image_size: int) -> int:
    """The length of one record: the photo's uint8 pixels, then its int32 label."""
    return image_size * image_size * 3 + 4


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
    reads no image file at all. Other workers may be building the same cache at the same time:
    this returns once every shard is in place, whoever wrote it.
    """
    folder = cache_folder(cache_dir, split, image_size)
    key = cache_key(rows, image_size)
    names = shard_names(len(rows), shard_size, key)
    shards = [folder / name for name in names]
    info = {"format": FORMAT, "key": key, "split": split, "image_size": image_size,
            "count": len(rows), "shards": names}  # fmt: skip
    _remove_damaged(shards, rows, shard_size, image_size)
    if _read_info(folder) == info and all(s.is_file() for s in shards):
        return shards
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder, set(names))
    _write_missing(shards, rows, shard_size, decode,
                   f"caching {split} at {image_size} px", progress)  # fmt: skip
    gone = [s.name for s in shards if not s.is_file()]
    if gone:  # only a worker caching other photos into this folder removes shards of ours
        raise RuntimeError(f"{folder}: {gone[0]} was removed while caching: is another manifest "
                           "being cached into the same cache_dir at the same time?")  # fmt: skip
    if _read_info(folder) != info:  # last: it says the cache is complete
        write_atomic(folder / INFO, json.dumps(info, indent=1))
    return shards


def _write_missing(
    shards: list[Path], rows: pd.DataFrame, shard_size: int, decode, desc: str, progress: bool
) -> None:
    """Write the shards not there yet: first those nobody is writing, so workers that start
    together share the work, then whatever is still missing (a writer may have been killed)."""
    missing = [i for i, shard in enumerate(shards) if not shard.is_file()]
    parts = {i: _shard_rows(rows, i, shard_size) for i in missing}
    done: set[int] = set()
    with tqdm(total=sum(len(p) for p in parts.values()), desc=desc, unit="photo",
              file=sys.stderr, disable=not progress or not missing) as bar:  # fmt: skip
        for first_pass in (True, False):
            for i in missing:
                if i in done or (first_pass and _being_written(shards[i])):
                    continue
                if shards[i].is_file():  # another worker wrote it
                    bar.update(len(parts[i]))
                else:
                    _write_shard(shards[i], parts[i], decode, bar)
                done.add(i)


def _shard_rows(rows: pd.DataFrame, index: int, shard_size: int) -> pd.DataFrame:
    """The rows shard `index` holds, in manifest order."""
    return rows.iloc[index * shard_size : (index + 1) * shard_size]


def _remove_damaged(
    shards: list[Path], rows: pd.DataFrame, shard_size: int, image_size: int
) -> None:
    """Remove the shards whose length is not that of their records, so they are written again:
    no checksum guards a record, and a shard is renamed into place only once whole, so another
    length means a damaged file."""
    for i, shard in enumerate(shards):
        expected = len(_shard_rows(rows, i, shard_size)) * record_bytes(image_size)
        try:
            size = shard.stat().st_size
        except FileNotFoundError:
            continue  # not written yet
        if size != expected:
            print(f"{shard}: {size} bytes, not {expected}: written again", file=sys.stderr)
            shard.unlink(missing_ok=True)


def _read_info(folder: Path) -> dict | None:
    try:
        return json.loads((folder / INFO).read_text())
    except (OSError, ValueError):
        return None


def _remove_stale(folder: Path, names: set[str]) -> None:
    """Remove shards of another manifest or format, and temporary files abandoned by killed
    writers; never a shard of this cache or a temporary file a live writer is filling."""
    for path in folder.glob("shard-*"):  # of any format (FORMAT 1 wrote .tfrecord files)
        if path.name not in names:
            path.unlink(missing_ok=True)
    for path in leftover_temporaries(folder):
        try:
            if time.time() - path.stat().st_mtime > ABANDONED_SECONDS:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass  # its writer finished (renamed it) or another worker removed it


def _being_written(shard: Path) -> bool:
    """Whether another writer is filling a temporary file for `shard` (one it touched lately)."""
    for path in shard.parent.glob(f".{shard.name}.*{TEMP_SUFFIX}"):
        try:
            if time.time() - path.stat().st_mtime < ABANDONED_SECONDS:
                return True
        except FileNotFoundError:
            continue  # just renamed into place or removed
    return False


def _write_shard(path: Path, rows: pd.DataFrame, decode, bar: tqdm) -> None:
    """Decode `rows` in parallel, in order, and write them to `path` via a temporary name."""
    files = tf.data.Dataset.from_tensor_slices(rows["file"].tolist())
    pixels = files.map(
        lambda f: tf.cast(tf.round(decode(f)), tf.uint8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).prefetch(tf.data.AUTOTUNE)
    done = 0
    try:
        # A temporary file of its own (a bad photo or a kill leaves no partial shard behind),
        # synced before the rename: info.json will vouch for it.
        with replacing(path) as partial, open(partial, "wb") as out:
            for image, label in zip(pixels, rows["label"], strict=True):
                out.write(_record(image.numpy(), int(label)))
                done += 1
                bar.update(1)
    except tf.errors.OpError as err:
        # Decoding runs in order, so the photo that failed is the one after the last written.
        photo = rows["file"].iloc[done]
        reason = err.message.strip().splitlines()[0].split("; ")[-1]  # past TF's op context
        raise ValueError(f"cannot cache {photo}: {reason}") from err


def _record(image: np.ndarray, label: int) -> bytes:
    return np.ascontiguousarray(image, np.uint8).tobytes() + np.int32(label).astype("<i4").tobytes()


def parse_record(record: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(uint8 image, int32 label) of one record."""
    pixels = image_size * image_size * 3
    image = tf.reshape(tf.io.decode_raw(record, tf.uint8)[:pixels], (image_size, image_size, 3))
    label = tf.io.decode_raw(tf.strings.substr(record, pixels, 4), tf.int32, little_endian=True)
    return image, label[0]
