"""The sha256 of a file, read in chunks; TensorFlow-free (helpers.train adds tf.io.gfile paths)."""

from __future__ import annotations

import hashlib
import os
from typing import Protocol

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
