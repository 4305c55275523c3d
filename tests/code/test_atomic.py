"""Atomic writes: readers never see a part, and the results get the modes the umask gives."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.atomic import current_umask, publishing_dir, write_atomic
from helpers.evaluation.calibration import save_temperature


@pytest.fixture(params=[0o022, 0o002, 0o077], ids=["umask022", "umask002", "umask077"])
def umask(request) -> Iterator[int]:
    """Run the test under a given umask, restoring the old one afterwards."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_without_changing(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_written_file_has_the_mode_open_would_give(tmp_path, umask):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what a normal open() creates under this umask
    written = write_atomic(tmp_path / "atomic.txt", "héllo")
    assert written.read_text(encoding="utf-8") == "héllo"
    assert _mode(written) == _mode(plain) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.txt", "plain.txt"]


def test_overwrite_replaces_content_and_keeps_umask_mode(tmp_path, umask):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o666 & ~umask


def test_published_directory_has_the_mode_mkdir_would_give(tmp_path, umask):
    (tmp_path / "plain").mkdir()
    with publishing_dir(tmp_path / "model") as tmp:
        write_atomic(tmp / "a.json", "{}")
    assert _mode(tmp_path / "model") == _mode(tmp_path / "plain") == 0o777 & ~umask
    assert _mode(tmp_path / "model" / "a.json") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "plain"]  # no temporary left


def test_publishing_over_an_existing_directory_replaces_its_files(tmp_path):
    with publishing_dir(tmp_path / "d") as tmp:
        write_atomic(tmp / "a", "1")
        write_atomic(tmp / "keep", "k")
    with publishing_dir(tmp_path / "d", order=("a",)) as tmp:
        write_atomic(tmp / "a", "2")
    assert (tmp_path / "d" / "a").read_text() == "2" and (
        tmp_path / "d" / "keep"
    ).read_text() == "k"
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_a_failed_publish_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), publishing_dir(tmp_path / "d") as tmp:
        write_atomic(tmp / "a", "1")
        raise RuntimeError("model.save failed")
    assert list(tmp_path.iterdir()) == []


def test_save_temperature_keeps_metadata_readable(tmp_path, umask):
    metadata = {"name": "m", "output": "logits", "classes": [{"name": "Pug"}], "image_size": 8}
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    save_temperature(tmp_path, 1.5)
    assert _mode(tmp_path / "metadata.json") == 0o666 & ~umask
