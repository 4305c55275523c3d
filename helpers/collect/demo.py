"""The demo's photo website: shared photos of some breeds plus planted bad items, on 127.0.0.1.

01_scrape's demo downloads through the real path (HTTP, checks, de-duplication) from this
server, via a URL manifest (`breed,wnid,url,sha256`). The planted items are made at run time from
the shared photos, the same every run, and each says what 01 should do with it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image, ImageOps

from helpers.breeds import parse_breed_folder
from helpers.collect.sources import ManifestSource

URL_COLUMNS = ("breed", "wnid", "url", "sha256", "planted", "expect", "original")
WIDE_SIZE = (1200, 700)  # the planted non-square photo, before max_side bounds it


@dataclass(frozen=True)
class Planted:
    """One planted item: what it is, its bytes, and what 01_scrape must record for it."""

    name: str  # also its URL: planted/<name>
    breed: str
    what: str  # one line for the learner
    expect: str  # the manifest reason code it must get, or "kept"
    body: bytes | None  # None: the URL is dead (the server answers 404)
    content_type: str = "image/jpeg"
    original: str = ""  # URL of the shared photo it copies, for copies and crops
    replaces: str = ""  # URL of a shared photo left off the site because this item stands in
    published_sha256: str = ""  # the checksum the URL manifest lists, if any

    @property
    def url(self) -> str:
        return f"planted/{self.name}"


@dataclass
class DemoSite:
    """A running demo site: the source to collect from, its URL manifest and the planted items."""

    source: ManifestSource
    manifest_csv: Path
    planted: list[Planted]
    base_url: str


class PhotoServer:
    """Serves fixed routes (bytes, or a file read on request) on an ephemeral 127.0.0.1 port."""

    def __init__(self, routes: dict[str, tuple[bytes | Path, str]]):
        self.routes = dict(routes)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = False  # so server_close waits for every request thread
        self._server.routes = self.routes  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """Return the server's root URL, ending in a slash."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> PhotoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()  # stops serve_forever and waits for it
        self._server.server_close()  # closes the socket and joins the request threads
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after a fetch

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        route = self.server.routes.get(self.path.lstrip("/"))  # type: ignore[attr-defined]
        if route is None:
            self._send(404, b"<html><body>Not found</body></html>", "text/html")
            return
        body, content_type = route
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(200, body.read_bytes() if isinstance(body, Path) else body, content_type)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # a notebook's output is no place for an access log


def breed_photos(root: str | os.PathLike, breeds: Sequence[str]) -> dict[str, list[Path]]:
    """Return each breed's photos in a Stanford-Dogs-style folder (`<wnid>-<Breed>`), sorted."""
    folders = {parse_breed_folder(p.name)[0]: p for p in Path(root).iterdir() if p.is_dir()}
    missing = sorted(set(breeds) - set(folders))
    if missing:
        raise KeyError(f"no folder in {root} for breeds {missing}")
    return {b: sorted(p for p in folders[b].glob("*.jpg")) for b in breeds}


def photo_url(path: Path) -> str:
    """Return the site URL (relative to its root) of a shared photo."""
    return f"photos/{path.parent.name}/{path.name}"


