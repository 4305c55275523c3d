"""Content hashes: a file's sha256 read in chunks (TensorFlow-free; helpers.training adds
tf.io.gfile paths), and mirror-aware perceptual hashes of photos."""

from __future__ import annotations

import hashlib
import os
from typing import Protocol

import imagehash
from PIL import Image, ImageOps

CHUNK_SIZE = 1 << 20


class BinaryReader(Protocol):
    """An open binary file: anything whose `read(size)` returns bytes, b"" at the end."""

    def read(self, size: int, /) -> bytes: ...


def file_sha256(source: str | os.PathLike[str] | BinaryReader, chunk_size: int = CHUNK_SIZE) -> str:
    """Return the hex sha256 of a local file's bytes, or of what an open binary file has left."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return file_sha256(handle, chunk_size)
    digest = hashlib.sha256()
    while chunk := source.read(chunk_size):
        digest.update(chunk)
    return digest.hexdigest()


def mirror_aware_phashes(image: Image.Image) -> tuple[str, str]:
    """Return the perceptual hashes (imagehash.phash hex) of an image and of its mirror image.

    Training flips photos left-right, so a mirrored copy is the same photo to the model; a
    perceptual hash alone does not see that (a mirror flips about half of its 64 bits).
    """
    return str(imagehash.phash(image)), str(imagehash.phash(ImageOps.mirror(image)))


def mirror_aware_distance(a: str, a_mirror: str, b: str, b_mirror: str) -> int:
    """Return the fewest differing bits between photo a and photo b or b's mirror (either way)."""
    ha, hm, hb, hbm = (imagehash.hex_to_hash(h) for h in (a, a_mirror, b, b_mirror))
    return int(min(ha - hb, ha - hbm, hm - hb))
