"""helpers.collect.stanford: the official Stanford Dogs download, against a real HTTP server on
127.0.0.1 serving a small images.tar built here from the shared photos (same layout)."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers.collect import make_source
from helpers.collect.demo import breed_photos
from helpers.collect.stanford import (
    ArchiveError,
    breed_folders,
    download_archive,
    extract_breeds,
    fetch_breeds,
)

BREED_DIRS = ["n02085620-Chihuahua", "n02088364-beagle", "n02110958-pug"]


@pytest.fixture(scope="module")
def archive(stanford_dogs: Path, tmp_path_factory) -> Path:
    """An images.tar as the official one is laid out: Images/<wnid>-<name>/<file>.jpg."""
    path = tmp_path_factory.mktemp("stanford") / "images.tar"
    with tarfile.open(path, "w") as tar:
        for folder in BREED_DIRS:
            tar.add(stanford_dogs / folder, f"Images/{folder}", recursive=False)
            for photo in sorted((stanford_dogs / folder).glob("*.jpg"))[:3]:
                tar.add(photo, f"Images/{folder}/{photo.name}")
    return path


class _Server:
    """Serves one file with HTTP Range support; can cut the first answer short or ignore Range."""

    def __init__(self, body: bytes, cut_after: int | None = None, ranges: bool = True) -> None:
        self.body, self.cut_after, self.ranges = body, cut_after, ranges
        self.requests: list[str | None] = []  # the Range header of each request
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.headers.get("Range"))
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and owner.ranges:
                    start = int(match[1])
                    if start >= len(owner.body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(owner.body) - 1}/*")
                else:
                    self.send_response(200)
                rest = owner.body[start:]
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                if owner.cut_after is not None and len(owner.requests) == 1:
                    self.wfile.write(rest[: owner.cut_after])  # then the connection drops
                    self.close_connection = True
                    return
                self.wfile.write(rest)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/images.tar"

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def served(archive: Path) -> Iterator[_Server]:
    with _Server(archive.read_bytes()) as server:
        yield server


def test_download_then_extract_the_breeds_asked_for(served, archive, tmp_path, stanford_dogs):
    body = archive.read_bytes()
    tar = download_archive(served.url, tmp_path / "images.tar", expected_bytes=len(body),
                           sha256=hashlib.sha256(body).hexdigest())  # fmt: skip
    assert tar.read_bytes() == body and not (tmp_path / "images.tar.part").exists()
    assert breed_folders(tar) == {"Beagle": "n02088364-beagle", "Chihuahua": "n02085620-Chihuahua",
                                  "Pug": "n02110958-pug"}  # fmt: skip
    counts = extract_breeds(tar, tmp_path / "photos", ["Pug", "Beagle"])
    assert counts == {"Pug": 3, "Beagle": 3}
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == [
        "n02088364-beagle", "n02110958-pug",
    ]  # fmt: skip
    for photo in (tmp_path / "photos" / "n02110958-pug").iterdir():
        assert photo.read_bytes() == (stanford_dogs / "n02110958-pug" / photo.name).read_bytes()


def test_fetch_breeds_gives_the_folder_01s_sources_read_and_downloads_once(
    served, archive, tmp_path, stanford_dogs
):
    size = archive.stat().st_size
    photos = fetch_breeds(["Chihuahua", "Pug"], tmp_path / "dogs", url=served.url,
                          expected_bytes=size)  # fmt: skip
    again = fetch_breeds(["Chihuahua", "Pug"], tmp_path / "dogs", url=served.url,
                         expected_bytes=size)  # fmt: skip
    assert again == photos and served.requests == [None]  # the second call downloads nothing
    assert make_source("folder", photos).breeds() == ["Chihuahua", "Pug"]
    served_by_demo_site = breed_photos(photos, ["Pug"])["Pug"]  # what the demo site lists
    packed = sorted((stanford_dogs / "n02110958-pug").glob("*.jpg"))[:3]
    assert [p.read_bytes() for p in served_by_demo_site] == [p.read_bytes() for p in packed]


def test_a_complete_download_is_not_fetched_again(served, archive, tmp_path):
    size = archive.stat().st_size
    download_archive(served.url, tmp_path / "images.tar", expected_bytes=size)
    download_archive(served.url, tmp_path / "images.tar", expected_bytes=size)
    assert served.requests == [None]


def test_a_dropped_download_resumes_where_it_stopped(archive, tmp_path):
    body = archive.read_bytes()
    with _Server(body, cut_after=len(body) // 2) as server:
        with pytest.raises(ConnectionError, match="closed after"):
            download_archive(server.url, tmp_path / "images.tar", expected_bytes=len(body),
                             retries=0)  # fmt: skip
        assert (tmp_path / "images.tar.part").stat().st_size == len(body) // 2
        tar = download_archive(server.url, tmp_path / "images.tar", expected_bytes=len(body))
    assert server.requests == [None, f"bytes={len(body) // 2}-"]
    assert tar.read_bytes() == body


def test_retries_resume_within_one_call(archive, tmp_path):
    body = archive.read_bytes()
    with _Server(body, cut_after=1000) as server:
        tar = download_archive(server.url, tmp_path / "images.tar", expected_bytes=len(body))
    assert server.requests == [None, "bytes=1000-"]
    assert tar.read_bytes() == body


def test_a_server_that_ignores_range_gives_the_whole_file_again(archive, tmp_path):
    body = archive.read_bytes()
    (tmp_path / "images.tar.part").write_bytes(b"stale bytes of another file")
    with _Server(body, ranges=False) as server:
        tar = download_archive(server.url, tmp_path / "images.tar", expected_bytes=len(body))
    assert tar.read_bytes() == body


def test_a_wrong_size_or_checksum_is_refused_and_deleted(served, archive, tmp_path):
    size = archive.stat().st_size
    with pytest.raises(ArchiveError, match=f"expected {size + 1}"):
        download_archive(served.url, tmp_path / "images.tar", expected_bytes=size + 1)
    with pytest.raises(ArchiveError, match="sha256"):
        download_archive(served.url, tmp_path / "images.tar", expected_bytes=size, sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        good = tarfile.TarInfo("Images/n02110958-pug/ok.jpg")
        good.size = 3
        tar.addfile(good, io.BytesIO(b"abc"))
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize("name", ["Images/n02110958-pug/../../../evil.jpg", "/etc/evil.jpg"])
def test_a_path_outside_the_folder_is_refused_before_anything_is_written(tmp_path, name):
    member = tarfile.TarInfo(name)
    member.size = 4
    bad = _tar_with(tmp_path, member, b"evil")
    with pytest.raises(ArchiveError, match="unsafe path"):
        extract_breeds(bad, tmp_path / "photos")
    assert not (tmp_path / "photos").exists()
    assert list(tmp_path.parent.rglob("evil.jpg")) == []


def test_links_are_refused(tmp_path):
    link = tarfile.TarInfo("Images/n02110958-pug/link.jpg")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(ArchiveError, match="link"):
        extract_breeds(_tar_with(tmp_path, link), tmp_path / "photos")
    assert not (tmp_path / "photos").exists()


def test_unknown_breeds_are_named(archive, tmp_path):
    with pytest.raises(KeyError, match="Dingo"):
        extract_breeds(archive, tmp_path / "photos", ["Pug", "Dingo"])
    assert not (tmp_path / "photos").exists()


def test_an_interrupted_extraction_resumes_and_replaces_a_cut_file(archive, tmp_path):
    extract_breeds(archive, tmp_path / "photos", ["Pug"])
    photos = sorted((tmp_path / "photos" / "n02110958-pug").iterdir())
    whole = photos[0].read_bytes()
    photos[0].write_bytes(whole[:10])  # cut short, as by a crash without atomic writes
    photos[1].unlink()
    assert extract_breeds(archive, tmp_path / "photos", ["Pug"]) == {"Pug": 3}
    assert photos[0].read_bytes() == whole and photos[1].is_file()
