"""Tests for helpers.hashing: file_sha256 (and helpers.training's tf.io.gfile layer over it), and
the mirror-aware perceptual hashes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageOps

from helpers.hashing import (
    CHUNK_SIZE,
    file_sha256,
    mirror_aware_distance,
    mirror_aware_phashes,
)

ROOT = Path(__file__).resolve().parents[2]


def _expected(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(params=[0, 1, 1000, CHUNK_SIZE, 2 * CHUNK_SIZE + 123], ids=lambda n: f"{n}B")
def data_file(request, tmp_path: Path) -> Path:
    """A real file of random bytes; the largest spans three chunks, the last one partial."""
    path = tmp_path / "data.bin"
    path.write_bytes(np.random.default_rng(request.param).bytes(request.param))
    assert path.stat().st_size == request.param
    return path


def test_matches_hashlib_for_str_and_pathlike_paths(data_file: Path):
    expected = _expected(data_file)
    assert file_sha256(data_file) == expected
    assert file_sha256(str(data_file)) == expected


def test_matches_hashlib_for_an_open_binary_file(data_file: Path):
    with data_file.open("rb") as handle:
        assert file_sha256(handle) == _expected(data_file)


def test_a_small_chunk_size_gives_the_same_digest(data_file: Path):
    assert file_sha256(data_file, chunk_size=7) == _expected(data_file)


def test_empty_file_is_the_sha256_of_no_bytes(tmp_path: Path):
    path = tmp_path / "empty"
    path.touch()
    assert file_sha256(path) == hashlib.sha256(b"").hexdigest()
    assert file_sha256(path) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_an_open_file_is_hashed_from_its_position(tmp_path: Path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"header:payload")
    with path.open("rb") as handle:
        handle.read(len(b"header:"))
        assert file_sha256(handle) == hashlib.sha256(b"payload").hexdigest()


def test_a_missing_file_raises(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing")


def test_importing_it_does_not_import_tensorflow():
    code = "import sys, helpers.hashing; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_train_gfile_variant_reads_local_paths_and_filesystem_urls(tmp_path: Path):
    tf = pytest.importorskip("tensorflow")
    from helpers.training import metadata

    path = tmp_path / "data.bin"
    payload = np.random.default_rng(0).bytes(CHUNK_SIZE + 5)
    path.write_bytes(payload)
    assert metadata.file_sha256(path) == _expected(path)
    # A URL-style path only tf.io.gfile can open (TF's in-memory file system, like gs://).
    url = "ram://test_hashing/data.bin"
    with tf.io.gfile.GFile(url, "wb") as f:
        f.write(payload)
    try:
        assert metadata.file_sha256(url) == hashlib.sha256(payload).hexdigest()
    finally:
        tf.io.gfile.remove(url)


def test_mirror_aware_phashes_swap_for_a_mirror_image_and_match_it_at_zero_bits():
    rng = np.random.default_rng(0)
    low = Image.fromarray(rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8))
    image = low.resize((320, 240), Image.Resampling.BICUBIC)
    other = Image.fromarray(rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)).resize((320, 240))
    phash, mirror = mirror_aware_phashes(image)
    assert mirror_aware_phashes(ImageOps.mirror(image)) == (mirror, phash)
    assert (imagehash.hex_to_hash(phash) - imagehash.hex_to_hash(mirror)) > 10  # not symmetric
    assert mirror_aware_distance(phash, mirror, mirror, phash) == 0
    assert mirror_aware_distance(phash, mirror, *mirror_aware_phashes(other)) > 10