def planted_items(photos: dict[str, list[Path]]) -> list[Planted]:
    """Return the planted items, made from the shared photos the same way every run.

    Item i belongs to the i-th breed (cycling through them in sorted order) and is made from that
    breed's photo number i // breeds; a cross-breed copy is listed under the next breed.
    """
    breeds = sorted(photos)
    if len(breeds) < 2:
        raise ValueError("the demo site needs at least two breeds")

    def pick(i: int) -> tuple[str, Path, Image.Image]:
        breed = breeds[i % len(breeds)]
        path = photos[breed][i // len(breeds)]
        return breed, path, Image.open(path).convert("RGB")

    def other(i: int) -> str:
        return breeds[(i + 1) % len(breeds)]

    items = []
    for i, make in enumerate(_MAKERS):
        breed, path, image = pick(i)
        item = make(breed, path, image, other(i))
        items.append(replace(item, name=f"{i + 1:02d}-{item.name}"))  # unique URLs
    return items


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _bomb_png(side: int = 10_000) -> bytes:
    """Return a real decompression bomb: a ~12 KB black 1-bit PNG of side x side pixels."""
    rows = zlib.compress(bytes(side * (side // 8 + 1)), 9)  # filter byte 0 + zero bits per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def _center_crop(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    cw, ch = round(w * fraction), round(h * fraction)
    box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
    return image.crop(box).resize(image.size, Image.Resampling.LANCZOS)


def _html(breed, path, image, other) -> Planted:
    page = b"<!doctype html><html><body><h1>Cute dogs</h1><img src='dog.jpg'></body></html>"
    return Planted("web-page.jpg", breed, "an HTML page served as image/jpeg", "not_an_image",
                   page)  # fmt: skip


def _truncated(breed, path, image, other) -> Planted:
    data = path.read_bytes()
    return Planted("truncated.jpg", breed, "the first 40% of a JPEG (a dropped connection)",
                   "corrupt", data[: len(data) * 2 // 5])  # fmt: skip


def _thumbnail(breed, path, image, other) -> Planted:
    return Planted("thumbnail.jpg", breed, "a 64x64 thumbnail", "too_small",
                   _jpeg(image.resize((64, 64), Image.Resampling.LANCZOS)))  # fmt: skip


def _bomb(breed, path, image, other) -> Planted:
    return Planted("bomb.png", breed, "a 12 KB PNG that decodes to 10000x10000 pixels",
                   "too_many_pixels", _bomb_png(), "image/png")  # fmt: skip


def _empty(breed, path, image, other) -> Planted:
    return Planted("empty.jpg", breed, "an empty response", "empty", b"")


def _dead(breed, path, image, other) -> Planted:
    return Planted("gone.jpg", breed, "a dead link", "http_404", None)


def _changed(breed, path, image, other) -> Planted:
    published = hashlib.sha256(path.read_bytes()).hexdigest()
    return Planted("changed.jpg", breed, "re-encoded since its checksum was published",
                   "checksum_mismatch", _jpeg(image, 70), published_sha256=published)  # fmt: skip


def _duplicate(breed, path, image, other) -> Planted:
    return Planted("duplicate.jpg", breed, "the same bytes as a photo at another URL",
                   "duplicate", path.read_bytes(), original=photo_url(path))  # fmt: skip


def _recompressed(breed, path, image, other) -> Planted:
    body = _jpeg(image.resize((180, 180), Image.Resampling.LANCZOS), 60)
    return Planted("resized-copy.jpg", breed, "a photo resized to 180 px and recompressed",
                   "near_duplicate", body, original=photo_url(path))  # fmt: skip


def _mirrored(breed, path, image, other) -> Planted:
    return Planted("mirrored-copy.jpg", breed, "a photo mirrored left-right", "near_duplicate",
                   _jpeg(ImageOps.mirror(image)), original=photo_url(path))  # fmt: skip


def _wide(breed, path, image, other) -> Planted:
    strip = image.crop((0, 40, 224, 171))  # 224x131, the shape of WIDE_SIZE
    body = _jpeg(strip.resize(WIDE_SIZE, Image.Resampling.LANCZOS))
    return Planted("wide.jpg", breed, f"a {WIDE_SIZE[0]}x{WIDE_SIZE[1]} photo (an enlarged strip)",
                   "kept", body, replaces=photo_url(path))  # fmt: skip


def _mirrored_other_breed(breed, path, image, other) -> Planted:
    return Planted(f"mirrored-as-{other.lower().replace(' ', '-')}.jpg", other,
                   f"a mirrored {breed} photo listed as {other}", "kept",
                   _jpeg(ImageOps.mirror(image)), original=photo_url(path))  # fmt: skip


def _copy_other_breed(breed, path, image, other) -> Planted:
    body = _jpeg(image.resize((200, 200), Image.Resampling.LANCZOS), 75)
    return Planted(f"copy-as-{other.lower().replace(' ', '-')}.jpg", other,
                   f"a resized {breed} photo listed as {other}", "kept", body,
                   original=photo_url(path))  # fmt: skip


def _cropped(expect: str):
    """Return a maker of a photo cropped by 8%: how far that moves the hash depends on the photo,
    so the same crop is a near duplicate for 01 in one photo and only for 02 in another."""

    def make(breed, path, image, other) -> Planted:
        body = _jpeg(_center_crop(image, 0.92))
        what = "a photo cropped by 8% and resized back"
        return Planted("cropped-copy.jpg", breed, what, expect, body, original=photo_url(path))

    return make


# The order decides which breed and photo each item is made from; the wide photo replaces its
# original, so a breed keeps its count. Later copies of a photo must come after the photo.
_MAKERS = (
    _html, _truncated, _thumbnail, _bomb, _empty, _dead, _changed, _duplicate, _recompressed,
    _mirrored, _wide, _mirrored_other_breed, _copy_other_breed, _cropped("near_duplicate"),
    _mirrored_other_breed, _cropped("kept"),
)  # fmt: skip


def url_rows(photos: dict[str, list[Path]], planted: list[Planted]) -> list[dict[str, str]]:
    """Return the URL manifest's rows: per breed, the photos planted items copy, the planted
    items, then the other photos (so the items come before the collector has enough photos).

    Every row carries the WordNet id of the breed it is listed under, from the photos' folder.
    """
    replaced = {p.replaces for p in planted if p.replaces}
    originals = {p.original for p in planted if p.original} - replaced
    wnids = {b: parse_breed_folder(paths[0].parent.name)[1] or "" for b, paths in photos.items()}
    rows = []
    for breed in sorted(photos):
        urls = [photo_url(p) for p in photos[breed] if photo_url(p) not in replaced]
        first = [u for u in urls if u in originals]
        rows += [_row(breed, wnids[breed], u) for u in first]
        rows += [_planted_row(p, wnids[p.breed]) for p in planted if p.breed == breed]
        rows += [_row(breed, wnids[breed], u) for u in urls if u not in originals]
    return rows


def _row(breed: str, wnid: str, url: str) -> dict[str, str]:
    return {"breed": breed, "wnid": wnid, "url": url, "sha256": "", "planted": "", "expect": "",
            "original": ""}  # fmt: skip


def _planted_row(p: Planted, wnid: str) -> dict[str, str]:
    return {**_row(p.breed, wnid, p.url), "sha256": p.published_sha256, "planted": p.what,
            "expect": p.expect, "original": p.original}  # fmt: skip


def _routes(photos: dict[str, list[Path]], planted: list[Planted]) -> dict:
    routes: dict[str, tuple[bytes | Path, str]] = {
        photo_url(p): (p, "image/jpeg") for paths in photos.values() for p in paths
    }
    routes.update({p.url: (p.body, p.content_type) for p in planted if p.body is not None})
    return routes


@contextlib.contextmanager
def demo_site(
    photos_root: str | os.PathLike, breeds: Sequence[str], manifest_csv: str | os.PathLike
) -> Iterator[DemoSite]:
    """Serve the breeds' shared photos and the planted items on 127.0.0.1 while in the block.

    Writes the site's URL manifest (relative URLs) to `manifest_csv` and yields a DemoSite whose
    source downloads from the running server; the server and its threads stop on exit.
    """
    photos = breed_photos(photos_root, breeds)
    planted = planted_items(photos)
    path = Path(manifest_csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=URL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(url_rows(photos, planted))
    with PhotoServer(_routes(photos, planted)) as server:
        source = ManifestSource(path, base_url=server.base_url)
        yield DemoSite(source, path, planted, server.base_url)
